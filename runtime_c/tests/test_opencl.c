/* OpenCL host runtime, on a real OpenCL device (PoCL in CI).
 *
 * Usage: test_opencl CACHE_DIR   (an empty, writable directory)
 * Every test that launches a kernel checks its results, so a run where no
 * kernel executed on a device cannot pass. */
#define _POSIX_C_SOURCE 200809L
#include "grimc_opencl.h"
#include "grimc_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *cache_root;

/* y[i] = SCALE * x[i] + off: SCALE is a -D specialization. */
static const char *AXPB_SRC =
    "__kernel void axpb(__global const float *x, __global float *y, float off) {\n"
    "    size_t i = get_global_id(0);\n"
    "    y[i] = SCALE * x[i] + off;\n"
    "}\n";

static void cache_dir_for(const char *name, char *dst, size_t n) {
    snprintf(dst, n, "%s/%s", cache_root, name);
}

static grimc_cl *make(const char *device, const char *cache, int profile) {
    grimc_cl_options o = {device, cache, profile};
    grimc_cl *cl = NULL;
    char log[1024];
    int st = grimc_cl_create(&o, &cl, log, sizeof log);
    if (st != GRIMC_OK) {
        fprintf(stderr, "grimc_cl_create: %s: %s\n", grimc_strerror(st), log);
    }
    return cl;
}

/* Run axpb over n floats with `options`; 0 if every output is right. */
static int run_axpb(grimc_cl *cl, const char *options, float scale, int n) {
    cl_program prog = NULL;
    cl_kernel k = NULL;
    cl_mem x = NULL, y = NULL;
    float *hx = malloc(n * sizeof *hx), *hy = malloc(n * sizeof *hy);
    int bad = hx == NULL || hy == NULL;
    for (int i = 0; !bad && i < n; i++) {
        hx[i] = (float)i * 0.5f - 3.0f;
        hy[i] = -1e30f;
    }
    float off = 0.25f;
    size_t global = (size_t)n;
    bad = bad || grimc_cl_build(cl, AXPB_SRC, options, &prog) != GRIMC_OK ||
          grimc_cl_kernel(cl, prog, "axpb", &k) != GRIMC_OK ||
          grimc_cl_buffer(cl, n * sizeof(float), CL_MEM_READ_ONLY, hx, &x) != GRIMC_OK ||
          grimc_cl_buffer(cl, n * sizeof(float), CL_MEM_WRITE_ONLY, NULL, &y) != GRIMC_OK ||
          grimc_cl_arg(cl, k, 0, sizeof x, &x) != GRIMC_OK ||
          grimc_cl_arg(cl, k, 1, sizeof y, &y) != GRIMC_OK ||
          grimc_cl_arg(cl, k, 2, sizeof off, &off) != GRIMC_OK ||
          grimc_cl_launch(cl, k, 1, &global, NULL, "axpb") != GRIMC_OK ||
          grimc_cl_read(cl, y, 0, n * sizeof(float), hy) != GRIMC_OK;
    for (int i = 0; !bad && i < n; i++) {
        bad = hy[i] != scale * hx[i] + off;
    }
    if (bad) {
        fprintf(stderr, "axpb failed: %s\n", grimc_cl_log(cl));
    }
    if (x) clReleaseMemObject(x);
    if (y) clReleaseMemObject(y);
    if (k) clReleaseKernel(k);
    if (prog) clReleaseProgram(prog);
    free(hx);
    free(hy);
    return bad;
}

