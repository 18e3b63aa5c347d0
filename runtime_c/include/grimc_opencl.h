/*
 * grimc_opencl.h - host runtime of grimc's OpenCL target (runtime_c/src/opencl.c).
 *
 * Built on grimc_rt.h (status codes, the arena planner) and the OpenCL 1.2
 * C API through the ICD loader (link with -lOpenCL). It does what every
 * generated OpenCL model needs and nothing op-specific:
 *
 *   device      pick a platform/device: an explicit selector, else the
 *               GRIMC_OPENCL_DEVICE environment variable, else the first GPU,
 *               else the first device. A selector is a decimal index into
 *               the devices of all platforms in enumeration order, or a
 *               case-insensitive substring of "<platform> <device>".
 *   programs    build embedded sources with -D specializations, through an
 *               on-disk program-binary cache keyed by device, platform,
 *               driver version, build options and the sources.
 *   memory      device buffers; an arena placed by grimc_arena_plan as one
 *               device buffer, kernels addressing planned buffers by offset
 *               (no sub-buffers: drivers track sub-buffer contents
 *               unreliably, e.g. PoCL's implicit migrations and Oclgrind's
 *               shadow memory, and offsets need no base-address alignment).
 *   profiling   optional: one event per launch, read back as nanoseconds.
 *
 * Errors are GRIMC_E_* codes (grimc_rt.h, grimc_strerror).
 * grimc_cl_log() gives the detail of the last failure (the build log of a
 * failed build, the device list when no device matched, the OpenCL error).
 */
#ifndef GRIMC_OPENCL_H
#define GRIMC_OPENCL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "grimc_rt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: the GRIMC_E_* of grimc_rt.h. The OpenCL ones are
 * GRIMC_E_NO_DEVICE, GRIMC_E_BUILD (log: grimc_cl_log), GRIMC_E_DEVICE
 * (log names the call) and GRIMC_E_NO_FP16; out of device memory is
 * GRIMC_E_NOMEM. */

/* A GRIMC_E_* status for an OpenCL error code (CL_SUCCESS -> GRIMC_OK). */
GRIMC_RT_API int grimc_cl_status(cl_int err);

/* Environment variables read when the matching option is NULL. */
#define GRIMC_OPENCL_DEVICE_ENV "GRIMC_OPENCL_DEVICE"
#define GRIMC_OPENCL_CACHE_ENV "GRIMC_OPENCL_CACHE"

typedef struct grimc_cl_options {
    /* Device selector (see top); NULL: $GRIMC_OPENCL_DEVICE, else default. */
    const char *device;
    /* Program-binary cache directory; NULL: $GRIMC_OPENCL_CACHE, else
     * $XDG_CACHE_HOME/grimc/opencl, else $HOME/.cache/grimc/opencl.
     * "" (here or in the environment) disables the cache. */
    const char *cache_dir;
    /* Nonzero: create a profiling queue and record an event per launch. */
    int profile;
} grimc_cl_options;

/* One recorded launch (profiling). */
typedef struct grimc_cl_launch_record {
    const char *label; /* the label given to grimc_cl_launch (not copied) */
    cl_event event;
} grimc_cl_launch_record;

typedef struct grimc_cl {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    char platform_name[256];
    char device_name[256];
    char driver_version[128];
    char device_version[128];
    cl_ulong max_alloc;    /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
    int has_fp16;          /* cl_khr_fp16 is supported */
    int profile;
    char cache_dir[1024];  /* "" when the cache is disabled */
    int cache_hits;        /* programs loaded from the cache since create */
    int cache_writes;      /* programs written to the cache since create */
    grimc_cl_launch_record *launches;
    size_t nlaunches, cap_launches;
    char *log;             /* detail of the last failure, or NULL */
} grimc_cl;

/* Select a device and create context and in-order queue. opts may be NULL
 * (all defaults). On failure *out is NULL and, for GRIMC_E_NO_DEVICE and
 * GRIMC_E_DEVICE, the detail is written to `log` (may be NULL) of size
 * `log_size`, since there is no object to hold it. */
GRIMC_RT_API int grimc_cl_create(const grimc_cl_options *opts, grimc_cl **out, char *log,
                    size_t log_size);
GRIMC_RT_API void grimc_cl_destroy(grimc_cl *cl);

/* Detail of the last failure on `cl` ("" if none). */
GRIMC_RT_API const char *grimc_cl_log(const grimc_cl *cl);

/* Number of OpenCL devices over all platforms (0 without a platform). */
GRIMC_RT_API int grimc_cl_device_count(void);

