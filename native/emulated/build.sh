#!/usr/bin/env bash
# Builds the addon with the AVX-VNNI and AVX-512 intrinsics emulated by SIMDe (Debian:
# libsimde-dev), so that those kernels can be tested on a machine without them:
# build/emulated/lmx.node reports both features and runs their kernels.
# Usage: native/emulated/build.sh [OUT_DIR]   (exit 2: no SIMDe headers or no AVX2 compiler)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/build/emulated}"
cc="${CC:-cc}"
node_inc="$(node -p 'require("path").join(process.execPath, "../../include/node")')"
[ -f "$node_inc/node_api.h" ] || node_inc="${npm_config_nodedir:-/usr}/include/node"
echo '#include <simde/x86/avx512.h>' | "$cc" -x c -mavx2 -E - > /dev/null 2>&1 || { echo "no SIMDe headers (libsimde-dev)" >&2; exit 2; }
mkdir -p "$out/obj"
flags=(-std=c11 -O2 -fPIC -mavx2 -mfma -mf16c -Wall -Wextra -Wno-unused-parameter -Wno-psabi -fno-math-errno
  -D_GNU_SOURCE -DLMX_EMULATE_AVX512 -DNODE_GYP_MODULE_NAME=lmx -I"$node_inc")
objs=()
pids=()
for src in "$root"/native/*.c "$root"/native/kernels/*.c; do
  obj="$out/obj/$(basename "$src" .c).o"
  "$cc" "${flags[@]}" -c "$src" -o "$obj" &
  objs+=("$obj")
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
"$cc" -shared -o "$out/lmx.node" "${objs[@]}" -lm -lpthread
echo "$out/lmx.node"
