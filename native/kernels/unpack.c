/* Block-quantized rows in the forms the int8 GEMM (gemm_q8.c) consumes: prefill converts
 * each block of weight rows once and reuses it for every token.
 * - Unsigned 8-bit codes u with one scale d and one offset o per sub-block of 32
 *   (LMX_UNPACK_SB) values, so that every weight is exactly d * u + o (Q8_0: signed
 *   codes, o = 0): Q8_0, Q8_0_I, Q4_0, Q4_1, Q5_0, Q5_1, MXFP4. Scales and offsets are
 *   the dequantizers' own products (dequant.c), exact in f32.
 * - K form (Q4_K, Q5_K, Q4_K_I): unsigned codes u with an integer multiplier m (the 6-bit scale)
 *   and a float offset o (minus dmin times the 6-bit min) per sub-block of 32 and a
 *   float base d per 256: every weight is exactly d * m * u + o, so the GEMM sums a
 *   super-block's products in integers and needs one float step per 256 plus the offsets.
 * - Multiplier form (NVFP4, NVFP4_I, Q6_K, Q6_K_I): signed codes c with an integer multiplier m per
 *   sub-block of 16 and one float base per block of lmx_mult_ab(dtype) values that share
 *   one activation scale (NVFP4: the two sub-blocks of 32; Q6_K: its 256), so that every
 *   weight is exactly base * m * c: the GEMM sums such a block in integers and needs one
 *   float step per block instead of one per sub-block plus offsets. NVFP4's multipliers
 *   come from its UE4M3 scales under a common power of two; Q6_K's are its int8 scales. */
#include <string.h>

#include "../simd.h"

const uint8_t lmx_e2m1x2p12[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};
/* The same codes without the 12, as signed bytes (-12..12). */
static const int8_t e2m1x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static void q5_codes(const uint8_t *qh4, const uint8_t *qs, uint8_t *u) {
  uint32_t h;
  memcpy(&h, qh4, 4);
  for (int j = 0; j < 16; j++) {
    u[j] = (uint8_t)((qs[j] & 15) | (((h >> j) & 1) << 4));
    u[j + 16] = (uint8_t)((qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4));
  }
}

/* The 256 codes of a Q4_K (0..15) or Q5_K (0..31) block, as bytes. */
static void k4_codes(const uint8_t *p, int q5, uint8_t *ub) {
  const uint8_t *qs = p + (q5 ? 48 : 16), *qh = p + 16;
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) {
      const uint8_t q = qs[32 * c + l];
      ub[64 * c + l] = (uint8_t)((q & 15) | (q5 ? ((qh[l] >> (2 * c)) & 1) << 4 : 0));
      ub[64 * c + 32 + l] = (uint8_t)((q >> 4) | (q5 ? ((qh[l] >> (2 * c + 1)) & 1) << 4 : 0));
    }
}

/* The 256 codes of a Q6_K block (0..63) less 32, as signed bytes. */
static void q6k_codes(const uint8_t *p, int8_t *c) {
  for (int h = 0; h < 2; h++)
    for (int l = 0; l < 32; l++) {
      const uint8_t L = p[64 * h + l], L2 = p[64 * h + 32 + l], H = p[128 + 32 * h + l];
      c[128 * h + l] = (int8_t)(((L & 15) | ((H & 3) << 4)) - 32);
      c[128 * h + 32 + l] = (int8_t)(((L2 & 15) | (((H >> 2) & 3) << 4)) - 32);
      c[128 * h + 64 + l] = (int8_t)(((L >> 4) | (((H >> 4) & 3) << 4)) - 32);
      c[128 * h + 96 + l] = (int8_t)(((L2 >> 4) | (((H >> 6) & 3) << 4)) - 32);
    }
}

#ifdef LMX_X86
/* The 64 codes of an NVFP4 block (32 bytes at q; sub-block s is bytes 8s..8s+7, low
 * nibbles first) in element order, as table maps them. */
static LMX_AVX2 void nvfp4_codes_avx2(const uint8_t *q, const uint8_t *table, uint8_t *u) {
  const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)table)), m4 = _mm256_set1_epi8(15);
  const __m256i v = _mm256_loadu_si256((const __m256i *)q);
  const __m256i lo = _mm256_shuffle_epi8(t, _mm256_and_si256(v, m4)), hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
  /* Per 128-bit lane: sub-blocks 0 and 1 (2 and 3) as low then high nibbles. */
  const __m256i s02 = _mm256_unpacklo_epi64(lo, hi), s13 = _mm256_unpackhi_epi64(lo, hi);
  _mm256_storeu_si256((__m256i *)u, _mm256_permute2x128_si256(s02, s13, 0x20));
  _mm256_storeu_si256((__m256i *)(u + 32), _mm256_permute2x128_si256(s02, s13, 0x31));
}
#endif

