/* lmx native core: shared types for the plan executor, thread pool and kernels.
 * Knows nothing of models, tokens or JavaScript; binding.c is the only N-API file. */
#ifndef LMX_H
#define LMX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Element types; the numeric ids match src/engine/tensor/dtype.ts. */
enum lmx_dtype {
  LMX_F32 = 0, LMX_F16 = 1, LMX_BF16 = 2, LMX_I32 = 3,
  /* block-quantized weights (layouts as in GGUF) */
  LMX_Q4_0 = 10, LMX_Q4_1 = 11, LMX_Q5_0 = 12, LMX_Q5_1 = 13, LMX_Q8_0 = 14,
  LMX_Q4_K = 15, LMX_Q5_K = 16, LMX_Q6_K = 17, LMX_MXFP4 = 18, LMX_NVFP4 = 19,
  /* K-quants with their codes interleaved for the decode dots (kernels/interleave.c):
   * made at load from Q4_K/Q6_K (NVFP4, Q8_0), never stored in files */
  LMX_Q4_K_I = 20, LMX_Q6_K_I = 21, LMX_NVFP4_I = 22, LMX_Q8_0_I = 23,
  /* Q4_K and Q6_K rows in groups of 16 (kernels/interleave.c): matrix layouts, not row ones */
  LMX_Q4_K_R16 = 24, LMX_Q6_K_R16 = 25
};
#define LMX_IS_QUANT(dt) ((dt) >= LMX_Q4_0)

/* Op codes; the numeric ids match src/engine/tensor/ops.ts. */
enum lmx_op {
  OP_GET_ROWS = 1,  /* dst[r] = src0[ids[r]] (any float dtype -> f32) */
  OP_RMS_NORM = 2,  /* dst = src0 / rms(src0) * w, per row of ne0 */
  OP_MATMUL = 3,    /* dst[T,N] = src0[T,K] . src1[N,K]^T (+ src2 bias[N]) (+ src4 residual[T,N]);
                       with src3 set, the rows are glu(src0, src3), glu = ip[0] (OP_SWIGLU or
                       OP_GEGLU); with ip[1] = LMX_MM_NORM, rmsnorm(src0) * src5, eps fp[2] */
  OP_ROPE = 4,      /* rotary embedding per head, optional per-head RMSNorm first */
  OP_KV_STORE = 5,  /* write K/V rows into the paged cache */
  OP_ATTENTION = 6, /* causal GQA attention over the paged cache, online softmax */
  OP_SWIGLU = 7,    /* dst = silu(src0) * src1 */
  OP_GEGLU = 8,     /* dst = gelu_tanh(src0) * src1 */
  OP_ADD = 9,       /* dst = src0 + src1 */
  OP_ADD_RMS_NORM = 10, /* dst2 = src0 + src1 (written to src3); dst = rmsnorm(dst2) * w */
  OP_MATMUL_GLU = 11,   /* dst = glu(src0 . src1^T * fp[0], src0 . src4^T * fp[1]), glu = ip[0]:
                           an FFN's gate and up projections, one claim of rows computing both;
                           ip[1] = LMX_MM_NORM as for OP_MATMUL */
};

/* Set in a node's op word when it may start before every thread has finished the node
 * before it (the planner groups independent nodes: src/engine/tensor/plan.ts). */
#define LMX_OP_NO_BARRIER 0x100
#define LMX_OP_MASK 0xff

/* ip[1] of a matmul whose weights are quantized: its activation rows are the RMSNorm of
 * src0's rows (weight src5 or none, eps fp[2]), computed where they are quantized, so the
 * normalized rows never exist as a tensor (plan.ts foldNorms). */
#define LMX_MM_NORM 1

#define LMX_MAX_SRC 6
#define LMX_OP_INTS 20
#define LMX_OP_FLOATS 4
#define LMX_TENSOR_FIELDS 6

/* A 2-D view: ne1 rows of ne0 elements, rows nb1 bytes apart. */
typedef struct {
  char *data;
  int32_t dtype;
  int64_t ne0, ne1, nb1;
} lmx_tensor;

