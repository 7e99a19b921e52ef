/* Decode attention split over the keys. With one query row per sequence (or a few: see
 * lmx_attention_split), the blocked kernel (attention.c) has only nKv work items per row,
 * and each walks one head's 256 bytes out of every pool row: a strided read that memory
 * serves at a fraction of its streaming rate, and the long-context decode of an agent
 * spends most of its time there. Here a work item is one query row and a chunk of KC
 * consecutive positions, with every head: it reads the chunk's pool rows whole and in
 * order, and leaves its partial softmax (per query head: the max, the sum and the
 * unnormalized output) in the plan's partials buffer. The thread that finishes the node's
 * last item merges each row's chunks in chunk order. Chunks are fixed by position, so
 * results do not depend on the thread count. A row with fewer than MIN_CHUNKS x KC
 * positions takes shorter chunks, so that a decode step early in a conversation still gives
 * every thread work: with one chunk below KC positions, one thread had run the whole
 * attention while the others waited. (Splitting the heads of a chunk between items instead
 * was slower past one chunk: two threads reading halves of the same pool rows pulled each
 * other's lines in with their streams.) */
#include <math.h>
#include <stdint.h>

#include "../simd.h"

/* Positions per work item: 2 x 128 pool rows of 2 KiB for an 8 x 128 cache, enough to
 * stream, and enough items (4 at 512 positions, 32 at 4096) to balance threads (256 was
 * no faster at 4096 positions, and at ~600 made 3 items for 2 threads). */
#define KC 128
/* Chunks a row below MIN_CHUNKS x KC positions is cut into (shorter ones, of at least
 * MIN_KC positions and whole multiples of 16). */
#define MIN_CHUNKS 4
#define MIN_KC 32
/* Keys per tile: scores of a tile are computed before its values are read, so the tile's
 * value rows (prefetched while scoring) are still in L2 when they are. */
#define KT 64
/* Larger batches carry prompt chunks: the blocked kernel shares each tile among rows. */
#define SPLIT_MAX_ROWS 16
/* So does it for more than this many rows of one sequence: at 2048 positions on one Zen 4
 * thread, 2 and 4 rows ran 1.4-1.5x faster here, 8 as fast, 12 ~15% slower. */
#define SPLIT_GROUP_ROWS 8

/* Chunks a row can have: one per KC positions of the cache, or MIN_CHUNKS + 1 short ones
 * (a sliding window's first position is not aligned to them). */
static int64_t max_chunks(const lmx_node *n) {
  const int64_t full = (n->src[5]->ne0 * n->ip[3] + KC - 1) / KC;
  return full > MIN_CHUNKS + 1 ? full : MIN_CHUNKS + 1;
}

size_t lmx_attention_partials_bytes(const lmx_node *n) {
  const lmx_tensor *q = n->src[0], *tables = n->src[5];
  if (!q || !tables || q->ne1 > SPLIT_MAX_ROWS) return 0;
  const int nHead = n->ip[0], hd = n->ip[2];
  return (size_t)q->ne1 * (size_t)max_chunks(n) * (size_t)nHead * (size_t)(hd + 2) * sizeof(float);
}

/* Query heads padded to whole vectors: the softmax runs 8 heads at a time. */
static inline int padded_heads(int nHead) {
  return (nHead + 7) & ~7;
}

/* ---- one tile: scores S[j][h] (key-major), softmax update, O[h] += P V ---- */

static void scores_scalar(const float *Q, const uint8_t *const *K, int32_t kt, float *Kf, float *S, int nHead, int G,
                          int hd, int nKv, int nk) {
  const int NHP = padded_heads(nHead);
  for (int j = 0; j < nk; j++) {
    lmx_row_to_f32(K[j], kt, Kf, (int64_t)nKv * hd);
    for (int h = 0; h < NHP; h++) {
      float v = 0;
      if (h < nHead)
        for (int d = 0; d < hd; d++) v += Q[h * hd + d] * Kf[(h / G) * hd + d];
      S[j * NHP + h] = v;
    }
  }
}

