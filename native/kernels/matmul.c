/* dst[T,N] = x[T,K] . W[N,K]^T * scale (+ bias[N]) for f32/f16/bf16 and block-quantized weights
 * (scale: NVFP4's per-tensor factor, else 1) and f32 activations.
 * Decode streams the weight rows (GEMV: up to 8 tokens with float weights, 16 quantized);
 * prefill converts a block of weight rows to f32 once and runs a 4-token x 3-row register
 * tile over it (GEMM). Threads split
 * the N output rows, so every output is computed by one thread in a fixed order and the
 * result does not depend on the thread count. */
#include <stdlib.h>

#include "../simd.h"

/* Below this many tokens, decode takes the GEMV path, where each output is computed
 * exactly as for a single token, so results do not depend on what else is in the batch.
 * Quantized weights stream once per row, every token's dot while the row is in L1 (their
 * GEMM decodes to f32 first). Float weights go through 2-token tiles (gemv_tile_rows):
 * F16 0.6B, one thread, `lmx bench --parallel 8`, 36.1 -> 41.2 tok/s against the GEMM
 * tiles, 6 tokens 28.5 -> 33.3 (session 24; before the tiles, one token at a time, the
 * GEMM tiles had been ~35% faster at 8). */
#define GEMV_MAX_T 9
#define GEMV_MAX_T_QUANT 17
#define ROW_BLOCK 12
/* Larger batches: claims of PACK_ROWS rows packed column-major in panels of 16 rows (f32),
 * met by tiles of 6 tokens x 16 rows with broadcast activations (outer products: no
 * horizontal sums, 12 FMAs per 2 panel loads and 6 broadcasts). */
#define PACK_MIN_T 32
#define PACK_ROWS 32

/* Floats per token of int8 activations (lmx_x8_row's record). */
static int64_t x8_stride(int64_t K) {
  return lmx_x8_bytes(K) / 4;
}

static float dot_scalar(const float *x, const void *w, int32_t dt, int64_t K) {
  float s = 0;
  for (int64_t k = 0; k < K; k++) s += x[k] * lmx_elem(w, dt, k);
  return s;
}

#ifdef LMX_X86
/* Canonical GEMV order per output: four accumulators over 8-wide chunks taken round-robin,
 * summed pairwise. R weight rows against T tokens (R, T <= 2, constants after inlining),
 * each output in that order, so the same bits however rows and tokens are grouped: each
 * 8-wide chunk of a row is converted once for all T tokens (F16 and BF16 rows cost a
 * conversion per chunk and token when taken a token at a time) and each token's chunk
 * loaded once for all R rows; out[r * T + t]. GEMV_ROWS pairs rows half a claim apart, two
 * sequential weight streams in flight instead of one, which made one thread's F16 decode
 * 5-13% faster on Zen 4 (alternating builds), while pairing adjacent rows (one stream, 2
 * KiB apart) halved it. Two rows by two tokens keep 16 accumulators: only the AVX-512
 * tier's 32 registers hold them. */
