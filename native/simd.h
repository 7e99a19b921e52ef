/* SIMD helpers shared by kernels. ISA variants are compiled with function-level target
 * attributes so one binary carries every path and picks one at run time. */
#ifndef LMX_SIMD_H
#define LMX_SIMD_H

#include <stdlib.h>

#include "lmx.h"

#if defined(__x86_64__) || defined(__i386__)
#define LMX_X86 1
#include <immintrin.h>
#ifdef LMX_EMULATE_AVX512
/* A test build (native/emulated/build.sh): the AVX-VNNI and AVX-512 intrinsics come from
 * SIMDe, which computes each one portably, so their kernels run on an AVX2 machine. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <string.h>
#define _mm256_dpbusd_avx_epi32 _mm256_dpbusd_epi32
#define _mm256_dpwssd_avx_epi32 _mm256_dpwssd_epi32
/* What this SIMDe version lacks, defined by its meaning. */
static inline simde__m512 lmx_emulated_cvtepi32_ps(simde__m512i v) {
  int32_t i[16];
  float f[16];
  memcpy(i, &v, sizeof i);
  for (int k = 0; k < 16; k++) f[k] = (float)i[k];
  simde__m512 r;
  memcpy(&r, f, sizeof r);
  return r;
}
#define _mm512_cvtepi32_ps lmx_emulated_cvtepi32_ps
static inline simde__m512i lmx_emulated_srai_epi32(simde__m512i v, int n) {
  int32_t i[16];
  memcpy(i, &v, sizeof i);
  for (int k = 0; k < 16; k++) i[k] >>= n; /* arithmetic on GCC and Clang */
  memcpy(&v, i, sizeof v);
  return v;
}
#define _mm512_srai_epi32 lmx_emulated_srai_epi32
static inline simde__m512 lmx_emulated_cvtph_ps(simde__m256i h) {
  uint16_t u[16];
  float f[16];
  memcpy(u, &h, sizeof u);
  for (int k = 0; k < 16; k++) f[k] = lmx_f16_to_f32(u[k]);
  simde__m512 r;
  memcpy(&r, f, sizeof r);
  return r;
}
#define _mm512_cvtph_ps lmx_emulated_cvtph_ps
#define LMX_AVX2 __attribute__((target("avx2,fma,f16c")))
#define LMX_AVXVNNI LMX_AVX2
#define LMX_AVX512 LMX_AVX2
#else
#define LMX_AVX2 __attribute__((target("avx2,fma,f16c")))
#define LMX_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define LMX_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#endif

/* Loads 8 consecutive elements of a float row as f32. */
static inline __attribute__((always_inline)) LMX_AVX2 __m256 lmx_load8(const void *p, int32_t dtype, int64_t i) {
  switch (dtype) {
    case LMX_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    case LMX_BF16: {
      __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    default: return _mm256_loadu_ps((const float *)p + i);
  }
}

/* Decode streams weights once: hardware prefetchers alone left Q8_0 decode ~12% slower
 * on Zen 3 than asking for the lines LMX_PREFETCH_BYTES ahead (2 KiB measured best of
 * 0.5-8 KiB; the LMX_PREFETCH_BYTES environment variable overrides it, 0 turns it off). */
#define LMX_PREFETCH_BYTES lmx_pf_bytes()
#define LMX_PREFETCH_DEFAULT 2048
static inline int lmx_pf_bytes(void) {
  static int v = -1;
  if (v < 0) { const char *e = getenv("LMX_PREFETCH_BYTES"); v = e ? atoi(e) : LMX_PREFETCH_DEFAULT; }
  return v;
}
/* The float GEMV's distance. On Zen 4 (the first AVX-512 CPU measured) the software
 * prefetch slowed F16 decode on one thread by ~10% (faster without it in 10 of 10
 * alternations over two sessions, and level with llama-bench), while the quantized dots
 * kept a small gain; so CPUs with AVX-512 leave float streams to the hardware prefetcher.
 * LMX_PREFETCH_BYTES overrides both distances. */
#define LMX_PREFETCH_FLOAT_BYTES lmx_pf_float_bytes()
static inline int lmx_pf_float_bytes(void) {
  static int v = -1;
  if (v < 0) v = getenv("LMX_PREFETCH_BYTES") ? lmx_pf_bytes() : (lmx_cpu_features() & LMX_CPU_AVX512F) ? 0 : LMX_PREFETCH_DEFAULT;
  return v;
}
/* Prefetches the cache lines of a block of `bytes` bytes at q. The quantized dots read
 * LMX_PREFETCH_BYTES once before their loop and pass p + that distance here (read inside
 * the loop, the compiler re-tested its first-use flag in every iteration). Non-temporal:
 * weights are read once per token, so their lines need not displace the activations, KV
 * rows and scales in L2. Zen 4, session 20, alternating builds against _MM_HINT_T0, one
 * thread tg64 medians of 5 runs: Q8_0 43.2 -> 46.1 tok/s (5 of 5 ahead), Q4_K_M 65.7 ->
 * 68.9 (4 of 5), NVFP4 64.1 -> 65.7 (4 of 5); two threads level (+1%). The cold kernel
 * alone went from ~90% to ~97% of a plain streaming read (bench/kernel-dots.sh). */
static inline __attribute__((always_inline)) void lmx_prefetch_at(const uint8_t *q, int bytes) {
  for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char *)q + o, _MM_HINT_NTA);
}

