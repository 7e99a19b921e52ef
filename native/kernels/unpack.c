/* Block-quantized rows as unsigned 8-bit codes u with one scale d and one offset o per
 * sub-block of lmx_unpack_sb(dtype) values, so that every weight is exactly d * u + o
 * (Q8_0: signed codes, o = 0). This is the one form the int8 GEMM (gemm_q8.c) consumes,
 * whatever the file's format: prefill converts each block of weight rows once and reuses
 * it for every token. Scales and offsets are the dequantizers' own products (dequant.c),
 * exact in f32. */
#include <math.h>
#include <string.h>

#include "../simd.h"

const uint8_t lmx_e2m1x2p12[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};

int lmx_unpack_sb(int32_t dtype) {
  return dtype == LMX_Q6_K || dtype == LMX_NVFP4 ? 16 : 32;
}

static void q5_codes(const uint8_t *qh4, const uint8_t *qs, uint8_t *u) {
  uint32_t h;
  memcpy(&h, qh4, 4);
  for (int j = 0; j < 16; j++) {
    u[j] = (uint8_t)((qs[j] & 15) | (((h >> j) & 1) << 4));
    u[j + 16] = (uint8_t)((qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4));
  }
}

#ifdef LMX_X86
/* The 64 codes of an NVFP4 block (32 bytes at q; sub-block s is bytes 8s..8s+7, low
 * nibbles first) in element order, as the table above maps them. */
static LMX_AVX2 void nvfp4_codes_avx2(const uint8_t *q, uint8_t *u) {
  const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lmx_e2m1x2p12)), m4 = _mm256_set1_epi8(15);
  const __m256i v = _mm256_loadu_si256((const __m256i *)q);
  const __m256i lo = _mm256_shuffle_epi8(t, _mm256_and_si256(v, m4)), hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
  /* Per 128-bit lane: sub-blocks 0 and 1 (2 and 3) as low then high nibbles. */
  const __m256i s02 = _mm256_unpacklo_epi64(lo, hi), s13 = _mm256_unpackhi_epi64(lo, hi);
  _mm256_storeu_si256((__m256i *)u, _mm256_permute2x128_si256(s02, s13, 0x20));
  _mm256_storeu_si256((__m256i *)(u + 32), _mm256_permute2x128_si256(s02, s13, 0x31));
}
#endif

/* The codes of one NVFP4 block, with the SIMD version where the CPU has it. */
static void nvfp4_codes(const uint8_t *q, uint8_t *u, int simd) {
#ifdef LMX_X86
  if (simd) {
    nvfp4_codes_avx2(q, u);
    return;
  }
#endif
  (void)simd;
  for (int s = 0; s < 4; s++)
    for (int j = 0; j < 8; j++) {
      u[16 * s + j] = lmx_e2m1x2p12[q[8 * s + j] & 15];
      u[16 * s + j + 8] = lmx_e2m1x2p12[q[8 * s + j] >> 4];
    }
}

void lmx_unpack_row(const void *src, int32_t dtype, int64_t K, uint8_t *u, float *d, float *o) {
  const uint8_t *p = (const uint8_t *)src;
  const int64_t nb = K / lmx_block_size(dtype), bb = lmx_block_bytes(dtype);
  const float *ue4m3_half = dtype == LMX_NVFP4 ? lmx_ue4m3_half() : NULL;
#ifdef LMX_X86
  const int simd = lmx_use_avx2();
#else
  const int simd = 0;
#endif
  for (int64_t i = 0; i < nb; i++, p += bb) {
    switch (dtype) {
      case LMX_Q8_0:
        memcpy(u + 32 * i, p + 2, 32);
        d[i] = lmx_f16_le(p);
        o[i] = 0;
        break;
      case LMX_Q4_0:
      case LMX_Q4_1: {
        const int q41 = dtype == LMX_Q4_1;
        const uint8_t *qs = p + (q41 ? 4 : 2);
        for (int j = 0; j < 16; j++) {
          u[32 * i + j] = qs[j] & 15;
          u[32 * i + j + 16] = qs[j] >> 4;
        }
        d[i] = lmx_f16_le(p);
        o[i] = q41 ? lmx_f16_le(p + 2) : -8 * d[i];
        break;
      }
      case LMX_Q5_0:
        q5_codes(p + 2, p + 6, u + 32 * i);
        d[i] = lmx_f16_le(p);
        o[i] = -16 * d[i];
        break;
      case LMX_Q5_1:
        q5_codes(p + 4, p + 8, u + 32 * i);
        d[i] = lmx_f16_le(p);
        o[i] = lmx_f16_le(p + 2);
        break;
      case LMX_Q4_K:
      case LMX_Q5_K: {
        const int q5 = dtype == LMX_Q5_K;
        const float dd = lmx_f16_le(p), dmin = lmx_f16_le(p + 2);
        const uint8_t *qs = p + (q5 ? 48 : 16), *qh = p + 16;
        uint8_t *ub = u + 256 * i;
        for (int c = 0; c < 4; c++) {
          for (int l = 0; l < 32; l++) {
            const uint8_t q = qs[32 * c + l];
            ub[64 * c + l] = (uint8_t)((q & 15) | (q5 ? ((qh[l] >> (2 * c)) & 1) << 4 : 0));
            ub[64 * c + 32 + l] = (uint8_t)((q >> 4) | (q5 ? ((qh[l] >> (2 * c + 1)) & 1) << 4 : 0));
          }
        }
        for (int j = 0; j < 8; j++) {
          int sc, m;
          lmx_scale_min_k4(p + 4, j, &sc, &m);
          d[8 * i + j] = dd * sc;
          o[8 * i + j] = -(dmin * m);
        }
        break;
      }
      case LMX_Q6_K: {
        const float dd = lmx_f16_le(p + 208);
        const int8_t *sc = (const int8_t *)(p + 192);
        uint8_t *ub = u + 256 * i;
        for (int h = 0; h < 2; h++)
          for (int l = 0; l < 32; l++) {
            const uint8_t L = p[64 * h + l], L2 = p[64 * h + 32 + l], H = p[128 + 32 * h + l];
            ub[128 * h + l] = (uint8_t)((L & 15) | ((H & 3) << 4));
            ub[128 * h + 32 + l] = (uint8_t)((L2 & 15) | (((H >> 2) & 3) << 4));
            ub[128 * h + 64 + l] = (uint8_t)((L >> 4) | (((H >> 4) & 3) << 4));
            ub[128 * h + 96 + l] = (uint8_t)((L2 >> 4) | (((H >> 6) & 3) << 4));
          }
        for (int j = 0; j < 16; j++) {
          d[16 * i + j] = dd * sc[j];
          o[16 * i + j] = -32 * d[16 * i + j];
        }
        break;
      }
      case LMX_MXFP4: {
        for (int j = 0; j < 16; j++) {
          u[32 * i + j] = lmx_e2m1x2p12[p[1 + j] & 15];
          u[32 * i + j + 16] = lmx_e2m1x2p12[p[1 + j] >> 4];
        }
        d[i] = lmx_pow2_half(p[0]);
        o[i] = -12 * d[i];
        break;
      }
      case LMX_NVFP4:
        nvfp4_codes(p + 4, u + 64 * i, simd);
        for (int s = 0; s < 4; s++) {
          d[4 * i + s] = ue4m3_half[p[s]];
          o[4 * i + s] = -12 * d[4 * i + s];
        }
        break;
      default: break;
    }
  }
}
