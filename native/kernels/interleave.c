/* Weights rearranged at load for the decode dots: the interleaved types Q4_K_I and Q6_K_I,
 * Q4_K_R16 and Q6_K_R16, Q8_0_I and NVFP4_I (below).
 *
 * In a GGUF super-block, the codes one 32-byte register holds all belong to one sub-block
 * (Q4_K) or two (Q6_K), so the AVX2 dot has to weight each register's int16 products by
 * its own scales: a shuffle, a madd and an add per register, a third of the loop. Q4_K_I
 * and Q6_K_I are the GGUF block of the same scales, mins and d with its 256 codes in
 * another order: element 32n + b holds the original element 16(b >> 1) + 2n + (b & 1), so
 * the register n the GGUF dot loads (its codes 32n..32n+31) has at bytes 2l and 2l + 1 the
 * elements 16l + 2n, 16l + 2n + 1: every int16 lane of a product register is one sub-block
 * of 16, the same in every register. The products of all eight registers then add up in
 * int16 (Q4_K: 8 x 3810 fits; Q6_K: pairs, 2 x 16002) and meet the scales in one madd per
 * super-block (Q6_K: per pair). The codes move as 16-bit pairs (interleaved pair 16n + l
 * holds pair 8l + n), and decode activations move the same way (lmx_x8_row), so the dot
 * needs no shuffle at all and builds its registers as the GGUF dot does. */
#include <string.h>

#include "../simd.h"

int32_t lmx_interleaved_type(int32_t dtype, int64_t rows, int64_t cols) {
  if (dtype == LMX_NVFP4) return cols % 128 == 0 ? LMX_NVFP4_I : 0;
  if (dtype == LMX_Q8_0) return cols % 256 == 0 ? LMX_Q8_0_I : 0;
  if (dtype == LMX_Q4_K) return rows % LMX_R16_ROWS == 0 ? LMX_Q4_K_R16 : LMX_Q4_K_I;
  if (dtype == LMX_Q6_K) return rows % LMX_R16_ROWS == 0 ? LMX_Q6_K_R16 : LMX_Q6_K_I;
  return 0;
}

int32_t lmx_interleaved_base(int32_t dtype) {
  return dtype == LMX_Q4_K_I || dtype == LMX_Q4_K_R16 ? LMX_Q4_K : dtype == LMX_Q6_K_I || dtype == LMX_Q6_K_R16 ? LMX_Q6_K
         : dtype == LMX_NVFP4_I ? LMX_NVFP4 : dtype == LMX_Q8_0_I ? LMX_Q8_0 : dtype;
}

/* ---- Q4_K_R16 ----
 * Sixteen Q4_K rows whose super-blocks b are stored side by side, 2304 bytes each (16 x 144,
 * the same bytes in another order):
 *   0    d of rows 0..15 (f16)           32   dmin of rows 0..15 (f16)
 *   64   A, 128 B, 192 C: row r's 6-bit scales and mins in the 32-bit words at 4r of each
 *   256  codes: byte 256 + 64m + 4r + i is byte 32c + 4q + i of row r's GGUF codes, m = 8c + q
 * A code register of the decode dot (64 bytes, or two halves of 32) holds 4 codes of one
 * sub-block for every row, one row per 32-bit lane (its low nibbles sub-block 2c, its high
 * ones 2c + 1), against 4 activation codes broadcast to every lane: each lane's sums are
 * its own row's, so a super-block's scales and mins are vectors over the rows (one multiply
 * per sub-block for 16 rows) and no row needs a horizontal sum. The Q4_K_I dot spent more
 * operations on a row's scales, mins and sums than on its 256 products; here they cost
 * about 1/16 as many: hot rows on one Zen 4 thread 15.3 -> 9.7 ns per 1024-wide row, and
 * 10.3 -> 6.0 ns per row and token for 4 tokens (a decode batch unpacks each register
 * once for all its tokens), which made `lmx bench --parallel 4` 25% faster on one thread.
 * Matrices of other row counts stay Q4_K_I.
 * The words place each scale and min so that a vector over rows takes one shift and one
 * mask (pairs of mins, as the int16 pairs dpwssd takes, one mask), but for sc5..sc7, which
 * fill what is left:
 *   A = sc0 | sc1 << 6 | sc2 << 12 | sc3 << 18 | sc4 << 24 | (sc5 & 3) << 30
 *   B = m0 | m2 << 6 | (sc5 >> 2) << 12 | m1 << 16 | m3 << 22 | (sc6 & 15) << 28
 *   C = m4 | m6 << 6 | (sc6 >> 4) << 12 | (sc7 & 3) << 14 | m5 << 16 | m7 << 22 | (sc7 >> 2) << 28 */
