/* N-API surface of the native core: file mapping, aligned buffers, plans and samplers.
 * This file only converts between JavaScript values and the C structures in lmx.h. */
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lmx.h"
#include "simd.h"

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "lmx native: N-API call failed: " #call); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)
#define THROW(msg)                        \
  do {                                    \
    napi_throw_error(env, NULL, (msg));   \
    return NULL;                          \
  } while (0)

static napi_value args_of(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  for (size_t i = argc; i < want; i++) napi_get_undefined(env, &argv[i]);
  return argv[0];
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_undefined || t == napi_null;
}

/* ---- memory ---- */

/* A mapping behind an ArrayBuffer. Those of model files (mapFile, readFile) are also kept
 * in a list, so that bytes the engine has copied into another layout can be given back
 * (release_file_bytes), with their path; read_in is set for a file read into memory. alloc's anonymous
 * mappings are in another (release_scratch). Only the JavaScript thread touches the
 * lists (finalizers run on it too). */
typedef struct mapping {
  void *addr;
  size_t len;
  char *path;
  int read_in;
  struct mapping *next;
} mapping;

/* The interleaved weights' mapping is in neither list. */
static mapping *file_mappings, *scratch_mappings;

static int unlink_mapping(mapping **list, const mapping *m) {
  for (mapping **p = list; *p; p = &(*p)->next)
    if (*p == m) {
      *p = m->next;
      return 1;
    }
  return 0;
}

static void unmap_cb(napi_env env, void *data, void *hint) {
  (void)env; (void)data;
  mapping *m = (mapping *)hint;
  if (!unlink_mapping(&file_mappings, m)) unlink_mapping(&scratch_mappings, m);
  if (m->len) {
    lmx_collapse_cancel(m->addr, m->len);
    munmap(m->addr, m->len);
  }
  free(m->path);
  free(m);
}

/* An ArrayBuffer of `bytes` over the mapping [addr, addr + len), unmapped when collected;
 * on failure the mapping is unmapped and a JavaScript error is pending (NULL returned).
 * kind: BUF_FILE for a model file's bytes mapped from path, BUF_FILE_READ for them read
 * into memory from path, BUF_SCRATCH for alloc's buffers, BUF_OTHER for anything else. */
enum { BUF_OTHER, BUF_FILE, BUF_FILE_READ, BUF_SCRATCH };

static napi_value mapping_buffer(napi_env env, void *addr, size_t len, size_t bytes, int kind, const char *path) {
  mapping *m = (mapping *)calloc(1, sizeof *m);
  if (!m || (path && !(m->path = strdup(path)))) {
    free(m);
    munmap(addr, len);
    THROW("lmx native: out of memory");
  }
  m->addr = addr;
  m->len = len;
  m->read_in = kind == BUF_FILE_READ;
  napi_value ab;
  if (napi_create_external_arraybuffer(env, addr, bytes, unmap_cb, m, &ab) != napi_ok) {
    munmap(addr, len);
    free(m->path);
    free(m);
    THROW("lmx native: this Node.js does not allow external array buffers");
  }
  mapping **list = kind == BUF_FILE || kind == BUF_FILE_READ ? &file_mappings : kind == BUF_SCRATCH ? &scratch_mappings : NULL;
  if (list) {
    m->next = *list;
    *list = m;
  }
  return ab;
}

/* Gives back the whole pages of [p, p + n) when they belong to a model file's buffer whose
 * bytes the engine no longer reads there: a mapped file's pages are dropped (they fault in
 * again from the file if read), a file read into memory gets its pages mapped from the
 * file again (so a stale reader still sees the file's bytes, not zeros). */
static void release_file_bytes(const uint8_t *p, size_t n) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (mapping *m = file_mappings; m; m = m->next) {
    const uint8_t *base = (const uint8_t *)m->addr;
    if (p < base || p + n > base + m->len) continue;
    const uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + n) & ~(page - 1);
    if (b <= a) return;
    if (!m->read_in) {
      madvise((void *)a, b - a, MADV_DONTNEED);
      return;
    }
    const int fd = open(m->path, O_RDONLY);
    if (fd < 0) return;
    struct stat st;
    const off_t off = (off_t)(a - (uintptr_t)base);
    if (fstat(fd, &st) == 0 && st.st_size >= off + (off_t)(b - a))
      mmap((void *)a, b - a, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, off);
    close(fd);
    return;
  }
}

/* The file read-only at a 2 MiB boundary with transparent huge pages asked for, or
 * MAP_FAILED. Where the kernel keeps the file in 2 MiB page-cache folios (ext4 and xfs on
 * Linux 6.16+ read it in such folios under MADV_HUGEPAGE), every 2 MiB of weights is then
 * one TLB entry, and decode, which streams all weights per token, stops paying a page walk
 * and a halted hardware prefetch every 4 KiB (measured: +6-12% tokens/s on a Q4_K_M
 * model). Still a plain shared file mapping: no copy, the page cache stays shared. */
static void *map_huge_aligned(int fd, size_t len) {
  return lmx_mmap_huge_aligned(len, PROT_READ, MAP_PRIVATE, fd);
}

/* The whole file read into private anonymous memory in 2 MiB pages (use_mmap=false): no
 * longer shared with the page cache, but in huge pages whatever folios the page cache
 * holds (a file cached in 4 KiB folios maps in 4 KiB pages), and read-only once read.
 * MAP_FAILED with msg set on failure. */
static void *read_huge_aligned(int fd, size_t len, const char *path, char *msg, size_t msg_len) {
  void *addr = lmx_mmap_huge_aligned(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  if (addr == MAP_FAILED) {
    snprintf(msg, msg_len, "cannot read %s into memory: %s", path, strerror(errno));
    return MAP_FAILED;
  }
  for (size_t done = 0; done < len;) {
    const size_t want = len - done > ((size_t)1 << 30) ? (size_t)1 << 30 : len - done;
    const ssize_t r = pread(fd, (char *)addr + done, want, (off_t)done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      snprintf(msg, msg_len, "cannot read %s: %s", path, r < 0 ? strerror(errno) : "the file shrank while being read");
      munmap(addr, len);
      return MAP_FAILED;
    }
    done += (size_t)r;
  }
  mprotect(addr, len, PROT_READ);
  return addr;
}

/* mapFile(path) / readFile(path): the file's bytes as an ArrayBuffer, mapped (shared with
 * the page cache, zero-copy) or read into private huge pages. */
static napi_value file_buffer(napi_env env, napi_callback_info info, int read_it) {
  napi_value argv[1];
  args_of(env, info, 1, argv);
  char path[4096];
  size_t plen;
  CHECK(napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen));
  int fd = open(path, O_RDONLY);
  char msg[4300];
  if (fd < 0) {
    snprintf(msg, sizeof msg, "cannot open %s: %s", path, strerror(errno));
    THROW(msg);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(msg, sizeof msg, "cannot stat %s: %s", path, strerror(errno));
    close(fd);
    THROW(msg);
  }
  size_t len = (size_t)st.st_size;
  if (len == 0) {
    close(fd);
    napi_value ab;
    void *p;
    CHECK(napi_create_arraybuffer(env, 0, &p, &ab));
    return ab;
  }
  void *addr;
  if (read_it) {
    addr = read_huge_aligned(fd, len, path, msg, sizeof msg);
  } else {
    addr = map_huge_aligned(fd, len);
    /* Without room for the aligned reservation, a plain mapping still works. */
    if (addr == MAP_FAILED) addr = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) snprintf(msg, sizeof msg, "cannot map %s: %s", path, strerror(errno));
  }
  close(fd);
  if (addr == MAP_FAILED) THROW(msg);
  return mapping_buffer(env, addr, len, len, read_it ? BUF_FILE_READ : BUF_FILE, path);
}

