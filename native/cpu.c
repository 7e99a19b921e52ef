/* CPU feature detection for run-time kernel dispatch. */
#include <stdlib.h>

#include "lmx.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
  unsigned int lo, hi;
  __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}

static unsigned detect(void) {
  unsigned a, b, c, d, f = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  int osxsave = (c >> 27) & 1;
  if (!osxsave) return 0;
  unsigned long long xcr0 = xgetbv0();
  int ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6;
  if (ymm && ((c >> 12) & 1)) f |= LMX_CPU_FMA;
  if (ymm && ((c >> 29) & 1)) f |= LMX_CPU_F16C;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    if (ymm && ((b >> 5) & 1)) f |= LMX_CPU_AVX2;
    if (zmm && ((b >> 16) & 1)) f |= LMX_CPU_AVX512F;
    if (zmm && ((b >> 30) & 1)) f |= LMX_CPU_AVX512BW;
    if (zmm && ((c >> 11) & 1)) f |= LMX_CPU_AVX512VNNI;
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    if (zmm && ((a >> 5) & 1)) f |= LMX_CPU_AVX512BF16;
  }
  return f;
}
#elif defined(__aarch64__)
static unsigned detect(void) { return LMX_CPU_NEON; }
#else
static unsigned detect(void) { return 0; }
#endif

static unsigned cached = 0xffffffffu;

unsigned lmx_cpu_features(void) {
  if (cached == 0xffffffffu) cached = detect();
  return cached;
}

int lmx_use_avx2(void) {
  static int use = -1;
  if (use < 0) {
    unsigned need = LMX_CPU_AVX2 | LMX_CPU_FMA | LMX_CPU_F16C;
    const char *off = getenv("LMX_NO_SIMD");
    use = (lmx_cpu_features() & need) == need && !(off && off[0] && off[0] != '0');
  }
  return use;
}