static void test_default_device_runs_a_kernel(void) {
    grimc_cl *cl = make(NULL, "", 1);
    CHECK(cl != NULL);
    if (cl == NULL) return;
    CHECK(strlen(cl->device_name) > 0 && strlen(cl->platform_name) > 0);
    CHECK(run_axpb(cl, "-DSCALE=2.0f", 2.0f, 1000) == 0);
    /* The launch was recorded and its event completed on the device. */
    CHECK(grimc_cl_launch_count(cl) == 1);
    const char *label = NULL;
    uint64_t ns = 0;
    CHECK(grimc_cl_launch_ns(cl, 0, &label, &ns) == GRIMC_OK);
    CHECK(label != NULL && strcmp(label, "axpb") == 0);
    CHECK(grimc_cl_launch_ns(cl, 1, &label, &ns) == GRIMC_E_ARG);
    grimc_cl_reset_launches(cl);
    CHECK(grimc_cl_launch_count(cl) == 0);
    printf("device: %s | %s | %s\n", cl->platform_name, cl->device_name,
           cl->driver_version);
    grimc_cl_destroy(cl);
}

static void test_specialization_changes_the_program(void) {
    grimc_cl *cl = make(NULL, "", 0);
    CHECK(cl != NULL);
    if (cl == NULL) return;
    CHECK(run_axpb(cl, "-DSCALE=-3.0f", -3.0f, 17) == 0);
    CHECK(run_axpb(cl, "-DSCALE=4.0f", 4.0f, 17) == 0);
    /* No profiling queue: no records, and reading one is unsupported. */
    uint64_t ns = 0;
    CHECK(grimc_cl_launch_count(cl) == 0);
    CHECK(grimc_cl_launch_ns(cl, 0, NULL, &ns) == GRIMC_E_UNSUPPORTED);
    grimc_cl_destroy(cl);
}

static void test_selection_by_index_name_and_env(void) {
    grimc_cl *first = make("0", "", 0);
    CHECK(first != NULL);
    if (first == NULL) return;
    /* A lower-cased piece of the device name selects the same device. */
    char piece[8] = {0};
    for (int i = 0; i < 6 && first->device_name[i]; i++) {
        piece[i] = (char)(first->device_name[i] | 0x20);
    }
    grimc_cl *byname = make(piece, "", 0);
    CHECK(byname != NULL && byname->device == first->device);
    grimc_cl_destroy(byname);

    CHECK(setenv(GRIMC_OPENCL_DEVICE_ENV, "0", 1) == 0);
    grimc_cl *byenv = make(NULL, "", 0);
    CHECK(byenv != NULL && byenv->device == first->device);
    grimc_cl_destroy(byenv);

    /* The env var is honoured: a selector matching nothing fails. */
    CHECK(setenv(GRIMC_OPENCL_DEVICE_ENV, "no-such-device-zz", 1) == 0);
    grimc_cl *none = NULL;
    char log[1024];
    CHECK(grimc_cl_create(NULL, &none, log, sizeof log) == GRIMC_E_NO_DEVICE);
    CHECK(none == NULL);
    CHECK(strstr(log, "no-such-device-zz") != NULL);
    CHECK(strstr(log, first->device_name) != NULL); /* lists the devices */
    unsetenv(GRIMC_OPENCL_DEVICE_ENV);

    /* An index past the last device fails the same way. */
    char idx[32];
    snprintf(idx, sizeof idx, "%d", grimc_cl_device_count());
    grimc_cl_options o = {idx, "", 0};
    CHECK(grimc_cl_create(&o, &none, log, sizeof log) == GRIMC_E_NO_DEVICE);
    CHECK(grimc_cl_device_count() >= 1);
    CHECK(grimc_cl_create(NULL, NULL, NULL, 0) == GRIMC_E_ARG);
    grimc_cl_destroy(first);
}

