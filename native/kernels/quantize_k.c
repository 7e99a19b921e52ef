/* The K-quant and legacy quantizers (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K), in C: the same
 * f32 arithmetic step by step as src/engine/quant/{k-quantize,q4-0,q8-0}.ts, which stay as
 * their executable specification (ggml's reference quantizers, and its importance-weighted
 * searches when an imatrix is given), so the bytes are identical (tested). This file must
 * be compiled without floating-point contraction (-std=c11 implies -ffp-contract=off): a
 * fused multiply-add would round differently. Rows are independent; the pool splits them. */
#include <math.h>
#include <string.h>

#include "../lmx.h"

#define EPS 1e-15 /* compared in double, as the TypeScript does */

/* Round to nearest, ties to even (ggml's nearest_int for the values that occur). */
static int nearest_int(float x) {
  const float v = x + 12582912.0f;
  return (int)((double)v - 12582912.0);
}

static int clampi(int v, int lo, int hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* Stores v as f16 at p; returns the stored value. */
static float put_f16(uint8_t *p, float v) {
  const uint16_t h = lmx_f32_to_f16(v);
  p[0] = (uint8_t)(h & 255);
  p[1] = (uint8_t)(h >> 8);
  return lmx_f16_to_f32(h);
}

/* Weighted search for x ~ scale * L + min, L in 0..nmax: returns scale, *neg_min = -min
 * (ggml's make_qkx2_quants; make_qkx3_quants with weights is the same search). */
static float make_qkx2(const float *x, const float *w, int n, int nmax, uint8_t *L, float rmin, float rdelta, int nstep,
                       float *neg_min) {
  float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w = sum_w + w[i];
    sum_x = sum_x + w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    memset(L, 0, (size_t)n);
    *neg_min = -min;
    return 0;
  }
  float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
  for (int i = 0; i < n; i++) {
    L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
    const float diff = scale * L[i] + min - x[i];
    best = best + w[i] * (diff * diff);
  }
  uint8_t aux[256];
  for (int is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; i++) {
      const int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
      aux[i] = (uint8_t)l;
      sum_l = sum_l + w[i] * l;
      sum_l2 = sum_l2 + w[i] * l * l;
      sum_xl = sum_xl + w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float mad = 0;
      for (int i = 0; i < n; i++) {
        const float diff = this_scale * aux[i] + this_min - x[i];
        mad = mad + w[i] * (diff * diff);
      }
      if (mad < best) {
        memcpy(L, aux, (size_t)n);
        best = mad;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

/* Signed fit x ~ scale * (L - nmax) weighted by x^2 (or by qw), L stored offset by nmax
 * (ggml's make_qx_quants with rmse_type 1). */
static float qx_fit(const float *x, int n, int nmax, float iscale, const float *qw, uint8_t *L, float *sumlx_out) {
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; i++) {
    const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    if (L) L[i] = (uint8_t)(l + nmax);
    const float w = qw ? qw[i] : x[i] * x[i];
    sumlx = sumlx + w * x[i] * l;
    suml2 = suml2 + w * l * l;
  }
  *sumlx_out = sumlx;
  return suml2;
}

static float make_qx(const float *x, int n, int nmax, uint8_t *L, const float *qw) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; i++) {
    const float ax = fabsf(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < EPS) {
    memset(L, 0, (size_t)n);
    return 0;
  }
  float sumlx, suml2 = qx_fit(x, n, nmax, -nmax / max, qw, L, &sumlx);
  float scale = suml2 ? sumlx / suml2 : 0, best = scale * sumlx;
  for (int is = -9; is <= 9; is++) {
    if (is == 0) continue;
    const float iscale = -(nmax + 0.1f * is) / max;
    suml2 = qx_fit(x, n, nmax, iscale, qw, NULL, &sumlx);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      qx_fit(x, n, nmax, iscale, qw, L, &sumlx);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/* Unsigned weighted fit x ~ scale * L, L in 0..nmax: a search over 9 scales, then passes
 * moving single codes while the fit improves (ggml's make_qp_quants). */
static float qp_mse(const float *x, const float *w, int n, int nmax, float iscale) {
  const float scale = 1 / iscale;
  float e = 0;
  for (int i = 0; i < n; i++) {
    const int l = nearest_int(iscale * x[i]) < nmax ? nearest_int(iscale * x[i]) : nmax;
    const float diff = x[i] - scale * l;
    e = e + w[i] * diff * diff;
  }
  return e;
}

static float make_qp(const float *x, int n, int nmax, uint8_t *L, const float *w) {
  float max = 0;
  for (int i = 0; i < n; i++)
    if (x[i] > max) max = x[i];
  if (max < EPS) {
    memset(L, 0, (size_t)n);
    return 0;
  }
  float iscale = nmax / max, best = qp_mse(x, w, n, nmax, iscale);
  for (int is = -4; is <= 4; is++) {
    if (is == 0) continue;
    const float c = (0.1f * is + nmax) / max, e = qp_mse(x, w, n, nmax, c);
    if (e < best) {
      best = e;
      iscale = c;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; i++) {
    const int l = nearest_int(iscale * x[i]);
    L[i] = (uint8_t)(l < nmax ? l : nmax);
    sumlx = sumlx + w[i] * x[i] * L[i];
    suml2 = suml2 + w[i] * L[i] * L[i];
  }
  for (int pass = 0; pass < 5; pass++) {
    int changed = 0;
    for (int i = 0; i < n; i++) {
      float slx = sumlx - w[i] * x[i] * L[i], sl2 = suml2 - w[i] * L[i] * L[i];
      if (slx > 0 && sl2 > 0) {
        const int q = nearest_int(x[i] * sl2 / slx), l = q < nmax ? q : nmax;
        if (l != L[i]) {
          slx = slx + w[i] * x[i] * l;
          sl2 = sl2 + w[i] * l * l;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = (uint8_t)l;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  return suml2 > 0 ? sumlx / suml2 : 0;
}

/* Importance of the value at flat index i (its column's), or NULL without an imatrix. */
#define IMP(i) (imp ? imp[(i) % cols] : 0)

/* One Q4_K (five = 0) or Q5_K super-block of the 256 values at flat index i0. */
static void k45_block(const float *xb, int64_t i0, const float *imp, int64_t cols, int five, uint8_t *out) {
  const int nmax = five ? 31 : 15;
  uint8_t L[256], ls[8], lm[8];
  float w[32], scales[8], mins[8], sw[8], max_scale = 0, max_min = 0, sigma2 = 0;
  if (imp) {
    for (int l = 0; l < 256; l++) sigma2 = sigma2 + xb[l] * xb[l];
    sigma2 = 2 * sigma2 / 256;
  }
  for (int j = 0; j < 8; j++) {
    const float *xs = xb + 32 * j;
    if (imp) {
      float sum = 0;
      for (int l = 0; l < 32; l++) {
        w[l] = IMP(i0 + 32 * j + l) * sqrtf(sigma2 + xs[l] * xs[l]);
        sum = sum + w[l];
      }
      sw[j] = sum;
    } else {
      float sum_x2 = 0;
      for (int l = 0; l < 32; l++) sum_x2 = sum_x2 + xs[l] * xs[l];
      const float av = sqrtf(sum_x2 / 32);
      for (int l = 0; l < 32; l++) w[l] = av + fabsf(xs[l]);
    }
    float mn;
    const float sc = imp    ? make_qkx2(xs, w, 32, nmax, L + 32 * j, -0.9f, 0.05f, 36, &mn)
                     : five ? make_qkx2(xs, w, 32, nmax, L + 32 * j, -0.5f, 0.1f, 15, &mn)
                            : make_qkx2(xs, w, 32, nmax, L + 32 * j, -1.0f, 0.1f, 20, &mn);
    scales[j] = sc;
    mins[j] = mn;
    if (sc > max_scale) max_scale = sc;
    if (mn > max_min) max_min = mn;
  }
  float d_block, m_block;
  if (imp) {
    d_block = make_qp(scales, 8, 63, ls, sw);
    m_block = make_qp(mins, 8, 63, lm, sw);
  } else {
    const float inv_scale = max_scale > 0 ? 63 / max_scale : 0, inv_min = max_min > 0 ? 63 / max_min : 0;
    for (int j = 0; j < 8; j++) {
      const int a = nearest_int(inv_scale * scales[j]) & 255, b = nearest_int(inv_min * mins[j]) & 255;
      ls[j] = (uint8_t)(a < 63 ? a : 63);
      lm[j] = (uint8_t)(b < 63 ? b : 63);
    }
    d_block = max_scale / 63;
    m_block = max_min / 63;
  }
  lmx_pack_scales_mins_k4(ls, lm, out + 4);
  const float d = put_f16(out, d_block), dmin = put_f16(out + 2, m_block);
  for (int j = 0; j < 8; j++) {
    const float D = d * ls[j];
    if (!D) continue;
    const float dm = dmin * lm[j];
    for (int i = 0; i < 32; i++) L[32 * j + i] = (uint8_t)clampi(nearest_int((xb[32 * j + i] + dm) / D), 0, nmax);
  }
  if (five) {
    uint8_t *qh = out + 16, *ql = out + 48;
    memset(qh, 0, 32);
    for (int c = 0; c < 4; c++)
      for (int j = 0; j < 32; j++) {
        int l1 = L[64 * c + j], l2 = L[64 * c + 32 + j];
        if (l1 > 15) {
          l1 -= 16;
          qh[j] |= (uint8_t)(1 << (2 * c));
        }
        if (l2 > 15) {
          l2 -= 16;
          qh[j] |= (uint8_t)(2 << (2 * c));
        }
        ql[32 * c + j] = (uint8_t)(l1 | (l2 << 4));
      }
  } else {
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++) out[16 + 32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

static void q6_k_block(const float *xb, int64_t i0, const float *imp, int64_t cols, uint8_t *out) {
  uint8_t L[256];
  float scales[16], qw[16], max_scale = 0, max_abs = 0;
  memset(out, 0, 210);
  for (int ib = 0; ib < 16; ib++) {
    if (imp)
      for (int i = 0; i < 16; i++) qw[i] = IMP(i0 + 16 * ib + i);
    const float sc = make_qx(xb + 16 * ib, 16, 32, L + 16 * ib, imp ? qw : NULL);
    scales[ib] = sc;
    if (fabsf(sc) > max_abs) {
      max_abs = fabsf(sc);
      max_scale = sc;
    }
  }
  if (max_abs < EPS) return; /* an all-zero block */
  const float iscale = -128 / max_scale, d = put_f16(out + 208, 1 / iscale);
  int8_t *sc = (int8_t *)(out + 192);
  for (int ib = 0; ib < 16; ib++) {
    const int v = nearest_int(iscale * scales[ib]);
    sc[ib] = (int8_t)(v < 127 ? v : 127);
  }
  for (int j = 0; j < 16; j++) {
    const float D = d * sc[j];
    if (!D) continue;
    for (int i = 0; i < 16; i++) L[16 * j + i] = (uint8_t)(clampi(nearest_int(xb[16 * j + i] / D), -32, 31) + 32);
  }
  for (int h = 0; h < 2; h++) {
    uint8_t *ql = out + 64 * h, *qh = out + 128 + 32 * h;
    const int e = 128 * h;
    for (int l = 0; l < 32; l++) {
      const int q1 = L[e + l], q2 = L[e + l + 32], q3 = L[e + l + 64], q4 = L[e + l + 96];
      ql[l] = (uint8_t)((q1 & 15) | ((q3 & 15) << 4));
      ql[l + 32] = (uint8_t)((q2 & 15) | ((q4 & 15) << 4));
      qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

static void q8_0_block(const float *xb, uint8_t *out) {
  float amax = 0;
  for (int j = 0; j < 32; j++) amax = fabsf(xb[j]) > amax ? fabsf(xb[j]) : amax;
  const float d = amax / 127, id = d ? 1 / d : 0;
  put_f16(out, d);
  for (int j = 0; j < 32; j++) out[2 + j] = (uint8_t)(int)roundf(xb[j] * id);
}

void lmx_row_to_q8_0(const float *src, uint8_t *dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; b++) q8_0_block(src + 32 * b, dst + 34 * b);
}

static void q4_0_block(const float *xb, uint8_t *out) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; j++)
    if (fabsf(xb[j]) > amax) {
      amax = fabsf(xb[j]);
      max = xb[j];
    }
  const float d = max / -8, id = d ? 1 / d : 0;
  put_f16(out, d);
  for (int j = 0; j < 16; j++) {
    const int a = (int)(xb[j] * id + 8.5f), b = (int)(xb[16 + j] * id + 8.5f);
    out[2 + j] = (uint8_t)((a < 15 ? a : 15) | ((b < 15 ? b : 15) << 4));
  }
}

static void q4_1_block(const float *xb, uint8_t *out) {
  float min = INFINITY, max = -INFINITY;
  for (int j = 0; j < 32; j++) {
    if (xb[j] < min) min = xb[j];
    if (xb[j] > max) max = xb[j];
  }
  const float d = (max - min) / 15, id = d ? 1 / d : 0;
  put_f16(out, d);
  put_f16(out + 2, min);
  for (int j = 0; j < 16; j++) {
    const int a = (int)((xb[j] - min) * id + 0.5f), b = (int)((xb[16 + j] - min) * id + 0.5f);
    out[4 + j] = (uint8_t)((a < 15 ? a : 15) | ((b < 15 ? b : 15) << 4));
  }
}

/* Q4_0 / Q4_1 with importance: weights importance x sqrt(sigma2 + x^2), sigma2 the row's mean
 * square; Q4_0's scale by make_qx, Q4_1's scale and min by make_qkx2. */
static void q4_weighted_row(const float *x, int64_t i0, const float *imp, int64_t cols, int q41, uint8_t *out) {
  float sum_x2 = 0, w[32];
  uint8_t L[32];
  for (int64_t j = 0; j < cols; j++) sum_x2 = sum_x2 + x[j] * x[j];
  const float sigma2 = sum_x2 / (float)cols;
  for (int64_t b = 0; b < cols / 32; b++) {
    const float *xb = x + 32 * b;
    for (int j = 0; j < 32; j++) w[j] = IMP(i0 + 32 * b + j) * sqrtf(sigma2 + xb[j] * xb[j]);
    uint8_t *o = out + b * (q41 ? 20 : 18);
    if (q41) {
      float neg_min;
      const float d = make_qkx2(xb, w, 32, 15, L, -0.9f, 0.05f, 36, &neg_min);
      put_f16(o, d);
      put_f16(o + 2, -neg_min);
      o += 4;
    } else {
      put_f16(o, make_qx(xb, 32, 8, L, w));
      o += 2;
    }
    for (int j = 0; j < 16; j++) o[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
  }
}

typedef struct {
  int32_t dtype;
  const float *x, *imp;
  int64_t rows, cols;
  uint8_t *out;
} quant_job;

static void quant_rows(void *arg, int ith, int nth) {
  const quant_job *j = (const quant_job *)arg;
  const int64_t per = (j->rows + nth - 1) / nth, lo = per * ith, hi = lo + per < j->rows ? lo + per : j->rows;
  const int bs = lmx_block_size(j->dtype), bb = lmx_block_bytes(j->dtype);
  const int64_t rb = j->cols / bs * bb;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = j->x + r * j->cols, *imp = j->imp;
    const int64_t cols = j->cols, i0 = r * cols;
    uint8_t *out = j->out + r * rb;
    if (imp && (j->dtype == LMX_Q4_0 || j->dtype == LMX_Q4_1)) {
      q4_weighted_row(x, i0, imp, cols, j->dtype == LMX_Q4_1, out);
      continue;
    }
    for (int64_t b = 0; b < cols / bs; b++) {
      const float *xb = x + b * bs;
      uint8_t *o = out + b * bb;
      switch (j->dtype) {
        case LMX_Q8_0: q8_0_block(xb, o); break;
        case LMX_Q4_0: q4_0_block(xb, o); break;
        case LMX_Q4_1: q4_1_block(xb, o); break;
        case LMX_Q4_K: k45_block(xb, i0 + b * bs, imp, cols, 0, o); break;
        case LMX_Q5_K: k45_block(xb, i0 + b * bs, imp, cols, 1, o); break;
        default: q6_k_block(xb, i0 + b * bs, imp, cols, o); break;
      }
    }
  }
}

int lmx_quantize_rows(int32_t dtype, const float *x, int64_t rows, int64_t cols, const float *imp, uint8_t *out) {
  if (dtype != LMX_Q8_0 && dtype != LMX_Q4_0 && dtype != LMX_Q4_1 && dtype != LMX_Q4_K && dtype != LMX_Q5_K &&
      dtype != LMX_Q6_K)
    return 0;
  if (cols % lmx_block_size(dtype)) return 0;
  quant_job j = {dtype, x, imp, rows, cols, out};
  lmx_pool_run(quant_rows, &j);
  return 1;
}
