/*
 * Persistent thread pool with a blocking, statically partitioned
 * parallel_for.
 *
 * Protocol (one job at a time, guarded by call_mu):
 *   caller: write job fields; pending = workers; under mu: generation++
 *           (release) and broadcast; run range 0; wait until pending == 0.
 *   worker: wait until generation changes (acquire), run its range,
 *           pending-- (acq_rel); the last one signals done under mu.
 * Both waits spin briefly before sleeping on a condition variable, since
 * back-to-back layers call parallel_for every few microseconds. Every
 * sleeping wait rechecks its condition under mu and every wake-up is sent
 * under mu, so no wake-up is lost.
 */
#ifndef _GNU_SOURCE /* sched_getcpu, CPU_SET; the codegen inlines this file after its own */
#define _GNU_SOURCE
#endif

#include "grimc_rt.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* How long a waiting thread busy-waits before sleeping. Back-to-back
 * layers start a job every few microseconds, and waking a sleeping thread
 * costs 5-100 us (a VM measured ~100), so spin about that long. */
#ifndef GRIMC_POOL_SPIN_NS
#define GRIMC_POOL_SPIN_NS 100000
#endif

struct grimc_pool {
    int nthreads; /* including the caller */
    pthread_t *workers;
    pthread_mutex_t call_mu; /* serializes external callers */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    atomic_uint_fast64_t generation; /* bumped once per job */
    atomic_int pending;              /* workers still busy with the job */
    atomic_int stop;
    /* Current job: written before generation is bumped (release), read by
     * workers after they observe it (acquire). */
    grimc_task_fn fn;
    void *ctx;
    int ntasks;
#ifdef __linux__
    int home_cpu;        /* the creator's CPU, kept for the caller; -1: unpinned */
    int entered;         /* grimc_pool_enter changed the caller's affinity */
    cpu_set_t saved;     /* the caller's affinity before grimc_pool_enter */
#endif
};

typedef struct {
    grimc_pool *pool;
    int index;
} pool_worker_arg;

/* Which pool this thread is currently running tasks for, to run nested
 * calls inline instead of deadlocking. */
static _Thread_local const grimc_pool *pool_tl_pool;
static _Thread_local int pool_tl_thread;

static inline void pool_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

/* Bounded busy-wait: pool_spin returns 0 once GRIMC_POOL_SPIN_NS have
 * passed. Every 64 rounds it reads the clock and yields the CPU, so that a
 * pool with more threads than cores still lets the busy threads run.
 * GRIMC_POOL_SPIN_NS=0 turns spinning off: every handoff then goes through
 * the mutex, which helgrind can verify (it does not model C11 atomics). */
typedef struct {
    uint64_t deadline;
    unsigned round;
} pool_spinner;

static int pool_spin(pool_spinner *s) {
    if (GRIMC_POOL_SPIN_NS == 0) {
        return 0;
    }
    if (++s->round % 64 != 0) {
        pool_cpu_relax();
        return 1;
    }
    uint64_t now = grimc_now_ns();
    if (s->deadline == 0) {
        s->deadline = now + GRIMC_POOL_SPIN_NS;
    } else if (now >= s->deadline) {
        return 0;
    }
    sched_yield();
    return 1;
}

/* Workers are pinned, worker i to the i-th CPU the process may use, counting
 * from the CPU the creating thread runs on (the home CPU), and the caller is
 * kept on the home CPU between grimc_pool_enter and grimc_pool_leave (Linux,
 * when there are at least as many CPUs as threads). Unpinned, a worker woken
 * after an idle spell was placed on the waking caller's CPU (wake-affine), or
 * the caller woke on the worker's CPU; on a 2-vCPU VM they then shared one
 * CPU for the whole inference and 2 threads ran at 1-thread speed. Build with
 * -DGRIMC_POOL_PIN=0 to leave placement to the OS. */
#ifndef GRIMC_POOL_PIN
#define GRIMC_POOL_PIN 1
#endif

#ifdef __linux__
static void pool_pin(pthread_t thread, int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    (void)pthread_setaffinity_np(thread, sizeof one, &one);
}

/* Pin worker i to the i-th allowed CPU counting from the creator's (home) CPU,
 * once all workers run; home_cpu stays -1 (nothing pinned) unless every
 * thread can have a CPU of its own. */
