/* Monotonic clock and medians for benchmark harnesses. */
#ifndef _POSIX_C_SOURCE /* also inlined after _GNU_SOURCE by the codegen */
#define _POSIX_C_SOURCE 200809L
#endif

#include "grimc_rt.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

GRIMC_RT_API uint64_t grimc_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* NaNs compare greater than everything so the order is total. */
static int timing_cmp_f64(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    if (isnan(a) || isnan(b)) {
        return isnan(a) - isnan(b);
    }
    return (a > b) - (a < b);
}

static int timing_cmp_u64(const void *pa, const void *pb) {
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return (a > b) - (a < b);
}

GRIMC_RT_API double grimc_median_f64(double *values, size_t n) {
    if (n == 0 || values == NULL) {
        return NAN;
    }
    qsort(values, n, sizeof *values, timing_cmp_f64);
    if (n % 2) {
        return values[n / 2];
    }
    return 0.5 * values[n / 2 - 1] + 0.5 * values[n / 2];
}

GRIMC_RT_API uint64_t grimc_median_u64(uint64_t *values, size_t n) {
    if (n == 0 || values == NULL) {
        return 0;
    }
    qsort(values, n, sizeof *values, timing_cmp_u64);
    if (n % 2) {
        return values[n / 2];
    }
    uint64_t lo = values[n / 2 - 1], hi = values[n / 2];
    return lo + (hi - lo) / 2;
}
