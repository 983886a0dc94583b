#!/usr/bin/env bash
# Runs ddptrain on this machine with one MPI rank per GPU (or DDPTRAIN_NP ranks; on a machine
# without GPUs, 1 rank unless DDPTRAIN_NP says otherwise). Arguments go to ddptrain unchanged:
#   launch/local.sh train --config configs/resnet9.yaml --set train.epochs=5
# Environment: DDPTRAIN_BIN (default build/ddptrain), DDPTRAIN_NP, MPIRUN_ARGS (extra mpirun flags).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${DDPTRAIN_BIN:-$here/build/ddptrain}"
[ -x "$BIN" ] || { echo "launch/local.sh: $BIN not found; build first (bash scripts/build.sh)" >&2; exit 2; }
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi
np="${DDPTRAIN_NP:-$(( gpus > 0 ? gpus : 1 ))}"
# Root may run mpirun here (containers, CI); more ranks than cores need --oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# --bind-to none: mpirun binds each of <= 2 ranks to one core by default, which halves the speed
# of a rank that runs several intra-op threads (ddptrain picks cores / local ranks threads).
exec mpirun -np "$np" --oversubscribe --bind-to none \
  -x PATH -x LD_LIBRARY_PATH -x NCCL_DEBUG -x NCCL_SOCKET_IFNAME -x OMP_NUM_THREADS \
  ${MPIRUN_ARGS:-} "$BIN" "$@"
