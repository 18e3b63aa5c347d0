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
 *   gv_mask_t           a lane mask: gv_lt, gv_le, gv_eq (ordered), gv_isnan
 *   gv_select(m, a, b)  a where m is set, else b
 *   gv_sqrt, gv_abs
 *   gv_transpose(v)     transpose the GRIMC_VW x GRIMC_VW block v[0..GRIMC_VW) in
 *                       place: lane j of v[i] becomes the old lane i of v[j]
 * and, built on those for every ISA (end of file), with NaN in -> NaN out,
 * the limits at +-inf and the error bounds stated there:
 *   gv_exp, gv_log, gv_sigmoid, gv_tanh, gv_erf, gv_pow
 * and the activations on top of them (gv_silu, gv_gelu, gv_leaky_relu, ...).
 */
#ifndef GRIMC_SIMD_H
#define GRIMC_SIMD_H

#include <math.h>
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
/* x * 2^n for integral n in [-150, 129] (gv_exp's scaling): denormal and
 * overflowing results come out right (one scalef). */
static inline gv_t gv_ldexp_(gv_t x, gv_t n) { return _mm512_scalef_ps(x, n); }
/* 1 / d for d in [1, 2] (gv_sigmoid): 14-bit estimate, one Newton step
 * (exact at 1 and 2; the division would cost more than the rest). */
static inline gv_t gv_rcp_(gv_t d) {
    const gv_t r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}