static inline __attribute__((always_inline)) LMX_AVX2 void dotrt_avx2(const float *const *x, const void *const *w, const int R,
                                                                      const int T, int32_t dt, int64_t K, float *out) {
  __m256 a[2][2][4];
  for (int r = 0; r < R; r++)
    for (int t = 0; t < T; t++)
      for (int j = 0; j < 4; j++) a[r][t][j] = _mm256_setzero_ps();
  const int es = dt == LMX_F32 ? 4 : 2;
  int64_t k = 0;
  /* The distance is read in the loop on purpose: read once before it, as the quantized
   * dots do, F16 decode ran ~10% slower (alternating runs, session 7). Non-temporal, as
   * the quantized dots' (simd.h): on AVX-512 CPUs the distance is 0, a hint on the next
   * line only, and that alone made one thread's F16 decode faster than _MM_HINT_T0 in 8
   * of 11 alternations (medians +2%, +4%; Zen 4, session 20). */
  for (; k + 32 <= K; k += 32) {
    for (int r = 0; r < R; r++)
      _mm_prefetch((const char *)w[r] + (k + 32) * es + LMX_PREFETCH_FLOAT_BYTES, _MM_HINT_NTA);
    for (int j = 0; j < 4; j++) {
      __m256 wj[2];
      for (int r = 0; r < R; r++) wj[r] = lmx_load8(w[r], dt, k + 8 * j);
      for (int t = 0; t < T; t++) {
        const __m256 xt = _mm256_loadu_ps(x[t] + k + 8 * j);
        for (int r = 0; r < R; r++) a[r][t][j] = _mm256_fmadd_ps(wj[r], xt, a[r][t][j]);
      }
    }
  }
  /* Up to three 8-wide chunks left go to accumulators 0, 1, 2 in turn. */
  for (int j = 0; j < 3 && k + 8 <= K; j++, k += 8)
    for (int r = 0; r < R; r++) {
      const __m256 wj = lmx_load8(w[r], dt, k);
      for (int t = 0; t < T; t++) a[r][t][j] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(x[t] + k), a[r][t][j]);
    }
  for (int r = 0; r < R; r++)
    for (int t = 0; t < T; t++) {
      float s = lmx_hsum8(_mm256_add_ps(_mm256_add_ps(a[r][t][0], a[r][t][1]), _mm256_add_ps(a[r][t][2], a[r][t][3])));
      for (int64_t i = k; i < K; i++) s += x[t][i] * lmx_elem(w[r], dt, i);
      out[r * T + t] = s;
    }
}

static inline __attribute__((always_inline)) LMX_AVX2 float dot1_avx2(const float *x, const void *w, int32_t dt, int64_t K) {
  float s;
  dotrt_avx2(&x, &w, 1, 1, dt, K, &s);
  return s;
}

/* Rows [lo, hi) of a float-weight GEMV, one pass over them per pair of tokens (and one for
 * an odd last token). avx512 (pair): two rows at a time, half the rows apart (two weight
 * streams, as GEMV_ROWS pairs them for one token). F16 0.6B, one thread, `lmx bench
 * --parallel 4` against one token at a time: 28 -> 37-40 tok/s combined. Taking every
 * token pair while a row pair is in L1 (one pass for the batch) ran at 34, and one row
 * by 4 tokens (a quarter of the conversions, one weight stream) at 28: these tiles are
 * bound by the core's loads and conversions more than by memory. */
static inline __attribute__((always_inline)) LMX_AVX2 void gemv_tile_rows(const lmx_node *n, int64_t lo, int64_t hi,
                                                                          int pair, int32_t dt) {
  const lmx_tensor *x = n->src[0], *w = n->src[1], *dst = n->dst;
  const int64_t K = x->ne0, T = x->ne1;
  const int64_t h = pair ? (hi - lo) / 2 : 0;
  float o[4];
  for (int64_t t = 0; t < T; t += 2)
    for (int64_t r = lo; r < hi; r++) {
      const int R = r < lo + h ? 2 : 1;
      if (pair && r >= lo + h && r < lo + 2 * h) continue; /* done with its partner */
      const void *wr[2] = {w->data + r * w->nb1, w->data + (r + h) * w->nb1};
      const float *xt[2] = {(const float *)(x->data + t * x->nb1), (const float *)(x->data + (t + 1 < T ? t + 1 : t) * x->nb1)};
      if (R == 2 && t + 1 < T) dotrt_avx2(xt, wr, 2, 2, dt, K, o);
      else if (R == 2) dotrt_avx2(xt, wr, 2, 1, dt, K, o);
      else if (t + 1 < T) dotrt_avx2(xt, wr, 1, 2, dt, K, o);
      else dotrt_avx2(xt, wr, 1, 1, dt, K, o);
      for (int64_t u = t; u < t + 2 && u < T; u++) {
        float *d = (float *)(dst->data + u * dst->nb1);
        d[r] = o[u - t];
        if (R == 2) d[r + h] = o[(t + 1 < T ? 2 : 1) + u - t];
      }
    }
}

/* The weight type a constant in each loop, as GEMV_ROWS makes it. */
#define GEMV_TILE(PAIR)                                                                                \
  switch (n->src[1]->dtype) {                                                                          \
    case LMX_F16: gemv_tile_rows(n, lo, hi, PAIR, LMX_F16); break;                                     \
    case LMX_BF16: gemv_tile_rows(n, lo, hi, PAIR, LMX_BF16); break;                                   \
    default: gemv_tile_rows(n, lo, hi, PAIR, LMX_F32); break;                                          \
  }

