/* Prefill (GEMM) for block-quantized weights with int8 activations. A claim of GEMM_ROWS
 * weight rows is unpacked (unpack.c) into panels of 8 rows (16 on the AVX-512 tier) whose
 * codes are interleaved in 4-byte groups, so one 32-byte (64-byte) load holds 4 codes of
 * each row; every token's 4 activation codes are broadcast against it (maddubs, or
 * vpdpbusd on the VNNI tiers), giving the rows' partial dots in the lanes. The panels'
 * factors follow the weight type's form: plain (per sub-block of 32 the integer sums
 * become floats: lane += isum * (d * dx) + o * (dx * sum of the token's codes)), K form
 * (Q4_K/Q5_K: sub-block scales as integer multipliers, one float step per 256 plus the
 * mins) or multiplier form (NVFP4/Q6_K: signed codes against x + 128, integer
 * multipliers, one float step per block sharing an activation scale, no offsets).
 * Activations are laid out by quads of tokens (codes of 4 tokens side by side per group
 * of 4, then their per-sub-block factors), so a quad is one sequential stream; quads go
 * through in chunks that stay in L2 while every panel of the claim passes over them.
 * Each output's arithmetic is the same whatever the grouping, so results do not depend on
 * the batch or the thread count. */
#include <string.h>

#include "../simd.h"

#define PANEL_MAX 16
#define GEMM_ROWS 32
#define QUAD_CHUNK 16 /* quads (of 4 tokens) per pass over the claim's panels */

/* Bytes per quad of prepared activations: 4 x K codes, then per 32 (or per block of the
 * multiplier form) scales dx and offsets dx * (sum of codes) for each of the 4 tokens. */
static int64_t lmx_gemm_q8_act_bytes(int64_t K) {
  return (4 * K + 2 * 4 * (K / 32) * 4 + 63) / 64 * 64;
}

/* The three forms of a claim's panels (see the top of this file and unpack.c). */
enum { FORM_PLAIN, FORM_K4, FORM_MULT };

static int panel_form(int32_t dtype) {
  const int32_t t = lmx_interleaved_base(dtype);
  return lmx_mult_ab(dtype) ? FORM_MULT : t == LMX_Q4_K || t == LMX_Q5_K ? FORM_K4 : FORM_PLAIN;
}

/* A multiplier as the int16 pair (m, m) in one 32-bit lane, for madd. */
static int32_t m16x2(int32_t m) {
  return (int32_t)((uint32_t)(m & 0xffff) | (uint32_t)m << 16);
}

int64_t lmx_gemm_q8_rows(void) {
  return GEMM_ROWS;
}

static int64_t quads(int64_t T) {
  return (T + 3) / 4;
}

size_t lmx_gemm_q8_act_bytes_total(int64_t K, int64_t T) {
  return (size_t)(quads(T) * lmx_gemm_q8_act_bytes(K));
}

/* Bytes of one panel of pw rows: the codes, then the factors of the weight type's form
 * (plain: scale and offset per 32; K form: 17 per 256; multiplier form: AB/16 + 2 per AB). */
static int64_t panel_bytes(int32_t dtype, int64_t K, int pw) {
  const int AB = lmx_mult_ab(dtype), form = panel_form(dtype);
  const int64_t factors = form == FORM_MULT ? (AB / 16 + 2) * (K / AB) : form == FORM_K4 ? 17 * (K / 256) : 2 * (K / 32);
  return pw * K + 4 * pw * factors;
}

/* Bytes of a claim's panels, for any type: NVFP4's form has the most factors per row. */
static int64_t panels_bytes(int64_t K) {
  return panel_bytes(LMX_NVFP4, K, GEMM_ROWS);
}

/* A thread's work area: the panels of one claim, then 8 rows being unpacked (their codes,
 * with per 16 or 32 up to two factors and per 32 or more one). While activations are
 * being quantized, the panels' space holds one token's codes and factors instead. */
static int64_t work_bytes(int64_t K) {
  return (panels_bytes(K) + 8 * K + 8 * (K / 16) * 4 + 8 * (K / 32) * 4 + 63) / 64 * 64;
}

int64_t lmx_gemm_q8_scratch(const lmx_node *n) {
  return work_bytes(n->src[0]->ne0) / 4 + 16;
}

/* Quantizes tokens [4 q0, 4 q1) of the node's activations as the decode path does for this
 * weight type, into their quads with the per-sub-block factors the GEMM needs; missing
 * tokens of the last quad are zeros. tmp: K + K / 32 * 4 + K / 16 * 4 bytes. */
static void prepare_quads(const lmx_node *n, int32_t wtype, uint8_t *act, int64_t q0, int64_t q1, uint8_t *tmp) {
  const lmx_tensor *x = n->src[0];
  float *glu = lmx_matmul_x_computed(n) ? lmx_scratch_row((size_t)x->ne0) : NULL;
  const int64_t K = x->ne0, T = x->ne1, ab = lmx_gemm_q8_act_bytes(K);
  /* The multiplier form has one factor per AB activations and takes them as x + 128. */
  const int AB = lmx_mult_ab(wtype), SB = AB ? AB : LMX_UNPACK_SB;
  const int super = lmx_x8_super(wtype);
  const uint32_t bias = AB ? 0x80808080u : 0;
  const int64_t nsb = K / SB;
  int8_t *q = (int8_t *)tmp;
  float *dx = (float *)(q + K);
  int32_t *s16 = (int32_t *)(dx + K / 32);
  if (q1 == quads(T) && q1 > q0) memset(act + (q1 - 1) * ab, 0, (size_t)ab);
  const int64_t tEnd = 4 * q1 < T ? 4 * q1 : T;
  for (int64_t t = 4 * q0; t < tEnd; t++) {
    uint8_t *quad = act + (t / 4) * ab;
    const int lane = (int)(t % 4);
    float *dxs = (float *)(quad + 4 * K), *xos = dxs + 4 * nsb;
    lmx_quantize_x8(lmx_matmul_x_row(n, t, glu), K, super, q, dx, s16);
    const uint32_t *q4 = (const uint32_t *)q;
    uint32_t *c4 = (uint32_t *)quad + lane;
    for (int64_t g = 0; g < K / 4; g++) c4[4 * g] = q4[g] ^ bias;
    for (int64_t b = 0; b < nsb; b++) {
      const float d = dx[b * SB / 32];
      dxs[4 * b + lane] = d;
      /* The offsets' factor (per 32); the multiplier form has no offsets. */
      if (!AB) xos[4 * b + lane] = d * (float)(s16[2 * b] + s16[2 * b + 1]);
    }
  }
}