static inline gv_t gv_max(gv_t a, gv_t b) { return _mm512_max_ps(a, b); }
static inline gv_t gv_min(gv_t a, gv_t b) { return _mm512_min_ps(a, b); }
static inline float gv_hsum(gv_t v) { return _mm512_reduce_add_ps(v); }
static inline float gv_hmax(gv_t v) { return _mm512_reduce_max_ps(v); }
/* Lane masks (comparisons are ordered: false when either lane is NaN). */
typedef __mmask16 gv_mask_t;
static inline gv_mask_t gv_lt(gv_t a, gv_t b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline gv_mask_t gv_le(gv_t a, gv_t b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
static inline gv_mask_t gv_eq(gv_t a, gv_t b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline gv_mask_t gv_isnan(gv_t a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
static inline gv_t gv_select(gv_mask_t m, gv_t a, gv_t b) { return _mm512_mask_blend_ps(m, b, a); }
static inline gv_t gv_sqrt(gv_t v) { return _mm512_sqrt_ps(v); }
static inline gv_t gv_abs(gv_t v) { return _mm512_abs_ps(v); }
/* 16x16: pairs of rows interleaved, then 4x4 blocks within 128-bit lanes,
 * then the 128-bit lanes across the four row quarters (64 shuffles). */
static inline void gv_transpose(gv_t *v) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {
        u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    for (int k = 0; k < 4; ++k) {
        const __m512 a = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x88);
        const __m512 b = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xdd);
        const __m512 c = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x88);
        const __m512 d = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xdd);
        v[k] = _mm512_shuffle_f32x4(a, c, 0x88);
        v[4 + k] = _mm512_shuffle_f32x4(b, d, 0x88);
        v[8 + k] = _mm512_shuffle_f32x4(a, c, 0xdd);
        v[12 + k] = _mm512_shuffle_f32x4(b, d, 0xdd);
    }
}
/* x = m * 2^e with m in [0.5, 1) for finite x > 0 (normal; gv_log scales denormals). */
static inline gv_t gv_frexp_(gv_t x, gv_t *e) {
    const __m512i i = _mm512_castps_si512(x);
    *e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(i, 23), _mm512_set1_epi32(126)));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(i, _mm512_set1_epi32(0x007fffff)),
                                               _mm512_set1_epi32(0x3f000000)));
}

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
/* 1 / d for d in [1, 2] (a 12-bit estimate and a Newton step miss 1/1 = 1). */
static inline gv_t gv_rcp_(gv_t d) { return _mm256_div_ps(_mm256_set1_ps(1.0f), d); }
/* 2^n for integral n in [-126, 127]. */
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
typedef __m256 gv_mask_t;
static inline gv_mask_t gv_lt(gv_t a, gv_t b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline gv_mask_t gv_le(gv_t a, gv_t b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
static inline gv_mask_t gv_eq(gv_t a, gv_t b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline gv_mask_t gv_isnan(gv_t a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
static inline gv_t gv_select(gv_mask_t m, gv_t a, gv_t b) { return _mm256_blendv_ps(b, a, m); }
static inline gv_t gv_sqrt(gv_t v) { return _mm256_sqrt_ps(v); }
static inline gv_t gv_abs(gv_t v) {
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7fffffff)));
}
/* 8x8: pairs of rows interleaved, 4x4 blocks within 128-bit lanes, then the lanes swapped. */
static inline void gv_transpose(gv_t *v) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {
        u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
        v[4 + k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
    }
}
static inline gv_t gv_frexp_(gv_t x, gv_t *e) {
    const __m256i i = _mm256_castps_si256(x);
    *e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(i, 23), _mm256_set1_epi32(126)));
    return _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(i, _mm256_set1_epi32(0x007fffff)),
                                               _mm256_set1_epi32(0x3f000000)));
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
static inline gv_t gv_rcp_(gv_t d) { return vdivq_f32(vdupq_n_f32(1.0f), d); }
static inline gv_t gv_pow2i_(gv_t n) {
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23));
}
static inline gv_t gv_max(gv_t a, gv_t b) { return vmaxq_f32(a, b); }
static inline gv_t gv_min(gv_t a, gv_t b) { return vminq_f32(a, b); }
static inline float gv_hsum(gv_t v) { return vaddvq_f32(v); }
static inline float gv_hmax(gv_t v) { return vmaxvq_f32(v); }
typedef uint32x4_t gv_mask_t;
static inline gv_mask_t gv_lt(gv_t a, gv_t b) { return vcltq_f32(a, b); }
static inline gv_mask_t gv_le(gv_t a, gv_t b) { return vcleq_f32(a, b); }
static inline gv_mask_t gv_eq(gv_t a, gv_t b) { return vceqq_f32(a, b); }
static inline gv_mask_t gv_isnan(gv_t a) { return vmvnq_u32(vceqq_f32(a, a)); }
static inline gv_t gv_select(gv_mask_t m, gv_t a, gv_t b) { return vbslq_f32(m, a, b); }
static inline gv_t gv_sqrt(gv_t v) { return vsqrtq_f32(v); }
static inline gv_t gv_abs(gv_t v) { return vabsq_f32(v); }
static inline void gv_transpose(gv_t *v) {
    const float32x4x2_t a = vtrnq_f32(v[0], v[1]), b = vtrnq_f32(v[2], v[3]);
    v[0] = vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0]));
    v[1] = vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1]));
    v[2] = vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0]));
    v[3] = vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1]));
}
static inline gv_t gv_frexp_(gv_t x, gv_t *e) {
    const uint32x4_t i = vreinterpretq_u32_f32(x);
    *e = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(i, 23)), vdupq_n_s32(126)));
    return vreinterpretq_f32_u32(vorrq_u32(vandq_u32(i, vdupq_n_u32(0x007fffff)), vdupq_n_u32(0x3f000000)));
}

#else
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
static inline gv_t gv_rcp_(gv_t d) { return 1.0f / d; }
static inline gv_t gv_pow2i_(gv_t n) { return n == n ? ldexpf(1.0f, (int)n) : n; }
static inline gv_t gv_max(gv_t a, gv_t b) { return a > b ? a : b; }
static inline gv_t gv_min(gv_t a, gv_t b) { return a < b ? a : b; }
static inline float gv_hsum(gv_t v) { return v; }
static inline float gv_hmax(gv_t v) { return v; }
typedef int gv_mask_t;
static inline gv_mask_t gv_lt(gv_t a, gv_t b) { return a < b; }
static inline gv_mask_t gv_le(gv_t a, gv_t b) { return a <= b; }
static inline gv_mask_t gv_eq(gv_t a, gv_t b) { return a == b; }
static inline gv_mask_t gv_isnan(gv_t a) { return a != a; }
static inline gv_t gv_select(gv_mask_t m, gv_t a, gv_t b) { return m ? a : b; }
static inline gv_t gv_sqrt(gv_t v) { return sqrtf(v); }
static inline gv_t gv_abs(gv_t v) { return fabsf(v); }
static inline void gv_transpose(gv_t *v) { (void)v; }
static inline gv_t gv_frexp_(gv_t x, gv_t *e) {
    unsigned i;
    memcpy(&i, &x, sizeof i);
    *e = (float)((int)(i >> 23) - 126);
    i = (i & 0x007fffffu) | 0x3f000000u;
    memcpy(&x, &i, sizeof x);
    return x;
}
#endif

