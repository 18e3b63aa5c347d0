/* OpenCL host runtime: device selection, cached program builds, buffers, the
 * device arena and launch profiling (see grimc_opencl.h). */
#ifndef _POSIX_C_SOURCE /* also inlined after _GNU_SOURCE by the codegen */
#define _POSIX_C_SOURCE 200809L
#endif

#include "grimc_opencl.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Cache file: magic, the 128-bit key, the binary size, then the binary. */
#define CL_CACHE_MAGIC "GRIMCCL1"
#define CL_CACHE_HEADER (8 + 16 + 8)
/* CL_PLATFORM_NOT_FOUND_KHR of cl_khr_icd (the loader's "no platform"). */
#define CL_PLATFORM_NOT_FOUND_KHR_ (-1001)

GRIMC_RT_API int grimc_cl_status(cl_int err) {
    switch (err) {
    case CL_SUCCESS: return GRIMC_OK;
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
    case CL_OUT_OF_HOST_MEMORY:
    case CL_INVALID_BUFFER_SIZE: return GRIMC_E_NOMEM;
    case CL_PLATFORM_NOT_FOUND_KHR_:
    case CL_DEVICE_NOT_FOUND:
    case CL_DEVICE_NOT_AVAILABLE: return GRIMC_E_NO_DEVICE;
    case CL_BUILD_PROGRAM_FAILURE:
    case CL_COMPILER_NOT_AVAILABLE:
    case CL_INVALID_BUILD_OPTIONS:
    case CL_INVALID_KERNEL_NAME: return GRIMC_E_BUILD;
    case CL_INVALID_VALUE: return GRIMC_E_ARG;
    default: return GRIMC_E_DEVICE;
    }
}

/* ---------------------------------------------------------------- logs */

static void cl_vformat(char *dst, size_t n, const char *fmt, va_list ap) {
    if (dst != NULL && n > 0) {
        vsnprintf(dst, n, fmt, ap);
    }
}

static void cl_set_log(grimc_cl *cl, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[1];
    va_list copy;
    va_copy(copy, ap);
    int len = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    free(cl->log);
    cl->log = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (cl->log != NULL) {
        vsnprintf(cl->log, (size_t)len + 1, fmt, ap);
    }
    va_end(ap);
}

/* Record `what` failed with `err` and return its status. */
static int cl_fail(grimc_cl *cl, const char *what, cl_int err) {
    cl_set_log(cl, "%s failed: OpenCL error %d", what, (int)err);
    return grimc_cl_status(err);
}

GRIMC_RT_API const char *grimc_cl_log(const grimc_cl *cl) {
    return cl != NULL && cl->log != NULL ? cl->log : "";
}

/* ------------------------------------------------------------- devices */

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
    cl_device_type type;
    char label[512]; /* "<platform> <device>" */
} cl_candidate;

/* Every device of every platform, in enumeration order; count in *n.
 * Returns NULL with *n == 0 when there is none (or on allocation failure,
 * *n == SIZE_MAX). */
static cl_candidate *cl_enumerate(size_t *n) {
    *n = 0;
    cl_uint np = 0;
    if (clGetPlatformIDs(0, NULL, &np) != CL_SUCCESS || np == 0) {
        return NULL;
    }
    cl_platform_id *plats = malloc(np * sizeof *plats);
    if (plats == NULL || clGetPlatformIDs(np, plats, NULL) != CL_SUCCESS) {
        free(plats);
        return NULL;
    }
    cl_candidate *out = NULL;
    size_t count = 0;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) !=
                CL_SUCCESS ||
            nd == 0) {
            continue;
        }
        cl_device_id *devs = malloc(nd * sizeof *devs);
        cl_candidate *grown = realloc(out, (count + nd) * sizeof *out);
        if (devs == NULL || grown == NULL) {
            free(devs);
            free(grown != NULL ? grown : out);
            free(plats);
            *n = SIZE_MAX;
            return NULL;
        }
        out = grown;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) ==
            CL_SUCCESS) {
            char pname[256] = "", dname[256] = "";
            clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname - 1,
                              pname, NULL);
            for (cl_uint d = 0; d < nd; d++) {
                cl_candidate *c = &out[count++];
                c->platform = plats[p];
                c->device = devs[d];
                c->type = 0;
                memset(dname, 0, sizeof dname);
                clGetDeviceInfo(devs[d], CL_DEVICE_NAME, sizeof dname - 1,
                                dname, NULL);
                clGetDeviceInfo(devs[d], CL_DEVICE_TYPE, sizeof c->type,
                                &c->type, NULL);
                snprintf(c->label, sizeof c->label, "%s %s", pname, dname);
            }
        }
        free(devs);
    }
    free(plats);
    *n = count;
    return out;
}

