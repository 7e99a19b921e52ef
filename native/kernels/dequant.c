/* Block-quantized rows to f32, one decoder per format, bit-exact with ggml and with the
 * TypeScript references in src/engine/quant/. Each product of scales and codes is exact
 * in f32, so the only rounding is the final subtraction of a min (as in ggml). */
#include <math.h>
#include <string.h>

#include "../simd.h"

static const float E2M1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, -0.5f, -1, -1.5f, -2, -3, -4, -6};

static float ue4m3(uint8_t b) {
  b &= 0x7f;
  if (b == 0 || b == 0x7f) return 0;
  int e = (b >> 3) & 15, m = b & 7;
  return e == 0 ? (float)m * (1.0f / 512) : (1 + m / 8.0f) * ldexpf(1.0f, e - 7);
}

const float *lmx_ue4m3_half(void) {
  static float table[256];
  static volatile int ready; /* filling twice writes the same values: a race is benign */
  if (!ready) {
    for (int b = 0; b < 256; b++) table[b] = 0.5f * ue4m3((uint8_t)b);
    ready = 1;
  }
  return table;
}

static void q8_0(const uint8_t *b, float *y) {
  const float d = lmx_f16_le(b);
  for (int j = 0; j < 32; j++) y[j] = (int8_t)b[2 + j] * d;
}

static void q4_0(const uint8_t *b, float *y) {
  const float d = lmx_f16_le(b);
  for (int j = 0; j < 16; j++) {
    y[j] = ((b[2 + j] & 15) - 8) * d;
    y[j + 16] = ((b[2 + j] >> 4) - 8) * d;
  }
}

static void q4_1(const uint8_t *b, float *y) {
  const float d = lmx_f16_le(b), m = lmx_f16_le(b + 2);
  for (int j = 0; j < 16; j++) {
    y[j] = (b[4 + j] & 15) * d + m;
    y[j + 16] = (b[4 + j] >> 4) * d + m;
  }
}

static void q5_codes(const uint8_t *qh4, const uint8_t *qs, int *q) {
  uint32_t h;
  memcpy(&h, qh4, 4);
  for (int j = 0; j < 16; j++) {
    q[j] = (qs[j] & 15) | (((h >> j) & 1) << 4);
    q[j + 16] = (qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4);
  }
}

static void q5_0(const uint8_t *b, float *y) {
  const float d = lmx_f16_le(b);
  int q[32];
  q5_codes(b + 2, b + 6, q);
  for (int j = 0; j < 32; j++) y[j] = (q[j] - 16) * d;
}

static void q5_1(const uint8_t *b, float *y) {
  const float d = lmx_f16_le(b), m = lmx_f16_le(b + 2);
  int q[32];
  q5_codes(b + 4, b + 8, q);
  for (int j = 0; j < 32; j++) y[j] = q[j] * d + m;
}

static void q4_k(const uint8_t *b, float *y) {
  const float d = lmx_f16_le(b), dmin = lmx_f16_le(b + 2);
  for (int c = 0; c < 4; c++) {
    int sc0, m0, sc1, m1;
    lmx_scale_min_k4(b + 4, 2 * c, &sc0, &m0);
    lmx_scale_min_k4(b + 4, 2 * c + 1, &sc1, &m1);
    const float d0 = d * sc0, n0 = dmin * m0, d1 = d * sc1, n1 = dmin * m1;
    for (int l = 0; l < 32; l++) {
      const uint8_t q = b[16 + 32 * c + l];
      y[64 * c + l] = d0 * (q & 15) - n0;
      y[64 * c + 32 + l] = d1 * (q >> 4) - n1;
    }
  }
}

static void q5_k(const uint8_t *b, float *y) {
  const float d = lmx_f16_le(b), dmin = lmx_f16_le(b + 2);
  for (int c = 0; c < 4; c++) {
    int sc0, m0, sc1, m1;
    lmx_scale_min_k4(b + 4, 2 * c, &sc0, &m0);
    lmx_scale_min_k4(b + 4, 2 * c + 1, &sc1, &m1);
    const float d0 = d * sc0, n0 = dmin * m0, d1 = d * sc1, n1 = dmin * m1;
    for (int l = 0; l < 32; l++) {
      const uint8_t q = b[48 + 32 * c + l], h = b[16 + l];
      y[64 * c + l] = d0 * ((q & 15) | (((h >> (2 * c)) & 1) << 4)) - n0;
      y[64 * c + 32 + l] = d1 * ((q >> 4) | (((h >> (2 * c + 1)) & 1) << 4)) - n1;
    }
  }
}

