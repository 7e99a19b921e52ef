/* Rotary position embedding per head, both pairings: rotate-half (NeoX, HF) and
 * interleaved (llama.cpp's NORM for permuted Llama GGUFs). Optionally applies a per-head
 * RMSNorm first (Qwen3's q/k norm), fused so each head row is read once. */
#include <math.h>
#include <string.h>

#include "../simd.h"

#define MAX_HALF 512

/* Per thread: the inverse frequencies of the last (base, nRot, factors) seen and the
 * cos/sin table of the last position. Every layer's q and k rope of a decode step rotates
 * the same position, so the transcendental functions run once per token, not per node. */
typedef struct {
  double base;
  int n_rot, has_ff, pos;
  float ff[MAX_HALF];
  double inv[MAX_HALF];
  float cs[MAX_HALF], sn[MAX_HALF];
} rope_cache;

static __thread rope_cache cache = {.n_rot = -1};

static void rope_tables(const lmx_node *n, int pos) {
  const lmx_tensor *ff = n->src[2];
  const double base = n->fp[0];
  const int nRot = n->ip[2], half = nRot / 2;
  const float *f = ff ? (const float *)ff->data : NULL;
  if (cache.n_rot != nRot || cache.base != base || cache.has_ff != (f != NULL) ||
      (f && memcmp(cache.ff, f, sizeof(float) * (size_t)half) != 0)) {
    for (int i = 0; i < half; i++) {
      cache.inv[i] = pow(base, -2.0 * i / nRot);
      if (f) cache.inv[i] /= f[i];
    }
    if (f) memcpy(cache.ff, f, sizeof(float) * (size_t)half);
    cache.n_rot = nRot;
    cache.base = base;
    cache.has_ff = f != NULL;
    cache.pos = -1;
  }
  if (cache.pos != pos) {
    for (int i = 0; i < half; i++) {
      const double a = pos * cache.inv[i];
      cache.cs[i] = (float)cos(a);
      cache.sn[i] = (float)sin(a);
    }
    cache.pos = pos;
  }
}

/* Threads split (token, head) pairs, so a decode step's heads are shared too. */
void lmx_k_rope(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *x = n->src[0], *pos = n->src[1], *nw = n->src[3], *d = n->dst;
  const int nHead = n->ip[0], hd = n->ip[1], nRot = n->ip[2], interleaved = n->ip[3];
  const float eps = n->fp[1];
  const int half = nRot / 2;
  float buf[1024];
  int64_t lo, hi;
  lmx_split(x->ne1 * nHead, 1, ith, nth, &lo, &hi);
  for (int64_t u = lo; u < hi; u++) {
    const int64_t t = u / nHead;
    const int h = (int)(u % nHead);
    rope_tables(n, ((const int32_t *)pos->data)[t]);
    const float *cs = cache.cs, *sn = cache.sn;
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
