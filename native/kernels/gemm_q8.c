/* Prefill (GEMM) for block-quantized weights with int8 activations. A claim of GEMM_ROWS
 * weight rows is unpacked (unpack.c) into panels of 8 rows (16 on the AVX-512 tier) whose
 * codes are interleaved in 4-byte groups, so one 32-byte (64-byte) load holds 4 codes of
 * each row; every token's 4 activation codes are broadcast against it (maddubs, or
 * vpdpbusd on the VNNI tiers), giving the rows' partial dots in the lanes. Per sub-block the integer sums become floats once: lane += isum * (d * dx)
 * + o * (dx * sum of the token's codes). Activations are laid out by quads of tokens (codes
 * of 4 tokens side by side per group of 4, then their per-sub-block factors), so a quad is
 * one sequential stream; quads go through in chunks that stay in L2 while every panel of
 * the claim passes over them. Each output's arithmetic is the same whatever the grouping,
 * so results do not depend on the batch or the thread count. */
#include <string.h>

#include "../simd.h"

#define PANEL_MAX 16
#define GEMM_ROWS 32
#define QUAD_CHUNK 16 /* quads (of 4 tokens) per pass over the claim's panels */

/* Bytes per quad of prepared activations: 4 x K codes, then K/SB scales dx and K/SB
 * offsets dx * (sum of codes) for each of the 4 tokens (sized for SB = 16). */
static int64_t lmx_gemm_q8_act_bytes(int64_t K) {
  return (4 * K + 2 * 4 * (K / 16) * 4 + 63) / 64 * 64;
}

int64_t lmx_gemm_q8_rows(void) {
  return GEMM_ROWS;
}

static int64_t quads(int64_t T) {
  return (T + 3) / 4;
}

/* A thread's scratch: prepared activations for T tokens, then the work area (panels of
 * one claim, one row being unpacked; during preparation, one token's codes). */
static uint8_t *work_area(uint8_t *buf, int64_t K, int64_t T) {
  return buf + quads(T) * lmx_gemm_q8_act_bytes(K);
}

/* Bytes of the claim's panels (GEMM_ROWS rows of codes, a scale and an offset per
 * sub-block and row), sized for sub-blocks of 16. */
static int64_t panels_bytes(int64_t K) {
  return GEMM_ROWS * K + 2 * GEMM_ROWS * (K / 16) * 4;
}

/* Scratch floats one thread needs (see work_area). */
int64_t lmx_gemm_q8_scratch(int64_t K, int64_t T) {
  const int64_t row = K + 2 * (K / 16) * 4 + K + K / 32 * 4 + K / 16 * 4;
  return (quads(T) * lmx_gemm_q8_act_bytes(K) + panels_bytes(K) + row) / 4 + 64;
}

/* Quantizes token rows of x as the decode path does for this weight type, into quads, with
 * the per-sub-block factors the GEMM needs; missing tokens of the last quad are zeros. */
void lmx_gemm_q8_prepare(const lmx_tensor *x, int32_t wtype, uint8_t *act) {
  const int64_t K = x->ne0, T = x->ne1, ab = lmx_gemm_q8_act_bytes(K);
  const int SB = lmx_unpack_sb(wtype), super = wtype == LMX_Q4_K || wtype == LMX_Q5_K || wtype == LMX_Q6_K;
  const int64_t nsb = K / SB;
  int8_t *q = (int8_t *)work_area(act, K, T);
  float *dx = (float *)(q + K);
  int32_t *s16 = (int32_t *)(dx + K / 32);
  memset(act + (quads(T) - 1) * ab, 0, (size_t)ab);
  for (int64_t t = 0; t < T; t++) {
    uint8_t *quad = act + (t / 4) * ab;
    const int lane = (int)(t % 4);
    float *dxs = (float *)(quad + 4 * K), *xos = dxs + 4 * nsb;
    lmx_quantize_x8((const float *)(x->data + t * x->nb1), K, super, q, dx, s16);
    const uint32_t *q4 = (const uint32_t *)q;
    uint32_t *c4 = (uint32_t *)quad + lane;
    for (int64_t g = 0; g < K / 4; g++) c4[4 * g] = q4[g];
    for (int64_t b = 0; b < nsb; b++) {
      const float d = dx[b * SB / 32];
      const int32_t s = SB == 16 ? s16[b] : s16[2 * b] + s16[2 * b + 1];
      dxs[4 * b + lane] = d;
      xos[4 * b + lane] = d * (float)s;
    }
  }
}