#define R16_CODES 256
static void r16_words(const uint8_t *sc, const uint8_t *mn, uint32_t w[3]) {
  w[0] = (uint32_t)sc[0] | (uint32_t)sc[1] << 6 | (uint32_t)sc[2] << 12 | (uint32_t)sc[3] << 18 | (uint32_t)sc[4] << 24 |
         (uint32_t)(sc[5] & 3) << 30;
  w[1] = (uint32_t)mn[0] | (uint32_t)mn[2] << 6 | (uint32_t)(sc[5] >> 2) << 12 | (uint32_t)mn[1] << 16 | (uint32_t)mn[3] << 22 |
         (uint32_t)(sc[6] & 15) << 28;
  w[2] = (uint32_t)mn[4] | (uint32_t)mn[6] << 6 | (uint32_t)(sc[6] >> 4) << 12 | (uint32_t)(sc[7] & 3) << 14 |
         (uint32_t)mn[5] << 16 | (uint32_t)mn[7] << 22 | (uint32_t)(sc[7] >> 2) << 28;
}

static void group_rows16(const uint8_t *src, uint8_t *dst, int64_t groups, int64_t cols) {
  const int64_t nb = cols / 256, rb = nb * 144;
  for (int64_t g = 0; g < groups; g++)
    for (int64_t b = 0; b < nb; b++) {
      uint8_t *o = dst + (g * nb + b) * LMX_R16_BYTES;
      const uint8_t *blk0 = src + g * 16 * rb + b * 144;
      for (int r = 0; r < 16; r++) {
        const uint8_t *blk = blk0 + r * rb;
        memcpy(o + 2 * r, blk, 2);
        memcpy(o + 32 + 2 * r, blk + 2, 2);
        uint64_t scales, mins;
        lmx_scales_mins_k4(blk + 4, &scales, &mins);
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++) sc[j] = (uint8_t)(scales >> 8 * j), mn[j] = (uint8_t)(mins >> 8 * j);
        uint32_t w[3];
        r16_words(sc, mn, w);
        for (int k = 0; k < 3; k++) memcpy(o + 64 + 64 * k + 4 * r, &w[k], 4);
      }
      /* Each 64-byte code register written whole, one word per row. */
      for (int m = 0; m < 32; m++) {
        uint32_t line[16];
        for (int r = 0; r < 16; r++) memcpy(&line[r], blk0 + r * rb + 16 + 4 * m, 4);
        memcpy(o + R16_CODES + 64 * m, line, 64);
      }
    }
}

/* Row `lane` of a Q4_K_R16 group, super-block b, as the GGUF Q4_K block it came from. */
static void r16_block(const uint8_t *group, int lane, int64_t b, uint8_t *q4k) {
  const uint8_t *o = group + b * LMX_R16_BYTES;
  uint8_t sc[8], mn[8];
  memcpy(q4k, o + 2 * lane, 2);
  memcpy(q4k + 2, o + 32 + 2 * lane, 2);
  lmx_r16_scales_mins(o, lane, sc, mn);
  lmx_pack_scales_mins_k4(sc, mn, q4k + 4);
  for (int m = 0; m < 32; m++) memcpy(q4k + 16 + 4 * m, o + R16_CODES + 64 * m + 4 * lane, 4);
}

