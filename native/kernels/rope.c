/* Rotary position embedding per head, both pairings: rotate-half (NeoX, HF) and
 * interleaved (llama.cpp's NORM for permuted Llama GGUFs). Optionally applies a per-head
 * RMSNorm first (Qwen3's q/k norm), fused so each head row is read once. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../simd.h"

#define MAX_HALF 512
/* Positions whose tables a thread keeps (direct-mapped by position): a prompt chunk's,
 * rotated by every layer's q and k. */
#define RC_POS 256

/* Per thread: the inverse frequencies of the last (base, nRot, factors) seen and the
 * cos/sin tables of the positions rotated since, so that the transcendental functions run
 * once per position and not per node: every layer's q and k rope of a decode step rotate
 * the same position, and those of a prompt chunk the same 256 or fewer (sin/cos in double
 * precision were ~3% of a 512-token prefill when each node computed its own). The tables
 * take 2 x nRot/2 floats per position (128 KiB per thread for heads of 128). */
typedef struct {
  double base;
  int n_rot, has_ff;
  float ff[MAX_HALF];
  double inv[MAX_HALF];
  int32_t tag[RC_POS]; /* the position in each slot, -1: none */
  float *tab;          /* RC_POS x (cos[half], sin[half]), or NULL if it could not be had */
  int tab_half;        /* the half tab was sized for */
} rope_cache;

static __thread rope_cache cache = {.n_rot = -1};

static void fill_tables(const rope_cache *c, int32_t pos, int half, float *ct, float *st) {
  for (int i = 0; i < half; i++) {
    const double a = pos * c->inv[i];
    ct[i] = (float)cos(a);
    st[i] = (float)sin(a);
  }
}

/* The cos and sin tables of node n's rotation at position pos into *cs and *sn: this
 * thread's, or computed into own_cs and own_sn when its tables could not be allocated. */
static void rope_tables(const lmx_node *n, int32_t pos, float *own_cs, float *own_sn, const float **cs, const float **sn) {
  const lmx_tensor *ff = n->src[2];
  const double base = n->fp[0];
  const int nRot = n->ip[2], half = nRot / 2;
  const float *f = ff ? (const float *)ff->data : NULL;
  rope_cache *c = &cache;
  if (c->n_rot != nRot || c->base != base || c->has_ff != (f != NULL) ||
      (f && memcmp(c->ff, f, sizeof(float) * (size_t)half) != 0)) {
    for (int i = 0; i < half; i++) {
      c->inv[i] = pow(base, -2.0 * i / nRot);
      if (f) c->inv[i] /= f[i];
    }
    if (f) memcpy(c->ff, f, sizeof(float) * (size_t)half);
    c->n_rot = nRot;
    c->base = base;
    c->has_ff = f != NULL;
    for (int s = 0; s < RC_POS; s++) c->tag[s] = -1;
  }
  if (c->tab_half != half) { /* a failed allocation is retried only for another width */
    free(c->tab);
    c->tab = (float *)malloc(sizeof(float) * 2 * (size_t)half * RC_POS);
    c->tab_half = half;
    for (int s = 0; s < RC_POS; s++) c->tag[s] = -1;
  }
  if (!c->tab) {
    fill_tables(c, pos, half, own_cs, own_sn);
    *cs = own_cs;
    *sn = own_sn;
    return;
  }
  const int slot = (int)((uint32_t)pos % RC_POS);
  float *ct = c->tab + (size_t)slot * 2 * (size_t)half, *st = ct + half;
  if (c->tag[slot] != pos || pos < 0) {
    fill_tables(c, pos, half, ct, st);
    c->tag[slot] = pos;
  }
  *cs = ct;
  *sn = st;
}

/* Threads split (token, head) pairs, so a decode step's heads are shared too. */
void lmx_k_rope(const lmx_node *n, int ith, int nth) {
  const lmx_tensor *x = n->src[0], *pos = n->src[1], *nw = n->src[3], *d = n->dst;
  const int nHead = n->ip[0], hd = n->ip[1], nRot = n->ip[2], interleaved = n->ip[3];
  const float eps = n->fp[1];
  const int half = nRot / 2;
  float buf[1024], own_cs[MAX_HALF], own_sn[MAX_HALF];
  int64_t lo, hi;
  lmx_split(x->ne1 * nHead, 1, ith, nth, &lo, &hi);
  for (int64_t u = lo; u < hi; u++) {
    const int64_t t = u / nHead;
    const int h = (int)(u % nHead);
    const float *cs, *sn;
    rope_tables(n, ((const int32_t *)pos->data)[t], own_cs, own_sn, &cs, &sn);
    const float *src = (const float *)(x->data + t * x->nb1) + h * hd;
    float *dst = (float *)(d->data + t * d->nb1) + h * hd;
    if (nw) lmx_rms_norm_row(src, (const float *)nw->data, eps, buf, hd);
    else memcpy(buf, src, sizeof(float) * hd);
    for (int i = 0; i < half; i++) {
      int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
      float x0 = buf[i0], x1 = buf[i1];
      dst[i0] = x0 * cs[i] - x1 * sn[i];
      dst[i1] = x0 * sn[i] + x1 * cs[i];
    }
    for (int i = nRot; i < hd; i++) dst[i] = buf[i];
  }
}
