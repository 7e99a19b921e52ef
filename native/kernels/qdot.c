/* Fused dot products of one block-quantized weight row with an activation row quantized
 * once to int8 per 32 (decode, GEMV): integer products with maddubs/madd, so the weights
 * stream from memory once at their packed size. Offsets of unsigned codes (-8, -32) and
 * K-quant sub-block mins are folded in through per-16 sums of the activation codes. */
#include <math.h>
#include <string.h>

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
#ifdef LMX_X86
/* The same codes as the scalar loop below (round to nearest even, then clamp), 8 at a time;
 * also writes the per-16 code sums. */
static LMX_AVX2 void codes_avx2(const float *x, int n, float id, int8_t *q, int32_t *s16) {
  const __m256 vid = _mm256_set1_ps(id);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  for (int i = 0; i < n; i += 16) {
    __m256i a = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i b = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    a = _mm256_min_epi32(_mm256_max_epi32(a, lo), hi);
    b = _mm256_min_epi32(_mm256_max_epi32(b, lo), hi);
    __m256i s = _mm256_add_epi32(a, b);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    s16[i / 16] = _mm_cvtsi128_si32(s4);
    /* int32 -> int16 -> int8 packs work per 128-bit lane; the permute restores the order. */
    __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8);
    __m128i c = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128((__m128i *)(q + i), c);
  }
}

static LMX_AVX2 float amax_avx2(const float *x, int n) {
  const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + i), abs));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}
#endif

void lmx_quantize_x8(const float *x, int64_t K, int super, int8_t *q, float *dx, int32_t *s16) {
  const int n = super ? 256 : 32;
#ifdef LMX_X86
  const int simd = lmx_use_avx2();
#else
  const int simd = 0;
#endif
  for (int64_t b = 0; b < K / n; b++) {
    const float *xb = x + b * n;
    /* amax, and the signed value of the first element reaching it (the super-block scale's sign). */
    float amax = 0, max = 0;
#ifdef LMX_X86
    if (simd) amax = amax_avx2(xb, n);
#endif
    for (int i = 0; i < n; i++) {
      const float a = fabsf(xb[i]);
      if (simd ? a == amax : a > amax) {
        amax = a;
        max = xb[i];
        if (simd) break;
      }
    }
    float id, d;
    if (super) {
      id = amax > 0 ? -127.0f / max : 0;
      d = amax > 0 ? 1.0f / id : 0;
    } else {
      id = amax > 0 ? 127.0f / amax : 0;
      d = lmx_f16_to_f32(lmx_f32_to_f16(amax / 127.0f));
    }
    for (int k = 0; k < n / 32; k++) dx[b * (n / 32) + k] = d;
#ifdef LMX_X86
    if (simd) {
      codes_avx2(xb, n, id, q + b * n, s16 + b * (n / 16));
      continue;
    }
#endif
    for (int i = 0; i < n; i++) {
      int v = (int)nearbyintf(xb[i] * id);
      v = v > 127 ? 127 : v < -127 ? -127 : v;
      q[b * n + i] = (int8_t)v;
    }
    for (int g = 0; g < n / 16; g++) {
      int32_t sum = 0;
      for (int i = 0; i < 16; i++) sum += q[b * n + 16 * g + i];
      s16[b * (n / 16) + g] = sum;
    }
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
    lmx_prefetch_ahead(p, 34);
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
    lmx_prefetch_ahead(p, 18);
    __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
    __m256i c = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
    __m256i s = dot_u8s8(c, _mm256_loadu_si256((const __m256i *)(qx + 32 * b)));
    const float k = f16s(p) * dx[b];
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(k), acc);
    corr += k * 8 * (float)(s16[2 * b] + s16[2 * b + 1]);
  }
  return lmx_hsum8(acc) - corr;
}

/* K-quants against Q8_K-style activations (one scale per 256): the products of each 32
 * (Q4_K) or 16 (Q6_K) elements are weighted by their integer sub-block scale with madd and
 * summed as int32 over the whole super-block, which is converted to float once; the
 * offsets (Q4_K mins, Q6_K's -32) come from the per-16 activation sums, also in integers. */
/* The 8 six-bit scales (bytes 0-7) and mins (bytes 8-15) of a Q4_K/Q5_K block, unpacked
 * from its 12 packed bytes with word operations (see lmx_scale_min_k4 for the layout). */
