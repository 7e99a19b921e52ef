/* Fused int8 dots of one block-quantized weight row with an activation row quantized
 * once per row (decode), as the body of one x86 tier. qdot.c includes this file once per
 * tier after defining:
 *   QD_ATTR            the tier's target attribute
 *   QD(name)           name with the tier's suffix
 *   QD_DPBUSD(a, u, s) a + the sums of 4 products u8 x s8, per int32 lane
 *   QD_DPWSSD(a, p, q) a + the sums of 2 products i16 x i16, per int32 lane
 * AVX2 spells the last two maddubs + madd + add; the VNNI tiers have one instruction for
 * each. No maddubs sum here can saturate (codes <= 63 in magnitude where unsigned, or the
 * sign trick keeps |w| <= 128 against |x| <= 127), and AVX2 adds int16 sums before
 * widening only where their bound is stated (QD_PAIRS16), so every tier computes the same
 * integers and, with the float steps in the same order, the same bits. */

/* The nibbles of 16 bytes in one register: the low ones in the low half, the high ones in
 * the high half (a broadcast load and per-qword shifts: no lane-crossing shuffle). For a
 * Q4/Q5/MXFP4 block body those are elements 0-15 and 16-31, in order. */
static inline QD_ATTR __m256i QD(nibbles)(const uint8_t *qs) {
  const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
  return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(15));
}

/* Bit i of the 32 bits at p as byte i: 16 where set, else 0 (Q5_0/Q5_1's fifth bits). */
static inline QD_ATTR __m256i QD(fifth_bits)(const uint8_t *p) {
  uint32_t h;
  memcpy(&h, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32((int)h),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
}

/* Blocks of 32 with one f16 scale d: Q8_0 (signed codes, by the sign trick: |w| against x
 * with w's signs), Q4_0 (-8 offset), Q4_1 (min m), Q5_0 (fifth bit, -16 offset), Q5_1
 * (fifth bit, min m). w = d * code + o, so the dot is d*dx*sum(code*x) + o*dx*sum(x).
 * Blocks go four at a time: their f16 scales (and Q4_1/Q5_1 mins) are converted together,
 * the scales broadcast from memory (a load, not a shuffle on the vector ports, which the
 * products keep busy), and the four offset terms (o = -8d, -16d or m) go into one vector
 * fma against the per-32 code sums, so no scalar chain runs through the loop. */
static inline uint64_t QD(f16x4)(const uint8_t *p, int bytes) {
  uint16_t h[4];
  for (int j = 0; j < 4; j++) memcpy(&h[j], p + bytes * j, 2);
  return (uint64_t)h[0] | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 32 | (uint64_t)h[3] << 48;
}

/* One block's integer products sum(code * x), spread over 8 lanes. */
static inline __attribute__((always_inline)) QD_ATTR __m256i QD(block32)(const uint8_t *p, const int8_t *x, const int type) {
  const __m256i xq = _mm256_loadu_si256((const __m256i *)x);
  if (type == LMX_Q8_0) {
    const __m256i wq = _mm256_loadu_si256((const __m256i *)(p + 2));
    return QD_DPBUSD(_mm256_setzero_si256(), _mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
  }
  const int min = type == LMX_Q4_1 || type == LMX_Q5_1, five = type == LMX_Q5_0 || type == LMX_Q5_1;
  const int qh = min ? 4 : 2, qs = qh + (five ? 4 : 0);
  __m256i c = QD(nibbles)(p + qs);
  if (five) c = _mm256_or_si256(c, QD(fifth_bits)(p + qh));
  return QD_DPBUSD(_mm256_setzero_si256(), c, xq);
}

static inline __attribute__((always_inline)) QD_ATTR float QD(qdot_block32)(const int8_t *qx, const float *dx,
                                                                             const int32_t *s16, const uint8_t *w,
                                                                             int64_t K, const int type) {
  const int min = type == LMX_Q4_1 || type == LMX_Q5_1, offsets = type != LMX_Q8_0;
  const int bytes = type == LMX_Q8_0 ? 34 : type == LMX_Q4_0 ? 18 : type == LMX_Q4_1 ? 20 : type == LMX_Q5_0 ? 22 : 24;
  const float off = type == LMX_Q4_0 ? -8.0f : type == LMX_Q5_0 ? -16.0f : 0;
  const int16_t *h32 = lmx_x8_sums32(s16, K);
  const int64_t nb = K / 32;
  const int pf = LMX_PREFETCH_BYTES;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m128 oacc = _mm_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const uint8_t *p = w + b * bytes;
    lmx_prefetch_at(p + pf, 4 * bytes);
    const __m128 dx4 = _mm_loadu_ps(dx + b);
    const __m128 d4 = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)QD(f16x4)(p, bytes)));
    float k[4];
    _mm_storeu_ps(k, _mm_mul_ps(d4, dx4));
    if (offsets) {
      const __m128 o4 = min ? _mm_cvtph_ps(_mm_cvtsi64_si128((long long)QD(f16x4)(p + 2, bytes))) : _mm_mul_ps(d4, _mm_set1_ps(off));
      const __m128 sx = _mm_cvtepi32_ps(_mm_cvtepi16_epi32(_mm_loadl_epi64((const __m128i *)(h32 + b))));
      oacc = _mm_fmadd_ps(_mm_mul_ps(o4, dx4), sx, oacc);
    }
    for (int j = 0; j < 4; j++) {
      const __m256i i = QD(block32)(p + bytes * j, qx + 32 * (b + j), type);
      if (j & 1) acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_broadcast_ss(k + j), acc1);
      else acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_broadcast_ss(k + j), acc0);
    }
  }
  float tail = 0;
  for (; b < nb; b++) {
    const uint8_t *p = w + b * bytes;
    const float d = lmx_f16_avx2(p);
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(QD(block32)(p, qx + 32 * b, type)), _mm256_set1_ps(d * dx[b]), acc0);
    if (offsets) tail += (min ? lmx_f16_avx2(p + 2) : d * off) * dx[b] * (float)h32[b];
  }
  const float dots = lmx_hsum8(_mm256_add_ps(acc0, acc1));
  return offsets ? dots + lmx_hsum4(oacc) + tail : dots;
}

static inline __attribute__((always_inline)) QD_ATTR float QD(qdot_q8_0)(const int8_t *qx, const float *dx,
                                                                         const int32_t *s16, const uint8_t *w, int64_t K) {
  return QD(qdot_block32)(qx, dx, s16, w, K, LMX_Q8_0);
}

/* Q8_0_I (interleave.c): groups of 8 Q8_0 blocks, their 8 f16 scales first. Each block's
 * integer sum is exact (AVX2: |w| against x with w's signs; VNNI: w + 128, unsigned,
 * against x, less 128 times the block's activation sum), the 8 sums are gathered into one
 * register by horizontal adds, and the group takes one float step: its scales converted
 * together times the 8 activation scales. Q8_0 gathers 4 scales with scalar loads and
 * takes a float step per block.
 * The dots of Q8_0_I, Q4_K_I, Q6_K_I, NVFP4_I, Q4_K and Q5_K take nt <= QD_TILE tokens
 * of a decode batch at once (nt a constant where inlined; records xs bytes apart): each
 * block's codes and scales are unpacked once for all of them, and every token takes
 * exactly the integer and float steps it takes alone (nt = 1), so gets the same bits. */