static LMX_AVX512 void gemv_tile_avx512(const lmx_node *n, int64_t lo, int64_t hi) {
  GEMV_TILE(1)
}

static LMX_AVX2 void gemv_tile_avx2(const lmx_node *n, int64_t lo, int64_t hi) {
  GEMV_TILE(0)
}

/* Canonical GEMM order per output: one accumulator over 8-wide chunks, then the tail. */
static LMX_AVX2 float dotg_avx2(const float *x, const float *w, int64_t K) {
  __m256 a = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(w + k), _mm256_loadu_ps(x + k), a);
  float s = lmx_hsum8(a);
  for (; k < K; k++) s += x[k] * w[k];
  return s;
}

/* 4 tokens x 3 weight rows; the same per-output order as dotg_avx2. */
static LMX_AVX2 void tile43_avx2(const float *x, int64_t xs, const float *w, int64_t ws, int64_t K, float *d, int64_t ds) {
  const float *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs;
  const float *w0 = w, *w1 = w + ws, *w2 = w + 2 * ws;
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 b0 = _mm256_loadu_ps(w0 + k), b1 = _mm256_loadu_ps(w1 + k), b2 = _mm256_loadu_ps(w2 + k);
    __m256 a = _mm256_loadu_ps(x0 + k);
    c00 = _mm256_fmadd_ps(b0, a, c00); c01 = _mm256_fmadd_ps(b1, a, c01); c02 = _mm256_fmadd_ps(b2, a, c02);
    a = _mm256_loadu_ps(x1 + k);
    c10 = _mm256_fmadd_ps(b0, a, c10); c11 = _mm256_fmadd_ps(b1, a, c11); c12 = _mm256_fmadd_ps(b2, a, c12);
    a = _mm256_loadu_ps(x2 + k);
    c20 = _mm256_fmadd_ps(b0, a, c20); c21 = _mm256_fmadd_ps(b1, a, c21); c22 = _mm256_fmadd_ps(b2, a, c22);
    a = _mm256_loadu_ps(x3 + k);
    c30 = _mm256_fmadd_ps(b0, a, c30); c31 = _mm256_fmadd_ps(b1, a, c31); c32 = _mm256_fmadd_ps(b2, a, c32);
  }
  float s[4][3] = {
      {lmx_hsum8(c00), lmx_hsum8(c01), lmx_hsum8(c02)},
      {lmx_hsum8(c10), lmx_hsum8(c11), lmx_hsum8(c12)},
      {lmx_hsum8(c20), lmx_hsum8(c21), lmx_hsum8(c22)},
      {lmx_hsum8(c30), lmx_hsum8(c31), lmx_hsum8(c32)},
  };
  const float *xr[4] = {x0, x1, x2, x3}, *wr[3] = {w0, w1, w2};
  for (int t = 0; t < 4; t++)
    for (int r = 0; r < 3; r++) {
      float v = s[t][r];
      for (int64_t kk = k; kk < K; kk++) v += xr[t][kk] * wr[r][kk];
      d[t * ds + r] = v;
    }
}

static LMX_AVX2 void gemm_avx2(const lmx_node *n, int64_t lo, int64_t hi, float *buf) {
  const lmx_tensor *x = n->src[0], *w = n->src[1], *dst = n->dst;
  const int64_t K = x->ne0, T = x->ne1, xs = x->nb1 / 4, ds = dst->nb1 / 4;
  for (int64_t r0 = lo; r0 < hi; r0 += ROW_BLOCK) {
    int64_t nr = hi - r0 < ROW_BLOCK ? hi - r0 : ROW_BLOCK;
    const float *wb;
    int64_t ws;
    if (w->dtype == LMX_F32 && (w->nb1 % 4) == 0) {
      wb = (const float *)(w->data + r0 * w->nb1);
      ws = w->nb1 / 4;
    } else {
      for (int64_t r = 0; r < nr; r++) lmx_weight_row_to_f32(w, r0 + r, buf + r * K);
      wb = buf;
      ws = K;
    }
    for (int64_t t = 0; t < T; t += 4) {
      int64_t nt = T - t < 4 ? T - t : 4;
      for (int64_t r = 0; r < nr; r += 3) {
        int64_t rr = nr - r < 3 ? nr - r : 3;
        float *d = (float *)dst->data + t * ds + r0 + r;
        const float *xt = (const float *)x->data + t * xs;
        if (nt == 4 && rr == 3) {
          tile43_avx2(xt, xs, wb + r * ws, ws, K, d, ds);
        } else {
          for (int64_t i = 0; i < nt; i++)
            for (int64_t j = 0; j < rr; j++) d[i * ds + j] = dotg_avx2(xt + i * xs, wb + (r + j) * ws, K);
        }
      }
    }
  }
}