static inline __attribute__((always_inline)) LMX_AVX2 float lmx_hsum8(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

static inline __attribute__((always_inline)) LMX_AVX2 int32_t lmx_hsum8_i32(__m256i v) {
  __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
  return _mm_cvtsi128_si32(h);
}

/* The 128 codes (0..63) of half h of a Q6_K super-block at p (or Q6_K_I: the same layout)
 * in four registers, elements 128h + 32k.. in register k: the low 4 bits from ql, bit
 * pairs 0-1, 2-3, 4-5 and 6-7 of qh moved to bits 4-5 (16-bit shifts: what crosses into a
 * neighbouring byte is masked off). */
static inline __attribute__((always_inline)) LMX_AVX2 void lmx_q6k_codes_avx2(const uint8_t *p, int h, __m256i g[4]) {
  const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
  const __m256i L = _mm256_loadu_si256((const __m256i *)(p + 64 * h)), L2 = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32));
  const __m256i H = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
  g[0] = _mm256_or_si256(_mm256_and_si256(L, m4), _mm256_and_si256(_mm256_slli_epi16(H, 4), m30));
  g[1] = _mm256_or_si256(_mm256_and_si256(L2, m4), _mm256_and_si256(_mm256_slli_epi16(H, 2), m30));
  g[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L, 4), m4), _mm256_and_si256(H, m30));
  g[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L2, 4), m4), _mm256_and_si256(_mm256_srli_epi16(H, 2), m30));
}

static inline __attribute__((always_inline)) LMX_AVX2 float lmx_hsum4(__m128 v) {
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  v = _mm_add_ss(v, _mm_movehdup_ps(v));
  return _mm_cvtss_f32(v);
}

/* e^x for x in [-87.3, 88.7] (clamped outside): 2^k * e^r with r = x - k ln 2 taken in two
 * parts, e^r by a degree-6 polynomial on |r| <= ln 2 / 2. */
static inline __attribute__((always_inline)) LMX_AVX2 __m256 lmx_exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  /* 2^k in two factors, so that k = 128 (x near 88.7) does not overflow the exponent. */
  const __m256i ki = _mm256_cvtps_epi32(k), k1 = _mm256_srai_epi32(ki, 1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ki, k1), _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* t[i * ldt + j] = a[j * lda + i] for an 8 x 8 block, in registers. */