#define QD_TILE 4
/* qdot_X, the one-token dot the decode loop calls, as qdot_X_tile at nt = 1. */
#define QD_ONE_TOKEN(X)                                                                                       \
  static inline __attribute__((always_inline)) QD_ATTR float QD(qdot_##X)(const int8_t *qx, const float *dx,  \
                                                                          const int32_t *s16, const uint8_t *w, \
                                                                          int64_t K) {                        \
    (void)dx;                                                                                                 \
    (void)s16;                                                                                                \
    float out;                                                                                                \
    QD(qdot_##X##_tile)(qx, 0, 1, w, K, &out, 0);                                                             \
    return out;                                                                                               \
  }

static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q8_0_i_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                               const uint8_t *w, int64_t K, float *out,
                                                                               int64_t os) {
  const int pf = LMX_PREFETCH_BYTES;
  const float *dx[QD_TILE];
#ifndef QD_PAIRS16
  const int16_t *h32[QD_TILE];
#endif
  __m256 acc[QD_TILE];
  for (int t = 0; t < nt; t++) {
    dx[t] = (const float *)(x8 + t * xs + K);
#ifndef QD_PAIRS16
    h32[t] = lmx_x8_sums32((const int32_t *)(dx[t] + K / 32), K);
#endif
    acc[t] = _mm256_setzero_ps();
  }
  for (int64_t g = 0; g < K / 256; g++) {
    const uint8_t *p = w + g * 272;
    lmx_prefetch_at(p + pf, 272);
    __m256i wq[8];
    for (int b = 0; b < 8; b++) {
      wq[b] = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * b));
#ifndef QD_PAIRS16
      wq[b] = _mm256_xor_si256(wq[b], _mm256_set1_epi8((char)0x80));
#endif
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    for (int t = 0; t < nt; t++) {
      const int8_t *x = x8 + t * xs + 256 * g;
      __m256i s[8];
      for (int b = 0; b < 8; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)(x + 32 * b));
#ifdef QD_PAIRS16
        s[b] = QD_DPBUSD(_mm256_setzero_si256(), _mm256_sign_epi8(wq[b], wq[b]), _mm256_sign_epi8(xq, wq[b]));
#else
        s[b] = QD_DPBUSD(_mm256_setzero_si256(), wq[b], xq);
#endif
      }
      /* Per 128-bit lane the four blocks' half sums, then the two halves added: block j's
       * sum in lane j. */
      const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
      const __m256i c = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
      __m256i r = _mm256_add_epi32(_mm256_permute2x128_si256(a, c, 0x20), _mm256_permute2x128_si256(a, c, 0x31));
#ifndef QD_PAIRS16
      r = _mm256_sub_epi32(r, _mm256_slli_epi32(_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(h32[t] + 8 * g))), 7));
#endif
      const __m256 k = _mm256_mul_ps(d, _mm256_loadu_ps(dx[t] + 8 * g));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(r), k, acc[t]);
    }
  }
  for (int t = 0; t < nt; t++) out[t * os] = lmx_hsum8(acc[t]);
}

QD_ONE_TOKEN(q8_0_i)

static inline __attribute__((always_inline)) QD_ATTR float QD(qdot_q4_0)(const int8_t *qx, const float *dx,
                                                                         const int32_t *s16, const uint8_t *w, int64_t K) {
  return QD(qdot_block32)(qx, dx, s16, w, K, LMX_Q4_0);
}

static inline __attribute__((always_inline)) QD_ATTR float QD(qdot_q4_1)(const int8_t *qx, const float *dx,
                                                                         const int32_t *s16, const uint8_t *w, int64_t K) {
  return QD(qdot_block32)(qx, dx, s16, w, K, LMX_Q4_1);
}

static inline __attribute__((always_inline)) QD_ATTR float QD(qdot_q5_0)(const int8_t *qx, const float *dx,
                                                                         const int32_t *s16, const uint8_t *w, int64_t K) {
  return QD(qdot_block32)(qx, dx, s16, w, K, LMX_Q5_0);
}

static inline __attribute__((always_inline)) QD_ATTR float QD(qdot_q5_1)(const int8_t *qx, const float *dx,
                                                                         const int32_t *s16, const uint8_t *w, int64_t K) {
  return QD(qdot_block32)(qx, dx, s16, w, K, LMX_Q5_1);
}

/* K-quants against Q8_K-style activations (one scale per 256): the products of each 32
 * (Q4_K/Q5_K) or 16 (Q6_K) elements are weighted by their integer sub-block scale and
 * summed as int32 over the whole super-block, which is converted to float once; the
 * offsets (Q4_K/Q5_K mins, Q6_K's -32) come from the per-16 activation sums, also in
 * integers. */

/* Q4_K and Q5_K share everything but where the codes come from (Q5_K: fifth bits in qh,
 * bit 2c for the low nibbles of chunk c, 2c+1 for the high ones). Scales and mins are
 * unpacked with scalar integer operations (lmx_scales_mins_k4) and each sub-block's scale
 * is spread over a register by a byte shuffle. The mins term is summed per lane in a
 * separate float accumulator and reduced once per row. */
static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_k4_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                           const uint8_t *w, int64_t K, float *out,
                                                                           int64_t os, const int five) {
  const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
  const int bytes = five ? 176 : 144, qoff = five ? 48 : 16, pf = LMX_PREFETCH_BYTES;
  const float *dx[QD_TILE];
  const int16_t *h32[QD_TILE];
  __m256 acc[QD_TILE];
  __m128 macc[QD_TILE];
  for (int t = 0; t < nt; t++) {
    dx[t] = (const float *)(x8 + t * xs + K);
    h32[t] = lmx_x8_sums32((const int32_t *)(dx[t] + K / 32), K);
    acc[t] = _mm256_setzero_ps();
    macc[t] = _mm_setzero_ps();
  }
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * bytes;
    lmx_prefetch_at(p + pf, bytes);
    uint64_t scales, mins;
    lmx_scales_mins_k4(p + 4, &scales, &mins);
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)scales)));
    const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(p + 16)) : _mm256_setzero_si256();
    __m256i sumi[QD_TILE];
    for (int t = 0; t < nt; t++) sumi[t] = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      __m256i q = _mm256_loadu_si256((const __m256i *)(p + qoff + 32 * c));
      __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      if (five) {
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
      }
      const __m256i s0 = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(((4 * c + 1) << 8) | (4 * c))));
      const __m256i s1 = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(((4 * c + 3) << 8) | (4 * c + 2))));
      for (int t = 0; t < nt; t++) {
        const int8_t *x = x8 + t * xs + 256 * b + 64 * c;
        const __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)x));
        const __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 32)));
        sumi[t] = QD_DPWSSD(QD_DPWSSD(sumi[t], p0, s0), p1, s1);
      }
    }
    /* d and dmin, from one 4-byte load, times each token's activation scale. */
    int32_t dbits;
    memcpy(&dbits, p, 4);
    const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128(dbits));
    const __m128i mn = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mins));
    for (int t = 0; t < nt; t++) {
      const __m128 dd = _mm_mul_ps(d, _mm_set1_ps(dx[t][8 * b]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_broadcastss_ps(dd), acc[t]);
      /* Σ min_j * (code sum of sub-block j): pairs of int16 products, 4 lanes. */
      const __m128i ms = _mm_madd_epi16(mn, _mm_loadu_si128((const __m128i *)(h32[t] + 8 * b)));
      macc[t] = _mm_fmadd_ps(_mm_cvtepi32_ps(ms), _mm_shuffle_ps(dd, dd, 0x55), macc[t]);
    }
  }
  for (int t = 0; t < nt; t++) out[t * os] = lmx_hsum8(acc[t]) - lmx_hsum4(macc[t]);
}

static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q4_k_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                             const uint8_t *w, int64_t K, float *out,
                                                                             int64_t os) {
  QD(qdot_k4_tile)(x8, xs, nt, w, K, out, os, 0);
}

/* Q5_K: Q4_K's layout plus a fifth bit per code in qh (bit 2c for the low nibbles of
 * chunk c, bit 2c+1 for the high ones). */
static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q5_k_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                             const uint8_t *w, int64_t K, float *out,
                                                                             int64_t os) {
  QD(qdot_k4_tile)(x8, xs, nt, w, K, out, os, 1);
}

QD_ONE_TOKEN(q4_k)
QD_ONE_TOKEN(q5_k)