#if !defined(__AVX512F__)
/* x * 2^n for integral n in [-150, 129] (gv_exp's scaling): 2^n as two
 * normal factors 2^(n/2) 2^(n - n/2), so denormal and overflowing results
 * come out right. */
static inline gv_t gv_ldexp_(gv_t x, gv_t n) {
    const gv_t n1 = gv_round(gv_mul(n, gv_set1(0.5f)));
    return gv_mul(gv_mul(x, gv_pow2i_(n1)), gv_pow2i_(gv_sub(n, n1)));
}
#endif

/* ---- vector math: one implementation on top of the gv_* primitives ------
 * Every function maps NaN to NaN and +-inf to the mathematical limit; the
 * error bounds below (ulp of the float32-rounded result; results below
 * 2^-126 within 2 denormal steps) hold over the whole float range (every
 * 4099th bit pattern, a dense sweep of [-110, 110], the special values),
 * checked against float64 numpy by tests/kernels/test_vector_math.py on
 * AVX2, AVX-512, NEON and scalar. */

/* exp(x), Cephes' expf: x = n ln2 + r (ln 2 split in two parts), degree-6
 * polynomial in r, then 2^n applied by gv_ldexp_, so the results below
 * 2^-126 come out as denormals (down to 0 below about -103.97) and above
 * 88.72 as +inf. Max error 2 ulp (measured 1.23). */
/* exp(x) for x in [-104, 88.8] (no NaN): the reduction, polynomial and scaling. */
static inline gv_t gv_exp_core_(gv_t x) {
    /* round(x / ln 2) by the 1.5 * 2^23 shifter: one fma and one sub */
    const gv_t shifter = gv_set1(12582912.0f);
    const gv_t n = gv_sub(gv_fmadd(x, gv_set1(1.44269504088896341f), shifter), shifter);
    gv_t r = gv_fmadd(n, gv_set1(-0.693359375f), x);
    r = gv_fmadd(n, gv_set1(2.12194440e-4f), r);
    gv_t p = gv_set1(1.9875691500e-4f);
    p = gv_fmadd(p, r, gv_set1(1.3981999507e-3f));
    p = gv_fmadd(p, r, gv_set1(8.3334519073e-3f));
    p = gv_fmadd(p, r, gv_set1(4.1665795894e-2f));
    p = gv_fmadd(p, r, gv_set1(1.6666665459e-1f));
    p = gv_fmadd(p, r, gv_set1(5.0000001201e-1f));
    p = gv_fmadd(p, gv_mul(r, r), gv_add(r, gv_set1(1.0f)));
    return gv_ldexp_(p, n);
}

static inline gv_t gv_exp(gv_t x) {
    const gv_t y = gv_exp_core_(gv_min(gv_set1(88.8f), gv_max(gv_set1(-104.0f), x)));
    return gv_select(gv_isnan(x), x, y);
}

/* log(x), Cephes' logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), degree-8
 * polynomial in m - 1; denormals are scaled by 2^23 first. x < 0 gives NaN,
 * +-0 gives -inf, +inf gives +inf. Max error 1 ulp (measured 0.76). */