/* Rows [r0, r0 + nr) of w (nr <= 16) as f32 in column-major order: p[16 k + r], missing
 * rows zero; 8 x 8 blocks are transposed in registers. row: scratch of 8 x K floats. */
static LMX_AVX2 void pack16_avx2(const lmx_tensor *w, int64_t r0, int64_t nr, float *p, float *row) {
  const int64_t K = w->ne0;
  for (int g = 0; g < 2; g++) {
    for (int r = 0; r < 8; r++) {
      if (8 * g + r < nr) lmx_weight_row_to_f32(w, r0 + 8 * g + r, row + r * K);
      else for (int64_t k = 0; k < K; k++) row[r * K + k] = 0;
    }
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) lmx_transpose8x8(row + k, K, p + 16 * k + 8 * g, 16);
    for (; k < K; k++)
      for (int r = 0; r < 8; r++) p[16 * k + 8 * g + r] = row[r * K + k];
  }
}

/* NT tokens (<= 6) x 16 packed rows over all K: out[t * os + r] = Σk x[t][k] p[16 k + r],
 * summed in k order by one FMA per step, whatever NT is. */
static inline __attribute__((always_inline)) LMX_AVX2 void tile16_avx2(const float *p, const float *x, int64_t xs,
                                                                       int64_t K, float *out, int64_t os, const int NT) {
  __m256 c[6][2];
  for (int t = 0; t < NT; t++) c[t][0] = c[t][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    const __m256 w0 = _mm256_load_ps(p + 16 * k), w1 = _mm256_load_ps(p + 16 * k + 8);
    for (int t = 0; t < NT; t++) {
      const __m256 a = _mm256_broadcast_ss(x + t * xs + k);
      c[t][0] = _mm256_fmadd_ps(a, w0, c[t][0]);
      c[t][1] = _mm256_fmadd_ps(a, w1, c[t][1]);
    }
  }
  for (int t = 0; t < NT; t++) {
    _mm256_storeu_ps(out + t * os, c[t][0]);
    _mm256_storeu_ps(out + t * os + 8, c[t][1]);
  }
}

static LMX_AVX2 void tile16_n(const float *p, const float *x, int64_t xs, int64_t K, float *out, int64_t os, int nt) {
  switch (nt) {
    case 6: tile16_avx2(p, x, xs, K, out, os, 6); break;
    case 5: tile16_avx2(p, x, xs, K, out, os, 5); break;
    case 4: tile16_avx2(p, x, xs, K, out, os, 4); break;
    case 3: tile16_avx2(p, x, xs, K, out, os, 3); break;
    case 2: tile16_avx2(p, x, xs, K, out, os, 2); break;
    default: tile16_avx2(p, x, xs, K, out, os, 1); break;
  }
}

/* Rows [lo, hi) (at most PACK_ROWS) for every token: the claim's panels are packed once,
 * then each tile of 6 tokens runs over all of them while its activations are in cache. */
