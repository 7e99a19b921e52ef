/* One persistent thread pool. The calling thread is worker 0; workers spin briefly
 * after a job (decode steps arrive back to back) and then sleep on a condition
 * variable so that an idle runtime costs no CPU. */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lmx.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define MAX_THREADS 256
/* How long an idle worker spins before sleeping. Long enough to bridge the gap
 * between two decode steps, short enough not to steal a core from JavaScript.
 * LMX_SPIN_US overrides it (a server process whose JavaScript does more per step
 * may prefer less). */
static int64_t SPIN_NS = 2000000LL;

typedef struct {
  int n;
  pthread_t th[MAX_THREADS];
  _Atomic int gen;
  _Atomic int done;
  _Atomic int stop;
  _Atomic int sleepers;
  void (*fn)(void *, int, int);
  void *arg;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  _Atomic int bar_count;
  _Atomic int bar_sense;
  int started;
  int start_gen;
} pool_t;

static pool_t P = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static pthread_mutex_t run_mu = PTHREAD_MUTEX_INITIALIZER;

int64_t lmx_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *worker(void *p) {
  int ith = (int)(intptr_t)p;
  /* The generation at start-up, read before any job could have been posted. */
  int seen = P.start_gen;
  for (;;) {
    int64_t t0 = lmx_now_ns();
    int spins = 0;
    while (atomic_load_explicit(&P.gen, memory_order_acquire) == seen && !atomic_load(&P.stop)) {
      CPU_RELAX();
      if (++spins % 1024 == 0 && lmx_now_ns() - t0 > SPIN_NS) {
        pthread_mutex_lock(&P.mu);
        atomic_fetch_add(&P.sleepers, 1);
        while (atomic_load(&P.gen) == seen && !atomic_load(&P.stop)) pthread_cond_wait(&P.cv, &P.mu);
        atomic_fetch_sub(&P.sleepers, 1);
        pthread_mutex_unlock(&P.mu);
      }
    }
    if (atomic_load(&P.stop)) return NULL;
    seen = atomic_load(&P.gen);
    P.fn(P.arg, ith, P.n);
    atomic_fetch_add_explicit(&P.done, 1, memory_order_acq_rel);
  }
}

static void stop_workers(void) {
  if (!P.started) return;
  pthread_mutex_lock(&P.mu);
  atomic_store(&P.stop, 1);
  pthread_cond_broadcast(&P.cv);
  pthread_mutex_unlock(&P.mu);
  for (int i = 1; i < P.n; i++) pthread_join(P.th[i], NULL);
  atomic_store(&P.stop, 0);
  P.started = 0;
}

static int default_threads(void) {
  const char *env = getenv("LMX_NUM_THREADS");
  if (env && atoi(env) > 0) return atoi(env);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static void start_workers(int n) {
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  P.n = n;
  P.start_gen = atomic_load(&P.gen);
  const char *spin = getenv("LMX_SPIN_US");
  if (spin && *spin) SPIN_NS = (int64_t)atoll(spin) * 1000;
  for (int i = 1; i < n; i++) pthread_create(&P.th[i], NULL, worker, (void *)(intptr_t)i);
  P.started = 1;
}

int lmx_pool_threads(void) {
  return P.started ? P.n : default_threads();
}

void lmx_pool_set_threads(int n) {
  pthread_mutex_lock(&run_mu);
  stop_workers();
  start_workers(n > 0 ? n : default_threads());
  pthread_mutex_unlock(&run_mu);
}

void lmx_pool_run(void (*fn)(void *, int, int), void *arg) {
  pthread_mutex_lock(&run_mu);
  if (!P.started) start_workers(default_threads());
  P.fn = fn;
  P.arg = arg;
  atomic_store(&P.done, 0);
  atomic_store(&P.bar_count, 0);
  atomic_fetch_add_explicit(&P.gen, 1, memory_order_release);
  if (atomic_load(&P.sleepers) > 0) {
    pthread_mutex_lock(&P.mu);
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
  }
  fn(arg, 0, P.n);
  int spins = 0;
  while (atomic_load_explicit(&P.done, memory_order_acquire) < P.n - 1) {
    CPU_RELAX();
    if (++spins % 4096 == 0) sched_yield();
  }
  pthread_mutex_unlock(&run_mu);
}

void lmx_pool_barrier(int nth) {
  if (nth <= 1) return;
  int sense = atomic_load_explicit(&P.bar_sense, memory_order_acquire);
  if (atomic_fetch_add_explicit(&P.bar_count, 1, memory_order_acq_rel) == nth - 1) {
    atomic_store_explicit(&P.bar_count, 0, memory_order_relaxed);
    atomic_store_explicit(&P.bar_sense, sense ^ 1, memory_order_release);
  } else {
    int spins = 0;
    while (atomic_load_explicit(&P.bar_sense, memory_order_acquire) == sense) {
      CPU_RELAX();
      /* On an oversubscribed machine a descheduled peer would otherwise cost a whole slice. */
      if (++spins % 8192 == 0) sched_yield();
    }
  }
}

/* Per-thread scratch for kernels (kernels never nest, so one buffer per thread suffices);
 * grows on demand and is reused across calls. */
static __thread float *scratch_buf;
static __thread size_t scratch_cap;

static float *grow(float **buf, size_t *cap, size_t n) {
  if (n > *cap) {
    free(*buf);
    *buf = (float *)aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    *cap = *buf ? n : 0;
  }
  return *buf;
}

float *lmx_scratch(size_t n) {
  return grow(&scratch_buf, &scratch_cap, n);
}

static __thread float *row_buf;
static __thread size_t row_cap;

float *lmx_scratch_row(size_t n) {
  return grow(&row_buf, &row_cap, n);
}

static __thread float *out_buf;
static __thread size_t out_cap;

float *lmx_scratch_out(size_t n) {
  return grow(&out_buf, &out_cap, n);
}