/* Running max m, sum l per head; S becomes P = exp(S - m); sc is each head's rescale. */
static void softmax_scalar(float *S, float *m, float *l, float *sc, int NHP, int nk) {
  for (int h = 0; h < NHP; h++) {
    float mt = m[h];
    for (int j = 0; j < nk; j++) mt = S[j * NHP + h] > mt ? S[j * NHP + h] : mt;
    sc[h] = expf(m[h] - mt);
    float sum = 0;
    for (int j = 0; j < nk; j++) sum += (S[j * NHP + h] = expf(S[j * NHP + h] - mt));
    l[h] = l[h] * sc[h] + sum;
    m[h] = mt;
  }
}

static void pv_scalar(const float *P, const uint8_t *const *V, int32_t vt, float *Vf, float *O, int nHead, int G, int hd,
                      int nKv, int nk) {
  const int NHP = padded_heads(nHead);
  for (int j = 0; j < nk; j++) {
    lmx_row_to_f32(V[j], vt, Vf, (int64_t)nKv * hd);
    for (int h = 0; h < nHead; h++) {
      const float p = P[j * NHP + h];
      for (int d = 0; d < hd; d++) O[h * hd + d] += p * Vf[(h / G) * hd + d];
    }
  }
}

#ifdef LMX_X86
/* [sum a0, ..., sum a7] */
static inline __attribute__((always_inline)) LMX_AVX2 __m256 hsum8x8(const __m256 a[8]) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* Every query head meets each key row, 8 heads at a time: with an even group size, heads
 * 2i and 2i + 1 share a key vector converted in registers (a q8_0 cache's codes scaled by
 * their block's scale); otherwise the row is converted once into Kf (L1) and read from
 * there. The rows ahead are prefetched, and the tile's value rows, which pv_avx2 reads
 * once the tile's softmax is known, all into L2 (T1): prefetched into L1 (T0), the key
 * rows' lines held the few L1 miss buffers that the hardware streams also need, and
 * decode over a long cache stopped overlapping memory with arithmetic (Q4_K_M after 4096
 * positions, one thread, --profile attention 1171-1181 -> 867-881 ms per 32 tokens with
 * this and fetch_ahead's hint; T1 also beat no prefetch, 966-970). kq8: the pool is Q8_0
 * (heads of whole blocks). */
static LMX_AVX2 void scores_avx2(const float *Q, const uint8_t *const *K, const uint8_t *const *Knext,
                                 const uint8_t *const *V, int kq8, int kBytes, int vBytes, float *Kf, float *S,
                                 int nHead, int G, int hd, int nKv, int nk) {
  const int NHP = padded_heads(nHead), w = nKv * hd;
  for (int j = 0; j < nk; j++) {
    const char *ahead = (const char *)(j + 4 < nk ? K[j + 4] : Knext ? Knext[j + 4 - nk] : K[j]);
    for (int o = 0; o < kBytes; o += 64) _mm_prefetch(ahead + o, _MM_HINT_T1);
    for (int o = 0; o < vBytes; o += 64) _mm_prefetch((const char *)V[j] + o, _MM_HINT_T1);
    float *s = S + (int64_t)j * NHP;
    int h0 = 0;
    if (G % 2 == 0 && kq8)
      for (; h0 + 8 <= nHead; h0 += 8) {
        __m256 acc[8];
        const uint8_t *kp[4];
        for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
        /* A head is hd / 32 Q8_0 blocks of 34 bytes. */
        for (int i = 0; i < 4; i++) kp[i] = K[j] + ((h0 + 2 * i) / G) * (hd / 32 * 34);
        const float *q0 = Q + h0 * hd;
        for (int d = 0; d < hd; d += 32)
          for (int i = 0; i < 4; i++) {
            const uint8_t *blk = kp[i] + d / 32 * 34;
            const __m256 sc = _mm256_set1_ps(lmx_f16_avx2(blk));
            for (int e = 0; e < 32; e += 8) {
              const __m256 k = _mm256_mul_ps(sc, lmx_i8x8_ps((const int8_t *)blk + 2 + e));
              acc[2 * i] = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + 2 * i * hd + d + e), k, acc[2 * i]);
              acc[2 * i + 1] = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + (2 * i + 1) * hd + d + e), k, acc[2 * i + 1]);
            }
          }
        _mm256_storeu_ps(s + h0, hsum8x8(acc));
      }
    else if (G % 2 == 0)
      for (; h0 + 8 <= nHead; h0 += 8) {
        __m256 acc[8];
        const uint16_t *kp[4];
        for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) kp[i] = (const uint16_t *)K[j] + ((h0 + 2 * i) / G) * hd;
        const float *q0 = Q + h0 * hd;
        for (int d = 0; d < hd; d += 8)
          for (int i = 0; i < 4; i++) {
            const __m256 k = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kp[i] + d)));
            acc[2 * i] = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + 2 * i * hd + d), k, acc[2 * i]);
            acc[2 * i + 1] = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + (2 * i + 1) * hd + d), k, acc[2 * i + 1]);
          }
        _mm256_storeu_ps(s + h0, hsum8x8(acc));
      }
    /* Other group sizes, and the heads past the last 8: from the row converted once. */
    if (h0 < NHP) {
      if (kq8) lmx_row_to_f32(K[j], LMX_Q8_0, Kf, w);
      else
        for (int i = 0; i < w; i += 8)
          _mm256_store_ps(Kf + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)K[j] + i))));
    }
    for (; h0 + 8 <= nHead; h0 += 8) {
      __m256 acc[8];
      const float *kp[8];
      for (int i = 0; i < 8; i++) {
        acc[i] = _mm256_setzero_ps();
        kp[i] = Kf + ((h0 + i) / G) * hd;
      }
      const float *q0 = Q + h0 * hd;
      for (int d = 0; d < hd; d += 8)
        for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + i * hd + d), _mm256_load_ps(kp[i] + d), acc[i]);
      _mm256_storeu_ps(s + h0, hsum8x8(acc));
    }
    for (int h = h0; h < NHP; h++) {
      __m256 acc = _mm256_setzero_ps();
      if (h < nHead)
        for (int d = 0; d < hd; d += 8)
          acc = _mm256_fmadd_ps(_mm256_loadu_ps(Q + h * hd + d), _mm256_load_ps(Kf + (h / G) * hd + d), acc);
      s[h] = h < nHead ? lmx_hsum8(acc) : 0.0f;
    }
  }
}