static inline gv_t gv_log(gv_t x) {
    const gv_mask_t tiny = gv_lt(x, gv_set1(1.17549435e-38f));
    gv_t e;
    gv_t m = gv_frexp_(gv_select(tiny, gv_mul(x, gv_set1(8388608.0f)), x), &e);
    e = gv_select(tiny, gv_sub(e, gv_set1(23.0f)), e);
    const gv_mask_t small = gv_lt(m, gv_set1(0.707106781186547524f));
    e = gv_select(small, gv_sub(e, gv_set1(1.0f)), e);
    m = gv_sub(gv_select(small, gv_add(m, m), m), gv_set1(1.0f));
    const gv_t z = gv_mul(m, m);
    gv_t p = gv_set1(7.0376836292e-2f);
    p = gv_fmadd(p, m, gv_set1(-1.1514610310e-1f));
    p = gv_fmadd(p, m, gv_set1(1.1676998740e-1f));
    p = gv_fmadd(p, m, gv_set1(-1.2420140846e-1f));
    p = gv_fmadd(p, m, gv_set1(1.4249322787e-1f));
    p = gv_fmadd(p, m, gv_set1(-1.6668057665e-1f));
    p = gv_fmadd(p, m, gv_set1(2.0000714765e-1f));
    p = gv_fmadd(p, m, gv_set1(-2.4999993993e-1f));
    p = gv_fmadd(p, m, gv_set1(3.3333331174e-1f));
    gv_t y = gv_mul(gv_mul(p, m), z);
    y = gv_fmadd(e, gv_set1(-2.12194440e-4f), y);
    y = gv_fmadd(z, gv_set1(-0.5f), y);
    y = gv_fmadd(e, gv_set1(0.693359375f), gv_add(m, y));
    y = gv_select(gv_eq(x, gv_zero()), gv_set1(-INFINITY), y);
    y = gv_select(gv_eq(x, gv_set1(INFINITY)), x, y);
    return gv_select(gv_lt(x, gv_zero()), gv_set1(NAN), gv_select(gv_isnan(x), x, y));
}

/* exp(-y) for y in [0, 104] or NaN, Sigmoid's exponential: y = n ln2 + r
 * (ln 2 in two parts), degree-6 minimax polynomial for exp(-r) on
 * [-ln2/2, ln2/2] (relative error 3.1e-9 with its float coefficients, Horner),
 * then 2^-n applied by gv_ldexp_. Two operations fewer than gv_exp_core_
 * (Cephes' degree 7 there, and no negation of y here: the polynomial's odd
 * coefficients carry the sign). */
static inline gv_t gv_exp_neg_(gv_t y) {
    const gv_t shifter = gv_set1(12582912.0f);
    /* m = -round(y / ln 2), exactly */
    const gv_t m = gv_sub(shifter, gv_fmadd(y, gv_set1(1.44269504088896341f), shifter));
    gv_t r = gv_fmadd(m, gv_set1(0.693359375f), y);
    r = gv_fmadd(m, gv_set1(-2.12194440e-4f), r);
    gv_t p = gv_set1(1.3820661697536707e-3f);
    p = gv_fmadd(p, r, gv_set1(-8.368674665689468e-3f));
    p = gv_fmadd(p, r, gv_set1(4.166826605796814e-2f));
    p = gv_fmadd(p, r, gv_set1(-1.666652113199234e-1f));
    p = gv_fmadd(p, r, gv_set1(4.999999403953552e-1f));
    p = gv_fmadd(p, r, gv_set1(-1.0f));
    p = gv_fmadd(p, r, gv_set1(1.0f));
    return gv_ldexp_(p, m);
}

/* Sigmoid 1 / (1 + exp(-x)) as r = 1 / (1 + e), e = exp(-|x|) <= 1, and
 * e r for x < 0: no overflow, and the negative tail keeps its relative
 * accuracy down to the denormals. NaN propagates through every step (min
 * keeps its NaN operand, x < 0 is false), so it needs no select of its own.
 * Max error 4 ulp (measured 2.78 on AVX-512, 2.82 on plain C, over every
 * float in [-4, -1] and every 3rd in [1e-4, 110], both signs). */
