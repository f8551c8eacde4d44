#!/usr/bin/env bash
# Rebuild the pywhispercpp==1.5.1 wheel from its sdist for one backend and install it into the
# active Python environment, replacing the CPU-only wheel from PyPI.
#
#   native/build_pywhispercpp.sh cpu|cuda|metal|vulkan
#
# Environment:
#   PYTHON      interpreter whose environment gets the wheel (default: `python` on PATH)
#   WHEEL_ONLY  set to 1 to build the wheel into .cache/wheels-BACKEND without installing it
#   CMAKE_ARGS  extra CMake arguments, space-separated, e.g. "-DCMAKE_CUDA_ARCHITECTURES=89"
#   GGML_NATIVE ON to tune for the building machine (default OFF: the wheel runs on any x86-64
#               with AVX2, like PyPI's, so an image built on one host runs on another)
set -euo pipefail

backend="${1:?usage: $0 cpu|cuda|metal|vulkan}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python}"
wheel_dir="$repo/.cache/wheels-$backend"

# pywhispercpp's setup.py hands every environment variable to CMake as -DNAME=VALUE (and appends
# $CMAKE_ARGS), so ggml's switches are set by exporting them. Same mapping as ../CMakeLists.txt.
case "$backend" in
    cpu)    export GGML_CUDA=OFF GGML_METAL=OFF GGML_VULKAN=OFF ;;
    cuda)   export GGML_CUDA=ON  GGML_METAL=OFF GGML_VULKAN=OFF ;;
    metal)  export GGML_CUDA=OFF GGML_METAL=ON  GGML_VULKAN=OFF ;;
    vulkan) export GGML_CUDA=OFF GGML_METAL=OFF GGML_VULKAN=ON ;;
    *) echo "unknown backend '$backend' (expected cpu, cuda, metal or vulkan)" >&2; exit 2 ;;
esac
export GGML_NATIVE="${GGML_NATIVE:-OFF}"
# PyPI's wheels get their library paths fixed by auditwheel/delocate; a plain `pip wheel` does
# not, so make the extension look for libwhisper/libggml next to itself ($ORIGIN; on macOS,
# @loader_path) instead of in the deleted build directory.
if [[ "$(uname -s)" == Darwin ]]; then
    export CMAKE_INSTALL_RPATH=@loader_path
else
    export CMAKE_INSTALL_RPATH='$ORIGIN'
fi
export CMAKE_BUILD_WITH_INSTALL_RPATH=ON
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || sysctl -n hw.ncpu)}"

sdist="$("$python" "$repo/native/fetch_whisper_cpp.py" --sdist)"
rm -rf "$wheel_dir"
# --no-cache-dir: pip would otherwise reuse a wheel it built earlier for another backend.
"$python" -m pip wheel --no-deps --no-cache-dir --wheel-dir "$wheel_dir" "$sdist" >&2
wheel="$(ls "$wheel_dir"/pywhispercpp-*.whl)"

if [[ "${WHEEL_ONLY:-0}" != 1 ]]; then
    "$python" -m pip install --no-deps --force-reinstall "$wheel" >&2
    "$python" -c "import _pywhispercpp as pw; print(pw.whisper_print_system_info())" >&2
fi
echo "$wheel"