/* exp(x) for x <= 0; exactly 0 for -inf (a head's max before its first key). */
static inline __attribute__((always_inline)) LMX_AVX2 __m256 exp8_neg(__m256 x) {
  return _mm256_and_ps(lmx_exp8(x), _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ));
}

static LMX_AVX2 void softmax_avx2(float *S, float *m, float *l, float *sc, int NHP, int nk) {
  for (int h = 0; h < NHP; h += 8) {
    const __m256 m0 = _mm256_loadu_ps(m + h);
    __m256 mt = m0;
    for (int j = 0; j < nk; j++) mt = _mm256_max_ps(mt, _mm256_loadu_ps(S + j * NHP + h));
    const __m256 r = exp8_neg(_mm256_sub_ps(m0, mt));
    __m256 sum = _mm256_setzero_ps();
    for (int j = 0; j < nk; j++) {
      const __m256 p = exp8_neg(_mm256_sub_ps(_mm256_loadu_ps(S + j * NHP + h), mt));
      _mm256_storeu_ps(S + j * NHP + h, p);
      sum = _mm256_add_ps(sum, p);
    }
    _mm256_storeu_ps(sc + h, r);
    _mm256_storeu_ps(l + h, _mm256_fmadd_ps(_mm256_loadu_ps(l + h), r, sum));
    _mm256_storeu_ps(m + h, mt);
  }
}

/* The next tile's key rows, fetched into L2 one line per value row while pv_avx2
 * computes, so memory keeps streaming through the tile's arithmetic. */