static void pool_pin_workers(grimc_pool *pool) {
    cpu_set_t allowed;
    if (!GRIMC_POOL_PIN || pool->nthreads < 2 ||
        sched_getaffinity(0, sizeof allowed, &allowed) != 0 ||
        CPU_COUNT(&allowed) < pool->nthreads) {
        return;
    }
    int home = sched_getcpu();
    if (home < 0 || home >= CPU_SETSIZE || !CPU_ISSET(home, &allowed)) {
        return;
    }
    pool->home_cpu = home;
    int index = 0; /* 0 is the caller's home CPU, i the one of worker i */
    for (int k = 0; k < CPU_SETSIZE && index < pool->nthreads; k++) {
        int cpu = (home + k) % CPU_SETSIZE;
        if (CPU_ISSET(cpu, &allowed)) {
            if (index > 0) {
                pool_pin(pool->workers[index - 1], cpu);
            }
            index++;
        }
    }
}
#endif

GRIMC_RT_API void grimc_pool_enter(grimc_pool *pool) {
#ifdef __linux__
    if (pool != NULL && pool->home_cpu >= 0 &&
        pthread_getaffinity_np(pthread_self(), sizeof pool->saved, &pool->saved) == 0) {
        pool_pin(pthread_self(), pool->home_cpu);
        pool->entered = 1;
    }
#else
    (void)pool;
#endif
}

GRIMC_RT_API void grimc_pool_leave(grimc_pool *pool) {
#ifdef __linux__
    if (pool != NULL && pool->entered) {
        (void)pthread_setaffinity_np(pthread_self(), sizeof pool->saved, &pool->saved);
        pool->entered = 0;
    }
#else
    (void)pool;
#endif
}

GRIMC_RT_API int grimc_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

GRIMC_RT_API int grimc_pool_threads(const grimc_pool *pool) {
    return pool ? pool->nthreads : 1;
}

/* Start of thread t's share of [0, ntasks): ceil(t * ntasks / nthreads).
 * Rounding up (not down) gives thread 0, the caller, a task first when
 * ntasks < nthreads, so ntasks == 1 may run inline without changing who
 * runs what. */
static int pool_range_begin(int ntasks, int t, int nthreads) {
    return (int)(((int64_t)ntasks * t + nthreads - 1) / nthreads);
}

static void pool_run_range(grimc_task_fn fn, void *ctx, int ntasks, int t,
                           int nthreads) {
    int begin = pool_range_begin(ntasks, t, nthreads);
    int end = pool_range_begin(ntasks, t + 1, nthreads);
    for (int i = begin; i < end; i++) {
        fn(ctx, i, t);
    }
}

/* Wait for a generation different from `seen`; returns it, or `seen` when
 * the pool is stopping. */
static uint64_t pool_wait_for_job(grimc_pool *pool, uint64_t seen) {
    pool_spinner spin = {0, 0};
    while (pool_spin(&spin)) {
        uint64_t g = atomic_load_explicit(&pool->generation,
                                          memory_order_acquire);
        if (g != seen || atomic_load_explicit(&pool->stop,
                                              memory_order_relaxed)) {
            return g;
        }
    }
    pthread_mutex_lock(&pool->mu);
    uint64_t g;
    while ((g = atomic_load_explicit(&pool->generation,
                                     memory_order_acquire)) == seen &&
           !atomic_load_explicit(&pool->stop, memory_order_relaxed)) {
        pthread_cond_wait(&pool->cv_work, &pool->mu);
    }
    pthread_mutex_unlock(&pool->mu);
    return g;
}

/* A worker finished its range; the last one wakes the caller. */
static void pool_job_done(grimc_pool *pool) {
    if (GRIMC_POOL_SPIN_NS == 0) {
        /* Decrement under the mutex so every worker's writes are ordered
         * before the caller's return by the lock alone. */
        pthread_mutex_lock(&pool->mu);
        if (atomic_fetch_sub_explicit(&pool->pending, 1,
                                      memory_order_acq_rel) == 1) {
            pthread_cond_signal(&pool->cv_done);
        }
        pthread_mutex_unlock(&pool->mu);
        return;
    }
    if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) ==
        1) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_signal(&pool->cv_done);
        pthread_mutex_unlock(&pool->mu);
    }
}