static void test_build_failure_reports_the_log(void) {
    grimc_cl *cl = make(NULL, "", 0);
    CHECK(cl != NULL);
    if (cl == NULL) return;
    cl_program prog = NULL;
    int st = grimc_cl_build(cl, "__kernel void f(__global float *y) { y[0] = undefined_name; }",
                            "-DMARK=1", &prog);
    CHECK(st == GRIMC_E_BUILD);
    CHECK(prog == NULL);
    CHECK(strstr(grimc_cl_log(cl), "undefined_name") != NULL);
    CHECK(strstr(grimc_cl_log(cl), "-DMARK=1") != NULL);
    CHECK(strcmp(grimc_strerror(GRIMC_E_BUILD), "OpenCL program build failed") == 0);
    CHECK(strcmp(grimc_strerror(GRIMC_E_NO_DEVICE), "no OpenCL platform or no matching device") == 0);
    CHECK(strcmp(grimc_strerror(GRIMC_E_DEVICE), "OpenCL error") == 0);
    /* A kernel name the program lacks. */
    CHECK(grimc_cl_build(cl, AXPB_SRC, "-DSCALE=1.0f", &prog) == GRIMC_OK);
    cl_kernel k = NULL;
    CHECK(grimc_cl_kernel(cl, prog, "nope", &k) == GRIMC_E_BUILD);
    CHECK(k == NULL && strstr(grimc_cl_log(cl), "nope") != NULL);
    clReleaseProgram(prog);
    grimc_cl_destroy(cl);
}

/* The native-half check agrees with the device's own extension list. */
static void test_fp16_check_matches_the_device(void) {
    grimc_cl *cl = make(NULL, "", 0);
    CHECK(cl != NULL);
    if (cl == NULL) return;
    char ext[8192] = {0};
    CHECK(clGetDeviceInfo(cl->device, CL_DEVICE_EXTENSIONS, sizeof ext - 1, ext, NULL) ==
          CL_SUCCESS);
    int st = grimc_cl_require_fp16(cl);
    if (strstr(ext, "cl_khr_fp16") != NULL) {
        CHECK(st == GRIMC_OK);
    } else {
        CHECK(st == GRIMC_E_NO_FP16);
        CHECK(strstr(grimc_cl_log(cl), cl->device_name) != NULL);
        CHECK(strstr(grimc_cl_log(cl), "cl_khr_fp16") != NULL);
    }
    CHECK(grimc_cl_require_fp16(NULL) == GRIMC_E_ARG);
    CHECK(strstr(grimc_strerror(GRIMC_E_NO_FP16), "cl_khr_fp16") != NULL);
    grimc_cl_destroy(cl);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_binary_cache(void) {
    char dir[1024], path[1200], other[1200];
    cache_dir_for("bins/nested", dir, sizeof dir);
    grimc_cl *cl = make(NULL, dir, 0);
    CHECK(cl != NULL);
    if (cl == NULL) return;
    CHECK(grimc_cl_cache_path(cl, AXPB_SRC, "-DSCALE=5.0f", path, sizeof path) == GRIMC_OK);
    CHECK(strncmp(path, dir, strlen(dir)) == 0);
    CHECK(grimc_cl_cache_path(cl, AXPB_SRC, "-DSCALE=6.0f", other, sizeof other) == GRIMC_OK);
    CHECK(strcmp(path, other) != 0); /* options are part of the key */
    CHECK(file_size(path) < 0);
    CHECK(run_axpb(cl, "-DSCALE=5.0f", 5.0f, 64) == 0);
    CHECK(cl->cache_writes == 1 && cl->cache_hits == 0);
    CHECK(file_size(path) > 32);
    grimc_cl_destroy(cl);

    /* A fresh context loads the binary instead of compiling. */
    cl = make(NULL, dir, 0);
    CHECK(cl != NULL);
    if (cl == NULL) return;
    CHECK(run_axpb(cl, "-DSCALE=5.0f", 5.0f, 64) == 0);
    CHECK(cl->cache_hits == 1 && cl->cache_writes == 0);

    /* A corrupt entry is ignored and replaced by a source build. */
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 40, SEEK_SET);
        fputs("garbage garbage", f);
        fseek(f, 0, SEEK_END);
        fputs("trailing", f); /* also breaks the length check */
        fclose(f);
    }
    CHECK(run_axpb(cl, "-DSCALE=5.0f", 5.0f, 64) == 0);
    CHECK(cl->cache_writes == 1);
    grimc_cl_destroy(cl);

    /* Cache disabled: no path, nothing written. */
    cl = make(NULL, "", 0);
    CHECK(cl != NULL);
    if (cl == NULL) return;
    CHECK(grimc_cl_cache_path(cl, AXPB_SRC, "", path, sizeof path) == GRIMC_E_ARG);
    CHECK(run_axpb(cl, "-DSCALE=7.0f", 7.0f, 8) == 0);
    CHECK(cl->cache_writes == 0 && cl->cache_hits == 0);
    grimc_cl_destroy(cl);

    /* GRIMC_OPENCL_CACHE is the default directory. */
    char envdir[1024];
    cache_dir_for("from-env", envdir, sizeof envdir);
    CHECK(setenv(GRIMC_OPENCL_CACHE_ENV, envdir, 1) == 0);
    cl = make(NULL, NULL, 0);
    CHECK(cl != NULL && strcmp(cl->cache_dir, envdir) == 0);
    unsetenv(GRIMC_OPENCL_CACHE_ENV);
    grimc_cl_destroy(cl);
}