static inline __attribute__((always_inline)) QD_ATTR float QD(qdot_q6_k)(const int8_t *qx, const float *dx,
                                                                         const int32_t *s16, const uint8_t *w, int64_t K) {
  const int16_t *h16 = lmx_x8_sums16(s16, K);
  const int pf = LMX_PREFETCH_BYTES;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * 210;
    lmx_prefetch_at(p + pf, 210);
    const int8_t *sc = (const int8_t *)(p + 192);
    const int8_t *x = qx + 256 * b;
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)sc);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      /* This half's 8 scales as int16 in both 128-bit halves, for byte shuffles below. */
      const __m256i sch = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
      __m256i g[4];
      lmx_q6k_codes_avx2(p, h, g);
      for (int k = 0; k < 4; k++) {
        const int e = 128 * h + 32 * k;
        __m256i prod = _mm256_maddubs_epi16(g[k], _mm256_loadu_si256((const __m256i *)(x + e)));
        /* Elements e..e+15 use scale 2k of this half, e+16..e+31 scale 2k+1. */
        const __m256i scv = _mm256_shuffle_epi8(
            sch, _mm256_set_m128i(_mm_set1_epi16((short)(((4 * k + 3) << 8) | (4 * k + 2))),
                                  _mm_set1_epi16((short)(((4 * k + 1) << 8) | (4 * k)))));
        sumi = QD_DPWSSD(sumi, prod, scv);
      }
    }
    /* The -32 offsets: Σ scale_j * (code sum of sub-block j), taken off in integers. */
    const __m256i op = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), _mm256_loadu_si256((const __m256i *)(h16 + 16 * b)));
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(op, 5));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(lmx_f16_avx2(p + 208) * dx[8 * b]), acc);
  }
  return lmx_hsum8(acc);
}

/* Interleaved K-quants (kernels/interleave.c): the GGUF layouts with the codes in another
 * order, so the registers are built as for Q4_K/Q6_K, but every int16 lane of a product
 * register is one sub-block of 16 in every register: the products of a super-block add up
 * in int16 and are weighted by the sub-block scales in one madd (Q6_K_I: one per pair of
 * registers), with no shuffles. The activations come in the same order (lmx_x8_row). */
static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q4_k_i_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                               const uint8_t *w, int64_t K, float *out,
                                                                               int64_t os) {
  const __m256i m4 = _mm256_set1_epi8(15);
  const int pf = LMX_PREFETCH_BYTES;
  const float *dx[QD_TILE];
  const int16_t *h32[QD_TILE];
  __m256 acc[QD_TILE];
  __m128 macc[QD_TILE];
  for (int t = 0; t < nt; t++) {
    dx[t] = (const float *)(x8 + t * xs + K);
    h32[t] = lmx_x8_sums32((const int32_t *)(dx[t] + K / 32), K);
    acc[t] = _mm256_setzero_ps();
    macc[t] = _mm_setzero_ps();
  }
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * 144;
    lmx_prefetch_at(p + pf, 144);
    uint64_t scales, mins;
    lmx_scales_mins_k4(p + 4, &scales, &mins);
    const __m128i s8 = _mm_cvtsi64_si128((long long)scales);
    __m256i lo[4], hi[4];
    for (int m = 0; m < 4; m++) {
      const __m256i q = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * m));
      lo[m] = _mm256_and_si256(q, m4);
#ifdef QD_PAIRS16
      hi[m] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
#else
      /* The high nibbles left in place, 16 times their value: dpbusd sums them in int32
       * without saturating, and one shift per token takes the 16 off (below). */
      hi[m] = _mm256_andnot_si256(m4, q);
#endif
    }
#ifdef QD_PAIRS16
    /* Lanes 2j and 2j + 1 (the halves of sub-block j) take sub-block j's scale. */
    const __m256i sc = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(s8, s8));
#else
    const __m256i sc = _mm256_cvtepu8_epi32(s8);
#endif
    const __m128i mn = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mins));
    int32_t dbits;
    memcpy(&dbits, p, 4);
    const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128(dbits));
    for (int t = 0; t < nt; t++) {
      const int8_t *x = x8 + t * xs + 256 * b;
#ifdef QD_PAIRS16
      /* <= 8 x 2 x 15 x 127 = 30480 per int16 lane. */
      __m256i sum = _mm256_setzero_si256();
      for (int m = 0; m < 4; m++) {
        sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(lo[m], _mm256_loadu_si256((const __m256i *)(x + 64 * m))));
        sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(hi[m], _mm256_loadu_si256((const __m256i *)(x + 64 * m + 32))));
      }
      const __m256i sumi = QD_DPWSSD(_mm256_setzero_si256(), sum, sc);
#else
      /* With VNNI every int32 lane's 4 bytes are one sub-block of 32 (lanes 2j, 2j + 1 of
       * the int16 view): one dpbusd per register leaves sub-block j's sum in lane j, 8 fewer
       * operations per super-block than products summed in int16 and then weighted. */
      __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
      for (int m = 0; m < 4; m++) {
        s0 = QD_DPBUSD(s0, lo[m], _mm256_loadu_si256((const __m256i *)(x + 64 * m)));
        s1 = QD_DPBUSD(s1, hi[m], _mm256_loadu_si256((const __m256i *)(x + 64 * m + 32)));
      }
      /* s1 is a multiple of 16 (|s1| <= 16 x 240 x 128 per lane): the shift is exact, the sum the
       * same integer as with the nibbles shifted down first, so the same bits. */
      const __m256i sumi = _mm256_mullo_epi32(_mm256_add_epi32(s0, _mm256_srai_epi32(s1, 4)), sc);
#endif
      const __m128 dd = _mm_mul_ps(d, _mm_set1_ps(dx[t][8 * b]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_broadcastss_ps(dd), acc[t]);
      const __m128i ms = _mm_madd_epi16(mn, _mm_loadu_si128((const __m128i *)(h32[t] + 8 * b)));
      macc[t] = _mm_fmadd_ps(_mm_cvtepi32_ps(ms), _mm_shuffle_ps(dd, dd, 0x55), macc[t]);
    }
  }
  for (int t = 0; t < nt; t++) out[t * os] = lmx_hsum8(acc[t]) - lmx_hsum4(macc[t]);
}

QD_ONE_TOKEN(q4_k_i)

/* Q4_K_R16 (interleave.c): 16 rows per group, one row per 32-bit lane. The codes of a
 * register are 4 of one sub-block for every row; the activation codes they meet are the
 * same for all rows, broadcast (a load, no shuffle). Per super-block and row: sub-block
 * sums in int32 lanes, weighted by the scales as vectors over rows, the mins against the
 * activation sums per 32 in int16 pairs (dpwssd), then d and dmin times the activation
 * scale, so each lane takes exactly the integer and float steps of its row alone: the
 * AVX-512 tier's 16-lane registers and the other tiers' two halves of 8 give the same
 * bits, and so does every token of a decode batch, whose nt <= QD_TILE tokens share each
 * unpacked register. With VNNI the high nibbles stay in place (16 times their value) and
 * the super-block's high-nibble sum is shifted down once: |16 x 32 x 15 x 127 x 63| x 4
 * < 2^31. The weights are left to the hardware prefetcher: 2 KiB of software prefetch ahead
 * of these 2304-byte blocks made one thread's cold rows 25-30% slower (Zen 4), and one
 * stream per thread beat two or four. */
