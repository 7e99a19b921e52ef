/* The plan executor: one call runs every node of a forward pass on the pool, with a
 * barrier before each node that depends on the ones before it (the planner groups
 * independent nodes; within a group threads move on as soon as they finish their share).
 * The plan was shape-checked and memory-planned in TypeScript. */
#include <sys/mman.h>

#include "lmx.h"

static lmx_kernel kernel_for(int32_t op) {
  switch (op) {
    case OP_GET_ROWS: return lmx_k_get_rows;
    case OP_RMS_NORM: return lmx_k_rms_norm;
    case OP_ADD_RMS_NORM: return lmx_k_add_rms_norm;
    case OP_MATMUL: return lmx_k_matmul;
    case OP_MATMUL_GLU: return lmx_k_matmul_glu;
    case OP_ROPE: return lmx_k_rope;
    case OP_KV_STORE: return lmx_k_kv_store;
    case OP_ATTENTION: return lmx_k_attention;
    case OP_SWIGLU: return lmx_k_swiglu;
    case OP_GEGLU: return lmx_k_geglu;
    case OP_ADD: return lmx_k_add;
    default: return 0;
  }
}

static void run_profiled(const lmx_plan *plan, int nth) {
  for (int i = 0; i < plan->n_nodes; i++) {
    const lmx_node *n = &plan->nodes[i];
    lmx_kernel k = kernel_for(n->op);
    const int64_t t0 = lmx_now_ns();
    if (k) k(n, 0, nth);
    const int64_t t1 = lmx_now_ns();
    lmx_profile_add(lmx_profile_key(n), t1 - t0);
    if (i + 1 < plan->n_nodes && plan->nodes[i + 1].wait) {
      lmx_pool_barrier(nth);
      lmx_profile_add(LMX_PROFILE_SYNC, lmx_now_ns() - t1);
    }
  }
}

static void run(void *arg, int ith, int nth) {
  const lmx_plan *plan = (const lmx_plan *)arg;
  if (ith == 0 && lmx_profile_on()) {
    run_profiled(plan, nth);
    return;
  }
  for (int i = 0; i < plan->n_nodes; i++) {
    const lmx_node *n = &plan->nodes[i];
    lmx_kernel k = kernel_for(n->op);
    if (k) k(n, ith, nth);
    if (i + 1 < plan->n_nodes && plan->nodes[i + 1].wait) lmx_pool_barrier(nth);
  }
}

void lmx_plan_execute(const lmx_plan *plan) {
  /* Workers are idle until lmx_pool_run publishes the job, so plain stores suffice. */
  for (int i = 0; i < 2 * plan->n_nodes; i++) atomic_store_explicit(&plan->counters[i], 0, memory_order_relaxed);
  /* Each execution (of any plan: a freed plan's share can be reallocated at the same
   * address) gets a new id, so the shared activation slots start empty. */
  static _Atomic int64_t runs;
  if (plan->share) plan->share->run = atomic_fetch_add(&runs, 1) + 1;
  if (plan->n_nodes > 0) lmx_pool_run(run, (void *)plan);
  /* The slots' pages go back after each run: a runner caches several prefill plans (one
   * per batch shape), and only the running one needs its activations resident. Faulting
   * them in again costs ~1 ms per 512-token step. */
  if (plan->share) madvise(plan->share->slot[0], plan->share->bytes, MADV_DONTNEED);
}
