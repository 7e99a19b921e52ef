/* f16/bf16 <-> f32 conversions (IEEE half with subnormals, round to nearest even). */
#include <string.h>

#include "../simd.h"

float lmx_f16_to_f32(uint16_t h) {
  uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
  if (e == 0) {
    if (m == 0) {
      u = s;
    } else {
      e = 127 - 15 + 1;
      while (!(m & 0x400)) { m <<= 1; e--; }
      u = s | (e << 23) | ((m & 0x3ff) << 13);
    }
  } else if (e == 31) {
    u = s | 0x7f800000u | (m << 13);
  } else {
    u = s | ((e + 127 - 15) << 23) | (m << 13);
  }
  float f;
  memcpy(&f, &u, 4);
  return f;
}

uint16_t lmx_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t s = (x >> 16) & 0x8000, e = (x >> 23) & 0xff, m = x & 0x7fffff;
  if (e == 0xff) return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
  int32_t ne = (int32_t)e - 127 + 15;
  if (ne >= 31) return (uint16_t)(s | 0x7c00);
  if (ne <= 0) {
    if (ne < -10) return (uint16_t)s;
    m |= 0x800000;
    int shift = 14 - ne;
    uint32_t half = 1u << (shift - 1), rest = m & ((1u << shift) - 1), q = m >> shift;
    if (rest > half || (rest == half && (q & 1))) q++;
    return (uint16_t)(s | q);
  }
  uint32_t q = ((uint32_t)ne << 10) | (m >> 13), rest = m & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (q & 1))) q++;
  return (uint16_t)(s | q);
}

#ifdef LMX_X86
/* With a prefetch per 64 source bytes, LMX_PREFETCH_BYTES ahead: packing F16 weights for
 * prefill converts whole rows from memory, and without it ~10% of F16 prefill's samples
 * sat on those loads (~1 GB/s). One thread's pp512: ~67.6 -> ~71 tok/s (medians of 4
 * alternating runs); on two threads no change beyond the noise. */
static LMX_AVX2 void row_to_f32_avx2(const void *src, int32_t dtype, float *dst, int64_t n) {
  const int es = dtype == LMX_F32 ? 4 : 2, pf = LMX_PREFETCH_BYTES;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const char *s = (const char *)src + i * es + pf;
    _mm_prefetch(s, _MM_HINT_T0);
    if (es == 4) _mm_prefetch(s + 64, _MM_HINT_T0);
    for (int j = 0; j < 32; j += 8) _mm256_storeu_ps(dst + i + j, lmx_load8(src, dtype, i + j));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, lmx_load8(src, dtype, i));
  for (; i < n; i++) dst[i] = lmx_elem(src, dtype, i);
}
#endif

#ifdef LMX_X86
/* Q8_0 rows are what a q8_0 KV cache holds: attention converts every key and value row it
 * reads, so this path stays out of the generic block decoder. */
static LMX_AVX2 void q8_0_to_f32_avx2(const uint8_t *src, float *dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; b++, src += 34, dst += 32) {
    const __m256 d = _mm256_set1_ps(lmx_f16_avx2(src));
    for (int i = 0; i < 32; i += 8) _mm256_storeu_ps(dst + i, _mm256_mul_ps(d, lmx_i8x8_ps((const int8_t *)src + 2 + i)));
  }
}
#endif

void lmx_row_to_f32(const void *src, int32_t dtype, float *dst, int64_t n) {
#ifdef LMX_X86
  if (dtype == LMX_Q8_0 && n % 32 == 0 && lmx_use_avx2()) { q8_0_to_f32_avx2(src, dst, n); return; }
#endif
  if (LMX_IS_QUANT(dtype)) { lmx_dequant_row(src, dtype, dst, n); return; }
#ifdef LMX_X86
  if (lmx_use_avx2()) { row_to_f32_avx2(src, dtype, dst, n); return; }
#endif
  for (int64_t i = 0; i < n; i++) dst[i] = lmx_elem(src, dtype, i);
}

#ifdef LMX_X86
static LMX_AVX2 void row_to_f16_avx2(const float *src, uint16_t *dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; i++) dst[i] = lmx_f32_to_f16(src[i]);
}
#endif

/* f32 -> f16, round to nearest even (F16C gives the same bits as lmx_f32_to_f16 for every
 * non-NaN input). */
void lmx_row_to_f16(const float *src, uint16_t *dst, int64_t n) {
#ifdef LMX_X86
  if (lmx_use_avx2()) { row_to_f16_avx2(src, dst, n); return; }
#endif
  for (int64_t i = 0; i < n; i++) dst[i] = lmx_f32_to_f16(src[i]);
}
