/* Token sampling on the backend: penalties over a window of recent tokens, then greedy
 * or temperature sampling restricted by top-k, top-p and min-p, with a seeded SplitMix64
 * generator. Top-k uses a bounded heap; without top-k only the prefix the cuts can reach
 * is sorted (nucleus): never a sort of the whole vocabulary. The order of filters and
 * every tie-break match the reference backend's sampler
 * (src/engine/backends/reference/sampler.ts). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../simd.h"

struct lmx_sampler {
  lmx_sampler_config cfg;
  int32_t *hist;
  int32_t hist_cap, hist_len, hist_pos;
  uint64_t rng;
  float *vals;
  int32_t *ids;
  int32_t cap;
};

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

lmx_sampler *lmx_sampler_new(const lmx_sampler_config *cfg) {
  lmx_sampler *s = (lmx_sampler *)calloc(1, sizeof *s);
  if (!s) return 0;
  s->cfg = *cfg;
  s->hist_cap = cfg->repeat_last_n > 0 ? cfg->repeat_last_n : 0;
  if (s->hist_cap) s->hist = (int32_t *)calloc((size_t)s->hist_cap, sizeof(int32_t));
  s->rng = cfg->seed;
  return s;
}

void lmx_sampler_free(lmx_sampler *s) {
  if (!s) return;
  free(s->hist);
  free(s->vals);
  free(s->ids);
  free(s);
}

void lmx_sampler_reset(lmx_sampler *s) {
  s->hist_len = s->hist_pos = 0;
  s->rng = s->cfg.seed;
}

void lmx_sampler_accept(lmx_sampler *s, int32_t token) {
  if (!s->hist_cap) return;
  s->hist[s->hist_pos] = token;
  s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
  if (s->hist_len < s->hist_cap) s->hist_len++;
}

static int ensure(lmx_sampler *s, int32_t n) {
  if (n <= s->cap) return 1;
  free(s->vals);
  free(s->ids);
  s->vals = (float *)malloc(sizeof(float) * (size_t)n);
  s->ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
  s->cap = s->vals && s->ids ? n : 0;
  return s->cap != 0;
}

/* (value desc, id asc): the order every ranking here uses. */
static inline int better(float va, int32_t ia, float vb, int32_t ib) {
  return va > vb || (va == vb && ia < ib);
}

static void sift_down(float *v, int32_t *id, int32_t n, int32_t i) {
  for (;;) {
    int32_t l = 2 * i + 1, r = l + 1, w = i;
    if (l < n && better(v[w], id[w], v[l], id[l])) w = l;
    if (r < n && better(v[w], id[w], v[r], id[r])) w = r;
    if (w == i) return;
    float tv = v[i]; v[i] = v[w]; v[w] = tv;
    int32_t ti = id[i]; id[i] = id[w]; id[w] = ti;
    i = w;
  }
}

/* A min-heap of m entries (worst at the root) sorted in place, best first. */
static void sort_heap_best_first(float *hv, int32_t *hi, int32_t m) {
  for (int32_t end = m - 1; end > 0; end--) {
    float tv = hv[0]; hv[0] = hv[end]; hv[end] = tv;
    int32_t ti = hi[0]; hi[0] = hi[end]; hi[end] = ti;
    sift_down(hv, hi, end, 0);
  }
}

/* Keeps the k best of vals[0..n) in a min-heap (worst at the root), then sorts them best first. */
static int32_t top_k(const float *vals, int32_t n, int32_t k, float *hv, int32_t *hi) {
  int32_t m = 0;
  for (int32_t i = 0; i < n; i++) {
    if (m < k) {
      hv[m] = vals[i]; hi[m] = i; m++;
      if (m == k)
        for (int32_t j = k / 2 - 1; j >= 0; j--) sift_down(hv, hi, k, j);
    } else if (better(vals[i], i, hv[0], hi[0])) {
      hv[0] = vals[i]; hi[0] = i;
      sift_down(hv, hi, k, 0);
    }
  }
  if (m < k)
    for (int32_t j = m / 2 - 1; j >= 0; j--) sift_down(hv, hi, m, j);
  sort_heap_best_first(hv, hi, m);
  return m;
}

/* Without top-k, the candidates in order are the whole vocabulary, but the kept prefix
 * (top-p, min-p, or the sampled point itself) is usually a small share of it: instead of
 * sorting all (~37 ms for 152k logits), bucket every candidate by (max - v) / T in steps of
 * 1/16, add each bucket's weight, and sort only the buckets the prefix can reach, with a
 * margin over the mass it needs so that summing in another order cannot leave it short.
 * The same candidates in the same order as the full sort, so the same choices (their
 * weights are normalized by a sum taken in index order, not in rank order: a difference in
 * the last bits of a double). Returns the candidates kept, best first, in hv/hi; *z is the
 * sum of all weights. r: the uniform draw, needed when neither top-p nor min-p cuts. */
