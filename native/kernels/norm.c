/* RMSNorm (optionally fused with the residual add that precedes it) and embedding rows. */
#include <math.h>

#include "../simd.h"

/* The squares of 16 consecutive values go to 16 double lanes (lane i mod 16), which are
 * combined as the AVX2 registers do, then the tail is added in order: one sequential
 * chain of D dependent adds had cost ~1 us per 1024-wide row (4 cycles an add), ~1.5% of
 * a prefill and most of the rope's Qwen3 q/k norms. Double products of floats are exact,
 * so an FMA and a multiply-add agree and every tier gives the same bits. */
static double sum_squares_scalar(const float *x, int64_t n) {
  double a[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; k++) a[k] += (double)x[i + k] * x[i + k];
  double s[4];
  for (int j = 0; j < 4; j++) s[j] = (a[j] + a[4 + j]) + (a[8 + j] + a[12 + j]);
  double r = (s[0] + s[2]) + (s[1] + s[3]);
  for (; i < n; i++) r += (double)x[i] * x[i];
  return r;
}

#ifdef LMX_X86
static LMX_AVX2 double sum_squares_avx2(const float *x, int64_t n) {
  __m256d a[4];
  for (int k = 0; k < 4; k++) a[k] = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 4; k++) {
      const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k));
      a[k] = _mm256_fmadd_pd(v, v, a[k]);
    }
  const __m256d s = _mm256_add_pd(_mm256_add_pd(a[0], a[1]), _mm256_add_pd(a[2], a[3]));
  const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  double r = _mm_cvtsd_f64(t) + _mm_cvtsd_f64(_mm_unpackhi_pd(t, t));
  for (; i < n; i++) r += (double)x[i] * x[i];
  return r;
}
#endif

static double sum_squares(const float *x, int64_t n) {
#ifdef LMX_X86
  if (lmx_use_avx2()) return sum_squares_avx2(x, n);
#endif
  return sum_squares_scalar(x, n);
}

void lmx_rms_norm_row(const float *x, const float *w, float eps, float *d, int64_t D) {
  const double ss = sum_squares(x, D);
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
    lmx_weight_row_to_f32(t, row, (float *)(d->data + r * d->nb1));
  }
}