static napi_value map_file(napi_env env, napi_callback_info info) {
  return file_buffer(env, info, 0);
}

static napi_value read_file(napi_env env, napi_callback_info info) {
  return file_buffer(env, info, 1);
}

static void free_cb(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  free(data);
}

/* Buffers from LAZY_BYTES up are anonymous mappings: the kernel hands out zeroed pages
 * only when first touched, so a KV cache sized for a long context costs resident memory
 * only for the tokens actually cached (a memset would make all of it resident at load).
 * They start at a 2 MiB boundary, in 4 KiB pages: what a KV cache has filled moves into
 * huge pages later, in the background (collapseLater). */
#define LAZY_BYTES ((size_t)1 << 20)

static napi_value alloc_buffer(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  args_of(env, info, 1, argv);
  double bytes;
  CHECK(napi_get_value_double(env, argv[0], &bytes));
  if (bytes < 0 || bytes > 1e13) THROW("lmx native: invalid allocation size");
  size_t len = ((size_t)bytes + 63) / 64 * 64;
  if (len == 0) len = 64;
  napi_value ab;
  if (len >= LAZY_BYTES) {
    void *p = lmx_mmap_2m_aligned(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
    if (p == MAP_FAILED) THROW("lmx native: out of memory");
    return mapping_buffer(env, p, len, (size_t)bytes, BUF_SCRATCH, NULL);
  }
  void *p = aligned_alloc(64, len);
  if (!p) THROW("lmx native: out of memory");
  memset(p, 0, len);
  if (napi_create_external_arraybuffer(env, p, (size_t)bytes, free_cb, NULL, &ab) != napi_ok) {
    free(p);
    THROW("lmx native: this Node.js does not allow external array buffers");
  }
  return ab;
}

static double now_ms(void) {
  return (double)lmx_now_ns() * 1e-6;
}

/* Faults in fresh memory from mmap_huge_aligned on this thread, one part at a time just
 * before the pool writes it: huge-page faults taken by two threads at once made copying a
 * 400 MB model up to 4x slower (1350 ms against 50 + 300), and faulting all of it first
 * made the load's peak weights x 2 (the file's pages are given back part by part). A
 * huge-page fault costs ~0.1 ms when the kernel has one free, but 1-9 ms on this VM after
 * the first ~100 MiB or so (measured; whatever the cause, compaction or the host): past an
 * average of 1 ms per 2 MiB the rest is copied into 4 KiB pages, which the copy faults in
 * as it goes, and huge_pages.c collapses into huge pages in the background: they make
 * one thread's decode ~15% faster, but are not worth seconds of loading a large model. */
typedef struct {
  uint8_t *end;
  double t0, budget;
  int64_t pages;
  /* Where the 4 KiB pages begin (NULL: all in huge pages). */
  uint8_t *small;
} prefault_state;

/* The prefault's allowance in ms beyond 1 ms per page (LMX_HUGE_PAGE_BUDGET_MS; 0: none,
 * every page is left to the background collapse). */
static double huge_page_budget_ms(void) {
  const char *e = getenv("LMX_HUGE_PAGE_BUDGET_MS");
  return e ? atof(e) : 10;
}

static void prefault_part(prefault_state *s, uint8_t *p, size_t len) {
  const uintptr_t huge = LMX_HUGE_PAGE;
  if (s->small) return;
  if (!s->pages) s->t0 = now_ms();
  /* The first byte of every 2 MiB page that starts in [p, p + len) (base is aligned). */
  uint8_t *q = (uint8_t *)(((uintptr_t)p + huge - 1) & ~(huge - 1));
  for (; q < p + len; q += huge, s->pages++) {
    /* Over the budget (1 ms per page touched so far, plus the allowance): q and the pages
     * after it are copied into 4 KiB pages. */
    if (s->budget <= 0 || now_ms() - s->t0 > s->budget + (double)s->pages) {
      madvise(q, (size_t)(s->end - q), MADV_NOHUGEPAGE);
      s->small = q;
      return;
    }
    *q = 0;
  }
}

/* Units of a tensor's conversion (lmx_interleave_units): blocks of the interleaved type, or
 * for the R16 types groups of 16 rows (sbytes of the source make dbytes of the result). */
typedef struct {
  int32_t dtype, to;
  const uint8_t *src;
  uint8_t *dst;
  int64_t units, sbytes, dbytes, cols;
} interleave_job;

static void interleave_part(void *arg, int ith, int nth) {
  const interleave_job *j = (const interleave_job *)arg;
  int64_t lo, hi;
  lmx_split(j->units, 1, ith, nth, &lo, &hi);
  if (hi > lo) lmx_interleave_units(j->dtype, j->to, j->src + lo * j->sbytes, j->dst + lo * j->dbytes, hi - lo, j->cols);
}

/* releaseScratch(buffer): empties a buffer from alloc that is an anonymous mapping (1 MiB
 * and up): its pages go back to the system and read as zeros when next touched. Returns
 * whether it was one (other buffers are left alone). A plan's arena holds nothing between
 * runs, so a runner keeps only the last-run large one resident (cpu backend). */
/* The mapping of one of alloc's large buffers that starts at data, or NULL. */
static mapping *scratch_mapping_at(const void *data) {
  for (mapping *m = scratch_mappings; m; m = m->next)
    if (m->addr == data) return m;
  return NULL;
}

static napi_value release_scratch(napi_env env, napi_callback_info info) {
  napi_value argv[1], r;
  args_of(env, info, 1, argv);
  void *data = NULL;
  size_t len = 0;
  mapping *m = napi_get_arraybuffer_info(env, argv[0], &data, &len) == napi_ok ? scratch_mapping_at(data) : NULL;
  if (m) madvise(m->addr, m->len, MADV_DONTNEED);
  napi_get_boolean(env, m != NULL, &r);
  return r;
}

/* collapseLater(buffer, byteOffset, length) -> whether the buffer is one of alloc's
 * mappings (1 MiB and up; other buffers are left alone). Queues the whole 2 MiB pages of
 * that range for the background collapse into huge pages (huge_pages.c), for memory
 * already written that stays: a KV cache's filled part. Decode at depth reads every cached
 * position per token, and one thread read a 4096-position f16 cache 4-8% faster from huge
 * pages (bench/attention-decode.mjs on Zen 4, 3 of 3 alternations): TLB reach, and
 * hardware prefetch that stops at every 4 KiB page. Faulting the cache in huge pages as it grows
 * would instead stall the decode step that crosses into a new 2 MiB of every layer's pools
 * (a huge-page fault costs up to ~5 ms on some VMs: huge_pages.c) and make short
 * conversations hold 2 MiB per pool. */
static napi_value collapse_later(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  args_of(env, info, 3, argv);
  void *data = NULL;
  size_t len = 0;
  double off = 0, n = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok || napi_get_value_double(env, argv[1], &off) != napi_ok ||
      napi_get_value_double(env, argv[2], &n) != napi_ok)
    THROW("collapseLater: expected (ArrayBuffer, byteOffset, length)");
  if (!(off >= 0 && n >= 0 && off + n <= (double)len)) THROW("collapseLater: range outside the buffer");
  /* Only alloc's mappings: their unmapping withdraws what is queued (unmap_cb). */
  const int found = scratch_mapping_at(data) != NULL;
  if (found && lmx_huge_pages_wanted() && n > 0) lmx_collapse_async((uint8_t *)data + (size_t)off, (size_t)n);
  napi_value r;
  napi_get_boolean(env, found, &r);
  return r;
}

