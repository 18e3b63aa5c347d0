/* Thread pool: every task exactly once, the documented static partition,
 * caller participation, nesting, concurrent callers, create/destroy churn.
 * Built with -fsanitize=thread too, so data written by tasks is plain
 * (non-atomic) wherever the pool's own synchronization must order it. */
#define _GNU_SOURCE /* sched_getcpu, CPU_* */

#include "grimc_rt.h"
#include "grimc_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#define MAX_TASKS 1000

typedef struct {
    atomic_int runs[MAX_TASKS];
    int thread_of[MAX_TASKS]; /* plain: each task writes only its own slot */
    pthread_t caller;
    int caller_mismatch;      /* written only by thread 0 */
} record_ctx;

static void record_task(void *p, int task, int thread) {
    record_ctx *c = p;
    atomic_fetch_add_explicit(&c->runs[task], 1, memory_order_relaxed);
    c->thread_of[task] = thread;
    if (thread == 0 && !pthread_equal(pthread_self(), c->caller)) {
        c->caller_mismatch = 1;
    }
}

/* ceil(t * n / T), the partition promised in grimc_rt.h. */
static int expected_begin(int n, int t, int nthreads) {
    return (n * t + nthreads - 1) / nthreads;
}

/* Runs one parallel_for and checks it; returns the number of violations. */
static int run_and_verify(grimc_pool *pool, record_ctx *c, int ntasks) {
    int nthreads = grimc_pool_threads(pool);
    for (int i = 0; i < MAX_TASKS; i++) {
        atomic_store_explicit(&c->runs[i], 0, memory_order_relaxed);
        c->thread_of[i] = -1;
    }
    c->caller = pthread_self();
    c->caller_mismatch = 0;
    grimc_parallel_for(pool, ntasks, record_task, c);
    int bad = c->caller_mismatch;
    for (int t = 0; t < nthreads; t++) {
        int b = expected_begin(ntasks, t, nthreads);
        int e = expected_begin(ntasks, t + 1, nthreads);
        for (int i = b; i < e; i++) {
            bad += atomic_load(&c->runs[i]) != 1;
            bad += c->thread_of[i] != t;
        }
    }
    for (int i = ntasks; i < MAX_TASKS; i++) {
        bad += atomic_load(&c->runs[i]) != 0;
    }
    return bad;
}

static record_ctx g_ctx;

static void test_exactly_once_many_rounds(void) {
    const int sizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 13, 64, 999, MAX_TASKS};
    const int nsizes = (int)(sizeof sizes / sizeof *sizes);
    for (int nthreads = 1; nthreads <= 4; nthreads++) {
        grimc_pool *pool = grimc_pool_create(nthreads);
        CHECK(pool != NULL);
        CHECK(grimc_pool_threads(pool) == nthreads);
        int bad = 0;
        for (int round = 0; round < 150; round++) {
            bad += run_and_verify(pool, &g_ctx, sizes[round % nsizes]);
        }
        CHECK(bad == 0);
        grimc_pool_destroy(pool);
    }
}

static void test_null_pool_inline(void) {
    CHECK(grimc_pool_threads(NULL) == 1);
    CHECK(run_and_verify(NULL, &g_ctx, 37) == 0);
    grimc_pool_destroy(NULL);
}

static void test_create_destroy_churn(void) {
    for (int i = 0; i < 60; i++) {
        grimc_pool *pool = grimc_pool_create(1 + i % 4);
        CHECK(pool != NULL);
        if (i % 3 == 0) {
            /* Destroy right away: workers may not even be waiting yet. */
            grimc_pool_destroy(pool);
            continue;
        }
        CHECK(run_and_verify(pool, &g_ctx, 1 + i) == 0);
        grimc_pool_destroy(pool);
    }
}

static void test_default_threads(void) {
    grimc_pool *pool = grimc_pool_create(0);
    CHECK(pool != NULL);
    CHECK(grimc_pool_threads(pool) == grimc_cpu_count());
    CHECK(grimc_cpu_count() >= 1);
    grimc_pool_destroy(pool);
}

/* Sums computed by tasks (plain writes) must be visible after return. */
typedef struct {
    const float *x;
    float partial[4];
    int chunk;
} sum_ctx;

static void sum_task(void *p, int task, int thread) {
    (void)thread;
    sum_ctx *c = p;
    float s = 0.0f;
    for (int i = task * c->chunk; i < (task + 1) * c->chunk; i++) {
        s += c->x[i];
    }
    c->partial[task] = s;
}

