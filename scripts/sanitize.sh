#!/usr/bin/env bash
# Builds the unit and distributed tests with AddressSanitizer and UndefinedBehaviorSanitizer
# (DDPTRAIN_SANITIZE) into build-asan and runs them: ddp_unit_tests, then ddp_dist_tests under
# mpirun -np 2. Only our code is instrumented (LibTorch and Open MPI are not), so what it finds is
# ours or at our calls into them. Slow: ~30 min on 2 cores, most of it the build.
#   usage: bash scripts/sanitize.sh [extra CMake configure arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/env.sh
BUILD_DIR=build-asan
cmake -S . -B "$BUILD_DIR" -G Ninja -DDDPTRAIN_PYTHON="$DDPTRAIN_VENV/bin/python" -DDDPTRAIN_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDDPTRAIN_WERROR=ON "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target ddp_unit_tests ddp_dist_tests

# detect_leaks=0: LibTorch and Open MPI keep memory until the process exits, by design (a 3-step
# MPI program alone "leaks" ~120 KB in ~3,400 allocations here): the reports would be theirs.
# protect_shadow_gap=0 where the CUDA libraries are loaded (the CUDA wheel's LibTorch): the CUDA
# driver maps memory inside ASan's shadow gap.
asan=detect_leaks=0
libs=$(ldd "$BUILD_DIR/tests/ddp_unit_tests")  # not piped into grep -q: pipefail, SIGPIPE
if grep -qE 'lib(cudart|c10_cuda|torch_cuda)\.so' <<<"$libs"; then asan+=:protect_shadow_gap=0; fi
export ASAN_OPTIONS="$asan" UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "sanitize: ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS"
"$BUILD_DIR/tests/ddp_unit_tests"
mpirun -np 2 --oversubscribe --bind-to none -x ASAN_OPTIONS -x UBSAN_OPTIONS "$BUILD_DIR/tests/ddp_dist_tests"
echo "sanitize: ok (unit and distributed tests under ASan + UBSan)"
