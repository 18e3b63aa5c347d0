/*
 * grimc_rt.h - the small runtime that grimc-generated kernels link against.
 *
 * Four independent pieces, one source file each under runtime_c/src/:
 *   arena.c   liveness-based activation memory planner + aligned allocation
 *   pool.c    persistent pthread pool with a blocking, statically partitioned
 *             parallel_for (the calling thread takes part)
 *   timing.c  monotonic clock and medians for benchmark harnesses
 *   blob.c    loader/validator of the GRIMCWB1 weight blob (format below)
 *
 * Shared scalar math (activations with ONNX semantics) is header-only in
 * grimc_math.h; the .incbin embedding macro is in grimc_incbin.h.
 *
 * C11 + POSIX threads. No OpenMP, no global state except one thread-local
 * pointer in the pool, so static aarch64 builds work.
 */
#ifndef GRIMC_RT_H
#define GRIMC_RT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Default alignment of arena offsets, arena blocks and blob entries: one
 * cache line, and enough for any AVX-512 / NEON aligned load. */
#define GRIMC_ALIGN 64

/* Linkage of every runtime function: external when runtime_c/src/ is built
 * as a library (its own tests); grimc defines it as `static` where it inlines
 * the runtime into a generated model, so that any number of models link into
 * one program without clashing symbols. */
#ifndef GRIMC_RT_API
#define GRIMC_RT_API
#endif

/* ------------------------------------------------------------------------ */
/* Status codes (shared by all functions that can fail).                    */
/* ------------------------------------------------------------------------ */

enum {
    GRIMC_OK = 0,
    GRIMC_E_ARG = -1,       /* NULL pointer or invalid argument */
    GRIMC_E_IO = -2,        /* file could not be opened or read */
    GRIMC_E_NOMEM = -3,     /* allocation failed */
    GRIMC_E_MAGIC = -4,     /* blob does not start with "GRIMCWB1" */
    GRIMC_E_VERSION = -5,   /* unsupported blob version */
    GRIMC_E_TRUNCATED = -6, /* blob shorter than its header says */
    GRIMC_E_SIZE = -7,      /* blob longer than its header says */
    GRIMC_E_BOUNDS = -8,    /* table or an entry lies outside the blob */
    GRIMC_E_ALIGN = -9,     /* base pointer or entry offset not 64-aligned */
    GRIMC_E_UNSUPPORTED = -10, /* the model was built without this feature */
    GRIMC_E_CHECKSUM = -11, /* blob content does not match its checksum */
    GRIMC_E_LAYOUT = -12,   /* blob entries differ from what the model expects */
    GRIMC_E_RANGE = -13,    /* an integer input holds a value out of its range */
    /* OpenCL target (grimc_opencl.h); out of device memory is GRIMC_E_NOMEM */
    GRIMC_E_NO_DEVICE = -20, /* no OpenCL platform, or no device matches */
    GRIMC_E_BUILD = -21,     /* OpenCL program build failed */
    GRIMC_E_DEVICE = -22,    /* any other OpenCL error */
    GRIMC_E_NO_FP16 = -23    /* device lacks cl_khr_fp16 (half arithmetic) */
};

/* Static English message for a status code; never NULL. */
GRIMC_RT_API const char *grimc_strerror(int status);

/* ------------------------------------------------------------------------ */
/* Aligned memory and the arena planner.                                    */
/* ------------------------------------------------------------------------ */

/* Allocate `size` bytes aligned to `alignment` (a power of two; 0 means
 * GRIMC_ALIGN). Returns NULL on failure. size 0 still returns a unique
 * pointer. Release with grimc_aligned_free. */
GRIMC_RT_API void *grimc_aligned_alloc(size_t alignment, size_t size);
GRIMC_RT_API void grimc_aligned_free(void *ptr);

/* One intermediate buffer: `size` bytes, live for ops first_op..last_op
 * inclusive (op indices in execution order). */
typedef struct grimc_buffer_life {
    size_t size;
    int32_t first_op;
    int32_t last_op;
} grimc_buffer_life;

/* Greedy-by-size arena planner (the TFLite "greedy by size" scheme):
 * buffers are placed largest first (ties: earlier first_op, then lower
 * index, so the plan is deterministic), each at the lowest `alignment`-
 * aligned offset that does not overlap any already placed buffer whose
 * live interval intersects its own.
 *
 * Writes one offset per buffer to offsets_out[0..n) and returns the arena
 * size needed: max(offset + size). `alignment` 0 means GRIMC_ALIGN.
 * Returns SIZE_MAX (offsets_out unspecified) if alignment is not a power of
 * two, a pointer is NULL with n > 0, an interval has first_op > last_op,
 * the size arithmetic overflows, or scratch allocation fails. */
