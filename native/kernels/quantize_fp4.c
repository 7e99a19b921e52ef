/* lmx's own FP4 quantizers (what `lmx create --quantize nvfp4|mxfp4` writes), in C: the
 * same searches as src/engine/quant/fp4-quantize.ts, which stays as their executable
 * specification, with the same double-precision error sums, so the bytes are identical
 * (tested). Blocks are independent, so the pool splits them; each output byte has one
 * writer and the result does not depend on the thread count.
 *
 * NVFP4: a per-tensor scale g (chosen by lmx_nvfp4_tensor_scale), then for every
 * 16-element sub-block the UE4M3 code, among the neighbours of the one amax/6/g gives,
 * with the least (optionally importance-weighted) squared error. MXFP4: each block's
 * power-of-two scale among three around amax's, by the same criterion. Importance is per
 * column (an imatrix), shared by every row. */
#include <math.h>
#include <string.h>

#include "../lmx.h"

static const double E2M1[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6};

/* The block-scale codes tried below and above the one amax/6 gives. */
#define SEARCH_DOWN 10
#define SEARCH_UP 8

static double ue4m3(int b) {
  b &= 0x7f;
  if (b == 0 || b == 0x7f) return 0;
  const int e = (b >> 3) & 15, m = b & 7;
  return e == 0 ? m * 0x1p-9 : (1 + m / 8.0) * ldexp(1.0, e - 7);
}

/* ggml's encodeUE4M3, quirks included (see fp4-quantize.ts). */
static int encode_ue4m3(float v) {
  if (!(v > 0)) return 0;
  const float c = v < 448 ? v : 448;
  uint32_t bits;
  memcpy(&bits, &c, 4);
  const int E = (int)((bits >> 23) & 0xff) - 127;
  int e = E + 7;
  if (e <= 0) {
    const int m = (int)trunc((double)(c * 512.0f) + 0.5);
    const int mm = m < 7 ? m : 7;
    return mm < 1 ? 0 : mm;
  }
  if (e >= 15) return 0x7e;
  int m = (int)(((bits >> 20) & 7) + ((bits >> 19) & 1));
  if (m == 8) {
    m = 0;
    e++;
    if (e >= 15) return 0x7e;
  }
  return (e << 3) | m;
}

/* Nearest E2M1 magnitude code for a non-negative value in units of the scale (ties to the
 * smaller magnitude): the count of midpoints below it, without branches (they mispredict). */
static int nearest_magnitude(double v) {
  return (v > 0.25) + (v > 0.75) + (v > 1.25) + (v > 1.75) + (v > 2.5) + (v > 3.5) + (v > 5);
}

static int code_of(float x, double inv) {
  const int m = nearest_magnitude(fabs((double)x) * inv);
  return m | ((m != 0 && x < 0) << 3);
}

/* Weighted squared error of n values at x (columns from col) at a scale with nearest
 * codes; stops early past limit. */
static double group_error(const float *x, const float *imp, int64_t cols, int64_t col, int n, double scale, double limit) {
  double e = 0;
  if (scale <= 0) {
    for (int j = 0; j < n; j++) e += (imp ? imp[(col + j) % cols] : 1.0) * ((double)x[j] * x[j]);
    return e;
  }
  const double inv = 1 / scale;
  for (int j = 0; j < n; j++) {
    const double d = E2M1[code_of(x[j], inv)] * scale - x[j];
    e += (imp ? imp[(col + j) % cols] : 1.0) * d * d;
    if (e >= limit) return e;
  }
  return e;
}

/* One NVFP4 block of 64 values starting at element i of the tensor. */
static void nvfp4_block(const float *x, int64_t i, const float *imp, int64_t cols, float g, uint8_t *out) {
  for (int s = 0; s < 4; s++) {
    const float *xs = x + i + 16 * s;
    float amax = 0;
    for (int j = 0; j < 16; j++) amax = fabsf(xs[j]) > amax ? fabsf(xs[j]) : amax;
    int best = 0;
    if (amax > 0) {
      const int c0 = encode_ue4m3((float)((double)amax / 6 / g));
      double best_err = INFINITY;
      const int lo = c0 - SEARCH_DOWN > 1 ? c0 - SEARCH_DOWN : 1, hi = c0 + SEARCH_UP < 0x7e ? c0 + SEARCH_UP : 0x7e;
      for (int c = lo; c <= hi; c++) {
        const double err = group_error(xs, imp, cols, (i + 16 * s) % cols, 16, ue4m3(c) * g, best_err);
        if (err < best_err) {
          best_err = err;
          best = c;
        }
      }
    }
    out[s] = (uint8_t)best;
    const double inv = best ? 1 / (ue4m3(best) * g) : 0;
    for (int j = 0; j < 8; j++) out[4 + 8 * s + j] = (uint8_t)(code_of(xs[j], inv) | (code_of(xs[8 + j], inv) << 4));
  }
}

/* 2^(c - 127). */
static double e8m0(int c) {
  return ldexp(1.0, c - 127);
}

/* floor(log2(a)) for a finite a > 0, exactly. */
static int floor_log2(float a) {
  int e;
  frexpf(a, &e);
  return e - 1;
}