static inline __attribute__((always_inline)) LMX_AVX2 void lmx_transpose8x8(const float *a, int64_t lda, float *t,
                                                                            int64_t ldt) {
  __m256 r0 = _mm256_loadu_ps(a), r1 = _mm256_loadu_ps(a + lda), r2 = _mm256_loadu_ps(a + 2 * lda), r3 = _mm256_loadu_ps(a + 3 * lda);
  __m256 r4 = _mm256_loadu_ps(a + 4 * lda), r5 = _mm256_loadu_ps(a + 5 * lda), r6 = _mm256_loadu_ps(a + 6 * lda), r7 = _mm256_loadu_ps(a + 7 * lda);
  __m256 u0 = _mm256_unpacklo_ps(r0, r1), u1 = _mm256_unpackhi_ps(r0, r1), u2 = _mm256_unpacklo_ps(r2, r3), u3 = _mm256_unpackhi_ps(r2, r3);
  __m256 u4 = _mm256_unpacklo_ps(r4, r5), u5 = _mm256_unpackhi_ps(r4, r5), u6 = _mm256_unpacklo_ps(r6, r7), u7 = _mm256_unpackhi_ps(r6, r7);
  __m256 s0 = _mm256_shuffle_ps(u0, u2, 0x44), s1 = _mm256_shuffle_ps(u0, u2, 0xEE), s2 = _mm256_shuffle_ps(u1, u3, 0x44), s3 = _mm256_shuffle_ps(u1, u3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(u4, u6, 0x44), s5 = _mm256_shuffle_ps(u4, u6, 0xEE), s6 = _mm256_shuffle_ps(u5, u7, 0x44), s7 = _mm256_shuffle_ps(u5, u7, 0xEE);
  _mm256_storeu_ps(t, _mm256_permute2f128_ps(s0, s4, 0x20));
  _mm256_storeu_ps(t + ldt, _mm256_permute2f128_ps(s1, s5, 0x20));
  _mm256_storeu_ps(t + 2 * ldt, _mm256_permute2f128_ps(s2, s6, 0x20));
  _mm256_storeu_ps(t + 3 * ldt, _mm256_permute2f128_ps(s3, s7, 0x20));
  _mm256_storeu_ps(t + 4 * ldt, _mm256_permute2f128_ps(s0, s4, 0x31));
  _mm256_storeu_ps(t + 5 * ldt, _mm256_permute2f128_ps(s1, s5, 0x31));
  _mm256_storeu_ps(t + 6 * ldt, _mm256_permute2f128_ps(s2, s6, 0x31));
  _mm256_storeu_ps(t + 7 * ldt, _mm256_permute2f128_ps(s3, s7, 0x31));
}

/* 8 int8 codes at p as f32. */
static inline __attribute__((always_inline)) LMX_AVX2 __m256 lmx_i8x8_ps(const int8_t *p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* The little-endian f16 at p, as f32, with the F16C instruction. */
static inline __attribute__((always_inline)) LMX_AVX2 float lmx_f16_avx2(const uint8_t *p) {
  return _cvtsh_ss((unsigned short)(p[0] | (p[1] << 8)));
}
#endif

/* An activation row prepared once for the fused decode dots (lmx_x8_row): K int8 codes,
 * K/32 float scales dx, K/16 int32 code sums per 16 (s16), then the same sums as int16
 * and the sums per 32 as int16 (what the K-quant kernels multiply with int16 scales). */
int64_t lmx_x8_bytes(int64_t K);
void lmx_x8_row(const float *x, int64_t K, int32_t wtype, int8_t *rec);
static inline const int16_t *lmx_x8_sums16(const int32_t *s16, int64_t K) {
  return (const int16_t *)(s16 + K / 16);
}
static inline const int16_t *lmx_x8_sums32(const int32_t *s16, int64_t K) {
  return lmx_x8_sums16(s16, K) + K / 16;
}
/* For NVFP4 weights the record goes on with per-sub-block factors for pairs of 64-blocks,
 * 8 lanes a pair in the order a0 a1 b0 b1 a2 a3 b2 b3 (block, sub-block of 16): k16, the
 * activation scale of each, then o16, 12 times its code sum (as int32). */
static inline int64_t lmx_x8_nvfp4_lanes(int64_t K) {
  return (K / 64 + 1) / 2 * 8;
}
static inline const float *lmx_x8_nvfp4_k16(const int32_t *s16, int64_t K) {
  return (const float *)(lmx_x8_sums32(s16, K) + K / 32);
}

/* 2^(e - 128) (MXFP4's E8M0 scale at half its value, for doubled codes); 2^-127 and 2^-128
 * for e = 1 and 0. */
static inline float lmx_pow2_half(uint8_t e) {
  if (e <= 1) return e ? 0x1p-127f : 0x1p-128f;
  union { uint32_t u; float f; } v;
  v.u = (uint32_t)(e - 1) << 23;
  return v.f;
}

/* Fused decode dots of n consecutive block-quantized weight rows (w, w + rb, ...) with T
 * activation rows prepared by lmx_x8_row (records xs bytes apart at x8: codes, one scale
 * per 32, code sums per 16 and after them): out[t * os + i] for row i and token t. Every
 * output has the same bits whatever n and T. */
typedef void (*lmx_qdotn_fn)(const int8_t *x8, int64_t xs, int64_t T, const uint8_t *w, int64_t rb, int64_t n, int64_t K,
                             float *out, int64_t os);
/* The fused dots for this weight type on the active tier (lmx_isa), or NULL. */
lmx_qdotn_fn lmx_qdotn_for(int32_t dtype);

/* Quantizes an activation row to int8 as llama.cpp does for Q8_0 (super = 0) or K-quant
 * (super = 1) weights; dx gets one scale per 32 values, s16 the code sums per 16. */
void lmx_quantize_x8(const float *x, int64_t K, int super, int8_t *q, float *dx, int32_t *s16);
/* Whether activations for this weight type are quantized as for K-quants (super = 1). */
static inline int lmx_x8_super(int32_t wtype) {
  const int32_t t = lmx_interleaved_base(wtype);
  return t == LMX_Q4_K || t == LMX_Q5_K || t == LMX_Q6_K;
}

static inline float lmx_elem(const void *p, int32_t dtype, int64_t i) {
  switch (dtype) {
    case LMX_F16: return lmx_f16_to_f32(((const uint16_t *)p)[i]);
    case LMX_BF16: return lmx_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
  }
}

/* Splits [0, n) into nth parts aligned to `align`; returns this thread's range. */
static inline void lmx_split(int64_t n, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi) {
  int64_t per = (n + nth - 1) / nth;
  per = (per + align - 1) / align * align;
  *lo = per * ith;
  *hi = *lo + per;
  if (*lo > n) *lo = n;
  if (*hi > n) *hi = n;
}

#endif
