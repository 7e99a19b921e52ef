/* Causal grouped-query attention over the paged KV cache. K/V live in f16 pools of token
 * slots; a sequence's block table maps position p to slot table[p / bs] * bs + p % bs.
 * A work item is a block of up to QB rows with one KV head: each K and V row is converted
 * once and shared by every query head of the group in every row of the block. Keys are
 * processed in tiles with an online softmax, so memory stays bounded for any length. Items are dealt round-robin to
 * threads, which balances the causal triangle and keeps results independent of the
 * thread count (blocks are fixed by row index, not by thread). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../simd.h"

static inline int64_t slot_of(const int32_t *table, int64_t pos, int bs) {
  return (int64_t)table[pos / bs] * bs + pos % bs;
}

void lmx_k_kv_store(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *k = n->src[0], *v = n->src[1], *vpool = n->src[2], *pos = n->src[3], *rowSeq = n->src[4],
                   *tables = n->src[5], *kpool = n->dst;
  const int bs = n->ip[0];
  int64_t lo, hi;
  lmx_split(k->ne1, 1, ith, nth, &lo, &hi);
  for (int64_t t = lo; t < hi; t++) {
    int32_t seq = ((const int32_t *)rowSeq->data)[t];
    const int32_t *table = (const int32_t *)(tables->data + seq * tables->nb1);
    int64_t s = slot_of(table, ((const int32_t *)pos->data)[t], bs);
    const float *pk = (const float *)(k->data + t * k->nb1), *pv = (const float *)(v->data + t * v->nb1);
    uint16_t *dk = (uint16_t *)(kpool->data + s * kpool->nb1), *dv = (uint16_t *)(vpool->data + s * vpool->nb1);
    for (int64_t i = 0; i < k->ne0; i++) {
      dk[i] = lmx_f32_to_f16(pk[i]);
      dv[i] = lmx_f32_to_f16(pv[i]);
    }
  }
}

static float dot(const float *a, const float *b, int n) {
  float s = 0;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* s[i] = exp(s[i] - m); returns the sum. */
static float exp_sum(float *s, int64_t n, float m) {
  float sum = 0;
  for (int64_t i = 0; i < n; i++) sum += (s[i] = expf(s[i] - m));
  return sum;
}

static void axpy(float *acc, float p, const float *v, int n) {
  for (int i = 0; i < n; i++) acc[i] += p * v[i];
}

#ifdef LMX_X86
static LMX_AVX2 float dot_avx2(const float *a, const float *b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  if (i + 8 <= n) { s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0); i += 8; }
  float s = lmx_hsum8(_mm256_add_ps(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/* exp(x) for x <= 0 (scores minus their max): 2^n * p(r), relative error ~2e-7; exactly 0
 * below -87 (masked keys are -inf and must weigh nothing). */
static inline LMX_AVX2 __m256 exp8(__m256 x) {
  const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-6f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), live);
}

static LMX_AVX2 float exp_sum_avx2(float *s, int64_t n, float m) {
  __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
    _mm256_storeu_ps(s + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = lmx_hsum8(acc);
  for (; i < n; i++) sum += (s[i] = expf(s[i] - m));
  return sum;
}

static LMX_AVX2 void axpy_avx2(float *acc, float p, const float *v, int n) {
  __m256 vp = _mm256_set1_ps(p);
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(vp, _mm256_loadu_ps(v + i), _mm256_loadu_ps(acc + i)));
  for (; i < n; i++) acc[i] += p * v[i];
}
#endif

/* Query rows per work item: their K/V rows are converted once for all of them. */
#define QB 8
/* Keys per tile of the online softmax. */
#define KT 256

