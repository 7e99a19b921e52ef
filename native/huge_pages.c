/* Huge pages after the fact. Faulting fresh memory in 2 MiB pages costs up to ~5 ms a page
 * on some VMs (free page reporting hands freed memory back to the host), so the load copies
 * the repacked weights into 4 KiB pages once the cheap huge pages run out (binding.c's
 * prefault budget). Decode streams every weight per token, and on one thread it reads them
 * ~15% faster from huge pages (Q4_K_M on Zen 4, 6 alternations of all 4 KiB against all
 * collapsed: median tg64 53.8 -> 62.0 tok/s): the TLB reach, and hardware prefetch that
 * stops at every 4 KiB page. So the rest
 * is handed to one background thread of the lowest priority (SCHED_IDLE: it runs when the
 * pool's workers sleep), which asks the kernel to collapse it into huge pages 2 MiB at a
 * time (MADV_COLLAPSE, Linux 6.1+), moving the bytes without changing them. A range is
 * withdrawn before its memory is unmapped (lmx_collapse_cancel waits out a collapse in
 * progress there), so the thread never touches memory that is no longer the weights'. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lmx.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define HUGE LMX_HUGE_PAGE

int lmx_huge_pages_wanted(void) {
  const char *e = getenv("LMX_HUGE_PAGES");
  return !e || strcmp(e, "0") != 0;
}

void *lmx_mmap_huge_aligned(size_t len, int prot, int flags, int fd) {
  void *addr = lmx_mmap_2m_aligned(len, prot, flags, fd);
  if (addr != MAP_FAILED && lmx_huge_pages_wanted()) madvise(addr, len, MADV_HUGEPAGE);
  return addr;
}

void *lmx_mmap_2m_aligned(size_t len, int prot, int flags, int fd) {
  const size_t span = len + HUGE;
  char *base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return MAP_FAILED;
  char *aligned = (char *)(((uintptr_t)base + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
  void *addr = mmap(aligned, len, prot, flags | MAP_FIXED, fd, 0);
  if (addr == MAP_FAILED) {
    munmap(base, span);
    return MAP_FAILED;
  }
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t end = ((size_t)(aligned - base) + len + page - 1) / page * page;
  if (aligned > base) munmap(base, (size_t)(aligned - base));
  if (end < span) munmap(base + end, span - end);
  return addr;
}

typedef struct range {
  uint8_t *next, *end;
  struct range *link;
} range;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER, idle = PTHREAD_COND_INITIALIZER;
static range *queue;
/* The 2 MiB being collapsed (NULL: none). */
static uint8_t *busy;
static int started, unsupported;
static size_t collapsed, failed;

static void *collapser(void *arg) {
  (void)arg;
  struct sched_param none = {0};
  sched_setscheduler(0, SCHED_IDLE, &none); /* this thread only, on Linux */
  pthread_mutex_lock(&mu);
  for (;;) {
    while (!queue) pthread_cond_wait(&work, &mu);
    range *r = queue;
    uint8_t *p = r->next;
    r->next += HUGE;
    if (r->next >= r->end) {
      queue = r->link;
      free(r);
    }
    busy = p;
    pthread_mutex_unlock(&mu);
    const int ok = madvise(p, HUGE, MADV_COLLAPSE) == 0;
    const int err = ok ? 0 : errno;
    pthread_mutex_lock(&mu);
    busy = NULL;
    if (ok) collapsed += HUGE;
    else failed += HUGE;
    /* A kernel without MADV_COLLAPSE (or without transparent huge pages): give up on all. */
    if (err == EINVAL && !collapsed) {
      unsupported = 1;
      while (queue) {
        range *q = queue;
        queue = q->link;
        free(q);
      }
    }
    pthread_cond_broadcast(&idle);
  }
  return NULL;
}

void lmx_collapse_async(void *addr, size_t len) {
  /* Whole 2 MiB pages inside [addr, addr + len). */
  uint8_t *a = (uint8_t *)(((uintptr_t)addr + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
  uint8_t *b = (uint8_t *)(((uintptr_t)addr + len) & ~(uintptr_t)(HUGE - 1));
  if (b <= a) return;
  /* Where the load had asked for 4 KiB pages (and so that khugepaged may help). */
  madvise(a, (size_t)(b - a), MADV_HUGEPAGE);
  range *r = (range *)malloc(sizeof *r);
  if (!r) return;
  r->next = a;
  r->end = b;
  r->link = NULL;
  pthread_mutex_lock(&mu);
  if (unsupported) {
    pthread_mutex_unlock(&mu);
    free(r);
    return;
  }
  if (!started) {
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    started = pthread_create(&t, &at, collapser, NULL) == 0;
    pthread_attr_destroy(&at);
    if (!started) {
      pthread_mutex_unlock(&mu);
      free(r);
      return;
    }
  }
  range **tail = &queue;
  while (*tail) tail = &(*tail)->link;
  *tail = r;
  pthread_cond_signal(&work);
  pthread_mutex_unlock(&mu);
}

void lmx_collapse_cancel(void *addr, size_t len) {
  uint8_t *a = (uint8_t *)addr, *b = a + len;
  pthread_mutex_lock(&mu);
  for (range **p = &queue; *p;) {
    range *r = *p;
    if (r->next < b && r->end > a) { /* queued per mapping: wholly inside it */
      *p = r->link;
      free(r);
    } else {
      p = &r->link;
    }
  }
  while (busy && busy < b && busy + HUGE > a) pthread_cond_wait(&idle, &mu);
  pthread_mutex_unlock(&mu);
}

void lmx_collapse_status(size_t *pending_bytes, size_t *collapsed_bytes, size_t *failed_bytes) {
  pthread_mutex_lock(&mu);
  size_t pending = busy ? HUGE : 0;
  for (const range *r = queue; r; r = r->link) pending += (size_t)(r->end - r->next);
  *pending_bytes = pending;
  *collapsed_bytes = collapsed;
  *failed_bytes = failed;
  pthread_mutex_unlock(&mu);
}
