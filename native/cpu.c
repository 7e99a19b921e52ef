/* CPU feature detection for run-time kernel dispatch. */
#include <stdlib.h>
#include <string.h>

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
  /* The OS must save the registers: YMM state for AVX, opmask and ZMM state for AVX-512. */
  int ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6;
  if (ymm && ((c >> 12) & 1)) f |= LMX_CPU_FMA;
  if (ymm && ((c >> 29) & 1)) f |= LMX_CPU_F16C;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    if (ymm && ((b >> 5) & 1)) f |= LMX_CPU_AVX2;
    if (zmm && ((b >> 16) & 1)) f |= LMX_CPU_AVX512F;
    if (zmm && ((b >> 30) & 1)) f |= LMX_CPU_AVX512BW;
    if (zmm && ((b >> 31) & 1)) f |= LMX_CPU_AVX512VL;
    if (zmm && ((c >> 11) & 1)) f |= LMX_CPU_AVX512VNNI;
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    if (ymm && ((a >> 4) & 1)) f |= LMX_CPU_AVXVNNI;
    if (zmm && ((a >> 5) & 1)) f |= LMX_CPU_AVX512BF16;
  }
#ifdef LMX_EMULATE_AVX512
  /* Test builds run the AVX-512 and AVX-VNNI kernels through SIMDe on any AVX2 host. */
  if (f & LMX_CPU_AVX2) f |= LMX_CPU_AVX512F | LMX_CPU_AVX512BW | LMX_CPU_AVX512VL | LMX_CPU_AVX512VNNI | LMX_CPU_AVXVNNI;
#endif
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

static const char *const ISA_NAMES[] = {"scalar", "avx2", "avxvnni", "avx512"};

const char *lmx_isa_name(int isa) {
  return isa >= 0 && isa <= LMX_ISA_AVX512 ? ISA_NAMES[isa] : "?";
}

static int detect_isa(void) {
  const unsigned f = lmx_cpu_features();
  const unsigned avx2 = LMX_CPU_AVX2 | LMX_CPU_FMA | LMX_CPU_F16C;
  const unsigned avx512 = LMX_CPU_AVX512F | LMX_CPU_AVX512BW | LMX_CPU_AVX512VL | LMX_CPU_AVX512VNNI;
  int isa = LMX_ISA_SCALAR;
  if ((f & avx2) == avx2) {
    isa = LMX_ISA_AVX2;
    if (f & LMX_CPU_AVXVNNI) isa = LMX_ISA_AVXVNNI;
    if ((f & avx512) == avx512) isa = LMX_ISA_AVX512;
  }
  const char *off = getenv("LMX_NO_SIMD");
  if (off && off[0] && off[0] != '0') return LMX_ISA_SCALAR;
  const char *cap = getenv("LMX_ISA");
  if (cap && *cap)
    for (int i = 0; i <= LMX_ISA_AVX512; i++)
      if (strcmp(cap, ISA_NAMES[i]) == 0 && i < isa) isa = i;
  /* An AVX-512 CPU capped to the AVX-VNNI tier may lack the VEX-encoded instructions. */
  if (isa == LMX_ISA_AVXVNNI && !(f & LMX_CPU_AVXVNNI)) isa = LMX_ISA_AVX2;
  return isa;
}

int lmx_isa(void) {
  static int isa = -1;
  if (isa < 0) isa = detect_isa();
  return isa;
}

int lmx_use_avx2(void) {
  return lmx_isa() >= LMX_ISA_AVX2;
}
