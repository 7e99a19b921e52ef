/* Fused dot products of an f32 activation row with one block-quantized weight row, for
 * decode (GEMV): codes are widened to f32 in registers, never written out, so the weights
 * stream from memory once at their packed size. K-quants fold their sub-block mins in
 * through per-32 sums of the activations, computed once per row of x (xsum). */
#include "../simd.h"

#ifdef LMX_X86
static inline LMX_AVX2 float f16s(const uint8_t *p) {
  return _cvtsh_ss((unsigned short)(p[0] | (p[1] << 8)));
}

/* 8 int8 codes (low 8 bytes of v) as f32. */
static inline LMX_AVX2 __m256 i8x8(__m128i v) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

/* sum of 32 int8 codes times 32 activations. */
static inline LMX_AVX2 __m256 dot32_i8(__m256i q, const float *x, __m256 acc) {
  __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  acc = _mm256_fmadd_ps(i8x8(lo), _mm256_loadu_ps(x), acc);
  acc = _mm256_fmadd_ps(i8x8(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x + 8), acc);
  acc = _mm256_fmadd_ps(i8x8(hi), _mm256_loadu_ps(x + 16), acc);
  acc = _mm256_fmadd_ps(i8x8(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x + 24), acc);
  return acc;
}

/* sum of 16 int8 codes times 16 activations. */
static inline LMX_AVX2 __m256 dot16_i8(__m128i q, const float *x, __m256 acc) {
  acc = _mm256_fmadd_ps(i8x8(q), _mm256_loadu_ps(x), acc);
  return _mm256_fmadd_ps(i8x8(_mm_srli_si128(q, 8)), _mm256_loadu_ps(x + 8), acc);
}

LMX_AVX2 float lmx_qdot_q8_0(const float *x, const uint8_t *w, int64_t K) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= K / 32; b += 2) {
    const uint8_t *p = w + b * 34, *q = p + 34;
    __m256 s0 = dot32_i8(_mm256_loadu_si256((const __m256i *)(p + 2)), x + b * 32, _mm256_setzero_ps());
    __m256 s1 = dot32_i8(_mm256_loadu_si256((const __m256i *)(q + 2)), x + b * 32 + 32, _mm256_setzero_ps());
    a0 = _mm256_fmadd_ps(_mm256_set1_ps(f16s(p)), s0, a0);
    a1 = _mm256_fmadd_ps(_mm256_set1_ps(f16s(q)), s1, a1);
  }
  if (b < K / 32) {
    const uint8_t *p = w + b * 34;
    a0 = _mm256_fmadd_ps(_mm256_set1_ps(f16s(p)), dot32_i8(_mm256_loadu_si256((const __m256i *)(p + 2)), x + b * 32, _mm256_setzero_ps()), a0);
  }
  return lmx_hsum8(_mm256_add_ps(a0, a1));
}

LMX_AVX2 float lmx_qdot_q4_0(const float *x, const uint8_t *w, int64_t K) {
  const __m128i m4 = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
  __m256 a0 = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 32; b++) {
    const uint8_t *p = w + b * 18;
    __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
    __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight), hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
    __m256 s = dot16_i8(lo, x + b * 32, _mm256_setzero_ps());
    s = dot16_i8(hi, x + b * 32 + 16, s);
    a0 = _mm256_fmadd_ps(_mm256_set1_ps(f16s(p)), s, a0);
  }
  return lmx_hsum8(a0);
}

/* Sums of each run of 32 activations (for K-quant mins). */
LMX_AVX2 void lmx_xsum32(const float *x, int64_t K, float *out) {
  for (int64_t b = 0; b < K / 32; b++) {
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(x + 32 * b), _mm256_loadu_ps(x + 32 * b + 8)),
                             _mm256_add_ps(_mm256_loadu_ps(x + 32 * b + 16), _mm256_loadu_ps(x + 32 * b + 24)));
    out[b] = lmx_hsum8(s);
  }
}

LMX_AVX2 float lmx_qdot_q4_k(const float *x, const float *xsum, const uint8_t *w, int64_t K) {
  const __m256i m4 = _mm256_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * 144, *s = p + 4;
    const float d = f16s(p), dmin = f16s(p + 2);
    const float *xb = x + b * 256;
    for (int c = 0; c < 4; c++) {
      int sc0, m0, sc1, m1;
      if (c < 2) {
        sc0 = s[2 * c] & 63; m0 = s[2 * c + 4] & 63;
        sc1 = s[2 * c + 1] & 63; m1 = s[2 * c + 5] & 63;
      } else {
        const int j0 = 2 * c, j1 = 2 * c + 1;
        sc0 = (s[j0 + 4] & 15) | ((s[j0 - 4] >> 6) << 4); m0 = (s[j0 + 4] >> 4) | ((s[j0] >> 6) << 4);
        sc1 = (s[j1 + 4] & 15) | ((s[j1 - 4] >> 6) << 4); m1 = (s[j1 + 4] >> 4) | ((s[j1] >> 6) << 4);
      }
      __m256i q = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
      __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      __m256 s0 = dot32_i8(lo, xb + 64 * c, _mm256_setzero_ps());
      __m256 s1 = dot32_i8(hi, xb + 64 * c + 32, _mm256_setzero_ps());
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc0), s0, acc);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc1), s1, acc);
      mins += dmin * m0 * xsum[b * 8 + 2 * c] + dmin * m1 * xsum[b * 8 + 2 * c + 1];
    }
  }
  return lmx_hsum8(acc) - mins;
}

LMX_AVX2 float lmx_qdot_q6_k(const float *x, const uint8_t *w, int64_t K) {
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * 210;
    const int8_t *sc = (const int8_t *)(p + 192);
    const float d = f16s(p + 208);
    for (int h = 0; h < 2; h++) {
      __m256i L = _mm256_loadu_si256((const __m256i *)(p + 64 * h)), L2 = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32));
      __m256i H = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
      __m256i g[4] = {
          _mm256_or_si256(_mm256_and_si256(L, m4), _mm256_slli_epi16(_mm256_and_si256(H, m2), 4)),
          _mm256_or_si256(_mm256_and_si256(L2, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 2), m2), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 4), m2), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L2, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 6), m2), 4)),
      };
      for (int k = 0; k < 4; k++) {
        __m256i q = _mm256_sub_epi8(g[k], off);
        const int e = 128 * h + 32 * k;
        const float *xe = x + b * 256 + e;
        __m256 s0 = dot16_i8(_mm256_castsi256_si128(q), xe, _mm256_setzero_ps());
        __m256 s1 = dot16_i8(_mm256_extracti128_si256(q, 1), xe + 16, _mm256_setzero_ps());
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc[e >> 4]), s0, acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc[(e >> 4) + 1]), s1, acc);
      }
    }
  }
  return lmx_hsum8(acc);
}
#endif