static void *pool_worker_main(void *p) {
    pool_worker_arg arg = *(pool_worker_arg *)p;
    free(p);
    grimc_pool *pool = arg.pool;
    pool_tl_pool = pool;
    pool_tl_thread = arg.index;
    uint64_t seen = 0; /* generation starts at 0 before any job */
    for (;;) {
        uint64_t g = pool_wait_for_job(pool, seen);
        if (g == seen) {
            break; /* stopping, no new job */
        }
        seen = g;
        pool_run_range(pool->fn, pool->ctx, pool->ntasks, arg.index,
                       pool->nthreads);
        pool_job_done(pool);
    }
    return NULL;
}

static void pool_wait_for_workers(grimc_pool *pool) {
    pool_spinner spin = {0, 0};
    while (pool_spin(&spin)) {
        if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0) {
            return;
        }
    }
    pthread_mutex_lock(&pool->mu);
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) != 0) {
        pthread_cond_wait(&pool->cv_done, &pool->mu);
    }
    pthread_mutex_unlock(&pool->mu);
}

/* Stop and join the first `started` workers, then free the pool. */
static void pool_teardown(grimc_pool *pool, int started) {
    pthread_mutex_lock(&pool->mu);
    atomic_store_explicit(&pool->stop, 1, memory_order_relaxed);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < started; i++) {
        pthread_join(pool->workers[i], NULL);
    }
    pthread_cond_destroy(&pool->cv_done);
    pthread_cond_destroy(&pool->cv_work);
    pthread_mutex_destroy(&pool->mu);
    pthread_mutex_destroy(&pool->call_mu);
    free(pool->workers);
    free(pool);
}

GRIMC_RT_API grimc_pool *grimc_pool_create(int nthreads) {
    if (nthreads <= 0) {
        nthreads = grimc_cpu_count();
    }
    grimc_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL) {
        return NULL;
    }
    pool->nthreads = nthreads;
#ifdef __linux__
    pool->home_cpu = -1;
#endif
    pool->workers = calloc((size_t)nthreads, sizeof *pool->workers);
    if (pool->workers == NULL) {
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->call_mu, NULL);
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv_work, NULL);
    pthread_cond_init(&pool->cv_done, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->stop, 0);
    for (int i = 1; i < nthreads; i++) {
        pool_worker_arg *arg = malloc(sizeof *arg);
        if (arg != NULL) {
            *arg = (pool_worker_arg){pool, i};
        }
        if (arg == NULL || pthread_create(&pool->workers[i - 1], NULL,
                                          pool_worker_main, arg) != 0) {
            free(arg);
            pool_teardown(pool, i - 1);
            return NULL;
        }
    }
#ifdef __linux__
    pool_pin_workers(pool);
#endif
    return pool;
}

GRIMC_RT_API void grimc_pool_destroy(grimc_pool *pool) {
    if (pool != NULL) {
        pool_teardown(pool, pool->nthreads - 1);
    }
}

GRIMC_RT_API void grimc_parallel_for(grimc_pool *pool, int ntasks, grimc_task_fn fn,
                        void *ctx) {
    if (ntasks <= 0 || fn == NULL) {
        return;
    }
    if (pool == NULL || pool->nthreads <= 1 || ntasks == 1 ||
        pool_tl_pool == pool) {
        /* Inline; a nested call keeps the current thread's index. */
        int t = pool_tl_pool == pool && pool != NULL ? pool_tl_thread : 0;
        for (int i = 0; i < ntasks; i++) {
            fn(ctx, i, t);
        }
        return;
    }
    pthread_mutex_lock(&pool->call_mu);
    const grimc_pool *saved_pool = pool_tl_pool;
    int saved_thread = pool_tl_thread;
    pool_tl_pool = pool;
    pool_tl_thread = 0;

    pool->fn = fn;
    pool->ctx = ctx;
    pool->ntasks = ntasks;
    atomic_store_explicit(&pool->pending, pool->nthreads - 1,
                          memory_order_relaxed);
    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);

    pool_run_range(fn, ctx, ntasks, 0, pool->nthreads);
    pool_wait_for_workers(pool);

    pool_tl_pool = saved_pool;
    pool_tl_thread = saved_thread;
    pthread_mutex_unlock(&pool->call_mu);
}