static LMX_AVX2 void gemm_packed_avx2(const lmx_node *n, int64_t lo, int64_t hi, float *buf) {
  const lmx_tensor *x = n->src[0], *w = n->src[1], *dst = n->dst;
  const int64_t K = x->ne0, T = x->ne1, xs = x->nb1 / 4, ds = dst->nb1 / 4;
  const int np = (int)((hi - lo + 15) / 16);
  float *panels = buf, *row = buf + (int64_t)(PACK_ROWS / 16) * 16 * K;
  for (int q = 0; q < np; q++) {
    const int64_t r0 = lo + 16 * q;
    pack16_avx2(w, r0, hi - r0 < 16 ? hi - r0 : 16, panels + (int64_t)q * 16 * K, row);
  }
  float tile[6 * 16];
  for (int64_t t = 0; t < T; t += 6) {
    const int nt = (int)(T - t < 6 ? T - t : 6);
    const float *xt = (const float *)x->data + t * xs;
    for (int q = 0; q < np; q++) {
      const int64_t r0 = lo + 16 * q, nr = hi - r0 < 16 ? hi - r0 : 16;
      float *d = (float *)dst->data + t * ds + r0;
      if (nr == 16) {
        tile16_n(panels + (int64_t)q * 16 * K, xt, xs, K, d, ds, nt);
      } else {
        tile16_n(panels + (int64_t)q * 16 * K, xt, xs, K, tile, 16, nt);
        for (int i = 0; i < nt; i++)
          for (int64_t r = 0; r < nr; r++) d[i * ds + r] = tile[i * 16 + r];
      }
    }
  }
}

/* One copy of the row loop per weight type, so the inner loops carry no type switch. A
 * single token takes its rows in pairs from the two halves of the claim (dotrt_avx2). */
#define GEMV_ROWS(DT)                                                                                  \
  {                                                                                                    \
    int64_t r = lo;                                                                                    \
    if (x->ne1 == 1) {                                                                                 \
      const int64_t h = (hi - lo) / 2;                                                                 \
      for (; r < lo + h; r++) {                                                                        \
        const void *pair[2] = {w->data + r * w->nb1, w->data + (r + h) * w->nb1};                      \
        float o[2];                                                                                    \
        const float *x0 = (const float *)x->data;                                                      \
        dotrt_avx2(&x0, pair, 2, 1, DT, K, o);                                                         \
        ((float *)dst->data)[r] = o[0];                                                                \
        ((float *)dst->data)[r + h] = o[1];                                                            \
      }                                                                                                \
      r = lo + 2 * h;                                                                                  \
    }                                                                                                  \
    if (x->ne1 > 1) {                                                                                  \
      if (lmx_isa() >= LMX_ISA_AVX512) gemv_tile_avx512(n, lo, hi);                                    \
      else gemv_tile_avx2(n, lo, hi);                                                                  \
    } else if (r < hi) { /* the odd row left by the pairs */                                           \
      ((float *)dst->data)[r] = dot1_avx2((const float *)x->data, w->data + r * w->nb1, DT, K);         \
    }                                                                                                  \
  }

static LMX_AVX2 void gemv_avx2(const lmx_node *n, int64_t lo, int64_t hi, float *x8) {
  const lmx_tensor *x = n->src[0], *w = n->src[1], *dst = n->dst;
  const int64_t K = x->ne0;
  switch (w->dtype) {
    case LMX_F16: GEMV_ROWS(LMX_F16) break;
    case LMX_BF16: GEMV_ROWS(LMX_BF16) break;
    case LMX_F32: GEMV_ROWS(LMX_F32) break;
    default: {
      /* Quantized weights: int8 activations, quantized once per node and thread (prepare),
       * against the fused dot of the weight type on this tier, over the claim's rows in one
       * call. */
      lmx_qdotn_for(w->dtype)((const int8_t *)x8, x8_stride(K) * 4, x->ne1, (const uint8_t *)(w->data + lo * w->nb1),
                              (int64_t)w->nb1, hi - lo, K, (float *)dst->data + lo, (int64_t)(dst->nb1 / 4));
    }
  }
}
#endif

/* Whether this matmul runs as GEMV (see GEMV_MAX_T). */
static int use_gemv(const lmx_tensor *w, int64_t T) {
  return T < (LMX_IS_QUANT(w->dtype) ? GEMV_MAX_T_QUANT : GEMV_MAX_T);
}

int lmx_matmul_is_gemv(const lmx_node *n) {
  return use_gemv(n->src[1], n->src[0]->ne1);
}

int lmx_matmul_is_q8gemm(const lmx_node *n) {
  return LMX_IS_QUANT(n->src[1]->dtype) && !lmx_matmul_is_gemv(n);
}

