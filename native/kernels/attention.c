/* Causal grouped-query attention over the paged KV cache. K/V live in pools of token
 * slots, f16 or Q8_0 (a q8_0 cache needs heads of whole blocks: the graph checks); a sequence's
 * block table maps position p to slot lmx_kv_slot(table, p, bs).
 * Decode steps (one row per sequence, or a few consecutive rows of one: a decode row and
 * the drafts verified with it) are split over the keys instead (attention_split.c);
 * here a work item is a block of up to QB rows with one KV head: keys are taken in tiles of KT,
 * converted to f32 once (K transposed) and shared by every query head of the group in
 * every row of the block; scores and outputs are small GEMMs on register tiles, with an
 * online softmax between them, so memory stays bounded for any length. Threads claim items
 * one at a time, which balances the causal triangle; results do not depend on the thread
 * count (blocks are fixed by row index, not by thread). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../simd.h"

/* Keys per tile of the online softmax. */
#define KT 64
/* Up to this many query rows (the heads of one KV head in a short prompt chunk, or in a
 * decode batch the split kernel does not take) skip the tile conversion: scores and
 * outputs are computed from the f16 rows directly. */
#define DIRECT_ROWS 8

void lmx_k_kv_store(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *k = n->src[0], *v = n->src[1], *vpool = n->src[2], *pos = n->src[3], *rowSeq = n->src[4],
                   *tables = n->src[5], *kpool = n->dst;
  const int bs = n->ip[0];
  int64_t lo, hi;
  lmx_split(k->ne1, 1, ith, nth, &lo, &hi);
  for (int64_t t = lo; t < hi; t++) {
    int32_t seq = ((const int32_t *)rowSeq->data)[t];
    const int32_t *table = (const int32_t *)(tables->data + seq * tables->nb1);
    int64_t s = lmx_kv_slot(table, ((const int32_t *)pos->data)[t], bs);
    const float *pk = (const float *)(k->data + t * k->nb1), *pv = (const float *)(v->data + t * v->nb1);
    char *dk = kpool->data + s * kpool->nb1, *dv = vpool->data + s * vpool->nb1;
    if (kpool->dtype == LMX_Q8_0) lmx_row_to_q8_0(pk, (uint8_t *)dk, k->ne0);
    else lmx_row_to_f16(pk, (uint16_t *)dk, k->ne0);
    if (vpool->dtype == LMX_Q8_0) lmx_row_to_q8_0(pv, (uint8_t *)dv, v->ne0);
    else lmx_row_to_f16(pv, (uint16_t *)dv, v->ne0);
  }
}

/* ---- micro-kernels: S = Q . K^T and O += P . V on f32 tiles ----
 * Q is [rows x hd] (pre-scaled), Kt the key tile transposed [hd x KT] (zero-padded to a
 * multiple of 16 keys), S [rows x KT]; P is S after the softmax, V the value tile [KT x hd],
 * O [rows x hd]. Each is an outer-product loop, so no horizontal sums: the SIMD and scalar
 * versions add the same products in the same order per output. Row x needs keys [0,
 * lim[x]); the SIMD tiles run to the most any of their rows needs (scores in steps of 16
 * keys, read from Kt's zero padding at the tile's end), adding products of weight exactly
 * 0 past a row's own limit, which leave O as it was; scores past a row's limit are masked
 * before they are read. */

static void scores_scalar(const float *Q, const float *Kt, float *S, int rows, int hd, const int *lim) {
  for (int x = 0; x < rows; x++)
    for (int j = 0; j < lim[x]; j++) {
      float v = 0;
      for (int d = 0; d < hd; d++) v += Q[x * hd + d] * Kt[d * KT + j];
      S[x * KT + j] = v;
    }
}

static void pv_scalar(const float *P, const float *V, float *O, int rows, int hd, const int *lim) {
  for (int x = 0; x < rows; x++)
    for (int d = 0; d < hd; d++) {
      float v = O[x * hd + d];
      for (int j = 0; j < lim[x]; j++) v += P[x * KT + j] * V[j * hd + d];
      O[x * hd + d] = v;
    }
}

/* t[c x KT] = a[r x c]^T */
static void transpose_scalar(const float *a, float *t, int r, int c) {
  for (int j = 0; j < r; j++)
    for (int i = 0; i < c; i++) t[i * KT + j] = a[j * c + i];
}

static float max_scalar(const float *v, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
  return m;
}

/* s[i] = exp(s[i] - m); returns the sum. */
static float exp_sum(float *s, int64_t n, float m) {
  float sum = 0;
  for (int64_t i = 0; i < n; i++) sum += (s[i] = expf(s[i] - m));
  return sum;
}