/* ---- Q6_K_R16 ----
 * Sixteen Q6_K rows, per super-block 3360 bytes (16 x 210, the same bytes): d of rows
 * 0..15 (f16) at 0; scale 2k + e of row r (int8) at 32 + 32k + 2r + e (int16 pairs per row
 * once widened, as dpwssd takes them); then 64-byte registers of one 32-bit word per row,
 * three per step (h, q) in the order the dot reads them: at 288 + 192(8h + q) + 64s row r's
 * GGUF ql bytes 64h + 32s + 4q..+3 (s = 0, 1), at 288 + 192(8h + q) + 128 its qh bytes
 * 32h + 4q..+3. The dot rebuilds 6-bit codes of four sub-blocks from a pair of ql words and
 * one qh word (as the GGUF layout pairs them) and meets broadcast activations as Q4_K_R16
 * does. (With the ql and qh registers in two runs, read alternately, one thread's cold rows
 * streamed at a third of the speed.) */
static void group_rows16_q6(const uint8_t *src, uint8_t *dst, int64_t groups, int64_t cols) {
  const int64_t nb = cols / 256, rb = nb * 210;
  for (int64_t g = 0; g < groups; g++)
    for (int64_t b = 0; b < nb; b++) {
      uint8_t *o = dst + (g * nb + b) * LMX_R16Q6_BYTES;
      const uint8_t *blk0 = src + g * 16 * rb + b * 210;
      for (int r = 0; r < 16; r++) {
        const uint8_t *blk = blk0 + r * rb;
        memcpy(o + 2 * r, blk + 208, 2);
        for (int j = 0; j < 16; j++) o[32 + 32 * (j >> 1) + 2 * r + (j & 1)] = blk[192 + j];
      }
      /* Each 64-byte register written whole, one word per row. */
      for (int h = 0; h < 2; h++)
        for (int q = 0; q < 8; q++)
          for (int k = 0; k < 3; k++) {
            const int from = k < 2 ? 64 * h + 32 * k + 4 * q : 128 + 32 * h + 4 * q;
            uint32_t line[16];
            for (int r = 0; r < 16; r++) memcpy(&line[r], blk0 + r * rb + from, 4);
            memcpy(o + 288 + 192 * (8 * h + q) + 64 * k, line, 64);
          }
    }
}

void lmx_r16q6_block(const uint8_t *group, int lane, int64_t b, uint8_t *q6k) {
  const uint8_t *o = group + b * LMX_R16Q6_BYTES;
  memcpy(q6k + 208, o + 2 * lane, 2);
  for (int j = 0; j < 16; j++) q6k[192 + j] = o[32 + 32 * (j >> 1) + 2 * lane + (j & 1)];
  for (int h = 0; h < 2; h++)
    for (int q = 0; q < 8; q++) {
      const uint8_t *step = o + 288 + 192 * (8 * h + q) + 4 * lane;
      memcpy(q6k + 64 * h + 4 * q, step, 4);
      memcpy(q6k + 64 * h + 32 + 4 * q, step + 64, 4);
      memcpy(q6k + 128 + 32 * h + 4 * q, step + 128, 4);
    }
}

void lmx_interleave_units(int32_t dtype, int32_t to, const uint8_t *src, uint8_t *dst, int64_t units, int64_t cols) {
  if (to == LMX_Q4_K_R16) group_rows16(src, dst, units, cols);
  else if (to == LMX_Q6_K_R16) group_rows16_q6(src, dst, units, cols);
  else lmx_interleave_blocks(dtype, src, dst, units);
}

const uint8_t *lmx_row_group_at(const lmx_tensor *w, int64_t r, int *lane) {
  *lane = (int)(r % LMX_R16_ROWS);
  return (const uint8_t *)w->data + (r - *lane) * (int64_t)w->nb1;
}

void lmx_weight_row_to_f32(const lmx_tensor *w, int64_t r, float *dst) {
  if (lmx_row_group(w->dtype) == 1) {
    lmx_row_to_f32(w->data + r * w->nb1, w->dtype, dst, w->ne0);
    return;
  }
  int lane;
  const uint8_t *group = lmx_row_group_at(w, r, &lane);
  const int q6 = w->dtype == LMX_Q6_K_R16;
  uint8_t blk[210];
  for (int64_t b = 0; b < w->ne0 / 256; b++) {
    if (q6) lmx_r16q6_block(group, lane, b, blk);
    else r16_block(group, lane, b, blk);
    lmx_row_to_f32(blk, q6 ? LMX_Q6_K : LMX_Q4_K, dst + 256 * b, 256);
  }
}

