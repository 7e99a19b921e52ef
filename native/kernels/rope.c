/* Rotary position embedding per head, both pairings: rotate-half (NeoX, HF) and
 * interleaved (llama.cpp's NORM for permuted Llama GGUFs). Optionally applies a per-head
 * RMSNorm first (Qwen3's q/k norm), fused so each head row is read once. */
#include <math.h>
#include <string.h>

#include "../simd.h"

void lmx_k_rope(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *x = n->src[0], *pos = n->src[1], *ff = n->src[2], *nw = n->src[3], *d = n->dst;
  const int nHead = n->ip[0], hd = n->ip[1], nRot = n->ip[2], interleaved = n->ip[3];
  const double base = n->fp[0];
  const float eps = n->fp[1];
  const int64_t T = x->ne1, R = T * nHead;
  int64_t lo, hi;
  lmx_split(R, 1, ith, nth, &lo, &hi);
  float buf[1024];
  for (int64_t r = lo; r < hi; r++) {
    int64_t t = r / nHead, h = r % nHead;
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
    const double p = ((const int32_t *)pos->data)[t];
    const int half = nRot / 2;
    for (int i = 0; i < half; i++) {
      double inv = pow(base, -2.0 * i / nRot);
      if (ff) inv /= ((const float *)ff->data)[i];
      double a = p * inv;
      float c = (float)cos(a), s = (float)sin(a);
      int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
      float x0 = buf[i0], x1 = buf[i1];
      dst[i0] = x0 * c - x1 * s;
      dst[i1] = x0 * s + x1 * c;
    }
    for (int i = nRot; i < hd; i++) dst[i] = buf[i];
  }
}
