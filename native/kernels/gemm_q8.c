/* Prefill (GEMM) for block-quantized weights with int8 activations. A claim of GEMM_ROWS
 * weight rows is unpacked (unpack.c) into panels of 8 rows whose codes are interleaved
 * in 4-byte groups, so one 32-byte load holds 4 codes of each of 8 rows; every token's 4
 * activation codes are broadcast against it (maddubs), giving the 8 rows' partial dots in
 * the 8 lanes. Per sub-block the integer sums become floats once: lane += isum * (d * dx)
 * + o * (dx * sum of the token's codes). Activations are laid out by quads of tokens (codes
 * of 4 tokens side by side per group of 4, then their per-sub-block factors), so a quad is
 * one sequential stream; quads go through in chunks that stay in L2 while every panel of
 * the claim passes over them. Each output's arithmetic is the same whatever the grouping,
 * so results do not depend on the batch or the thread count. */
#include <string.h>

#include "../simd.h"

#define PANEL 8
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

/* Scratch floats one thread needs (see work_area). */
int64_t lmx_gemm_q8_scratch(int64_t K, int64_t T) {
  const int64_t panel = PANEL * K + 2 * PANEL * (K / 16) * 4, row = K + 2 * (K / 16) * 4 + K + K / 32 * 4 + K / 16 * 4;
  return (quads(T) * lmx_gemm_q8_act_bytes(K) + (GEMM_ROWS / PANEL) * panel + row) / 4 + 64;
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

/* Unpacks rows [r0, r0 + nr) (nr <= PANEL; missing rows are zero) into one panel. */
static void build_panel(const lmx_tensor *w, int64_t r0, int64_t nr, uint8_t *panel, float *rowbuf) {
  const int64_t K = w->ne0;
  const int SB = lmx_unpack_sb(w->dtype);
  const int64_t nsb = K / SB;
  float *pd = (float *)(panel + PANEL * K), *po = pd + PANEL * nsb;
  uint8_t *u = (uint8_t *)rowbuf;
  float *d = (float *)(u + K), *o = d + nsb;
  for (int r = 0; r < PANEL; r++) {
    if (r < nr) {
      lmx_unpack_row(w->data + (r0 + r) * w->nb1, w->dtype, K, u, d, o);
    } else {
      memset(u, 0, (size_t)K);
      memset(d, 0, sizeof(float) * (size_t)nsb);
      memset(o, 0, sizeof(float) * (size_t)nsb);
    }
    const uint32_t *u4 = (const uint32_t *)u;
    uint32_t *p4 = (uint32_t *)panel + r;
    for (int64_t g = 0; g < K / 4; g++) p4[8 * g] = u4[g];
    for (int64_t b = 0; b < nsb; b++) {
      pd[b * PANEL + r] = d[b];
      po[b * PANEL + r] = o[b];
    }
  }
}

/* The same sums in scalar code (the fallback, and the definition the SIMD kernels follow):
 * one panel against one quad, out[t * os + r]. */
static void panel_dots_scalar(const uint8_t *panel, int64_t K, int SB, int sgn, const uint8_t *quad, float *out,
                              int64_t os) {
  const int64_t nsb = K / SB;
  const float *pd = (const float *)(panel + PANEL * K), *po = pd + PANEL * nsb;
  const float *dxs = (const float *)(quad + 4 * K), *xos = dxs + 4 * nsb;
  for (int t = 0; t < 4; t++)
    for (int r = 0; r < PANEL; r++) {
      float acc = 0;
      for (int64_t b = 0; b < nsb; b++) {
        int32_t s = 0;
        for (int64_t k = b * SB; k < (b + 1) * SB; k++) {
          const uint8_t c = panel[32 * (k / 4) + 4 * r + k % 4];
          s += (sgn ? (int8_t)c : (int)c) * (int8_t)quad[16 * (k / 4) + 4 * t + k % 4];
        }
        acc += (float)s * (pd[b * PANEL + r] * dxs[4 * b + t]);
        acc += po[b * PANEL + r] * xos[4 * b + t];
      }
      out[t * os + r] = acc;
    }
}

#ifdef LMX_X86
/* One panel of unsigned codes against one quad. Two groups of maddubs products are summed
 * in 16 bits before widening: codes go up to 63 (Q6_K), and 2 * 2 * 63 * 127 < 32768
 * (more groups per widening measured no faster here). Lane r of acc[t] is row r. */
static inline __attribute__((always_inline)) LMX_AVX2 void panel_dots_u(const uint8_t *panel, int64_t K, const int SB,
                                                                        const uint8_t *quad, float *out, int64_t os) {
  const int64_t nsb = K / SB;
  const float *pd = (const float *)(panel + PANEL * K), *po = pd + PANEL * nsb;
  const float *dxs = (const float *)(quad + 4 * K), *xos = dxs + 4 * nsb;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < nsb; b++) {
    __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256(), i2 = _mm256_setzero_si256(), i3 = _mm256_setzero_si256();
    for (int64_t g = b * (SB / 4); g < (b + 1) * (SB / 4); g += 2) {
      const __m256i w0 = _mm256_load_si256((const __m256i *)(panel + 32 * g));
      const __m256i w1 = _mm256_load_si256((const __m256i *)(panel + 32 * g + 32));
      const int32_t *x0 = (const int32_t *)(quad + 16 * g), *x1 = x0 + 4;
#define STEP(I, T)                                                                                         \
  I = _mm256_add_epi32(I, _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(w0, _mm256_set1_epi32(x0[T])), \
                                                             _mm256_maddubs_epi16(w1, _mm256_set1_epi32(x1[T]))), \
                                            ones))
      STEP(i0, 0);
      STEP(i1, 1);
      STEP(i2, 2);
      STEP(i3, 3);
#undef STEP
    }
    const __m256 d = _mm256_loadu_ps(pd + b * PANEL), o = _mm256_loadu_ps(po + b * PANEL);
    const float *dx = dxs + 4 * b, *xo = xos + 4 * b;
    a0 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo), _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(d, _mm256_broadcast_ss(dx)), a0));
    a1 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo + 1), _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 1)), a1));
    a2 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo + 2), _mm256_fmadd_ps(_mm256_cvtepi32_ps(i2), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 2)), a2));
    a3 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo + 3), _mm256_fmadd_ps(_mm256_cvtepi32_ps(i3), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 3)), a3));
  }
  _mm256_storeu_ps(out, a0);
  _mm256_storeu_ps(out + os, a1);
  _mm256_storeu_ps(out + 2 * os, a2);
  _mm256_storeu_ps(out + 3 * os, a3);
}

