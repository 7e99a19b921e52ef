/* Rotary position embedding per head, both pairings: rotate-half (NeoX, HF) and
 * interleaved (llama.cpp's NORM for permuted Llama GGUFs). Optionally applies a per-head
 * RMSNorm first (Qwen3's q/k norm), fused so each head row is read once. Threads split
 * tokens; each token's cos/sin table is computed once and shared by its heads. */
#include <math.h>
#include <string.h>

#include "../simd.h"

#define MAX_HALF 512

void lmx_k_rope(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *x = n->src[0], *pos = n->src[1], *ff = n->src[2], *nw = n->src[3], *d = n->dst;
  const int nHead = n->ip[0], hd = n->ip[1], nRot = n->ip[2], interleaved = n->ip[3];
  const double base = n->fp[0];
  const float eps = n->fp[1];
  const int half = nRot / 2;
  double inv[MAX_HALF];
  float cs[MAX_HALF], sn[MAX_HALF], buf[1024];
  for (int i = 0; i < half; i++) {
    inv[i] = pow(base, -2.0 * i / nRot);
    if (ff) inv[i] /= ((const float *)ff->data)[i];
  }
  int64_t lo, hi;
  lmx_split(x->ne1, 1, ith, nth, &lo, &hi);
  for (int64_t t = lo; t < hi; t++) {
    const double p = ((const int32_t *)pos->data)[t];
    for (int i = 0; i < half; i++) {
      double a = p * inv[i];
      cs[i] = (float)cos(a);
      sn[i] = (float)sin(a);
    }
    for (int h = 0; h < nHead; h++) {
      const float *src = (const float *)(x->data + t * x->nb1) + h * hd;
      float *dst = (float *)(d->data + t * d->nb1) + h * hd;
      if (nw) {
        double ss = 0;
        for (int i = 0; i < hd; i++) ss += (double)src[i] * src[i];
        float s = (float)(1.0 / sqrt(ss / hd + eps));
        const float *w = (const float *)nw->data;
        for (int i = 0; i < hd; i++) buf[i] = src[i] * s * w[i];
      } else {
        memcpy(buf, src, sizeof(float) * hd);
      }
      for (int i = 0; i < half; i++) {
        int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
        float x0 = buf[i0], x1 = buf[i1];
        dst[i0] = x0 * cs[i] - x1 * sn[i];
        dst[i1] = x0 * sn[i] + x1 * cs[i];
      }
      for (int i = nRot; i < hd; i++) dst[i] = buf[i];
    }
  }
}