/* What a thread knows of the plan's shared slots in the current execution. Every thread
 * runs the same nodes in the same order, so each one's copy makes the same decisions and
 * all reach the same barriers. A slot is reused only within the barrier group it was
 * filled in: later groups may have overwritten the arena tensor it was made from. */
typedef struct {
  const void *x, *up, *norm; /* no padding: compared with memcmp */
  int64_t K, T;
  int32_t format, group, normed;
  float eps;
} act_key;
_Static_assert(sizeof(act_key) == 3 * sizeof(void *) + 32, "act_key must have no padding");

static __thread struct {
  const lmx_act_share *share;
  int64_t run;
  int group, fills, cur, valid[2];
  act_key key[2];
} S;

/* The activation layouts lmx_quantize_x8 and prepare_quads produce per weight type. */
static int32_t act_format(int32_t wtype) {
  return lmx_mult_ab(wtype) * 4 + lmx_x8_super(wtype);
}

const uint8_t *lmx_gemm_q8_activations(const lmx_node *n, int ith, int nth, float *work) {
  const lmx_tensor *x = n->src[0];
  const int64_t K = x->ne0, T = x->ne1;
  const int32_t wtype = n->src[1]->dtype;
  uint8_t *w8 = (uint8_t *)work;
  /* createPlan gives every plan with an int8 GEMM slots sized for its largest. */
  const lmx_act_share *share = n->share;
  if (S.share != share || S.run != share->run) {
    S.share = share;
    S.run = share->run;
    S.valid[0] = S.valid[1] = 0;
    S.cur = 0;
    S.group = -1;
  }
  if (S.group != n->group) {
    /* A group's first fill takes slot 0: the other slot's pages are touched only by a
     * group with two inputs, so a run keeps one slot resident, not both. */
    S.group = n->group;
    S.fills = 0;
    S.cur = 1;
  }
  const int normed = n->ip[1] == LMX_MM_NORM;
  const act_key k = {x->data,     n->src[3] ? n->src[3]->data : NULL, normed && n->src[5] ? n->src[5]->data : NULL,
                     K,           T,
                     act_format(wtype), n->group, normed, normed ? n->fp[2] : 0};
  for (int s = 0; s < 2; s++)
    if (S.valid[s] && !memcmp(&S.key[s], &k, sizeof k)) return share->slot[s];
  /* The first two fills of a group go to slots last filled in earlier groups, whose
   * readers all finished at the group's barrier; a third must wait for this group's. */
  if (S.fills >= 2) lmx_pool_barrier(nth);
  S.fills++;
  const int s = S.cur ^ 1;
  S.cur = s;
  S.key[s] = k;
  S.valid[s] = 1;
  int64_t lo, hi;
  lmx_split(quads(T), 1, ith, nth, &lo, &hi);
  prepare_quads(n, wtype, share->slot[s], lo, hi, w8);
  lmx_pool_barrier(nth);
  return share->slot[s];
}

#ifdef LMX_X86
static LMX_AVX2 void interleave8_avx2(const uint8_t *rows, int64_t K, int pw, int h, uint8_t *panel) {
  for (int64_t g = 0; g < K / 4; g += 8) lmx_transpose8x8((const float *)rows + g, K / 4, (float *)panel + pw * g + 8 * h, pw);
}
#endif

/* The codes of 8 rows (K bytes apart at rows) into rows 8h..8h+7 of a panel of pw rows,
 * whose groups hold every row's 4 codes side by side (4 * pw bytes per group): an 8 x 8
 * transpose of 4-byte groups, in registers where the CPU allows. K is a multiple of 32. */
static void interleave8(const uint8_t *rows, int64_t K, int pw, int h, uint8_t *panel) {
#ifdef LMX_X86
  if (lmx_use_avx2()) {
    interleave8_avx2(rows, K, pw, h, panel);
    return;
  }
#endif
  for (int r = 0; r < 8; r++) {
    const uint32_t *u4 = (const uint32_t *)(rows + r * K);
    uint32_t *p4 = (uint32_t *)panel + 8 * h + r;
    for (int64_t g = 0; g < K / 4; g++) p4[pw * g] = u4[g];
  }
}

/* Unpacks rows [r0, r0 + nr) (nr <= pw; missing rows are zero) into one panel of pw rows,
 * 8 rows at a time. rowbuf: room for 8 rows' codes, scales and offsets. */
static void build_panel(const lmx_tensor *w, int64_t r0, int64_t nr, int pw, float scale, uint8_t *panel, float *rowbuf) {
  const int64_t K = w->ne0;
  const int SB = LMX_UNPACK_SB;
  const int64_t nsb = K / SB;
  float *pd = (float *)(panel + pw * K), *po = pd + pw * nsb;
  uint8_t *u = (uint8_t *)rowbuf;
  float *d = (float *)(u + 8 * K), *o = d + nsb;
  for (int h = 0; h < pw / 8; h++) {
    for (int i = 0; i < 8; i++) {
      const int r = 8 * h + i;
      if (r < nr) {
        lmx_unpack_row(w->data + (r0 + r) * w->nb1, w->dtype, K, u + i * K, d, o);
      } else {
        memset(u + i * K, 0, (size_t)K);
        memset(d, 0, sizeof(float) * (size_t)nsb);
        memset(o, 0, sizeof(float) * (size_t)nsb);
      }
      for (int64_t b = 0; b < nsb; b++) {
        pd[b * pw + r] = d[b] * scale;
        po[b * pw + r] = o[b] * scale;
      }
    }
    interleave8(u, K, pw, h, panel);
  }
}

/* Q4_K/Q5_K rows [r0, r0 + nr) in K form (unpack.c) into one panel of pw rows, 8 at a
 * time: the codes, then per super-block of 256 eight vectors of pw multipliers (int16
 * pairs (m, m) for madd), eight of pw offsets and pw float bases. */
