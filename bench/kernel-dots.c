/* Throughput of one thread's fused decode dots (native/kernels/qdot_x86.h on the active
 * tier) for each quantized type, on 1024-wide rows: "hot" rows stay in L2 (the kernel's
 * own speed), "cold" rows stream from a 400 MB buffer (kernel plus memory) in 2 MiB pages,
 * as the engine's repacked weights are (KERNEL_DOTS_SMALL_PAGES=1: 4 KiB pages). Prints the
 * minimum over repeats, which on a shared machine is the figure that noise disturbs least;
 * compare two builds by alternating them. Each type is timed one row per call and as one
 * call over all rows (what decode runs: the difference is the per-call cost). Block
 * scales are set to ordinary values (random f16 bytes would include subnormals, which
 * cost several times more on some CPUs). The interleaved types (q4_K_R16 and q6_K_R16, or
 * q4_K_I and q6_K_I for row counts not a multiple of 16, nvfp4_I, q8_0_I) are what the cpu backend runs
 * for Q4_K, Q6_K, NVFP4 and Q8_0 weights (the R16 types have no single-row figure: their
 * rows come 16 at a time). Then, per
 * type: decode batches of 4 and 16 tokens on hot rows (ns per row and token), and two
 * figures from the same cold buffer: "layers", the 0.6B's matrices one call each as decode
 * runs them (the cost of matrix boundaries), and "read", the bandwidth probe's streaming
 * read: kernel, boundaries and memory, side by side in one run. Also the time to quantize
 * one activation row for the type (lmx_x8_row: what each matmul node does before its dots).
 *
 *   bash bench/kernel-dots.sh            (builds into bench/.cache and runs every type)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lmx.h"
#include "simd.h"

static double now(void) {
  return (double)lmx_now_ns() * 1e-9;
}

/* Bytes per 1024-wide row and the offsets of f16 scales within a block (-1: none). */
static const struct {
  const char *name;
  int32_t dtype;
  int block, bytes;
  int f16[2];
} TYPES[] = {
    {"q8_0", LMX_Q8_0, 32, 34, {0, -1}}, {"q4_0", LMX_Q4_0, 32, 18, {0, -1}},   {"q4_1", LMX_Q4_1, 32, 20, {0, 2}},
    {"q5_0", LMX_Q5_0, 32, 22, {0, -1}}, {"q5_1", LMX_Q5_1, 32, 24, {0, 2}},    {"q4_K", LMX_Q4_K, 256, 144, {0, 2}},
    {"q5_K", LMX_Q5_K, 256, 176, {0, 2}}, {"q6_K", LMX_Q6_K, 256, 210, {208, -1}}, {"mxfp4", LMX_MXFP4, 32, 17, {-1, -1}},
    {"nvfp4", LMX_NVFP4, 64, 36, {-1, -1}}, {"q4_K_I", LMX_Q4_K_I, 256, 144, {0, 2}}, {"q6_K_I", LMX_Q6_K_I, 256, 210, {208, -1}},
    {"nvfp4_I", LMX_NVFP4_I, 128, 72, {-1, -1}}, {"q8_0_I", LMX_Q8_0_I, 256, 272, {-1, -1}},
    {"q4_K_R16", LMX_Q4_K_R16, 256, 144, {-1, -1}}, {"q6_K_R16", LMX_Q6_K_R16, 256, 210, {-1, -1}},
};

/* The bandwidth probe's read (lmx_stream_read) over the same buffer, one thread, best of 3:
 * the bound the cold dots are measured against, taken beside them. */
static double read_gbs(const uint8_t *w, size_t bytes) {
  double best = 1e9;
  volatile float sink = 0;
  for (int r = 0; r < 3; r++) {
    const double t0 = now();
    sink += lmx_stream_read((const float *)w, bytes / sizeof(float));
    const double dt = now() - t0;
    if (dt < best) best = dt;
  }
  return (double)bytes / best / 1e9;
}

static void ordinary_scales(uint8_t *w, int64_t bytes, int t) {
  for (int64_t b = 0; b < bytes; b += TYPES[t].bytes) {
    for (int k = 0; k < 2; k++)
      if (TYPES[t].f16[k] >= 0) w[b + TYPES[t].f16[k] + 1] = 0x14 + rand() % 4; /* ~1e-3 */
    if (TYPES[t].dtype == LMX_MXFP4) w[b] = 118 + rand() % 6;
    if (TYPES[t].dtype == LMX_NVFP4)
      for (int s = 0; s < 4; s++) w[b + s] = 0x30 + rand() % 16;
  }
}