static void q6_k(const uint8_t *b, float *y) {
  const float d = lmx_f16_le(b + 208);
  const int8_t *sc = (const int8_t *)(b + 192);
  for (int h = 0; h < 2; h++) {
    float *e = y + 128 * h;
    for (int l = 0; l < 32; l++) {
      const uint8_t L = b[64 * h + l], L2 = b[64 * h + 32 + l], H = b[128 + 32 * h + l];
      const int base = 128 * h + l;
      e[l] = d * sc[base >> 4] * (((L & 15) | ((H & 3) << 4)) - 32);
      e[32 + l] = d * sc[(base + 32) >> 4] * (((L2 & 15) | (((H >> 2) & 3) << 4)) - 32);
      e[64 + l] = d * sc[(base + 64) >> 4] * (((L >> 4) | (((H >> 4) & 3) << 4)) - 32);
      e[96 + l] = d * sc[(base + 96) >> 4] * (((L2 >> 4) | (((H >> 6) & 3) << 4)) - 32);
    }
  }
}

static void mxfp4(const uint8_t *b, float *y) {
  const float s = ldexpf(1.0f, (int)b[0] - 127);
  for (int j = 0; j < 16; j++) {
    y[j] = E2M1[b[1 + j] & 15] * s;
    y[j + 16] = E2M1[b[1 + j] >> 4] * s;
  }
}

static void nvfp4(const uint8_t *b, float *y) {
  for (int s = 0; s < 4; s++) {
    const float d = ue4m3(b[s]);
    for (int j = 0; j < 8; j++) {
      const uint8_t q = b[4 + 8 * s + j];
      y[16 * s + j] = E2M1[q & 15] * d;
      y[16 * s + j + 8] = E2M1[q >> 4] * d;
    }
  }
}

int lmx_block_size(int32_t dtype) {
  switch (dtype) {
    case LMX_Q4_K: case LMX_Q5_K: case LMX_Q6_K: case LMX_Q4_K_I: case LMX_Q6_K_I: case LMX_Q8_0_I: case LMX_Q4_K_R16: case LMX_Q6_K_R16: return 256;
    case LMX_NVFP4: return 64;
    case LMX_NVFP4_I: return 128;
    case LMX_Q4_0: case LMX_Q4_1: case LMX_Q5_0: case LMX_Q5_1: case LMX_Q8_0: case LMX_MXFP4: return 32;
    default: return 1;
  }
}

int lmx_block_bytes(int32_t dtype) {
  switch (dtype) {
    case LMX_Q4_0: return 18;
    case LMX_Q4_1: return 20;
    case LMX_Q5_0: return 22;
    case LMX_Q5_1: return 24;
    case LMX_Q8_0: return 34;
    case LMX_Q4_K: case LMX_Q4_K_I: case LMX_Q4_K_R16: return 144; /* Q4_K_R16: per row of a group */
    case LMX_Q5_K: return 176;
    case LMX_Q6_K: case LMX_Q6_K_I: case LMX_Q6_K_R16: return 210; /* Q6_K_R16: per row of a group */
    case LMX_MXFP4: return 17;
    case LMX_NVFP4: return 36;
    case LMX_NVFP4_I: return 72;
    case LMX_Q8_0_I: return 272;
    case LMX_F32: case LMX_I32: return 4;
    default: return 2;
  }
}

int64_t lmx_row_bytes(int32_t dtype, int64_t n) {
  return n / lmx_block_size(dtype) * lmx_block_bytes(dtype);
}

void lmx_dequant_row(const void *src, int32_t dtype, float *dst, int64_t n) {
  void (*f)(const uint8_t *, float *);
  switch (dtype) {
    case LMX_Q4_0: f = q4_0; break;
    case LMX_Q4_1: f = q4_1; break;
    case LMX_Q5_0: f = q5_0; break;
    case LMX_Q5_1: f = q5_1; break;
    case LMX_Q8_0: f = q8_0; break;
    case LMX_Q4_K: f = q4_k; break;
    case LMX_Q5_K: f = q5_k; break;
    case LMX_Q6_K: f = q6_k; break;
    case LMX_MXFP4: f = mxfp4; break;
    case LMX_NVFP4: f = nvfp4; break;
    case LMX_Q4_K_I: case LMX_Q6_K_I: case LMX_NVFP4_I: case LMX_Q8_0_I: {
      /* Rarely on a hot path (rows of a tied embedding): each block back in GGUF order. */
      const int bb = lmx_block_bytes(dtype), bs = lmx_block_size(dtype);
      uint8_t blk[272];
      for (int64_t i = 0; i < n / bs; i++) {
        lmx_deinterleave_block(dtype, (const uint8_t *)src + i * bb, blk);
        if (dtype == LMX_Q8_0_I) {
          for (int b = 0; b < 8; b++) q8_0(blk + 34 * b, dst + 256 * i + 32 * b);
        } else if (dtype == LMX_NVFP4_I) {
          nvfp4(blk, dst + 128 * i);
          nvfp4(blk + 36, dst + 128 * i + 64);
        } else {
          (dtype == LMX_Q4_K_I ? q4_k : q6_k)(blk, dst + 256 * i);
        }
      }
      return;
    }
    default: return;
  }
  const int bs = lmx_block_size(dtype), bb = lmx_block_bytes(dtype);
  const uint8_t *p = (const uint8_t *)src;
  for (int64_t i = 0; i < n / bs; i++) f(p + i * bb, dst + i * bs);
}
