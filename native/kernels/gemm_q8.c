/* Prefill (GEMM) for block-quantized weights with int8 activations. A claim of GEMM_ROWS
 * weight rows is unpacked (unpack.c) into panels of 8 rows whose codes are interleaved
 * in 4-byte groups, so one 32-byte load holds 4 codes of each of 8 rows; every token's 4
 * activation codes are broadcast against it (maddubs), giving the 8 rows' partial dots in
 * the 8 lanes. Per sub-block the integer sums become floats once: lane += isum * (d * dx)
 * + o * (dx * sum of the token's codes). Tokens go through in chunks that stay in L2 while
 * every panel of the claim passes over them. Each output's arithmetic is the same whatever
 * the token grouping, so results do not depend on the batch or the thread count. */
#include <string.h>

#include "../simd.h"

#define PANEL 8


#define GEMM_ROWS 32
#define TOKEN_CHUNK 64

/* Bytes per token of prepared activations: codes, then K/SB scales dx and K/SB offsets
 * dx * (sum of codes), as floats (the maximum over SB = 16 and 32). */
int64_t lmx_gemm_q8_act_bytes(int64_t K) {
  return (K + 2 * (K / 16) * 4 + 63) / 64 * 64;
}

int64_t lmx_gemm_q8_rows(void) {
  return GEMM_ROWS;
}

/* Scratch floats one thread needs: prepared activations for T tokens, the panels of one
 * claim and one row being unpacked. */
int64_t lmx_gemm_q8_scratch(int64_t K, int64_t T) {
  const int64_t panel = PANEL * K + 2 * PANEL * (K / 16) * 4, row = K + 2 * (K / 16) * 4 + K / 32 * 4 + K / 16 * 4;
  return (T * lmx_gemm_q8_act_bytes(K) + (GEMM_ROWS / PANEL) * panel + row) / 4 + 64;
}

/* Quantizes token rows of x as the decode path does for this weight type and adds the
 * per-sub-block factors the GEMM needs. */
void lmx_gemm_q8_prepare(const lmx_tensor *x, int32_t wtype, uint8_t *act, float *tmp) {
  const int64_t K = x->ne0, T = x->ne1, ab = lmx_gemm_q8_act_bytes(K);
  const int SB = lmx_unpack_sb(wtype), super = wtype == LMX_Q4_K || wtype == LMX_Q5_K || wtype == LMX_Q6_K;
  float *dx = tmp;
  int32_t *s16 = (int32_t *)(tmp + K / 32);
  for (int64_t t = 0; t < T; t++) {
    int8_t *q = (int8_t *)(act + t * ab);
    float *dxs = (float *)(act + t * ab + K), *xos = dxs + K / SB;
    lmx_quantize_x8((const float *)(x->data + t * x->nb1), K, super, q, dx, s16);
    for (int64_t b = 0; b < K / SB; b++) {
      const float d = dx[b * SB / 32];
      const int32_t s = SB == 16 ? s16[b] : s16[2 * b] + s16[2 * b + 1];
      dxs[b] = d;
      xos[b] = d * (float)s;
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

/* The same sums in scalar code (the fallback, and the definition the SIMD kernels follow). */
static void panel_dots_scalar(const uint8_t *panel, int64_t K, int SB, int sgn, const uint8_t *act, int64_t ab, int nt,
                              float *out, int64_t os) {
  const int64_t nsb = K / SB;
  const float *pd = (const float *)(panel + PANEL * K), *po = pd + PANEL * nsb;
  for (int t = 0; t < nt; t++) {
    const int8_t *q = (const int8_t *)(act + t * ab);
    const float *dxs = (const float *)(act + t * ab + K), *xos = dxs + nsb;
    for (int r = 0; r < PANEL; r++) {
      float acc = 0;
      for (int64_t b = 0; b < nsb; b++) {
        int32_t s = 0;
        for (int64_t k = b * SB; k < (b + 1) * SB; k++) {
          const uint8_t c = panel[32 * (k / 4) + 4 * r + k % 4];
          s += (sgn ? (int8_t)c : (int)c) * q[k];
        }
        acc += (float)s * (pd[b * PANEL + r] * dxs[b]);
        acc += po[b * PANEL + r] * xos[b];
      }
      out[t * os + r] = acc;
    }
  }
}

#ifdef LMX_X86
/* NT tokens against one panel of unsigned codes. GPER groups of maddubs products are
 * summed in 16 bits before widening: safe while GPER * 2 * (largest code) * 127 < 32768.
 * Lane r of each accumulator is row r. */
static inline __attribute__((always_inline)) LMX_AVX2 void panel_dots_u(const uint8_t *panel, int64_t K, int SB,
                                                                        const uint8_t *act, int64_t ab, const int nt,
                                                                        const int gper, float *out, int64_t os) {
  const int64_t nsb = K / SB;
  const float *pd = (const float *)(panel + PANEL * K), *po = pd + PANEL * nsb;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[4];
  for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nsb; b++) {
    __m256i is[4];
    for (int t = 0; t < nt; t++) is[t] = _mm256_setzero_si256();
    for (int64_t g0 = b * SB / 4; g0 < (b + 1) * SB / 4; g0 += gper) {
      __m256i p[4];
      for (int t = 0; t < nt; t++) p[t] = _mm256_setzero_si256();
      for (int64_t g = g0; g < g0 + gper; g++) {
        const __m256i w = _mm256_load_si256((const __m256i *)(panel + 32 * g));
        for (int t = 0; t < nt; t++)
          p[t] = _mm256_add_epi16(p[t], _mm256_maddubs_epi16(w, _mm256_set1_epi32(*(const int32_t *)(act + t * ab + 4 * g))));
      }
      for (int t = 0; t < nt; t++) is[t] = _mm256_add_epi32(is[t], _mm256_madd_epi16(p[t], ones));
    }
    const __m256 d = _mm256_loadu_ps(pd + b * PANEL), o = _mm256_loadu_ps(po + b * PANEL);
    for (int t = 0; t < nt; t++) {
      const float *dxs = (const float *)(act + t * ab + K);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[t]), _mm256_mul_ps(d, _mm256_broadcast_ss(dxs + b)), acc[t]);
      acc[t] = _mm256_fmadd_ps(o, _mm256_broadcast_ss(dxs + nsb + b), acc[t]);
    }
  }
  for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + t * os, acc[t]);
}

