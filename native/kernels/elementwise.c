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
/* e^x for x in [-87.3, 88.7] (clamped outside): 2^k * e^r with r = x - k ln 2 taken in two
 * parts, e^r by a degree-6 polynomial on |r| <= ln 2 / 2. */
static inline __attribute__((always_inline)) LMX_AVX2 __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  /* 2^k in two factors, so that k = 128 (x near 88.7) does not overflow the exponent. */
  const __m256i ki = _mm256_cvtps_epi32(k), k1 = _mm256_srai_epi32(ki, 1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ki, k1), _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

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
    const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
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
    const __m256 g = _mm256_div_ps(x, _mm256_add_ps(one, exp8(u)));
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

void lmx_k_add(const lmx_node *n, int ith, int nth) {
  for_my_elements(n, ith, nth, add_span);
}

void lmx_k_swiglu(const lmx_node *n, int ith, int nth) {
  for_my_elements(n, ith, nth, swiglu_span);
}

void lmx_k_geglu(const lmx_node *n, int ith, int nth) {
  for_my_elements(n, ith, nth, geglu_span);
}