GRIMC_RT_API size_t grimc_arena_plan(const grimc_buffer_life *bufs, size_t n,
                        size_t alignment, size_t *offsets_out);

/* Lower bound for any plan: the largest total size of buffers live at the
 * same op (saturates at SIZE_MAX). Useful to report planner efficiency. */
GRIMC_RT_API size_t grimc_arena_live_peak(const grimc_buffer_life *bufs, size_t n);

/* ------------------------------------------------------------------------ */
/* Thread pool.                                                             */
/* ------------------------------------------------------------------------ */

typedef struct grimc_pool grimc_pool;

/* Task callback: `task` in [0, ntasks), `thread` in [0, nthreads) is the
 * index of the executing thread (0 = the caller), e.g. to pick scratch. */
typedef void (*grimc_task_fn)(void *ctx, int task, int thread);

/* Create a pool of `nthreads` threads counting the caller, i.e. nthreads-1
 * workers are started. nthreads <= 0 means the number of online CPUs.
 * nthreads == 1 gives a valid pool with no workers. NULL on failure. */
GRIMC_RT_API grimc_pool *grimc_pool_create(int nthreads);

/* Stop and join the workers. NULL is a no-op. Must not race with
 * grimc_parallel_for on the same pool. */
GRIMC_RT_API void grimc_pool_destroy(grimc_pool *pool);

/* Bracket one inference: while inside, the calling thread is kept on the
 * CPU the pool was created on, away from the workers' pinned CPUs (see
 * pool.c), and leave restores its affinity. No-ops for NULL or an unpinned
 * pool. Not nestable; one caller at a time. */
GRIMC_RT_API void grimc_pool_enter(grimc_pool *pool);
GRIMC_RT_API void grimc_pool_leave(grimc_pool *pool);

/* Total threads of the pool including the caller; 1 for NULL. */
GRIMC_RT_API int grimc_pool_threads(const grimc_pool *pool);

/* Number of online CPUs (at least 1). */
GRIMC_RT_API int grimc_cpu_count(void);

/* Run fn(ctx, task, thread) for every task in [0, ntasks) and return when
 * all have finished; all writes made by tasks are then visible to the
 * caller.
 *
 * Static partition: with T = pool threads and b(t) = ceil(t*ntasks/T),
 * thread t runs the contiguous range [b(t), b(t+1)) in increasing order.
 * So with ntasks == T task i runs on thread i, and a compile-time
 * load-balanced split maps 1:1 onto threads. Thread 0 is the caller.
 *
 * Runs inline on the caller (thread 0) when pool is NULL, has 1 thread, or
 * ntasks == 1. A nested call from inside a task of the same pool runs
 * inline on the current thread, keeping its thread index, instead of
 * deadlocking. Calls from different external threads on one pool are
 * serialized. */
GRIMC_RT_API void grimc_parallel_for(grimc_pool *pool, int ntasks, grimc_task_fn fn,
                        void *ctx);

/* ------------------------------------------------------------------------ */
/* Timing.                                                                  */
/* ------------------------------------------------------------------------ */

/* CLOCK_MONOTONIC in nanoseconds. */
GRIMC_RT_API uint64_t grimc_now_ns(void);

/* Median of n values; REORDERS the array (sorts it). For even n the mean of
 * the two middle values (u64: rounded down, no overflow). n == 0 gives NaN
 * (f64) or 0 (u64). NaNs in the f64 input sort last. */
GRIMC_RT_API double grimc_median_f64(double *values, size_t n);
GRIMC_RT_API uint64_t grimc_median_u64(uint64_t *values, size_t n);