GRIMC_RT_API int grimc_cl_device_count(void) {
    size_t n;
    free(cl_enumerate(&n));
    return n == SIZE_MAX ? 0 : (int)n;
}

static int cl_contains_ci(const char *hay, const char *needle) {
    size_t nl = strlen(needle);
    for (const char *h = hay; *h != '\0'; h++) {
        size_t i = 0;
        while (i < nl && h[i] != '\0' &&
               tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i])) {
            i++;
        }
        if (i == nl) {
            return 1;
        }
    }
    return nl == 0;
}

/* Index of the device `sel` names, or -1. */
static long cl_match(const cl_candidate *c, size_t n, const char *sel) {
    char *end = NULL;
    errno = 0;
    long idx = strtol(sel, &end, 10);
    if (*sel != '\0' && end != NULL && *end == '\0' && errno == 0) {
        return idx >= 0 && (size_t)idx < n ? idx : -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (cl_contains_ci(c[i].label, sel)) {
            return (long)i;
        }
    }
    return -1;
}

/* "0: <label>; 1: <label>" into dst. */
static void cl_list(const cl_candidate *c, size_t n, char *dst, size_t size) {
    size_t used = 0;
    dst[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < size; i++) {
        int w = snprintf(dst + used, size - used, "%s%zu: %s", i ? "; " : "",
                         i, c[i].label);
        if (w < 0) {
            break;
        }
        used += (size_t)w;
    }
}

static void cl_log_to(char *dst, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cl_vformat(dst, n, fmt, ap);
    va_end(ap);
}

/* Resolve the cache directory (see grimc_cl_options.cache_dir). */
static void cl_cache_dir(const char *opt, char *dst, size_t n) {
    const char *env = getenv(GRIMC_OPENCL_CACHE_ENV);
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    dst[0] = '\0';
    if (opt != NULL) {
        snprintf(dst, n, "%s", opt);
    } else if (env != NULL) {
        snprintf(dst, n, "%s", env);
    } else if (xdg != NULL && xdg[0] == '/') {
        snprintf(dst, n, "%s/grimc/opencl", xdg);
    } else if (home != NULL && home[0] != '\0') {
        snprintf(dst, n, "%s/.cache/grimc/opencl", home);
    }
}

static void cl_device_str(cl_device_id d, cl_device_info what, char *dst,
                          size_t n) {
    memset(dst, 0, n);
    clGetDeviceInfo(d, what, n - 1, dst, NULL);
}