static void mxfp4_block(const float *x, int64_t i, const float *imp, int64_t cols, uint8_t *out) {
  const float *xb = x + i;
  float amax = 0;
  for (int j = 0; j < 32; j++) amax = fabsf(xb[j]) > amax ? fabsf(xb[j]) : amax;
  int e = 0;
  if (amax > 0) {
    const int e0 = floor_log2(amax) - 2 + 127;
    double best_err = INFINITY;
    for (int c = e0 - 1 > 1 ? e0 - 1 : 1; c <= (e0 + 1 < 254 ? e0 + 1 : 254); c++) {
      const double err = group_error(xb, imp, cols, i % cols, 32, e8m0(c), best_err);
      if (err < best_err) {
        best_err = err;
        e = c;
      }
    }
  }
  out[0] = (uint8_t)e;
  const double inv = amax > 0 ? 1 / e8m0(e) : 0;
  for (int j = 0; j < 16; j++) out[1 + j] = (uint8_t)(code_of(xb[j], inv) | (code_of(xb[16 + j], inv) << 4));
}

typedef struct {
  const float *x;
  const float *imp;
  int64_t cols, blocks;
  int32_t dtype;
  float g;
  uint8_t *out;
} fp4_job;

static void fp4_work(void *arg, int ith, int nth) {
  const fp4_job *j = (const fp4_job *)arg;
  const int64_t per = (j->blocks + nth - 1) / nth, lo = per * ith, hi = lo + per < j->blocks ? lo + per : j->blocks;
  for (int64_t b = lo; b < hi; b++) {
    if (j->dtype == LMX_NVFP4) nvfp4_block(j->x, 64 * b, j->imp, j->cols, j->g, j->out + 36 * b);
    else mxfp4_block(j->x, 32 * b, j->imp, j->cols, j->out + 17 * b);
  }
}

void lmx_quantize_fp4(int32_t dtype, const float *x, int64_t n, int64_t cols, const float *imp, float g, uint8_t *out) {
  fp4_job j = {x, imp, cols, n / (dtype == LMX_NVFP4 ? 64 : 32), dtype, g, out};
  lmx_pool_run(fp4_work, &j);
}

/* Total squared error of NVFP4 at tensor scale g over n values (in order, as the TS does). */
static double nvfp4_error(const float *x, int64_t n, int64_t cols, const float *imp, float g, uint8_t *q) {
  double e = 0;
  for (int64_t b = 0; b < n / 64; b++) {
    nvfp4_block(x, 64 * b, imp, cols, g, q);
    for (int s = 0; s < 4; s++) {
      const double d = ue4m3(q[s]) * g;
      for (int j = 0; j < 16; j++) {
        const int64_t i = 64 * b + 16 * s + j;
        const uint8_t byte = q[4 + 8 * s + (j & 7)];
        const int c = j < 8 ? byte & 15 : byte >> 4;
        const double diff = E2M1[c] * d - x[i];
        e += (imp ? imp[i % cols] : 1.0) * (diff * diff);
      }
    }
  }
  return e;
}

/* 2^(i/16) for i = -4..4, correctly rounded (fp4-quantize.ts has the same table). */
static const double OCTAVE_SIXTEENTHS[9] = {0.8408964152537145, 0.8781260801866497, 0.9170040432046712,
                                             0.9576032806985737, 1.0,                1.0442737824274138,
                                             1.0905077326652577, 1.1387886347566916, 1.189207115002721};

float lmx_nvfp4_tensor_scale(const float *x, int64_t n, int64_t cols, const float *imp, float *sample) {
  float amax = 0;
  for (int64_t i = 0; i < n; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
  const float g0 = amax > 0 ? (float)((double)amax / (6 * 448)) : 1;
  /* Judge the candidates on evenly spread blocks (every blocks/1024-th, so fewer than 2048
   * of them): enough to rank them. sample has room for 2048 blocks of values and, with
   * importance, their columns' weights. */
  const int64_t blocks = n / 64, step = blocks / 1024 > 1 ? blocks / 1024 : 1;
  const float *xs = x, *ws = imp;
  int64_t ns = n, wcols = cols;
  if (step > 1) {
    const int64_t k = blocks / step;
    float *sx = sample, *sw = imp ? sample + k * 64 : NULL;
    for (int64_t i = 0; i < k; i++) {
      memcpy(sx + i * 64, x + i * step * 64, 64 * sizeof(float));
      if (sw)
        for (int j = 0; j < 64; j++) sw[i * 64 + j] = imp[(i * step * 64 + j) % cols];
    }
    xs = sx;
    ws = sw;
    ns = k * 64;
    wcols = ns; /* the sampled weights are laid out per value */
  }
  double best = INFINITY;
  float g = g0;
  uint8_t q[36];
  for (int i = 0; i < 9; i++) {
    const float gi = (float)((double)g0 * OCTAVE_SIXTEENTHS[i]);
    const double e = nvfp4_error(xs, ns, wcols, ws, gi, q);
    if (e < best) {
      best = e;
      g = gi;
    }
  }
  return g;
}