/* ---- Q8_0_I ----
 * Eight Q8_0 blocks (256 elements, 272 bytes): their f16 scales side by side (bytes 0-15),
 * then their codes in order. The decode dot converts the 8 scales with one instruction and
 * weighs 8 blocks' integer sums in one float step, where Q8_0 gathers each block's scale
 * and takes a float step per block. */
static void q8_0_group(const uint8_t *src, uint8_t *dst, int back) {
  for (int b = 0; b < 8; b++) {
    if (back) {
      memcpy(dst + 34 * b, src + 2 * b, 2);
      memcpy(dst + 34 * b + 2, src + 16 + 32 * b, 32);
    } else {
      memcpy(dst + 2 * b, src + 34 * b, 2);
      memcpy(dst + 16 + 32 * b, src + 34 * b + 2, 32);
    }
  }
}

/* ---- NVFP4_I ----
 * One block is two NVFP4 blocks (128 elements, 72 bytes): bytes 0-7 the scales of its
 * sub-blocks of 16, k = 0..7 (the first block's four, then the second's), re-encoded as
 * below; bytes 8-71 the codes: byte 8 + 32(n >> 1) + 4k + i holds, in nibble n & 1, the
 * code of element 16k + 4n + i. Code register n (0..3) of the decode dot thus has four
 * elements of every sub-block k at bytes 4k..4k+3: its products add up in int16 across
 * the four registers and one madd leaves the 8 sub-block sums in the 8 lanes, in the
 * order of the scales. A scale byte is E << 3 | m for the half value (8 + m) 2^(E - 14):
 * as an f32, (b << 20) + (116 << 23), so the dot decodes every scale with a shift and an
 * add (UE4M3's subnormals are normal numbers here, E = 1..3). Byte 0 is a zero scale (UE4M3
 * zero or NaN): that sub-block's codes are zeroed too, so the dot, which reads byte 0 as
 * 2^-11, gets zero products. */
static uint8_t nvfp4i_scale(uint8_t ue) {
  const int z = ue & 0x7f;
  if (z == 0 || z == 0x7f) return 0;
  if (z >= 8) return (uint8_t)(z + 24);
  const int p = z >= 4 ? 2 : z >= 2 ? 1 : 0;
  return (uint8_t)((p + 1) << 3 | ((z << (3 - p)) - 8));
}

static uint8_t nvfp4i_scale_ue4m3(uint8_t b) {
  if (b >= 32) return (uint8_t)(b - 24);
  if (!b) return 0;
  const int e = b >> 3, m = b & 7;
  return (uint8_t)((8 + m) >> (4 - e));
}

static void interleave_nvfp4(const uint8_t *src, uint8_t *dst) {
  memset(dst + 8, 0, 64);
  for (int k = 0; k < 8; k++) {
    const uint8_t *blk = src + 36 * (k >> 2);
    const int s = k & 3;
    dst[k] = nvfp4i_scale(blk[s]);
    if (!dst[k]) continue;
    for (int n = 0; n < 4; n++)
      for (int i = 0; i < 4; i++) {
        const int j = 4 * n + i; /* element j of sub-block s: byte 8s + j % 8, nibble j / 8 */
        const int code = blk[4 + 8 * s + (j & 7)] >> (4 * (j >> 3)) & 15;
        dst[8 + 32 * (n >> 1) + 4 * k + i] |= (uint8_t)(code << (4 * (n & 1)));
      }
  }
}

#ifdef LMX_X86
/* interleave_nvfp4 with AVX2. Sub-block k's 8 source bytes b0..b7 hold elements 0-7 (low
 * nibbles) and 8-15 (high); its output bytes 4k + i are lo(b_i) | lo(b_i+4) << 4 in the
 * first half of the codes and hi(b_i) | hi(b_i+4) << 4 in the second: per 64-bit lane both
 * halves' 4 bytes side by side, then the lanes' dwords sorted into the two halves. */
