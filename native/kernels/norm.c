/* RMSNorm (optionally fused with the residual add that precedes it) and embedding rows. */
#include <math.h>

#include "../simd.h"

void lmx_rms_norm_row(const float *x, const float *w, float eps, float *d, int64_t D) {
  double ss = 0;
  for (int64_t i = 0; i < D; i++) ss += (double)x[i] * x[i];
  float r = (float)(1.0 / sqrt(ss / (double)D + eps));
  if (w)
    for (int64_t i = 0; i < D; i++) d[i] = x[i] * r * w[i];
  else
    for (int64_t i = 0; i < D; i++) d[i] = x[i] * r;
}

void lmx_k_rms_norm(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *x = n->src[0], *w = n->src[1], *d = n->dst;
  int64_t lo, hi;
  lmx_split(x->ne1, 1, ith, nth, &lo, &hi);
  for (int64_t r = lo; r < hi; r++)
    lmx_rms_norm_row((const float *)(x->data + r * x->nb1), w ? (const float *)w->data : 0, n->fp[0],
                     (float *)(d->data + r * d->nb1), x->ne0);
}

/* src3 = src0 + src1 (the new residual stream); dst = rmsnorm(src3) * src2. */
void lmx_k_add_rms_norm(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *a = n->src[0], *b = n->src[1], *w = n->src[2], *s = n->src[3], *d = n->dst;
  int64_t lo, hi;
  lmx_split(a->ne1, 1, ith, nth, &lo, &hi);
  for (int64_t r = lo; r < hi; r++) {
    const float *pa = (const float *)(a->data + r * a->nb1), *pb = (const float *)(b->data + r * b->nb1);
    float *ps = (float *)(s->data + r * s->nb1);
    for (int64_t i = 0; i < a->ne0; i++) ps[i] = pa[i] + pb[i];
    lmx_rms_norm_row(ps, w ? (const float *)w->data : 0, n->fp[0], (float *)(d->data + r * d->nb1), a->ne0);
  }
}

void lmx_k_get_rows(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *t = n->src[0], *ids = n->src[1], *d = n->dst;
  int64_t lo, hi;
  lmx_split(d->ne1, 1, ith, nth, &lo, &hi);
  const int32_t *id = (const int32_t *)ids->data;
  for (int64_t r = lo; r < hi; r++) {
    int64_t row = id[r];
    if (row < 0 || row >= t->ne1) row = 0; /* ids are validated in TypeScript; never read out of bounds */
    lmx_row_to_f32(t->data + row * t->nb1, t->dtype, (float *)(d->data + r * d->nb1), t->ne0);
  }
}