/* releaseFileBytes(buffer, byteOffset, length): gives back the whole pages of that range
 * of a model file's buffer (release_file_bytes), once the engine keeps its own copy of
 * what it needs there (the GGUF header's vocabulary, for instance). A later read still
 * sees the file's bytes. */
static napi_value release_file_bytes_js(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  args_of(env, info, 3, argv);
  void *data = NULL;
  size_t len = 0;
  double off = 0, n = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok || napi_get_value_double(env, argv[1], &off) != napi_ok ||
      napi_get_value_double(env, argv[2], &n) != napi_ok)
    THROW("releaseFileBytes: expected (ArrayBuffer, byteOffset, length)");
  if (!(off >= 0 && n >= 0 && off + n <= (double)len)) THROW("releaseFileBytes: range outside the buffer");
  release_file_bytes((const uint8_t *)data + (size_t)off, (size_t)n);
  return NULL;
}

/* settleFilePages(buffer, ranges) -> null, or {bytes, eligible, hugeBefore, hugeAfter,
 * reread, ms}: faults in the (byteOffset, length) pairs of a mapped model file's buffer
 * that the engine reads in place, read again from the file in 2 MiB pages where the page
 * cache held them in small ones (file_pages.c; not with LMX_HUGE_PAGES=0). null for a
 * buffer that is not a mapped file, or when the ranges exceed half of the machine's memory
 * (they are left to fault in as read, as a plain mapping would). */
static napi_value settle_file_pages(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  args_of(env, info, 2, argv);
  void *data = NULL;
  size_t len = 0;
  uint32_t n = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok || napi_get_array_length(env, argv[1], &n) != napi_ok ||
      n % 2)
    THROW("settleFilePages: expected (ArrayBuffer, [byteOffset, length, ...])");
  mapping *m = file_mappings;
  while (m && (m->addr != data || m->read_in)) m = m->next;
  if (!m) return NULL;
  size_t *ranges = (size_t *)malloc((n ? n : 1) * sizeof *ranges);
  if (!ranges) THROW("lmx native: out of memory");
  size_t total = 0;
  for (uint32_t i = 0; i < n; i += 2) {
    napi_value v;
    double off = -1, bytes = -1;
    if (napi_get_element(env, argv[1], i, &v) == napi_ok) napi_get_value_double(env, v, &off);
    if (napi_get_element(env, argv[1], i + 1, &v) == napi_ok) napi_get_value_double(env, v, &bytes);
    if (!(off >= 0 && bytes >= 0 && off + bytes <= (double)len)) {
      free(ranges);
      THROW("settleFilePages: range outside the buffer");
    }
    ranges[i] = (size_t)off;
    ranges[i + 1] = (size_t)bytes;
    total += (size_t)bytes;
  }
  const double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  if ((double)total > 0.5 * phys) {
    free(ranges);
    return NULL;
  }
  lmx_file_pages st;
  lmx_file_pages_settle((uint8_t *)data, m->path, ranges, (int)(n / 2), lmx_huge_pages_wanted(), &st);
  free(ranges);
  napi_value r, v;
  CHECK(napi_create_object(env, &r));
  const struct { const char *k; double v; } f[] = {{"bytes", (double)st.bytes},           {"eligible", (double)st.eligible},
                                                    {"hugeBefore", (double)st.huge_before}, {"hugeAfter", (double)st.huge_after},
                                                    {"reread", (double)st.reread},          {"ms", st.ms}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    CHECK(napi_create_double(env, f[i].v, &v));
    CHECK(napi_set_named_property(env, r, f[i].k, v));
  }
  return r;
}

/* interleaveWeights([[buffer, byteOffset, dtype, rows, cols], ...]) -> null, or
 * {buffer, offsets, dtypes}: the tensors whose type has an interleaved form the decode dots
 * read faster (lmx_interleaved_type), copied into one buffer of private memory in 2 MiB
 * pages (offsets[i] into it, -1 for tensors left as they are), their source bytes given
 * back where they are a model file's (release_file_bytes). null when no tensor qualifies or
 * the CPU lacks the kernels (AVX2). */