static LMX_AVX2 void interleave_nvfp4_avx2(const uint8_t *src, uint8_t *dst) {
  for (int k = 0; k < 8; k++) dst[k] = nvfp4i_scale(src[36 * (k >> 2) + (k & 3)]);
  const __m256i m4 = _mm256_set1_epi8(15), hi4 = _mm256_set1_epi8((char)0xf0);
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  __m256i half[2];
  for (int b = 0; b < 2; b++) {
    const __m256i x = _mm256_loadu_si256((const __m256i *)(src + 36 * b + 4)), y = _mm256_srli_epi64(x, 32);
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(x, m4), _mm256_slli_epi16(_mm256_and_si256(y, m4), 4));
    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(x, 4), m4), _mm256_and_si256(y, hi4));
    half[b] = _mm256_permutevar8x32_epi32(_mm256_blend_epi32(lo, _mm256_slli_epi64(hi, 32), 0xaa), order);
  }
  /* A zero scale zeroes its sub-block's codes (see above). */
  const __m256i zero = _mm256_cmpeq_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)dst)), _mm256_setzero_si256());
  _mm256_storeu_si256((__m256i *)(dst + 8), _mm256_andnot_si256(zero, _mm256_permute2x128_si256(half[0], half[1], 0x20)));
  _mm256_storeu_si256((__m256i *)(dst + 40), _mm256_andnot_si256(zero, _mm256_permute2x128_si256(half[0], half[1], 0x31)));
}
#endif

static void deinterleave_nvfp4(const uint8_t *src, uint8_t *dst) {
  memset(dst, 0, 72);
  for (int k = 0; k < 8; k++) {
    uint8_t *blk = dst + 36 * (k >> 2);
    const int s = k & 3;
    blk[s] = nvfp4i_scale_ue4m3(src[k]);
    for (int n = 0; n < 4; n++)
      for (int i = 0; i < 4; i++) {
        const int j = 4 * n + i;
        const int code = src[8 + 32 * (n >> 1) + 4 * k + i] >> (4 * (n & 1)) & 15;
        blk[4 + 8 * s + (j & 7)] |= (uint8_t)(code << (4 * (j >> 3)));
      }
  }
}

#ifdef LMX_X86
/* The four code registers mapped through the table, then a 4 x 8 transpose of dwords
 * (element 16k + 4n is dword k of register n). */
static LMX_AVX2 void nvfp4i_codes_avx2(const uint8_t *p, const uint8_t *table, uint8_t *u) {
  const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)table)), m4 = _mm256_set1_epi8(15);
  const __m256i q0 = _mm256_loadu_si256((const __m256i *)(p + 8)), q1 = _mm256_loadu_si256((const __m256i *)(p + 40));
  const __m256i r0 = _mm256_shuffle_epi8(t, _mm256_and_si256(q0, m4));
  const __m256i r1 = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(q0, 4), m4));
  const __m256i r2 = _mm256_shuffle_epi8(t, _mm256_and_si256(q1, m4));
  const __m256i r3 = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(q1, 4), m4));
  const __m256i a = _mm256_unpacklo_epi32(r0, r1), b = _mm256_unpackhi_epi32(r0, r1);
  const __m256i c = _mm256_unpacklo_epi32(r2, r3), d = _mm256_unpackhi_epi32(r2, r3);
  /* Sub-blocks k | k + 4 in the two lanes: 0|4, 1|5, 2|6, 3|7. */
  const __m256i x0 = _mm256_unpacklo_epi64(a, c), x1 = _mm256_unpackhi_epi64(a, c);
  const __m256i x2 = _mm256_unpacklo_epi64(b, d), x3 = _mm256_unpackhi_epi64(b, d);
  _mm256_storeu_si256((__m256i *)u, _mm256_permute2x128_si256(x0, x1, 0x20));
  _mm256_storeu_si256((__m256i *)(u + 32), _mm256_permute2x128_si256(x2, x3, 0x20));
  _mm256_storeu_si256((__m256i *)(u + 64), _mm256_permute2x128_si256(x0, x1, 0x31));
  _mm256_storeu_si256((__m256i *)(u + 96), _mm256_permute2x128_si256(x2, x3, 0x31));
}
#endif