const float *lmx_matmul_x_row(const lmx_node *n, int64_t t, float *tmp) {
  const lmx_tensor *x = n->src[0], *up = n->src[3];
  const float *a = (const float *)(x->data + t * x->nb1);
  if (n->ip[1] == LMX_MM_NORM) {
    lmx_rms_norm_row(a, n->src[5] ? (const float *)n->src[5]->data : NULL, n->fp[2], tmp, x->ne0);
    return tmp;
  }
  if (!up) return a;
  lmx_glu_row(n->ip[0], a, (const float *)(up->data + t * up->nb1), tmp, x->ne0);
  return tmp;
}

int lmx_matmul_x_computed(const lmx_node *n) {
  return n->src[3] || n->ip[1] == LMX_MM_NORM;
}

/* This thread's scratch for a matmul node (see lmx_k_matmul). A fused gated activation
 * (src3) or RMSNorm exists only with quantized weights, whose activations are always
 * prepared here row by row; the float paths read src0 directly. */
static float *prepare(const lmx_node *n, int gemv, int int8, int simd) {
  const lmx_tensor *x = n->src[0], *w = n->src[1];
  const int64_t K = x->ne0, T = x->ne1;
  float *tmp = lmx_matmul_x_computed(n) ? lmx_scratch_row((size_t)K) : NULL;
  if (simd && int8) {
    const int64_t stride = x8_stride(K);
    float *buf = lmx_scratch((size_t)(T * stride));
    for (int64_t t = 0; t < T; t++) lmx_x8_row(lmx_matmul_x_row(n, t, tmp), K, w->dtype, (int8_t *)(buf + t * stride));
    return buf;
  }
  if (simd) return lmx_scratch((size_t)(gemv ? K : T >= PACK_MIN_T ? (PACK_ROWS + 8) * K : ROW_BLOCK * K));
  /* Scalar: a decoded weight row, then (int8 decode) x dequantized from its int8 codes. */
  float *buf = lmx_scratch((size_t)(K * (int8 ? 1 + T : 1) + x8_stride(K)));
  if (int8) {
    float *xq = buf + K;
    int8_t *q = (int8_t *)(xq + T * K);
    float *dx = (float *)(q + K);
    int32_t *s16 = (int32_t *)(dx + K / 32);
    for (int64_t t = 0; t < T; t++) {
      lmx_quantize_x8(lmx_matmul_x_row(n, t, tmp), K, lmx_x8_super(w->dtype), q, dx, s16);
      for (int64_t i = 0; i < K; i++) xq[t * K + i] = dx[i / 32] * q[i];
    }
  }
  return buf;
}

/* Rows handed out per claim: GEMM row blocks; for GEMV, about eight claims per thread, so
 * a thread slowed by another process on its core is made up for by the others while
 * each claim still reads one long sequential stream of weights (quantized GEMV: an
 * upper bound on the smallest of its guided claims, guided_min). */
static int64_t claim_rows(int gemv, int quant, int64_t N, int64_t T, int nth) {
  if (!gemv) return quant ? lmx_gemm_q8_rows() : T >= PACK_MIN_T ? PACK_ROWS : ROW_BLOCK;
  int64_t c = (N + 8 * nth - 1) / (8 * nth);
  c = (c + 15) / 16 * 16;
  return c < 16 ? 16 : c;
}

/* The smallest guided claim: rows of about 32 KiB of weights (row_bytes per row, over
 * every matrix a claim reads), a multiple of 16, at most chunk. The last claims are what
 * one thread may still be reading when the other has finished: with an eighth of a
 * thread's share they had made the other wait ~17 us per FFN projection on two threads
 * (waits of 4-64 us after the GLU and down nodes, summed per node); Q4_K_M decode on two
 * threads, alternating runs, medians of 10: 68.3 -> 69.3 tok/s (15 of 22 pairs ahead). */
static int64_t guided_min(int64_t row_bytes, int64_t chunk) {
  int64_t r = ((32 << 10) / row_bytes + 15) / 16 * 16;
  if (r < 16) r = 16;
  return r < chunk ? r : chunk;
}