static napi_value interleave_weights(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  args_of(env, info, 1, argv);
  uint32_t n = 0;
  if (napi_get_array_length(env, argv[0], &n) != napi_ok) THROW("interleaveWeights: expected an array");
  if (!lmx_use_avx2() || n == 0) return NULL;
  typedef struct { const uint8_t *src; int64_t units, sbytes, dbytes, cols; int32_t dtype, to; size_t off; } job;
  job *jobs = (job *)calloc(n, sizeof *jobs);
  if (!jobs) THROW("lmx native: out of memory");
  size_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e, v[5];
    napi_get_element(env, argv[0], i, &e);
    for (uint32_t k = 0; k < 5; k++) napi_get_element(env, e, k, &v[k]);
    void *data = NULL;
    size_t len = 0;
    double off = 0, rows = 0, cols = 0;
    int32_t dtype = 0;
    if (napi_get_arraybuffer_info(env, v[0], &data, &len) != napi_ok || napi_get_value_double(env, v[1], &off) != napi_ok ||
        napi_get_value_int32(env, v[2], &dtype) != napi_ok || napi_get_value_double(env, v[3], &rows) != napi_ok ||
        napi_get_value_double(env, v[4], &cols) != napi_ok) {
      free(jobs);
      THROW("interleaveWeights: expected [ArrayBuffer, byteOffset, dtype, rows, cols] entries");
    }
    const int32_t to = cols > 0 && rows > 0 && (int64_t)cols % lmx_block_size(dtype) == 0
                           ? lmx_interleaved_type(dtype, (int64_t)rows, (int64_t)cols) : 0;
    if (!to) continue;
    const size_t bytes = (size_t)((int64_t)rows * lmx_row_bytes(dtype, (int64_t)cols));
    if (off < 0 || (size_t)off + bytes > len) {
      free(jobs);
      THROW("interleaveWeights: a tensor lies outside its buffer");
    }
    /* A unit: one block of the interleaved type, or a group of rows. */
    const int group = lmx_row_group(to);
    const int64_t sbytes = group > 1 ? group * lmx_row_bytes(dtype, (int64_t)cols) : lmx_block_bytes(to);
    const int64_t dbytes = group > 1 ? group * lmx_row_bytes(to, (int64_t)cols) : lmx_block_bytes(to);
    const int64_t units = group > 1 ? (int64_t)rows / group : (int64_t)rows * ((int64_t)cols / lmx_block_size(to));
    jobs[i] = (job){(const uint8_t *)data + (size_t)off, units, sbytes, dbytes, (int64_t)cols, dtype, to, total};
    total += ((size_t)(units * dbytes) + 63) / 64 * 64;
  }
  if (total == 0) {
    free(jobs);
    return NULL;
  }
  uint8_t *dst = (uint8_t *)lmx_mmap_huge_aligned(total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  if ((void *)dst == MAP_FAILED) {
    free(jobs);
    THROW("interleaveWeights: out of memory");
  }
  prefault_state pf = {dst + total, 0, huge_page_budget_ms(), 0, NULL};
  /* A few MiB at a time, each part's source given back once copied: the largest tensor
   * (a tied embedding) is not resident twice at the peak. */
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (uint32_t i = 0; i < n; i++) {
    if (!jobs[i].to) continue;
    const int64_t sb = jobs[i].sbytes, db = jobs[i].dbytes, step = (((int64_t)8 << 20) + db - 1) / db;
    const uint8_t *released = jobs[i].src;
    for (int64_t b = 0; b < jobs[i].units; b += step) {
      const int64_t nb = jobs[i].units - b < step ? jobs[i].units - b : step;
      interleave_job part = {jobs[i].dtype, jobs[i].to, jobs[i].src + b * sb, dst + jobs[i].off + (size_t)(b * db),
                             nb, sb, db, jobs[i].cols};
      prefault_part(&pf, part.dst, (size_t)(nb * db));
      lmx_pool_run(interleave_part, &part);
      const uint8_t *end = jobs[i].src + (b + nb) * sb;
      release_file_bytes(released, (size_t)(end - released));
      const uint8_t *floor = (const uint8_t *)((uintptr_t)end & ~(page - 1));
      if (floor > released) released = floor;
    }
  }
  mprotect(dst, total, PROT_READ);
  /* What the budget left in 4 KiB pages becomes huge pages in the background. */
  if (pf.small && lmx_huge_pages_wanted()) lmx_collapse_async(pf.small, (size_t)(dst + total - pf.small));
  napi_value out, buf, offsets, dtypes;
  buf = mapping_buffer(env, dst, total, total, BUF_OTHER, NULL);
  if (!buf) {
    free(jobs);
    return NULL;
  }
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_array_with_length(env, n, &offsets));
  CHECK(napi_create_array_with_length(env, n, &dtypes));
  for (uint32_t i = 0; i < n; i++) {
    napi_value o, d;
    napi_create_double(env, jobs[i].to ? (double)jobs[i].off : -1, &o);
    napi_create_int32(env, jobs[i].to, &d);
    napi_set_element(env, offsets, i, o);
    napi_set_element(env, dtypes, i, d);
  }
  free(jobs);
  napi_set_named_property(env, out, "buffer", buf);
  napi_set_named_property(env, out, "offsets", offsets);
  napi_set_named_property(env, out, "dtypes", dtypes);
  return out;
}

/* ---- plans ---- */

typedef struct {
  lmx_plan plan;
  napi_ref *refs;
  uint32_t n_refs;
} plan_box;

static void plan_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  plan_box *b = (plan_box *)data;
  if (b->plan.share) {
    munmap(b->plan.share->slot[0], b->plan.share->bytes);
    free(b->plan.share);
  }
  if (b->plan.partials) munmap(b->plan.partials, b->plan.partials_bytes);
  for (uint32_t i = 0; i < b->n_refs; i++) napi_delete_reference(env, b->refs[i]);
  free(b->refs);
  free(b->plan.nodes);
  free((void *)b->plan.counters);
  free(b->plan.tensors);
  free(b->plan.ints);
  free(b->plan.floats);
  free(b);
}

static void *typed_data(napi_env env, napi_value v, size_t *count) {
  napi_typedarray_type type;
  size_t len, off;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &off) != napi_ok) return NULL;
  *count = len;
  return data;
}

/* Slots for the prepared activations of the plan's int8 GEMMs (prefill with quantized
 * weights), sized for the largest: threads quantize them together once per node, or once
 * for the nodes of a group that read the same tensor, instead of each its own copy.
 * Lazily backed, so a decode plan costs nothing. NULL on success, else an error. */
static const char *share_gemm_activations(lmx_plan *plan) {
  size_t need = 0;
  for (int i = 0; i < plan->n_nodes; i++) {
    const lmx_node *n = &plan->nodes[i];
    if ((n->op != OP_MATMUL && n->op != OP_MATMUL_GLU) || !n->src[0] || !n->src[1] || !lmx_matmul_is_q8gemm(n)) continue;
    const size_t b = lmx_gemm_q8_act_bytes_total(n->src[0]->ne0, n->src[0]->ne1);
    if (b > need) need = b;
  }
  if (!need) return NULL;
  lmx_act_share *sh = (lmx_act_share *)calloc(1, sizeof *sh);
  if (!sh) return "createPlan: out of memory";
  const size_t page = (size_t)sysconf(_SC_PAGESIZE), slot = (need + page - 1) / page * page;
  void *p = mmap(NULL, 2 * slot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    free(sh);
    return "createPlan: out of memory";
  }
  sh->bytes = 2 * slot;
  sh->slot[0] = (uint8_t *)p;
  sh->slot[1] = (uint8_t *)p + slot;
  plan->share = sh;
  for (int i = 0; i < plan->n_nodes; i++) plan->nodes[i].share = sh;
  return NULL;
}