GRIMC_RT_API int grimc_cl_create(const grimc_cl_options *opts, grimc_cl **out, char *log,
                    size_t log_size) {
    if (out == NULL) {
        return GRIMC_E_ARG;
    }
    *out = NULL;
    cl_log_to(log, log_size, "%s", "");
    grimc_cl_options defaults = {NULL, NULL, 0};
    if (opts == NULL) {
        opts = &defaults;
    }
    size_t n = 0;
    cl_candidate *cands = cl_enumerate(&n);
    if (n == SIZE_MAX) {
        return GRIMC_E_NOMEM;
    }
    if (n == 0) {
        cl_log_to(log, log_size,
                  "no OpenCL device: the ICD loader found no platform with a "
                  "device (install a driver, e.g. pocl-opencl-icd)");
        return GRIMC_E_NO_DEVICE;
    }
    const char *sel = opts->device != NULL ? opts->device
                                           : getenv(GRIMC_OPENCL_DEVICE_ENV);
    long pick = -1;
    if (sel != NULL && sel[0] != '\0') {
        pick = cl_match(cands, n, sel);
        if (pick < 0) {
            char list[1024];
            cl_list(cands, n, list, sizeof list);
            cl_log_to(log, log_size, "no OpenCL device matches '%s' (devices: %s)",
                      sel, list);
            free(cands);
            return GRIMC_E_NO_DEVICE;
        }
    } else {
        pick = 0;
        for (size_t i = 0; i < n; i++) {
            if (cands[i].type & CL_DEVICE_TYPE_GPU) {
                pick = (long)i;
                break;
            }
        }
    }
    grimc_cl *cl = calloc(1, sizeof *cl);
    if (cl == NULL) {
        free(cands);
        return GRIMC_E_NOMEM;
    }
    cl->platform = cands[pick].platform;
    cl->device = cands[pick].device;
    free(cands);
    memset(cl->platform_name, 0, sizeof cl->platform_name);
    clGetPlatformInfo(cl->platform, CL_PLATFORM_NAME,
                      sizeof cl->platform_name - 1, cl->platform_name, NULL);
    cl_device_str(cl->device, CL_DEVICE_NAME, cl->device_name,
                  sizeof cl->device_name);
    cl_device_str(cl->device, CL_DRIVER_VERSION, cl->driver_version,
                  sizeof cl->driver_version);
    cl_device_str(cl->device, CL_DEVICE_VERSION, cl->device_version,
                  sizeof cl->device_version);
    char ext[8192];
    cl_device_str(cl->device, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
    cl->has_fp16 = strstr(ext, "cl_khr_fp16") != NULL;
    clGetDeviceInfo(cl->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE,
                    sizeof cl->max_alloc, &cl->max_alloc, NULL);
    cl->profile = opts->profile != 0;
    cl_cache_dir(opts->cache_dir, cl->cache_dir, sizeof cl->cache_dir);

    cl_int err = CL_SUCCESS;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                     (cl_context_properties)cl->platform, 0};
    cl->context = clCreateContext(props, 1, &cl->device, NULL, NULL, &err);
    if (err == CL_SUCCESS) {
        cl->queue = clCreateCommandQueue(
            cl->context, cl->device,
            cl->profile ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
    }
    if (err != CL_SUCCESS) {
        cl_log_to(log, log_size, "creating an OpenCL context on '%s' failed: "
                  "OpenCL error %d", cl->device_name, (int)err);
        grimc_cl_destroy(cl);
        return grimc_cl_status(err) == GRIMC_E_NOMEM ? GRIMC_E_NOMEM
                                                     : GRIMC_E_DEVICE;
    }
    *out = cl;
    return GRIMC_OK;
}

GRIMC_RT_API void grimc_cl_destroy(grimc_cl *cl) {
    if (cl == NULL) {
        return;
    }
    grimc_cl_reset_launches(cl);
    free(cl->launches);
    if (cl->queue != NULL) {
        clFinish(cl->queue);
        clReleaseCommandQueue(cl->queue);
    }
    if (cl->context != NULL) {
        clReleaseContext(cl->context);
    }
    free(cl->log);
    free(cl);
}

/* ------------------------------------------------------------ programs */

/* Two FNV-1a-64 streams with different bases: a 128-bit key. Each field is
 * followed by a 0xff separator so ("ab","c") and ("a","bc") differ. */
typedef struct {
    uint64_t h[2];
} cl_key;

static void cl_key_add(cl_key *k, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    for (;; p++) {
        unsigned char c = *p != '\0' ? *p : 0xff;
        k->h[0] = (k->h[0] ^ c) * 0x100000001b3ull;
        k->h[1] = (k->h[1] ^ c) * 0x100000001b3ull;
        k->h[1] ^= k->h[1] >> 29;
        if (*p == '\0') {
            return;
        }
    }
}

static cl_key cl_program_key(const grimc_cl *cl, const char *source,
                             const char *options) {
    cl_key k = {{0xcbf29ce484222325ull, 0x84222325cbf29ce4ull}};
    const char *fields[] = {cl->platform_name, cl->device_name,
                            cl->device_version, cl->driver_version,
                            options != NULL ? options : "", source};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        cl_key_add(&k, fields[i]);
    }
    return k;
}