/* GRIMC_OK if the device supports half arithmetic (cl_khr_fp16), else
 * GRIMC_E_NO_FP16 with the device named in grimc_cl_log. Models built for
 * native half (--precision fp16) call it before building their kernels. */
GRIMC_RT_API int grimc_cl_require_fp16(grimc_cl *cl);

/* Build `source` with `options` (e.g. "-DK=64 -cl-fast-relaxed-math") for
 * cl's device, using the binary cache when enabled. A binary that fails to
 * load falls back to a source build (and is rewritten). On build failure
 * returns GRIMC_E_BUILD and grimc_cl_log holds the build log. */
GRIMC_RT_API int grimc_cl_build(grimc_cl *cl, const char *source, const char *options,
                   cl_program *out);

/* The cache file a program with these sources and options maps to, written
 * into path (size n); GRIMC_E_ARG when the cache is disabled or n is short. */
GRIMC_RT_API int grimc_cl_cache_path(const grimc_cl *cl, const char *source,
                        const char *options, char *path, size_t n);

/* A kernel of a built program; GRIMC_E_BUILD (log names it) if absent. */
GRIMC_RT_API int grimc_cl_kernel(grimc_cl *cl, cl_program program, const char *name,
                    cl_kernel *out);

/* clSetKernelArg with a status code (log names the argument on failure). */
GRIMC_RT_API int grimc_cl_arg(grimc_cl *cl, cl_kernel kernel, cl_uint index, size_t size,
                 const void *value);

/* Device buffer of `size` bytes (0 allowed: 1 byte is allocated). Out of
 * device memory, or a size above the device's allocation limit, is
 * GRIMC_E_NOMEM. `host` (may be NULL) is copied in when given. */
GRIMC_RT_API int grimc_cl_buffer(grimc_cl *cl, size_t size, cl_mem_flags flags,
                    const void *host, cl_mem *out);

/* Blocking copies between host memory and a buffer. */
GRIMC_RT_API int grimc_cl_write(grimc_cl *cl, cl_mem mem, size_t offset, size_t size,
                   const void *src);
GRIMC_RT_API int grimc_cl_read(grimc_cl *cl, cl_mem mem, size_t offset, size_t size,
                  void *dst);

/* Activation memory: one device buffer holding n planned buffers. */
typedef struct grimc_cl_arena {
    cl_mem base;      /* NULL when every buffer is empty */
    size_t bytes;     /* planned size */
    size_t n;
    size_t *offsets;  /* byte offset of buffer i in base, GRIMC_ALIGN-aligned */
} grimc_cl_arena;

/* Plan `bufs` with grimc_arena_plan (GRIMC_ALIGN) and allocate the arena.
 * On failure *out is zeroed and nothing leaks. */
GRIMC_RT_API int grimc_cl_arena_create(grimc_cl *cl, const grimc_buffer_life *bufs,
                          size_t n, grimc_cl_arena *out);
GRIMC_RT_API void grimc_cl_arena_free(grimc_cl_arena *arena);

/* Enqueue an NDRange of `dims` (1..3) dimensions; local may be NULL (the
 * driver picks). With profiling on, the launch is recorded under `label`. */
GRIMC_RT_API int grimc_cl_launch(grimc_cl *cl, cl_kernel kernel, cl_uint dims,
                    const size_t *global, const size_t *local,
                    const char *label);

/* clFinish with a status code. */
GRIMC_RT_API int grimc_cl_finish(grimc_cl *cl);

/* Profiling: launches recorded since create / the last reset. */
GRIMC_RT_API size_t grimc_cl_launch_count(const grimc_cl *cl);

/* Device time of launch i in nanoseconds (END - START), waiting for it to
 * finish; label (may be NULL) gets its label. GRIMC_E_ARG if i is out of
 * range, GRIMC_E_UNSUPPORTED if profiling is off. */
GRIMC_RT_API int grimc_cl_launch_ns(grimc_cl *cl, size_t i, const char **label,
                       uint64_t *ns);

/* Release the recorded events and start counting from zero. */
GRIMC_RT_API void grimc_cl_reset_launches(grimc_cl *cl);

/* IEEE binary16 <-> binary32 for half storage (round to nearest even;
 * overflow gives infinity, NaN stays NaN), n elements. */
GRIMC_RT_API void grimc_cl_f32_to_f16(const float *src, uint16_t *dst, size_t n);
GRIMC_RT_API void grimc_cl_f16_to_f32(const uint16_t *src, float *dst, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* GRIMC_OPENCL_H */
