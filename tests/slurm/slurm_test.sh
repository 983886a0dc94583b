#!/usr/bin/env bash
# Runs launch/slurm.sbatch under a real Slurm on this one machine: starts munged, slurmctld and
# slurmd with a generated config (everything under one temporary folder), then
#   1. submits the smoke config for 1 epoch on 2 ranks and checks that it completed and saved
#      its checkpoint;
#   2. submits a longer run, sends SIGUSR1 to the batch shell once the first epoch checkpoint
#      exists (`scancel -b -s USR1`, what `--signal=B:USR1@...` does before the time limit), and
#      checks that the job was requeued, that the second run resumed from that checkpoint
#      (its log says "resumed from"), and that it then completed.
# All daemons are stopped on exit. Needs root and Debian's slurm-wlm + munge (scripts/install.sh
# installs them); exits 77 (ctest: skipped) without them.
#   usage: slurm_test.sh BUILD/ddptrain SOURCE_DIR
set -uo pipefail
BIN="$(realpath "$1")"
SRC="$(realpath "$2")"
for t in munged mungekey slurmctld slurmd sbatch scontrol; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed (apt-get install slurm-wlm munge)"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (SlurmUser=root)"; exit 77; }

T="$(mktemp -d /tmp/ddptrain-slurm.XXXXXX)"
chmod 755 "$T"   # munged refuses a socket folder that is not world-executable
mkdir -p "$T"/{munge,state,spool,log,work,tmp}
pids=()
cleanup() {
  local rc=$?
  SLURM_CONF="$T/slurm.conf" scontrol shutdown >/dev/null 2>&1
  sleep 1
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null; done
  [ -f "$T/munge/munged.pid" ] && kill "$(cat "$T/munge/munged.pid")" 2>/dev/null
  if [ "$rc" != 0 ]; then
    echo "--- slurmctld log"; tail -30 "$T/log/slurmctld.log" 2>/dev/null
    echo "--- slurmd log"; tail -30 "$T/log/slurmd.log" 2>/dev/null
    echo "--- job outputs"; tail -n 60 "$T"/work/*.out 2>/dev/null
  fi
  [ "${KEEP_SLURM_TEST_DIR:-0}" = 1 ] && echo "kept $T" || rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# --- munge ---------------------------------------------------------------------------------------
mungekey -c -k "$T/munge/munge.key" >/dev/null 2>&1 || dd if=/dev/urandom of="$T/munge/munge.key" bs=1k count=1 2>/dev/null
chmod 400 "$T/munge/munge.key"
munged -f --key-file="$T/munge/munge.key" --socket="$T/munge/munge.socket" \
  --pid-file="$T/munge/munged.pid" --log-file="$T/log/munged.log" --seed-file="$T/munge/seed" ||
  fail "munged did not start"

# --- slurm config: one node on 127.0.0.1, root, no cgroups, no accounting ------------------------
port=$(( 20000 + ($$ % 20000) ))
mem_mb=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) / 2 ))
cat >"$T/slurm.conf" <<CONF
ClusterName=ddptest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: how long a requeued job is held (default 120 s); short here to keep the test short.
AuthInfo=socket=$T/munge/munge.socket,cred_expire=10
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
# TmpFS: srun --mpi=pmix makes <TmpFS>/spmix_appdir_<uid>_<job>.<step>; job ids restart at 1 in
# every test, so the default /tmp would collide with an earlier run's leftovers.
TmpFS=$T/tmp
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
JobRequeue=1
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
KillWait=5
NodeName=ddpnode NodeAddr=127.0.0.1 CPUs=2 RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ddpnode Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF="$T/slurm.conf"
slurmctld -D -c -f "$SLURM_CONF" >"$T/log/slurmctld.stdout" 2>&1 & pids+=($!)
slurmd -D -N ddpnode -f "$SLURM_CONF" >"$T/log/slurmd.stdout" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  sinfo -h -o %T 2>/dev/null | grep -q idle && break
  sleep 0.2
done
sinfo -h -o %T 2>/dev/null | grep -q idle || fail "the node never became idle: $(sinfo 2>&1)"
echo "slurm: node idle"

job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
wait_done() {  # JOB TIMEOUT_S: waits for a final state, prints it
  local s
  for _ in $(seq $(( $2 * 2 ))); do
    s="$(job_state "$1")"
    case "$s" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE) echo "$s"; return ;; esac
    sleep 0.5
  done
  echo "STILL_${s:-UNKNOWN}"
}

cd "$T/work"
export DDPTRAIN_BIN="$BIN"
cp "$SRC/configs/smoke.yaml" smoke.yaml

# --- 1. a short run completes and checkpoints ----------------------------------------------------
j1=$(sbatch --parsable --ntasks=2 --output="$T/work/run1-%j.out" "$SRC/launch/slurm.sbatch" \
       train --config smoke.yaml --set train.epochs=1 --set log.dir=run1 --set checkpoint.dir=run1/ckpt) ||
  fail "sbatch refused the job"
echo "slurm: job $j1 submitted (1 epoch, 2 ranks)"
s=$(wait_done "$j1" 90)
out1="$T/work/run1-$j1.out"
[ "$s" = COMPLETED ] || fail "job $j1 ended $s"
grep -q "world size 2" "$out1" || fail "job $j1 did not run 2 ranks"
ls run1/ckpt/epoch_0001_step_*.pt >/dev/null 2>&1 || fail "job $j1 wrote no checkpoint: $(ls -R run1)"
echo "PASS: job $j1 completed on 2 ranks and saved $(ls run1/ckpt)"

# --- 2. USR1 mid-run: forwarded, requeued, resumed -----------------------------------------------
# Slow enough that the signal lands after the first checkpoint and well before the end.
j2=$(sbatch --parsable --ntasks=2 --output="$T/work/run2-%j.out" "$SRC/launch/slurm.sbatch" \
       train --config smoke.yaml --set train.epochs=4 --set data.synthetic_train=4096 \
       --set log.dir=run2 --set checkpoint.dir=run2/ckpt --set checkpoint.keep=10) ||
  fail "sbatch refused the job"
out2="$T/work/run2-$j2.out"
echo "slurm: job $j2 submitted (4 epochs); waiting for its first checkpoint"
for _ in $(seq 240); do
  ls run2/ckpt/epoch_0001_step_*.pt >/dev/null 2>&1 && break
  sleep 0.25
done
ls run2/ckpt/epoch_0001_step_*.pt >/dev/null 2>&1 || fail "job $j2 saved no first checkpoint"
scancel -b -s USR1 "$j2" || fail "scancel -b -s USR1 failed"
echo "slurm: sent SIGUSR1 to the batch shell of job $j2"
# The first incarnation is FAILED (143) for a moment before the requeue takes effect.
for _ in $(seq 120); do
  scontrol show job "$j2" | grep -q "Restarts=[1-9]" && break
  sleep 0.5
done
for _ in $(seq 120); do
  case "$(job_state "$j2")" in PENDING|RUNNING|CONFIGURING) break ;; esac
  sleep 0.25
done
s=$(wait_done "$j2" 120)
[ "$s" = COMPLETED ] || fail "job $j2 ended $s"
grep -q "got SIGUSR1" "$out2" || fail "the trap did not run"
grep -q "requeueing to resume from" "$out2" || fail "job $j2 was not requeued"
grep -q "Restarts=1" <(scontrol show job "$j2") || fail "job $j2 did not restart exactly once"
resumed=$(grep -m1 "resumed from" "$out2") || fail "the second run did not resume"
grep -q "epoch 4 eval" "$out2" || fail "the resumed run did not finish epoch 4"
ls run2/ckpt/epoch_0004_step_*.pt >/dev/null 2>&1 || fail "no final checkpoint"
grep "^slurm.sbatch" "$out2"
echo "PASS: job $j2 stopped on USR1, was requeued and ${resumed#*info }"