GRIMC_RT_API int grimc_cl_cache_path(const grimc_cl *cl, const char *source,
                        const char *options, char *path, size_t n) {
    if (cl == NULL || source == NULL || path == NULL || cl->cache_dir[0] == '\0') {
        return GRIMC_E_ARG;
    }
    cl_key k = cl_program_key(cl, source, options);
    int w = snprintf(path, n, "%s/%016llx%016llx.clbin", cl->cache_dir,
                     (unsigned long long)k.h[0], (unsigned long long)k.h[1]);
    return w < 0 || (size_t)w >= n ? GRIMC_E_ARG : GRIMC_OK;
}

/* mkdir -p; 0 on success. */
static int cl_mkdirs(const char *dir) {
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) {
        return -1;
    }
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void cl_put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t cl_get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

/* The cached binary for key k at path, or NULL (absent, stale, corrupt). */
static unsigned char *cl_cache_read(const char *path, cl_key k, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    unsigned char head[CL_CACHE_HEADER];
    unsigned char *bin = NULL;
    if (fread(head, 1, sizeof head, f) == sizeof head &&
        memcmp(head, CL_CACHE_MAGIC, 8) == 0 && cl_get_u64(head + 8) == k.h[0] &&
        cl_get_u64(head + 16) == k.h[1]) {
        uint64_t n = cl_get_u64(head + 24);
        if (n > 0 && n < ((uint64_t)1 << 32)) {
            bin = malloc((size_t)n);
            /* Exactly n bytes must follow: no more (fgetc hits EOF). */
            if (bin != NULL &&
                (fread(bin, 1, (size_t)n, f) != n || fgetc(f) != EOF)) {
                free(bin);
                bin = NULL;
            }
            *size = (size_t)n;
        }
    }
    fclose(f);
    return bin;
}

/* Write atomically (temp file + rename) so concurrent builders never read a
 * half-written binary. Failures only lose the cache entry. */
static int cl_cache_write(const grimc_cl *cl, const char *path, cl_key k,
                          const unsigned char *bin, size_t size) {
    if (cl_mkdirs(cl->cache_dir) != 0) {
        return -1;
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        return -1;
    }
    unsigned char head[CL_CACHE_HEADER];
    memcpy(head, CL_CACHE_MAGIC, 8);
    cl_put_u64(head + 8, k.h[0]);
    cl_put_u64(head + 16, k.h[1]);
    cl_put_u64(head + 24, size);
    int ok = fwrite(head, 1, sizeof head, f) == sizeof head &&
             fwrite(bin, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* The device binary of a built program (malloc'd), or NULL. */
static unsigned char *cl_program_binary(cl_program prog, size_t *size) {
    size_t n = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) !=
            CL_SUCCESS ||
        n == 0) {
        return NULL;
    }
    unsigned char *bin = malloc(n);
    unsigned char *ptrs[1] = {bin};
    if (bin == NULL ||
        clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof ptrs, ptrs, NULL) !=
            CL_SUCCESS) {
        free(bin);
        return NULL;
    }
    *size = n;
    return bin;
}