#define QD_R16_CODES 256
static inline __attribute__((always_inline)) QD_ATTR void QD(r16_fields_half)(const uint8_t *p, int h, __m256i sc[8],
                                                                             __m256i mn[4]) {
  const __m256i a = _mm256_loadu_si256((const __m256i *)(p + 64 + 32 * h));
  const __m256i b = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
  const __m256i c = _mm256_loadu_si256((const __m256i *)(p + 192 + 32 * h));
  const __m256i m6 = _mm256_set1_epi32(63), pair = _mm256_set1_epi32(0x003f003f);
  for (int j = 0; j < 5; j++) sc[j] = _mm256_and_si256(_mm256_srli_epi32(a, 6 * j), m6);
  sc[5] = _mm256_or_si256(_mm256_srli_epi32(a, 30), _mm256_and_si256(_mm256_srli_epi32(b, 10), _mm256_set1_epi32(0x3c)));
  sc[6] = _mm256_or_si256(_mm256_srli_epi32(b, 28), _mm256_and_si256(_mm256_srli_epi32(c, 8), _mm256_set1_epi32(0x30)));
  sc[7] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(c, 14), _mm256_set1_epi32(3)),
                          _mm256_and_si256(_mm256_srli_epi32(c, 26), _mm256_set1_epi32(0x3c)));
  mn[0] = _mm256_and_si256(b, pair);
  mn[1] = _mm256_and_si256(_mm256_srli_epi32(b, 6), pair);
  mn[2] = _mm256_and_si256(c, pair);
  mn[3] = _mm256_and_si256(_mm256_srli_epi32(c, 6), pair);
}

/* Rows 8h..8h + 7 of a group for nt tokens (records xs bytes apart): out[t * os + i]. */
static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q4_k_r16_half)(const int8_t *x8, int64_t xs, int nt,
                                                                          const uint8_t *w, int64_t K, int h, float *out,
                                                                          int64_t os) {
  const __m256i m4 = _mm256_set1_epi8(15);
  const float *dx[QD_TILE];
  const int16_t *h32[QD_TILE];
  __m256 acc[QD_TILE], macc[QD_TILE];
  for (int t = 0; t < nt; t++) {
    dx[t] = (const float *)(x8 + t * xs + K);
    h32[t] = lmx_x8_sums32((const int32_t *)(dx[t] + K / 32), K);
    acc[t] = macc[t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * LMX_R16_BYTES;
    __m256i sc[8], mn[4], lo_sum[QD_TILE], hi_sum[QD_TILE];
    QD(r16_fields_half)(p, h, sc, mn);
    for (int t = 0; t < nt; t++) lo_sum[t] = hi_sum[t] = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      /* One token: two chains per sum, so that dpbusd latency does not bind. */
      __m256i lo[2][QD_TILE], hi[2][QD_TILE];
      for (int t = 0; t < nt; t++) lo[0][t] = hi[0][t] = lo[1][t] = hi[1][t] = _mm256_setzero_si256();
      for (int q = 0; q < 8; q++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + QD_R16_CODES + 64 * (8 * c + q) + 32 * h));
        const __m256i vl = _mm256_and_si256(v, m4);
#ifdef QD_PAIRS16
        const __m256i vh = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
#else
        const __m256i vh = _mm256_andnot_si256(m4, v);
#endif
        for (int t = 0; t < nt; t++) {
          const int8_t *xb = x8 + t * xs + 256 * b + 64 * c + 4 * q;
          int32_t a, e;
          memcpy(&a, xb, 4);
          memcpy(&e, xb + 32, 4);
          const int k = nt == 1 ? q & 1 : 0;
          lo[k][t] = QD_DPBUSD(lo[k][t], vl, _mm256_set1_epi32(a));
          hi[k][t] = QD_DPBUSD(hi[k][t], vh, _mm256_set1_epi32(e));
        }
      }
      for (int t = 0; t < nt; t++) {
        const __m256i l = _mm256_add_epi32(lo[0][t], lo[1][t]), u = _mm256_add_epi32(hi[0][t], hi[1][t]);
        lo_sum[t] = _mm256_add_epi32(lo_sum[t], _mm256_mullo_epi32(l, sc[2 * c]));
        hi_sum[t] = _mm256_add_epi32(hi_sum[t], _mm256_mullo_epi32(u, sc[2 * c + 1]));
      }
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * h)));
    const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 32 + 16 * h)));
    for (int t = 0; t < nt; t++) {
#ifdef QD_PAIRS16
      const __m256i sumi = _mm256_add_epi32(lo_sum[t], hi_sum[t]);
#else
      const __m256i sumi = _mm256_add_epi32(lo_sum[t], _mm256_srai_epi32(hi_sum[t], 4));
#endif
      __m256i ms = _mm256_setzero_si256();
      for (int k = 0; k < 4; k++) {
        int32_t pr;
        memcpy(&pr, h32[t] + 8 * b + 2 * k, 4);
        ms = QD_DPWSSD(ms, mn[k], _mm256_set1_epi32(pr));
      }
      const __m256 kx = _mm256_set1_ps(dx[t][8 * b]);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, kx), acc[t]);
      macc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_mul_ps(dm, kx), macc[t]);
    }
  }
  for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + t * os + 8 * h, _mm256_sub_ps(acc[t], macc[t]));
}

#ifdef QD_ZMM
/* The same steps on all 16 rows at once (AVX-512 tier): half the instructions. */
static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q4_k_r16_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                           const uint8_t *w, int64_t K, float *out,
                                                                           int64_t os) {
  const __m512i m4 = _mm512_set1_epi8(15), m6 = _mm512_set1_epi32(63), pair = _mm512_set1_epi32(0x003f003f);
  const float *dx[QD_TILE];
  const int16_t *h32[QD_TILE];
  __m512 acc[QD_TILE], macc[QD_TILE];
  for (int t = 0; t < nt; t++) {
    dx[t] = (const float *)(x8 + t * xs + K);
    h32[t] = lmx_x8_sums32((const int32_t *)(dx[t] + K / 32), K);
    acc[t] = macc[t] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * LMX_R16_BYTES;
    const __m512i fa = _mm512_loadu_si512((const void *)(p + 64)), fb = _mm512_loadu_si512((const void *)(p + 128)),
                  fc = _mm512_loadu_si512((const void *)(p + 192));
    __m512i sc[8], mn[4], lo_sum[QD_TILE], hi_sum[QD_TILE];
    for (int j = 0; j < 5; j++) sc[j] = _mm512_and_si512(_mm512_srli_epi32(fa, 6 * j), m6);
    sc[5] = _mm512_or_si512(_mm512_srli_epi32(fa, 30), _mm512_and_si512(_mm512_srli_epi32(fb, 10), _mm512_set1_epi32(0x3c)));
    sc[6] = _mm512_or_si512(_mm512_srli_epi32(fb, 28), _mm512_and_si512(_mm512_srli_epi32(fc, 8), _mm512_set1_epi32(0x30)));
    sc[7] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(fc, 14), _mm512_set1_epi32(3)),
                            _mm512_and_si512(_mm512_srli_epi32(fc, 26), _mm512_set1_epi32(0x3c)));
    mn[0] = _mm512_and_si512(fb, pair);
    mn[1] = _mm512_and_si512(_mm512_srli_epi32(fb, 6), pair);
    mn[2] = _mm512_and_si512(fc, pair);
    mn[3] = _mm512_and_si512(_mm512_srli_epi32(fc, 6), pair);
    for (int t = 0; t < nt; t++) lo_sum[t] = hi_sum[t] = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) {
      /* One token: two chains per sum, so that dpbusd latency does not bind. */
      __m512i lo[2][QD_TILE], hi[2][QD_TILE];
      for (int t = 0; t < nt; t++) lo[0][t] = hi[0][t] = lo[1][t] = hi[1][t] = _mm512_setzero_si512();
      for (int q = 0; q < 8; q++) {
        const __m512i v = _mm512_loadu_si512((const void *)(p + QD_R16_CODES + 64 * (8 * c + q)));
        const __m512i vl = _mm512_and_si512(v, m4), vh = _mm512_andnot_si512(m4, v);
        for (int t = 0; t < nt; t++) {
          const int8_t *xb = x8 + t * xs + 256 * b + 64 * c + 4 * q;
          int32_t a, e;
          memcpy(&a, xb, 4);
          memcpy(&e, xb + 32, 4);
          const int k = nt == 1 ? q & 1 : 0;
          lo[k][t] = _mm512_dpbusd_epi32(lo[k][t], vl, _mm512_set1_epi32(a));
          hi[k][t] = _mm512_dpbusd_epi32(hi[k][t], vh, _mm512_set1_epi32(e));
        }
      }
      for (int t = 0; t < nt; t++) {
        const __m512i l = _mm512_add_epi32(lo[0][t], lo[1][t]), u = _mm512_add_epi32(hi[0][t], hi[1][t]);
        lo_sum[t] = _mm512_add_epi32(lo_sum[t], _mm512_mullo_epi32(l, sc[2 * c]));
        hi_sum[t] = _mm512_add_epi32(hi_sum[t], _mm512_mullo_epi32(u, sc[2 * c + 1]));
      }
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    const __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)));
    for (int t = 0; t < nt; t++) {
      const __m512i sumi = _mm512_add_epi32(lo_sum[t], _mm512_srai_epi32(hi_sum[t], 4));
      __m512i ms = _mm512_setzero_si512();
      for (int k = 0; k < 4; k++) {
        int32_t pr;
        memcpy(&pr, h32[t] + 8 * b + 2 * k, 4);
        ms = _mm512_dpwssd_epi32(ms, mn[k], _mm512_set1_epi32(pr));
      }
      const __m512 kx = _mm512_set1_ps(dx[t][8 * b]);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, kx), acc[t]);
      macc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ms), _mm512_mul_ps(dm, kx), macc[t]);
    }
  }
  for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + t * os, _mm512_sub_ps(acc[t], macc[t]));
}
#else
static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q4_k_r16_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                           const uint8_t *w, int64_t K, float *out,
                                                                           int64_t os) {
  QD(qdot_q4_k_r16_half)(x8, xs, nt, w, K, 0, out, os);
  QD(qdot_q4_k_r16_half)(x8, xs, nt, w, K, 1, out, os);
}
#endif