typedef struct {
  const uint8_t *const *rows;
  int n, lines, r, l;
} ahead_t;

static inline __attribute__((always_inline)) void fetch_ahead(ahead_t *a) {
  if (a->r >= a->n) return;
  _mm_prefetch((const char *)a->rows[a->r] + 64 * a->l, _MM_HINT_T1);
  if (++a->l == a->lines) {
    a->l = 0;
    a->r++;
  }
}

/* O[h][d .. d + 8W) += Σj P[j][h] V[j][kv][d ..] for the query heads h0, h0 + 1 (two when
 * pair) of KV head kv: the value slice is converted once for both. q8: V is Q8_0 and the
 * slab is one whole block (W == 4), whose scale goes into the two weights P. */
static inline __attribute__((always_inline)) LMX_AVX2 void pv_slab(const float *P, const uint8_t *const *V, float *O,
                                                                    int NHP, int hd, int kv, int h0, int pair, int d,
                                                                    int nk, int W, int q8, ahead_t *ahead) {
  __m256 a[4], b[4];
  for (int w = 0; w < W; w++) {
    a[w] = _mm256_loadu_ps(O + h0 * hd + d + 8 * w);
    b[w] = pair ? _mm256_loadu_ps(O + (h0 + 1) * hd + d + 8 * w) : _mm256_setzero_ps();
  }
  for (int j = 0; j < nk; j++) {
    fetch_ahead(ahead);
    if (q8) {
      const uint8_t *blk = V[j] + (kv * hd + d) / 32 * 34;
      const float sc = lmx_f16_avx2(blk);
      const __m256 pa = _mm256_set1_ps(P[j * NHP + h0] * sc), pb = _mm256_set1_ps(P[j * NHP + h0 + pair] * sc);
      for (int w = 0; w < 4; w++) {
        const __m256 x = lmx_i8x8_ps((const int8_t *)blk + 2 + 8 * w);
        a[w] = _mm256_fmadd_ps(pa, x, a[w]);
        if (pair) b[w] = _mm256_fmadd_ps(pb, x, b[w]);
      }
      continue;
    }
    const uint16_t *v = (const uint16_t *)V[j] + kv * hd + d;
    const __m256 pa = _mm256_broadcast_ss(P + j * NHP + h0), pb = _mm256_broadcast_ss(P + j * NHP + h0 + pair);
    for (int w = 0; w < W; w++) {
      const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + 8 * w)));
      a[w] = _mm256_fmadd_ps(pa, x, a[w]);
      if (pair) b[w] = _mm256_fmadd_ps(pb, x, b[w]);
    }
  }
  for (int w = 0; w < W; w++) {
    _mm256_storeu_ps(O + h0 * hd + d + 8 * w, a[w]);
    if (pair) _mm256_storeu_ps(O + (h0 + 1) * hd + d + 8 * w, b[w]);
  }
}

/* Value rows are taken 8 at a time (16 KiB: a few pages, all of them in L1) through every
 * head and slab before the next 8: walking all of a tile's rows per slab touched 32 pages
 * per pass and took twice as long. */
