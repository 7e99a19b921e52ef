/* SIMD helpers shared by kernels. ISA variants are compiled with function-level target
 * attributes so one binary carries every path and picks one at run time. */
#ifndef LMX_SIMD_H
#define LMX_SIMD_H

#include <stdlib.h>

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

/* Decode streams weights once: hardware prefetchers alone left Q8_0 decode ~12% slower
 * here than asking for the lines LMX_PREFETCH_BYTES ahead (2 KiB measured best of 0.5-8 KiB;
 * the LMX_PREFETCH_BYTES environment variable overrides it, 0 turns it off). */
#define LMX_PREFETCH_BYTES lmx_pf_bytes()
static inline int lmx_pf_bytes(void) {
  static int v = -1;
  if (v < 0) { const char *e = getenv("LMX_PREFETCH_BYTES"); v = e ? atoi(e) : 2048; }
  return v;
}
/* Prefetches the cache lines of a block of `bytes` bytes LMX_PREFETCH_BYTES after p. */
static inline __attribute__((always_inline)) void lmx_prefetch_ahead(const uint8_t *p, int bytes) {
  const char *q = (const char *)p + LMX_PREFETCH_BYTES;
  for (int o = 0; o < bytes; o += 64) _mm_prefetch(q + o, _MM_HINT_T0);
}

/* int8-activation dots: x quantized per 32 (codes qx, scales dx, code sums per 16 s16). */
LMX_AVX2 float lmx_qdot8_q8_0(const int8_t *qx, const float *dx, const uint8_t *w, int64_t K);
LMX_AVX2 float lmx_qdot8_q4_0(const int8_t *qx, const float *dx, const int32_t *s16, const uint8_t *w, int64_t K);
LMX_AVX2 float lmx_qdot8_q4_k(const int8_t *qx, const float *dx, const int32_t *s16, const uint8_t *w, int64_t K);
LMX_AVX2 float lmx_qdot8_q5_k(const int8_t *qx, const float *dx, const int32_t *s16, const uint8_t *w, int64_t K);
LMX_AVX2 float lmx_qdot8_q6_k(const int8_t *qx, const float *dx, const int32_t *s16, const uint8_t *w, int64_t K);
LMX_AVX2 float lmx_qdot8_nvfp4(const int8_t *qx, const float *dx, const uint8_t *w, int64_t K);
LMX_AVX2 float lmx_qdot8_mxfp4(const int8_t *qx, const float *dx, const uint8_t *w, int64_t K);

static inline LMX_AVX2 float lmx_hsum8(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}
#endif

/* Quantizes an activation row to int8 as llama.cpp does for Q8_0 (super = 0) or K-quant
 * (super = 1) weights; dx gets one scale per 32 values, s16 the code sums per 16. */
void lmx_quantize_x8(const float *x, int64_t K, int super, int8_t *q, float *dx, int32_t *s16);

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