#ifdef LMX_X86
/* t[c x KT] = a[r x c]^T by 8x8 blocks in registers (r, c multiples of 8). */
static LMX_AVX2 void transpose_avx2(const float *a, float *t, int r, int c) {
  for (int j = 0; j < r; j += 8)
    for (int i = 0; i < c; i += 8) lmx_transpose8x8(a + j * c + i, c, t + i * KT + j, KT);
}

/* R query rows x 16 keys: 2R accumulators. R = 6 keeps 12 FMA chains in flight (two
 * pipes of latency 4-5 need 8-10); 4 and 1 take the leftover rows. */
static inline __attribute__((always_inline)) LMX_AVX2 void scores_tile(const float *Q, const float *Kt, float *S, int hd,
                                                                        int R, int j) {
  __m256 c0[6], c1[6];
  for (int r = 0; r < R; r++) c0[r] = c1[r] = _mm256_setzero_ps();
  for (int d = 0; d < hd; d++) {
    const __m256 k0 = _mm256_loadu_ps(Kt + d * KT + j), k1 = _mm256_loadu_ps(Kt + d * KT + j + 8);
    for (int r = 0; r < R; r++) {
      const __m256 a = _mm256_broadcast_ss(Q + r * hd + d);
      c0[r] = _mm256_fmadd_ps(a, k0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, k1, c1[r]);
    }
  }
  for (int r = 0; r < R; r++) {
    _mm256_storeu_ps(S + r * KT + j, c0[r]);
    _mm256_storeu_ps(S + r * KT + j + 8, c1[r]);
  }
}

/* The most keys any of rows [x, x + R) sees, rounded up to a step of `step` keys. */
static inline int lim_of(const int *lim, int x, int R, int step) {
  int n = 0;
  for (int r = x; r < x + R; r++) n = lim[r] > n ? lim[r] : n;
  return (n + step - 1) / step * step;
}

static LMX_AVX2 void scores_avx2(const float *Q, const float *Kt, float *S, int rows, int hd, const int *lim) {
  int x = 0;
  for (; x + 6 <= rows; x += 6)
    for (int j = 0; j < lim_of(lim, x, 6, 16); j += 16) scores_tile(Q + x * hd, Kt, S + x * KT, hd, 6, j);
  for (; x + 4 <= rows; x += 4)
    for (int j = 0; j < lim_of(lim, x, 4, 16); j += 16) scores_tile(Q + x * hd, Kt, S + x * KT, hd, 4, j);
  for (; x < rows; x++)
    for (int j = 0; j < lim[x]; j += 16) scores_tile(Q + x * hd, Kt, S + x * KT, hd, 1, j);
}

/* O[R rows][d .. d + 8W) += P V over nk keys: R x W accumulators (6 x 2 as above). */
static inline __attribute__((always_inline)) LMX_AVX2 void pv_tile(const float *P, const float *V, float *O, int hd,
                                                                    int R, int W, int d, int nk) {
  __m256 c[6][2];
  for (int r = 0; r < R; r++)
    for (int w = 0; w < W; w++) c[r][w] = _mm256_loadu_ps(O + r * hd + d + 8 * w);
  for (int j = 0; j < nk; j++) {
    __m256 v[2];
    for (int w = 0; w < W; w++) v[w] = _mm256_loadu_ps(V + j * hd + d + 8 * w);
    for (int r = 0; r < R; r++) {
      const __m256 a = _mm256_broadcast_ss(P + r * KT + j);
      for (int w = 0; w < W; w++) c[r][w] = _mm256_fmadd_ps(a, v[w], c[r][w]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int w = 0; w < W; w++) _mm256_storeu_ps(O + r * hd + d + 8 * w, c[r][w]);
}

/* hd % 8 == 0 (see the caller). */
static LMX_AVX2 void pv_avx2(const float *P, const float *V, float *O, int rows, int hd, const int *lim) {
  int x = 0;
  for (; x + 6 <= rows; x += 6) {
    const int n = lim_of(lim, x, 6, 1);
    int d = 0;
    for (; d + 16 <= hd; d += 16) pv_tile(P + x * KT, V, O + x * hd, hd, 6, 2, d, n);
    for (; d < hd; d += 8) pv_tile(P + x * KT, V, O + x * hd, hd, 6, 1, d, n);
  }
  for (; x + 4 <= rows; x += 4) {
    const int n = lim_of(lim, x, 4, 1);
    int d = 0;
    for (; d + 16 <= hd; d += 16) pv_tile(P + x * KT, V, O + x * hd, hd, 4, 2, d, n);
    for (; d < hd; d += 8) pv_tile(P + x * KT, V, O + x * hd, hd, 4, 1, d, n);
  }
  for (; x < rows; x++)
    for (int d = 0; d < hd; d += 8) pv_tile(P + x * KT, V, O + x * hd, hd, 1, 1, d, lim[x]);
}

/* exp(x) for x <= 0 (scores minus their max); exactly 0 below -87 (masked keys are -inf
 * and must weigh nothing). */
static inline LMX_AVX2 __m256 exp8_scores(__m256 x) {
  return _mm256_and_ps(lmx_exp8(x), _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ));
}

static LMX_AVX2 float max_avx2(const float *v, int64_t n) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(v + i));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  float r = _mm_cvtss_f32(h);
  for (; i < n; i++) r = v[i] > r ? v[i] : r;
  return r;
}