/* Prepared int8 activations of the prefill GEMM, shared by a plan's threads: two slots in
 * one mapping, each quantized once by all threads together (gemm_q8.c,
 * lmx_gemm_q8_activations). */
typedef struct {
  uint8_t *slot[2]; /* slot[1] = slot[0] + bytes / 2 */
  size_t bytes;     /* of the mapping */
  int64_t run;      /* id of the current execution: each starts with the slots empty */
} lmx_act_share;

/* One decoded instruction. ip[] and fp[] are op-specific parameters. */
typedef struct {
  int32_t op;
  lmx_tensor *dst;
  lmx_tensor *src[LMX_MAX_SRC];
  const int32_t *ip; /* LMX_OP_INTS - 8 ints, after op, dst and src[] */
  const float *fp;   /* LMX_OP_FLOATS floats */
  _Atomic int64_t *work; /* work counter for kernels that hand out chunks dynamically */
  _Atomic int64_t *done; /* items finished, for kernels whose last item ends the node */
  int wait;              /* all threads must finish the previous node first */
  int group;             /* index of the node's barrier group in the plan */
  lmx_act_share *share;  /* the plan's shared GEMM activations, or NULL */
  float *partials;       /* the plan's split-attention partials (lmx_attention_partials_bytes), or NULL */
} lmx_node;

/* Claims the next `chunk` units of a node's work; returns the first (>= total when done).
 * The executor zeroes the counters before each run. */
static inline int64_t lmx_claim(const lmx_node *n, int64_t chunk) {
  return atomic_fetch_add_explicit(n->work, chunk, memory_order_relaxed);
}

typedef struct {
  int n_nodes;
  lmx_node *nodes;
  _Atomic int64_t *counters; /* two per node: work handed out, then items done */
  int n_tensors;
  lmx_tensor *tensors;
  int32_t *ints;
  float *floats;
  lmx_act_share *share;
  float *partials; /* mapping of partials_bytes shared by the attention nodes, or NULL */
  size_t partials_bytes;
} lmx_plan;

/* Kernels run on every thread: thread ith of nth does its share, no thread allocates. */
typedef void (*lmx_kernel)(const lmx_node *n, int ith, int nth);

/* --- cpu features --- */
enum { LMX_CPU_AVX2 = 1, LMX_CPU_FMA = 2, LMX_CPU_F16C = 4, LMX_CPU_AVX512F = 8,
       LMX_CPU_AVX512BW = 16, LMX_CPU_AVX512VNNI = 32, LMX_CPU_AVX512BF16 = 64, LMX_CPU_NEON = 128,
       LMX_CPU_AVX512VL = 256, LMX_CPU_AVXVNNI = 512 };
unsigned lmx_cpu_features(void);
/* Kernel tiers, each a superset of the one before: AVX2+FMA+F16C; AVX-VNNI (256-bit
 * vpdpbusd, VEX-encoded); AVX-512 F/BW/VL/VNNI (512-bit int8 GEMM, 256-bit VNNI dots). */
enum lmx_isa { LMX_ISA_SCALAR = 0, LMX_ISA_AVX2 = 1, LMX_ISA_AVXVNNI = 2, LMX_ISA_AVX512 = 3 };
/* The best tier this CPU has, capped by LMX_ISA (scalar|avx2|avxvnni|avx512) and
 * LMX_NO_SIMD=1 (scalar): the kernels every path dispatches on. */
int lmx_isa(void);
const char *lmx_isa_name(int isa);
/* True when the AVX2+FMA+F16C kernels (or better) may run. */
int lmx_use_avx2(void);

/* --- thread pool --- */
int lmx_pool_threads(void);
void lmx_pool_set_threads(int n);
/* Runs fn(arg, ith, nth) on all threads and returns when every thread is done. */
void lmx_pool_run(void (*fn)(void *arg, int ith, int nth), void *arg);
/* CLOCK_MONOTONIC in nanoseconds (the pool's spin timing, profiles, load timings). */
int64_t lmx_now_ns(void);
/* Waits until all threads reached this point (only inside lmx_pool_run). */
void lmx_pool_barrier(int nth);
/* This thread's scratch buffer of at least n floats (valid until the next call). */
float *lmx_scratch(size_t n);
/* A second per-thread buffer, for one activation row computed while lmx_scratch is in use. */
float *lmx_scratch_row(size_t n);
/* A third, for outputs a kernel holds while the other two are in use (a fused gate + up
 * matmul's up rows). */
