#!/usr/bin/env bash
# Builds bench/kernel-dots.c against the native kernels (into bench/.cache) and runs it:
#   bash bench/kernel-dots.sh [type]      e.g. bash bench/kernel-dots.sh nvfp4
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/bench/.cache"
out="$root/bench/.cache/kernel-dots"
gcc -O3 -std=c11 -D_GNU_SOURCE -fno-math-errno -Wall -Wextra -Wno-unused-parameter -I"$root/native" -o "$out" \
  "$root/bench/kernel-dots.c" "$root/native/kernels/qdot.c" "$root/native/kernels/dequant.c" "$root/native/kernels/unpack.c" "$root/native/kernels/interleave.c" \
  "$root/native/kernels/bandwidth.c" "$root/native/cpu.c" "$root/native/pool.c" "$root/native/huge_pages.c" \
  "$root/native/kernels/convert.c" -lm -lpthread
exec "$out" "$@"
