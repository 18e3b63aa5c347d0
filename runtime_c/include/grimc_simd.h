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
 *   gv_add, gv_sub, gv_mul, gv_max, gv_min
 *   gv_hsum(v)          horizontal sum
 *   gv_hmax(v)          horizontal max
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
static inline gv_t gv_max(gv_t a, gv_t b) { return vmaxq_f32(a, b); }
static inline gv_t gv_min(gv_t a, gv_t b) { return vminq_f32(a, b); }
static inline float gv_hsum(gv_t v) { return vaddvq_f32(v); }
static inline float gv_hmax(gv_t v) { return vmaxvq_f32(v); }

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
static inline gv_t gv_max(gv_t a, gv_t b) { return a > b ? a : b; }
static inline gv_t gv_min(gv_t a, gv_t b) { return a < b ? a : b; }
static inline float gv_hsum(gv_t v) { return v; }
static inline float gv_hmax(gv_t v) { return v; }
#endif

#endif /* GRIMC_SIMD_H */