static void build_panel_k4(const lmx_tensor *w, int64_t r0, int64_t nr, int pw, float scale, uint8_t *panel, float *rowbuf) {
  const int64_t K = w->ne0, nsb = K / 32;
  /* 8 rows' codes, then their multipliers and offsets [K/32][8] and bases [K/256][8]. */
  uint8_t *u = (uint8_t *)rowbuf;
  int32_t *m = (int32_t *)(u + 8 * K);
  float *o = (float *)(m + 8 * nsb), *base = o + 8 * nsb;
  for (int h = 0; h < pw / 8; h++) {
    for (int i = 0; i < 8; i++) {
      if (8 * h + i < nr) {
        lmx_unpack_k4_row(w, r0 + 8 * h + i, u + i * K, m + i, o + i, base + i, 8);
        continue;
      }
      memset(u + i * K, 0, (size_t)K);
      for (int64_t b = 0; b < nsb; b++) m[8 * b + i] = 0, o[8 * b + i] = 0;
      for (int64_t b = 0; b < K / 256; b++) base[8 * b + i] = 0;
    }
    interleave8(u, K, pw, h, panel);
    int32_t *pf = (int32_t *)(panel + pw * K);
    for (int64_t b = 0; b < K / 256; b++) {
      int32_t *f = pf + 17 * pw * b + 8 * h;
      float *ff = (float *)f;
      for (int s = 0; s < 8; s++)
        for (int i = 0; i < 8; i++) {
          f[s * pw + i] = m16x2(m[8 * (8 * b + s) + i]);
          ff[(8 + s) * pw + i] = o[8 * (8 * b + s) + i] * scale;
        }
      for (int i = 0; i < 8; i++) ff[16 * pw + i] = base[8 * b + i] * scale;
    }
  }
}

/* Rows in multiplier form (unpack.c) go into a panel as their codes, then per block of
 * AB = lmx_mult_ab values (one activation scale) n = AB / 16 vectors of pw multipliers
 * (one per sub-block, as int16 pairs (m, m) for madd), pw corrections and pw float bases.
 * Activations come as x + 128 (unsigned, for maddubs), so a row's block sums to
 * sum(m * c * x) + 128 * sum_s(m_s * sum(c_s)): the correction is minus the second term,
 * a constant of the row. The factors of 8 rows are computed together from the
 * interleaved codes.
 * The pair layout (mult_pairs: NVFP4 on the VNNI tiers) holds the same block's factors as
 * one vector of the two sub-blocks' multipliers as an int16 pair (m0, m1), then each
 * sub-block's own correction -128 * sum(c_s), then the bases: a sub-block's sum starts at
 * its correction and ends as sum(c * x), which fits 16 bits (16 * 12 * 128 < 32768), so
 * the two sums go into one madd against (m0, m1) instead of a 32-bit multiply each. The
 * block's integer is the same as in the other layout. */
static int mult_pairs(int AB, int isa) {
  return AB == 32 && isa >= LMX_ISA_AVXVNNI;
}

static void mult_factors8_scalar(const uint8_t *panel, int64_t K, int AB, int pw, int h, float scale, const int32_t *m,
                                 const float *base) {
  const int n = AB / 16;
  int32_t *pf = (int32_t *)(panel + pw * K);
  for (int64_t b = 0; b < K / AB; b++)
    for (int i = 0; i < 8; i++) {
      const int r = 8 * h + i;
      int32_t *f = pf + (n + 2) * pw * b + r, corr = 0;
      for (int sb = 0; sb < n; sb++) {
        int32_t sum = 0;
        for (int64_t k = AB * b + 16 * sb; k < AB * b + 16 * sb + 16; k++) sum += (int8_t)panel[4 * pw * (k / 4) + 4 * r + k % 4];
        const int32_t ms = m[(n * b + sb) * 8 + i];
        f[sb * pw] = m16x2(ms);
        corr += ms * sum;
      }
      f[n * pw] = -128 * corr;
      const float bs = base[8 * b + i] * scale;
      memcpy(f + (n + 1) * pw, &bs, 4);
    }
}

#ifdef LMX_X86
/* Each of 8 rows' code sum over one sub-block of 16 (4 groups at g, 4 * pw bytes apart). */
static inline __attribute__((always_inline)) LMX_AVX2 __m256i sub_block_sums8(const uint8_t *g, int pw) {
  /* The four groups' codes added as bytes (|sum| <= 128 for codes in -32..31), then each
   * row's 4 bytes summed. */
  const __m256i a = _mm256_add_epi8(_mm256_loadu_si256((const __m256i *)g), _mm256_loadu_si256((const __m256i *)(g + 4 * pw)));
  const __m256i c = _mm256_add_epi8(_mm256_loadu_si256((const __m256i *)(g + 8 * pw)), _mm256_loadu_si256((const __m256i *)(g + 12 * pw)));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), _mm256_add_epi8(a, c)), _mm256_set1_epi16(1));
}

static LMX_AVX2 void mult_factors8_avx2(const uint8_t *panel, int64_t K, int AB, int pw, int h, float scale, const int32_t *m,
                                        const float *base, int pairs) {
  const int n = AB / 16;
  int32_t *pf = (int32_t *)(panel + pw * K);
  const __m256 vs = _mm256_set1_ps(scale);
  for (int64_t b = 0; b < K / AB; b++) {
    int32_t *f = pf + (n + 2) * pw * b + 8 * h;
    __m256i corr = _mm256_setzero_si256();
    for (int sb = 0; sb < n; sb += 2) {
      const __m256i s0 = sub_block_sums8(panel + 4 * pw * (AB / 4 * b + 4 * sb) + 32 * h, pw);
      const __m256i s1 = sub_block_sums8(panel + 4 * pw * (AB / 4 * b + 4 * sb + 4) + 32 * h, pw);
      const __m256i m0 = _mm256_loadu_si256((const __m256i *)(m + (n * b + sb) * 8));
      const __m256i m1 = _mm256_loadu_si256((const __m256i *)(m + (n * b + sb + 1) * 8));
      if (pairs) {
        _mm256_storeu_si256((__m256i *)f, _mm256_blend_epi16(m0, _mm256_slli_epi32(m1, 16), 0xaa));
        _mm256_storeu_si256((__m256i *)(f + pw), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s0, 7)));
        _mm256_storeu_si256((__m256i *)(f + 2 * pw), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s1, 7)));
        continue;
      }
      /* m0 * s0 + m1 * s1 in one madd: all fit 16 bits, paired in each 32-bit lane. */
      const __m256i sp = _mm256_blend_epi16(s0, _mm256_slli_epi32(s1, 16), 0xaa);
      corr = _mm256_add_epi32(corr, _mm256_madd_epi16(sp, _mm256_blend_epi16(m0, _mm256_slli_epi32(m1, 16), 0xaa)));
      _mm256_storeu_si256((__m256i *)(f + sb * pw), _mm256_blend_epi16(m0, _mm256_slli_epi32(m0, 16), 0xaa));
      _mm256_storeu_si256((__m256i *)(f + (sb + 1) * pw), _mm256_blend_epi16(m1, _mm256_slli_epi32(m1, 16), 0xaa));
    }
    if (!pairs) _mm256_storeu_si256((__m256i *)(f + n * pw), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 7)));
    _mm256_storeu_ps((float *)(f + (n + 1) * pw), _mm256_mul_ps(_mm256_loadu_ps(base + 8 * b), vs));
  }
}
#endif