float *lmx_scratch_out(size_t n);

/* Streaming-read bandwidth over `bytes` on the pool, `repeats` reads one after another:
 * each read's GB/s into gbs[]. Returns 0, or -1 if the buffer could not be mapped. */
int lmx_bandwidth_probe(size_t bytes, int repeats, double *gbs);
/* One thread's streaming read of n floats at p (64-byte aligned), as the probe reads: their
 * sum, so the reads cannot be dropped. */
float lmx_stream_read(const float *p, size_t n);

/* Transparent huge pages (huge_pages.c). */
#define LMX_HUGE_PAGE ((size_t)2 << 20)
/* Whether to ask for them: LMX_HUGE_PAGES=0 turns them off (for comparisons). */
int lmx_huge_pages_wanted(void);
/* [addr, addr + len) of a fresh reservation aligned to 2 MiB with the slack around it
 * given back, advised MADV_HUGEPAGE where wanted, or MAP_FAILED. prot and flags as for
 * mmap; with fd < 0 anonymous memory. Unmapped with munmap(addr, len). */
void *lmx_mmap_huge_aligned(size_t len, int prot, int flags, int fd);
/* The same without the advice: faulted in 4 KiB pages, whole 2 MiB pages collapsible later. */
void *lmx_mmap_2m_aligned(size_t len, int prot, int flags, int fd);
/* Background collapse of memory in 4 KiB pages into transparent huge pages:
 * queue [addr, addr + len), withdraw it before unmapping (waits out a collapse in
 * progress there), and the bytes waiting, collapsed and failed so far. */
void lmx_collapse_async(void *addr, size_t len);
void lmx_collapse_cancel(void *addr, size_t len);
void lmx_collapse_status(size_t *pending_bytes, size_t *collapsed_bytes, size_t *failed_bytes);

/* Weights read in place from a mapped file (file_pages.c): ranges are (offset, length)
 * pairs from base, a mapping of path at offset 0 (sorted and merged in place). Faults them
 * in; with reread, the whole
 * 2 MiB pages among them are read again from the file when under 90% came in as 2 MiB
 * pages. Bytes: in the ranges, in their whole 2 MiB pages, mapped as 2 MiB pages (the
 * whole mapping's) before and after, read again. */
typedef struct {
  size_t bytes, eligible, huge_before, huge_after, reread;
  double ms;
} lmx_file_pages;
void lmx_file_pages_settle(uint8_t *base, const char *path, size_t *ranges, int n, int reread, lmx_file_pages *out);

/* --- executor --- */
void lmx_plan_execute(const lmx_plan *plan);

/* --- profile: time per key, where a key is an op id (< 16), a matmul weight type and shape
 * (LMX_PROFILE_MATMUL + 2 * dtype + is_gemv), barrier waits or sampling --- */
#define LMX_PROFILE_MATMUL 16
#define LMX_PROFILE_SYNC 80 /* room for dtypes below 32 */
#define LMX_PROFILE_SAMPLE 81
#define LMX_PROFILE_KEYS 82
_Static_assert(LMX_PROFILE_MATMUL + 2 * LMX_Q8_0_I + 1 < LMX_PROFILE_SYNC, "profile keys of matmul types overlap");
void lmx_profile_enable(int on);
int lmx_profile_on(void);
void lmx_profile_add(int key, int64_t ns);
void lmx_profile_take(double *out);
int lmx_profile_key(const lmx_node *n);
/* Whether a matmul node runs as GEMV (decode-sized batches) rather than GEMM, and whether
 * it runs as the int8 GEMM (quantized weights, GEMM-sized batches). */