/* One lazily backed buffer for the partial results of split decode attention, sized for
 * the plan's largest attention node: nodes in different barrier groups run one after
 * another and share it; nodes of one group (independent attentions) get disjoint parts.
 * Unlike the GEMM slots it stays resident between runs: a decode plan uses it every step. */
static const char *map_attention_partials(lmx_plan *plan) {
  size_t need = 0, off = 0, prev = 0;
  int prev_group = -1;
  size_t *at = (size_t *)malloc(sizeof(size_t) * (plan->n_nodes ? plan->n_nodes : 1));
  if (!at) return "createPlan: out of memory";
  for (int i = 0; i < plan->n_nodes; i++) {
    const lmx_node *n = &plan->nodes[i];
    const size_t b = n->op == OP_ATTENTION && n->src[0] && n->src[5] ? (lmx_attention_partials_bytes(n) + 63) / 64 * 64 : 0;
    at[i] = SIZE_MAX;
    if (!b) continue;
    off = n->group == prev_group ? off + prev : 0;
    at[i] = off;
    prev = b;
    prev_group = n->group;
    if (off + b > need) need = off + b;
  }
  void *p = need ? mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : NULL;
  if (p == MAP_FAILED) {
    free(at);
    return "createPlan: out of memory";
  }
  plan->partials = (float *)p;
  plan->partials_bytes = need;
  for (int i = 0; i < plan->n_nodes; i++)
    if (at[i] != SIZE_MAX) plan->nodes[i].partials = (float *)((char *)p + at[i]);
  free(at);
  return NULL;
}

/* createPlan(ints: Int32Array, floats: Float32Array, tensors: Float64Array, buffers: ArrayBuffer[]) */
static napi_value create_plan(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  args_of(env, info, 4, argv);
  size_t n_ints = 0, n_floats = 0, n_tf = 0;
  int32_t *ints = (int32_t *)typed_data(env, argv[0], &n_ints);
  float *floats = (float *)typed_data(env, argv[1], &n_floats);
  double *tf = (double *)typed_data(env, argv[2], &n_tf);
  if (!ints || !floats || !tf) THROW("createPlan: expected typed arrays");
  uint32_t n_bufs;
  CHECK(napi_get_array_length(env, argv[3], &n_bufs));
  int n_nodes = (int)(n_ints / LMX_OP_INTS), n_tensors = (int)(n_tf / LMX_TENSOR_FIELDS);
  if ((size_t)n_nodes * LMX_OP_FLOATS != n_floats) THROW("createPlan: ints and floats disagree on the node count");

  plan_box *b = (plan_box *)calloc(1, sizeof *b);
  b->refs = (napi_ref *)calloc(n_bufs ? n_bufs : 1, sizeof(napi_ref));
  char **bases = (char **)calloc(n_bufs ? n_bufs : 1, sizeof(char *));
  size_t *lens = (size_t *)calloc(n_bufs ? n_bufs : 1, sizeof(size_t));
  const char *err = NULL;
  char msg[256];
  for (uint32_t i = 0; i < n_bufs && !err; i++) {
    napi_value ab;
    void *data;
    size_t len;
    napi_get_element(env, argv[3], i, &ab);
    if (napi_get_arraybuffer_info(env, ab, &data, &len) != napi_ok) { err = "createPlan: buffers must be ArrayBuffers"; break; }
    bases[i] = (char *)data;
    lens[i] = len;
    napi_create_reference(env, ab, 1, &b->refs[i]);
    b->n_refs = i + 1;
  }
  b->plan.n_tensors = n_tensors;
  b->plan.tensors = (lmx_tensor *)calloc(n_tensors ? n_tensors : 1, sizeof(lmx_tensor));
  for (int i = 0; i < n_tensors && !err; i++) {
    const double *f = tf + (size_t)i * LMX_TENSOR_FIELDS;
    lmx_tensor *t = &b->plan.tensors[i];
    int buf = (int)f[0];
    t->dtype = (int32_t)f[2];
    t->ne0 = (int64_t)f[3];
    t->ne1 = (int64_t)f[4];
    t->nb1 = (int64_t)f[5];
    if (buf < 0) continue;
    size_t off = (size_t)f[1];
    size_t end = off + (t->ne1 > 0 ? (size_t)(t->ne1 - 1) * (size_t)t->nb1 : 0) + (size_t)lmx_row_bytes(t->dtype, t->ne0);
    if ((uint32_t)buf >= n_bufs || end > lens[buf] || t->ne0 < 0 || t->ne1 < 0 || t->ne0 % lmx_block_size(t->dtype)) {
      snprintf(msg, sizeof msg, "createPlan: tensor %d lies outside its buffer", i);
      err = msg;
      break;
    }
    t->data = bases[buf] + off;
  }
  b->plan.n_nodes = n_nodes;
  b->plan.nodes = (lmx_node *)calloc(n_nodes ? n_nodes : 1, sizeof(lmx_node));
  b->plan.counters = (_Atomic int64_t *)calloc(n_nodes ? 2 * (size_t)n_nodes : 1, sizeof(_Atomic int64_t));
  b->plan.ints = (int32_t *)malloc(sizeof(int32_t) * (n_ints ? n_ints : 1));
  b->plan.floats = (float *)malloc(sizeof(float) * (n_floats ? n_floats : 1));
  memcpy(b->plan.ints, ints, sizeof(int32_t) * n_ints);
  memcpy(b->plan.floats, floats, sizeof(float) * n_floats);
  for (int i = 0; i < n_nodes && !err; i++) {
    const int32_t *o = b->plan.ints + (size_t)i * LMX_OP_INTS;
    lmx_node *nd = &b->plan.nodes[i];
    nd->op = o[0] & LMX_OP_MASK;
    nd->wait = !(o[0] & LMX_OP_NO_BARRIER);
    if (o[1] < 0 || o[1] >= n_tensors) { err = "createPlan: node without a valid destination"; break; }
    nd->dst = &b->plan.tensors[o[1]];
    for (int s = 0; s < LMX_MAX_SRC; s++) {
      int id = o[2 + s];
      if (id >= n_tensors) { err = "createPlan: source tensor out of range"; break; }
      nd->src[s] = id >= 0 && b->plan.tensors[id].data ? &b->plan.tensors[id] : NULL;
    }
    nd->ip = o + 2 + LMX_MAX_SRC;
    nd->fp = b->plan.floats + (size_t)i * LMX_OP_FLOATS;
    if (nd->op == OP_MATMUL_GLU &&
        (!nd->src[0] || !nd->src[1] || !nd->src[4] || nd->src[1]->dtype != nd->src[4]->dtype ||
         nd->src[1]->ne0 != nd->src[4]->ne0 || nd->src[1]->ne1 != nd->src[4]->ne1)) {
      err = "createPlan: a gate + up matmul needs two weights of one type and shape";
      break;
    }
    nd->work = &b->plan.counters[i];
    nd->done = &b->plan.counters[n_nodes + i];
    nd->group = i == 0 ? 0 : b->plan.nodes[i - 1].group + nd->wait;
  }
  if (!err) err = share_gemm_activations(&b->plan);
  if (!err) err = map_attention_partials(&b->plan);
  free(bases);
  free(lens);
  if (err) {
    plan_finalize(env, b, NULL);
    THROW(err);
  }
  napi_value ext;
  CHECK(napi_create_external(env, b, plan_finalize, NULL, &ext));
  return ext;
}

