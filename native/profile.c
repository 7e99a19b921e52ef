/* Op-kind profile of plan execution (`lmx bench --profile`). Thread 0 times each node's
 * kernel and its wait at the barrier that follows; the waits are synchronization plus the
 * other threads' imbalance. Off by default: two clock reads per node when on. */
#include <stdatomic.h>
#include <string.h>

#include "lmx.h"

static _Atomic int enabled;
static int64_t ns[LMX_PROFILE_KEYS];
static int64_t calls[LMX_PROFILE_KEYS];

void lmx_profile_enable(int on) {
  atomic_store(&enabled, on);
}

int lmx_profile_on(void) {
  return atomic_load_explicit(&enabled, memory_order_relaxed);
}

void lmx_profile_add(int key, int64_t dt) {
  if (key < 0 || key >= LMX_PROFILE_KEYS) return;
  ns[key] += dt;
  calls[key]++;
}

/* Copies [ns..., calls...] (2 * LMX_PROFILE_KEYS values) and resets the counters. */
void lmx_profile_take(double *out) {
  for (int k = 0; k < LMX_PROFILE_KEYS; k++) {
    out[k] = (double)ns[k];
    out[LMX_PROFILE_KEYS + k] = (double)calls[k];
  }
  memset(ns, 0, sizeof ns);
  memset(calls, 0, sizeof calls);
}

/* The profile key of a node: its op, or for matmuls (a fused gate + up too) the weight type
 * and kernel shape. */
int lmx_profile_key(const lmx_node *n) {
  if (n->op == OP_MATMUL || n->op == OP_MATMUL_GLU) return LMX_PROFILE_MATMUL + 2 * n->src[1]->dtype + lmx_matmul_is_gemv(n);
  return n->op;
}