void lmx_nvfp4i_codes(const uint8_t *p, const uint8_t *table, uint8_t *u) {
#ifdef LMX_X86
  if (lmx_use_avx2()) {
    nvfp4i_codes_avx2(p, table, u);
    return;
  }
#endif
  for (int n = 0; n < 4; n++)
    for (int k = 0; k < 8; k++)
      for (int i = 0; i < 4; i++) u[16 * k + 4 * n + i] = table[p[8 + 32 * (n >> 1) + 4 * k + i] >> (4 * (n & 1)) & 15];
}

/* The codes of elements 2w and 2w + 1 of a GGUF Q4_K or Q6_K block as the two bytes of a
 * 16-bit word: a pair never straddles a nibble half or a bit-pair group, so each is one
 * 16-bit load, shift and mask. */
static inline uint16_t gguf_code_pair(const uint8_t *p, int q6, int w) {
  uint16_t a, h;
  if (!q6) {
    memcpy(&a, p + 16 + 32 * (w >> 5) + (2 * w & 31), 2);
    return (uint16_t)(a >> (4 * (w >> 4 & 1)) & 0x0f0f);
  }
  const int half = w >> 6, k = w >> 4 & 3, l = 2 * w & 31;
  memcpy(&a, p + 64 * half + 32 * (k & 1) + l, 2);
  memcpy(&h, p + 128 + 32 * half + l, 2);
  return (uint16_t)((a >> (4 * (k >> 1)) & 0x0f0f) | (h >> (2 * k) & 0x0303) << 4);
}

/* The inverse: a block's code bytes from its 128 code pairs. */
static void gguf_pack_pairs(const uint16_t *w, int q6, uint8_t *p) {
  uint16_t lo[64], hi[32];
  if (!q6) {
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 16; l++) lo[16 * c + l] = (uint16_t)(w[32 * c + l] | w[32 * c + 16 + l] << 4);
    memcpy(p + 16, lo, 128);
    return;
  }
  for (int h = 0; h < 2; h++)
    for (int l = 0; l < 16; l++) {
      const uint16_t a = w[64 * h + l], b = w[64 * h + 16 + l], c = w[64 * h + 32 + l], d = w[64 * h + 48 + l];
      lo[32 * h + l] = (uint16_t)((a & 0x0f0f) | (c & 0x0f0f) << 4);
      lo[32 * h + 16 + l] = (uint16_t)((b & 0x0f0f) | (d & 0x0f0f) << 4);
      hi[16 * h + l] = (uint16_t)((a >> 4 & 0x0303) | (b >> 4 & 0x0303) << 2 | (c >> 4 & 0x0303) << 4 | (d >> 4 & 0x0303) << 6);
    }
  memcpy(p, lo, 128);
  memcpy(p + 128, hi, 64);
}

/* The 128 pairs of a super-block into (back = 0) or out of the interleaved order. */
static void move_pairs(const uint16_t *in, uint16_t *out, int back) {
  for (int n = 0; n < 8; n++)
    for (int l = 0; l < 16; l++) {
      if (back) out[8 * l + n] = in[16 * n + l];
      else out[16 * n + l] = in[8 * l + n];
    }
}

/* A Q4_K or Q6_K block with its codes moved into or out of the interleaved order. */
static void move_block(const uint8_t *src, uint8_t *dst, int q6, int back) {
  uint16_t moved[128];
  for (int n = 0; n < 8; n++)
    for (int l = 0; l < 16; l++) {
      if (back) moved[8 * l + n] = gguf_code_pair(src, q6, 16 * n + l);
      else moved[16 * n + l] = gguf_code_pair(src, q6, 8 * l + n);
    }
  if (q6) memcpy(dst + 192, src + 192, 18);
  else memcpy(dst, src, 16);
  gguf_pack_pairs(moved, q6, dst);
}

#ifdef LMX_X86
/* Element-order codes with AVX2: the eight code registers as the dot builds them, then an
 * 8 x 16 transpose of 16-bit words (element 16l + 2n is word l of register n). */