/* The codes of one NVFP4 block, with the SIMD version where the CPU has it. */
static void nvfp4_codes(const uint8_t *q, const uint8_t *table, uint8_t *u, int simd) {
#ifdef LMX_X86
  if (simd) {
    nvfp4_codes_avx2(q, table, u);
    return;
  }
#endif
  (void)simd;
  for (int s = 0; s < 4; s++)
    for (int j = 0; j < 8; j++) {
      u[16 * s + j] = table[q[8 * s + j] & 15];
      u[16 * s + j + 8] = table[q[8 * s + j] >> 4];
    }
}

void lmx_unpack_row(const void *src, int32_t dtype, int64_t K, uint8_t *u, float *d, float *o) {
  const uint8_t *p = (const uint8_t *)src;
  const int64_t nb = K / lmx_block_size(dtype), bb = lmx_block_bytes(dtype);
  for (int64_t i = 0; i < nb; i++, p += bb) {
    switch (dtype) {
      case LMX_Q8_0:
        memcpy(u + 32 * i, p + 2, 32);
        d[i] = lmx_f16_le(p);
        o[i] = 0;
        break;
      case LMX_Q8_0_I:
        memcpy(u + 256 * i, p + 16, 256);
        for (int b = 0; b < 8; b++) {
          d[8 * i + b] = lmx_f16_le(p + 2 * b);
          o[8 * i + b] = 0;
        }
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
      case LMX_MXFP4: {
        for (int j = 0; j < 16; j++) {
          u[32 * i + j] = lmx_e2m1x2p12[p[1 + j] & 15];
          u[32 * i + j + 16] = lmx_e2m1x2p12[p[1 + j] >> 4];
        }
        d[i] = lmx_pow2_half(p[0]);
        o[i] = -12 * d[i];
        break;
      }
      default: break;
    }
  }
}

/* Half an NVFP4 scale byte's value (the codes are doubled) as n * 2^k with n odd or 0:
 * UE4M3 is m * 2^-9 for exponent 0 and (8 + m) * 2^(e - 10) otherwise; the sign bit is
 * ignored and 0x7f (NaN) reads as 0, as in dequant.c. */
static inline void ue4m3_half_parts(uint8_t b, int *n, int *k) {
  b &= 0x7f;
  const int e = b >> 3, m = b & 7, nn = b == 0x7f ? 0 : e ? 8 + m : m, tz = nn ? __builtin_ctz((unsigned)nn) : 0;
  *n = nn >> tz;
  *k = (e ? e - 11 : -10) + tz;
}

/* The same for an NVFP4_I scale byte (interleave.c): (8 + m) 2^(E - 14), 0 for byte 0. */
static inline void nvfp4i_half_parts(uint8_t b, int *n, int *k) {
  const int nn = b ? 8 + (b & 7) : 0, tz = nn ? __builtin_ctz((unsigned)nn) : 0;
  *n = nn >> tz;
  *k = (b >> 3) - 14 + tz;
}

/* 2^k as a float, for the k of ue4m3_half_parts and nvfp4i_half_parts (-10..7). */
static float pow2f(int k) {
  const uint32_t bits = (uint32_t)(k + 127) << 23;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

#ifdef LMX_X86
/* nvfp4i_half_parts and the pairing of lmx_unpack_mult for the 8 scale bytes of an
 * NVFP4_I block of 128 (4 pairs) at once: the same multipliers and bases, written to
 * m[s * stride] (s = 0..7) and base[h * stride] (h = 0..3). Returns whether a multiplier
 * exceeds 32767. */
static LMX_AVX2 int nvfp4i_mults_avx2(const uint8_t *sc, int32_t *m, float *base, int64_t stride) {
  const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sc)), mant = _mm256_and_si256(b, _mm256_set1_epi32(7));
  /* 8 + mant with its trailing zeros taken out: n odd, tz the zeros. */
  const __m256i zero = _mm256_cmpeq_epi32(b, _mm256_setzero_si256());
  const __m256i n = _mm256_andnot_si256(zero, _mm256_permutevar8x32_epi32(_mm256_setr_epi32(1, 9, 5, 11, 3, 13, 7, 15), mant));
  const __m256i tz = _mm256_permutevar8x32_epi32(_mm256_setr_epi32(3, 0, 1, 0, 2, 0, 1, 0), mant);
  const __m256i k = _mm256_add_epi32(_mm256_sub_epi32(_mm256_srli_epi32(b, 3), _mm256_set1_epi32(14)), tz);
  /* A zero scale takes no part in its pair's common exponent. */
  const __m256i none = _mm256_set1_epi32(1 << 20), kk = _mm256_blendv_epi8(k, none, zero);
  const __m256i kmin = _mm256_min_epi32(kk, _mm256_shuffle_epi32(kk, 0xb1));
  const __m256i mv = _mm256_sllv_epi32(n, _mm256_sub_epi32(k, kmin));
  const __m256i bits = _mm256_andnot_si256(_mm256_cmpeq_epi32(kmin, none), _mm256_slli_epi32(_mm256_add_epi32(kmin, _mm256_set1_epi32(127)), 23));
  int32_t mm[8], bb[8];
  _mm256_storeu_si256((__m256i *)mm, mv);
  _mm256_storeu_si256((__m256i *)bb, bits);
  for (int s = 0; s < 8; s++) m[s * stride] = mm[s];
  for (int h = 0; h < 4; h++) memcpy(base + h * stride, bb + 2 * h, 4);
  return !_mm256_testz_si256(_mm256_cmpgt_epi32(mv, _mm256_set1_epi32(32767)), _mm256_set1_epi32(-1));
}
#endif