/* Rows [r0, r0 + nr) of w in multiplier form into one panel of pw rows, 8 at a time.
 * Returns a mask of the rows whose scales do not fit the form (NVFP4 only): their codes
 * are kept but their multipliers and bases are zero, so their lanes sum to zero and
 * nvfp4_row_dots computes them. */
static uint32_t build_panel_mult(const lmx_tensor *w, int64_t r0, int64_t nr, int pw, float scale, uint8_t *panel,
                                 float *rowbuf, int pairs) {
  const int64_t K = w->ne0;
  const int AB = lmx_mult_ab(w->dtype), n = AB / 16;
  /* 8 rows' codes, then their multipliers [K/16][8] and bases [K/AB][8]. */
  int8_t *c = (int8_t *)rowbuf;
  int32_t *m = (int32_t *)(c + 8 * K);
  float *base = (float *)(m + 8 * (K / 16));
  uint32_t wide = 0;
  for (int h = 0; h < pw / 8; h++) {
    for (int i = 0; i < 8; i++) {
      const int r = 8 * h + i;
      if (r < nr && !lmx_unpack_mult_row(w, r0 + r, c + i * K, m + i, base + i, 8)) continue;
      if (r < nr) wide |= 1u << r;
      else memset(c + i * K, 0, (size_t)K);
      for (int64_t b = 0; b < K / AB; b++) {
        base[8 * b + i] = 0;
        for (int sb = 0; sb < n; sb++) m[(n * b + sb) * 8 + i] = 0;
      }
    }
    interleave8((const uint8_t *)c, K, pw, h, panel);
#ifdef LMX_X86
    if (lmx_use_avx2()) {
      mult_factors8_avx2(panel, K, AB, pw, h, scale, m, base, pairs);
      continue;
    }
#endif
    /* The pair layout is only for the VNNI tiers, which have AVX2. */
    mult_factors8_scalar(panel, K, AB, pw, h, scale, m, base);
  }
  return wide;
}

/* Panel row r (an NVFP4 row whose two scales in a pair are too far apart for integer
 * multipliers; its codes are in the panel, its scale bytes in the file's row) against the
 * 4 tokens of a quad, with a float step per sub-block of 16. */
static void nvfp4_row_dots(const uint8_t *panel, int pw, int r, const uint8_t *row, int32_t dtype, int64_t K, float scale,
                           const uint8_t *quad, float *out, int64_t os) {
  const float *half = lmx_ue4m3_half(), *dxs = (const float *)(quad + 4 * K);
  for (int t = 0; t < 4; t++) {
    float acc = 0;
    for (int64_t sb = 0; sb < K / 16; sb++) {
      int32_t isum = 0;
      for (int64_t k = 16 * sb; k < 16 * sb + 16; k++)
        isum += (int8_t)panel[4 * pw * (k / 4) + 4 * r + k % 4] * (int8_t)(quad[16 * (k / 4) + 4 * t + k % 4] ^ 0x80);
      const float d = dtype == LMX_NVFP4_I ? lmx_nvfp4i_scale_half(row[72 * (sb / 8) + sb % 8]) : half[row[36 * (sb / 4) + sb % 4]];
      acc += (float)isum * (d * scale * dxs[4 * (sb / 2) + t]);
    }
    out[t * os] = acc;
  }
}

/* K-form sums in scalar code (the fallback, and the definition the SIMD kernels follow):
 * per super-block the offsets' steps, then the integer sum's. */
static void panel_dots_k4_scalar(const uint8_t *panel, int64_t K, int pw, const uint8_t *quad, float *out, int64_t os) {
  const int32_t *pf = (const int32_t *)(panel + pw * K);
  const float *dxs = (const float *)(quad + 4 * K), *xos = dxs + 4 * (K / 32);
  for (int t = 0; t < 4; t++)
    for (int r = 0; r < pw; r++) {
      float acc = 0;
      for (int64_t b = 0; b < K / 256; b++) {
        const int32_t *f = pf + 17 * pw * b + r;
        const float *ff = (const float *)f;
        int32_t i = 0;
        for (int s = 0; s < 8; s++) {
          int32_t sum = 0;
          for (int64_t k = 256 * b + 32 * s; k < 256 * b + 32 * s + 32; k++)
            sum += panel[4 * pw * (k / 4) + 4 * r + k % 4] * (int8_t)quad[16 * (k / 4) + 4 * t + k % 4];
          i += sum * (f[s * pw] & 0xffff);
          acc += ff[(8 + s) * pw] * xos[4 * (8 * b + s) + t];
        }
        acc += (float)i * (ff[16 * pw] * dxs[4 * 8 * b + t]);
      }
      out[t * os + r] = acc;
    }
}

/* Multiplier-form sums in scalar code (the fallback, and the definition the SIMD kernels
 * follow), in wrapping 32-bit arithmetic as the vector lanes do. */