static LMX_AVX2 void interleaved_codes_avx2(const uint8_t *p, int q6, uint8_t *u) {
  const __m256i m4 = _mm256_set1_epi8(15);
  __m256i r[8];
  if (!q6) {
    for (int m = 0; m < 4; m++) {
      const __m256i q = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * m));
      r[2 * m] = _mm256_and_si256(q, m4);
      r[2 * m + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    }
  } else {
    lmx_q6k_codes_avx2(p, 0, r);
    lmx_q6k_codes_avx2(p, 1, r + 4);
  }
  /* Per 128-bit lane, words l (low lane: l = 0..7, high: 8..15) of registers 0..7. */
  __m256i a[8], c[8];
  for (int i = 0; i < 4; i++) {
    a[2 * i] = _mm256_unpacklo_epi16(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm256_unpackhi_epi16(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) {
      c[4 * i + 2 * j] = _mm256_unpacklo_epi32(a[4 * i + j], a[4 * i + 2 + j]);
      c[4 * i + 2 * j + 1] = _mm256_unpackhi_epi32(a[4 * i + j], a[4 * i + 2 + j]);
    }
  /* c[j] (c[4 + j]): registers 0-3 (4-7) at words 2j and 2j + 1 of each lane. */
  for (int j = 0; j < 4; j++) {
    const __m256i lo = _mm256_unpacklo_epi64(c[j], c[4 + j]), hi = _mm256_unpackhi_epi64(c[j], c[4 + j]);
    const int w0 = 2 * j;
    _mm_storeu_si128((__m128i *)(u + 16 * w0), _mm256_castsi256_si128(lo));
    _mm_storeu_si128((__m128i *)(u + 16 * (w0 + 8)), _mm256_extracti128_si256(lo, 1));
    _mm_storeu_si128((__m128i *)(u + 16 * (w0 + 1)), _mm256_castsi256_si128(hi));
    _mm_storeu_si128((__m128i *)(u + 16 * (w0 + 9)), _mm256_extracti128_si256(hi, 1));
  }
}
#endif

void lmx_interleaved_codes(const uint8_t *p, int32_t dtype, uint8_t *u) {
  const int q6 = dtype == LMX_Q6_K_I;
#ifdef LMX_X86
  if (lmx_use_avx2()) {
    interleaved_codes_avx2(p, q6, u);
    return;
  }
#endif
  uint16_t pairs[128], moved[128];
  for (int w = 0; w < 128; w++) pairs[w] = gguf_code_pair(p, q6, w);
  move_pairs(pairs, moved, 1);
  memcpy(u, moved, 256);
}

#ifdef LMX_X86
/* move_block(src, dst, q6, 0) with AVX2 (the load interleaves every Q4_K and Q6_K weight:
 * the scalar moves took ~200 ms of CPU for Qwen3-0.6B's 373 MiB). The eight code registers
 * as the dot builds them; interleaved register n word 2r + h is register r word 8h + n:
 * per 128-bit lane an 8 x 8 transpose of 16-bit words (lane h), then the two lanes' words
 * alternated; then the codes packed back into the GGUF bytes. */
static LMX_AVX2 void interleave_block_avx2(const uint8_t *src, uint8_t *dst, int q6) {
  const __m256i m4 = _mm256_set1_epi8(15);
  __m256i r[8];
  if (!q6) {
    for (int m = 0; m < 4; m++) {
      const __m256i q = _mm256_loadu_si256((const __m256i *)(src + 16 + 32 * m));
      r[2 * m] = _mm256_and_si256(q, m4);
      r[2 * m + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    }
  } else {
    lmx_q6k_codes_avx2(src, 0, r);
    lmx_q6k_codes_avx2(src, 1, r + 4);
  }
  __m256i t[8], u[8], v[8], n[8];
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_epi16(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi16(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) {
      u[4 * i + 2 * j] = _mm256_unpacklo_epi32(t[4 * i + j], t[4 * i + 2 + j]);
      u[4 * i + 2 * j + 1] = _mm256_unpackhi_epi32(t[4 * i + j], t[4 * i + 2 + j]);
    }
  /* u[k] (u[4 + k]): registers 0-3 (4-7) at words 2k and 2k + 1 of each lane. */
  for (int k = 0; k < 4; k++) {
    v[2 * k] = _mm256_unpacklo_epi64(u[k], u[4 + k]);
    v[2 * k + 1] = _mm256_unpackhi_epi64(u[k], u[4 + k]);
  }
  /* v[w]: word w of registers 0..7, lane h from word 8h + w. */
  for (int w = 0; w < 8; w++) {
    const __m128i lo = _mm256_castsi256_si128(v[w]), hi = _mm256_extracti128_si256(v[w], 1);
    n[w] = _mm256_set_m128i(_mm_unpackhi_epi16(lo, hi), _mm_unpacklo_epi16(lo, hi));
  }
  if (!q6) {
    memcpy(dst, src, 16);
    for (int m = 0; m < 4; m++)
      _mm256_storeu_si256((__m256i *)(dst + 16 + 32 * m), _mm256_or_si256(n[2 * m], _mm256_slli_epi16(n[2 * m + 1], 4)));
    return;
  }
  const __m256i m3 = _mm256_set1_epi8(3);
  for (int h = 0; h < 2; h++) {
    const __m256i *g = n + 4 * h;
    _mm256_storeu_si256((__m256i *)(dst + 64 * h),
                        _mm256_or_si256(_mm256_and_si256(g[0], m4), _mm256_slli_epi16(_mm256_and_si256(g[2], m4), 4)));
    _mm256_storeu_si256((__m256i *)(dst + 64 * h + 32),
                        _mm256_or_si256(_mm256_and_si256(g[1], m4), _mm256_slli_epi16(_mm256_and_si256(g[3], m4), 4)));
    __m256i H = _mm256_and_si256(_mm256_srli_epi16(g[0], 4), m3);
    for (int k = 1; k < 4; k++) H = _mm256_or_si256(H, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(g[k], 4), m3), 2 * k));
    _mm256_storeu_si256((__m256i *)(dst + 128 + 32 * h), H);
  }
  memcpy(dst + 192, src + 192, 18);
}
#endif

void lmx_interleave_blocks(int32_t dtype, const uint8_t *src, uint8_t *dst, int64_t blocks) {
  if (dtype == LMX_Q8_0) {
    for (int64_t i = 0; i < blocks; i++) q8_0_group(src + 272 * i, dst + 272 * i, 0);
    return;
  }
  if (dtype == LMX_NVFP4) {
#ifdef LMX_X86
    if (lmx_use_avx2()) {
      for (int64_t i = 0; i < blocks; i++) interleave_nvfp4_avx2(src + 72 * i, dst + 72 * i);
      return;
    }
#endif
    for (int64_t i = 0; i < blocks; i++) interleave_nvfp4(src + 72 * i, dst + 72 * i);
    return;
  }
  const int q6 = dtype == LMX_Q6_K, bytes = q6 ? 210 : 144;
#ifdef LMX_X86
  if (lmx_use_avx2()) {
    for (int64_t i = 0; i < blocks; i++) interleave_block_avx2(src + i * bytes, dst + i * bytes, q6);
    return;
  }
#endif
  for (int64_t i = 0; i < blocks; i++) move_block(src + i * bytes, dst + i * bytes, q6, 0);
}

void lmx_deinterleave_block(int32_t dtype, const uint8_t *src, uint8_t *dst) {
  if (dtype == LMX_NVFP4_I) deinterleave_nvfp4(src, dst);
  else if (dtype == LMX_Q8_0_I) q8_0_group(src, dst, 1);
  else move_block(src, dst, dtype == LMX_Q6_K_I, 1);
}

void lmx_x8_interleave_nvfp4(int8_t *q, int64_t K) {
  int8_t t[128];
  for (int64_t s = 0; s + 128 <= K; s += 128) {
    for (int n = 0; n < 4; n++)
      for (int k = 0; k < 8; k++) memcpy(t + 32 * n + 4 * k, q + s + 16 * k + 4 * n, 4);
    memcpy(q + s, t, 128);
  }
}

void lmx_x8_interleave(int8_t *q, int64_t K) {
  uint16_t in[128], out[128];
  for (int64_t s = 0; s + 256 <= K; s += 256) {
    memcpy(in, q + s, 256);
    move_pairs(in, out, 0);
    memcpy(q + s, out, 256);
  }
}