/* The 0.6B's decode shape: per layer q, k, v, o, gate, up, down (rows x K), each matrix one
 * call in layer order, carved one after another out of the cold buffer as the load places
 * the repacked weights. Against the "rows cold" figure (one call over the whole buffer)
 * this is the cost of matrix boundaries: each call's two streams start afresh. */
static const int64_t SHAPES[7][2] = {{2048, 1024}, {1024, 1024}, {1024, 1024}, {1024, 2048},
                                     {3072, 1024}, {3072, 1024}, {1024, 3072}};

static double layers_gbs(lmx_qdotn_fn dotn, int32_t dtype, int block, int bytes, const uint8_t *w, size_t have,
                         float *outs, int *layers_out) {
  int8_t *rec[3];
  float x[3072];
  for (int i = 0; i < 3072; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  for (int k = 0; k < 3; k++) {
    rec[k] = aligned_alloc(64, (size_t)((lmx_x8_bytes(1024 * (k + 1)) + 63) / 64 * 64));
    lmx_x8_row(x, 1024 * (k + 1), dtype, rec[k]);
  }
  int64_t per_layer = 0;
  for (int m = 0; m < 7; m++) per_layer += SHAPES[m][0] * SHAPES[m][1] / block * bytes;
  int layers = (int)((int64_t)have / per_layer);
  if (layers > 28) layers = 28;
  *layers_out = layers;
  double best = 1e9;
  volatile float sink = 0;
  for (int r = 0; r < 3; r++) {
    const double t0 = now();
    const uint8_t *p = w;
    for (int l = 0; l < layers; l++)
      for (int m = 0; m < 7; m++) {
        const int64_t n = SHAPES[m][0], K = SHAPES[m][1], rb = K / block * bytes;
        dotn(rec[K / 1024 - 1], 0, 1, p, rb, n, K, outs, 0);
        sink += outs[n - 1];
        p += n * rb;
      }
    const double dt = now() - t0;
    if (dt < best) best = dt;
  }
  for (int k = 0; k < 3; k++) free(rec[k]);
  return (double)(layers * per_layer) / best / 1e9;
}

int main(int argc, char **argv) {
  const int64_t K = 1024;
  /* Up to 16 tokens' records (a decode batch), each padded to whole cache lines. */
  const int64_t xs = (lmx_x8_bytes(K) + 63) / 64 * 64;
  int8_t *rec = aligned_alloc(64, (size_t)(16 * xs));
  float x[1024];
  for (int i = 0; i < K; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  if (!lmx_qdotn_for(LMX_Q8_0)) {
    fprintf(stderr, "kernel-dots: no fused decode dots on this CPU (tier %s)\n", lmx_isa_name(lmx_isa()));
    return 1;
  }
  printf("tier %s; ns per 1024-wide row (GB/s of weights)\n", lmx_isa_name(lmx_isa()));
  for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0]; t++) {
    const lmx_qdotn_fn dotn = lmx_qdotn_for(TYPES[t].dtype);
    if (!dotn || (argc > 1 && strcmp(argv[1], TYPES[t].name) != 0)) continue;
    const int64_t rowBytes = K / TYPES[t].block * TYPES[t].bytes, rowsCold = (int64_t)(400e6 / (double)rowBytes) / 16 * 16,
                  rowsHot = 64;
    const size_t huge = (size_t)2 << 20, coldBytes = ((size_t)(rowsCold * rowBytes) + huge - 1) & ~(huge - 1);
    uint8_t *w = aligned_alloc(huge, coldBytes);
    if (!getenv("KERNEL_DOTS_SMALL_PAGES")) madvise(w, coldBytes, MADV_HUGEPAGE);
    for (int64_t i = 0; i < rowsCold * rowBytes; i++) w[i] = (uint8_t)rand();
    const int32_t base = lmx_interleaved_base(TYPES[t].dtype);
    int bt = (int)t;
    while (TYPES[bt].dtype != base) bt--;
    ordinary_scales(w, rowsCold * rowBytes, bt);
    if (bt != (int)t) { /* the GGUF type's random blocks, interleaved as at load */
      uint8_t *g = malloc((size_t)(rowsCold * rowBytes));
      memcpy(g, w, (size_t)(rowsCold * rowBytes));
      const int grp = lmx_row_group(TYPES[t].dtype);
      lmx_interleave_units(base, TYPES[t].dtype, g, w, grp > 1 ? rowsCold / grp : rowsCold * rowBytes / TYPES[t].bytes, K);
      free(g);
    }
    for (int k = 0; k < 16; k++) lmx_x8_row(x, K, TYPES[t].dtype, rec + k * xs);
    volatile float sink = 0;
    float *outs = malloc(sizeof(float) * (size_t)rowsCold);
    for (int many = lmx_row_group(TYPES[t].dtype) > 1; many < 2; many++) { /* R16 types: no single rows */
      double ns[2];
      for (int cold = 0; cold < 2; cold++) {
        const int64_t rows = cold ? rowsCold : rowsHot, passes = cold ? 1 : rowsCold / rowsHot / 8;
        double best = 1e9;
        for (int r = 0; r < (cold ? 3 : 40); r++) {
          const double t0 = now();
          float s = 0;
          for (int64_t k = 0; k < passes; k++) {
            if (many) {
              dotn(rec, 0, 1, w, rowBytes, rows, K, outs, 0);
              s += outs[rows - 1];
            } else {
              for (int64_t i = 0; i < rows; i++) {
                dotn(rec, 0, 1, w + i * rowBytes, rowBytes, 1, K, outs, 0);
                s += outs[0];
              }
            }
          }
          const double dt = now() - t0;
          sink += s;
          if (dt < best) best = dt;
        }
        ns[cold] = best / (double)(rows * passes) * 1e9;
      }
      printf("%-6s%s hot %6.1f ns (%5.1f GB/s)   cold %6.1f ns (%5.1f GB/s)\n", TYPES[t].name, many ? " rows" : "     ",
             ns[0], (double)rowBytes / ns[0], ns[1], (double)rowBytes / ns[1]);
    }
    /* Decode batches of 4 and 16 tokens on hot rows: ns per row and token. */
    for (int T = 4; T <= 16; T *= 4) {
      const int64_t passes = rowsCold / rowsHot / 64;
      double best = 1e9;
      for (int r = 0; r < 40; r++) {
        const double t0 = now();
        for (int64_t k = 0; k < passes; k++) dotn(rec, xs, T, w, rowBytes, rowsHot, K, outs, rowsHot);
        const double dt = now() - t0;
        sink += outs[0];
        if (dt < best) best = dt;
      }
      printf("%-6s T=%-2d hot %6.1f ns per row and token\n", TYPES[t].name, T, best / (double)(rowsHot * passes * T) * 1e9);
    }
    /* What each matmul node does before its dots: one activation row quantized for the type. */
    for (int64_t Kx = 1024; Kx <= 3072; Kx *= 3) {
      float xs[3072];
      int8_t *r = aligned_alloc(64, (size_t)((lmx_x8_bytes(Kx) + 63) / 64 * 64));
      for (int i = 0; i < Kx; i++) xs[i] = (float)rand() / (float)RAND_MAX - 0.5f;
      double best = 1e9;
      for (int rep = 0; rep < 20; rep++) {
        const double t0 = now();
        for (int k = 0; k < 1000; k++) lmx_x8_row(xs, Kx, TYPES[t].dtype, r);
        const double dt = now() - t0;
        sink += (float)r[0];
        if (dt < best) best = dt;
      }
      printf("%-6s x8 row of %lld: %.2f us\n", TYPES[t].name, (long long)Kx, best / 1000 * 1e6);
      free(r);
    }
    int layers = 0;
    const double lg = layers_gbs(dotn, TYPES[t].dtype, TYPES[t].block, TYPES[t].bytes, w, (size_t)(rowsCold * rowBytes), outs, &layers);
    printf("%-6s layers %5.1f GB/s (%d layers of the 0.6B's matrices, one call each)\n", TYPES[t].name, lg, layers);
    printf("%-6s read   %5.1f GB/s (the bandwidth probe's streaming read of the cold buffer)\n", TYPES[t].name,
           read_gbs(w, (size_t)(rowsCold * rowBytes)));
    free(outs);
    free(w);
  }
  return 0;
}