/* The sub-block size as a constant, so the group loop unrolls. */
static LMX_AVX2 void panel_dots_u16(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  panel_dots_u(panel, K, 16, quad, out, os);
}

static LMX_AVX2 void panel_dots_u32(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  panel_dots_u(panel, K, 32, quad, out, os);
}

/* Signed codes (Q8_0): |w| against x with w's signs, each maddubs widened at once. */
static LMX_AVX2 void panel_dots_s(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  enum { SB = 32 };
  const int64_t nsb = K / SB;
  const float *pd = (const float *)(panel + PANEL * K), *po = pd + PANEL * nsb;
  const float *dxs = (const float *)(quad + 4 * K), *xos = dxs + 4 * nsb;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[4];
  for (int t = 0; t < 4; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nsb; b++) {
    __m256i is[4];
    for (int t = 0; t < 4; t++) is[t] = _mm256_setzero_si256();
    for (int64_t g = b * SB / 4; g < (b + 1) * SB / 4; g++) {
      const __m256i w = _mm256_load_si256((const __m256i *)(panel + 32 * g)), aw = _mm256_sign_epi8(w, w);
      const int32_t *xq = (const int32_t *)(quad + 16 * g);
      for (int t = 0; t < 4; t++)
        is[t] = _mm256_add_epi32(is[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(_mm256_set1_epi32(xq[t]), w)), ones));
    }
    const __m256 d = _mm256_loadu_ps(pd + b * PANEL), o = _mm256_loadu_ps(po + b * PANEL);
    for (int t = 0; t < 4; t++) {
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[t]), _mm256_mul_ps(d, _mm256_broadcast_ss(dxs + 4 * b + t)), acc[t]);
      acc[t] = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xos + 4 * b + t), acc[t]);
    }
  }
  for (int t = 0; t < 4; t++) _mm256_storeu_ps(out + t * os, acc[t]);
}
#endif

/* dst rows [lo, hi) for every token (hi - lo <= GEMM_ROWS); act from lmx_gemm_q8_prepare. */
void lmx_gemm_q8(const lmx_node *n, int64_t lo, int64_t hi, uint8_t *act, int simd) {
  const lmx_tensor *x = n->src[0], *w = n->src[1], *dst = n->dst;
  const int64_t K = x->ne0, T = x->ne1, ab = lmx_gemm_q8_act_bytes(K), nq = quads(T);
  const int SB = lmx_unpack_sb(w->dtype), sgn = w->dtype == LMX_Q8_0;
  const int64_t panelBytes = PANEL * K + 2 * PANEL * (K / SB) * 4;
  const int np = (int)((hi - lo + PANEL - 1) / PANEL);
  uint8_t *panels = work_area(act, K, T);
  float *rowbuf = (float *)(panels + (GEMM_ROWS / PANEL) * (PANEL * K + 2 * PANEL * (K / 16) * 4));
  for (int p = 0; p < np; p++) {
    const int64_t r0 = lo + (int64_t)p * PANEL;
    build_panel(w, r0, hi - r0 < PANEL ? hi - r0 : PANEL, panels + p * panelBytes, rowbuf);
  }
  float tile[4 * PANEL];
  for (int64_t q0 = 0; q0 < nq; q0 += QUAD_CHUNK) {
    const int64_t qe = q0 + QUAD_CHUNK < nq ? q0 + QUAD_CHUNK : nq;
    for (int p = 0; p < np; p++) {
      const uint8_t *panel = panels + p * panelBytes;
      const int64_t r0 = lo + (int64_t)p * PANEL, nr = hi - r0 < PANEL ? hi - r0 : PANEL;
      for (int64_t qi = q0; qi < qe; qi++) {
        const uint8_t *quad = act + qi * ab;
#ifdef LMX_X86
        if (simd) {
          if (sgn) panel_dots_s(panel, K, quad, tile, PANEL);
          else if (SB == 16) panel_dots_u16(panel, K, quad, tile, PANEL);
          else panel_dots_u32(panel, K, quad, tile, PANEL);
        } else
#endif
          panel_dots_scalar(panel, K, SB, sgn, quad, tile, PANEL);
        const int nt = (int)(T - 4 * qi < 4 ? T - 4 * qi : 4);
        for (int t = 0; t < nt; t++)
          memcpy((float *)(dst->data + (4 * qi + t) * dst->nb1) + r0, tile + t * PANEL, sizeof(float) * (size_t)nr);
      }
    }
  }
}