/* ---- samplers ---- */

typedef struct {
  lmx_sampler *s;
  lmx_sample_result last;
} sampler_box;

static void sampler_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  sampler_box *b = (sampler_box *)data;
  lmx_sampler_free(b->s);
  free(b);
}

static double prop_num(napi_env env, napi_value obj, const char *key, double dflt) {
  napi_value v;
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return dflt;
  napi_get_named_property(env, obj, key, &v);
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return dflt;
  return d;
}

static napi_value sampler_new(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  args_of(env, info, 1, argv);
  lmx_sampler_config c;
  c.temperature = (float)prop_num(env, argv[0], "temperature", 0);
  c.top_k = (int32_t)prop_num(env, argv[0], "topK", 0);
  c.top_p = (float)prop_num(env, argv[0], "topP", 1);
  c.min_p = (float)prop_num(env, argv[0], "minP", 0);
  c.repeat_penalty = (float)prop_num(env, argv[0], "repeatPenalty", 1);
  c.presence_penalty = (float)prop_num(env, argv[0], "presencePenalty", 0);
  c.frequency_penalty = (float)prop_num(env, argv[0], "frequencyPenalty", 0);
  c.repeat_last_n = (int32_t)prop_num(env, argv[0], "repeatLastN", 64);
  c.n_logprobs = (int32_t)prop_num(env, argv[0], "logprobs", -1);
  double seed = prop_num(env, argv[0], "seed", 0);
  c.seed = (uint64_t)(seed < 0 ? 0 : seed);
  sampler_box *b = (sampler_box *)calloc(1, sizeof *b);
  b->s = lmx_sampler_new(&c);
  if (!b->s) { free(b); THROW("lmx native: out of memory"); }
  napi_value ext;
  CHECK(napi_create_external(env, b, sampler_finalize, NULL, &ext));
  return ext;
}

static sampler_box *sampler_of(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (sampler_box *)p;
}

static napi_value sampler_accept(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  args_of(env, info, 2, argv);
  sampler_box *b = sampler_of(env, argv[0]);
  if (!b) THROW("samplerAccept: not a sampler");
  int32_t tok;
  CHECK(napi_get_value_int32(env, argv[1], &tok));
  lmx_sampler_accept(b->s, tok);
  return NULL;
}

static napi_value sampler_reset(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  args_of(env, info, 1, argv);
  sampler_box *b = sampler_of(env, argv[0]);
  if (!b) THROW("samplerReset: not a sampler");
  lmx_sampler_reset(b->s);
  return NULL;
}

static napi_value result_object(napi_env env, const lmx_sample_result *r) {
  napi_value o, v, ids, lps;
  napi_create_object(env, &o);
  napi_create_int32(env, r->token, &v);
  napi_set_named_property(env, o, "token", v);
  napi_create_double(env, r->logprob, &v);
  napi_set_named_property(env, o, "logprob", v);
  napi_create_array_with_length(env, (size_t)r->n_top, &ids);
  napi_create_array_with_length(env, (size_t)r->n_top, &lps);
  for (int i = 0; i < r->n_top; i++) {
    napi_create_int32(env, r->top_ids[i], &v);
    napi_set_element(env, ids, (uint32_t)i, v);
    napi_create_double(env, r->top_logprobs[i], &v);
    napi_set_element(env, lps, (uint32_t)i, v);
  }
  napi_set_named_property(env, o, "topIds", ids);
  napi_set_named_property(env, o, "topLogprobs", lps);
  return o;
}

/* samplerSample(sampler, logits: Float32Array) -> result (used by tests and one-off calls). */
static napi_value sampler_sample(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  args_of(env, info, 2, argv);
  sampler_box *b = sampler_of(env, argv[0]);
  size_t n;
  float *logits = (float *)typed_data(env, argv[1], &n);
  if (!b || !logits) THROW("samplerSample: expected a sampler and a Float32Array");
  lmx_sampler_sample(b->s, logits, (int32_t)n, &b->last);
  return result_object(env, &b->last);
}

static napi_value sampler_last(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  args_of(env, info, 1, argv);
  sampler_box *b = sampler_of(env, argv[0]);
  if (!b) THROW("samplerLast: not a sampler");
  return result_object(env, &b->last);
}

/* ---- execution ---- */

#define MAX_SAMPLE_ROWS 256

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  plan_box *plan;
  napi_ref plan_ref;
  int n_rows;
  sampler_box *samplers[MAX_SAMPLE_ROWS];
  napi_ref sampler_refs[MAX_SAMPLE_ROWS];
  lmx_tensor *logits;
  int32_t tokens[MAX_SAMPLE_ROWS];
  /* drafts[r] >= 0: row r + 1 was fed drafts[r] after row r (speculative decoding). */
  int32_t drafts[MAX_SAMPLE_ROWS];
} exec_job;

static void exec_run(napi_env env, void *data) {
  (void)env;
  exec_job *j = (exec_job *)data;
  lmx_plan_execute(&j->plan->plan);
  const int64_t t0 = lmx_profile_on() ? lmx_now_ns() : 0;
  /* A row fed a draft counts only if the row before it drew that draft: the draw is then
   * recorded in the sampler's penalty window before the row's own draw, and a chain stops
   * at its first miss, so a sequence draws once per token it keeps, as it does without
   * drafts. */
  int skip = 0;
  for (int r = 0; r < j->n_rows; r++) {
    j->tokens[r] = -1;
    const int chained = j->drafts[r] >= 0;
    if (skip || !j->samplers[r] || !j->logits || r >= j->logits->ne1) {
      skip = skip && chained;
      continue;
    }
    const float *row = (const float *)(j->logits->data + (int64_t)r * j->logits->nb1);
    lmx_sampler_sample(j->samplers[r]->s, row, (int32_t)j->logits->ne0, &j->samplers[r]->last);
    j->tokens[r] = j->samplers[r]->last.token;
    if (chained) {
      if (j->tokens[r] == j->drafts[r]) lmx_sampler_accept(j->samplers[r]->s, j->tokens[r]);
      else skip = 1;
    }
  }
  if (t0) lmx_profile_add(LMX_PROFILE_SAMPLE, lmx_now_ns() - t0);
}

