/*
 * grimc_test.h - a tiny assert framework for the runtime's C tests.
 *
 *   static void test_foo(void) { CHECK(1 + 1 == 2); }
 *   int main(void) { RUN(test_foo); return TEST_REPORT(); }
 *
 * A test passes when none of its CHECKs failed. Failures print file:line
 * and the expression to stderr and the test continues. TEST_REPORT prints
 * exactly one stdout line "N passed, M failed" and gives the exit code.
 */
#ifndef GRIMC_TEST_H
#define GRIMC_TEST_H

#include <math.h>
#include <stdio.h>

static int gt_passed, gt_failed, gt_current_failures;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            gt_current_failures++;                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

/* |a - b| <= atol + rtol * |b|, and NaN only matches NaN. */
#define CHECK_NEAR(a, b, atol, rtol)                                         \
    do {                                                                     \
        double gt_a = (double)(a), gt_b = (double)(b);                       \
        int gt_ok = isnan(gt_b) ? isnan(gt_a)                                \
                                : (gt_a == gt_b ||                           \
                                   fabs(gt_a - gt_b) <=                      \
                                       (atol) + (rtol) * fabs(gt_b));        \
        if (!gt_ok) {                                                        \
            gt_current_failures++;                                           \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g\n", \
                    __FILE__, __LINE__, #a, gt_a, #b, gt_b);                 \
        }                                                                    \
    } while (0)

#define RUN(test)                                                            \
    do {                                                                     \
        gt_current_failures = 0;                                             \
        test();                                                              \
        if (gt_current_failures) {                                           \
            gt_failed++;                                                     \
            fprintf(stderr, "FAIL %s (%d checks)\n", #test,                  \
                    gt_current_failures);                                    \
        } else {                                                             \
            gt_passed++;                                                     \
        }                                                                    \
    } while (0)

#define TEST_REPORT()                                                        \
    (printf("%d passed, %d failed\n", gt_passed, gt_failed),                 \
     fflush(stdout), gt_failed ? 1 : 0)

#endif /* GRIMC_TEST_H */
