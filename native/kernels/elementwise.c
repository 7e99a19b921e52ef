/* Elementwise ops: residual add and the gated activations (SwiGLU, GeGLU). */
#include <math.h>

#include "../simd.h"

#define ROWWISE(name, expr)                                                             \
  void name(const lmx_node *n, int ith, int nth) {                                      \
    const lmx_tensor *a = n->src[0], *b = n->src[1], *d = n->dst;                       \
    int64_t lo, hi;                                                                     \
    lmx_split(a->ne1, 1, ith, nth, &lo, &hi);                                           \
    for (int64_t r = lo; r < hi; r++) {                                                 \
      const float *pa = (const float *)(a->data + r * a->nb1);                          \
      const float *pb = (const float *)(b->data + r * b->nb1);                          \
      float *pd = (float *)(d->data + r * d->nb1);                                      \
      for (int64_t i = 0; i < a->ne0; i++) {                                            \
        const float x = pa[i], y = pb[i];                                               \
        pd[i] = (expr);                                                                 \
      }                                                                                 \
    }                                                                                   \
  }

ROWWISE(lmx_k_add, x + y)
ROWWISE(lmx_k_swiglu, x / (1.0f + expf(-x)) * y)
ROWWISE(lmx_k_geglu, 0.5f * x * (1.0f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x))) * y)