#undef QD_R16_CODES

/* Q6_K_R16 (interleave.c): 16 rows per group as Q4_K_R16, the 6-bit codes of four
 * sub-blocks rebuilt from two ql words and one qh word per row (the GGUF pairing), the
 * int8 scales widened to int16 pairs per row: one pair's low or high half is a sub-block's
 * scale vector over rows, and the pairs meet the per-16 activation sums in dpwssd for the
 * codes' -32 offsets. |sum| <= 16 x 16 x 63 x 127 x 127 + 32 x 16 x 127 x 2032 < 2^31.
 * The same per-lane steps in both forms (zmm, two ymm halves) and for every token. */
static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q6_k_r16_half)(const int8_t *x8, int64_t xs, int nt,
                                                                          const uint8_t *w, int64_t K, int h, float *out,
                                                                          int64_t os) {
  const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
  const float *dx[QD_TILE];
  const int16_t *h16[QD_TILE];
  __m256 accf[QD_TILE];
  for (int t = 0; t < nt; t++) {
    dx[t] = (const float *)(x8 + t * xs + K);
    h16[t] = lmx_x8_sums16((const int32_t *)(dx[t] + K / 32), K);
    accf[t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * LMX_R16Q6_BYTES;
    __m256i sum[QD_TILE], ms[QD_TILE];
    for (int t = 0; t < nt; t++) sum[t] = ms[t] = _mm256_setzero_si256();
    for (int hh = 0; hh < 2; hh++) {
      __m256i pr[4];
      for (int k = 0; k < 4; k++) pr[k] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 32 + 32 * (4 * hh + k) + 16 * h)));
      for (int qq = 0; qq < 2; qq++) {
        __m256i acc[4][QD_TILE];
        for (int t = 0; t < nt; t++) acc[0][t] = acc[1][t] = acc[2][t] = acc[3][t] = _mm256_setzero_si256();
        for (int q = 4 * qq; q < 4 * qq + 4; q++) {
          const __m256i l0 = _mm256_loadu_si256((const __m256i *)(p + 288 + 192 * (8 * hh + q) + 32 * h));
          const __m256i l1 = _mm256_loadu_si256((const __m256i *)(p + 288 + 192 * (8 * hh + q) + 64 + 32 * h));
          const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 288 + 192 * (8 * hh + q) + 128 + 32 * h));
          __m256i c[4];
          c[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
          c[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
          c[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
          c[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
          for (int t = 0; t < nt; t++) {
            const int8_t *xb = x8 + t * xs + 256 * b + 128 * hh + 4 * q;
            for (int s4 = 0; s4 < 4; s4++) {
              int32_t a;
              memcpy(&a, xb + 32 * s4, 4);
              acc[s4][t] = QD_DPBUSD(acc[s4][t], c[s4], _mm256_set1_epi32(a));
            }
          }
        }
        /* Sub-block 8hh + 2s4 + qq: scale 2k + qq of pair k = 4hh + s4. */
        for (int s4 = 0; s4 < 4; s4++) {
          const __m256i scv = qq ? _mm256_srai_epi32(pr[s4], 16) : _mm256_srai_epi32(_mm256_slli_epi32(pr[s4], 16), 16);
          for (int t = 0; t < nt; t++) sum[t] = _mm256_add_epi32(sum[t], _mm256_mullo_epi32(acc[s4][t], scv));
        }
      }
      for (int t = 0; t < nt; t++)
        for (int k = 0; k < 4; k++) {
          int32_t x2;
          memcpy(&x2, h16[t] + 16 * b + 2 * (4 * hh + k), 4);
          ms[t] = QD_DPWSSD(ms[t], pr[k], _mm256_set1_epi32(x2));
        }
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * h)));
    for (int t = 0; t < nt; t++) {
      const __m256i sumi = _mm256_sub_epi32(sum[t], _mm256_slli_epi32(ms[t], 5));
      accf[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, _mm256_set1_ps(dx[t][8 * b])), accf[t]);
    }
  }
  for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + t * os + 8 * h, accf[t]);
}