#define NUCLEUS_MIN 4096
#define BUCKETS 1024
#define BUCKET_STEP 16.0

static int cuts_top_p(const lmx_sampler_config *c) {
  return c->top_p > 0 && c->top_p < 1;
}

/* A candidate's distance below the best in weight, (max - v) / T, in bucket steps: one
 * expression for both of nucleus's passes, so they agree on every candidate's bucket. */
static inline double bucket_of(float v, float vmax, double t) {
  return ((double)vmax - v) / t * BUCKET_STEP;
}

static int32_t nucleus(const float *v, int32_t n, const lmx_sampler_config *c, double r, float *hv, int32_t *hi,
                       double *z) {
  static __thread double mass[BUCKETS];
  memset(mass, 0, sizeof mass);
  float vmax = v[0];
  for (int32_t i = 1; i < n; i++) if (v[i] > vmax) vmax = v[i];
  double sum = 0;
  const double t = c->temperature;
  for (int32_t i = 0; i < n; i++) {
    const double b = bucket_of(v[i], vmax, t), p = exp(-b / BUCKET_STEP);
    mass[b < BUCKETS - 1 ? (int)b : BUCKETS - 1] += p;
    sum += p;
  }
  *z = sum;
  /* The mass the prefix needs: top-p's; with min-p alone, all it keeps (its total weights the
   * draw); with neither, the draw's point. */
  double need = 2;
  if (cuts_top_p(c)) need = c->top_p;
  else if (!(c->min_p > 0)) need = r;
  int32_t last = BUCKETS - 1;
  if (c->min_p > 0) {
    /* p >= p_max * min_p is d <= -ln(min_p); one bucket more for rounding. */
    const double b = -log((double)c->min_p) * BUCKET_STEP + 1;
    if (b < last) last = (int32_t)b;
  }
  double acc = 0;
  need = need * (1 + 1e-6) + 1e-9;
  for (int32_t b = 0; b < last; b++) {
    acc += mass[b];
    if (acc >= need * sum) { last = b; break; }
  }
  int32_t m = 0;
  for (int32_t i = 0; i < n; i++)
    if (bucket_of(v[i], vmax, t) < last + 1) { hv[m] = v[i]; hi[m] = i; m++; }
  /* Nothing finite to rank (every logit -inf or NaN): rank them all, as without buckets. */
  if (m == 0) return top_k(v, n, n, hv, hi);
  for (int32_t j = m / 2 - 1; j >= 0; j--) sift_down(hv, hi, m, j);
  sort_heap_best_first(hv, hi, m);
  return m;
}

/* The greedy choice: the first index of the largest value, as a scan keeping the first
 * v[i] > v[best] finds it (NaN never wins; a NaN v[0] is never beaten). Decode draws it
 * over the whole vocabulary every token: the scalar scan's dependent compare per element
 * took 127 us of a 15 ms token for 151,936 logits (Qwen3-0.6B, one Zen 4 thread), two
 * vector passes (the largest value, then its first place) 42 us. */
static int32_t greedy_scalar(const float *v, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; i++) if (v[i] > v[best]) best = i;
  return best;
}

#ifdef LMX_X86
static LMX_AVX2 int32_t greedy_avx2(const float *v, int32_t n) {
  if (n < 64 || v[0] != v[0]) return greedy_scalar(v, n);
  /* max_ps(x, m) is m where x is NaN: NaNs drop out. */
  __m256 m0 = _mm256_set1_ps(v[0]), m1 = m0, m2 = m0, m3 = m0;
  int32_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm256_max_ps(_mm256_loadu_ps(v + i), m0);
    m1 = _mm256_max_ps(_mm256_loadu_ps(v + i + 8), m1);
    m2 = _mm256_max_ps(_mm256_loadu_ps(v + i + 16), m2);
    m3 = _mm256_max_ps(_mm256_loadu_ps(v + i + 24), m3);
  }
  float lanes[8], mx;
  _mm256_storeu_ps(lanes, _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
  mx = lanes[0];
  for (int k = 1; k < 8; k++) mx = lanes[k] > mx ? lanes[k] : mx;
  for (int32_t k = i; k < n; k++) mx = v[k] > mx ? v[k] : mx;
  /* mx is a value of v (not NaN): its first place is the choice. */
  const __m256 want = _mm256_set1_ps(mx);
  for (int32_t k = 0; k + 8 <= n; k += 8) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + k), want, _CMP_EQ_OQ));
    if (hit) return k + __builtin_ctz((unsigned)hit);
  }
  for (int32_t k = n & ~7; k < n; k++)
    if (v[k] == mx) return k;
  return 0;
}
#endif