static void test_out_of_device_memory(void) {
    grimc_cl *cl = make(NULL, "", 0);
    CHECK(cl != NULL);
    if (cl == NULL) return;
    cl_mem m = NULL;
    if (cl->max_alloc < SIZE_MAX) {
        CHECK(grimc_cl_buffer(cl, (size_t)cl->max_alloc + 1, CL_MEM_READ_WRITE,
                              NULL, &m) == GRIMC_E_NOMEM);
        CHECK(m == NULL);
        CHECK(strstr(grimc_cl_log(cl), "allocation limit") != NULL);
    }
    CHECK(grimc_cl_buffer(cl, 0, CL_MEM_READ_WRITE, NULL, &m) == GRIMC_OK);
    CHECK(m != NULL);
    clReleaseMemObject(m);
    CHECK(grimc_cl_status(CL_MEM_OBJECT_ALLOCATION_FAILURE) == GRIMC_E_NOMEM);
    CHECK(grimc_cl_status(CL_BUILD_PROGRAM_FAILURE) == GRIMC_E_BUILD);
    CHECK(grimc_cl_status(CL_DEVICE_NOT_FOUND) == GRIMC_E_NO_DEVICE);
    CHECK(grimc_cl_status(CL_INVALID_KERNEL) == GRIMC_E_DEVICE);
    grimc_cl_destroy(cl);
}

/* y = x + 1 between two planned buffers of one arena, addressed by offset. */
static const char *COPY_SRC =
    "__kernel void inc(__global const float *x, const uint xo, __global float *y, const uint yo) {\n"
    "    size_t i = get_global_id(0);\n"
    "    y[yo + i] = x[xo + i] + 1.0f;\n"
    "}\n";