int lmx_mult_ab(int32_t dtype) {
  const int32_t t = lmx_interleaved_base(dtype);
  return t == LMX_NVFP4 ? 32 : t == LMX_Q6_K ? 256 : 0;
}

int lmx_unpack_mult(const void *src, int32_t dtype, int64_t K, int8_t *c, int32_t *m, float *base, int64_t stride) {
  const uint8_t *p = (const uint8_t *)src;
  if (dtype == LMX_Q6_K || dtype == LMX_Q6_K_I) {
    /* Codes 0..63 less 32, the int8 scales as multipliers, d as the base. */
    for (int64_t i = 0; i < K / 256; i++, p += 210) {
      if (dtype == LMX_Q6_K) {
        q6k_codes(p, c + 256 * i);
      } else {
        uint8_t *u = (uint8_t *)c + 256 * i;
        lmx_interleaved_codes(p, dtype, u);
        for (int j = 0; j < 256; j++) u[j] = (uint8_t)(u[j] - 32);
      }
      for (int j = 0; j < 16; j++) m[(16 * i + j) * stride] = ((const int8_t *)p)[192 + j];
      base[i * stride] = lmx_f16_le(p + 208);
    }
    return 0;
  }
#ifdef LMX_X86
  const int simd = lmx_use_avx2();
#else
  const int simd = 0;
#endif
  int wide = 0;
  const int il = dtype == LMX_NVFP4_I;
  for (int64_t i = 0; i < K / 64; i++) {
    /* NVFP4_I: block i is half of a block of 128 whose scales lead it. */
    const uint8_t *sc = il ? p + 72 * (i >> 1) + 4 * (i & 1) : p + 36 * i;
    if (!il) nvfp4_codes(sc + 4, (const uint8_t *)e2m1x2, (uint8_t *)c + 64 * i, simd);
    else if (!(i & 1)) lmx_nvfp4i_codes(sc, (const uint8_t *)e2m1x2, (uint8_t *)c + 64 * i);
#ifdef LMX_X86
    if (il && simd) {
      if (!(i & 1)) wide |= nvfp4i_mults_avx2(sc, m + 4 * i * stride, base + 2 * i * stride, stride);
      continue;
    }
#endif
    for (int h = 0; h < 2; h++) {
      int n0, k0, n1, k1;
      /* Direct calls, not through a pointer: inlined, they cost a third of the time. */
      if (il) nvfp4i_half_parts(sc[2 * h], &n0, &k0), nvfp4i_half_parts(sc[2 * h + 1], &n1, &k1);
      else ue4m3_half_parts(sc[2 * h], &n0, &k0), ue4m3_half_parts(sc[2 * h + 1], &n1, &k1);
      /* A zero scale takes no part in the choice of the common exponent. */
      const int kmin = !n0 ? k1 : !n1 ? k0 : k0 < k1 ? k0 : k1;
      const int32_t m0 = n0 << (n0 ? k0 - kmin : 0), m1 = n1 << (n1 ? k1 - kmin : 0);
      wide |= m0 > 32767 || m1 > 32767;
      m[(4 * i + 2 * h) * stride] = m0;
      m[(4 * i + 2 * h + 1) * stride] = m1;
      base[(2 * i + h) * stride] = n0 || n1 ? pow2f(kmin) : 0;
    }
  }
  return wide;
}

