/* Fused dot products of one block-quantized weight row with an activation row quantized
 * once to int8 per 32 (decode, GEMV): integer products with maddubs/madd, so the weights
 * stream from memory once at their packed size. Offsets of unsigned codes (-8, -32) and
 * K-quant sub-block mins are folded in through per-16 sums of the activation codes. */
#include <math.h>

#include "../simd.h"

#ifdef LMX_X86
static inline LMX_AVX2 float f16s(const uint8_t *p) {
  return _cvtsh_ss((unsigned short)(p[0] | (p[1] << 8)));
}

#endif

/* ---- int8 activations: x quantized once per row, integer dot products ---- */

/* Quantizes x to int8 the way llama.cpp does for the same weight type, so that decode
 * matches it as closely as possible: per 32 with an f16 scale amax/127 for Q8_0/Q4_0
 * weights (block_q8_0), per 256 with scale 1/(-127/max) for the K-quants (block_q8_K).
 * dx holds one scale per 32 values either way; s16 sums the codes per 16. The same
 * definition as quantizeActivations in src/engine/backends/reference/kernels.ts. */
void lmx_quantize_x8(const float *x, int64_t K, int super, int8_t *q, float *dx, int32_t *s16) {
  const int n = super ? 256 : 32;
  for (int64_t b = 0; b < K / n; b++) {
    const float *xb = x + b * n;
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
      float a = fabsf(xb[i]);
      if (a > amax) { amax = a; max = xb[i]; }
    }
    float id, d;
    if (super) {
      id = amax > 0 ? -127.0f / max : 0;
      d = amax > 0 ? 1.0f / id : 0;
    } else {
      id = amax > 0 ? 127.0f / amax : 0;
      d = lmx_f16_to_f32(lmx_f32_to_f16(amax / 127.0f));
    }
    for (int i = 0; i < n; i++) {
      int v = (int)nearbyintf(xb[i] * id);
      v = v > 127 ? 127 : v < -127 ? -127 : v;
      q[b * n + i] = (int8_t)v;
    }
    for (int k = 0; k < n / 32; k++) dx[b * (n / 32) + k] = d;
  }
  for (int64_t g = 0; g < K / 16; g++) {
    int32_t s = 0;
    for (int i = 0; i < 16; i++) s += q[16 * g + i];
    s16[g] = s;
  }
}

#ifdef LMX_X86
static inline LMX_AVX2 __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

LMX_AVX2 float lmx_qdot8_q8_0(const int8_t *qx, const float *dx, const uint8_t *w, int64_t K) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 32; b++) {
    const uint8_t *p = w + b * 34;
    __m256i wq = _mm256_loadu_si256((const __m256i *)(p + 2)), xq = _mm256_loadu_si256((const __m256i *)(qx + 32 * b));
    __m256i s = dot_u8s8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(f16s(p) * dx[b]), acc);
  }
  return lmx_hsum8(acc);
}

LMX_AVX2 float lmx_qdot8_q4_0(const int8_t *qx, const float *dx, const int32_t *s16, const uint8_t *w, int64_t K) {
  const __m128i m4 = _mm_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps();
  float corr = 0;
  for (int64_t b = 0; b < K / 32; b++) {
    const uint8_t *p = w + b * 18;
    __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
    __m256i c = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
    __m256i s = dot_u8s8(c, _mm256_loadu_si256((const __m256i *)(qx + 32 * b)));
    const float k = f16s(p) * dx[b];
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(k), acc);
    corr += k * 8 * (float)(s16[2 * b] + s16[2 * b + 1]);
  }
  return lmx_hsum8(acc) - corr;
}

LMX_AVX2 float lmx_qdot8_q4_k(const int8_t *qx, const float *dx, const int32_t *s16, const uint8_t *w, int64_t K) {
  const __m256i m4 = _mm256_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * 144, *s = p + 4;
    const float d = f16s(p), dmin = f16s(p + 2);
    for (int c = 0; c < 4; c++) {
      int sc[2], m[2];
      lmx_scale_min_k4(s, 2 * c, &sc[0], &m[0]);
      lmx_scale_min_k4(s, 2 * c + 1, &sc[1], &m[1]);
      __m256i q = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
      __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      const int64_t xb = b * 8 + 2 * c; /* index of the 32-block of x */
      __m256i s0 = dot_u8s8(lo, _mm256_loadu_si256((const __m256i *)(qx + 32 * xb)));
      __m256i s1 = dot_u8s8(hi, _mm256_loadu_si256((const __m256i *)(qx + 32 * xb + 32)));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_set1_ps(d * sc[0] * dx[xb]), acc);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), _mm256_set1_ps(d * sc[1] * dx[xb + 1]), acc);
      mins += dmin * m[0] * dx[xb] * (float)(s16[2 * xb] + s16[2 * xb + 1]) + dmin * m[1] * dx[xb + 1] * (float)(s16[2 * xb + 2] + s16[2 * xb + 3]);
    }
  }
  return lmx_hsum8(acc) - mins;
}

LMX_AVX2 float lmx_qdot8_q6_k(const int8_t *qx, const float *dx, const int32_t *s16, const uint8_t *w, int64_t K) {
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  float corr = 0;
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
        const int e = 128 * h + 32 * k;
        const int64_t xb = b * 8 + e / 32;
        __m256i s = dot_u8s8(g[k], _mm256_loadu_si256((const __m256i *)(qx + 32 * xb)));
        const float k0 = d * sc[e >> 4] * dx[xb], k1 = d * sc[(e >> 4) + 1] * dx[xb];
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set_m128(_mm_set1_ps(k1), _mm_set1_ps(k0)), acc);
        corr += 32 * (k0 * (float)s16[2 * xb] + k1 * (float)s16[2 * xb + 1]);
      }
    }
  }
  return lmx_hsum8(acc) - corr;
}
#endif