/* ------------------------------------------------------------------------ */
/* Weight blob, format "GRIMCWB1" version 2.                                */
/* ------------------------------------------------------------------------ */
/*
 * All integers little-endian. Offsets are from the start of the blob.
 *
 *   offset  size       field
 *   0       8          magic: the 8 ASCII bytes "GRIMCWB1" (no NUL)
 *   8       4          u32 version = 2
 *   12      4          u32 count: number of entries
 *   16      8          u64 total_size: size of the whole blob in bytes
 *                      (header + table + padding + data); the file size
 *                      must equal it exactly
 *   24      8          u64 checksum: CRC-32 (zlib's) of the whole blob with
 *                      these 8 bytes read as zero (upper 32 bits are 0)
 *   32      16*count   table; entry i = { u64 offset, u64 nbytes }
 *   ...                zero padding up to the first entry
 *   data               entry payloads, raw bytes (fp32 tensors are IEEE
 *                      binary32 little-endian, row-major; index arrays int32)
 *
 * Validation done by grimc_blob_view / grimc_blob_load, with the status:
 *   magic (checked as soon as 8 bytes exist)            E_MAGIC
 *   size >= 32, then version == 2                       E_TRUNCATED, E_VERSION
 *   size == total_size                                  E_TRUNCATED, E_SIZE
 *   32 + 16*count <= total_size                         E_BOUNDS
 *   each entry: offset % 64 == 0                        E_ALIGN
 *   each entry: end of the previous entry (or of the table) <= offset and
 *               offset + nbytes <= total_size (no overflow)  E_BOUNDS
 *   the blob's base address is 64-aligned               E_ALIGN
 *   checksum (after all of the above)                   E_CHECKSUM
 * so every payload is 64-aligned in memory and no two entries overlap.
 * Entries may be empty (nbytes 0). A writer lays entries out in index
 * order, each at the next multiple of 64, with zero padding, and pads the
 * end of the blob to a multiple of 64 (not required by readers). Payloads
 * are used in place, so the host must be little-endian (all grimc targets
 * are). grimc/emit/blob.py is the compiler's writer.
 *
 * A generated model then binds the entries with grimc_blob_bind: the count,
 * every size, and the SHA-256 of every index array must be the ones it was
 * compiled for (E_LAYOUT otherwise). Index arrays steer the kernels' loads
 * and stores, so they are part of the compiled code's contract; float
 * weights may change freely (a new checksum is all a rewriter must write).
 */

#define GRIMC_BLOB_MAGIC "GRIMCWB1"
#define GRIMC_BLOB_VERSION 2u
#define GRIMC_BLOB_HEADER_BYTES 32u
#define GRIMC_BLOB_ENTRY_BYTES 16u

typedef struct grimc_blob {
    const unsigned char *base; /* start of the blob, 64-aligned */
    size_t size;               /* == total_size */
    uint32_t count;            /* number of entries */
    void *owned;               /* memory to free (grimc_blob_load), or NULL */
} grimc_blob;

/* Read the file at `path` into 64-aligned memory and validate it. On
 * success *out owns the memory (release with grimc_blob_free); on failure
 * *out is zeroed and nothing is leaked. */
GRIMC_RT_API int grimc_blob_load(const char *path, grimc_blob *out);

/* Validate a blob already in memory (e.g. embedded with GRIMC_INCBIN) and
 * describe it in *out without copying. `data` must stay alive and be
 * 64-aligned. grimc_blob_free on a view only clears it. */
GRIMC_RT_API int grimc_blob_view(const void *data, size_t size, grimc_blob *out);

/* Payload of entry `index` if it exists and holds exactly expected_bytes
 * bytes, else NULL. An existing empty entry with expected_bytes 0 gives a
 * non-NULL pointer. grimc_blob_tensor is the same, typed for fp32. */
GRIMC_RT_API const void *grimc_blob_entry(const grimc_blob *blob, uint32_t index,
                             size_t expected_bytes);
GRIMC_RT_API const float *grimc_blob_tensor(const grimc_blob *blob, uint32_t index,
                               size_t expected_bytes);

/* Byte size of entry `index`, or SIZE_MAX if it does not exist. */
GRIMC_RT_API size_t grimc_blob_entry_size(const grimc_blob *blob, uint32_t index);

/* The checksum field a blob of `size` bytes must carry (see the format). */
GRIMC_RT_API uint32_t grimc_blob_checksum(const void *data, size_t size);

/* SHA-256 of n bytes into out[32]. */
GRIMC_RT_API void grimc_sha256(const void *data, size_t n, unsigned char out[32]);

/* What a model expects of one entry: its exact size and, for index arrays,
 * the SHA-256 of its content (NULL: any content, e.g. float weights). */
typedef struct grimc_blob_expect {
    size_t nbytes;
    const unsigned char *sha256;
} grimc_blob_expect;

/* Check the blob against the model's expectations - count == n, each
 * entry's size and pinned digest - and set out[i] to entry i's payload.
 * GRIMC_OK, GRIMC_E_ARG, or GRIMC_E_LAYOUT (out[] then unspecified). */
GRIMC_RT_API int grimc_blob_bind(const grimc_blob *blob, const grimc_blob_expect *expect,
                    uint32_t n, const void **out);

/* Free memory owned by a loaded blob and zero *blob. NULL is a no-op. */
GRIMC_RT_API void grimc_blob_free(grimc_blob *blob);

#ifdef __cplusplus
}
#endif

#endif /* GRIMC_RT_H */