static inline __m128i scales_mins_k4(const uint8_t *s) {
  uint32_t w[3], o[4];
  memcpy(w, s, 12);
  const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, hi2 = 0xc0c0c0c0u;
  o[0] = w[0] & lo6;                                   /* scales 0-3 */
  o[1] = (w[2] & lo4) | ((w[0] & hi2) >> 2);           /* scales 4-7: low 4 bits, then bits 6-7 of bytes 0-3 */
  o[2] = w[1] & lo6;                                   /* mins 0-3 */
  o[3] = ((w[2] >> 4) & lo4) | ((w[1] & hi2) >> 2);    /* mins 4-7 */
  __m128i v;
  memcpy(&v, o, 16);
  return v;
}

/* Per-32 sums of the activation codes of one super-block, as 8 int32 in order. */
static inline LMX_AVX2 __m256i sums32(const int32_t *s16) {
  const __m256i a = _mm256_loadu_si256((const __m256i *)s16), b = _mm256_loadu_si256((const __m256i *)(s16 + 8));
  return _mm256_permute4x64_epi64(_mm256_hadd_epi32(a, b), 0xd8);
}

LMX_AVX2 float lmx_qdot8_q4_k(const int8_t *qx, const float *dx, const int32_t *s16, const uint8_t *w, int64_t K) {
  const __m256i m4 = _mm256_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * 144;
    lmx_prefetch_ahead(p, 144);
    const __m128i sm = scales_mins_k4(p + 4);
    /* The 8 scales as int16 in both 128-bit halves, so that a byte shuffle can spread any
     * one of them over a whole register. */
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    const int8_t *x = qx + 256 * b;
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      __m256i q = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
      __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(x + 64 * c)));
      __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 64 * c + 32)));
      const __m256i s0 = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(((4 * c + 1) << 8) | (4 * c))));
      const __m256i s1 = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(((4 * c + 3) << 8) | (4 * c + 2))));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, s0));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, s1));
    }
    const float dxb = dx[8 * b];
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(f16s(p) * dxb), acc);
    const __m256i mp = _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8)), sums32(s16 + 16 * b));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(mp), _mm256_extracti128_si256(mp, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    mins += f16s(p + 2) * dxb * (float)_mm_cvtsi128_si32(h);
  }
  return lmx_hsum8(acc) - mins;
}

/* Q5_K: Q4_K's layout plus a fifth bit per code in qh (bit 2c for the low nibbles of
 * chunk c, bit 2c+1 for the high ones). */
LMX_AVX2 float lmx_qdot8_q5_k(const int8_t *qx, const float *dx, const int32_t *s16, const uint8_t *w, int64_t K) {
  const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * 176, *s = p + 4;
    lmx_prefetch_ahead(p, 176);
    int sc[8], m[8];
    for (int j = 0; j < 8; j++) lmx_scale_min_k4(s, j, &sc[j], &m[j]);
    const int8_t *x = qx + 256 * b;
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 16));
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      __m256i q = _mm256_loadu_si256((const __m256i *)(p + 48 + 32 * c));
      __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
      __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
      __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
      __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
      __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(x + 64 * c)));
      __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 64 * c + 32)));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_set1_epi16((short)sc[2 * c])));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_set1_epi16((short)sc[2 * c + 1])));
    }
    const float dxb = dx[8 * b];
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(f16s(p) * dxb), acc);
    int32_t msum = 0;
    for (int j = 0; j < 8; j++) msum += m[j] * (s16[16 * b + 2 * j] + s16[16 * b + 2 * j + 1]);
    mins += f16s(p + 2) * dxb * (float)msum;
  }
  return lmx_hsum8(acc) - mins;
}