static void test_arena_offsets(void) {
    grimc_cl *cl = make(NULL, "", 0);
    CHECK(cl != NULL);
    if (cl == NULL) return;
    /* b0 live 0..1, b1 live 1..2, b2 live 2..3 (may reuse b0), b3 empty. */
    const grimc_buffer_life lives[4] = {
        {100 * 4, 0, 1}, {37 * 4, 1, 2}, {100 * 4, 2, 3}, {0, 0, 3}};
    grimc_cl_arena a;
    CHECK(grimc_cl_arena_create(cl, lives, 4, &a) == GRIMC_OK);
    size_t expect[4];
    CHECK(grimc_arena_plan(lives, 4, GRIMC_ALIGN, expect) == a.bytes);
    for (int i = 0; i < 4; i++) {
        CHECK(a.offsets[i] == expect[i]);
    }
    CHECK(a.base != NULL && a.n == 4);
    CHECK(a.offsets[2] == a.offsets[0]); /* disjoint lives share memory */

    float hx[37], hy[37];
    for (int i = 0; i < 37; i++) hx[i] = (float)(i * i);
    cl_program prog = NULL;
    cl_kernel k = NULL;
    size_t global = 37;
    cl_uint xo = (cl_uint)(a.offsets[0] / 4), yo = (cl_uint)(a.offsets[1] / 4);
    CHECK(grimc_cl_write(cl, a.base, a.offsets[0], sizeof hx, hx) == GRIMC_OK);
    CHECK(grimc_cl_build(cl, COPY_SRC, "", &prog) == GRIMC_OK);
    CHECK(grimc_cl_kernel(cl, prog, "inc", &k) == GRIMC_OK);
    CHECK(grimc_cl_arg(cl, k, 0, sizeof(cl_mem), &a.base) == GRIMC_OK);
    CHECK(grimc_cl_arg(cl, k, 1, sizeof xo, &xo) == GRIMC_OK);
    CHECK(grimc_cl_arg(cl, k, 2, sizeof(cl_mem), &a.base) == GRIMC_OK);
    CHECK(grimc_cl_arg(cl, k, 3, sizeof yo, &yo) == GRIMC_OK);
    CHECK(grimc_cl_launch(cl, k, 1, &global, NULL, "inc") == GRIMC_OK);
    CHECK(grimc_cl_read(cl, a.base, a.offsets[1], sizeof hy, hy) == GRIMC_OK);
    int bad = 0;
    for (int i = 0; i < 37; i++) bad += hy[i] != hx[i] + 1.0f;
    CHECK(bad == 0);
    CHECK(grimc_cl_arg(cl, k, 7, sizeof(cl_mem), &a.base) == GRIMC_E_ARG);
    clReleaseKernel(k);
    clReleaseProgram(prog);
    grimc_cl_arena_free(&a);
    CHECK(a.base == NULL && a.n == 0);

    /* A bad interval is rejected without leaking. */
    const grimc_buffer_life badlife[1] = {{64, 3, 1}};
    CHECK(grimc_cl_arena_create(cl, badlife, 1, &a) == GRIMC_E_ARG);
    CHECK(grimc_cl_arena_create(cl, NULL, 0, &a) == GRIMC_OK && a.bytes == 0);
    grimc_cl_arena_free(&a);
    grimc_cl_destroy(cl);
}

/* Half conversion against the compiler's _Float16: every half round-trips,
 * and a stride through all floats rounds the same way. */
static void test_half_conversion(void) {
    int bad = 0;
    for (uint32_t v = 0; v < 65536; v++) {
        uint16_t h = (uint16_t)v, back;
        _Float16 r;
        memcpy(&r, &h, sizeof r);
        float f, ref = (float)r;
        grimc_cl_f16_to_f32(&h, &f, 1);
        bad += memcmp(&f, &ref, sizeof f) != 0 && !(f != f && ref != ref);
        grimc_cl_f32_to_f16(&f, &back, 1);
        bad += back != h && f == f;
    }
    for (uint64_t u = 0; u < 0x100000000ull; u += 9973) {
        uint32_t x = (uint32_t)u;
        float f;
        memcpy(&f, &x, sizeof f);
        uint16_t h, want;
        _Float16 r = (_Float16)f;
        memcpy(&want, &r, sizeof want);
        grimc_cl_f32_to_f16(&f, &h, 1);
        bad += h != want && f == f;
    }
    CHECK(bad == 0);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_opencl CACHE_DIR\n");
        return 2;
    }
    cache_root = argv[1];
    RUN(test_default_device_runs_a_kernel);
    RUN(test_specialization_changes_the_program);
    RUN(test_selection_by_index_name_and_env);
    RUN(test_build_failure_reports_the_log);
    RUN(test_binary_cache);
    RUN(test_out_of_device_memory);
    RUN(test_arena_offsets);
    RUN(test_half_conversion);
    RUN(test_fp16_check_matches_the_device);
    return TEST_REPORT();
}