static void cl_build_log(grimc_cl *cl, cl_program prog, const char *options) {
    size_t n = 0;
    clGetProgramBuildInfo(prog, cl->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
    char *text = malloc(n + 1);
    if (text == NULL) {
        cl_set_log(cl, "program build failed (options: %s)", options);
        return;
    }
    text[0] = '\0';
    clGetProgramBuildInfo(prog, cl->device, CL_PROGRAM_BUILD_LOG, n, text, NULL);
    text[n] = '\0';
    cl_set_log(cl, "program build failed on '%s' (options: %s):\n%s",
               cl->device_name, options, text);
    free(text);
}

GRIMC_RT_API int grimc_cl_require_fp16(grimc_cl *cl) {
    if (cl == NULL) {
        return GRIMC_E_ARG;
    }
    if (cl->has_fp16) {
        return GRIMC_OK;
    }
    cl_set_log(cl, "'%s | %s' does not report cl_khr_fp16; build the model "
               "with half storage (fp16-storage) or fp32 instead",
               cl->platform_name, cl->device_name);
    return GRIMC_E_NO_FP16;
}

GRIMC_RT_API int grimc_cl_build(grimc_cl *cl, const char *source, const char *options,
                   cl_program *out) {
    if (cl == NULL || source == NULL || out == NULL) {
        return GRIMC_E_ARG;
    }
    *out = NULL;
    if (options == NULL) {
        options = "";
    }
    char path[1100];
    int cached = grimc_cl_cache_path(cl, source, options, path, sizeof path) ==
                 GRIMC_OK;
    cl_key key = cl_program_key(cl, source, options);
    cl_int err = CL_SUCCESS;
    if (cached) {
        size_t size = 0;
        unsigned char *bin = cl_cache_read(path, key, &size);
        if (bin != NULL) {
            const unsigned char *bins[1] = {bin};
            cl_int status = CL_SUCCESS;
            cl_program prog = clCreateProgramWithBinary(
                cl->context, 1, &cl->device, &size, bins, &status, &err);
            free(bin);
            if (err == CL_SUCCESS && status == CL_SUCCESS &&
                clBuildProgram(prog, 1, &cl->device, options, NULL, NULL) ==
                    CL_SUCCESS) {
                cl->cache_hits++;
                *out = prog;
                return GRIMC_OK;
            }
            if (prog != NULL) {
                clReleaseProgram(prog); /* stale binary: rebuild from source */
            }
        }
    }
    cl_program prog = clCreateProgramWithSource(cl->context, 1, &source, NULL, &err);
    if (err != CL_SUCCESS) {
        return cl_fail(cl, "clCreateProgramWithSource", err);
    }
    err = clBuildProgram(prog, 1, &cl->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        if (err == CL_BUILD_PROGRAM_FAILURE || err == CL_INVALID_BUILD_OPTIONS) {
            cl_build_log(cl, prog, options);
            clReleaseProgram(prog);
            return GRIMC_E_BUILD;
        }
        clReleaseProgram(prog);
        return cl_fail(cl, "clBuildProgram", err);
    }
    if (cached) {
        size_t size = 0;
        unsigned char *bin = cl_program_binary(prog, &size);
        if (bin != NULL && cl_cache_write(cl, path, key, bin, size) == 0) {
            cl->cache_writes++;
        }
        free(bin);
    }
    *out = prog;
    return GRIMC_OK;
}

GRIMC_RT_API int grimc_cl_kernel(grimc_cl *cl, cl_program program, const char *name,
                    cl_kernel *out) {
    if (cl == NULL || program == NULL || name == NULL || out == NULL) {
        return GRIMC_E_ARG;
    }
    cl_int err = CL_SUCCESS;
    *out = clCreateKernel(program, name, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        cl_set_log(cl, "no kernel '%s' in the program: OpenCL error %d", name,
                   (int)err);
        return err == CL_INVALID_KERNEL_NAME ? GRIMC_E_BUILD
                                             : grimc_cl_status(err);
    }
    return GRIMC_OK;
}

GRIMC_RT_API int grimc_cl_arg(grimc_cl *cl, cl_kernel kernel, cl_uint index, size_t size,
                 const void *value) {
    cl_int err = clSetKernelArg(kernel, index, size, value);
    if (err != CL_SUCCESS) {
        cl_set_log(cl, "setting kernel argument %u failed: OpenCL error %d",
                   (unsigned)index, (int)err);
        return GRIMC_E_ARG;
    }
    return GRIMC_OK;
}

/* -------------------------------------------------------------- memory */

GRIMC_RT_API int grimc_cl_buffer(grimc_cl *cl, size_t size, cl_mem_flags flags,
                    const void *host, cl_mem *out) {
    if (cl == NULL || out == NULL) {
        return GRIMC_E_ARG;
    }
    *out = NULL;
    if (size == 0) {
        size = 1;
        host = NULL;
    }
    if ((cl_ulong)size > cl->max_alloc) {
        cl_set_log(cl, "a %zu-byte buffer exceeds the device's %llu-byte "
                   "allocation limit", size, (unsigned long long)cl->max_alloc);
        return GRIMC_E_NOMEM;
    }
    if (host != NULL) {
        flags |= CL_MEM_COPY_HOST_PTR;
    }
    cl_int err = CL_SUCCESS;
    *out = clCreateBuffer(cl->context, flags, size, (void *)host, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        return cl_fail(cl, "clCreateBuffer", err);
    }
    return GRIMC_OK;
}

GRIMC_RT_API int grimc_cl_write(grimc_cl *cl, cl_mem mem, size_t offset, size_t size,
                   const void *src) {
    if (cl == NULL || mem == NULL || (src == NULL && size)) {
        return GRIMC_E_ARG;
    }
    if (size == 0) {
        return GRIMC_OK;
    }
    cl_int err = clEnqueueWriteBuffer(cl->queue, mem, CL_TRUE, offset, size,
                                      src, 0, NULL, NULL);
    return err == CL_SUCCESS ? GRIMC_OK : cl_fail(cl, "clEnqueueWriteBuffer", err);
}

GRIMC_RT_API int grimc_cl_read(grimc_cl *cl, cl_mem mem, size_t offset, size_t size,
                  void *dst) {
    if (cl == NULL || mem == NULL || (dst == NULL && size)) {
        return GRIMC_E_ARG;
    }
    if (size == 0) {
        return GRIMC_OK;
    }
    cl_int err = clEnqueueReadBuffer(cl->queue, mem, CL_TRUE, offset, size, dst,
                                     0, NULL, NULL);
    return err == CL_SUCCESS ? GRIMC_OK : cl_fail(cl, "clEnqueueReadBuffer", err);
}

GRIMC_RT_API void grimc_cl_arena_free(grimc_cl_arena *arena) {
    if (arena == NULL) {
        return;
    }
    if (arena->base != NULL) {
        clReleaseMemObject(arena->base);
    }
    free(arena->offsets);
    memset(arena, 0, sizeof *arena);
}

GRIMC_RT_API int grimc_cl_arena_create(grimc_cl *cl, const grimc_buffer_life *bufs,
                          size_t n, grimc_cl_arena *out) {
    if (out == NULL) {
        return GRIMC_E_ARG;
    }
    memset(out, 0, sizeof *out);
    if (cl == NULL || (bufs == NULL && n > 0)) {
        return GRIMC_E_ARG;
    }
    out->n = n;
    out->offsets = calloc(n ? n : 1, sizeof *out->offsets);
    if (out->offsets == NULL) {
        grimc_cl_arena_free(out);
        return GRIMC_E_NOMEM;
    }
    size_t bytes = grimc_arena_plan(bufs, n, GRIMC_ALIGN, out->offsets);
    if (bytes == SIZE_MAX) {
        grimc_cl_arena_free(out);
        return GRIMC_E_ARG;
    }
    out->bytes = bytes;
    if (bytes == 0) {
        return GRIMC_OK;
    }
    int status = grimc_cl_buffer(cl, bytes, CL_MEM_READ_WRITE, NULL, &out->base);
    if (status != GRIMC_OK) {
        grimc_cl_arena_free(out);
    }
    return status;
}

/* ------------------------------------------------------------ launches */

GRIMC_RT_API int grimc_cl_launch(grimc_cl *cl, cl_kernel kernel, cl_uint dims,
                    const size_t *global, const size_t *local,
                    const char *label) {
    if (cl == NULL || kernel == NULL || global == NULL || dims < 1 || dims > 3) {
        return GRIMC_E_ARG;
    }
    for (cl_uint d = 0; d < dims; d++) {
        if (global[d] == 0) {
            return GRIMC_OK; /* an empty range launches nothing */
        }
    }
    cl_event ev = NULL;
    if (cl->profile && cl->nlaunches == cl->cap_launches) {
        size_t cap = cl->cap_launches ? 2 * cl->cap_launches : 64;
        grimc_cl_launch_record *grown =
            realloc(cl->launches, cap * sizeof *grown);
        if (grown == NULL) {
            return GRIMC_E_NOMEM;
        }
        cl->launches = grown;
        cl->cap_launches = cap;
    }
    cl_int err = clEnqueueNDRangeKernel(cl->queue, kernel, dims, NULL, global,
                                        local, 0, NULL,
                                        cl->profile ? &ev : NULL);
    if (err != CL_SUCCESS) {
        cl_set_log(cl, "launching kernel '%s' failed: OpenCL error %d",
                   label != NULL ? label : "?", (int)err);
        return grimc_cl_status(err) == GRIMC_E_NOMEM ? GRIMC_E_NOMEM
                                                     : GRIMC_E_DEVICE;
    }
    if (cl->profile) {
        cl->launches[cl->nlaunches++] =
            (grimc_cl_launch_record){label != NULL ? label : "", ev};
    }
    return GRIMC_OK;
}

GRIMC_RT_API int grimc_cl_finish(grimc_cl *cl) {
    if (cl == NULL) {
        return GRIMC_E_ARG;
    }
    cl_int err = clFinish(cl->queue);
    return err == CL_SUCCESS ? GRIMC_OK : cl_fail(cl, "clFinish", err);
}

GRIMC_RT_API size_t grimc_cl_launch_count(const grimc_cl *cl) {
    return cl != NULL ? cl->nlaunches : 0;
}

GRIMC_RT_API int grimc_cl_launch_ns(grimc_cl *cl, size_t i, const char **label,
                       uint64_t *ns) {
    if (cl == NULL || ns == NULL) {
        return GRIMC_E_ARG;
    }
    if (!cl->profile) {
        return GRIMC_E_UNSUPPORTED;
    }
    if (i >= cl->nlaunches) {
        return GRIMC_E_ARG;
    }
    cl_event ev = cl->launches[i].event;
    cl_ulong t0 = 0, t1 = 0;
    cl_int err = clWaitForEvents(1, &ev);
    if (err == CL_SUCCESS) {
        err = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0,
                                      &t0, NULL);
    }
    if (err == CL_SUCCESS) {
        err = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1,
                                      &t1, NULL);
    }
    if (err != CL_SUCCESS) {
        return cl_fail(cl, "reading a profiling event", err);
    }
    *ns = t1 >= t0 ? (uint64_t)(t1 - t0) : 0;
    if (label != NULL) {
        *label = cl->launches[i].label;
    }
    return GRIMC_OK;
}