static inline gv_t gv_sigmoid(gv_t x) {
    const gv_t e = gv_exp_neg_(gv_min(gv_set1(104.0f), gv_abs(x)));
    const gv_t r = gv_rcp_(gv_add(gv_set1(1.0f), e));
    return gv_select(gv_lt(x, gv_zero()), gv_mul(e, r), r);
}

/* tanh(x) = x P(x^2) / Q(x^2) on [-9, 9] (Eigen's float tanh, degrees 13/6);
 * outside, tanh rounds to +-1 in float. Odd, exact at 0. x (P / Q), not
 * (x P) / Q, keeps tiny x from underflowing. Max error 6 ulp (measured 5.1). */
static inline gv_t gv_tanh(gv_t x) {
    const gv_t xc = gv_min(gv_set1(9.0f), gv_max(gv_set1(-9.0f), x));
    const gv_t x2 = gv_mul(xc, xc);
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
    const gv_t y = gv_mul(xc, gv_div(p, q));
    return gv_select(gv_isnan(x), x, y);
}

/* erf(x): for |x| < 1.5, x P(x^2) / Q(x^2) (Eigen's float erf, degrees 13/8).
 * Beyond, erf's results lie in [0.96, 1), where a float's spacing is half its
 * relative precision and the rational's rounding counts double (up to 8 ulp):
 * there erf = 1 - erfc(a), a = |x|, with erfc(a) = exp(-a^2) R(1/a^2) / a and R
 * of degree 7 (relative error 7e-8 on [1.5, 4]; erfc < 2e-8 beyond, where the
 * result rounds to +-1). Odd, exact at 0. Max error 6 ulp (measured 4.1). */
static inline gv_t gv_erf(gv_t x) {
    const gv_t xc = gv_min(gv_set1(1.5f), gv_max(gv_set1(-1.5f), x));
    const gv_t x2 = gv_mul(xc, xc);
    gv_t p = gv_set1(-2.72614225801306e-10f);
    p = gv_fmadd(p, x2, gv_set1(2.77068142495902e-08f));
    p = gv_fmadd(p, x2, gv_set1(-2.10102402082508e-06f));
    p = gv_fmadd(p, x2, gv_set1(-5.69250639462346e-05f));
    p = gv_fmadd(p, x2, gv_set1(-7.34990630326855e-04f));
    p = gv_fmadd(p, x2, gv_set1(-2.95459980854025e-03f));
    p = gv_fmadd(p, x2, gv_set1(-1.60960333262415e-02f));
    gv_t q = gv_set1(-1.45660718464996e-05f);
    q = gv_fmadd(q, x2, gv_set1(-2.13374055278905e-04f));
    q = gv_fmadd(q, x2, gv_set1(-1.68282697438203e-03f));
    q = gv_fmadd(q, x2, gv_set1(-7.37332916720468e-03f));
    q = gv_fmadd(q, x2, gv_set1(-1.42647390514189e-02f));
    const gv_t near = gv_mul(xc, gv_div(p, q));
    const gv_t a = gv_min(gv_set1(10.0f), gv_max(gv_set1(1.5f), gv_abs(x)));
    const gv_t ia = gv_div(gv_set1(1.0f), a);
    const gv_t u = gv_mul(ia, ia);
    gv_t r = gv_set1(-1.0863935947418213f);
    r = gv_fmadd(r, u, gv_set1(2.4963955879211426f));
    r = gv_fmadd(r, u, gv_set1(-2.590933084487915f));
    r = gv_fmadd(r, u, gv_set1(1.676340937614441f));
    r = gv_fmadd(r, u, gv_set1(-0.8308727145195007f));
    r = gv_fmadd(r, u, gv_set1(0.40596911311149597f));
    r = gv_fmadd(r, u, gv_set1(-0.28134453296661377f));
    r = gv_fmadd(r, u, gv_set1(0.5641756057739258f));
    const gv_t t = gv_sub(gv_set1(1.0f), gv_mul(gv_mul(gv_exp_neg_(gv_mul(a, a)), r), ia));
    const gv_t far = gv_select(gv_lt(x, gv_zero()), gv_sub(gv_zero(), t), t);
    const gv_t y = gv_select(gv_lt(gv_abs(x), gv_set1(1.5f)), near, far);
    return gv_select(gv_isnan(x), x, y);
}

