/* Elementwise ops: residual add and the gated activations (SwiGLU, GeGLU). Threads split
 * the elements, not the rows, so a decode step's single row is shared too; the AVX2 paths
 * compute exp with a polynomial (within 2 ulp of expf over the range that matters). */
#include <math.h>

#include "../simd.h"

typedef void (*span_fn)(const float *a, const float *b, float *d, int64_t n, int simd);

/* Runs f over this thread's share of the elements, row segment by row segment. */
static void for_my_elements(const lmx_node *n, int ith, int nth, span_fn f) {
  const lmx_tensor *a = n->src[0], *b = n->src[1], *d = n->dst;
  const int64_t cols = a->ne0;
  int64_t lo, hi;
  lmx_split(a->ne1 * cols, 8, ith, nth, &lo, &hi);
  const int simd = lmx_use_avx2();
  while (lo < hi) {
    const int64_t r = lo / cols, c = lo % cols, e = hi - r * cols < cols ? hi - r * cols : cols;
    f((const float *)(a->data + r * a->nb1) + c, (const float *)(b->data + r * b->nb1) + c,
      (float *)(d->data + r * d->nb1) + c, e - c, simd);
    lo = r * cols + e;
  }
}

#ifdef LMX_X86
static LMX_AVX2 int64_t add_avx2(const float *a, const float *b, float *d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  return i;
}

static LMX_AVX2 int64_t swiglu_avx2(const float *a, const float *b, float *d, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(a + i);
    const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, lmx_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    _mm256_storeu_ps(d + i, _mm256_mul_ps(s, _mm256_loadu_ps(b + i)));
  }
  return i;
}

/* gelu(x) = x / (1 + e^(-2u)) with u = sqrt(2/pi) (x + 0.044715 x^3): the tanh form. */
static LMX_AVX2 int64_t geglu_avx2(const float *a, const float *b, float *d, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(a + i);
    const __m256 u = _mm256_mul_ps(_mm256_set1_ps(-2 * 0.7978845608f),
                                   _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), x), _mm256_mul_ps(x, x), x));
    const __m256 g = _mm256_div_ps(x, _mm256_add_ps(one, lmx_exp8(u)));
    _mm256_storeu_ps(d + i, _mm256_mul_ps(g, _mm256_loadu_ps(b + i)));
  }
  return i;
}
#endif

static void add_span(const float *a, const float *b, float *d, int64_t n, int simd) {
  int64_t i = 0;
#ifdef LMX_X86
  if (simd) i = add_avx2(a, b, d, n);
#endif
  for (; i < n; i++) d[i] = a[i] + b[i];
}

static void swiglu_span(const float *a, const float *b, float *d, int64_t n, int simd) {
  int64_t i = 0;
#ifdef LMX_X86
  if (simd) i = swiglu_avx2(a, b, d, n);
#endif
  for (; i < n; i++) d[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

static void geglu_span(const float *a, const float *b, float *d, int64_t n, int simd) {
  int64_t i = 0;
#ifdef LMX_X86
  if (simd) i = geglu_avx2(a, b, d, n);
#endif
  for (; i < n; i++) {
    const float x = a[i];
    d[i] = 0.5f * x * (1.0f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x))) * b[i];
  }
}

void lmx_glu_row(int32_t op, const float *a, const float *b, float *d, int64_t n) {
  (op == OP_GEGLU ? geglu_span : swiglu_span)(a, b, d, n, lmx_use_avx2());
}

void lmx_k_add(const lmx_node *n, int ith, int nth) {
  for_my_elements(n, ith, nth, add_span);
}

void lmx_k_swiglu(const lmx_node *n, int ith, int nth) {
  for_my_elements(n, ith, nth, swiglu_span);
}

void lmx_k_geglu(const lmx_node *n, int ith, int nth) {
  for_my_elements(n, ith, nth, geglu_span);
}
