/* Arena planner and aligned allocation. */
#include "grimc_rt.h"
#include "grimc_test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: fixed-seed, identical on every platform (unlike rand()). */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static uint64_t rng_below(uint64_t n) { return rng_next() % n; }

static int lives_overlap(const grimc_buffer_life *a, const grimc_buffer_life *b) {
    return a->first_op <= b->last_op && b->first_op <= a->last_op;
}

/* Every property a valid plan must have; returns the number of violations. */
static int check_plan(const grimc_buffer_life *bufs, size_t n, size_t align,
                      const size_t *off, size_t peak) {
    int bad = 0;
    size_t top = 0;
    for (size_t i = 0; i < n; i++) {
        bad += off[i] % align != 0;
        if (off[i] + bufs[i].size > top) {
            top = off[i] + bufs[i].size;
        }
        for (size_t j = i + 1; j < n; j++) {
            if (bufs[i].size == 0 || bufs[j].size == 0 ||
                !lives_overlap(&bufs[i], &bufs[j])) {
                continue;
            }
            int disjoint = off[i] + bufs[i].size <= off[j] ||
                           off[j] + bufs[j].size <= off[i];
            bad += !disjoint;
        }
    }
    bad += top != peak;
    bad += peak < grimc_arena_live_peak(bufs, n);
    return bad;
}

static void test_random_instances(void) {
    const size_t aligns[] = {1, 16, 64, 256};
    for (int round = 0; round < 400; round++) {
        size_t n = 1 + rng_below(60);
        int nops = 1 + (int)rng_below(40);
        size_t align = aligns[round % 4];
        grimc_buffer_life bufs[60];
        size_t off[60], off2[60], sum = 0;
        for (size_t i = 0; i < n; i++) {
            int a = (int)rng_below((uint64_t)nops);
            int b = a + (int)rng_below((uint64_t)(nops - a));
            /* Mix of tiny, odd and large sizes, plus some empty buffers. */
            size_t size = rng_below(8) == 0 ? 0 : 1 + rng_below(1u << rng_below(20));
            bufs[i] = (grimc_buffer_life){size, a, b};
            sum += size + align;
        }
        size_t peak = grimc_arena_plan(bufs, n, align, off);
        CHECK(peak != SIZE_MAX);
        CHECK(check_plan(bufs, n, align, off, peak) == 0);
        CHECK(peak <= sum);
        /* Deterministic: same input, same plan. */
        CHECK(grimc_arena_plan(bufs, n, align, off2) == peak);
        CHECK(memcmp(off, off2, n * sizeof *off) == 0);
    }
}

/* A chain of layers (buffer i feeds op i+1) needs exactly two slots. */
static void test_chain_ping_pong(void) {
    grimc_buffer_life bufs[10];
    size_t off[10];
    for (int i = 0; i < 10; i++) {
        bufs[i] = (grimc_buffer_life){1000, i, i + 1};
    }
    size_t peak = grimc_arena_plan(bufs, 10, 64, off);
    CHECK(peak == 1024 + 1000);
    CHECK(peak == grimc_arena_live_peak(bufs, 10) + 24);
    for (int i = 0; i < 10; i++) {
        CHECK(off[i] == (i % 2 ? 1024u : 0u));
    }
}

/* Hand-checked: largest first at 0; A and D share a slot because their
 * lifetimes are disjoint. */
static void test_known_plan(void) {
    const grimc_buffer_life bufs[] = {
        {100, 0, 1}, /* A, 3rd: live with C [0,300) and B [320,520) -> 576 */
        {200, 1, 3}, /* B, 2nd: live with C [0,300) -> 320 */
        {300, 0, 4}, /* C, 1st: 0 */
        {100, 2, 2}, /* D, 4th: live with C and B, not A -> 576 */
        {50, 5, 6},  /* E, 5th: alone in time -> 0 */
    };
    size_t off[5];
    size_t peak = grimc_arena_plan(bufs, 5, 64, off);
    CHECK(off[2] == 0);
    CHECK(off[1] == 320);
    CHECK(off[0] == 320 + 256);
    CHECK(off[3] == 320 + 256);
    CHECK(off[4] == 0);
    CHECK(peak == 676);
    CHECK(check_plan(bufs, 5, 64, off, peak) == 0);
}

static void test_bad_arguments(void) {
    grimc_buffer_life good = {8, 0, 1}, reversed = {8, 3, 1};
    size_t off[1];
    CHECK(grimc_arena_plan(NULL, 0, 64, NULL) == 0);
    CHECK(grimc_arena_plan(&good, 1, 48, off) == SIZE_MAX);
    CHECK(grimc_arena_plan(&reversed, 1, 64, off) == SIZE_MAX);
    CHECK(grimc_arena_plan(&good, 1, 64, NULL) == SIZE_MAX);
    CHECK(grimc_arena_plan(&good, 1, 0, off) == 8 && off[0] == 0);
    grimc_buffer_life huge[2] = {{SIZE_MAX - 10, 0, 0}, {100, 0, 0}};
    size_t off2[2];
    CHECK(grimc_arena_plan(huge, 2, 64, off2) == SIZE_MAX);
}

/* Sizes past 2^31 and 2^32 plan in size_t without truncation (plan only,
 * nothing is allocated); a total past SIZE_MAX is refused. */
static void test_large_sizes(void) {
    const size_t g31 = (size_t)1 << 31, g32 = (size_t)1 << 32;
    grimc_buffer_life bufs[3] = {{g31 - 1, 0, 1}, {g31, 1, 2}, {g32 + 1, 0, 2}};
    size_t off[3];
    size_t peak = grimc_arena_plan(bufs, 3, 64, off);
    CHECK(off[2] == 0);
    CHECK(off[1] == g32 + 64 && off[0] == g32 + 64 + g31);
    CHECK(peak == g32 + 64 + g31 + g31 - 1);
    CHECK(check_plan(bufs, 3, 64, off, peak) == 0);
    grimc_buffer_life wrap[2] = {{SIZE_MAX / 2, 0, 0}, {SIZE_MAX / 2 + 64, 0, 0}};
    CHECK(grimc_arena_plan(wrap, 2, 64, off) == SIZE_MAX);
    CHECK(grimc_arena_live_peak(wrap, 2) == SIZE_MAX);
}

static void test_aligned_alloc(void) {
    const size_t aligns[] = {0, 1, 8, 64, 4096};
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
        size_t a = aligns[i] ? aligns[i] : GRIMC_ALIGN;
        unsigned char *p = grimc_aligned_alloc(aligns[i], 1000);
        CHECK(p != NULL);
        CHECK((uintptr_t)p % a == 0);
        memset(p, 0xAB, 1000); /* ASan catches a short block */
        grimc_aligned_free(p);
    }
    void *z1 = grimc_aligned_alloc(64, 0), *z2 = grimc_aligned_alloc(64, 0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    grimc_aligned_free(z1);
    grimc_aligned_free(z2);
    CHECK(grimc_aligned_alloc(24, 100) == NULL);
    grimc_aligned_free(NULL);
}

int main(void) {
    RUN(test_random_instances);
    RUN(test_chain_ping_pong);
    RUN(test_known_plan);
    RUN(test_bad_arguments);
    RUN(test_large_sizes);
    RUN(test_aligned_alloc);
    return TEST_REPORT();
}
