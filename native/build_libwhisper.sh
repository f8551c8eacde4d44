#!/usr/bin/env bash
# Builds whisper.cpp's shared libwhisper (with its ggml libraries beside it) for one backend into
# .cache/lib-BACKEND/ and prints the path of libwhisper for `whisper-api serve --whisper-library`.
#
#   native/build_libwhisper.sh [cpu|cuda|metal|vulkan] [CMAKE_ARGS...]
#
# cuda: nvcc must be installed; cuBLAS, which ggml's CUDA backend links, comes from PyPI's
# nvidia-cublas wheel (installed into .cache/cuda-deps, no system package needed). The GPU
# architectures default to ggml's list; CUDA_ARCHITECTURES=90 builds for one (H100/H200) in a
# fraction of the time.
#
# VARIANT=name keeps builds with other CMake switches apart (.cache/lib-cpu-name), e.g.
#   VARIANT=openblas native/build_libwhisper.sh cpu -DGGML_BLAS=ON -DGGML_BLAS_VENDOR=OpenBLAS
set -euo pipefail

backend="${1:-cpu}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
name="$backend${VARIANT:+-$VARIANT}"
build="$root/.cache/build-lib-$name"
out="$root/.cache/lib-$name"
python3 "$root/native/fetch_whisper_cpp.py" >/dev/null

# $ORIGIN: the copied libraries find each other (and cuBLAS) in the output folder, wherever it is moved.
args=(-DWHISPER_API_BACKEND="$backend" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON
    -DCMAKE_BUILD_RPATH="\$ORIGIN")
if [[ "$backend" == cuda ]]; then
    deps="$root/.cache/cuda-deps"
    cu="$deps/nvidia/cu13"
    if [[ ! -e "$cu/lib/libcublas.so.13" ]]; then
        python3 -m pip install --quiet --no-deps --target "$deps" "nvidia-cublas>=13,<14" >&2
    fi
    # The wheel ships only versioned names; CMake's FindCUDAToolkit looks for the linker names.
    ln -sf libcublas.so.13 "$cu/lib/libcublas.so"
    ln -sf libcublasLt.so.13 "$cu/lib/libcublasLt.so"
    args+=(
        -DCUDA_cublas_LIBRARY="$cu/lib/libcublas.so"
        -DCUDA_cublasLt_LIBRARY="$cu/lib/libcublasLt.so"
        -DCMAKE_CUDA_FLAGS="-I$cu/include"
        -DCMAKE_CXX_FLAGS="-I$cu/include"
    )
    # ggml links the driver (libcuda) for virtual memory management; a build machine without a GPU
    # driver or the toolkit's stub has none, and ggml then allocates through the runtime instead.
    if ! ldconfig -p | grep -q 'libcuda\.so' && [[ ! -e "$(dirname "$(command -v nvcc)")/../lib64/stubs/libcuda.so" ]]; then
        args+=(-DGGML_CUDA_NO_VMM=ON)
    fi
    if [[ -n "${CUDA_ARCHITECTURES:-}" ]]; then
        args+=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHITECTURES")
    fi
fi

cmake -S "$root" -B "$build" "${args[@]}" "$@" >&2
cmake --build "$build" --target whisper -j "${JOBS:-$(nproc)}" >&2

mkdir -p "$out"
find "$build" \( -name 'libwhisper.so*' -o -name 'libggml*.so*' -o -name 'libwhisper*.dylib' -o -name 'libggml*.dylib' \) \
    -exec cp -P {} "$out/" \;
if [[ "$backend" == cuda ]]; then
    cp -P "$cu"/lib/libcublas*.so* "$out/"
    # The CUDA runtime the build linked, wherever the toolkit keeps it: a GPU machine may have the driver
    # and no toolkit.
    cudart="$(ldd "$out/libggml-cuda.so" | awk '/libcudart/ { print $3 }')"
    cp -L "$cudart" "$out/"
fi
ls "$out"/libwhisper.so* "$out"/libwhisper*.dylib 2>/dev/null | head -n 1