/* The next claim of node n's N rows into [*lo, *hi); 0 when none is left. Quantized GEMV
 * claims are guided: each takes 1/nth of what is left (a multiple of 16 rows, at least
 * chunk), so one thread reads a whole matrix in one claim and two threads start with
 * halves, the smaller claims coming last, where they balance the threads' ends. Each
 * claim costs its two weight streams a start (the hardware prefetcher's ramp and the
 * first 2 KiB the software prefetch has not reached), which claims of 1/8 per thread
 * (a few tens of KiB for the 0.6B's matrices) paid often: alternating runs of Q4_K_M
 * decode, medians of 8, 54.9 -> 56.3 tok/s on one thread and 71.2 -> 75.1 on two; Q8_0
 * and NVFP4 won 14 of 16 pairs. F16's claims (2 KiB rows, no software prefetch on
 * AVX-512 CPUs) stay fixed: guided claims lost 7 of 8 pairs there. */
typedef struct {
  int guided;
  int64_t chunk; /* rows per claim, or the smallest guided claim */
} claims;

/* How matmul node n hands out its rows (row_bytes: weight bytes per row over every
 * matrix a claim reads). */
static claims claims_for(const lmx_node *n, int gemv, int64_t row_bytes, int nth) {
  const int quant = LMX_IS_QUANT(n->src[1]->dtype);
  claims c = {gemv && quant, claim_rows(gemv, quant, n->src[1]->ne1, n->src[0]->ne1, nth)};
  if (c.guided) c.chunk = guided_min(row_bytes, c.chunk);
  return c;
}

static int claim_next(const lmx_node *n, const claims *cl, int64_t N, int nth, int64_t *lo, int64_t *hi) {
  const int64_t chunk = cl->chunk;
  if (!cl->guided) {
    *lo = lmx_claim(n, chunk);
    *hi = *lo + chunk < N ? *lo + chunk : N;
    return *lo < N;
  }
  int64_t cur = atomic_load_explicit(n->work, memory_order_relaxed);
  for (;;) {
    if (cur >= N) return 0;
    int64_t c = ((N - cur) / nth + 15) / 16 * 16;
    if (c < chunk) c = chunk;
    const int64_t end = cur + c < N ? cur + c : N;
    if (atomic_compare_exchange_weak_explicit(n->work, &cur, end, memory_order_relaxed, memory_order_relaxed)) {
      *lo = cur;
      *hi = end;
      return 1;
    }
  }
}

/* What every claim of a matmul node on this thread shares: the kernel shape and the
 * scratch its claims use (see matmul_setup). */
typedef struct {
  int gemv, int8, q8gemm, simd;
  float *buf;
  const uint8_t *act;
} mm_run;

/* Per-thread scratch: for the int8 GEMM, the work area for the claims' panels, taken
 * before any claim because every thread takes part in preparing the shared activations
 * (gemm_q8.c); otherwise prepared on the first claim: int8 activations (SIMD decode), a
 * weight row block (float GEMM), or for the scalar decode a decoded row plus x as the
 * SIMD path sees it. */
static mm_run matmul_setup(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *x = n->src[0], *w = n->src[1];
  mm_run m = {0};
  m.gemv = use_gemv(w, x->ne1);
  m.int8 = m.gemv && LMX_IS_QUANT(w->dtype);
  m.q8gemm = lmx_matmul_is_q8gemm(n);
#ifdef LMX_X86
  m.simd = lmx_use_avx2();
#endif
  if (m.q8gemm) {
    m.buf = lmx_scratch((size_t)lmx_gemm_q8_scratch(n));
    m.act = lmx_gemm_q8_activations(n, ith, nth, m.buf);
  }
  return m;
}