static void panel_dots_mult_scalar(const uint8_t *panel, int64_t K, int AB, int pw, const uint8_t *quad, float *out,
                                   int64_t os) {
  const int n = AB / 16;
  const int32_t *pf = (const int32_t *)(panel + pw * K);
  const float *dxs = (const float *)(quad + 4 * K);
  for (int t = 0; t < 4; t++)
    for (int r = 0; r < pw; r++) {
      float acc = 0;
      for (int64_t b = 0; b < K / AB; b++) {
        const int32_t *f = pf + (n + 2) * pw * b + r;
        uint32_t i = (uint32_t)f[n * pw];
        for (int sb = 0; sb < n; sb++) {
          int32_t sum = 0;
          for (int64_t k = AB * b + 16 * sb; k < AB * b + 16 * sb + 16; k++)
            sum += (int8_t)panel[4 * pw * (k / 4) + 4 * r + k % 4] * quad[16 * (k / 4) + 4 * t + k % 4];
          i += (uint32_t)sum * (uint32_t)(int32_t)(int16_t)(f[sb * pw] & 0xffff);
        }
        float bs;
        memcpy(&bs, f + (n + 1) * pw, 4);
        acc += (float)(int32_t)i * (bs * dxs[4 * b + t]);
      }
      out[t * os + r] = acc;
    }
}

/* The same sums in scalar code (the fallback, and the definition the SIMD kernels follow):
 * one panel of pw rows against one quad, out[t * os + r]. */
static void panel_dots_scalar(const uint8_t *panel, int64_t K, int SB, int sgn, int pw, const uint8_t *quad, float *out,
                              int64_t os) {
  const int64_t nsb = K / SB;
  const float *pd = (const float *)(panel + pw * K), *po = pd + pw * nsb;
  const float *dxs = (const float *)(quad + 4 * K), *xos = dxs + 4 * nsb;
  for (int t = 0; t < 4; t++)
    for (int r = 0; r < pw; r++) {
      float acc = 0;
      for (int64_t b = 0; b < nsb; b++) {
        int32_t s = 0;
        for (int64_t k = b * SB; k < (b + 1) * SB; k++) {
          const uint8_t c = panel[4 * pw * (k / 4) + 4 * r + k % 4];
          s += (sgn ? (int8_t)c : (int)c) * (int8_t)quad[16 * (k / 4) + 4 * t + k % 4];
        }
        acc += (float)s * (pd[b * pw + r] * dxs[4 * b + t]);
        acc += po[b * pw + r] * xos[4 * b + t];
      }
      out[t * os + r] = acc;
    }
}

#ifdef LMX_X86
/* 8-row panels with 256-bit registers, once for AVX2 and once for AVX-VNNI. */
#define GQ_ATTR LMX_AVX2
#define GQ(name) name##_avx2
/* Unsigned codes of at most 32 sum four groups in 16 bits before widening (GQ_DP4): 11-15%
 * faster in the isolated panel kernel than two (an earlier try at more had shown no gain). */
#define GQ_DP1(i, w, x) _mm256_add_epi32((i), _mm256_madd_epi16(_mm256_maddubs_epi16((w), (x)), _mm256_set1_epi16(1)))
/* Four groups (codes of token t at x[4j + t]) summed in 16 bits: for codes <= 32 only. */
#define GQ_MB(w, x, j, t) _mm256_maddubs_epi16((w), _mm256_set1_epi32((x)[4 * (j) + (t)]))
#define GQ_DP4(i, w0, w1, w2, w3, x, t)                                                                         \
  _mm256_add_epi32((i), _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(GQ_MB(w0, x, 0, t), GQ_MB(w1, x, 1, t)), \
                                                           _mm256_add_epi16(GQ_MB(w2, x, 2, t), GQ_MB(w3, x, 3, t))), \
                                          _mm256_set1_epi16(1)))
/* Signed codes against x + 128. NVFP4 (|c| <= 12): a 16-bit sum of 4 groups is at most
 * 8 * 255 * 12 in size, and times |m| <= 32767 the madd stays within 32 bits. Q6_K
 * (-32..31) sums 2 groups (4 * 255 * 32 = 32640) per madd (GQ_DPM2), |m| <= 128. */
#define GQ_MBS(w, x, j, t) _mm256_maddubs_epi16(_mm256_set1_epi32((x)[4 * (j) + (t)]), (w))
#define GQ_DPM(i, w0, w1, w2, w3, x, t, m)                                                                          \
  _mm256_add_epi32((i), _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(GQ_MBS(w0, x, 0, t), GQ_MBS(w1, x, 1, t)), \
                                                           _mm256_add_epi16(GQ_MBS(w2, x, 2, t), GQ_MBS(w3, x, 3, t))), \
                                          (m)))
/* GQ_DP4 with the 16-bit sums times m (unsigned codes of at most 31: 8 * 31 * 127 per
 * 16-bit lane, times m <= 63). */
#define GQ_DP4M(i, w0, w1, w2, w3, x, t, m)                                                                     \
  _mm256_add_epi32((i), _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(GQ_MB(w0, x, 0, t), GQ_MB(w1, x, 1, t)), \
                                                           _mm256_add_epi16(GQ_MB(w2, x, 2, t), GQ_MB(w3, x, 3, t))), \
                                          (m)))
#define GQ_DPM2(i, w0, w1, w2, w3, x, t, m)                                                                       \
  _mm256_add_epi32(_mm256_add_epi32((i), _mm256_madd_epi16(_mm256_add_epi16(GQ_MBS(w0, x, 0, t), GQ_MBS(w1, x, 1, t)), (m))), \
                   _mm256_madd_epi16(_mm256_add_epi16(GQ_MBS(w2, x, 2, t), GQ_MBS(w3, x, 3, t)), (m)))
#include "gemm_q8_x86.h"
#undef GQ_ATTR
#undef GQ
#undef GQ_DP1
#undef GQ_DP4
#undef GQ_MB
#undef GQ_MBS
#undef GQ_DPM
#undef GQ_DPM2
#undef GQ_DP4M

#define GQ_ATTR LMX_AVXVNNI
#define GQ(name) name##_avxvnni
#define GQ_DP2(i, w0, x0, w1, x1) _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32((i), (w0), (x0)), (w1), (x1))
#define GQ_DP1(i, w, x) _mm256_dpbusd_avx_epi32((i), (w), (x))
#define GQ_DP4(i, w0, w1, w2, w3, x, t)                                                                               \
  GQ_DP2(GQ_DP2((i), (w0), _mm256_set1_epi32((x)[(t)]), (w1), _mm256_set1_epi32((x)[4 + (t)])), (w2), _mm256_set1_epi32((x)[8 + (t)]), \
         (w3), _mm256_set1_epi32((x)[12 + (t)]))
