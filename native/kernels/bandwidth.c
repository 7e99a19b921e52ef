/* A memory-bandwidth probe on lmx's own thread pool: streaming reads over a buffer far
 * larger than the caches, the bound that decode speed is measured against. The buffer is
 * asked for in 2 MiB pages, as the weights are (so LMX_HUGE_PAGES=0 turns it off for both):
 * the repacked weights live in huge pages (huge_pages.c), and a single thread reads ~20%
 * faster from them than from 4 KiB pages (Zen 4, session 19: 32-35 against 25-30 GB/s),
 * so a probe in 4 KiB pages would understate the bound. bench/kernel-dots times the same
 * read (lmx_stream_read) beside the decode dots. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../simd.h"

typedef struct {
  const float *buf;
  size_t n;
  float sink[256];
} probe_job;

static float read_scalar(const float *p, size_t n) {
  float a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    a += p[i]; b += p[i + 1]; c += p[i + 2]; d += p[i + 3];
  }
  return a + b + c + d;
}

#ifdef LMX_X86
static LMX_AVX2 float read_avx2(const float *p, size_t n) {
  __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a = _mm256_add_ps(a, _mm256_load_ps(p + i));
    b = _mm256_add_ps(b, _mm256_load_ps(p + i + 8));
    c = _mm256_add_ps(c, _mm256_load_ps(p + i + 16));
    d = _mm256_add_ps(d, _mm256_load_ps(p + i + 24));
  }
  return lmx_hsum8(_mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
}
#endif

float lmx_stream_read(const float *p, size_t n) {
#ifdef LMX_X86
  if (lmx_use_avx2()) return read_avx2(p, n);
#endif
  return read_scalar(p, n);
}

static void probe(void *arg, int ith, int nth) {
  probe_job *j = (probe_job *)arg;
  int64_t lo, hi;
  lmx_split((int64_t)j->n, 64, ith, nth, &lo, &hi);
  if (lo >= hi) return;
  j->sink[ith & 255] = lmx_stream_read(j->buf + lo, (size_t)(hi - lo));
}

int lmx_bandwidth_probe(size_t bytes, int repeats, double *gbs) {
  probe_job j;
  memset(&j, 0, sizeof j);
  j.n = bytes / sizeof(float);
  const size_t len = j.n * sizeof(float);
  float *buf = (float *)lmx_mmap_huge_aligned(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  if ((void *)buf == MAP_FAILED) return -1;
  memset(buf, 1, len);
  j.buf = buf;
  for (int r = 0; r < repeats; r++) {
    const int64_t t0 = lmx_now_ns();
    lmx_pool_run(probe, &j);
    gbs[r] = (double)len / (double)(lmx_now_ns() - t0); /* bytes per ns */
  }
  munmap(buf, len);
  return 0;
}
