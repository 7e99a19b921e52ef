/* SIMD helpers shared by kernels. ISA variants are compiled with function-level target
 * attributes so one binary carries every path and picks one at run time. */
#ifndef LMX_SIMD_H
#define LMX_SIMD_H

#include "lmx.h"

#if defined(__x86_64__) || defined(__i386__)
#define LMX_X86 1
#include <immintrin.h>
#define LMX_AVX2 __attribute__((target("avx2,fma,f16c")))

/* Loads 8 consecutive elements of a float row as f32. */
static inline __attribute__((always_inline)) LMX_AVX2 __m256 lmx_load8(const void *p, int32_t dtype, int64_t i) {
  switch (dtype) {
    case LMX_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    case LMX_BF16: {
      __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    default: return _mm256_loadu_ps((const float *)p + i);
  }
}

/* Fused quantized dots (kernels/qdot.c); xsum holds per-32 sums of x for the K-quants. */
LMX_AVX2 float lmx_qdot_q8_0(const float *x, const uint8_t *w, int64_t K);
LMX_AVX2 float lmx_qdot_q4_0(const float *x, const uint8_t *w, int64_t K);
LMX_AVX2 float lmx_qdot_q4_k(const float *x, const float *xsum, const uint8_t *w, int64_t K);
LMX_AVX2 float lmx_qdot_q6_k(const float *x, const uint8_t *w, int64_t K);
LMX_AVX2 void lmx_xsum32(const float *x, int64_t K, float *out);

static inline LMX_AVX2 float lmx_hsum8(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}
#endif

static inline float lmx_elem(const void *p, int32_t dtype, int64_t i) {
  switch (dtype) {
    case LMX_F16: return lmx_f16_to_f32(((const uint16_t *)p)[i]);
    case LMX_BF16: return lmx_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
  }
}

/* Splits [0, n) into nth parts aligned to `align`; returns this thread's range. */
static inline void lmx_split(int64_t n, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi) {
  int64_t per = (n + nth - 1) / nth;
  per = (per + align - 1) / align * align;
  *lo = per * ith;
  *hi = *lo + per;
  if (*lo > n) *lo = n;
  if (*hi > n) *hi = n;
}

#endif
