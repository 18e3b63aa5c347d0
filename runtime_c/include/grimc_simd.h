/*
 * grimc_simd.h - the one vector abstraction every kernel template uses.
 *
 * Templates are written once against gv_* and unrolled by Jinja with the
 * target's vector width (t.vw); this header maps gv_* onto AVX-512, AVX2+FMA,
 * NEON or plain scalars, chosen by the compiler's target macros. Generated
 * code asserts that GRIMC_VW equals the width the templates were rendered
 * for, so a wrong -march is a compile error, not wrong answers.
 *
 *   gv_t                a vector of GRIMC_VW floats
 *   gv_zero()           all lanes 0
 *   gv_set1(x)          broadcast
 *   gv_load(p)          unaligned load of GRIMC_VW floats
 *   gv_store(p, v)      unaligned store
 *   gv_load_n(p, n)     load n < GRIMC_VW floats, other lanes 0 (no over-read)
 *   gv_store_n(p, v, n) store the first n lanes (no over-write)
 *   gv_fmadd(a, b, c)   a * b + c (fused where the ISA has FMA)
 *   gv_add, gv_sub, gv_mul, gv_div, gv_max, gv_min
 *                       (max/min: if an operand is NaN, x86 and scalar return
 *                       the second operand, NEON NaN; pass the value that may
 *                       be NaN second, e.g. gv_max(gv_zero(), x), to keep it)
 *   gv_round(v)         round to nearest integer, ties to even
 *   gv_hsum(v)          horizontal sum
 *   gv_hmax(v)          horizontal max
 * and, built on those for every ISA (end of file):
 *   gv_exp(v)           exp, <= 2 ulp on [-87.3, 88], saturating outside
 *   gv_sigmoid(v)       1 / (1 + exp(-v)), absolute error < 1e-7
 *   gv_tanh(v)          rational approximation, absolute error < 5e-7
 * (vector gates of RNN cells; NaN in gives NaN out).
 */
