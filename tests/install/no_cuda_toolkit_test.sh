#!/usr/bin/env bash
# Builds ddptrain from scratch as on a machine without a CUDA toolkit (the CUDA LibTorch wheel,
# but no nvcc and no /usr/local/cuda: a Debian box, a CPU cluster node), then checks that the
# NCCL communicator is left out cleanly and the build trains on 2 ranks. The toolkit is hidden in
# a private mount namespace (unshare -m, root), so nothing outside this test sees a change.
#   usage: no_cuda_toolkit_test.sh SOURCE_DIR PYTHON MPIEXEC      (exit 77: skipped)
set -euo pipefail
SRC="$(realpath "$1")" PY="$2" MPIEXEC="$3"
if [ -z "${DDP_IN_NAMESPACE:-}" ]; then
  [ "$(id -u)" = 0 ] && command -v unshare >/dev/null || { echo "SKIP: needs root and unshare"; exit 77; }
  DDP_IN_NAMESPACE=1 exec unshare -m bash "$0" "$@"
fi
hidden=()
hide() {
  [ -d "$1" ] || return 0
  for h in "${hidden[@]}"; do [ "$h" = "$1" ] && return 0; done
  mount -t tmpfs none "$1"
  hidden+=("$1")
}
if [ -e /usr/local/cuda ]; then hide "$(realpath /usr/local/cuda)"; fi
for _ in 1 2 3 4; do
  nvcc=$(command -v nvcc) || break
  hide "$(dirname "$(realpath "$nvcc")")"; hide "$(dirname "$nvcc")"; hash -r
done
if command -v nvcc >/dev/null; then echo "FAIL: could not hide nvcc ($(command -v nvcc))"; exit 1; fi
echo "hidden: ${hidden[*]:-(no toolkit here)}"
T="$(mktemp -d /tmp/ddptrain-nocuda.XXXXXX)"
trap 'rm -rf "$T"' EXIT
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$SRC" -B "$T/build" "${generator[@]}" -DDDPTRAIN_PYTHON="$PY" -DDDPTRAIN_BUILD_TESTS=OFF >"$T/configure.log" 2>&1 ||
  { tail -30 "$T/configure.log"; echo "FAIL: configure without a CUDA toolkit"; exit 1; }
grep -q "NCCL communicator: not built" "$T/configure.log" || { cat "$T/configure.log"; echo "FAIL: NCCL not gated off"; exit 1; }
cmake --build "$T/build" -j "$(nproc)" >"$T/build.log" 2>&1 || { tail -40 "$T/build.log"; echo "FAIL: build"; exit 1; }
echo "PASS: configured and built without a CUDA toolkit"
"$T/build/ddptrain" env | grep -q "^NCCL: not built" || { "$T/build/ddptrain" env; echo "FAIL: env"; exit 1; }
"$MPIEXEC" -np 2 --oversubscribe --bind-to none "$T/build/ddptrain" train --config "$SRC/configs/smoke.yaml" \
  --set train.max_steps=8 --set train.threads=1 --set log.dir="$T/runs" --set checkpoint.dir="$T/ckpt" >"$T/run.log" 2>&1 &&
  grep -q "epoch 1 eval" "$T/run.log" || { tail -20 "$T/run.log"; echo "FAIL: 2-rank smoke run"; exit 1; }
echo "PASS: NCCL reported as not built; a 2-rank smoke run trains and evaluates"
