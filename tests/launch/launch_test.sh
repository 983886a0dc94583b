#!/usr/bin/env bash
# The launchers on this machine: launch/local.sh with DDPTRAIN_NP=2, launch/local.sh with a
# hostfile (localhost slots=2), and launch/single.sh (no launcher: an MPI singleton). Each trains
# the smoke config for one epoch and must log its world size and save a checkpoint.
#   usage: launch_test.sh BUILD/ddptrain SOURCE_DIR
set -uo pipefail
BIN="$(realpath "$1")"
SRC="$(realpath "$2")"
T="$(mktemp -d /tmp/ddptrain-launch.XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; [ -f "$T/out" ] && tail -20 "$T/out"; exit 1; }
export DDPTRAIN_BIN="$BIN"
cd "$T"
run() {  # NAME WORLD LAUNCHER...: trains one epoch, checks the world size and the checkpoint
  local name=$1 world=$2; shift 2
  "$@" train --config "$SRC/configs/smoke.yaml" --set train.epochs=1 \
    --set log.dir="$name" --set checkpoint.dir="$name/ckpt" >"$T/out" 2>&1 || fail "$name exited $?"
  grep -q "world size $world " "$T/out" || fail "$name: no 'world size $world' in the log"
  grep -q "epoch 1 eval" "$T/out" || fail "$name: no evaluation"
  ls "$name"/ckpt/epoch_0001_step_*.pt >/dev/null 2>&1 || fail "$name: no checkpoint"
  echo "PASS: $name (world size $world)"
}
DDPTRAIN_NP=2 run local_np2 2 bash "$SRC/launch/local.sh"
printf 'localhost slots=2\n' >hosts
DDPTRAIN_HOSTFILE="$T/hosts" run local_hostfile 2 bash "$SRC/launch/local.sh"
run single 1 bash "$SRC/launch/single.sh"
# local.sh passes only variables that are set: no "could not find environment variable" warning.
grep -q "could not find environment variable" "$T/out" && fail "mpirun warned about -x"
DDPTRAIN_DRY_RUN=1 CUDA_VISIBLE_DEVICES=0,1,2 bash "$SRC/launch/local.sh" train 2>"$T/out"
grep -q "mpirun -np 3 " "$T/out" || fail "CUDA_VISIBLE_DEVICES=0,1,2 did not give 3 ranks: $(cat "$T/out")"
echo "PASS: one rank per visible GPU"