/* Unpacks rows [r0, r0 + nr) (nr <= pw; missing rows are zero) into one panel of pw rows. */
static void build_panel(const lmx_tensor *w, int64_t r0, int64_t nr, int pw, float scale, uint8_t *panel, float *rowbuf) {
  const int64_t K = w->ne0;
  const int SB = lmx_unpack_sb(w->dtype);
  const int64_t nsb = K / SB;
  float *pd = (float *)(panel + pw * K), *po = pd + pw * nsb;
  uint8_t *u = (uint8_t *)rowbuf;
  float *d = (float *)(u + K), *o = d + nsb;
  for (int r = 0; r < pw; r++) {
    if (r < nr) {
      lmx_unpack_row(w->data + (r0 + r) * w->nb1, w->dtype, K, u, d, o);
    } else {
      memset(u, 0, (size_t)K);
      memset(d, 0, sizeof(float) * (size_t)nsb);
      memset(o, 0, sizeof(float) * (size_t)nsb);
    }
    const uint32_t *u4 = (const uint32_t *)u;
    uint32_t *p4 = (uint32_t *)panel + r;
    for (int64_t g = 0; g < K / 4; g++) p4[pw * g] = u4[g];
    for (int64_t b = 0; b < nsb; b++) {
      pd[b * pw + r] = d[b] * scale;
      po[b * pw + r] = o[b] * scale;
    }
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
/* i += the products of two groups of 4 codes: summed in 16 bits before widening, which
 * cannot overflow as codes are at most 63 (Q6_K) and 2 * 2 * 63 * 127 < 32768. Codes of
 * at most 32 take four groups per widening (GQ_DP4): 11-15% faster in the isolated
 * panel kernel (an earlier try at more groups per widening had shown no gain). */
#define GQ_DP2(i, w0, x0, w1, x1) \
  _mm256_add_epi32((i), _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16((w0), (x0)), _mm256_maddubs_epi16((w1), (x1))), _mm256_set1_epi16(1)))
#define GQ_DP1(i, w, x) _mm256_add_epi32((i), _mm256_madd_epi16(_mm256_maddubs_epi16((w), (x)), _mm256_set1_epi16(1)))
/* Four groups (codes of token t at x[4j + t]) summed in 16 bits: for codes <= 32 only. */
#define GQ_MB(w, x, j, t) _mm256_maddubs_epi16((w), _mm256_set1_epi32((x)[4 * (j) + (t)]))
#define GQ_DP4(i, w0, w1, w2, w3, x, t)                                                                         \
  _mm256_add_epi32((i), _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(GQ_MB(w0, x, 0, t), GQ_MB(w1, x, 1, t)), \
                                                           _mm256_add_epi16(GQ_MB(w2, x, 2, t), GQ_MB(w3, x, 3, t))), \
                                          _mm256_set1_epi16(1)))
#include "gemm_q8_x86.h"
#undef GQ_ATTR
#undef GQ
#undef GQ_DP2
#undef GQ_DP1
#undef GQ_DP4
#undef GQ_MB

#define GQ_ATTR LMX_AVXVNNI
#define GQ(name) name##_avxvnni
#define GQ_DP2(i, w0, x0, w1, x1) _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32((i), (w0), (x0)), (w1), (x1))
#define GQ_DP1(i, w, x) _mm256_dpbusd_avx_epi32((i), (w), (x))
#define GQ_DP4(i, w0, w1, w2, w3, x, t)                                                                               \
  GQ_DP2(GQ_DP2((i), (w0), _mm256_set1_epi32((x)[(t)]), (w1), _mm256_set1_epi32((x)[4 + (t)])), (w2), _mm256_set1_epi32((x)[8 + (t)]), \
         (w3), _mm256_set1_epi32((x)[12 + (t)]))