LMX_AVX2 float lmx_qdot8_q6_k(const int8_t *qx, const float *dx, const int32_t *s16, const uint8_t *w, int64_t K) {
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  float corr = 0;
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * 210;
    lmx_prefetch_ahead(p, 210);
    const int8_t *sc = (const int8_t *)(p + 192);
    const int8_t *x = qx + 256 * b;
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)sc);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      /* This half's 8 scales as int16 in both 128-bit halves, for byte shuffles below. */
      const __m256i sch = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
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
        __m256i prod = _mm256_maddubs_epi16(g[k], _mm256_loadu_si256((const __m256i *)(x + e)));
        /* Elements e..e+15 use scale 2k of this half, e+16..e+31 scale 2k+1. */
        const __m256i scv = _mm256_shuffle_epi8(
            sch, _mm256_set_m128i(_mm_set1_epi16((short)(((4 * k + 3) << 8) | (4 * k + 2))),
                                  _mm_set1_epi16((short)(((4 * k + 1) << 8) | (4 * k)))));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(prod, scv));
      }
    }
    /* Σ scale_j * (code sum of sub-block j), the -32 offsets, with one madd. */
    const __m256i s16p = _mm256_permute4x64_epi64(
        _mm256_packs_epi32(_mm256_loadu_si256((const __m256i *)(s16 + 16 * b)), _mm256_loadu_si256((const __m256i *)(s16 + 16 * b + 8))),
        0xd8);
    const __m256i op = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), s16p);
    __m128i oh = _mm_add_epi32(_mm256_castsi256_si128(op), _mm256_extracti128_si256(op, 1));
    oh = _mm_add_epi32(oh, _mm_shuffle_epi32(oh, 0x4e));
    oh = _mm_add_epi32(oh, _mm_shuffle_epi32(oh, 0xb1));
    const int32_t off = _mm_cvtsi128_si32(oh);
    const float k = f16s(p + 208) * dx[8 * b];
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(k), acc);
    corr += 32.0f * k * (float)off;
  }
  return lmx_hsum8(acc) - corr;
}

/* FP4 (E2M1) codes as int8 at twice their value, so that every code is an integer:
 * {0, .5, 1, 1.5, 2, 3, 4, 6} x 2 and negatives; block scales are halved to match. */
static inline LMX_AVX2 __m256i e2m1x2(__m256i codes) {
  const __m256i t = _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
                                     0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
  return _mm256_shuffle_epi8(t, codes);
}

/* NVFP4: 64 elements per block as 4 sub-blocks of 16 under UE4M3 scales; the activation
 * blocks of 32 each span two sub-blocks, whose scales go to the two halves of the lanes. */
LMX_AVX2 float lmx_qdot8_nvfp4(const int8_t *qx, const float *dx, const uint8_t *w, int64_t K) {
  const __m128i m4 = _mm_set1_epi8(15);
  const float *ue4m3_half = lmx_ue4m3_half();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 64; b++) {
    const uint8_t *p = w + b * 36;
    lmx_prefetch_ahead(p, 36);
    for (int h = 0; h < 2; h++) {
      /* Bytes 8s..8s+7 of sub-block s hold elements 16s+j (low) and 16s+8+j (high). */
      __m128i q = _mm_loadu_si128((const __m128i *)(p + 4 + 16 * h));
      __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
      __m256i c = _mm256_set_m128i(_mm_unpackhi_epi64(lo, hi), _mm_unpacklo_epi64(lo, hi));
      __m256i wv = e2m1x2(c), xv = _mm256_loadu_si256((const __m256i *)(qx + 64 * b + 32 * h));
      __m256i s = dot_u8s8(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
      const float d = dx[2 * b + h];
      __m256 k = _mm256_set_m128(_mm_set1_ps(d * ue4m3_half[p[2 * h + 1]]), _mm_set1_ps(d * ue4m3_half[p[2 * h]]));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), k, acc);
    }
  }
  return lmx_hsum8(acc);
}

/* MXFP4: 32 elements per block under a power-of-two scale; byte j holds elements j (low)
 * and j+16 (high). */
LMX_AVX2 float lmx_qdot8_mxfp4(const int8_t *qx, const float *dx, const uint8_t *w, int64_t K) {
  const __m128i m4 = _mm_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 32; b++) {
    const uint8_t *p = w + b * 17;
    lmx_prefetch_ahead(p, 17);
    __m128i q = _mm_loadu_si128((const __m128i *)(p + 1));
    __m256i c = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
    __m256i wv = e2m1x2(c), xv = _mm256_loadu_si256((const __m256i *)(qx + 32 * b));
    __m256i s = dot_u8s8(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    const float k = ldexpf(dx[b], (int)p[0] - 128);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(k), acc);
  }
  return lmx_hsum8(acc);
}
#endif