/* Signed codes (Q8_0): |w| against x with w's signs, each maddubs widened at once. */
static inline __attribute__((always_inline)) LMX_AVX2 void panel_dots_s(const uint8_t *panel, int64_t K, int SB,
                                                                        const uint8_t *act, int64_t ab, const int nt,
                                                                        float *out, int64_t os) {
  const int64_t nsb = K / SB;
  const float *pd = (const float *)(panel + PANEL * K), *po = pd + PANEL * nsb;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[4];
  for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nsb; b++) {
    __m256i is[4];
    for (int t = 0; t < nt; t++) is[t] = _mm256_setzero_si256();
    for (int64_t g = b * SB / 4; g < (b + 1) * SB / 4; g++) {
      const __m256i w = _mm256_load_si256((const __m256i *)(panel + 32 * g)), aw = _mm256_sign_epi8(w, w);
      for (int t = 0; t < nt; t++) {
        const __m256i x = _mm256_set1_epi32(*(const int32_t *)(act + t * ab + 4 * g));
        is[t] = _mm256_add_epi32(is[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w)), ones));
      }
    }
    const __m256 d = _mm256_loadu_ps(pd + b * PANEL), o = _mm256_loadu_ps(po + b * PANEL);
    for (int t = 0; t < nt; t++) {
      const float *dxs = (const float *)(act + t * ab + K);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[t]), _mm256_mul_ps(d, _mm256_broadcast_ss(dxs + b)), acc[t]);
      acc[t] = _mm256_fmadd_ps(o, _mm256_broadcast_ss(dxs + nsb + b), acc[t]);
    }
  }
  for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + t * os, acc[t]);
}

/* Unsigned codes go up to 63 (Q6_K), so two maddubs products (2 * 2 * 63 * 127) sum
 * safely in 16 bits; more groups per widening measured no faster here. */
static LMX_AVX2 void panel_dots_avx2(const uint8_t *panel, int64_t K, int SB, int sgn, const uint8_t *act, int64_t ab,
                                     int nt, float *out, int64_t os) {
  if (sgn) {
    for (; nt >= 4; nt -= 4, act += 4 * ab, out += 4 * os) panel_dots_s(panel, K, SB, act, ab, 4, out, os);
    for (; nt > 0; nt--, act += ab, out += os) panel_dots_s(panel, K, SB, act, ab, 1, out, os);
  } else {
    for (; nt >= 4; nt -= 4, act += 4 * ab, out += 4 * os) panel_dots_u(panel, K, SB, act, ab, 4, 2, out, os);
    for (; nt > 0; nt--, act += ab, out += os) panel_dots_u(panel, K, SB, act, ab, 1, 2, out, os);
  }
}
#endif

/* dst rows [lo, hi) for every token (hi - lo <= GEMM_ROWS); act from lmx_gemm_q8_prepare. */
void lmx_gemm_q8(const lmx_node *n, int64_t lo, int64_t hi, const uint8_t *act, float *work, int simd) {
  const lmx_tensor *x = n->src[0], *w = n->src[1], *dst = n->dst;
  const int64_t K = x->ne0, T = x->ne1, ab = lmx_gemm_q8_act_bytes(K);
  const int SB = lmx_unpack_sb(w->dtype), sgn = w->dtype == LMX_Q8_0;
  const int64_t panelBytes = PANEL * K + 2 * PANEL * (K / SB) * 4;
  const int np = (int)((hi - lo + PANEL - 1) / PANEL);
  uint8_t *panels = (uint8_t *)work;
  float *rowbuf = (float *)(panels + (GEMM_ROWS / PANEL) * (PANEL * K + 2 * PANEL * (K / 16) * 4));
  for (int p = 0; p < np; p++) {
    const int64_t r0 = lo + (int64_t)p * PANEL;
    build_panel(w, r0, hi - r0 < PANEL ? hi - r0 : PANEL, panels + p * panelBytes, rowbuf);
  }
  float tile[TOKEN_CHUNK * PANEL];
  for (int64_t t0 = 0; t0 < T; t0 += TOKEN_CHUNK) {
    const int nt = (int)(T - t0 < TOKEN_CHUNK ? T - t0 : TOKEN_CHUNK);
    for (int p = 0; p < np; p++) {
      const uint8_t *panel = panels + p * panelBytes;
#ifdef LMX_X86
      if (simd) panel_dots_avx2(panel, K, SB, sgn, act + t0 * ab, ab, nt, tile, PANEL);
      else
#endif
        panel_dots_scalar(panel, K, SB, sgn, act + t0 * ab, ab, nt, tile, PANEL);
      const int64_t r0 = lo + (int64_t)p * PANEL, nr = hi - r0 < PANEL ? hi - r0 : PANEL;
      for (int t = 0; t < nt; t++) memcpy((float *)(dst->data + (t0 + t) * dst->nb1) + r0, tile + t * PANEL, sizeof(float) * (size_t)nr);
    }
  }
  (void)simd;
}