static void exec_done(napi_env env, napi_status status, void *data) {
  exec_job *j = (exec_job *)data;
  napi_value result;
  if (status != napi_ok) {
    napi_value msg;
    napi_create_string_utf8(env, "lmx native: plan execution was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &result);
    napi_reject_deferred(env, j->deferred, result);
  } else if (j->n_rows > 0) {
    napi_value ab;
    void *p;
    napi_create_arraybuffer(env, sizeof(int32_t) * (size_t)j->n_rows, &p, &ab);
    memcpy(p, j->tokens, sizeof(int32_t) * (size_t)j->n_rows);
    napi_create_typedarray(env, napi_int32_array, (size_t)j->n_rows, ab, 0, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    napi_get_null(env, &result);
    napi_resolve_deferred(env, j->deferred, result);
  }
  napi_delete_reference(env, j->plan_ref);
  for (int r = 0; r < j->n_rows; r++)
    if (j->sampler_refs[r]) napi_delete_reference(env, j->sampler_refs[r]);
  napi_delete_async_work(env, j->work);
  free(j);
}

/* execute(plan, samplers: (sampler|null)[] | null, logitsTensor: number, drafts: Int32Array | null)
 *   -> Promise<Int32Array|null>
 * Runs the plan off the JavaScript thread, then samples one token per logits row (rows fed
 * drafts: see exec_run); a row not drawn gets -1. */
static napi_value execute(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  args_of(env, info, 4, argv);
  void *p;
  CHECK(napi_get_value_external(env, argv[0], &p));
  const int32_t *drafts = NULL;
  size_t n_drafts = 0;
  if (!is_nullish(env, argv[3])) {
    napi_typedarray_type type;
    void *data;
    CHECK(napi_get_typedarray_info(env, argv[3], &type, &n_drafts, &data, NULL, NULL));
    if (type != napi_int32_array) THROW("execute: drafts must be an Int32Array");
    drafts = (const int32_t *)data;
  }
  exec_job *j = (exec_job *)calloc(1, sizeof *j);
  j->plan = (plan_box *)p;
  napi_create_reference(env, argv[0], 1, &j->plan_ref);
  if (!is_nullish(env, argv[1])) {
    uint32_t n;
    napi_get_array_length(env, argv[1], &n);
    if (n > MAX_SAMPLE_ROWS) n = MAX_SAMPLE_ROWS;
    j->n_rows = (int)n;
    int32_t li;
    napi_get_value_int32(env, argv[2], &li);
    if (li >= 0 && li < j->plan->plan.n_tensors) j->logits = &j->plan->plan.tensors[li];
    for (uint32_t i = 0; i < n; i++) j->drafts[i] = i < n_drafts ? drafts[i] : -1;
    for (uint32_t i = 0; i < n; i++) {
      napi_value s;
      napi_get_element(env, argv[1], i, &s);
      if (is_nullish(env, s)) continue;
      j->samplers[i] = sampler_of(env, s);
      napi_create_reference(env, s, 1, &j->sampler_refs[i]);
    }
  }
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "lmx.execute", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, exec_run, exec_done, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

static napi_value execute_sync(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  args_of(env, info, 1, argv);
  void *p;
  CHECK(napi_get_value_external(env, argv[0], &p));
  lmx_plan_execute(&((plan_box *)p)->plan);
  return NULL;
}

/* ---- machine ---- */

static napi_value set_threads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  args_of(env, info, 1, argv);
  int32_t n;
  CHECK(napi_get_value_int32(env, argv[0], &n));
  lmx_pool_set_threads(n);
  return NULL;
}

static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_int32(env, lmx_pool_threads(), &v);
  return v;
}

static napi_value cpu_features(napi_env env, napi_callback_info info) {
  (void)info;
  static const char *names[] = {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vnni", "avx512bf16", "neon",
                                "avx512vl", "avxvnni"};
  unsigned f = lmx_cpu_features();
  napi_value arr, s;
  napi_create_array(env, &arr);
  uint32_t k = 0;
  for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
    if (f & (1u << i)) {
      napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &s);
      napi_set_element(env, arr, k++, s);
    }
  return arr;
}

/* bandwidthProbe(megabytes, repeats) -> each read's GB/s (an empty array if the buffer
 * could not be mapped) */
static napi_value bandwidth_probe(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  args_of(env, info, 2, argv);
  double mb = 1024, reps = 5;
  napi_get_value_double(env, argv[0], &mb);
  napi_get_value_double(env, argv[1], &reps);
  const int n = !(reps >= 1) ? 1 : reps > 1000 ? 1000 : (int)reps;
  double gbs[1000];
  const int ok = lmx_bandwidth_probe((size_t)(mb * 1048576.0), n, gbs) == 0;
  napi_value arr, v;
  CHECK(napi_create_array_with_length(env, ok ? (size_t)n : 0, &arr));
  for (int i = 0; ok && i < n; i++) {
    CHECK(napi_create_double(env, gbs[i], &v));
    CHECK(napi_set_element(env, arr, (uint32_t)i, v));
  }
  return arr;
}

/* hugePages() -> {pending, collapsed, failed}: bytes of the background collapse
 * (huge_pages.c) waiting, done and refused by the kernel since the process started. */
static napi_value huge_pages(napi_env env, napi_callback_info info) {
  (void)info;
  size_t p, c, f;
  lmx_collapse_status(&p, &c, &f);
  napi_value o, v;
  CHECK(napi_create_object(env, &o));
  napi_create_double(env, (double)p, &v);
  napi_set_named_property(env, o, "pending", v);
  napi_create_double(env, (double)c, &v);
  napi_set_named_property(env, o, "collapsed", v);
  napi_create_double(env, (double)f, &v);
  napi_set_named_property(env, o, "failed", v);
  return o;
}

/* profile(on: boolean) */
static napi_value profile(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  args_of(env, info, 1, argv);
  bool on = false;
  napi_get_value_bool(env, argv[0], &on);
  lmx_profile_enable(on);
  return NULL;
}

/* profileTake() -> Float64Array [ns per key..., calls per key...], then resets */
static napi_value profile_take(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value ab, arr;
  void *p;
  napi_create_arraybuffer(env, sizeof(double) * 2 * LMX_PROFILE_KEYS, &p, &ab);
  lmx_profile_take((double *)p);
  napi_create_typedarray(env, napi_float64_array, 2 * LMX_PROFILE_KEYS, ab, 0, &arr);
  return arr;
}

/* A Float32Array's data and length, or NULL for anything else. */
static const float *float_array(napi_env env, napi_value v, size_t *count) {
  napi_typedarray_type type;
  size_t off;
  void *data;
  napi_value ab;
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return NULL;
  if (napi_get_typedarray_info(env, v, &type, count, &data, &ab, &off) != napi_ok || type != napi_float32_array) return NULL;
  return (const float *)data;
}