static void test_results_visible(void) {
    static float x[4096];
    for (int i = 0; i < 4096; i++) {
        x[i] = (float)(i % 7);
    }
    grimc_pool *pool = grimc_pool_create(4);
    int bad = 0;
    for (int round = 0; round < 200; round++) {
        sum_ctx c = {x, {0}, 1024};
        grimc_parallel_for(pool, 4, sum_task, &c);
        float total = c.partial[0] + c.partial[1] + c.partial[2] + c.partial[3];
        bad += total != 12285.0f; /* sum of i % 7 over 0..4095 */
    }
    CHECK(bad == 0);
    grimc_pool_destroy(pool);
}

/* A task that calls parallel_for on its own pool: runs inline on the
 * current thread, keeping the thread index. */
typedef struct {
    grimc_pool *pool;
    atomic_int inner_runs;
    atomic_int wrong_thread;
} nest_ctx;

typedef struct {
    nest_ctx *outer;
    int thread;
} inner_ctx;

static void inner_task(void *p, int task, int thread) {
    (void)task;
    inner_ctx *c = p;
    atomic_fetch_add(&c->outer->inner_runs, 1);
    if (thread != c->thread) {
        atomic_fetch_add(&c->outer->wrong_thread, 1);
    }
}

static void outer_task(void *p, int task, int thread) {
    (void)task;
    nest_ctx *c = p;
    inner_ctx ic = {c, thread};
    grimc_parallel_for(c->pool, 5, inner_task, &ic);
}

static void test_nested_runs_inline(void) {
    nest_ctx c;
    c.pool = grimc_pool_create(3);
    atomic_init(&c.inner_runs, 0);
    atomic_init(&c.wrong_thread, 0);
    grimc_parallel_for(c.pool, 6, outer_task, &c);
    CHECK(atomic_load(&c.inner_runs) == 30);
    CHECK(atomic_load(&c.wrong_thread) == 0);
    grimc_pool_destroy(c.pool);
}

/* Two external threads sharing one pool are serialized, not corrupted. */
typedef struct {
    grimc_pool *pool;
    record_ctx rec;
    int bad;
} caller_arg;

static void *external_caller(void *p) {
    caller_arg *a = p;
    for (int round = 0; round < 100; round++) {
        a->bad += run_and_verify(a->pool, &a->rec, 1 + round % 50);
    }
    return NULL;
}

static void test_concurrent_callers(void) {
    grimc_pool *pool = grimc_pool_create(3);
    static caller_arg args[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        args[i].pool = pool;
        args[i].bad = 0;
        CHECK(pthread_create(&th[i], NULL, external_caller, &args[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].bad == 0);
    }
    grimc_pool_destroy(pool);
}

static void cpu_of_task(void *p, int task, int thread) {
    (void)task;
    ((int *)p)[thread] = sched_getcpu();
}

/* Inside enter/leave the caller sits on one CPU and the worker on another;
 * leave restores the caller's own affinity. */
static void test_enter_pins_and_leave_restores(void) {
    cpu_set_t before, inside, after;
    CHECK(sched_getaffinity(0, sizeof before, &before) == 0);
    grimc_pool_enter(NULL);
    grimc_pool_leave(NULL);
    grimc_pool *pool = grimc_pool_create(2);
    CHECK(pool != NULL);
    grimc_pool_enter(pool);
    CHECK(sched_getaffinity(0, sizeof inside, &inside) == 0);
    int cpus[2] = {-1, -1};
    grimc_parallel_for(pool, 2, cpu_of_task, cpus);
    grimc_pool_leave(pool);
    CHECK(sched_getaffinity(0, sizeof after, &after) == 0);
    CHECK(CPU_EQUAL(&before, &after));
    if (CPU_COUNT(&before) >= 2) {
        CHECK(CPU_COUNT(&inside) == 1);
        CHECK(cpus[0] >= 0 && CPU_ISSET(cpus[0], &inside));
        CHECK(cpus[1] >= 0 && cpus[1] != cpus[0]);
    } else {
        CHECK(CPU_EQUAL(&before, &inside)); /* one CPU: nothing is pinned */
    }
    grimc_pool_destroy(pool);
}

int main(void) {
    RUN(test_exactly_once_many_rounds);
    RUN(test_null_pool_inline);
    RUN(test_create_destroy_churn);
    RUN(test_default_threads);
    RUN(test_results_visible);
    RUN(test_nested_runs_inline);
    RUN(test_concurrent_callers);
    RUN(test_enter_pins_and_leave_restores);
    return TEST_REPORT();
}