/* The sub-block's 32-bit sum times m (the high half of its int16 pair, sign-extended). */
#define GQ_DPM(i, w0, w1, w2, w3, x, t, m)                                                                         \
  _mm256_add_epi32((i), _mm256_mullo_epi32(GQ_DP2(GQ_DP2(_mm256_setzero_si256(), _mm256_set1_epi32((x)[(t)]), (w0), \
                                                                 _mm256_set1_epi32((x)[4 + (t)]), (w1)),               \
                                                          _mm256_set1_epi32((x)[8 + (t)]), (w2), _mm256_set1_epi32((x)[12 + (t)]), (w3)), \
                                                   _mm256_srai_epi32((m), 16)))
#define GQ_DPM2 GQ_DPM
#define GQ_DP4M(i, w0, w1, w2, w3, x, t, m) \
  _mm256_add_epi32((i), _mm256_mullo_epi32(GQ_DP4(_mm256_setzero_si256(), w0, w1, w2, w3, x, t), _mm256_srai_epi32((m), 16)))
#define GQ_PAIRS /* NVFP4 in the pair layout: panel_dots_pairs_avxvnni */
#include "gemm_q8_x86.h"
#undef GQ_PAIRS
#undef GQ_ATTR
#undef GQ
#undef GQ_DP2
#undef GQ_DP1
#undef GQ_DP4
#undef GQ_DPM
#undef GQ_DPM2
#undef GQ_DP4M

/* NVFP4 on 8-row panels in the pair layout (mult_factors8_*; panel16_dots_pairs below for
 * why): each sub-block's vpdpbusd chain starts at its correction and ends within 16 bits,
 * and the two meet (m0, m1) in one vpdpwssd, where panel_dots_mult takes a vpmulld per
 * sub-block (two uops and ~10 cycles on Intel's cores). */
static LMX_AVXVNNI void panel_dots_pairs_avxvnni(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  const __m256i *pf = (const __m256i *)(panel + 8 * K);
  const float *dxs = (const float *)(quad + 4 * K);
  __m256 a[4];
  for (int t = 0; t < 4; t++) a[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 32; b++) {
    const __m256i *f = pf + 4 * b;
    const __m256i mp = _mm256_loadu_si256(f);
    __m256i s0[4], s1[4];
    for (int t = 0; t < 4; t++) s0[t] = _mm256_loadu_si256(f + 1), s1[t] = _mm256_loadu_si256(f + 2);
    for (int64_t g = 8 * b; g < 8 * b + 4; g++) {
      const __m256i w0 = _mm256_load_si256((const __m256i *)(panel + 32 * g)), w1 = _mm256_load_si256((const __m256i *)(panel + 32 * (g + 4)));
      const int32_t *x0 = (const int32_t *)(quad + 16 * g), *x1 = (const int32_t *)(quad + 16 * (g + 4));
      for (int t = 0; t < 4; t++) {
        s0[t] = _mm256_dpbusd_avx_epi32(s0[t], _mm256_set1_epi32(x0[t]), w0);
        s1[t] = _mm256_dpbusd_avx_epi32(s1[t], _mm256_set1_epi32(x1[t]), w1);
      }
    }
    const __m256 d = _mm256_loadu_ps((const float *)(f + 3));
    for (int t = 0; t < 4; t++) {
      const __m256i p = _mm256_blend_epi16(s0[t], _mm256_slli_epi32(s1[t], 16), 0xaa);
      a[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_dpwssd_avx_epi32(_mm256_setzero_si256(), p, mp)),
                             _mm256_mul_ps(d, _mm256_broadcast_ss(dxs + 4 * b + t)), a[t]);
    }
  }
  for (int t = 0; t < 4; t++) _mm256_storeu_ps(out + t * os, a[t]);
}

/* 16-row panels with 512-bit registers and vpdpbusd (AVX-512 VNNI): each output row's
 * integer sums and float steps are those of the 8-row kernels, so results are the same. */
static inline __attribute__((always_inline)) LMX_AVX512 void panel16_dots(const uint8_t *panel, int64_t K, const int SB,
                                                                          const int sgn, const uint8_t *quad, float *out,
                                                                          int64_t os) {
  const int64_t nsb = K / SB;
  const float *pd = (const float *)(panel + 16 * K), *po = pd + 16 * nsb;
  const float *dxs = (const float *)(quad + 4 * K), *xos = dxs + 4 * nsb;
  __m512 a[4];
  for (int t = 0; t < 4; t++) a[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nsb; b++) {
    __m512i is[4];
    for (int t = 0; t < 4; t++) is[t] = _mm512_setzero_si512();
    for (int64_t g = b * (SB / 4); g < (b + 1) * (SB / 4); g++) {
      const __m512i w = _mm512_load_si512((const void *)(panel + 64 * g));
      const int32_t *xq = (const int32_t *)(quad + 16 * g);
      if (sgn) {
        /* Signed codes (Q8_0): |w| against x negated where w is negative. */
        const __m512i aw = _mm512_abs_epi8(w);
        const __mmask64 neg = _mm512_movepi8_mask(w);
        for (int t = 0; t < 4; t++) {
          const __m512i xb = _mm512_set1_epi32(xq[t]);
          is[t] = _mm512_dpbusd_epi32(is[t], aw, _mm512_mask_sub_epi8(xb, neg, _mm512_setzero_si512(), xb));
        }
      } else {
        for (int t = 0; t < 4; t++) is[t] = _mm512_dpbusd_epi32(is[t], w, _mm512_set1_epi32(xq[t]));
      }
    }
    const __m512 d = _mm512_loadu_ps(pd + b * 16), o = _mm512_loadu_ps(po + b * 16);
    for (int t = 0; t < 4; t++) {
      a[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[t]), _mm512_mul_ps(d, _mm512_set1_ps(dxs[4 * b + t])), a[t]);
      if (!sgn) a[t] = _mm512_fmadd_ps(o, _mm512_set1_ps(xos[4 * b + t]), a[t]);
    }
  }
  for (int t = 0; t < 4; t++) _mm512_storeu_ps(out + t * os, a[t]);
}