static LMX_AVX2 float exp_sum_avx2(float *s, int64_t n, float m) {
  __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp8_scores(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
    _mm256_storeu_ps(s + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = lmx_hsum8(acc);
  for (; i < n; i++) sum += (s[i] = expf(s[i] - m));
  return sum;
}

/* Few query rows (decode): scores straight from the f16 key rows, S[x][j] = Q[x] . K[j], each
 * key row converted once in registers and met by every row (rows <= DIRECT_ROWS). Older
 * cache rows have usually left the caches (decode streams all the weights between two
 * visits), so the key rows ahead and the value rows pv_rows_avx2 will read are prefetched. */
static LMX_AVX2 void scores_rows_avx2(const float *Q, const uint16_t *const *K, const uint16_t *const *V, float *S, int rows,
                                      int hd, int nk) {
  for (int j = 0; j < nk; j++) {
    for (int o = 0; o < hd * 2; o += 64) {
      if (j + 4 < nk) _mm_prefetch((const char *)K[j + 4] + o, _MM_HINT_T0);
      _mm_prefetch((const char *)V[j] + o, _MM_HINT_T0);
    }
    __m256 acc[DIRECT_ROWS];
    for (int x = 0; x < rows; x++) acc[x] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d += 8) {
      const __m256 k8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(K[j] + d)));
      for (int x = 0; x < rows; x++) acc[x] = _mm256_fmadd_ps(_mm256_loadu_ps(Q + x * hd + d), k8, acc[x]);
    }
    for (int x = 0; x < rows; x++) S[x * KT + j] = lmx_hsum8(acc[x]);
  }
}

/* O[x] += Σj P[x][j] V[j] from the f16 value rows, 8 dimensions at a time. */
static LMX_AVX2 void pv_rows_avx2(const float *P, const uint16_t *const *V, float *O, int rows, int hd, int nk) {
  for (int d = 0; d < hd; d += 8) {
    __m256 acc[DIRECT_ROWS];
    for (int x = 0; x < rows; x++) acc[x] = _mm256_loadu_ps(O + x * hd + d);
    for (int j = 0; j < nk; j++) {
      const __m256 v8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(V[j] + d)));
      for (int x = 0; x < rows; x++) acc[x] = _mm256_fmadd_ps(_mm256_broadcast_ss(P + x * KT + j), v8, acc[x]);
    }
    for (int x = 0; x < rows; x++) _mm256_storeu_ps(O + x * hd + d, acc[x]);
  }
}
#endif

/* Query rows per work item: every K/V tile is converted once for all of them and every
 * query head of their group, so about QROWS query heads share each tile (between 16 and
 * QB_MAX rows): long prompts stream the cache once per QROWS heads, not once per row.
 * 256 rather than 128 once the tiles' arithmetic had got faster (6x16 register tiles) and
 * the conversions weighed more: one 512-row attention over 4096 + 512 positions, min of 6,
 * f16 169-238 -> 144-151 ms, q8_0 177-207 -> 149-156 ms. */
#define QROWS 256
#define QB_MAX 256

