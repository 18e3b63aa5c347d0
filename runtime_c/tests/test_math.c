/* Activations in grimc_math.h against float64 reference values (computed
 * with Python's math module from the ONNX operator definitions). */
#include "grimc_math.h"
#include "grimc_test.h"

#include <float.h>

#define NX 10
static const float xs[NX] = {-20.0f, -3.5f, -1.0f, -0.25f, 0.0f,
                             0.5f,   1.0f,  2.75f, 9.0f,   30.0f};

/* Reference values at xs; a few float ulps of tolerance. */
static void check_table(float (*f)(float), const double *ref) {
    for (int i = 0; i < NX; i++) {
        CHECK_NEAR(f(xs[i]), ref[i], 1e-7, 2e-6);
    }
}

static float hard_sigmoid_default(float x) {
    return grimc_hard_sigmoid(x, GRIMC_HARD_SIGMOID_ALPHA,
                              GRIMC_HARD_SIGMOID_BETA);
}
static float elu_default(float x) { return grimc_elu(x, GRIMC_ELU_ALPHA); }

static void test_sigmoid(void) {
    static const double ref[NX] = {2.06115362e-09, 0.0293122308, 0.268941421,
                                   0.437823499,    0.5,          0.622459331,
                                   0.731058579,    0.93991335,   0.999876605,
                                   1.0};
    check_table(grimc_sigmoid, ref);
    /* The stable form keeps tiny values (naive 1/(1+exp(100)) gives 0). */
    CHECK(grimc_sigmoid(-100.0f) > 0.0f);
    CHECK_NEAR(grimc_sigmoid(-100.0f), 3.720075976e-44, 3e-45, 0);
    CHECK(grimc_sigmoid(-INFINITY) == 0.0f);
    CHECK(grimc_sigmoid(INFINITY) == 1.0f);
    CHECK(isnan(grimc_sigmoid(NAN)));
}

static void test_tanh_exp(void) {
    static const double ref[NX] = {-1.0,        -0.998177898, -0.761594156,
                                   -0.244918662, 0.0,         0.462117157,
                                   0.761594156,  0.991859725, 0.99999997,
                                   1.0};
    check_table(grimc_tanh, ref);
    CHECK(grimc_tanh(-INFINITY) == -1.0f);
    CHECK(grimc_exp(0.0f) == 1.0f);
    CHECK_NEAR(grimc_exp(1.0f), 2.718281828, 0, 1e-7);
    CHECK(grimc_exp(-INFINITY) == 0.0f);
}

static void test_hard_sigmoid_swish(void) {
    static const double hsig[NX] = {0, 0, 0.3, 0.45, 0.5, 0.6, 0.7, 1, 1, 1};
    static const double hswish[NX] = {0,           0,           -0.333333333,
                                      -0.114583333, 0,          0.291666667,
                                      0.666666667, 2.63541667,  9,
                                      30};
    check_table(hard_sigmoid_default, hsig);
    check_table(grimc_hard_swish, hswish);
    CHECK(grimc_hard_sigmoid(1.0f, 0.5f, 0.25f) == 0.75f);
    CHECK(isnan(grimc_hard_swish(NAN)));
}

static void test_elu_softplus(void) {
    static const double elu[NX] = {-0.999999998, -0.969802617, -0.632120559,
                                   -0.221199217, 0,            0.5,
                                   1,            2.75,         9,
                                   30};
    static const double sp[NX] = {2.06115362e-09, 0.0297504183, 0.313261688,
                                  0.57593942,     0.693147181,  0.974076984,
                                  1.31326169,     2.81196759,   9.0001234,
                                  30};
    check_table(elu_default, elu);
    check_table(grimc_softplus, sp);
    CHECK(grimc_softplus(100.0f) == 100.0f); /* no overflow to inf */
    CHECK(grimc_softplus(-200.0f) == 0.0f);
}

static void test_relu_clip_leaky(void) {
    CHECK(grimc_relu(-3.0f) == 0.0f);
    CHECK(grimc_relu(2.5f) == 2.5f);
    CHECK(grimc_relu(-INFINITY) == 0.0f);
    CHECK(isnan(grimc_relu(NAN)));
    CHECK(grimc_relu6(7.0f) == 6.0f && grimc_relu6(-1.0f) == 0.0f &&
          grimc_relu6(3.0f) == 3.0f);
    CHECK(grimc_clip(5.0f, -1.0f, 2.0f) == 2.0f);
    CHECK(grimc_clip(-5.0f, -1.0f, 2.0f) == -1.0f);
    CHECK(grimc_clip(0.5f, -FLT_MAX, FLT_MAX) == 0.5f);
    /* ONNX: min > max sets everything to max. */
    CHECK(grimc_clip(-5.0f, 3.0f, 1.0f) == 1.0f);
    CHECK(grimc_clip(0.0f, 3.0f, 1.0f) == 1.0f);
    CHECK(isnan(grimc_clip(NAN, 0.0f, 1.0f)));
    CHECK(grimc_leaky_relu(-2.0f, GRIMC_LEAKY_RELU_ALPHA) == -0.02f);
    CHECK(grimc_leaky_relu(2.0f, 0.1f) == 2.0f);
    CHECK(grimc_leaky_relu(0.0f, 0.1f) == 0.0f);
}

static void test_activate_dispatch(void) {
    const float x = -0.75f;
    CHECK(grimc_activate(GRIMC_ACT_NONE, x, 0, 0) == x);
    CHECK(grimc_activate(GRIMC_ACT_RELU, x, 0, 0) == grimc_relu(x));
    CHECK(grimc_activate(GRIMC_ACT_CLIP, x, -0.5f, 0.5f) == -0.5f);
    CHECK(grimc_activate(GRIMC_ACT_LEAKY_RELU, x, 0.1f, 0) ==
          grimc_leaky_relu(x, 0.1f));
    CHECK(grimc_activate(GRIMC_ACT_HARD_SIGMOID, x, 0.2f, 0.5f) ==
          grimc_hard_sigmoid(x, 0.2f, 0.5f));
    CHECK(grimc_activate(GRIMC_ACT_HARD_SWISH, x, 0, 0) == grimc_hard_swish(x));
    CHECK(grimc_activate(GRIMC_ACT_SIGMOID, x, 0, 0) == grimc_sigmoid(x));
    CHECK(grimc_activate(GRIMC_ACT_TANH, x, 0, 0) == grimc_tanh(x));
    CHECK(grimc_activate(GRIMC_ACT_ELU, x, 1.0f, 0) == grimc_elu(x, 1.0f));
    CHECK(grimc_activate(GRIMC_ACT_SOFTPLUS, x, 0, 0) == grimc_softplus(x));
}

int main(void) {
    RUN(test_sigmoid);
    RUN(test_tanh_exp);
    RUN(test_hard_sigmoid_swish);
    RUN(test_elu_softplus);
    RUN(test_relu_clip_leaky);
    RUN(test_activate_dispatch);
    return TEST_REPORT();
}