GRIMC_RT_API void grimc_cl_reset_launches(grimc_cl *cl) {
    if (cl == NULL) {
        return;
    }
    for (size_t i = 0; i < cl->nlaunches; i++) {
        clReleaseEvent(cl->launches[i].event);
    }
    cl->nlaunches = 0;
}

/* ---------------------------------------------------------- half floats */

static uint16_t cl_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) { /* inf or NaN (keep a quiet NaN) */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    }
    if (absx >= 0x477ff000u) { /* rounds to >= 65520: overflow */
        return (uint16_t)(sign | 0x7c00u);
    }
    if (absx < 0x38800000u) { /* below 2^-14: subnormal half or zero */
        if (absx < 0x33000000u) { /* below 2^-25: rounds to zero */
            return sign;
        }
        uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(absx >> 23); /* 14..24 */
        uint32_t half = mant >> shift;
        uint32_t rest = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1u))) {
            half++;
        }
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((absx >> 13) - (112u << 10)); /* rebias exponent 127 -> 15 */
    uint32_t rest = absx & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) {
        h++; /* may carry into the exponent: still correct */
    }
    return (uint16_t)(sign | h);
}

static float cl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, x;
    if (exp == 0x1fu) {
        x = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        x = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {
        x = sign;
    } else { /* subnormal: normalize */
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while ((mant & 0x400u) == 0);
        x = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

GRIMC_RT_API void grimc_cl_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        dst[i] = cl_f32_to_f16(src[i]);
    }
}

GRIMC_RT_API void grimc_cl_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        dst[i] = cl_f16_to_f32(src[i]);
    }
}