/* The multiplier form on 16-row panels: the sums of gemm_q8_x86.h's panel_dots_mult. */
static inline __attribute__((always_inline)) LMX_AVX512 void panel16_dots_mult(const uint8_t *panel, int64_t K, const int AB,
                                                                               const uint8_t *quad, float *out, int64_t os) {
  const int n = AB / 16;
  const __m512i *pf = (const __m512i *)(panel + 16 * K);
  const float *dxs = (const float *)(quad + 4 * K);
  __m512 a[4];
  for (int t = 0; t < 4; t++) a[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < K / AB; b++) {
    const __m512i *f = pf + (n + 2) * b;
    __m512i is[4];
    for (int t = 0; t < 4; t++) is[t] = _mm512_loadu_si512((const void *)(f + n));
    for (int sb = 0; sb < n; sb++) {
      const __m512i m = _mm512_srai_epi32(_mm512_loadu_si512((const void *)(f + sb)), 16);
      __m512i ss[4];
      for (int t = 0; t < 4; t++) ss[t] = _mm512_setzero_si512();
      for (int64_t g = AB / 4 * b + 4 * sb; g < AB / 4 * b + 4 * sb + 4; g++) {
        const __m512i w = _mm512_load_si512((const void *)(panel + 64 * g));
        const int32_t *xq = (const int32_t *)(quad + 16 * g);
        for (int t = 0; t < 4; t++) ss[t] = _mm512_dpbusd_epi32(ss[t], _mm512_set1_epi32(xq[t]), w);
      }
      for (int t = 0; t < 4; t++) is[t] = _mm512_add_epi32(is[t], _mm512_mullo_epi32(ss[t], m));
    }
    const __m512 d = _mm512_loadu_ps((const float *)(f + n + 1));
    for (int t = 0; t < 4; t++)
      a[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[t]), _mm512_mul_ps(d, _mm512_set1_ps(dxs[4 * b + t])), a[t]);
  }
  for (int t = 0; t < 4; t++) _mm512_storeu_ps(out + t * os, a[t]);
}

/* NVFP4 (AB = 32) on 16-row panels in the pair layout (mult_factors8_*): each sub-block's
 * sum starts at its correction, so it ends as sum(c * x) in 16 bits; the two go into one
 * int16 pair against the multipliers (m0, m1), one madd giving the block's integer that
 * panel16_dots_mult computes with a 32-bit multiply per sub-block (which shares the
 * ports of the vpdpbusd). */
static LMX_AVX512 void panel16_dots_pairs(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  const __m512i *pf = (const __m512i *)(panel + 16 * K);
  const float *dxs = (const float *)(quad + 4 * K);
  __m512 a[4];
  for (int t = 0; t < 4; t++) a[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < K / 32; b++) {
    const __m512i *f = pf + 4 * b;
    const __m512i mp = _mm512_loadu_si512((const void *)f);
    __m512i s0[4], s1[4];
    for (int t = 0; t < 4; t++) s0[t] = _mm512_loadu_si512((const void *)(f + 1)), s1[t] = _mm512_loadu_si512((const void *)(f + 2));
    for (int64_t g = 8 * b; g < 8 * b + 4; g++) {
      const __m512i w0 = _mm512_load_si512((const void *)(panel + 64 * g)), w1 = _mm512_load_si512((const void *)(panel + 64 * (g + 4)));
      const int32_t *x0 = (const int32_t *)(quad + 16 * g), *x1 = (const int32_t *)(quad + 16 * (g + 4));
      for (int t = 0; t < 4; t++) {
        s0[t] = _mm512_dpbusd_epi32(s0[t], _mm512_set1_epi32(x0[t]), w0);
        s1[t] = _mm512_dpbusd_epi32(s1[t], _mm512_set1_epi32(x1[t]), w1);
      }
    }
    const __m512 d = _mm512_loadu_ps((const float *)(f + 3));
    for (int t = 0; t < 4; t++) {
      const __m512i p = _mm512_mask_blend_epi16(0xaaaaaaaau, s0[t], _mm512_slli_epi32(s1[t], 16));
      a[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpwssd_epi32(_mm512_setzero_si512(), p, mp)), _mm512_mul_ps(d, _mm512_set1_ps(dxs[4 * b + t])), a[t]);
    }
  }
  for (int t = 0; t < 4; t++) _mm512_storeu_ps(out + t * os, a[t]);
}

/* The K form on 16-row panels: the sums and steps of gemm_q8_x86.h's panel_dots_k4. */
static LMX_AVX512 void panel16_dots_k4(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  const __m512i *pf = (const __m512i *)(panel + 16 * K);
  const float *dxs = (const float *)(quad + 4 * K), *xos = dxs + 4 * (K / 32);
  __m512 a[4];
  for (int t = 0; t < 4; t++) a[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < K / 256; b++) {
    const __m512i *f = pf + 17 * b;
    __m512i is[4];
    for (int t = 0; t < 4; t++) is[t] = _mm512_setzero_si512();
    for (int s = 0; s < 8; s++) {
      const __m512i m = _mm512_srai_epi32(_mm512_loadu_si512((const void *)(f + s)), 16);
      const __m512 o = _mm512_loadu_ps((const void *)(f + 8 + s));
      __m512i ss[4];
      for (int t = 0; t < 4; t++) ss[t] = _mm512_setzero_si512();
      for (int64_t g = 64 * b + 8 * s; g < 64 * b + 8 * s + 8; g++) {
        const __m512i w = _mm512_load_si512((const void *)(panel + 64 * g));
        const int32_t *xq = (const int32_t *)(quad + 16 * g);
        for (int t = 0; t < 4; t++) ss[t] = _mm512_dpbusd_epi32(ss[t], w, _mm512_set1_epi32(xq[t]));
      }
      for (int t = 0; t < 4; t++) {
        is[t] = _mm512_add_epi32(is[t], _mm512_mullo_epi32(ss[t], m));
        a[t] = _mm512_fmadd_ps(o, _mm512_set1_ps(xos[4 * (8 * b + s) + t]), a[t]);
      }
    }
    const __m512 d = _mm512_loadu_ps((const void *)(f + 16));
    for (int t = 0; t < 4; t++)
      a[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[t]), _mm512_mul_ps(d, _mm512_set1_ps(dxs[4 * 8 * b + t])), a[t]);
  }
  for (int t = 0; t < 4; t++) _mm512_storeu_ps(out + t * os, a[t]);
}