#define PV_ROWS 8
static LMX_AVX2 void pv_avx2(const float *P, const uint8_t *const *V, int vq8, const uint8_t *const *Knext, int nkNext,
                             int kBytes, float *O, int nHead, int G, int hd, int nk) {
  const int NHP = padded_heads(nHead);
  ahead_t ahead = {Knext, Knext ? nkNext : 0, kBytes / 64, 0, 0};
  for (int j0 = 0; j0 < nk; j0 += PV_ROWS) {
    const int nj = nk - j0 < PV_ROWS ? nk - j0 : PV_ROWS;
    const float *Pj = P + j0 * NHP;
    const uint8_t *const *Vj = V + j0;
    for (int kv = 0; kv < nHead / G; kv++)
      for (int g = 0; g < G; g += 2) {
        const int h0 = kv * G + g;
        int d = 0;
        if (vq8) {
          /* hd % 32 == 0: whole blocks. */
          if (g + 1 < G)
            for (; d < hd; d += 32) pv_slab(Pj, Vj, O, NHP, hd, kv, h0, 1, d, nj, 4, 1, &ahead);
          else
            for (; d < hd; d += 32) pv_slab(Pj, Vj, O, NHP, hd, kv, h0, 0, d, nj, 4, 1, &ahead);
        } else if (g + 1 < G) {
          for (; d + 32 <= hd; d += 32) pv_slab(Pj, Vj, O, NHP, hd, kv, h0, 1, d, nj, 4, 0, &ahead);
          for (; d < hd; d += 8) pv_slab(Pj, Vj, O, NHP, hd, kv, h0, 1, d, nj, 1, 0, &ahead);
        } else {
          for (; d + 32 <= hd; d += 32) pv_slab(Pj, Vj, O, NHP, hd, kv, h0, 0, d, nj, 4, 0, &ahead);
          for (; d < hd; d += 8) pv_slab(Pj, Vj, O, NHP, hd, kv, h0, 0, d, nj, 1, 0, &ahead);
        }
      }
  }
}
#endif

/* Row t's keys: positions [first, last], in chunks c0 .. c1 - 1 of kc positions (chunk c
 * holds positions [c kc, (c + 1) kc)); its partials sit at chunk c - c0. */
typedef struct {
  int64_t first, last, kc, c0, c1;
} row_span;

static row_span row_chunks(const lmx_node *n, int64_t t) {
  const int window = n->ip[4];
  row_span r;
  r.last = ((const int32_t *)n->src[3]->data)[t];
  r.first = window > 0 && r.last - window + 1 > 0 ? r.last - window + 1 : 0;
  const int64_t len = r.last - r.first + 1;
  r.kc = KC;
  if (len < MIN_CHUNKS * KC) {
    r.kc = ((len + MIN_CHUNKS - 1) / MIN_CHUNKS + 15) / 16 * 16;
    if (r.kc < MIN_KC) r.kc = MIN_KC;
  }
  r.c0 = r.first / r.kc;
  r.c1 = r.last / r.kc + 1;
  return r;
}

/* Merges each row's chunks, in chunk order: out = Σc e^(m_c - M) O_c / Σc e^(m_c - M) l_c. */
static void merge(const lmx_node *n, const float *partials, int64_t chunks) {
  const int nHead = n->ip[0], hd = n->ip[2];
  const int64_t T = n->src[0]->ne1, item = (int64_t)nHead * (hd + 2);
  for (int64_t t = 0; t < T; t++) {
    const row_span r = row_chunks(n, t);
    const int64_t nc = r.c1 - r.c0;
    const float *row = partials + t * chunks * item;
    for (int h = 0; h < nHead; h++) {
      float M = -INFINITY, L = 0;
      for (int64_t c = 0; c < nc; c++) M = fmaxf(M, row[c * item + (int64_t)nHead * hd + h]);
      float *out = (float *)(n->dst->data + t * n->dst->nb1) + (int64_t)h * hd;
      for (int i = 0; i < hd; i++) out[i] = 0;
      for (int64_t c = 0; c < nc; c++) {
        const float *p = row + c * item;
        const float w = expf(p[(int64_t)nHead * hd + h] - M);
        L += w * p[(int64_t)nHead * hd + nHead + h];
        for (int i = 0; i < hd; i++) out[i] += w * p[(int64_t)h * hd + i];
      }
      const float inv = 1.0f / L;
      for (int i = 0; i < hd; i++) out[i] *= inv;
    }
  }
}

/* One work item's part for row t: its keys in chunk c, into the row's partials. */
typedef struct {
  float *Q, *O, *S, *m, *l, *sc, *Kf;
  int simd, kq8, vq8, kBytes, vBytes;
  int64_t chunks;
} split_ctx;

