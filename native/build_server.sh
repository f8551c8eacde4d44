#!/usr/bin/env bash
# Build whisper.cpp's whisper-server for one backend into .cache/build-BACKEND; print its path.
#
#   native/build_server.sh [cpu|cuda|metal|vulkan]    (default: cpu)
#
# Extra CMake arguments may follow the backend, e.g. `native/build_server.sh cpu -DGGML_NATIVE=ON`.
# JOBS overrides the parallel job count (default: all cores).
set -euo pipefail

backend="${1:-cpu}"
shift || true
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
build_dir="$repo/.cache/build-$backend"
jobs="${JOBS:-$(nproc 2>/dev/null || sysctl -n hw.ncpu)}"

# Progress goes to stderr so that stdout carries only the binary's path.
source_dir="$("$python" "$repo/native/fetch_whisper_cpp.py")"
cmake -S "$repo" -B "$build_dir" \
    -DWHISPER_CPP_SOURCE_DIR="$source_dir" \
    -DWHISPER_API_BACKEND="$backend" \
    -DCMAKE_BUILD_TYPE=Release "$@" >&2
cmake --build "$build_dir" --target whisper-server -j"$jobs" >&2

binary="$build_dir/bin/whisper-server"
[[ -x "$binary" ]] || { echo "build finished but $binary is missing" >&2; exit 1; }
echo "$binary"