void lmx_k_attention(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *q = n->src[0], *kpool = n->src[1], *vpool = n->src[2], *pos = n->src[3], *rowSeq = n->src[4],
                   *tables = n->src[5], *d = n->dst;
  const int nHead = n->ip[0], nKv = n->ip[1], hd = n->ip[2], bs = n->ip[3], window = n->ip[4];
  const float scale = n->fp[0];
  const int G = nHead / nKv;
#ifdef LMX_X86
  const int simd = lmx_use_avx2();
#define DOT(a, b, k) (simd ? dot_avx2(a, b, k) : dot(a, b, k))
#define EXPSUM(s, k, m) (simd ? exp_sum_avx2(s, k, m) : exp_sum(s, k, m))
#define AXPY(acc, p, v, k) (simd ? axpy_avx2(acc, p, v, k) : axpy(acc, p, v, k))
#else
#define DOT(a, b, k) dot(a, b, k)
#define EXPSUM(s, k, m) exp_sum(s, k, m)
#define AXPY(acc, p, v, k) axpy(acc, p, v, k)
#endif
  const int32_t *rpos = (const int32_t *)pos->data, *rseq = (const int32_t *)rowSeq->data;
  const int64_t T = q->ne1, nBlocks = (T + QB - 1) / QB, items = nBlocks * nKv;
  for (int64_t it = ith; it < items; it += nth) {
    const int64_t t0 = (it / nKv) * QB, tEnd = t0 + QB < T ? t0 + QB : T;
    const int kvh = (int)(it % nKv);
    /* Rows of one block that share a sequence are served together; a block mixing
     * sequences is split at each change of sequence. */
    for (int64_t a = t0; a < tEnd;) {
      int64_t b = a + 1;
      while (b < tEnd && rseq[b] == rseq[a]) b++;
      const int nq = (int)(b - a);
      const int32_t *table = (const int32_t *)(tables->data + rseq[a] * tables->nb1);
      int64_t lo = INT64_MAX, hi = -1, first[QB], last[QB];
      for (int r = 0; r < nq; r++) {
        last[r] = rpos[a + r];
        first[r] = window > 0 && last[r] - window + 1 > 0 ? last[r] - window + 1 : 0;
        if (first[r] < lo) lo = first[r];
        if (last[r] > hi) hi = last[r];
      }
      const int64_t rows = (int64_t)nq * G;
      /* Online softmax over key tiles: per query head a running max m, sum l and
       * unnormalized output acc, rescaled whenever a tile raises the max. */
      float *buf = lmx_scratch((size_t)(rows * KT + hd + rows * hd + 2 * rows));
      float *s = buf, *kv = buf + rows * KT, *acc = kv + hd, *m = acc + rows * hd, *l = m + rows;
      for (int64_t x = 0; x < rows; x++) {
        m[x] = -INFINITY;
        l[x] = 0;
        for (int i = 0; i < hd; i++) acc[x * hd + i] = 0;
      }
      for (int64_t j0 = lo; j0 <= hi; j0 += KT) {
        const int64_t nk = hi - j0 + 1 < KT ? hi - j0 + 1 : KT;
        for (int64_t j = 0; j < nk; j++) {
          const int64_t slot = slot_of(table, j0 + j, bs);
          lmx_row_to_f32((const uint16_t *)(kpool->data + slot * kpool->nb1) + kvh * hd, LMX_F16, kv, hd);
          for (int r = 0; r < nq; r++) {
            const float *qr = (const float *)(q->data + (a + r) * q->nb1) + (int64_t)kvh * G * hd;
            const int valid = j0 + j >= first[r] && j0 + j <= last[r];
            for (int g = 0; g < G; g++) s[(r * G + g) * KT + j] = valid ? DOT(qr + g * hd, kv, hd) * scale : -INFINITY;
          }
        }
        for (int64_t x = 0; x < rows; x++) {
          float mt = m[x];
          for (int64_t j = 0; j < nk; j++) mt = s[x * KT + j] > mt ? s[x * KT + j] : mt;
          if (mt == -INFINITY) {
            for (int64_t j = 0; j < nk; j++) s[x * KT + j] = 0;
            continue;
          }
          const float rescale = expf(m[x] - mt);
          if (rescale != 1.0f)
            for (int i = 0; i < hd; i++) acc[x * hd + i] *= rescale;
          l[x] = l[x] * rescale + EXPSUM(s + x * KT, nk, mt);
          m[x] = mt;
        }
        for (int64_t j = 0; j < nk; j++) {
          const int64_t slot = slot_of(table, j0 + j, bs);
          lmx_row_to_f32((const uint16_t *)(vpool->data + slot * vpool->nb1) + kvh * hd, LMX_F16, kv, hd);
          for (int64_t x = 0; x < rows; x++)
            if (s[x * KT + j] != 0.0f) AXPY(acc + x * hd, s[x * KT + j], kv, hd);
        }
      }
      for (int r = 0; r < nq; r++)
        for (int g = 0; g < G; g++) {
          float *out = (float *)(d->data + (a + r) * d->nb1) + (int64_t)(kvh * G + g) * hd;
          const float inv = 1.0f / l[r * G + g];
          for (int i = 0; i < hd; i++) out[i] = acc[(r * G + g) * hd + i] * inv;
        }
      a = b;
    }
  }
}