#ifdef QD_ZMM
static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q6_k_r16_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                           const uint8_t *w, int64_t K, float *out,
                                                                           int64_t os) {
  const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
  const float *dx[QD_TILE];
  const int16_t *h16[QD_TILE];
  __m512 accf[QD_TILE];
  for (int t = 0; t < nt; t++) {
    dx[t] = (const float *)(x8 + t * xs + K);
    h16[t] = lmx_x8_sums16((const int32_t *)(dx[t] + K / 32), K);
    accf[t] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * LMX_R16Q6_BYTES;
    __m512i sum[QD_TILE], ms[QD_TILE];
    for (int t = 0; t < nt; t++) sum[t] = ms[t] = _mm512_setzero_si512();
    for (int hh = 0; hh < 2; hh++) {
      __m512i pr[4];
      for (int k = 0; k < 4; k++) pr[k] = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(p + 32 + 32 * (4 * hh + k))));
      for (int qq = 0; qq < 2; qq++) {
        __m512i acc[4][QD_TILE];
        for (int t = 0; t < nt; t++) acc[0][t] = acc[1][t] = acc[2][t] = acc[3][t] = _mm512_setzero_si512();
        for (int q = 4 * qq; q < 4 * qq + 4; q++) {
          const __m512i l0 = _mm512_loadu_si512((const void *)(p + 288 + 192 * (8 * hh + q)));
          const __m512i l1 = _mm512_loadu_si512((const void *)(p + 288 + 192 * (8 * hh + q) + 64));
          const __m512i qh = _mm512_loadu_si512((const void *)(p + 288 + 192 * (8 * hh + q) + 128));
          __m512i c[4];
          c[0] = _mm512_or_si512(_mm512_and_si512(l0, m4), _mm512_and_si512(_mm512_slli_epi16(qh, 4), m30));
          c[1] = _mm512_or_si512(_mm512_and_si512(l1, m4), _mm512_and_si512(_mm512_slli_epi16(qh, 2), m30));
          c[2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4), _mm512_and_si512(qh, m30));
          c[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4), _mm512_and_si512(_mm512_srli_epi16(qh, 2), m30));
          for (int t = 0; t < nt; t++) {
            const int8_t *xb = x8 + t * xs + 256 * b + 128 * hh + 4 * q;
            for (int s4 = 0; s4 < 4; s4++) {
              int32_t a;
              memcpy(&a, xb + 32 * s4, 4);
              acc[s4][t] = _mm512_dpbusd_epi32(acc[s4][t], c[s4], _mm512_set1_epi32(a));
            }
          }
        }
        for (int s4 = 0; s4 < 4; s4++) {
          const __m512i scv = qq ? _mm512_srai_epi32(pr[s4], 16) : _mm512_srai_epi32(_mm512_slli_epi32(pr[s4], 16), 16);
          for (int t = 0; t < nt; t++) sum[t] = _mm512_add_epi32(sum[t], _mm512_mullo_epi32(acc[s4][t], scv));
        }
      }
      for (int t = 0; t < nt; t++)
        for (int k = 0; k < 4; k++) {
          int32_t x2;
          memcpy(&x2, h16[t] + 16 * b + 2 * (4 * hh + k), 4);
          ms[t] = _mm512_dpwssd_epi32(ms[t], pr[k], _mm512_set1_epi32(x2));
        }
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    for (int t = 0; t < nt; t++) {
      const __m512i sumi = _mm512_sub_epi32(sum[t], _mm512_slli_epi32(ms[t], 5));
      accf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, _mm512_set1_ps(dx[t][8 * b])), accf[t]);
    }
  }
  for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + t * os, accf[t]);
}
#else
static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q6_k_r16_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                           const uint8_t *w, int64_t K, float *out,
                                                                           int64_t os) {
  QD(qdot_q6_k_r16_half)(x8, xs, nt, w, K, 0, out, os);
  QD(qdot_q6_k_r16_half)(x8, xs, nt, w, K, 1, out, os);
}
#endif


static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_q6_k_i_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                               const uint8_t *w, int64_t K, float *out,
                                                                               int64_t os) {
  const int pf = LMX_PREFETCH_BYTES;
  const float *dx[QD_TILE];
  const int16_t *h16[QD_TILE];
  __m256 acc[QD_TILE];
  for (int t = 0; t < nt; t++) {
    dx[t] = (const float *)(x8 + t * xs + K);
    h16[t] = lmx_x8_sums16((const int32_t *)(dx[t] + K / 32), K);
    acc[t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *p = w + b * 210;
    lmx_prefetch_at(p + pf, 210);
    /* Lane l is sub-block l: the 16 scales in order. */
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 192)));
    __m256i sumi[QD_TILE];
    for (int t = 0; t < nt; t++) sumi[t] = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      __m256i g[4];
      lmx_q6k_codes_avx2(p, h, g);
      for (int t = 0; t < nt; t++) {
        const int8_t *xh = x8 + t * xs + 256 * b + 128 * h;
        /* <= 2 x 2 x 63 x 127 = 32004 per int16 lane. */
        const __m256i a = _mm256_add_epi16(_mm256_maddubs_epi16(g[0], _mm256_loadu_si256((const __m256i *)xh)),
                                           _mm256_maddubs_epi16(g[1], _mm256_loadu_si256((const __m256i *)(xh + 32))));
        const __m256i c = _mm256_add_epi16(_mm256_maddubs_epi16(g[2], _mm256_loadu_si256((const __m256i *)(xh + 64))),
                                           _mm256_maddubs_epi16(g[3], _mm256_loadu_si256((const __m256i *)(xh + 96))));
        sumi[t] = QD_DPWSSD(QD_DPWSSD(sumi[t], a, sc16), c, sc16);
      }
    }
    for (int t = 0; t < nt; t++) {
      /* The -32 offsets: sum_l scale_l * (code sum of sub-block l), taken off in integers. */
      const __m256i op = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(h16[t] + 16 * b)));
      const __m256i si = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32(op, 5));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_set1_ps(lmx_f16_avx2(p + 208) * dx[t][8 * b]), acc[t]);
    }
  }
  for (int t = 0; t < nt; t++) out[t * os] = lmx_hsum8(acc[t]);
}

QD_ONE_TOKEN(q6_k_i)

/* FP4 (E2M1) codes as int8 at twice their value, so that every code is an integer:
 * {0, .5, 1, 1.5, 2, 3, 4, 6} x 2 and negatives; block scales are halved to match. */
static inline QD_ATTR __m256i QD(e2m1x2)(__m256i codes) {
  const __m256i t = _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
                                     0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
  return _mm256_shuffle_epi8(t, codes);
}

/* NVFP4: 64 elements per block as 4 sub-blocks of 16 under UE4M3 scales; sub-block s is
 * code bytes 8s..8s+7, elements 16s+j in the low nibbles and 16s+8+j in the high ones. The
 * block's 32 code bytes are split into low and high nibbles, two registers whose qwords
 * each hold one sub-block; lmx_x8_row stores NVFP4 activations in that order, so the
 * products need no shuffle. Codes become E2M1 values doubled plus 12 (0..24, unsigned for
 * maddubs; the 12s come off through the activation sums). Blocks go in pairs: one
 * horizontal add leaves the 8 sub-block sums of the pair in one register, in the order
 * a0 a1 b0 b1 | a2 a3 b2 b3 that the record's per-16 factors (k16, o16) follow, so each
 * pair costs one conversion to float and one fma. Scales are decoded in registers: the
 * 7 bits of a UE4M3 moved to the top of an f32's exponent and mantissa make that f32 the
 * scale times 2^-120 (subnormals included); 0x7f (NaN) counts as zero, as in dequant.c. */
/* The 8 scales of a pair from the table: the rare pairs holding a subnormal or NaN. */
static __attribute__((noinline, cold)) QD_ATTR __m256 QD(nvfp4_scales_table)(const uint8_t *pa, const uint8_t *pb) {
  const float *t = lmx_ue4m3_half();
  return _mm256_setr_ps(t[pa[0]], t[pa[1]], pb ? t[pb[0]] : 0, pb ? t[pb[1]] : 0, t[pa[2]], t[pa[3]], pb ? t[pb[2]] : 0,
                        pb ? t[pb[3]] : 0);
}

/* The loop's constants, made once per row (the compiler would otherwise rebuild some of
 * them in every iteration): the code table, 0x7f, 0x78 and the exponent bias 119 << 23. */
typedef struct {
  __m256i e2m1, c7f, c78, bias;
} QD(nvfp4_consts);

static inline __attribute__((always_inline)) QD_ATTR QD(nvfp4_consts) QD(nvfp4_consts_make)(void) {
  QD(nvfp4_consts) c = {_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lmx_e2m1x2p12)), _mm256_set1_epi32(0x7f),
                        _mm256_set1_epi32(0x78), _mm256_set1_epi32(119 << 23)};
  __asm__("" : "+x"(c.c7f), "+x"(c.c78), "+x"(c.bias));
  return c;
}

static inline __attribute__((always_inline)) QD_ATTR __m256 QD(nvfp4_scales)(const uint8_t *pa, const uint8_t *pb,
                                                                             const QD(nvfp4_consts) *c) {
  uint32_t sa, sb = 0;
  memcpy(&sa, pa, 4);
  if (pb) memcpy(&sb, pb, 4);
  const __m128i bytes = _mm_unpacklo_epi16(_mm_cvtsi32_si128((int)sa), _mm_cvtsi32_si128((int)sb));
  const __m256i z = _mm256_and_si256(_mm256_cvtepu8_epi32(bytes), c->c7f);
  /* Any subnormal (exponent 0) or NaN (0x7f) scale among the 8? Then the table. */
  const __m256i odd = _mm256_or_si256(_mm256_cmpeq_epi32(_mm256_and_si256(z, c->c78), _mm256_setzero_si256()), _mm256_cmpeq_epi32(z, c->c7f));
  if (__builtin_expect(!_mm256_testz_si256(odd, odd), 0)) return QD(nvfp4_scales_table)(pa, pb);
  /* Normal scales: (1 + m/8) 2^(e-7) / 2 has the f32 exponent e + 119 and mantissa m. */
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(z, 20), c->bias));
}