void lmx_k_attention(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *q = n->src[0], *kpool = n->src[1], *vpool = n->src[2], *pos = n->src[3], *rowSeq = n->src[4],
                   *tables = n->src[5], *d = n->dst;
  const int nHead = n->ip[0], nKv = n->ip[1], hd = n->ip[2], bs = n->ip[3], window = n->ip[4];
  const float scale = n->fp[0];
  const int G = nHead / nKv;
#ifdef LMX_X86
  const int simd = lmx_use_avx2() && hd % 8 == 0;
#define SCORES(Q, K, S, r, h, l) (simd ? scores_avx2(Q, K, S, r, h, l) : scores_scalar(Q, K, S, r, h, l))
#define PV(P, V, O, r, h, l) (simd ? pv_avx2(P, V, O, r, h, l) : pv_scalar(P, V, O, r, h, l))
#define EXPSUM(s, k, m) (simd ? exp_sum_avx2(s, k, m) : exp_sum(s, k, m))
#define TRANSPOSE(a, t, r, c) (simd ? transpose_avx2(a, t, r, c) : transpose_scalar(a, t, r, c))
#define MAXOF(v, k) (simd ? max_avx2(v, k) : max_scalar(v, k))
#else
#define MAXOF(v, k) max_scalar(v, k)
#define TRANSPOSE(a, t, r, c) transpose_scalar(a, t, r, c)
#define SCORES(Q, K, S, r, h, l) scores_scalar(Q, K, S, r, h, l)
#define PV(P, V, O, r, h, l) pv_scalar(P, V, O, r, h, l)
#define EXPSUM(s, k, m) exp_sum(s, k, m)
#endif
  if (lmx_attention_split(n, ith, nth)) return;
  const int32_t *rpos = (const int32_t *)pos->data, *rseq = (const int32_t *)rowSeq->data;
  const int QB = QROWS / G < 16 ? 16 : QROWS / G > QB_MAX ? QB_MAX : QROWS / G;
  const int64_t T = q->ne1, nBlocks = (T + QB - 1) / QB, items = nBlocks * nKv;
  const int64_t maxRows = (int64_t)QB * G;
  /* Per thread: Q [rows x hd], S [rows x KT], Kt [hd x KT], Kr and V [KT x hd], O [rows x hd], m, l, and
   * the rows' key limits lim (ints). */
  float *buf = lmx_scratch((size_t)(maxRows * hd * 2 + maxRows * KT + 3 * (int64_t)hd * KT + 3 * maxRows + 16));
  float *Q = buf, *S = Q + maxRows * hd, *Kt = S + maxRows * KT, *Kr = Kt + (int64_t)hd * KT, *V = Kr + (int64_t)hd * KT,
        *O = V + (int64_t)KT * hd, *m = O + maxRows * hd, *l = m + maxRows;
  int *lim = (int *)(l + maxRows);
  (void)ith;
  (void)nth;
  for (int64_t it; (it = lmx_claim(n, 1)) < items;) {
    /* The last blocks (the most keys) first: with the lightest left for the end, threads
     * finish together. */
    const int64_t t0 = (nBlocks - 1 - it / nKv) * QB, tEnd = t0 + QB < T ? t0 + QB : T;
    const int kvh = (int)(it % nKv);
    /* Bytes before head kvh in a pool slot (whole Q8_0 blocks: hd % 32 == 0). */
    const int64_t koff = lmx_row_bytes(kpool->dtype, (int64_t)kvh * hd), voff = lmx_row_bytes(vpool->dtype, (int64_t)kvh * hd);
    /* Rows of one block that share a sequence are served together; a block mixing
     * sequences is split at each change of sequence. */
    for (int64_t a = t0; a < tEnd;) {
      int64_t b = a + 1;
      while (b < tEnd && rseq[b] == rseq[a]) b++;
      const int nq = (int)(b - a);
      const int32_t *table = (const int32_t *)(tables->data + rseq[a] * tables->nb1);
      int64_t lo = INT64_MAX, hi = -1, first[QB_MAX], last[QB_MAX];
      for (int r = 0; r < nq; r++) {
        last[r] = rpos[a + r];
        first[r] = window > 0 && last[r] - window + 1 > 0 ? last[r] - window + 1 : 0;
        if (first[r] < lo) lo = first[r];
        if (last[r] > hi) hi = last[r];
      }
      const int rows = nq * G;
#ifdef LMX_X86
      const int direct = simd && rows <= DIRECT_ROWS && kpool->dtype == LMX_F16 && vpool->dtype == LMX_F16;
#else
      const int direct = 0;
#endif
      for (int r = 0; r < nq; r++) {
        const float *qr = (const float *)(q->data + (a + r) * q->nb1) + (int64_t)kvh * G * hd;
        for (int i = 0; i < G * hd; i++) Q[r * G * hd + i] = qr[i] * scale;
      }
      for (int x = 0; x < rows; x++) {
        m[x] = -INFINITY;
        l[x] = 0;
      }
      for (int64_t i = 0; i < (int64_t)rows * hd; i++) O[i] = 0;
      /* Online softmax over key tiles: per query head a running max m, sum l and
       * unnormalized output O, rescaled whenever a tile raises the max. */
      for (int64_t j0 = lo; j0 <= hi; j0 += KT) {
        const int nk = (int)(hi - j0 + 1 < KT ? hi - j0 + 1 : KT), nk16 = (nk + 15) & ~15;
        /* Only the rows that see a key of this tile: rows come in order of position, so
         * those whose last key is before it lead and those whose window starts after it
         * trail. A block's last tiles are the causal triangle's diagonal, where most rows
         * see nothing (a 128-row block of a 512-token prompt spent 20% of its products
         * on masked keys); rows skipped keep m, l and O as the masked tile would. */
        int r0 = 0, r1 = nq;
        while (r0 < nq && last[r0] < j0) r0++;
        while (r1 > r0 && first[r1 - 1] > j0 + nk - 1) r1--;
        if (r0 == r1) continue;
        const int x0 = r0 * G, xr = (r1 - r0) * G;
        /* Keys each row sees in this tile (up to its position; masking does the rest):
         * scores and products stop there, for each register tile of rows at the most any
         * of its rows sees (scores in steps of 16), instead of the whole tile on the
         * causal diagonal (keys past that weigh exactly 0 in the products). */
        for (int x = x0; x < x0 + xr; x++) {
          const int64_t e = last[x / G] - j0 + 1;
          lim[x] = e < 0 ? 0 : e < nk ? (int)e : nk;
        }
        const uint16_t *krow[KT], *vrow[KT];
        for (int j = 0; j < nk; j++) {
          const int64_t slot = lmx_kv_slot(table, j0 + j, bs);
          krow[j] = (const uint16_t *)(kpool->data + slot * kpool->nb1 + koff);
          vrow[j] = (const uint16_t *)(vpool->data + slot * vpool->nb1 + voff);
        }
        if (direct) {
#ifdef LMX_X86
          scores_rows_avx2(Q + x0 * hd, krow, vrow, S + x0 * KT, xr, hd, nk);
#endif
        } else {
          /* K rows go to O's spare twin (Kr) first, then are transposed into Kt. */
          for (int j = 0; j < nk16; j++) {
            if (j < nk) {
              lmx_row_to_f32(krow[j], kpool->dtype, Kr + (int64_t)j * hd, hd);
              lmx_row_to_f32(vrow[j], vpool->dtype, V + (int64_t)j * hd, hd);
            } else {
              for (int i = 0; i < hd; i++) Kr[(int64_t)j * hd + i] = 0;
            }
          }
          TRANSPOSE(Kr, Kt, nk16, hd);
          SCORES(Q + x0 * hd, Kt, S + x0 * KT, xr, hd, lim + x0);
        }
        for (int x = x0; x < x0 + xr; x++) {
          const int r = x / G;
          float *sx = S + x * KT;
          /* Keys outside [first, last] of this query weigh nothing. */
          const int64_t jlo = first[r] - j0 > 0 ? first[r] - j0 : 0, jhi = last[r] - j0 + 1 < nk ? last[r] - j0 + 1 : nk;
          for (int64_t j = 0; j < nk; j++)
            if (j < jlo || j >= jhi) sx[j] = -INFINITY;
            else j = jhi - 1;
          const float mt = jlo < jhi ? fmaxf(m[x], MAXOF(sx + jlo, jhi - jlo)) : m[x];
          if (mt == -INFINITY) {
            for (int j = 0; j < nk; j++) sx[j] = 0;
            continue;
          }
          const float rescale = expf(m[x] - mt);
          if (rescale != 1.0f)
            for (int i = 0; i < hd; i++) O[x * hd + i] *= rescale;
          l[x] = l[x] * rescale + EXPSUM(sx, nk, mt);
          m[x] = mt;
        }
        if (direct) {
#ifdef LMX_X86
          pv_rows_avx2(S + x0 * KT, vrow, O + x0 * hd, xr, hd, nk);
#endif
        } else {
          PV(S + x0 * KT, V, O + x0 * hd, xr, hd, lim + x0);
        }
      }
      for (int r = 0; r < nq; r++)
        for (int g = 0; g < G; g++) {
          float *out = (float *)(d->data + (a + r) * d->nb1) + (int64_t)(kvh * G + g) * hd;
          const float inv = 1.0f / l[r * G + g];
          for (int i = 0; i < hd; i++) out[i] = O[(r * G + g) * hd + i] * inv;
        }
      a = b;
    }
  }
}
