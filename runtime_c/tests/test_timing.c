/* Monotonic clock and medians. */
#define _POSIX_C_SOURCE 200809L

#include "grimc_rt.h"
#include "grimc_test.h"

#include <stdint.h>
#include <time.h>

static void test_clock_monotonic(void) {
    uint64_t prev = grimc_now_ns();
    int backwards = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t t = grimc_now_ns();
        backwards += t < prev;
        prev = t;
    }
    CHECK(backwards == 0);
    struct timespec nap = {0, 2000000}; /* 2 ms */
    uint64_t t0 = grimc_now_ns();
    nanosleep(&nap, NULL);
    CHECK(grimc_now_ns() - t0 >= 2000000u);
}

static void test_median_f64(void) {
    double odd[] = {5.0, 1.0, 3.0};
    CHECK(grimc_median_f64(odd, 3) == 3.0);
    CHECK(odd[0] == 1.0 && odd[2] == 5.0); /* documented: sorted in place */
    double even[] = {4.0, 1.0, 3.0, 2.0};
    CHECK(grimc_median_f64(even, 4) == 2.5);
    double one[] = {7.5};
    CHECK(grimc_median_f64(one, 1) == 7.5);
    CHECK(isnan(grimc_median_f64(NULL, 0)));
    double with_nan[] = {NAN, 2.0, 1.0, NAN, 3.0};
    CHECK(grimc_median_f64(with_nan, 5) == 3.0); /* NaNs sort last */
    double big[] = {1e308, 1.5e308};
    CHECK(grimc_median_f64(big, 2) == 1.25e308); /* no overflow to inf */
}

static void test_median_u64(void) {
    uint64_t odd[] = {9, 2, 7, 4, 5};
    CHECK(grimc_median_u64(odd, 5) == 5);
    uint64_t even[] = {10, 1, 4, 3};
    CHECK(grimc_median_u64(even, 4) == 3); /* (3 + 4) / 2 rounded down */
    uint64_t top[] = {UINT64_MAX, UINT64_MAX - 2};
    CHECK(grimc_median_u64(top, 2) == UINT64_MAX - 1);
    CHECK(grimc_median_u64(NULL, 0) == 0);
}

int main(void) {
    RUN(test_clock_monotonic);
    RUN(test_median_f64);
    RUN(test_median_u64);
    return TEST_REPORT();
}
