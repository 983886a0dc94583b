#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then builds examples/custom_model against it with
# find_package(ddptrain) (a separate CMake project, as a user's would be) and runs it on 2 ranks.
#   usage: install_test.sh BUILD_DIR SOURCE_DIR MPIEXEC
set -euo pipefail
BUILD="$(realpath "$1")"
SRC="$(realpath "$2")"
MPIEXEC="$3"
T="$(mktemp -d /tmp/ddptrain-install.XXXXXX)"
trap 'rm -rf "$T"' EXIT
cmake --install "$BUILD" --prefix "$T/prefix" >"$T/install.log"
for f in bin/ddptrain include/ddp/gradient_synchronizer.h include/ddp/version.h \
         lib/cmake/ddptrain/ddptrainConfig.cmake lib/cmake/ddptrain/ddptrainTargets.cmake; do
  [ -e "$T/prefix/$f" ] || [ -e "$T/prefix/${f/lib\//lib/x86_64-linux-gnu/}" ] ||
    { echo "FAIL: $f not installed"; cat "$T/install.log"; exit 1; }
done
echo "PASS: installed $(find "$T/prefix" -type f | wc -l) files"
"$T/prefix/bin/ddptrain" --version || { echo "FAIL: the installed ddptrain does not start"; exit 1; }
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$SRC/examples/custom_model" -B "$T/example" "${generator[@]}" \
  -DCMAKE_PREFIX_PATH="$T/prefix" >"$T/configure.log" 2>&1 || { cat "$T/configure.log"; exit 1; }
cmake --build "$T/example" -j 2 >"$T/build.log" 2>&1 || { tail -40 "$T/build.log"; exit 1; }
echo "PASS: examples/custom_model built against the installed package"
"$MPIEXEC" -np 2 --oversubscribe --bind-to none "$T/example/custom_model"