static void row_chunk(const lmx_node *n, const split_ctx *x, int64_t t, const row_span *r, int64_t c) {
  const lmx_tensor *q = n->src[0], *kpool = n->src[1], *vpool = n->src[2], *tables = n->src[5];
  const int32_t *rseq = (const int32_t *)n->src[4]->data;
  const int nHead = n->ip[0], nKv = n->ip[1], hd = n->ip[2], bs = n->ip[3], G = nHead / nKv, NHP = padded_heads(nHead);
  const float scale = n->fp[0];
  const int64_t item = (int64_t)nHead * (hd + 2);
  float *Q = x->Q, *O = x->O, *S = x->S, *m = x->m, *l = x->l, *sc = x->sc, *Kf = x->Kf;
  const int64_t k0 = c * r->kc > r->first ? c * r->kc : r->first,
                k1 = (c + 1) * r->kc < r->last + 1 ? (c + 1) * r->kc : r->last + 1;
  const int32_t *table = (const int32_t *)(tables->data + rseq[t] * tables->nb1);
  const float *qr = (const float *)(q->data + t * q->nb1);
  for (int64_t i = 0; i < (int64_t)nHead * hd; i++) {
    Q[i] = qr[i] * scale;
    O[i] = 0;
  }
  for (int h = 0; h < NHP; h++) {
    m[h] = -INFINITY;
    l[h] = 0;
  }
  const uint8_t *krow[2][KT], *vrow[KT];
  int cur = 0;
  const int nk0 = (int)(k1 - k0 < KT ? k1 - k0 : KT);
  for (int j = 0; j < nk0; j++) krow[0][j] = (const uint8_t *)(kpool->data + lmx_kv_slot(table, k0 + j, bs) * kpool->nb1);
  for (int64_t j0 = k0; j0 < k1; j0 += KT) {
    const int nk = (int)(k1 - j0 < KT ? k1 - j0 : KT);
    const int64_t jn = j0 + KT;
    const int nkNext = (int)(k1 - jn < KT ? (k1 - jn > 0 ? k1 - jn : 0) : KT);
    /* The next tile's key rows, for the prefetch that runs ahead of the scores. */
    for (int j = 0; j < nkNext; j++)
      krow[cur ^ 1][j] = (const uint8_t *)(kpool->data + lmx_kv_slot(table, jn + j, bs) * kpool->nb1);
    for (int j = 0; j < nk; j++) vrow[j] = (const uint8_t *)(vpool->data + lmx_kv_slot(table, j0 + j, bs) * vpool->nb1);
    if (x->simd) {
#ifdef LMX_X86
      scores_avx2(Q, krow[cur], nkNext >= 4 ? krow[cur ^ 1] : NULL, vrow, x->kq8, x->kBytes, x->vBytes, Kf, S, nHead, G,
                  hd, nKv, nk);
      softmax_avx2(S, m, l, sc, NHP, nk);
#endif
    } else {
      scores_scalar(Q, krow[cur], kpool->dtype, Kf, S, nHead, G, hd, nKv, nk);
      softmax_scalar(S, m, l, sc, NHP, nk);
    }
    for (int h = 0; h < nHead; h++)
      if (sc[h] != 1.0f)
        for (int i = 0; i < hd; i++) O[(int64_t)h * hd + i] *= sc[h];
    if (x->simd) {
#ifdef LMX_X86
      pv_avx2(S, vrow, x->vq8, nkNext ? krow[cur ^ 1] : NULL, nkNext, x->kBytes, O, nHead, G, hd, nk);
#endif
    } else {
      pv_scalar(S, vrow, vpool->dtype, Kf, O, nHead, G, hd, nKv, nk);
    }
    cur ^= 1;
  }
  float *p = n->partials + (t * x->chunks + (c - r->c0)) * item;
  for (int64_t i = 0; i < (int64_t)nHead * hd; i++) p[i] = O[i];
  for (int h = 0; h < nHead; h++) {
    p[(int64_t)nHead * hd + h] = m[h];
    p[(int64_t)nHead * hd + nHead + h] = l[h];
  }
}

