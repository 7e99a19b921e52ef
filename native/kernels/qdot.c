/* Fused dot products of one block-quantized weight row with an activation row quantized
 * once to int8 per 32 (decode, GEMV): integer products, so the weights stream from memory
 * once at their packed size. Offsets of unsigned codes (-8, -16, -32) and sub-block mins
 * are folded in through per-16 sums of the activation codes. The kernels live in
 * qdot_x86.h, compiled here once per x86 tier (AVX2, AVX-VNNI, AVX-512 VNNI). */
#include <math.h>
#include <string.h>

#include "../simd.h"

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

/* The first of x's n values (n a multiple of 8) whose magnitude is amax, or 0 if none is
 * (amax NaN): what the scalar search below finds, 8 at a time. It had cost half of a
 * K-quant activation row's quantization (0.7 us per 1024 values on Zen 4), run per matmul
 * node in decode. */
static LMX_AVX2 float first_at_amax_avx2(const float *x, int n, float amax) {
  const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), want = _mm256_set1_ps(amax);
  for (int i = 0; i < n; i += 8) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs), want, _CMP_EQ_OQ));
    if (hit) return x[i + __builtin_ctz((unsigned)hit)];
  }
  return 0;
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
    /* Only super-blocks need max. */
#ifdef LMX_X86
    if (simd && super) max = first_at_amax_avx2(xb, n, amax);
#endif
    for (int i = 0; i < n && !simd; i++) {
      const float a = fabsf(xb[i]);
      if (a > amax) {
        amax = a;
        max = xb[i];
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

int64_t lmx_x8_bytes(int64_t K) {
  return (K + 4 * (K / 32) + 4 * (K / 16) + 2 * (K / 16) + 2 * (K / 32) + 8 * lmx_x8_nvfp4_lanes(K) + 63) / 64 * 64;
}

void lmx_x8_row(const float *x, int64_t K, int32_t wtype, int8_t *rec) {
  float *dx = (float *)(rec + K);
  int32_t *s16 = (int32_t *)(dx + K / 32);
  lmx_quantize_x8(x, K, lmx_x8_super(wtype), rec, dx, s16);
  int16_t *h16 = (int16_t *)(s16 + K / 16), *h32 = h16 + K / 16;
  for (int64_t i = 0; i < K / 16; i++) h16[i] = (int16_t)s16[i];
  for (int64_t i = 0; i < K / 32; i++) h32[i] = (int16_t)(s16[2 * i] + s16[2 * i + 1]);
  /* Interleaved K-quants read the codes in their weights' order; the sums per 16 and 32
   * are the same sets of codes. */
  if (wtype == LMX_Q4_K_I || wtype == LMX_Q6_K_I) lmx_x8_interleave(rec, K);
  if (wtype == LMX_NVFP4_I) {
    /* Codes in the weights' order; per block of 128 the per-16 factors of its sub-blocks
     * in order (lmx_x8_nvfp4_lanes has 8 lanes per 128). */
    lmx_x8_interleave_nvfp4(rec, K);
    float *k16 = (float *)(h32 + K / 32);
    int32_t *o16 = (int32_t *)(k16 + lmx_x8_nvfp4_lanes(K));
    for (int64_t l = 0; l < K / 16; l++) {
      k16[l] = dx[l / 2];
      o16[l] = 12 * s16[l];
    }
  }
  if (wtype == LMX_NVFP4) {
    /* Per 64-block, the activations of the low nibbles (elements 16s..16s+7 of sub-blocks
     * s = 0..3), then those of the high ones (16s+8..16s+15): the NVFP4 kernel's order. */
    for (int64_t i = 0; i < K; i += 64) {
      int8_t t[64];
      for (int j = 0; j < 32; j++) {
        t[j] = rec[i + 16 * (j >> 3) + (j & 7)];
        t[32 + j] = rec[i + 16 * (j >> 3) + 8 + (j & 7)];
      }
      memcpy(rec + i, t, 64);
    }
    float *k16 = (float *)(h32 + K / 32);
    int32_t *o16 = (int32_t *)(k16 + lmx_x8_nvfp4_lanes(K));
    const int64_t nb = K / 64;
    for (int64_t l = 0; l < lmx_x8_nvfp4_lanes(K); l++) {
      const int64_t blk = l / 8 * 2 + ((l >> 1) & 1), sb = (l & 1) + 2 * ((l >> 2) & 1);
      k16[l] = blk < nb ? dx[(64 * blk + 16 * sb) / 32] : 0;
      o16[l] = blk < nb ? 12 * s16[4 * blk + sb] : 0;
    }
  }
}

#ifdef LMX_X86
#define QD_ATTR LMX_AVX2
#define QD(name) name##_avx2
#define QD_DPBUSD(a, u, s) _mm256_add_epi32((a), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#define QD_DPWSSD(a, p, q) _mm256_add_epi32((a), _mm256_madd_epi16((p), (q)))
#define QD_PAIRS16 /* sums kept in int16 where they cannot overflow: fewer widening steps */
#include "qdot_x86.h"
#undef QD_PAIRS16
#undef QD_ATTR
#undef QD
#undef QD_DPBUSD
#undef QD_DPWSSD

#define QD_ATTR LMX_AVXVNNI
#define QD(name) name##_avxvnni
#define QD_DPBUSD(a, u, s) _mm256_dpbusd_avx_epi32((a), (u), (s))
#define QD_DPWSSD(a, p, q) _mm256_dpwssd_avx_epi32((a), (p), (q))
#include "qdot_x86.h"
#undef QD_ATTR
#undef QD
#undef QD_DPBUSD
#undef QD_DPWSSD

#define QD_ATTR LMX_AVX512
#define QD(name) name##_avx512
#define QD_DPBUSD(a, u, s) _mm256_dpbusd_epi32((a), (u), (s))
#define QD_DPWSSD(a, p, q) _mm256_dpwssd_epi32((a), (p), (q))
#define QD_ZMM /* 512-bit registers where a kernel has a form for them */
#include "qdot_x86.h"
#undef QD_ZMM
#undef QD_ATTR
#undef QD
#undef QD_DPBUSD
#undef QD_DPWSSD
#endif

lmx_qdotn_fn lmx_qdotn_for(int32_t dtype) {
  switch (lmx_isa()) {
#ifdef LMX_X86
    case LMX_ISA_AVX512: return qdotn_for_avx512(dtype);
    case LMX_ISA_AVXVNNI: return qdotn_for_avxvnni(dtype);
    case LMX_ISA_AVX2: return qdotn_for_avx2(dtype);
#endif
    default: return NULL;
  }
}
