#!/usr/bin/env bash
# The launchers on this machine: launch/local.sh with DDPTRAIN_NP=2, launch/local.sh with a
# hostfile (localhost slots=2), and launch/single.sh (no launcher: an MPI singleton). Each trains
# the smoke config for one epoch and must log its world size and save a checkpoint. A failing run
# shows ddptrain's error and not Open MPI's notices about it; signals stop the ranks (exit 75).
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

# A failing run: ddptrain's own error line, without the Open MPI notices that launch/local.sh
# leaves out. A bad value every rank rejects (exit 2), then one rank's error (a collective's
# deadline on rank 0 while rank 1 hangs), which ends the job through MPI_Abort (exit 1).
no_notices() {  # NAME
  ! grep -E "MPI_ABORT was invoked|Primary job +terminated|mpirun detected|sent help message|show_help\.c" \
    "$T/out" || fail "$1: Open MPI's notices were printed"
}
DDPTRAIN_NP=2 bash "$SRC/launch/local.sh" train --config "$SRC/configs/smoke.yaml" --set train.lr=-1 \
  >"$T/out" 2>&1
rc=$?
[ "$rc" = 2 ] || fail "train.lr=-1: exit $rc, not 2"
grep -q "config key train.lr .*'-1' is not allowed" "$T/out" ||
  fail "train.lr=-1: no error line naming train.lr"
no_notices "train.lr=-1"
echo "PASS: a bad --set value: ddptrain's error, exit 2, no Open MPI notices"
DDPTRAIN_NP=2 bash "$SRC/launch/local.sh" train --config "$SRC/configs/smoke.yaml" --set train.threads=1 \
  --set log.dir=abort --set checkpoint.dir=abort/ckpt --set dist.timeout_s=3 --set fault.hang_at_step=2 \
  --set fault.hang_rank=1 >"$T/out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "one rank's error: exit $rc, not 1"
grep -q "rank 0.* timed out after 3.*aborting all ranks" "$T/out" ||
  fail "one rank's error: no 'timed out ... aborting all ranks' line"
no_notices "one rank's error"
echo "PASS: one rank's error: ddptrain's error, exit 1, no Open MPI notices"

# Stop by signal through launch/local.sh (README "Signals"): a SIGTERM to the launcher, or a
# Ctrl-C (SIGINT to its process group), during a slow step (resnet9 on CPU, ~1.5 s a step here)
# must end in exit 75 with a checkpoint that resume=auto takes; a second signal ends it at once.
# A SIGTERM/SIGINT that reaches mpirun itself is Open MPI's abort instead: SIGKILL 2 s later, exit 1.
slow=(train --config "$SRC/configs/smoke.yaml" --set model.name=resnet9 --set train.batch_size=64
      --set train.threads=1 --set log.every_steps=1)
start_slow() {  # NAME [ARGS]: local.sh on 2 ranks, its own process group (pid = pgid); waits for step 1
  local name=$1 i; shift
  # set -m: the launcher leads a process group of its own, as a terminal's foreground job does, and
  # keeps SIGINT (without job control a background job starts with SIGINT ignored, untrappable).
  set -m
  DDPTRAIN_NP=2 bash "$SRC/launch/local.sh" "${slow[@]}" --set log.dir="$name" \
    --set checkpoint.dir="$name/ckpt" "$@" >"$T/out" 2>&1 &
  launcher=$!
  set +m
  for ((i = 0; i < 1200; i++)); do
    grep -q "step 1/" "$T/out" && return 0
    kill -0 "$launcher" 2>/dev/null || fail "$name: ended before step 1"
    sleep 0.1
  done
  fail "$name: no step 1 within 120 s"
}
finish() {  # NAME SECONDS: waits at most SECONDS for the launcher; sets rc and secs
  local name=$1 t0=$SECONDS
  while kill -0 "$launcher" 2>/dev/null; do
    [ $((SECONDS - t0)) -lt "$2" ] || { kill -KILL -- "-$launcher" 2>/dev/null; fail "$name: still running after $2 s"; }
    sleep 0.1
  done
  rc=0; wait "$launcher" || rc=$?
  secs=$((SECONDS - t0))
}
stopped() {  # NAME: exit 75, the stop line, a checkpoint after that step; sets step
  [ "$rc" = 75 ] || fail "$1: exit $rc, not 75 (stopped by signal)"
  step=$(sed -n 's/.*stop requested by signal: all ranks stop after step \([0-9]*\);.*/\1/p' "$T/out")
  [ -n "$step" ] || fail "$1: no 'stop requested by signal' line"
  [ -f "$1/ckpt/$(printf 'epoch_0000_step_%08d.json' "$step")" ] || fail "$1: no checkpoint after step $step"
}
start_slow sigterm
kill -TERM "$launcher"
finish sigterm 60
stopped sigterm
echo "PASS: SIGTERM to launch/local.sh: exit 75 after ${secs} s, checkpoint after step $step"
# The same folder again with resume=auto: continues from that step, runs one, stops (fault.stop_at_step).
DDPTRAIN_NP=2 bash "$SRC/launch/local.sh" "${slow[@]}" --set log.dir=sigterm --set checkpoint.dir=sigterm/ckpt \
  --set resume=auto --set fault.stop_at_step=$((step + 1)) >"$T/out" 2>&1
rc=$?
grep -q "resumed from sigterm/ckpt/$(printf 'epoch_0000_step_%08d.pt' "$step") at epoch 1 step $step " "$T/out" ||
  fail "resume=auto did not continue from step $step"
stopped sigterm
echo "PASS: resume=auto continues from that checkpoint"
start_slow ctrl_c
kill -INT -- "-$launcher"
finish ctrl_c 60
stopped ctrl_c
echo "PASS: Ctrl-C (SIGINT to the launcher's process group): exit 75 after ${secs} s"
# Rank 1 stops participating at step 2 (fault.hang_at_step), so the first Ctrl-C can never be acted
# on at a step's end: only the second one can end the job, and it must do so at once.
start_slow ctrl_c_twice --set fault.hang_at_step=2 --set fault.hang_rank=1 --set dist.timeout_s=300
for ((i = 0; i < 600; i++)); do grep -q "stops participating" "$T/out" && break; sleep 0.1; done
grep -q "stops participating" "$T/out" || fail "ctrl_c_twice: rank 1 never hung"
ranks=$(pgrep -f "ddptrain train .*ctrl_c_twice/ckpt" | tr '\n' ' ')
[ -n "$ranks" ] || fail "ctrl_c_twice: no rank processes found"
kill -INT -- "-$launcher"; sleep 0.3; kill -INT -- "-$launcher"
finish ctrl_c_twice 10
if [ "$rc" = 75 ] || [ "$rc" = 0 ]; then fail "ctrl_c_twice: exit $rc, not an exit at once"; fi
grep -q "saved checkpoint" "$T/out" && fail "ctrl_c_twice: saved a checkpoint instead of exiting at once"
for r in $ranks; do  # gone, or a zombie that nobody reaped yet
  case "$(ps -o stat= -p "$r" 2>/dev/null)" in ""|Z*) ;; *) fail "ctrl_c_twice: rank process $r still runs" ;; esac
done
echo "PASS: a second Ctrl-C ends the ranks at once (exit $rc after ${secs} s)"
