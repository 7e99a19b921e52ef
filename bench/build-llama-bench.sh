#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-quantize from the source node-llama-cpp ships
# (its git bundle), once per machine, into bench/llama.cpp/ (ignored by git). ~8 minutes on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/llama.cpp"
bundle="$here/../node_modules/node-llama-cpp/llama/gitRelease.bundle"
[ -f "$bundle" ] || { echo "missing $bundle: run npm install first" >&2; exit 1; }
mkdir -p "$dest"
[ -d "$dest/src" ] || git clone -q "$bundle" "$dest/src"
cmake -S "$dest/src" -B "$dest/src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF > "$dest/cmake.log"
cmake --build "$dest/src/build" -j"$(nproc)" --target llama-bench llama-quantize > "$dest/build.log"
echo "built: $dest/src/build/bin/llama-bench"