/* ---- activations built on the functions above (fused epilogues and the
 * standalone element-wise kernels; scalar twins in grimc_math.h) ---------- */

static inline gv_t gv_silu(gv_t x) { return gv_mul(x, gv_sigmoid(x)); }

/* Gelu, exact form: x/2 (1 + erf(x / sqrt 2)). */
static inline gv_t gv_gelu(gv_t x) {
    const gv_t h = gv_mul(x, gv_set1(0.5f));
    return gv_fmadd(h, gv_erf(gv_mul(x, gv_set1(0.70710678118654752f))), h);
}

/* Gelu, tanh form: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
static inline gv_t gv_gelu_tanh(gv_t x) {
    const gv_t h = gv_mul(x, gv_set1(0.5f));
    const gv_t u = gv_mul(gv_fmadd(gv_mul(x, x), gv_set1(0.044715f), gv_set1(1.0f)), x);
    return gv_fmadd(h, gv_tanh(gv_mul(u, gv_set1(0.79788456080286536f))), h);
}

static inline gv_t gv_leaky_relu(gv_t x, float alpha) {
    return gv_select(gv_lt(x, gv_zero()), gv_mul(x, gv_set1(alpha)), x);
}

static inline gv_t gv_hard_sigmoid(gv_t x, float alpha, float beta) {
    const gv_t y = gv_fmadd(x, gv_set1(alpha), gv_set1(beta));
    return gv_min(gv_max(y, gv_zero()), gv_set1(1.0f));
}

static inline gv_t gv_hard_swish(gv_t x) {
    return gv_mul(x, gv_hard_sigmoid(x, 1.0f / 6.0f, 0.5f));
}

/* x ** y on float32 (ONNX Pow): exp(y log|x|), negated for x < 0 and odd
 * integral y, NaN for x < 0 and non-integral y; x ** 0 = 1 (also for NaN x).
 * Relative error about |y log x| * 2^-23 (the log's error scaled). */
static inline gv_t gv_pow(gv_t x, gv_t y) {
    const gv_t r = gv_exp(gv_mul(y, gv_log(gv_abs(x))));
    const gv_mask_t integral = gv_eq(gv_round(y), y);
    /* y - 2 round(y / 2) is +-1 exactly for odd integral y */
    const gv_t half = gv_round(gv_mul(y, gv_set1(0.5f)));
    const gv_mask_t odd = gv_eq(gv_abs(gv_fmadd(half, gv_set1(-2.0f), y)), gv_set1(1.0f));
    gv_t s = gv_select(odd, gv_sub(gv_zero(), r), r);
    s = gv_select(integral, s, gv_set1(NAN));
    s = gv_select(gv_lt(x, gv_zero()), s, r);
    return gv_select(gv_eq(y, gv_zero()), gv_set1(1.0f), s);
}

/* ---- comparisons and logic on boolean tensors: 0.0f false, 1.0f true ---- */
static inline gv_t gv_bool_(gv_mask_t m) { return gv_select(m, gv_set1(1.0f), gv_zero()); }
static inline gv_t gv_equal(gv_t a, gv_t b) { return gv_bool_(gv_eq(a, b)); }
static inline gv_t gv_less(gv_t a, gv_t b) { return gv_bool_(gv_lt(a, b)); }
static inline gv_t gv_less_or_equal(gv_t a, gv_t b) { return gv_bool_(gv_le(a, b)); }
static inline gv_t gv_and(gv_t a, gv_t b) { return gv_mul(a, b); }
static inline gv_t gv_or(gv_t a, gv_t b) { return gv_max(a, b); }
static inline gv_t gv_not(gv_t a) { return gv_sub(gv_set1(1.0f), a); }
/* Where: x where cond != 0, else y. */
static inline gv_t gv_where(gv_t cond, gv_t x, gv_t y) {
    return gv_select(gv_eq(cond, gv_zero()), y, x);
}

#endif /* GRIMC_SIMD_H */