/* The optional per-column importance argument: NULL, or cols floats. */
static int importance_arg(napi_env env, napi_value v, int64_t cols, const float **imp) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  *imp = NULL;
  if (t == napi_null || t == napi_undefined) return 1;
  size_t n;
  *imp = float_array(env, v, &n);
  return *imp && (int64_t)n == cols;
}

/* quantizeFp4(dtype, values: Float32Array, cols, importance: Float32Array | null, tensorScale) -> Uint8Array */
static napi_value quantize_fp4(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  args_of(env, info, 5, argv);
  int32_t dtype = 0;
  int64_t cols = 0;
  double g = 1;
  size_t n = 0;
  napi_get_value_int32(env, argv[0], &dtype);
  napi_get_value_int64(env, argv[2], &cols);
  napi_get_value_double(env, argv[4], &g);
  const float *x = float_array(env, argv[1], &n), *imp;
  const int bs = dtype == LMX_NVFP4 ? 64 : dtype == LMX_MXFP4 ? 32 : 0;
  if (!bs) THROW("quantizeFp4: the type must be NVFP4 or MXFP4");
  if (!x || cols <= 0 || cols % bs || n % (size_t)cols) THROW("quantizeFp4: expected rows of whole blocks in a Float32Array");
  if (!importance_arg(env, argv[3], cols, &imp)) THROW("quantizeFp4: importance must be null or one Float32 per column");
  const size_t bytes = n / (size_t)bs * (dtype == LMX_NVFP4 ? 36 : 17);
  napi_value ab, arr;
  void *p;
  CHECK(napi_create_arraybuffer(env, bytes, &p, &ab));
  lmx_quantize_fp4(dtype, x, (int64_t)n, cols, imp, (float)g, (uint8_t *)p);
  CHECK(napi_create_typedarray(env, napi_uint8_array, bytes, ab, 0, &arr));
  return arr;
}

/* quantizeRows(dtype, values: Float32Array, cols, importance: Float32Array | null) -> Uint8Array
 * (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K) */
static napi_value quantize_rows(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  args_of(env, info, 4, argv);
  int32_t dtype = 0;
  int64_t cols = 0;
  size_t n = 0;
  napi_get_value_int32(env, argv[0], &dtype);
  napi_get_value_int64(env, argv[2], &cols);
  const float *x = float_array(env, argv[1], &n), *imp;
  const int bs = lmx_block_size(dtype);
  if (!x || cols <= 0 || bs <= 1 || cols % bs || n % (size_t)cols) THROW("quantizeRows: expected rows of whole blocks in a Float32Array");
  if (!importance_arg(env, argv[3], cols, &imp)) THROW("quantizeRows: importance must be null or one Float32 per column");
  const size_t bytes = n / (size_t)bs * (size_t)lmx_block_bytes(dtype);
  napi_value ab, arr;
  void *p;
  CHECK(napi_create_arraybuffer(env, bytes, &p, &ab));
  if (!lmx_quantize_rows(dtype, x, (int64_t)(n / (size_t)cols), cols, imp, (uint8_t *)p))
    THROW("quantizeRows: lmx has no native quantizer for this type");
  CHECK(napi_create_typedarray(env, napi_uint8_array, bytes, ab, 0, &arr));
  return arr;
}

/* nvfp4TensorScale(values: Float32Array, cols, importance: Float32Array | null) -> number */
static napi_value nvfp4_tensor_scale(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  args_of(env, info, 3, argv);
  int64_t cols = 0;
  size_t n = 0;
  napi_get_value_int64(env, argv[1], &cols);
  const float *x = float_array(env, argv[0], &n), *imp;
  if (!x || cols <= 0 || cols % 64 || n % (size_t)cols) THROW("nvfp4TensorScale: expected rows of whole blocks in a Float32Array");
  if (!importance_arg(env, argv[2], cols, &imp)) THROW("nvfp4TensorScale: importance must be null or one Float32 per column");
  float *sample = (float *)malloc(sizeof(float) * 2 * 2048 * 64);
  if (!sample) THROW("nvfp4TensorScale: out of memory");
  const float g = lmx_nvfp4_tensor_scale(x, (int64_t)n, cols, imp, sample);
  free(sample);
  napi_value v;
  napi_create_double(env, g, &v);
  return v;
}

static napi_value simd_path(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_string_utf8(env, lmx_isa_name(lmx_isa()), NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      {"mapFile", 0, map_file, 0, 0, 0, napi_default, 0},
      {"readFile", 0, read_file, 0, 0, 0, napi_default, 0},
      {"alloc", 0, alloc_buffer, 0, 0, 0, napi_default, 0},
      {"interleaveWeights", 0, interleave_weights, 0, 0, 0, napi_default, 0},
      {"releaseFileBytes", 0, release_file_bytes_js, 0, 0, 0, napi_default, 0},
      {"settleFilePages", 0, settle_file_pages, 0, 0, 0, napi_default, 0},
      {"collapseLater", 0, collapse_later, 0, 0, 0, napi_default, 0},
      {"releaseScratch", 0, release_scratch, 0, 0, 0, napi_default, 0},
      {"createPlan", 0, create_plan, 0, 0, 0, napi_default, 0},
      {"execute", 0, execute, 0, 0, 0, napi_default, 0},
      {"executeSync", 0, execute_sync, 0, 0, 0, napi_default, 0},
      {"samplerNew", 0, sampler_new, 0, 0, 0, napi_default, 0},
      {"samplerAccept", 0, sampler_accept, 0, 0, 0, napi_default, 0},
      {"samplerReset", 0, sampler_reset, 0, 0, 0, napi_default, 0},
      {"samplerSample", 0, sampler_sample, 0, 0, 0, napi_default, 0},
      {"samplerLast", 0, sampler_last, 0, 0, 0, napi_default, 0},
      {"setThreads", 0, set_threads, 0, 0, 0, napi_default, 0},
      {"threads", 0, get_threads, 0, 0, 0, napi_default, 0},
      {"cpuFeatures", 0, cpu_features, 0, 0, 0, napi_default, 0},
      {"simdPath", 0, simd_path, 0, 0, 0, napi_default, 0},
      {"profile", 0, profile, 0, 0, 0, napi_default, 0},
      {"profileTake", 0, profile_take, 0, 0, 0, napi_default, 0},
      {"bandwidthProbe", 0, bandwidth_probe, 0, 0, 0, napi_default, 0},
      {"hugePages", 0, huge_pages, 0, 0, 0, napi_default, 0},
      {"quantizeFp4", 0, quantize_fp4, 0, 0, 0, napi_default, 0},
      {"quantizeRows", 0, quantize_rows, 0, 0, 0, napi_default, 0},
      {"nvfp4TensorScale", 0, nvfp4_tensor_scale, 0, 0, 0, napi_default, 0},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