/* One block's products, as int16 (AVX2: maddubs of low and high nibbles added) or int32
 * (VNNI tiers), each qword of lanes one sub-block. */
static inline __attribute__((always_inline)) QD_ATTR __m256i QD(nvfp4_block)(const uint8_t *p, const int8_t *x, __m256i e2m1) {
  const __m256i m4 = _mm256_set1_epi8(15);
  const __m256i q = _mm256_loadu_si256((const __m256i *)(p + 4));
  const __m256i lo = _mm256_shuffle_epi8(e2m1, _mm256_and_si256(q, m4));
  const __m256i hi = _mm256_shuffle_epi8(e2m1, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
  const __m256i xl = _mm256_loadu_si256((const __m256i *)x), xh = _mm256_loadu_si256((const __m256i *)(x + 32));
#ifdef QD_PAIRS16
  /* <= 2 * 2 * 24 * 127 = 12192 per int16 lane, and twice that after the pair's hadd. */
  return _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh));
#else
  return QD_DPBUSD(QD_DPBUSD(_mm256_setzero_si256(), lo, xl), hi, xh);
#endif
}

/* The 8 sub-block sums of blocks a and b (see above), as int32. */
static inline __attribute__((always_inline)) QD_ATTR __m256i QD(nvfp4_pair)(__m256i a, __m256i b) {
#ifdef QD_PAIRS16
  return _mm256_madd_epi16(_mm256_hadd_epi16(a, b), _mm256_set1_epi16(1));
#else
  return _mm256_hadd_epi32(a, b);
#endif
}

/* acc + the products of blocks p and pb (NULL: an odd last block, paired with zeros; its
 * record lanes for pb are zero too) against the record at lane l of k16/o16. */
static inline __attribute__((always_inline)) QD_ATTR __m256 QD(nvfp4_pair_dot)(const uint8_t *p, const uint8_t *pb, const int8_t *x,
                                                                               const float *k16, const int32_t *o16,
                                                                               const QD(nvfp4_consts) *c, __m256 acc) {
  const __m256i ia = QD(nvfp4_block)(p, x, c->e2m1), ib = pb ? QD(nvfp4_block)(pb, x + 64, c->e2m1) : _mm256_setzero_si256();
  const __m256i i = _mm256_sub_epi32(QD(nvfp4_pair)(ia, ib), _mm256_loadu_si256((const __m256i *)o16));
  const __m256 k = _mm256_mul_ps(QD(nvfp4_scales)(p, pb, c), _mm256_loadu_ps(k16));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), k, acc);
}

static inline __attribute__((always_inline)) QD_ATTR float QD(qdot_nvfp4)(const int8_t *qx, const float *dx,
                                                                          const int32_t *s16, const uint8_t *w, int64_t K) {
  (void)dx;
  const float *k16 = lmx_x8_nvfp4_k16(s16, K);
  const int32_t *o16 = (const int32_t *)(k16 + lmx_x8_nvfp4_lanes(K));
  const QD(nvfp4_consts) c = QD(nvfp4_consts_make)();
  const uint8_t *p = w, *end = w + K / 64 * 36;
  const int pf = LMX_PREFETCH_BYTES;
  __m256 acc = _mm256_setzero_ps();
  for (; p + 36 < end; p += 72, qx += 128, k16 += 8, o16 += 8) {
    lmx_prefetch_at(p + pf, 72);
    acc = QD(nvfp4_pair_dot)(p, p + 36, qx, k16, o16, &c, acc);
  }
  if (p < end) acc = QD(nvfp4_pair_dot)(p, NULL, qx, k16, o16, &c, acc);
  return lmx_hsum8(acc);
}

/* NVFP4_I (kernels/interleave.c): per block of 128, four code registers whose bytes 4k..
 * 4k+3 all belong to sub-block k; their products (codes as doubled E2M1 values plus 12)
 * add up per lane and leave the 8 sub-block sums in order, and the 8 scales decode with a
 * shift and an add (no subnormal or NaN case is left: interleave.c re-encodes them). */
static inline __attribute__((always_inline)) QD_ATTR void QD(qdot_nvfp4_i_tile)(const int8_t *x8, int64_t xs, int nt,
                                                                                const uint8_t *w, int64_t K, float *out,
                                                                                int64_t os) {
  const __m256i e2m1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lmx_e2m1x2p12)), m4 = _mm256_set1_epi8(15);
  const __m256i bias = _mm256_set1_epi32(116 << 23);
  const int pf = LMX_PREFETCH_BYTES;
  const float *k16[QD_TILE];
  const int32_t *o16[QD_TILE];
  __m256 acc[QD_TILE];
  for (int t = 0; t < nt; t++) {
    const float *dx = (const float *)(x8 + t * xs + K);
    k16[t] = lmx_x8_nvfp4_k16((const int32_t *)(dx + K / 32), K);
    o16[t] = (const int32_t *)(k16[t] + lmx_x8_nvfp4_lanes(K));
    acc[t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < K / 128; b++, w += 72) {
    lmx_prefetch_at(w + pf, 72);
    const __m256i q0 = _mm256_loadu_si256((const __m256i *)(w + 8)), q1 = _mm256_loadu_si256((const __m256i *)(w + 40));
    const __m256i c0 = _mm256_shuffle_epi8(e2m1, _mm256_and_si256(q0, m4));
    const __m256i c1 = _mm256_shuffle_epi8(e2m1, _mm256_and_si256(_mm256_srli_epi16(q0, 4), m4));
    const __m256i c2 = _mm256_shuffle_epi8(e2m1, _mm256_and_si256(q1, m4));
    const __m256i c3 = _mm256_shuffle_epi8(e2m1, _mm256_and_si256(_mm256_srli_epi16(q1, 4), m4));
    const __m256i sc = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)w));
    const __m256 scale = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(sc, 20), bias));
    for (int t = 0; t < nt; t++) {
      const int8_t *qx = x8 + t * xs + 128 * b;
      const __m256i x0 = _mm256_loadu_si256((const __m256i *)qx), x1 = _mm256_loadu_si256((const __m256i *)(qx + 32));
      const __m256i x2 = _mm256_loadu_si256((const __m256i *)(qx + 64)), x3 = _mm256_loadu_si256((const __m256i *)(qx + 96));
#ifdef QD_PAIRS16
      /* <= 4 x 2 x 24 x 127 = 24384 per int16 lane. */
      const __m256i p16 = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(c0, x0), _mm256_maddubs_epi16(c1, x1)),
                                           _mm256_add_epi16(_mm256_maddubs_epi16(c2, x2), _mm256_maddubs_epi16(c3, x3)));
      const __m256i sums = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
#else
      /* Two chains of two, not one of four: a block's sums wait on two dpbusd latencies. */
      const __m256i sums = _mm256_add_epi32(QD_DPBUSD(QD_DPBUSD(_mm256_setzero_si256(), c0, x0), c1, x1),
                                            QD_DPBUSD(QD_DPBUSD(_mm256_setzero_si256(), c2, x2), c3, x3));
#endif
      const __m256i i = _mm256_sub_epi32(sums, _mm256_loadu_si256((const __m256i *)(o16[t] + 8 * b)));
      const __m256 k = _mm256_mul_ps(scale, _mm256_loadu_ps(k16[t] + 8 * b));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), k, acc[t]);
    }
  }
  for (int t = 0; t < nt; t++) out[t * os] = lmx_hsum8(acc[t]);
}