void lmx_unpack_k4(const void *src, int32_t dtype, int64_t K, uint8_t *u, int32_t *m, float *o, float *base, int64_t stride) {
  const uint8_t *p = (const uint8_t *)src;
  const int q5 = dtype == LMX_Q5_K;
  for (int64_t i = 0; i < K / 256; i++, p += q5 ? 176 : 144) {
    const float dmin = lmx_f16_le(p + 2);
    if (dtype == LMX_Q4_K_I) lmx_interleaved_codes(p, dtype, u + 256 * i);
    else k4_codes(p, q5, u + 256 * i);
    for (int j = 0; j < 8; j++) {
      int sc, mn;
      lmx_scale_min_k4(p + 4, j, &sc, &mn);
      m[(8 * i + j) * stride] = sc;
      o[(8 * i + j) * stride] = -(dmin * mn);
    }
    base[i * stride] = lmx_f16_le(p);
  }
}

#ifdef LMX_X86
/* The 256 codes of one row of a Q4_K_R16 super-block: the row's 8 words of a sub-block
 * pair (64 bytes apart) gathered into one register (through memory: an AVX2 gather was
 * slower on Zen 4), low nibbles then high. */
static LMX_AVX2 void r16_codes_avx2(const uint8_t *sb, int lane, uint8_t *ub) {
  const __m256i m4 = _mm256_set1_epi8(15);
  for (int c = 0; c < 4; c++) {
    const uint8_t *q = sb + 256 + 512 * c + 4 * lane;
    int32_t wv[8];
    for (int k = 0; k < 8; k++) memcpy(&wv[k], q + 64 * k, 4);
    const __m256i g = _mm256_loadu_si256((const __m256i *)wv);
    _mm256_storeu_si256((__m256i *)(ub + 64 * c), _mm256_and_si256(g, m4));
    _mm256_storeu_si256((__m256i *)(ub + 64 * c + 32), _mm256_and_si256(_mm256_srli_epi16(g, 4), m4));
  }
}
#endif

/* lmx_unpack_k4 for row `lane` of a Q4_K_R16 group: each 32-bit word of the row's codes
 * holds 4 codes of two sub-blocks (low and high nibbles). */
static void unpack_k4_r16(const uint8_t *group, int lane, int64_t K, uint8_t *u, int32_t *m, float *o, float *base,
                          int64_t stride) {
#ifdef LMX_X86
  const int simd = lmx_use_avx2();
#else
  const int simd = 0;
#endif
  for (int64_t i = 0; i < K / 256; i++) {
    const uint8_t *sb = group + i * LMX_R16_BYTES;
    uint8_t *ub = u + 256 * i;
#ifdef LMX_X86
    if (simd) r16_codes_avx2(sb, lane, ub);
#endif
    for (int r = 0; r < 32 && !simd; r++) {
      uint32_t v;
      memcpy(&v, sb + 256 + 64 * r + 4 * lane, 4);
      const uint32_t lo = v & 0x0f0f0f0fu, hi = v >> 4 & 0x0f0f0f0fu;
      memcpy(ub + 64 * (r >> 3) + 4 * (r & 7), &lo, 4);
      memcpy(ub + 64 * (r >> 3) + 32 + 4 * (r & 7), &hi, 4);
    }
    uint8_t sc[8], mn[8];
    lmx_r16_scales_mins(sb, lane, sc, mn);
    const float dmin = lmx_f16_le(sb + 32 + 2 * lane);
    for (int j = 0; j < 8; j++) {
      m[(8 * i + j) * stride] = sc[j];
      o[(8 * i + j) * stride] = -(dmin * mn[j]);
    }
    base[i * stride] = lmx_f16_le(sb + 2 * lane);
  }
}

void lmx_unpack_k4_row(const lmx_tensor *w, int64_t r, uint8_t *u, int32_t *m, float *o, float *base, int64_t stride) {
  if (w->dtype != LMX_Q4_K_R16) {
    lmx_unpack_k4(w->data + r * w->nb1, w->dtype, w->ne0, u, m, o, base, stride);
    return;
  }
  int lane;
  const uint8_t *group = lmx_row_group_at(w, r, &lane);
  unpack_k4_r16(group, lane, w->ne0, u, m, o, base, stride);
}

int lmx_unpack_mult_row(const lmx_tensor *w, int64_t r, int8_t *c, int32_t *m, float *base, int64_t stride) {
  const int64_t K = w->ne0;
  if (w->dtype != LMX_Q6_K_R16) return lmx_unpack_mult(w->data + r * w->nb1, w->dtype, K, c, m, base, stride);
  /* Each super-block of the row as its Q6_K block, from the row's group. */
  int lane;
  const uint8_t *group = lmx_row_group_at(w, r, &lane);
  uint8_t blk[210];
  for (int64_t b = 0; b < K / 256; b++) {
    lmx_r16q6_block(group, lane, b, blk);
    lmx_unpack_mult(blk, LMX_Q6_K, 256, c + 256 * b, m + 16 * b * stride, base + b * stride, stride);
  }
  return 0;
}
