/* Causal grouped-query attention over the paged KV cache, with online softmax so no
 * score matrix is materialized. K/V live in f16 pools of token slots; a sequence's
 * block table maps position p to slot table[p / blockSize] * blockSize + p % blockSize. */
#include <math.h>

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

static float dot_f16(const float *q, const uint16_t *k, int hd) {
  float s = 0;
  for (int i = 0; i < hd; i++) s += q[i] * lmx_f16_to_f32(k[i]);
  return s;
}

#ifdef LMX_X86
static LMX_AVX2 float dot_f16_avx2(const float *q, const uint16_t *k, int hd) {
  __m256 a = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= hd; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), lmx_load8(k, LMX_F16, i), a);
  float s = lmx_hsum8(a);
  for (; i < hd; i++) s += q[i] * lmx_f16_to_f32(k[i]);
  return s;
}

static LMX_AVX2 void axpy_f16_avx2(float *acc, float scale, float p, const uint16_t *v, int hd) {
  __m256 vs = _mm256_set1_ps(scale), vp = _mm256_set1_ps(p);
  int i = 0;
  for (; i + 8 <= hd; i += 8) {
    __m256 a = _mm256_mul_ps(_mm256_loadu_ps(acc + i), vs);
    _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(vp, lmx_load8(v, LMX_F16, i), a));
  }
  for (; i < hd; i++) acc[i] = acc[i] * scale + p * lmx_f16_to_f32(v[i]);
}
#endif

static void axpy_f16(float *acc, float scale, float p, const uint16_t *v, int hd) {
  for (int i = 0; i < hd; i++) acc[i] = acc[i] * scale + p * lmx_f16_to_f32(v[i]);
}

void lmx_k_attention(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *q = n->src[0], *kpool = n->src[1], *vpool = n->src[2], *pos = n->src[3], *rowSeq = n->src[4],
                   *tables = n->src[5], *d = n->dst;
  const int nHead = n->ip[0], nKv = n->ip[1], hd = n->ip[2], bs = n->ip[3], window = n->ip[4];
  const float scale = n->fp[0];
  const int group = nHead / nKv;
  const int64_t R = q->ne1 * nHead;
  int64_t lo, hi;
  lmx_split(R, 1, ith, nth, &lo, &hi);
  float acc[1024];
#ifdef LMX_X86
  const int simd = lmx_use_avx2();
#endif
  for (int64_t r = lo; r < hi; r++) {
    int64_t t = r / nHead;
    int h = (int)(r % nHead), kvh = h / group;
    const float *qh = (const float *)(q->data + t * q->nb1) + h * hd;
    int32_t seq = ((const int32_t *)rowSeq->data)[t];
    const int32_t *table = (const int32_t *)(tables->data + seq * tables->nb1);
    int64_t p = ((const int32_t *)pos->data)[t];
    int64_t first = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
    float m = -INFINITY, l = 0;
    for (int i = 0; i < hd; i++) acc[i] = 0;
    for (int64_t j = first; j <= p; j++) {
      int64_t s = slot_of(table, j, bs);
      const uint16_t *kj = (const uint16_t *)(kpool->data + s * kpool->nb1) + kvh * hd;
      const uint16_t *vj = (const uint16_t *)(vpool->data + s * vpool->nb1) + kvh * hd;
      float sc;
#ifdef LMX_X86
      sc = (simd ? dot_f16_avx2(qh, kj, hd) : dot_f16(qh, kj, hd)) * scale;
#else
      sc = dot_f16(qh, kj, hd) * scale;
#endif
      float rescale = 1.0f, pj;
      if (sc > m) {
        rescale = expf(m - sc);
        m = sc;
        pj = 1.0f;
      } else {
        pj = expf(sc - m);
      }
      l = l * rescale + pj;
#ifdef LMX_X86
      if (simd) axpy_f16_avx2(acc, rescale, pj, vj, hd);
      else
#endif
        axpy_f16(acc, rescale, pj, vj, hd);
    }
    float *out = (float *)(d->data + t * d->nb1) + h * hd;
    float inv = l > 0 ? 1.0f / l : 0;
    for (int i = 0; i < hd; i++) out[i] = acc[i] * inv;
  }
}
