/* Weights read in place from a mapped model file (F16, Q8_0, an NVFP4 model's Q8_0 output
 * head: whatever the cpu backend does not repack) reach decode through the page cache, and
 * the mapping is in 2 MiB pages only where the page cache holds 2 MiB folios. A file read
 * under MADV_HUGEPAGE (or by plain read()s, whose readahead grows) is cached in such
 * folios on ext4/xfs with Linux 6.16+, but a file just written (a download, a copy, a
 * quantizer's output) stays in the small folios of the writes until evicted: one thread's
 * Q8_0 decode read 40.2 tok/s from such a file and 44.5 once the same file was dropped
 * from the cache and read again (Zen 4, session 19). So at load the ranges are faulted in,
 * and where less than 90% of their whole 2 MiB pages came in as huge pages, those pages
 * are unmapped, dropped from the page cache (clean pages that no other process maps) and
 * faulted in again, read from the file in 2 MiB folios. The bytes are the file's either
 * way; what it costs is one read of those pages from the disk. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lmx.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define HUGE ((uintptr_t)LMX_HUGE_PAGE)

/* The bytes of the mapping at base that are mapped as 2 MiB file pages, from
 * /proc/self/smaps (-1 where it cannot be read). */
static long long file_pmd_mapped(const void *base) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  int in = 0;
  long long kb = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      if (in) break;
      in = (uintptr_t)base >= lo && (uintptr_t)base < hi;
    } else if (in && sscanf(line, "FilePmdMapped: %lld kB", &kb) == 1) {
      break;
    }
  }
  fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

static void populate(uint8_t *p, size_t n) {
  if (!n) return;
  if (madvise(p, n, MADV_POPULATE_READ) == 0) return;
  /* Before Linux 5.14: touch a byte of every page. */
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < n; i += page) sink ^= p[i];
  (void)sink;
}

/* The whole 2 MiB pages inside [base + off, base + off + len). */
static void inner(const uint8_t *base, size_t off, size_t len, uint8_t **a, uint8_t **b) {
  *a = (uint8_t *)(((uintptr_t)base + off + HUGE - 1) & ~(HUGE - 1));
  *b = (uint8_t *)(((uintptr_t)base + off + len) & ~(HUGE - 1));
  if (*b < *a) *b = *a;
}

static int by_offset(const void *a, const void *b) {
  const size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* Reads the whole 2 MiB pages of the m merged ranges again from the file; returns their
 * bytes (0 if the file cannot be opened). */
static size_t reread_whole_pages(uint8_t *base, const char *path, const size_t *ranges, int m) {
  const int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  /* Pages not yet written back cannot be dropped (a file just written): write them first. */
  fdatasync(fd);
  size_t bytes = 0;
  /* All dropped before any is read again: a fault's readahead reaches into the next 2 MiB,
   * which must not be found half cached in small folios. */
  for (int i = 0; i < m; i++) {
    uint8_t *a, *b;
    inner(base, ranges[2 * i], ranges[2 * i + 1], &a, &b);
    if (b == a) continue;
    /* Our page-table entries first: the cache keeps pages that are mapped. */
    madvise(a, (size_t)(b - a), MADV_DONTNEED);
    posix_fadvise(fd, (off_t)(a - base), (off_t)(b - a), POSIX_FADV_DONTNEED);
    bytes += (size_t)(b - a);
  }
  close(fd);
  for (int i = 0; i < m; i++) {
    uint8_t *a, *b;
    inner(base, ranges[2 * i], ranges[2 * i + 1], &a, &b);
    populate(a, (size_t)(b - a));
  }
  return bytes;
}

void lmx_file_pages_settle(uint8_t *base, const char *path, size_t *ranges, int n, int reread, lmx_file_pages *out) {
  memset(out, 0, sizeof *out);
  const int64_t t0 = lmx_now_ns();
  /* Tensors lie back to back in a model file, a few alignment bytes apart: merged, a run
   * of small tensors is whole 2 MiB pages too. */
  qsort(ranges, (size_t)n, 2 * sizeof *ranges, by_offset);
  int m = 0;
  for (int i = 0; i < n; i++) {
    out->bytes += ranges[2 * i + 1];
    if (m && ranges[2 * i] <= ranges[2 * m - 2] + ranges[2 * m - 1] + 4096) {
      const size_t end = ranges[2 * i] + ranges[2 * i + 1];
      if (end > ranges[2 * m - 2] + ranges[2 * m - 1]) ranges[2 * m - 1] = end - ranges[2 * m - 2];
    } else {
      ranges[2 * m] = ranges[2 * i];
      ranges[2 * m + 1] = ranges[2 * i + 1];
      m++;
    }
  }
  for (int i = 0; i < m; i++) {
    uint8_t *a, *b;
    inner(base, ranges[2 * i], ranges[2 * i + 1], &a, &b);
    out->eligible += (size_t)(b - a);
    populate(base + ranges[2 * i], ranges[2 * i + 1]);
  }
  const long long huge = file_pmd_mapped(base);
  out->huge_before = out->huge_after = huge < 0 ? 0 : (size_t)huge;
  /* Only a mapping aligned to 2 MiB (file offset 0 there) can hold 2 MiB file pages. */
  if (reread && huge >= 0 && !((uintptr_t)base & (HUGE - 1)) && (double)huge < 0.9 * (double)out->eligible) {
    out->reread = reread_whole_pages(base, path, ranges, m);
    const long long after = file_pmd_mapped(base);
    out->huge_after = after < 0 ? 0 : (size_t)after;
  }
  out->ms = (double)(lmx_now_ns() - t0) * 1e-6;
}
