{
  "targets": [
    {
      "target_name": "lmx",
      "sources": [
        "native/binding.c",
        "native/pool.c",
        "native/executor.c",
        "native/profile.c",
        "native/huge_pages.c",
        "native/file_pages.c",
        "native/cpu.c",
        "native/kernels/convert.c",
        "native/kernels/dequant.c",
        "native/kernels/qdot.c",
        "native/kernels/unpack.c",
        "native/kernels/interleave.c",
        "native/kernels/gemm_q8.c",
        "native/kernels/bandwidth.c",
        "native/kernels/matmul.c",
        "native/kernels/norm.c",
        "native/kernels/rope.c",
        "native/kernels/attention.c",
        "native/kernels/attention_split.c",
        "native/kernels/elementwise.c",
        "native/kernels/sample.c",
        "native/kernels/quantize_fp4.c",
        "native/kernels/quantize_k.c"
      ],
      "cflags_c": ["-std=c11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-math-errno", "-D_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "libraries": ["-lm", "-lpthread"]
    }
  ]
}