static LMX_AVX512 void panel16_dots_m256(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  panel16_dots_mult(panel, K, 256, quad, out, os);
}

static LMX_AVX512 void panel16_dots_u32(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  panel16_dots(panel, K, 32, 0, quad, out, os);
}

static LMX_AVX512 void panel16_dots_s(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  panel16_dots(panel, K, 32, 1, quad, out, os);
}
#endif

typedef void (*panel_fn)(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os);

/* The panel kernel of a tier for signed codes or unsigned ones in sub-blocks of SB, or NULL. */
static panel_fn panel_kernel(int isa, int32_t dtype) {
  const int sgn = lmx_interleaved_base(dtype) == LMX_Q8_0;
#ifdef LMX_X86
  const int AB = lmx_mult_ab(dtype), form = panel_form(dtype);
  if (form == FORM_K4) switch (isa) {
      case LMX_ISA_AVX512: return panel16_dots_k4;
      case LMX_ISA_AVXVNNI: return panel_dots_k4_avxvnni;
      case LMX_ISA_AVX2: return panel_dots_k4_avx2;
      default: return NULL;
    }
  if (mult_pairs(AB, isa)) return isa == LMX_ISA_AVX512 ? panel16_dots_pairs : panel_dots_pairs_avxvnni;
  if (form == FORM_MULT) switch (isa) {
      case LMX_ISA_AVX512: return panel16_dots_m256;
      case LMX_ISA_AVXVNNI: return panel_dots_m256_avxvnni;
      case LMX_ISA_AVX2: return AB == 32 ? panel_dots_m32_avx2 : panel_dots_m256_avx2;
      default: return NULL;
    }
  /* The rest (Q4_0, Q4_1, Q5_0, Q5_1, MXFP4) are unsigned codes of at most 31 in
   * sub-blocks of 32; Q8_0's are signed. */
  switch (isa) {
    case LMX_ISA_AVX512: return sgn ? panel16_dots_s : panel16_dots_u32;
    case LMX_ISA_AVXVNNI: return sgn ? panel_dots_s_avxvnni : panel_dots_u32_avxvnni;
    case LMX_ISA_AVX2: return sgn ? panel_dots_s_avx2 : panel_dots_u32_avx2;
    default: return NULL;
  }
#else
  (void)isa, (void)sgn;
  return NULL;
#endif
}

/* dst rows [lo, hi) for every token (hi - lo <= GEMM_ROWS); act from lmx_gemm_q8_activations. */
void lmx_gemm_q8(const lmx_node *n, int64_t lo, int64_t hi, const uint8_t *act, float *work, int isa) {
  const lmx_tensor *x = n->src[0], *w = n->src[1], *dst = n->dst;
  const int64_t K = x->ne0, T = x->ne1, ab = lmx_gemm_q8_act_bytes(K), nq = quads(T);
  const int SB = LMX_UNPACK_SB, sgn = lmx_interleaved_base(w->dtype) == LMX_Q8_0;
  const int pw = isa >= LMX_ISA_AVX512 ? 16 : 8;
  const int64_t panelBytes = panel_bytes(w->dtype, K, pw);
  const int np = (int)((hi - lo + pw - 1) / pw);
  const panel_fn kernel = panel_kernel(isa, w->dtype);
  /* The node's output scale (NVFP4's per-tensor scale) goes into the panels' factors. */
  const float scale = n->fp[0] != 0 ? n->fp[0] : 1;
  uint8_t *panels = (uint8_t *)work;
  float *rowbuf = (float *)(panels + panels_bytes(K));
  const int AB = lmx_mult_ab(w->dtype), form = panel_form(w->dtype);
  uint32_t wide[GEMM_ROWS / 8] = {0};
  for (int p = 0; p < np; p++) {
    const int64_t r0 = lo + (int64_t)p * pw, nr = hi - r0 < pw ? hi - r0 : pw;
    uint8_t *panel = panels + p * panelBytes;
    if (form == FORM_MULT) wide[p] = build_panel_mult(w, r0, nr, pw, scale, panel, rowbuf, mult_pairs(AB, isa));
    else if (form == FORM_K4) build_panel_k4(w, r0, nr, pw, scale, panel, rowbuf);
    else build_panel(w, r0, nr, pw, scale, panel, rowbuf);
  }
  float tile[4 * PANEL_MAX];
  for (int64_t q0 = 0; q0 < nq; q0 += QUAD_CHUNK) {
    const int64_t qe = q0 + QUAD_CHUNK < nq ? q0 + QUAD_CHUNK : nq;
    for (int p = 0; p < np; p++) {
      const uint8_t *panel = panels + p * panelBytes;
      const int64_t r0 = lo + (int64_t)p * pw, nr = hi - r0 < pw ? hi - r0 : pw;
      for (int64_t qi = q0; qi < qe; qi++) {
        const uint8_t *quad = act + qi * ab;
        const int nt = (int)(T - 4 * qi < 4 ? T - 4 * qi : 4);
        /* Whole tiles go straight to dst; a ragged one through the tile. */
        const int direct = nt == 4 && nr == pw;
        float *out = direct ? (float *)(dst->data + 4 * qi * dst->nb1) + r0 : tile;
        const int64_t os = direct ? dst->nb1 / 4 : pw;
        if (kernel) kernel(panel, K, quad, out, os);
        else if (form == FORM_MULT) panel_dots_mult_scalar(panel, K, AB, pw, quad, out, os);
        else if (form == FORM_K4) panel_dots_k4_scalar(panel, K, pw, quad, out, os);
        else panel_dots_scalar(panel, K, SB, sgn, pw, quad, out, os);
        for (uint32_t m = wide[p]; m; m &= m - 1) {
          const int r = __builtin_ctz(m);
          nvfp4_row_dots(panel, pw, r, (const uint8_t *)w->data + (r0 + r) * w->nb1, w->dtype, K, scale, quad, out + r, os);
        }
        if (!direct)
          for (int t = 0; t < nt; t++)
            memcpy((float *)(dst->data + (4 * qi + t) * dst->nb1) + r0, tile + t * pw, sizeof(float) * (size_t)nr);
      }
    }
  }
}