int lmx_matmul_is_gemv(const lmx_node *n);
int lmx_matmul_is_q8gemm(const lmx_node *n);

/* --- conversions --- */
float lmx_f16_to_f32(uint16_t h);
uint16_t lmx_f32_to_f16(float f);
static inline float lmx_bf16_to_f32(uint16_t h) {
  union { uint32_t u; float f; } v; v.u = (uint32_t)h << 16; return v.f;
}
/* The little-endian f16 at p, as f32. */
static inline float lmx_f16_le(const uint8_t *p) {
  return lmx_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}
/* UE4M3 (NVFP4 block scale) codes decoded at half their value, as the int8 dots that
 * double the E2M1 codes want them: a 256-entry table built on first use. */
const float *lmx_ue4m3_half(void);
/* Converts n f32 values to f16 (round to nearest even). */
void lmx_row_to_f16(const float *src, uint16_t *dst, int64_t n);
/* Converts n elements of a row of any float or quantized dtype to f32. */
void lmx_row_to_f32(const void *src, int32_t dtype, float *dst, int64_t n);
/* f32 -> Q8_0 blocks (n a multiple of 32), as ggml quantizes them: what a q8_0 KV cache
 * stores (kernels/quantize_k.c). */
void lmx_row_to_q8_0(const float *src, uint8_t *dst, int64_t n);
/* Block layout of a dtype (1 and the element size for plain types). */
int lmx_block_size(int32_t dtype);
int lmx_block_bytes(int32_t dtype);
int64_t lmx_row_bytes(int32_t dtype, int64_t n);
void lmx_dequant_row(const void *src, int32_t dtype, float *dst, int64_t n);
/* Sub-block j's 6-bit scale and min from the 12 packed bytes of a Q4_K/Q5_K block. */
static inline void lmx_scale_min_k4(const uint8_t *s, int j, int *sc, int *m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

/* The 8 six-bit scales and the 8 mins of a Q4_K/Q5_K super-block as bytes of two 64-bit
 * words, from its 12 packed bytes at s (see lmx_scale_min_k4 for the layout), with scalar
 * integer operations: the integer ports are idle while the vector ones are not. */
static inline void lmx_scales_mins_k4(const uint8_t *s, uint64_t *scales, uint64_t *mins) {
  uint32_t lo, hi, b;
  memcpy(&lo, s, 4);
  memcpy(&hi, s + 4, 4);
  memcpy(&b, s + 8, 4);
  *scales = (lo & 0x3f3f3f3fu) | (uint64_t)((b & 0x0f0f0f0fu) | ((lo & 0xc0c0c0c0u) >> 2)) << 32;
  *mins = (hi & 0x3f3f3f3fu) | (uint64_t)(((b >> 4) & 0x0f0f0f0fu) | ((hi & 0xc0c0c0c0u) >> 2)) << 32;
}

/* The inverse: 8 scales and 8 mins (0..63 each) packed into a super-block's 12 bytes at q. */
static inline void lmx_pack_scales_mins_k4(const uint8_t *sc, const uint8_t *mn, uint8_t *q) {
  for (int j = 0; j < 4; j++) {
    q[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
    q[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
    q[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
  }
}

/* --- interleaved K-quants (kernels/interleave.c) --- */
/* The interleaved type made from dtype for a matrix of rows x cols (Q4_K -> Q4_K_R16 and
 * Q6_K -> Q6_K_R16 for whole groups of 16 rows, else Q4_K_I and Q6_K_I; NVFP4 -> NVFP4_I
 * for rows of whole pairs of blocks, Q8_0 -> Q8_0_I for rows of whole groups of 8 blocks),
 * or 0. */
int32_t lmx_interleaved_type(int32_t dtype, int64_t rows, int64_t cols);
/* The GGUF type an interleaved type is made from (any other type: itself). */
int32_t lmx_interleaved_base(int32_t dtype);
/* blocks blocks of the interleaved type's (NVFP4_I: pairs of NVFP4 blocks; Q8_0_I: 8 Q8_0
 * blocks) from the GGUF type dtype at src, interleaved into dst (same size). */
void lmx_interleave_blocks(int32_t dtype, const uint8_t *src, uint8_t *dst, int64_t blocks);
/* units units of the conversion of dtype into `to` (interleaved or grouped), rows of cols:
 * blocks of `to` (lmx_interleave_blocks), or for the R16 types groups of 16 rows. */
void lmx_interleave_units(int32_t dtype, int32_t to, const uint8_t *src, uint8_t *dst, int64_t units, int64_t cols);
/* One interleaved block back in its GGUF layout (NVFP4_I: two blocks, Q8_0_I: eight; zero
 * and NaN scales come back as zero scales over zero codes, the same values). */
void lmx_deinterleave_block(int32_t dtype, const uint8_t *src, uint8_t *dst);
/* The 128 codes of an NVFP4_I block in element order, each mapped through table[16]. */
void lmx_nvfp4i_codes(const uint8_t *p, const uint8_t *table, uint8_t *u);
/* An NVFP4_I scale byte at half its value (0 is a zero scale): see interleave.c. */
static inline float lmx_nvfp4i_scale_half(uint8_t b) {
  union { uint32_t u; float f; } v;
  v.u = ((uint32_t)b << 20) + (116u << 23);
  return b ? v.f : 0.0f;
}
/* Rows a matrix layout keeps together (the R16 types: 16), or 1 for every other type. A
 * group's bytes are those of its 16 rows (lmx_row_bytes each), so row r's group starts
 * where row r - r % 16 would (lmx_row_group_at). */
#define LMX_R16_ROWS 16
#define LMX_R16_BYTES 2304 /* one super-block of 16 rows */
#define LMX_R16Q6_BYTES 3360 /* one Q6_K_R16 super-block of 16 rows */
static inline int lmx_row_group(int32_t dtype) {
  return dtype == LMX_Q4_K_R16 || dtype == LMX_Q6_K_R16 ? LMX_R16_ROWS : 1;
}
/* Row `lane` of a Q6_K_R16 group, super-block b, as the GGUF Q6_K block it came from. */
void lmx_r16q6_block(const uint8_t *group, int lane, int64_t b, uint8_t *q6k);
/* Row `lane`'s 8 scales and 8 mins in the Q4_K_R16 super-block at sb (the words A, B, C
 * of interleave.c). */
static inline void lmx_r16_scales_mins(const uint8_t *sb, int lane, uint8_t *sc, uint8_t *mn) {
  uint32_t a, b, c;
  memcpy(&a, sb + 64 + 4 * lane, 4);
  memcpy(&b, sb + 128 + 4 * lane, 4);
  memcpy(&c, sb + 192 + 4 * lane, 4);
  for (int j = 0; j < 5; j++) sc[j] = (uint8_t)(a >> 6 * j & 63);
  sc[5] = (uint8_t)(a >> 30 | (b >> 10 & 0x3c));
  sc[6] = (uint8_t)(b >> 28 | (c >> 8 & 0x30));
  sc[7] = (uint8_t)((c >> 14 & 3) | (c >> 26 & 0x3c));
  mn[0] = (uint8_t)(b & 63), mn[1] = (uint8_t)(b >> 16 & 63), mn[2] = (uint8_t)(b >> 6 & 63), mn[3] = (uint8_t)(b >> 22 & 63);
  mn[4] = (uint8_t)(c & 63), mn[5] = (uint8_t)(c >> 16 & 63), mn[6] = (uint8_t)(c >> 6 & 63), mn[7] = (uint8_t)(c >> 22 & 63);
}
/* The group holding row r of a grouped matrix w, and r's lane in it. */
const uint8_t *lmx_row_group_at(const lmx_tensor *w, int64_t r, int *lane);
/* Row r of a weight matrix as f32 (any type; rows of the R16 types are found in their group). */
void lmx_weight_row_to_f32(const lmx_tensor *w, int64_t r, float *dst);
/* The 256 codes of an interleaved block in element order (Q4_K_I 0..15, Q6_K_I 0..63). */
void lmx_interleaved_codes(const uint8_t *p, int32_t dtype, uint8_t *u);
/* int8 activation codes (K of them) put in the interleaved order, per 256 (K-quants) or
 * per 128 (NVFP4_I). */
void lmx_x8_interleave(int8_t *q, int64_t K);
void lmx_x8_interleave_nvfp4(int8_t *q, int64_t K);

/* --- int8 prefill for block-quantized weights (kernels/unpack.c, kernels/gemm_q8.c) --- */
/* E2M1 (FP4) codes at twice their value plus 12, 0..24: unsigned, for maddubs. */
extern const uint8_t lmx_e2m1x2p12[16];
/* Values per sub-block of one scale and offset when a row is unpacked as unsigned codes. */
#define LMX_UNPACK_SB 32
/* A Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 or MXFP4 row as unsigned codes u (Q8_0: signed) with
 * d, o per sub-block of LMX_UNPACK_SB: w = d * u + o. */
void lmx_unpack_row(const void *src, int32_t dtype, int64_t K, uint8_t *u, float *d, float *o);
/* A Q4_K/Q5_K row in K form: unsigned codes u, 6-bit scales m and offsets o (per 32),
 * bases (per 256) with w = base * m * u + o exactly; m, o and base stride elements apart. */
void lmx_unpack_k4(const void *src, int32_t dtype, int64_t K, uint8_t *u, int32_t *m, float *o, float *base, int64_t stride);
/* lmx_unpack_k4 of row r of weight matrix w (Q4_K_R16 rows from their group). */
void lmx_unpack_k4_row(const lmx_tensor *w, int64_t r, uint8_t *u, int32_t *m, float *o, float *base, int64_t stride);
/* Values per float base of the multiplier form (32 for NVFP4, 256 for Q6_K), or 0 for
 * types the GEMM takes as unsigned codes. */
int lmx_mult_ab(int32_t dtype);
/* A row in multiplier form: signed codes c (NVFP4 -12..12, Q6_K -32..31), multipliers m
 * (per 16, int16 range) and bases (per lmx_mult_ab) with w = base * m * c exactly; m and
 * base are stride elements apart. Nonzero if some NVFP4 multiplier exceeds 32767 (the
 * two scales of a pair are more than ~2^11 apart): that row needs another path. */
int lmx_unpack_mult(const void *src, int32_t dtype, int64_t K, int8_t *c, int32_t *m, float *base, int64_t stride);
/* lmx_unpack_mult of row r of weight matrix w (Q6_K_R16 rows from their group). */
int lmx_unpack_mult_row(const lmx_tensor *w, int64_t r, int8_t *c, int32_t *m, float *base, int64_t stride);
int64_t lmx_gemm_q8_rows(void);
/* Bytes of a GEMM node's prepared activations (K per token, T tokens). */
size_t lmx_gemm_q8_act_bytes_total(int64_t K, int64_t T);
/* Floats of scratch one thread needs for a GEMM node (its work area). */
int64_t lmx_gemm_q8_scratch(const lmx_node *n);
/* The node's prepared activations, in the plan's shared slots (createPlan makes them for
 * every plan with an int8 GEMM). Every thread must call this once per node: quantizing
 * into a slot is split across threads and ends in a barrier; q/k/v and gate/up of one
 * barrier group reuse a slot. work: lmx_gemm_q8_scratch floats. */
const uint8_t *lmx_gemm_q8_activations(const lmx_node *n, int ith, int nth, float *work);
/* Token t's activation row of a matmul node: src0's row, or in tmp (ne0 floats) the
 * RMSNorm of src0's row (ip[1] = LMX_MM_NORM) or the GLU of src0 and src3, when the
 * planner folded the norm or the gated activation into the matmul. */
const float *lmx_matmul_x_row(const lmx_node *n, int64_t t, float *tmp);
/* Whether lmx_matmul_x_row needs a row of scratch (a fused GLU or RMSNorm). */
int lmx_matmul_x_computed(const lmx_node *n);
/* One RMSNorm row: d = x / rms(x) * w (w may be NULL); the bits of the RmsNorm ops. */
void lmx_rms_norm_row(const float *x, const float *w, float eps, float *d, int64_t D);
/* Output rows [lo, hi) (at most lmx_gemm_q8_rows()) for every token, from the prepared
 * activations act, with the kernels of tier isa (enum lmx_isa); work as for
 * lmx_gemm_q8_activations. */
void lmx_gemm_q8(const lmx_node *n, int64_t lo, int64_t hi, const uint8_t *act, float *work, int isa);

/* --- quantizers (kernels/quantize_k.c, kernels/quantize_fp4.c) --- */
/* Q8_0, Q4_0, Q4_1, Q4_K, Q5_K or Q6_K rows (ggml's quantizers; importance-weighted with
 * imp, one per column); runs on the pool. 0 for another type or a ragged row. */
int lmx_quantize_rows(int32_t dtype, const float *x, int64_t rows, int64_t cols, const float *imp, uint8_t *out);
/* lmx's NVFP4 (with tensor scale g) or MXFP4 quantizer over n values in rows of cols, with
 * optional per-column importance; runs on the pool. */
void lmx_quantize_fp4(int32_t dtype, const float *x, int64_t n, int64_t cols, const float *imp, float g, uint8_t *out);
/* The NVFP4 tensor scale with the least error; sample: room for 2 x 2048 x 64 floats. */
float lmx_nvfp4_tensor_scale(const float *x, int64_t n, int64_t cols, const float *imp, float *sample);

/* --- kernels --- */
void lmx_k_get_rows(const lmx_node *n, int ith, int nth);
void lmx_k_rms_norm(const lmx_node *n, int ith, int nth);
void lmx_k_add_rms_norm(const lmx_node *n, int ith, int nth);
void lmx_k_matmul(const lmx_node *n, int ith, int nth);
void lmx_k_matmul_glu(const lmx_node *n, int ith, int nth);
void lmx_k_rope(const lmx_node *n, int ith, int nth);
void lmx_k_kv_store(const lmx_node *n, int ith, int nth);
void lmx_k_attention(const lmx_node *n, int ith, int nth);
/* The KV pool slot of position pos in a sequence with this block table (bs slots per block). */
static inline int64_t lmx_kv_slot(const int32_t *table, int64_t pos, int bs) {
  return (int64_t)table[pos / bs] * bs + pos % bs;
}
/* Bytes of partial results the split decode attention may need for node n (0: it never
 * splits); createPlan maps the largest for the plan. */
size_t lmx_attention_partials_bytes(const lmx_node *n);
/* Runs attention node n split over the keys and returns 1, or returns 0 without doing
 * anything when the batch is not a decode step (kernels/attention_split.c). */
int lmx_attention_split(const lmx_node *n, int ith, int nth);
void lmx_k_swiglu(const lmx_node *n, int ith, int nth);
void lmx_k_geglu(const lmx_node *n, int ith, int nth);
/* One row of the gated activation op (OP_SWIGLU or OP_GEGLU), the same bits as its kernel. */
void lmx_glu_row(int32_t op, const float *a, const float *b, float *d, int64_t n);
void lmx_k_add(const lmx_node *n, int ith, int nth);

/* --- sampling --- */
typedef struct lmx_sampler lmx_sampler;
typedef struct {
  float temperature, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
  int32_t top_k, repeat_last_n, n_logprobs;
  uint64_t seed;
} lmx_sampler_config;
/* Result of one draw: the token, its log-probability and the top-n alternatives. */
typedef struct {
  int32_t token;
  float logprob;
  int32_t n_top;
  int32_t top_ids[20];
  float top_logprobs[20];
} lmx_sample_result;
lmx_sampler *lmx_sampler_new(const lmx_sampler_config *cfg);
void lmx_sampler_free(lmx_sampler *s);
void lmx_sampler_accept(lmx_sampler *s, int32_t token);
void lmx_sampler_reset(lmx_sampler *s);
/* Samples from logits[n_vocab] (left unmodified). */
void lmx_sampler_sample(lmx_sampler *s, const float *logits, int32_t n_vocab, lmx_sample_result *out);

#endif
