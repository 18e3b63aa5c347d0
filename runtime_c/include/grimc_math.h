/*
 * grimc_math.h - scalar activation functions with ONNX semantics, the one
 * definition that every template (scalar tails, reference kernels) uses.
 *
 * Conventions:
 *   - fp32 in, fp32 out; exp/tanh come from libm (expf, tanhf), so link -lm.
 *   - NaN propagates (comparisons are written so a NaN input falls through
 *     to the arithmetic); +-inf give the mathematical limits.
 *   - Default attribute values are the ONNX defaults, given as macros.
 */
#ifndef GRIMC_MATH_H
#define GRIMC_MATH_H

#include <math.h>

#define GRIMC_LEAKY_RELU_ALPHA 0.01f  /* LeakyRelu alpha */
#define GRIMC_HARD_SIGMOID_ALPHA 0.2f /* HardSigmoid alpha */
#define GRIMC_HARD_SIGMOID_BETA 0.5f  /* HardSigmoid beta */
#define GRIMC_HARD_SWISH_ALPHA (1.0f / 6.0f)
#define GRIMC_HARD_SWISH_BETA 0.5f
#define GRIMC_ELU_ALPHA 1.0f

/* Clip: min(max(x, lo), hi). When lo > hi every x maps to hi, as the ONNX
 * spec says. */
static inline float grimc_clip(float x, float lo, float hi) {
    float y = x < lo ? lo : x;
    return y > hi ? hi : y;
}

/* Relu: max(0, x). -0.0 stays -0.0. */
static inline float grimc_relu(float x) { return x < 0.0f ? 0.0f : x; }

/* Relu6 = Clip(x, 0, 6), the MobileNet activation. */
static inline float grimc_relu6(float x) { return grimc_clip(x, 0.0f, 6.0f); }

/* LeakyRelu: x for x >= 0, alpha * x otherwise. */
static inline float grimc_leaky_relu(float x, float alpha) {
    return x < 0.0f ? alpha * x : x;
}

/* HardSigmoid: max(0, min(1, alpha * x + beta)). */
static inline float grimc_hard_sigmoid(float x, float alpha, float beta) {
    return grimc_clip(alpha * x + beta, 0.0f, 1.0f);
}

/* HardSwish: x * HardSigmoid(x) with alpha = 1/6, beta = 0.5. */
static inline float grimc_hard_swish(float x) {
    return x * grimc_hard_sigmoid(x, GRIMC_HARD_SWISH_ALPHA,
                                  GRIMC_HARD_SWISH_BETA);
}

static inline float grimc_exp(float x) { return expf(x); }

/* Sigmoid: 1 / (1 + exp(-x)), evaluated so exp never overflows: for x < 0
 * use e / (1 + e) with e = exp(x), which keeps tiny results (instead of
 * 1/inf = 0) and is exact at -inf. */
static inline float grimc_sigmoid(float x) {
    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    }
    float e = expf(x);
    return e / (1.0f + e);
}

static inline float grimc_tanh(float x) { return tanhf(x); }

/* SiLU (Swish): x * sigmoid(x). */
static inline float grimc_silu(float x) { return x * grimc_sigmoid(x); }

/* Gelu, exact form: x/2 (1 + erf(x / sqrt 2)). */
static inline float grimc_gelu(float x) {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

/* Gelu, tanh form: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
static inline float grimc_gelu_tanh(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}

/* Elu: x for x >= 0, alpha * (exp(x) - 1) otherwise. */
static inline float grimc_elu(float x, float alpha) {
    return x < 0.0f ? alpha * expm1f(x) : x;
}

/* Softplus: log(1 + exp(x)) without overflow for large x. */
static inline float grimc_softplus(float x) {
    return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

/* Fused activation selector for generic templates; alpha/beta are the
 * ONNX attributes of the op (ignored where the op has none; Clip uses them
 * as min/max). */
typedef enum grimc_act {
    GRIMC_ACT_NONE = 0,
    GRIMC_ACT_RELU,
    GRIMC_ACT_CLIP,
    GRIMC_ACT_LEAKY_RELU,
    GRIMC_ACT_HARD_SIGMOID,
    GRIMC_ACT_HARD_SWISH,
    GRIMC_ACT_SIGMOID,
    GRIMC_ACT_TANH,
    GRIMC_ACT_ELU,
    GRIMC_ACT_SOFTPLUS
} grimc_act;

static inline float grimc_activate(grimc_act act, float x, float alpha,
                                   float beta) {
    switch (act) {
    case GRIMC_ACT_RELU: return grimc_relu(x);
    case GRIMC_ACT_CLIP: return grimc_clip(x, alpha, beta);
    case GRIMC_ACT_LEAKY_RELU: return grimc_leaky_relu(x, alpha);
    case GRIMC_ACT_HARD_SIGMOID: return grimc_hard_sigmoid(x, alpha, beta);
    case GRIMC_ACT_HARD_SWISH: return grimc_hard_swish(x);
    case GRIMC_ACT_SIGMOID: return grimc_sigmoid(x);
    case GRIMC_ACT_TANH: return grimc_tanh(x);
    case GRIMC_ACT_ELU: return grimc_elu(x, alpha);
    case GRIMC_ACT_SOFTPLUS: return grimc_softplus(x);
    case GRIMC_ACT_NONE: break;
    }
    return x;
}

#endif /* GRIMC_MATH_H */