QD_ONE_TOKEN(nvfp4_i)

/* MXFP4: 32 elements per block under a power-of-two scale; byte j holds elements j (low)
 * and j+16 (high). */
static inline __attribute__((always_inline)) QD_ATTR float QD(qdot_mxfp4)(const int8_t *qx, const float *dx,
                                                                          const int32_t *s16, const uint8_t *w, int64_t K) {
  (void)s16;
  const int pf = LMX_PREFETCH_BYTES;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 32; b++) {
    const uint8_t *p = w + b * 17;
    lmx_prefetch_at(p + pf, 17);
    __m256i wv = QD(e2m1x2)(QD(nibbles)(p + 1)), xv = _mm256_loadu_si256((const __m256i *)(qx + 32 * b));
    __m256i s = QD_DPBUSD(_mm256_setzero_si256(), _mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    const float k = dx[b] * lmx_pow2_half(p[0]);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(k), acc);
  }
  return lmx_hsum8(acc);
}

/* A decode batch (T > 1): each row's tokens while it is in L1, one token at a time, or for
 * the types with a tiled dot QD_TILE at a time (the weights unpacked once per tile): the
 * second argument of QD_KERNELS, LOOP or TILED. */
#define QD_BATCH_LOOP(X)                                                                                     \
  for (int64_t i = 0; i < n; i++)                                                                            \
    for (int64_t t = 0; t < T; t++) {                                                                        \
      const int8_t *qx = x8 + t * xs;                                                                        \
      const float *dx = (const float *)(qx + K);                                                             \
      out[t * os + i] = QD(qdot_##X)(qx, dx, (const int32_t *)(dx + K / 32), w + i * rb, K);                 \
    }
#define QD_BATCH_TILED(X) QD_BATCH_TILED_BY(X, 1)
/* The same over groups of S rows (qdot_X_tile computes S rows, as the R16 types' groups). */
#define QD_BATCH_TILED_BY(X, S)                                                                              \
  for (int64_t i = 0; i < n; i += (S))                                                                       \
    for (int64_t t = 0; t < T; t += QD_TILE) {                                                               \
      const int8_t *qx = x8 + t * xs;                                                                        \
      float *o = out + t * os + i;                                                                           \
      switch (T - t < QD_TILE ? T - t : QD_TILE) {                                                           \
        case 1: QD(qdot_##X##_tile)(qx, xs, 1, w + i * rb, K, o, os); break;                                 \
        case 2: QD(qdot_##X##_tile)(qx, xs, 2, w + i * rb, K, o, os); break;                                 \
        case 3: QD(qdot_##X##_tile)(qx, xs, 3, w + i * rb, K, o, os); break;                                 \
        default: QD(qdot_##X##_tile)(qx, xs, 4, w + i * rb, K, o, os); break;                                \
      }                                                                                                      \
    }
/* Each kernel takes a run of consecutive rows for every token of a decode batch
 * (lmx_qdotn_fn): the row's dot is inlined, so there is no call and no setup of constants
 * per row, and every row and token gets the same arithmetic, so the same bits, whatever
 * the run and the batch; each row's tokens while it is in L1. One token, the common case,
 * has its own loop (the general one cost Q4_K hot rows ~4%, session 7), which alternates
 * between the two halves of the run: two sequential weight streams in flight on the core
 * instead of one made one thread's decode 5-10% faster on Zen 4 (Q4_K_M 53.1/52.0/53.3/
 * 53.7 -> 55.7/55.4/56.6/56.8 tok/s, Q8_0 and NVFP4 alike, alternating builds); two
 * threads, already two streams, unchanged within the noise. */
#define QD_KERNELS(X, BATCH)                                                                                  \
  QD_ATTR void QD(lmx_qdotn_##X)(const int8_t *x8, int64_t xs, int64_t T, const uint8_t *w, int64_t rb,       \
                                 int64_t n, int64_t K, float *out, int64_t os) {                              \
    if (T == 1) {                                                                                             \
      const float *dx = (const float *)(x8 + K);                                                              \
      const int32_t *s16 = (const int32_t *)(dx + K / 32);                                                    \
      const int64_t h = n / 2;                                                                                \
      for (int64_t i = 0; i < h; i++) {                                                                       \
        out[i] = QD(qdot_##X)(x8, dx, s16, w + i * rb, K);                                                    \
        out[i + h] = QD(qdot_##X)(x8, dx, s16, w + (i + h) * rb, K);                                          \
      }                                                                                                       \
      if (n & 1) out[n - 1] = QD(qdot_##X)(x8, dx, s16, w + (n - 1) * rb, K);                                 \
      return;                                                                                                 \
    }                                                                                                         \
    QD_BATCH_##BATCH(X)                                                                                       \
  }
QD_KERNELS(q8_0, LOOP)
QD_KERNELS(q8_0_i, TILED)
QD_KERNELS(q4_0, LOOP)
QD_KERNELS(q4_1, LOOP)
QD_KERNELS(q5_0, LOOP)
QD_KERNELS(q5_1, LOOP)
QD_KERNELS(q4_k, TILED)
QD_KERNELS(q5_k, TILED)
QD_KERNELS(q6_k, LOOP)
QD_KERNELS(q4_k_i, TILED)
QD_KERNELS(q6_k_i, TILED)
QD_KERNELS(nvfp4_i, TILED)
QD_KERNELS(nvfp4, LOOP)
QD_KERNELS(mxfp4, LOOP)
/* Rows [0, n) of R16 weights (n a multiple of 16, w at a group's start) for T tokens. */
#define QD_R16_KERNEL(X)                                                                                      \
  QD_ATTR void QD(lmx_qdotn_##X)(const int8_t *x8, int64_t xs, int64_t T, const uint8_t *w, int64_t rb,       \
                                 int64_t n, int64_t K, float *out, int64_t os) {                              \
    QD_BATCH_TILED_BY(X, LMX_R16_ROWS)                                                                        \
  }
QD_R16_KERNEL(q4_k_r16)
QD_R16_KERNEL(q6_k_r16)
#undef QD_R16_KERNEL
#undef QD_KERNELS
#undef QD_ONE_TOKEN
#undef QD_TILE
#undef QD_BATCH_LOOP
#undef QD_BATCH_TILED
#undef QD_BATCH_TILED_BY

/* The kernel for a weight type, or NULL. */
static lmx_qdotn_fn QD(qdotn_for)(int32_t dtype) {
  switch (dtype) {
    case LMX_Q8_0: return QD(lmx_qdotn_q8_0);
    case LMX_Q8_0_I: return QD(lmx_qdotn_q8_0_i);
    case LMX_Q4_0: return QD(lmx_qdotn_q4_0);
    case LMX_Q4_1: return QD(lmx_qdotn_q4_1);
    case LMX_Q5_0: return QD(lmx_qdotn_q5_0);
    case LMX_Q5_1: return QD(lmx_qdotn_q5_1);
    case LMX_Q4_K: return QD(lmx_qdotn_q4_k);
    case LMX_Q5_K: return QD(lmx_qdotn_q5_k);
    case LMX_Q6_K: return QD(lmx_qdotn_q6_k);
    case LMX_Q4_K_I: return QD(lmx_qdotn_q4_k_i);
    case LMX_Q4_K_R16: return QD(lmx_qdotn_q4_k_r16);
    case LMX_Q6_K_R16: return QD(lmx_qdotn_q6_k_r16);
    case LMX_Q6_K_I: return QD(lmx_qdotn_q6_k_i);
    case LMX_NVFP4_I: return QD(lmx_qdotn_nvfp4_i);
    case LMX_NVFP4: return QD(lmx_qdotn_nvfp4);
    case LMX_MXFP4: return QD(lmx_qdotn_mxfp4);
    default: return NULL;
  }
}