/* dst rows [lo, hi) of node n for every token, with its scale, bias and residual. */
static void matmul_rows(const lmx_node *n, int64_t lo, int64_t hi, mm_run *m) {
  const lmx_tensor *x = n->src[0], *w = n->src[1], *bias = n->src[2], *dst = n->dst;
  const int64_t K = x->ne0, T = x->ne1;
  if (!m->buf) m->buf = prepare(n, m->gemv, m->int8, m->simd);
  float *buf = m->buf;
  if (m->q8gemm) {
    lmx_gemm_q8(n, lo, hi, m->act, buf, lmx_isa());
  }
#ifdef LMX_X86
  else if (m->simd) {
    if (m->gemv) gemv_avx2(n, lo, hi, buf);
    else if (T >= PACK_MIN_T) gemm_packed_avx2(n, lo, hi, buf);
    else gemm_avx2(n, lo, hi, buf);
  }
#endif
  else {
    float *row = buf, *xq = buf + K;
    for (int64_t r = lo; r < hi; r++) {
      const void *wr = w->data + r * w->nb1;
      const int q = LMX_IS_QUANT(w->dtype);
      if (q) lmx_weight_row_to_f32(w, r, row);
      for (int64_t t = 0; t < T; t++) {
        const float *xt = m->int8 ? xq + t * K : (const float *)(x->data + t * x->nb1);
        ((float *)(dst->data + t * dst->nb1))[r] = dot_scalar(xt, q ? row : wr, q ? LMX_F32 : w->dtype, K);
      }
    }
  }
  const float scale = n->fp[0];
  if (scale != 0 && scale != 1 && !m->q8gemm) { /* the int8 GEMM applies it in its panels */
    for (int64_t t = 0; t < T; t++) {
      float *d = (float *)(dst->data + t * dst->nb1);
      for (int64_t r = lo; r < hi; r++) d[r] *= scale;
    }
  }
  if (bias) {
    const float *b = (const float *)bias->data;
    for (int64_t t = 0; t < T; t++) {
      float *d = (float *)(dst->data + t * dst->nb1);
      for (int64_t r = lo; r < hi; r++) d[r] += b[r];
    }
  }
  /* The residual stream (plan.ts fuseResidual): rows just written, still in cache. */
  const lmx_tensor *res = n->op == OP_MATMUL ? n->src[4] : NULL;
  if (res) {
    for (int64_t t = 0; t < T; t++) {
      float *d = (float *)(dst->data + t * dst->nb1);
      const float *a = (const float *)(res->data + t * res->nb1);
      for (int64_t r = lo; r < hi; r++) d[r] += a[r];
    }
  }
}

/* Row ranges are claimed from the node's counter, so work follows whichever thread is
 * free; every output row is still computed by one thread, in a fixed order, so results
 * do not depend on the thread count or on who claimed what. */
void lmx_k_matmul(const lmx_node *n, int ith, int nth) {
  const int64_t N = n->src[1]->ne1;
  mm_run m = matmul_setup(n, ith, nth);
  const claims cl = claims_for(n, m.gemv, (int64_t)n->src[1]->nb1, nth);
  int64_t lo, hi;
  while (claim_next(n, &cl, N, nth, &lo, &hi)) matmul_rows(n, lo, hi, &m);
}

/* The gate and up projections of an FFN and their gated activation: each claim computes
 * its gate rows into dst, the same rows of up (src4, scale fp[1]) into this thread's
 * scratch as a matmul of those rows alone, then the GLU in place. Claims start at
 * multiples of 8, so every value takes the same SIMD or scalar path as in the GLU op of
 * the unfused pair, and both projections read the same prepared activations. */
void lmx_k_matmul_glu(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *x = n->src[0], *wu = n->src[4], *dst = n->dst;
  const int64_t N = n->src[1]->ne1, T = x->ne1;
  mm_run m = matmul_setup(n, ith, nth);
  claims cl = claims_for(n, m.gemv, (int64_t)(n->src[1]->nb1 + wu->nb1), nth);
  cl.chunk = (cl.chunk + 7) / 8 * 8;
  lmx_tensor w = *wu, d = *dst;
  lmx_node up = *n;
  up.src[1] = &w;
  up.dst = &d;
  up.fp = n->fp + 1;
  int64_t lo, hi;
  while (claim_next(n, &cl, N, nth, &lo, &hi)) {
    const int64_t nr = hi - lo;
    matmul_rows(n, lo, hi, &m);
    float *tile = lmx_scratch_out((size_t)(T * nr));
    w.data = wu->data + lo * wu->nb1;
    w.ne1 = nr;
    d.data = (char *)tile;
    d.ne0 = nr;
    d.nb1 = (size_t)nr * sizeof(float);
    matmul_rows(&up, 0, nr, &m);
    for (int64_t t = 0; t < T; t++) {
      float *g = (float *)(dst->data + t * dst->nb1) + lo;
      lmx_glu_row(n->ip[0], g, tile + t * nr, g, nr);
    }
  }
}