static int32_t greedy(const float *v, int32_t n) {
#ifdef LMX_X86
  if (lmx_use_avx2()) return greedy_avx2(v, n);
#endif
  return greedy_scalar(v, n);
}

static void apply_penalties(lmx_sampler *s, float *v) {
  const lmx_sampler_config *c = &s->cfg;
  for (int32_t i = 0; i < s->hist_len; i++) {
    int32_t tok = s->hist[i], seen = 0, count = 0;
    for (int32_t j = 0; j < s->hist_len; j++) {
      if (s->hist[j] == tok) {
        if (j < i) { seen = 1; break; }
        count++;
      }
    }
    if (seen) continue;
    float x = v[tok];
    if (c->repeat_penalty != 1.0f && c->repeat_penalty > 0) x = x < 0 ? x * c->repeat_penalty : x / c->repeat_penalty;
    x -= c->presence_penalty + c->frequency_penalty * (float)count;
    v[tok] = x;
  }
}

static void logprobs(const float *logits, int32_t n, int32_t chosen, int32_t n_top, float *hv, int32_t *hi,
                     lmx_sample_result *out) {
  float mx = -INFINITY;
  for (int32_t i = 0; i < n; i++) if (logits[i] > mx) mx = logits[i];
  double sum = 0;
  for (int32_t i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
  float lse = (float)(mx + log(sum));
  out->logprob = logits[chosen] - lse;
  if (n_top > 20) n_top = 20;
  out->n_top = n_top > 0 ? top_k(logits, n, n_top, hv, hi) : 0;
  for (int32_t i = 0; i < out->n_top; i++) {
    out->top_ids[i] = hi[i];
    out->top_logprobs[i] = hv[i] - lse;
  }
}

void lmx_sampler_sample(lmx_sampler *s, const float *logits, int32_t n, lmx_sample_result *out) {
  const lmx_sampler_config *c = &s->cfg;
  memset(out, 0, sizeof *out);
  if (!ensure(s, n + 1)) { out->token = -1; return; }
  const int penalize = s->hist_len > 0 &&
      ((c->repeat_penalty != 1.0f && c->repeat_penalty > 0) || c->presence_penalty != 0 || c->frequency_penalty != 0);
  const float *v = logits;
  float *work = 0;
  if (penalize) {
    work = (float *)malloc(sizeof(float) * (size_t)n);
    if (!work) { out->token = -1; return; }
    memcpy(work, logits, sizeof(float) * (size_t)n);
    apply_penalties(s, work);
    v = work;
  }
  int32_t token;
  if (c->temperature <= 0) {
    token = greedy(v, n);
  } else {
    int32_t k = c->top_k > 0 && c->top_k < n ? c->top_k : n;
    /* The uniform draw for the sampled point (drawn here: nothing else uses the generator). */
    const double r = (double)(splitmix64(&s->rng) >> 11) * (1.0 / 9007199254740992.0);
    const int whole = k == n && n > NUCLEUS_MIN;
    double sum = 0;
    int32_t m;
    if (whole) m = nucleus(v, n, c, r, s->vals, s->ids, &sum);
    else m = top_k(v, n, k, s->vals, s->ids);
    /* softmax over the candidates at temperature T (best first, so vals[0] is the max) */
    const double vmax = s->vals[0];
    for (int32_t i = 0; i < m; i++) {
      double p = exp(((double)s->vals[i] - vmax) / c->temperature);
      s->vals[i] = (float)p;
      if (!whole) sum += p;
    }
    for (int32_t i = 0; i < m; i++) s->vals[i] = (float)(s->vals[i] / sum);
    int32_t keep = m;
    if (cuts_top_p(c)) {
      double cum = 0;
      for (int32_t i = 0; i < m; i++) {
        if (cum >= c->top_p) { keep = i; break; }
        cum += s->vals[i];
      }
    }
    if (c->min_p > 0) {
      float floor = s->vals[0] * c->min_p;
      for (int32_t i = 1; i < keep; i++)
        if (s->vals[i] < floor) { keep = i; break; }
    }
    double total = 0;
    for (int32_t i = 0; i < keep; i++) total += s->vals[i];
    /* Without a cut the draw spans every candidate's weight, normalized: 1 but for rounding
     * (nucleus ranked only the prefix the draw reaches). */
    if (whole && !cuts_top_p(c) && !(c->min_p > 0)) total = 1;
    double u = r * total;
    token = s->ids[keep - 1];
    double cum = 0;
    for (int32_t i = 0; i < keep; i++) {
      cum += s->vals[i];
      if (u < cum) { token = s->ids[i]; break; }
    }
  }
  free(work);
  out->token = token;
  if (c->n_logprobs >= 0) logprobs(logits, n, token, c->n_logprobs, s->vals, s->ids, out);
}