#include "gemm_q8_x86.h"
#undef GQ_ATTR
#undef GQ
#undef GQ_DP2
#undef GQ_DP1
#undef GQ_DP4

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

static LMX_AVX512 void panel16_dots_u16(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  panel16_dots(panel, K, 16, 0, quad, out, os);
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
  const int sgn = dtype == LMX_Q8_0, SB = lmx_unpack_sb(dtype);
  /* Unpacked codes are at most 15 (Q4_x, Q4_K), 24 (FP4) or 31 (Q5_x, Q5_K); Q6_K's 63. */
  const int narrow = dtype != LMX_Q6_K;
#ifdef LMX_X86
  switch (isa) {
    case LMX_ISA_AVX512: return sgn ? panel16_dots_s : SB == 16 ? panel16_dots_u16 : panel16_dots_u32;
    case LMX_ISA_AVXVNNI:
      return sgn ? panel_dots_s_avxvnni : SB == 16 ? (narrow ? panel_dots_u16n_avxvnni : panel_dots_u16_avxvnni)
                                                   : (narrow ? panel_dots_u32n_avxvnni : panel_dots_u32_avxvnni);
    case LMX_ISA_AVX2:
      return sgn ? panel_dots_s_avx2 : SB == 16 ? (narrow ? panel_dots_u16n_avx2 : panel_dots_u16_avx2)
                                                : (narrow ? panel_dots_u32n_avx2 : panel_dots_u32_avx2);
    default: return NULL;
  }
#else
  (void)isa, (void)sgn, (void)SB, (void)narrow;
  return NULL;
#endif
}

/* dst rows [lo, hi) for every token (hi - lo <= GEMM_ROWS); act from lmx_gemm_q8_prepare. */
void lmx_gemm_q8(const lmx_node *n, int64_t lo, int64_t hi, uint8_t *act, int isa) {
  const lmx_tensor *x = n->src[0], *w = n->src[1], *dst = n->dst;
  const int64_t K = x->ne0, T = x->ne1, ab = lmx_gemm_q8_act_bytes(K), nq = quads(T);
  const int SB = lmx_unpack_sb(w->dtype), sgn = w->dtype == LMX_Q8_0;
  const int pw = isa >= LMX_ISA_AVX512 ? 16 : 8;
  const int64_t panelBytes = pw * K + 2 * pw * (K / SB) * 4;
  const int np = (int)((hi - lo + pw - 1) / pw);
  const panel_fn kernel = panel_kernel(isa, w->dtype);
  /* The node's output scale (NVFP4's per-tensor scale) goes into the panels' factors. */
  const float scale = n->fp[0] != 0 ? n->fp[0] : 1;
  uint8_t *panels = work_area(act, K, T);
  float *rowbuf = (float *)(panels + panels_bytes(K));
  for (int p = 0; p < np; p++) {
    const int64_t r0 = lo + (int64_t)p * pw;
    build_panel(w, r0, hi - r0 < pw ? hi - r0 : pw, pw, scale, panels + p * panelBytes, rowbuf);
  }
  float tile[4 * PANEL_MAX];
  for (int64_t q0 = 0; q0 < nq; q0 += QUAD_CHUNK) {
    const int64_t qe = q0 + QUAD_CHUNK < nq ? q0 + QUAD_CHUNK : nq;
    for (int p = 0; p < np; p++) {
      const uint8_t *panel = panels + p * panelBytes;
      const int64_t r0 = lo + (int64_t)p * pw, nr = hi - r0 < pw ? hi - r0 : pw;
      for (int64_t qi = q0; qi < qe; qi++) {
        const uint8_t *quad = act + qi * ab;
        if (kernel) kernel(panel, K, quad, tile, pw);
        else panel_dots_scalar(panel, K, SB, sgn, pw, quad, tile, pw);
        const int nt = (int)(T - 4 * qi < 4 ? T - 4 * qi : 4);
        for (int t = 0; t < nt; t++)
          memcpy((float *)(dst->data + (4 * qi + t) * dst->nb1) + r0, tile + t * pw, sizeof(float) * (size_t)nr);
      }
    }
  }
}