int lmx_attention_split(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *q = n->src[0], *kpool = n->src[1], *vpool = n->src[2];
  const int64_t T = q->ne1;
  if (!n->partials || T > SPLIT_MAX_ROWS) return 0;
  const int32_t *rseq = (const int32_t *)n->src[4]->data;
  const int nHead = n->ip[0], nKv = n->ip[1], hd = n->ip[2], NHP = padded_heads(nHead);
  split_ctx x;
  x.chunks = max_chunks(n);
#ifdef LMX_X86
  x.simd = lmx_use_avx2() && hd % 8 == 0;
  x.kq8 = kpool->dtype == LMX_Q8_0;
  x.vq8 = vpool->dtype == LMX_Q8_0;
  /* Bytes of one pool row (every KV head), in whole cache lines for the prefetches. */
  x.kBytes = (int)((kpool->nb1 + 63) / 64 * 64);
  x.vBytes = (int)((vpool->nb1 + 63) / 64 * 64);
#else
  x.simd = x.kq8 = x.vq8 = x.kBytes = x.vBytes = 0;
  (void)vpool;
#endif
  /* Groups of consecutive rows of one sequence cut into chunks alike (a decode row and the
   * drafts fed after it; a short prompt chunk): a work item is one chunk of a group, and
   * takes the chunk for each of the group's rows in turn, so its K/V come from memory
   * once and from L2 for the rows after the first. Every row still gets exactly its own
   * chunks and arithmetic, so the same bits as alone in a decode step. */
  row_span span[SPLIT_MAX_ROWS];
  int64_t gstart[SPLIT_MAX_ROWS + 1], gc0[SPLIT_MAX_ROWS], base[SPLIT_MAX_ROWS + 1];
  int ng = 0;
  base[0] = 0;
  for (int64_t t = 0; t < T; t++) {
    span[t] = row_chunks(n, t);
    if (t == 0 || rseq[t] != rseq[t - 1] || span[t].kc != span[t - 1].kc) {
      gstart[ng] = t;
      gc0[ng] = span[t].c0;
      base[ng + 1] = base[ng];
      ng++;
    }
    /* The group's chunks run from its rows' first to their last. */
    if (span[t].c0 < gc0[ng - 1]) gc0[ng - 1] = span[t].c0;
    const int64_t end = span[t].c1 - gc0[ng - 1];
    if (base[ng] - base[ng - 1] < end) base[ng] = base[ng - 1] + end;
  }
  gstart[ng] = T;
  for (int g = 0; g < ng; g++)
    if (gstart[g + 1] - gstart[g] > SPLIT_GROUP_ROWS) return 0;
  const int64_t items = base[ng];
  /* Per thread: Q and O [nHead x hd], S [KT x NHP], one key or value row in f32, m, l, sc. */
  const int64_t w = (int64_t)nKv * hd;
  float *buf = lmx_scratch((size_t)(2 * nHead * hd + KT * NHP + w + 3 * NHP + 16));
  x.Q = buf;
  x.O = x.Q + (int64_t)nHead * hd;
  x.S = x.O + (int64_t)nHead * hd;
  x.m = x.S + KT * NHP;
  x.l = x.m + NHP;
  x.sc = x.l + NHP;
  x.Kf = (float *)(((uintptr_t)(x.sc + NHP) + 31) & ~(uintptr_t)31);
  (void)ith;
  (void)nth;
  for (int64_t it; (it = lmx_claim(n, 1)) < items;) {
    int g = 0;
    while (base[g + 1] <= it) g++;
    const int64_t c = gc0[g] + (it - base[g]);
    for (int64_t t = gstart[g]; t < gstart[g + 1]; t++)
      if (c >= span[t].c0 && c < span[t].c1) row_chunk(n, &x, t, &span[t], c);
    /* The last item's thread sees every other item's partials (acq_rel on one counter). */
    if (atomic_fetch_add_explicit(n->done, 1, memory_order_acq_rel) == items - 1) merge(n, n->partials, x.chunks);
  }
  return 1;
}
