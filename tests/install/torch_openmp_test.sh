#!/usr/bin/env bash
# cmake/torch_openmp.cmake picks the OpenMP runtime LibTorch itself loads. Each kind of LibTorch
# is faked by a folder holding only the runtime libraries such a LibTorch ships (empty files: the
# module only looks at names), and a two-line project reports what ddptrain::torch_openmp links:
#   - the PyPI wheel (lib/libgomp.so.1) and LibTorch zips (lib/libgomp-<hash>.so.1): that file;
#   - Debian's libtorch-dev (no runtime next to it, built with the system's GCC): the system libgomp;
#   - conda/MKL builds (libiomp5 or LLVM's libomp next to it): no target at all.
#   usage: torch_openmp_test.sh SOURCE_DIR REAL_TORCH_INSTALL_PREFIX CMAKE_ARGS...
# CMAKE_ARGS: the generator, make program and compiler of the main build (a machine may have
# ninja and no make).
set -euo pipefail
SRC="$(realpath "$1")" REAL="$2"
shift 2
CMAKE_ARGS=("$@")
T="$(mktemp -d /tmp/ddptrain-omp.XXXXXX)"
trap 'rm -rf "$T"' EXIT
cat >"$T/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(torch_openmp_probe CXX)
include("$SRC/cmake/torch_openmp.cmake")
if(TARGET ddptrain::torch_openmp)
  get_target_property(lib ddptrain::torch_openmp INTERFACE_LINK_LIBRARIES)
  message(STATUS "torch_openmp=\${lib}")
else()
  message(STATUS "torch_openmp=none")
endif()
CMAKE
failed=0
probe() {  # probe NAME PREFIX -> what ddptrain::torch_openmp links, or none
  cmake -S "$T" -B "$T/build-$1" "${CMAKE_ARGS[@]}" -DTORCH_INSTALL_PREFIX="$2" >"$T/$1.log" 2>&1 ||
    { cat "$T/$1.log" >&2; echo "FAIL $1: configure" >&2; exit 1; }
  sed -n 's/^-- torch_openmp=//p' "$T/$1.log"
}
links() {  # links NAME PREFIX EXPECTED-REGEX
  local out
  out=$(probe "$1" "$2")
  if [[ "$out" =~ ^$3$ ]]; then echo "PASS $1: $out"; else echo "FAIL $1: '$out', expected /$3/"; failed=1; fi
}
fake() {  # fake NAME LIBRARY... -> prints the fake LibTorch's prefix
  local dir="$T/$1"; shift
  mkdir -p "$dir/lib" && (cd "$dir/lib" && touch "$@") && echo "$dir"
}
links wheel "$(fake wheel libgomp.so.1 libtorch_cpu.so)" "$T/wheel/lib/libgomp\.so\.1"
links zip "$(fake zip libgomp-a34b3233.so.1 libtorch_cpu.so)" "$T/zip/lib/libgomp-a34b3233\.so\.1"
# Debian's LibTorch: the system's libgomp.so.1, found by find_library (the case that once found nothing).
links system "$(fake system libtorch_cpu.so)" "/.*/libgomp\.so\.1"
links mkl "$(fake mkl libiomp5.so libtorch_cpu.so)" "none"
links llvm "$(fake llvm libomp.so libtorch_cpu.so)" "none"
# And the LibTorch this build uses: the runtime its libtorch_cpu.so really loads.
# (Debian's LibTorch has prefix /usr and its libraries in lib/<multiarch>.)
loaded=""
cpu=$(ls "$REAL"/lib/libtorch_cpu.so "$REAL"/lib/*-linux-gnu/libtorch_cpu.so 2>/dev/null | head -1 || true)
[ -n "$cpu" ] && loaded=$(ldd "$cpu" | sed -n 's/^\s*\(libgomp[^ ]*\) => \([^ ]*\).*/\2/p' | head -1)
if [ -n "$loaded" ]; then
  got=$(probe real "$REAL")
  if [ "$(readlink -f "$got")" = "$(readlink -f "$loaded")" ]; then echo "PASS this LibTorch: $got (what $cpu loads)"
  else echo "FAIL this LibTorch: '$got', but $cpu loads $loaded"; failed=1; fi
fi
exit $failed