#ifndef GRIMC_SIMD_H
#define GRIMC_SIMD_H

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define GRIMC_VW 16
#define GRIMC_ISA "avx512"
typedef __m512 gv_t;
static inline gv_t gv_zero(void) { return _mm512_setzero_ps(); }
static inline gv_t gv_set1(float x) { return _mm512_set1_ps(x); }
static inline gv_t gv_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void gv_store(float *p, gv_t v) { _mm512_storeu_ps(p, v); }
static inline __mmask16 gv_mask_(int n) { return (__mmask16)((1u << n) - 1u); }
static inline gv_t gv_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(gv_mask_(n), p); }
static inline void gv_store_n(float *p, gv_t v, int n) { _mm512_mask_storeu_ps(p, gv_mask_(n), v); }
static inline gv_t gv_fmadd(gv_t a, gv_t b, gv_t c) { return _mm512_fmadd_ps(a, b, c); }
static inline gv_t gv_add(gv_t a, gv_t b) { return _mm512_add_ps(a, b); }
static inline gv_t gv_sub(gv_t a, gv_t b) { return _mm512_sub_ps(a, b); }
static inline gv_t gv_mul(gv_t a, gv_t b) { return _mm512_mul_ps(a, b); }
static inline gv_t gv_div(gv_t a, gv_t b) { return _mm512_div_ps(a, b); }
static inline gv_t gv_round(gv_t v) {
    return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* 2^n for integral n in [-126, 127] (gv_exp's scaling). */
static inline gv_t gv_pow2i_(gv_t n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
static inline gv_t gv_max(gv_t a, gv_t b) { return _mm512_max_ps(a, b); }
static inline gv_t gv_min(gv_t a, gv_t b) { return _mm512_min_ps(a, b); }
static inline float gv_hsum(gv_t v) { return _mm512_reduce_add_ps(v); }
static inline float gv_hmax(gv_t v) { return _mm512_reduce_max_ps(v); }

#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GRIMC_VW 8
#define GRIMC_ISA "avx2"
typedef __m256 gv_t;
static inline gv_t gv_zero(void) { return _mm256_setzero_ps(); }
static inline gv_t gv_set1(float x) { return _mm256_set1_ps(x); }
static inline gv_t gv_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void gv_store(float *p, gv_t v) { _mm256_storeu_ps(p, v); }
static inline __m256i gv_mask_(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline gv_t gv_load_n(const float *p, int n) { return _mm256_maskload_ps(p, gv_mask_(n)); }
static inline void gv_store_n(float *p, gv_t v, int n) { _mm256_maskstore_ps(p, gv_mask_(n), v); }
static inline gv_t gv_fmadd(gv_t a, gv_t b, gv_t c) { return _mm256_fmadd_ps(a, b, c); }
static inline gv_t gv_add(gv_t a, gv_t b) { return _mm256_add_ps(a, b); }
static inline gv_t gv_sub(gv_t a, gv_t b) { return _mm256_sub_ps(a, b); }
static inline gv_t gv_mul(gv_t a, gv_t b) { return _mm256_mul_ps(a, b); }
static inline gv_t gv_div(gv_t a, gv_t b) { return _mm256_div_ps(a, b); }
static inline gv_t gv_round(gv_t v) {
    return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline gv_t gv_pow2i_(gv_t n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
static inline gv_t gv_max(gv_t a, gv_t b) { return _mm256_max_ps(a, b); }
static inline gv_t gv_min(gv_t a, gv_t b) { return _mm256_min_ps(a, b); }
static inline float gv_hsum(gv_t v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float gv_hmax(gv_t v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#elif defined(__ARM_NEON)
#include <arm_neon.h>
#define GRIMC_VW 4
#define GRIMC_ISA "neon"
typedef float32x4_t gv_t;
static inline gv_t gv_zero(void) { return vdupq_n_f32(0.0f); }
static inline gv_t gv_set1(float x) { return vdupq_n_f32(x); }
static inline gv_t gv_load(const float *p) { return vld1q_f32(p); }
static inline void gv_store(float *p, gv_t v) { vst1q_f32(p, v); }
static inline gv_t gv_load_n(const float *p, int n) {
    float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(tmp, p, (size_t)n * sizeof(float));
    return vld1q_f32(tmp);
}
static inline void gv_store_n(float *p, gv_t v, int n) {
    float tmp[4];
    vst1q_f32(tmp, v);
    memcpy(p, tmp, (size_t)n * sizeof(float));
}
static inline gv_t gv_fmadd(gv_t a, gv_t b, gv_t c) { return vfmaq_f32(c, a, b); }
static inline gv_t gv_add(gv_t a, gv_t b) { return vaddq_f32(a, b); }
static inline gv_t gv_sub(gv_t a, gv_t b) { return vsubq_f32(a, b); }
static inline gv_t gv_mul(gv_t a, gv_t b) { return vmulq_f32(a, b); }
static inline gv_t gv_div(gv_t a, gv_t b) { return vdivq_f32(a, b); }
static inline gv_t gv_round(gv_t v) { return vrndnq_f32(v); }
static inline gv_t gv_pow2i_(gv_t n) {
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23));
}
static inline gv_t gv_max(gv_t a, gv_t b) { return vmaxq_f32(a, b); }
static inline gv_t gv_min(gv_t a, gv_t b) { return vminq_f32(a, b); }
static inline float gv_hsum(gv_t v) { return vaddvq_f32(v); }
static inline float gv_hmax(gv_t v) { return vmaxvq_f32(v); }

#else
#include <math.h>
#define GRIMC_VW 1
#define GRIMC_ISA "scalar"
typedef float gv_t;
static inline gv_t gv_zero(void) { return 0.0f; }
static inline gv_t gv_set1(float x) { return x; }
static inline gv_t gv_load(const float *p) { return *p; }
static inline void gv_store(float *p, gv_t v) { *p = v; }
static inline gv_t gv_load_n(const float *p, int n) { return n > 0 ? *p : 0.0f; }
static inline void gv_store_n(float *p, gv_t v, int n) {
    if (n > 0) *p = v;
}
static inline gv_t gv_fmadd(gv_t a, gv_t b, gv_t c) { return a * b + c; }
static inline gv_t gv_add(gv_t a, gv_t b) { return a + b; }
static inline gv_t gv_sub(gv_t a, gv_t b) { return a - b; }
static inline gv_t gv_mul(gv_t a, gv_t b) { return a * b; }
static inline gv_t gv_div(gv_t a, gv_t b) { return a / b; }
static inline gv_t gv_round(gv_t v) { return nearbyintf(v); }
static inline gv_t gv_pow2i_(gv_t n) { return n == n ? ldexpf(1.0f, (int)n) : n; }
static inline gv_t gv_max(gv_t a, gv_t b) { return a > b ? a : b; }
static inline gv_t gv_min(gv_t a, gv_t b) { return a < b ? a : b; }
static inline float gv_hsum(gv_t v) { return v; }
static inline float gv_hmax(gv_t v) { return v; }
#endif

/* exp(x): Cephes' expf (range reduction by ln 2 in two parts, degree-6
 * polynomial, 2^n by exponent bits). x is clamped to [-87.3, 88] so that
 * 2^n stays a normal float: exp(-inf) gives 1.2e-38, not 0. The clamp keeps
 * NaN (max/min return their second operand when one is NaN). */
static inline gv_t gv_exp(gv_t x) {
    x = gv_min(gv_set1(88.0f), gv_max(gv_set1(-87.33654f), x));
    const gv_t n = gv_round(gv_mul(x, gv_set1(1.44269504088896341f)));
    gv_t r = gv_fmadd(n, gv_set1(-0.693359375f), x);
    r = gv_fmadd(n, gv_set1(2.12194440e-4f), r);
    gv_t p = gv_set1(1.9875691500e-4f);
    p = gv_fmadd(p, r, gv_set1(1.3981999507e-3f));
    p = gv_fmadd(p, r, gv_set1(8.3334519073e-3f));
    p = gv_fmadd(p, r, gv_set1(4.1665795894e-2f));
    p = gv_fmadd(p, r, gv_set1(1.6666665459e-1f));
    p = gv_fmadd(p, r, gv_set1(5.0000001201e-1f));
    p = gv_fmadd(p, gv_mul(r, r), gv_add(r, gv_set1(1.0f)));
    return gv_mul(p, gv_pow2i_(n));
}

/* Sigmoid 1 / (1 + exp(-x)); exp saturates, so no overflow and no select. */
static inline gv_t gv_sigmoid(gv_t x) {
    const gv_t one = gv_set1(1.0f);
    return gv_div(one, gv_add(one, gv_exp(gv_sub(gv_zero(), x))));
}

/* tanh(x) = x P(x^2) / Q(x^2) on [-9, 9] (Eigen's float tanh, degrees 13/6);
 * outside, tanh rounds to +-1 in float. Odd, exact at 0, |err| < 5e-7. */
static inline gv_t gv_tanh(gv_t x) {
    x = gv_min(gv_set1(9.0f), gv_max(gv_set1(-9.0f), x));
    const gv_t x2 = gv_mul(x, x);
    gv_t p = gv_set1(-2.76076847742355e-16f);
    p = gv_fmadd(p, x2, gv_set1(2.00018790482477e-13f));
    p = gv_fmadd(p, x2, gv_set1(-8.60467152213735e-11f));
    p = gv_fmadd(p, x2, gv_set1(5.12229709037114e-08f));
    p = gv_fmadd(p, x2, gv_set1(1.48572235717979e-05f));
    p = gv_fmadd(p, x2, gv_set1(6.37261928875436e-04f));
    p = gv_fmadd(p, x2, gv_set1(4.89352455891786e-03f));
    gv_t q = gv_set1(1.19825839466702e-06f);
    q = gv_fmadd(q, x2, gv_set1(1.18534705686654e-04f));
    q = gv_fmadd(q, x2, gv_set1(2.26843463243900e-03f));
    q = gv_fmadd(q, x2, gv_set1(4.89352518554385e-03f));
    return gv_div(gv_mul(x, p), q);
}

#endif /* GRIMC_SIMD_H */
