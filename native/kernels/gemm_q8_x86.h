/* The int8 GEMM's panel kernels for 8-row panels and 256-bit registers, as the body of
 * one x86 tier. gemm_q8.c includes this file once per tier after defining:
 *   GQ_ATTR                  the tier's target attribute
 *   GQ(name)                 name with the tier's suffix
 *   GQ_DP1(i, w, x)          i + the products of one group of 4 codes, per lane
 *   GQ_DP4(i, w0..w3, x, t)  i + the products of four groups against token t's codes
 *                            (x[4j + t] for group j), for codes of at most 32
 *   GQ_DPM(i, w0..w3, x, t, m) i + m * (the products of four groups of signed codes
 *                            against token t's codes as u8), m from int16 pairs (m, m)
 *   GQ_DPM2(...)             the same, for codes whose 16-bit sums allow only 2 groups
 *   GQ_DP4M(i, w0..w3, x, t, m) GQ_DP4's sum times m (int16 pairs (m, m))
 * Lane r of the accumulators is the panel's row r; the integer sums are exact on every
 * tier and the float steps are the same, so every tier gives the same bits. */

/* One panel of unsigned codes against one quad. */
static inline __attribute__((always_inline)) GQ_ATTR void GQ(panel_dots_u)(const uint8_t *panel, int64_t K, const int SB,
                                                                          const uint8_t *quad, float *out, int64_t os) {
  const int64_t nsb = K / SB;
  const float *pd = (const float *)(panel + 8 * K), *po = pd + 8 * nsb;
  const float *dxs = (const float *)(quad + 4 * K), *xos = dxs + 4 * nsb;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < nsb; b++) {
    __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256(), i2 = _mm256_setzero_si256(), i3 = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < SB / 16; j++) {
      const int64_t g = b * (SB / 4) + 4 * j;
      const __m256i w0 = _mm256_load_si256((const __m256i *)(panel + 32 * g));
      const __m256i w1 = _mm256_load_si256((const __m256i *)(panel + 32 * g + 32));
      const __m256i w2 = _mm256_load_si256((const __m256i *)(panel + 32 * g + 64));
      const __m256i w3 = _mm256_load_si256((const __m256i *)(panel + 32 * g + 96));
      const int32_t *x = (const int32_t *)(quad + 16 * g);
      i0 = GQ_DP4(i0, w0, w1, w2, w3, x, 0);
      i1 = GQ_DP4(i1, w0, w1, w2, w3, x, 1);
      i2 = GQ_DP4(i2, w0, w1, w2, w3, x, 2);
      i3 = GQ_DP4(i3, w0, w1, w2, w3, x, 3);
    }
    const __m256 d = _mm256_loadu_ps(pd + b * 8), o = _mm256_loadu_ps(po + b * 8);
    const float *dx = dxs + 4 * b, *xo = xos + 4 * b;
    a0 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo), _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(d, _mm256_broadcast_ss(dx)), a0));
    a1 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo + 1), _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 1)), a1));
    a2 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo + 2), _mm256_fmadd_ps(_mm256_cvtepi32_ps(i2), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 2)), a2));
    a3 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo + 3), _mm256_fmadd_ps(_mm256_cvtepi32_ps(i3), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 3)), a3));
  }
  _mm256_storeu_ps(out, a0);
  _mm256_storeu_ps(out + os, a1);
  _mm256_storeu_ps(out + 2 * os, a2);
  _mm256_storeu_ps(out + 3 * os, a3);
}

/* Sub-blocks of 32 with codes of at most 31, whose products over 4 groups still fit in 16
 * bits (4 * 2 * 31 * 127 < 32768): Q4_0, Q4_1, Q5_0, Q5_1, MXFP4. */
static GQ_ATTR void GQ(panel_dots_u32)(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  GQ(panel_dots_u)(panel, K, 32, quad, out, os);
}

/* Signed codes (Q8_0): |w| against x with w's signs. */
static GQ_ATTR void GQ(panel_dots_s)(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  enum { SB = 32 };
  const int64_t nsb = K / SB;
  const float *pd = (const float *)(panel + 8 * K);
  const float *dxs = (const float *)(quad + 4 * K);
  __m256 acc[4];
  for (int t = 0; t < 4; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nsb; b++) {
    __m256i is[4];
    for (int t = 0; t < 4; t++) is[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < SB / 4; j++) {
      const int64_t g = b * (SB / 4) + j;
      const __m256i w = _mm256_load_si256((const __m256i *)(panel + 32 * g)), aw = _mm256_sign_epi8(w, w);
      const int32_t *xq = (const int32_t *)(quad + 16 * g);
      for (int t = 0; t < 4; t++) is[t] = GQ_DP1(is[t], aw, _mm256_sign_epi8(_mm256_set1_epi32(xq[t]), w));
    }
    /* Q8_0 has no offsets (o = 0): one step per sub-block and token. */
    const __m256 d = _mm256_loadu_ps(pd + b * 8);
    for (int t = 0; t < 4; t++)
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[t]), _mm256_mul_ps(d, _mm256_broadcast_ss(dxs + 4 * b + t)), acc[t]);
  }
  for (int t = 0; t < 4; t++) _mm256_storeu_ps(out + t * os, acc[t]);
}

/* The multiplier form (gemm_q8.c, build_panel_mult): per block of AB values the integer
 * sum starts at the row's correction, takes each sub-block's sum times its multiplier
 * (G groups per 16-bit sum), and becomes a float once. */
