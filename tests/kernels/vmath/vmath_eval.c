/* Applies one gv_* math function to a file of floats: vmath_eval FN IN OUT.
 * Used by tests/kernels/test_vector_math.py (accuracy sweeps) and
 * benches/vector_math.py (throughput). With a 4th argument R it instead
 * times R passes over IN and prints nanoseconds per element. */
#include "grimc_math.h"
#include "grimc_simd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*sweep_fn)(const float *x, float *y, long n);

#define SWEEP(name, f)                                                        \
    static void name(const float *x, float *y, long n) {                      \
        long i = 0;                                                           \
        for (; i + GRIMC_VW <= n; i += GRIMC_VW) gv_store(y + i, f(gv_load(x + i))); \
        if (i < n) gv_store_n(y + i, f(gv_load_n(x + i, (int)(n - i))), (int)(n - i)); \
    }
SWEEP(v_exp, gv_exp)
SWEEP(v_log, gv_log)
SWEEP(v_sigmoid, gv_sigmoid)
SWEEP(v_tanh, gv_tanh)
SWEEP(v_erf, gv_erf)

/* The scalar libm Sigmoid the vector one replaces (the throughput baseline). */
static void s_sigmoid(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = grimc_sigmoid(x[i]);
}

static const struct {
    const char *name;
    sweep_fn fn;
} FNS[] = {{"exp", v_exp},     {"log", v_log}, {"sigmoid", v_sigmoid},
           {"tanh", v_tanh},   {"erf", v_erf}, {"sigmoid_libm", s_sigmoid}};

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s FN IN OUT [REPEAT]\n", argv[0]);
        return 2;
    }
    sweep_fn fn = NULL;
    for (size_t k = 0; k < sizeof FNS / sizeof FNS[0]; k++)
        if (strcmp(argv[1], FNS[k].name) == 0) fn = FNS[k].fn;
    FILE *f = fopen(argv[2], "rb");
    if (fn == NULL || f == NULL) {
        fprintf(stderr, "unknown function or unreadable input\n");
        return 2;
    }
    fseek(f, 0, SEEK_END);
    const long n = ftell(f) / (long)sizeof(float);
    fseek(f, 0, SEEK_SET);
    float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
    if (x == NULL || y == NULL || fread(x, sizeof(float), (size_t)n, f) != (size_t)n) return 2;
    fclose(f);
    if (argc > 4) {
        const int repeat = atoi(argv[4]);
        double best = 1e30;
        for (int r = 0; r < repeat; r++) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            fn(x, y, n);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            const double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
            best = ns < best ? ns : best;
        }
        printf("%.6f\n", best / (double)n);
    } else {
        fn(x, y, n);
    }
    f = fopen(argv[3], "wb");
    if (f == NULL || fwrite(y, sizeof(float), (size_t)n, f) != (size_t)n) return 2;
    fclose(f);
    free(x);
    free(y);
    return 0;
}
