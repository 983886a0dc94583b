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
for f in bin/ddptrain include/ddp/dist/gradient_synchronizer.h include/ddp/core/version.h \
         lib/cmake/ddptrain/ddptrainConfig.cmake lib/cmake/ddptrain/ddptrainTargets.cmake; do
  [ -e "$T/prefix/$f" ] || [ -e "$T/prefix/${f/lib\//lib/x86_64-linux-gnu/}" ] ||
    { echo "FAIL: $f not installed"; cat "$T/install.log"; exit 1; }
done
echo "PASS: installed $(find "$T/prefix" -type f | wc -l) files"
# Only ddptrain::dist and ddptrain::core are the library: no header of the higher layers, and no
# dependency of theirs in the package's config.
if find "$T/prefix/include/ddp" -path '*/train/*' -o -path '*/data/*' -o -path '*/app/*' | grep -q .; then
  echo "FAIL: headers of the data, train or app layers were installed"; exit 1
fi
if grep -rlE 'CURL|LibArchive|yaml-cpp|spdlog|OpenSSL|ZLIB' "$T"/prefix/lib*/cmake/ddptrain "$T"/prefix/lib/*/cmake/ddptrain 2>/dev/null; then
  echo "FAIL: the installed package names a dependency of the executable's layers"; exit 1
fi
"$T/prefix/bin/ddptrain" --version || { echo "FAIL: the installed ddptrain does not start"; exit 1; }
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# As on a machine without curl, libarchive, OpenSSL, zlib, yaml-cpp or spdlog development packages:
# CMake is forbidden to find any of them, so the example builds only if nothing needs them.
no_deps=()
for p in CURL LibArchive OpenSSL ZLIB yaml-cpp spdlog fmt; do no_deps+=("-DCMAKE_DISABLE_FIND_PACKAGE_$p=ON"); done
cmake -S "$SRC/examples/custom_model" -B "$T/example" "${generator[@]}" "${no_deps[@]}" \
  -DCMAKE_PREFIX_PATH="$T/prefix" >"$T/configure.log" 2>&1 || { cat "$T/configure.log"; exit 1; }
cmake --build "$T/example" -j 2 >"$T/build.log" 2>&1 || { tail -40 "$T/build.log"; exit 1; }
echo "PASS: examples/custom_model (project(x CXX)) built against ddptrain::dist with curl, libarchive, OpenSSL, zlib, yaml-cpp and spdlog unfindable"
"$MPIEXEC" -np 2 --oversubscribe --bind-to none "$T/example/custom_model"