static inline __attribute__((always_inline)) GQ_ATTR void GQ(panel_dots_mult)(const uint8_t *panel, int64_t K, const int AB,
                                                                             const int G, const uint8_t *quad, float *out,
                                                                             int64_t os) {
  const int n = AB / 16;
  const __m256i *pf = (const __m256i *)(panel + 8 * K);
  const float *dxs = (const float *)(quad + 4 * K);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / AB; b++) {
    const __m256i *f = pf + (n + 2) * b;
    const __m256i c = _mm256_loadu_si256(f + n);
    __m256i i0 = c, i1 = c, i2 = c, i3 = c;
#pragma GCC unroll 2
    for (int sb = 0; sb < n; sb++) {
      const int64_t g = AB / 4 * b + 4 * sb;
      const __m256i m = _mm256_loadu_si256(f + sb);
      const __m256i w0 = _mm256_load_si256((const __m256i *)(panel + 32 * g));
      const __m256i w1 = _mm256_load_si256((const __m256i *)(panel + 32 * g + 32));
      const __m256i w2 = _mm256_load_si256((const __m256i *)(panel + 32 * g + 64));
      const __m256i w3 = _mm256_load_si256((const __m256i *)(panel + 32 * g + 96));
      const int32_t *x = (const int32_t *)(quad + 16 * g);
      if (G == 4) {
        i0 = GQ_DPM(i0, w0, w1, w2, w3, x, 0, m);
        i1 = GQ_DPM(i1, w0, w1, w2, w3, x, 1, m);
        i2 = GQ_DPM(i2, w0, w1, w2, w3, x, 2, m);
        i3 = GQ_DPM(i3, w0, w1, w2, w3, x, 3, m);
      } else {
        i0 = GQ_DPM2(i0, w0, w1, w2, w3, x, 0, m);
        i1 = GQ_DPM2(i1, w0, w1, w2, w3, x, 1, m);
        i2 = GQ_DPM2(i2, w0, w1, w2, w3, x, 2, m);
        i3 = GQ_DPM2(i3, w0, w1, w2, w3, x, 3, m);
      }
    }
    const __m256 d = _mm256_loadu_ps((const float *)(f + n + 1));
    const float *dx = dxs + 4 * b;
    a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(d, _mm256_broadcast_ss(dx)), a0);
    a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 1)), a1);
    a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i2), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 2)), a2);
    a3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i3), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 3)), a3);
  }
  _mm256_storeu_ps(out, a0);
  _mm256_storeu_ps(out + os, a1);
  _mm256_storeu_ps(out + 2 * os, a2);
  _mm256_storeu_ps(out + 3 * os, a3);
}

/* NVFP4 (blocks of 32, codes up to 12: four groups per 16-bit sum; the VNNI tiers, which
 * define GQ_PAIRS, take it in the pair layout instead) and Q6_K (256, two). */
#ifndef GQ_PAIRS
static GQ_ATTR void GQ(panel_dots_m32)(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  GQ(panel_dots_mult)(panel, K, 32, 4, quad, out, os);
}
#endif

static GQ_ATTR void GQ(panel_dots_m256)(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  GQ(panel_dots_mult)(panel, K, 256, 2, quad, out, os);
}

/* Q4_K/Q5_K in K form (gemm_q8.c, build_panel_k4): per super-block of 256 the sub-blocks'
 * integer sums times their 6-bit scales are added in 32 bits and become a float once; the
 * offsets (mins) take a float step per 32 against the activations' code sums. */
static GQ_ATTR void GQ(panel_dots_k4)(const uint8_t *panel, int64_t K, const uint8_t *quad, float *out, int64_t os) {
  const __m256i *pf = (const __m256i *)(panel + 8 * K);
  const float *dxs = (const float *)(quad + 4 * K), *xos = dxs + 4 * (K / 32);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 256; b++) {
    const __m256i *f = pf + 17 * b;
    __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256(), i2 = _mm256_setzero_si256(), i3 = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int s = 0; s < 8; s++) {
      const __m256i m = _mm256_loadu_si256(f + s);
      for (int j = 0; j < 2; j++) {
        const int64_t g = 64 * b + 8 * s + 4 * j;
        const __m256i w0 = _mm256_load_si256((const __m256i *)(panel + 32 * g));
        const __m256i w1 = _mm256_load_si256((const __m256i *)(panel + 32 * g + 32));
        const __m256i w2 = _mm256_load_si256((const __m256i *)(panel + 32 * g + 64));
        const __m256i w3 = _mm256_load_si256((const __m256i *)(panel + 32 * g + 96));
        const int32_t *x = (const int32_t *)(quad + 16 * g);
        i0 = GQ_DP4M(i0, w0, w1, w2, w3, x, 0, m);
        i1 = GQ_DP4M(i1, w0, w1, w2, w3, x, 1, m);
        i2 = GQ_DP4M(i2, w0, w1, w2, w3, x, 2, m);
        i3 = GQ_DP4M(i3, w0, w1, w2, w3, x, 3, m);
      }
      const __m256 o = _mm256_loadu_ps((const float *)(f + 8 + s));
      const float *xo = xos + 4 * (8 * b + s);
      a0 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo), a0);
      a1 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo + 1), a1);
      a2 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo + 2), a2);
      a3 = _mm256_fmadd_ps(o, _mm256_broadcast_ss(xo + 3), a3);
    }
    const __m256 d = _mm256_loadu_ps((const float *)(f + 16));
    const float *dx = dxs + 4 * 8 * b;
    a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(d, _mm256_broadcast_ss(dx)), a0);
    a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 1)), a1);
    a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i2), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 2)), a2);
    a3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i3), _mm256_mul_ps(d, _mm256_broadcast_ss(dx + 3)), a3);
  }
  _mm256_storeu_ps(out, a0);
  _mm256_storeu_ps(out + os, a1);
  _mm256_storeu_ps(out + 2 * os, a2);
  _mm256_storeu_ps(out + 3 * os, a3);
}
