#!/usr/bin/env bash
# Fault tests of the ddptrain executable under mpirun -np 2: a stop signal to one rank, a rank
# killed with SIGKILL, a rank that stops participating, a corrupt newest checkpoint, a full disk,
# a read-only checkpoint folder, diverging training and start-up failing on one rank only. Each must end the whole job promptly
# with one clear message and never damage a good checkpoint.
# usage: faults_test.sh DDPTRAIN MPIEXEC SOURCE_DIR
set -uo pipefail
DDPTRAIN=$1 MPIEXEC=$2 SRC=$3
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MNT=$TMP/small
e2e_on_exit() { if mountpoint -q "$MNT"; then umount "$MNT"; fi; }
run() {  # run LOGFILE ddptrain-args...: mpirun -np 2 in the background; sets $job
  local log=$1; shift
  timeout 300 "$MPIEXEC" -np 2 --oversubscribe --bind-to none "$DDPTRAIN" "$@" >"$log" 2>&1 &
  job=$!
}
wait_for() {  # wait_for FILE PATTERN SECONDS
  for _ in $(seq 1 $(( $3 * 10 ))); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
verify_resumable() {  # the folder still holds a checkpoint that resume=auto accepts
  "$DDPTRAIN" train --config "$SRC/configs/smoke.yaml" --set checkpoint.dir=$1 --set log.dir=$TMP/verify \
    --set resume=auto --set train.epochs=1 --set train.max_steps=1 >$TMP/verify.log 2>&1
  grep -q "resumed from" $TMP/verify.log
}
SMOKE=(train --config "$SRC/configs/smoke.yaml" --set train.threads=1 --set log.every_steps=4)

# 1. SIGUSR1 to one rank only: all ranks agree, stop after the same step, rank 0 saves, exit 75.
run $TMP/sig.log "${SMOKE[@]}" --set train.epochs=30 --set log.dir=$TMP/sig --set checkpoint.dir=$TMP/sig/ckpt
wait_for $TMP/sig.log "step 8/" 120
pid=$(pgrep -f "^$DDPTRAIN train .*$TMP/sig/ckpt" | tail -1)
kill -USR1 "$pid"
wait $job; rc=$?
if [ $rc -eq 75 ] && grep -q "stop requested by signal: all ranks stop after step" $TMP/sig.log \
   && [ -n "$(ls $TMP/sig/ckpt/*.json 2>/dev/null)" ]; then pass "signal: agreed stop, checkpoint, exit 75"; else fail "signal (rc $rc)"; cat $TMP/sig.log; fi
stopped=$(grep -o "stop after step [0-9]*" $TMP/sig.log | grep -o "[0-9]*$")
timeout 300 "$MPIEXEC" -np 2 --oversubscribe --bind-to none "$DDPTRAIN" "${SMOKE[@]}" --set train.epochs=2 \
  --set log.dir=$TMP/sig --set checkpoint.dir=$TMP/sig/ckpt --set resume=auto >$TMP/sig2.log 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "resumed from .*step_0*${stopped}.pt at epoch .* step ${stopped} " $TMP/sig2.log \
  && pass "signal: resume=auto continues from step $stopped" || { fail "signal resume (rc $rc)"; cat $TMP/sig2.log; }

# 1b. A second signal exits at once (128 + SIGUSR1 = 138) instead of waiting for the step.
run $TMP/sig2x.log "${SMOKE[@]}" --set train.epochs=30 --set log.dir=$TMP/sig2x --set checkpoint.dir=$TMP/sig2x/ckpt \
  --set fault.hang_at_step=6 --set fault.hang_rank=1 --set dist.timeout_s=600
wait_for $TMP/sig2x.log "rank 1 stops participating" 120
for r in $(pgrep -f "^$DDPTRAIN train .*$TMP/sig2x/ckpt"); do kill -USR1 $r; done
sleep 1
start=$(date +%s)
for r in $(pgrep -f "^$DDPTRAIN train .*$TMP/sig2x/ckpt"); do kill -USR1 $r; done
wait $job; rc=$?; took=$(( $(date +%s) - start ))
# Without the second signal the ranks would wait 600 s (rank 1 hangs, rank 0 sits in a collective).
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -lt 30 ] && pass "second signal exits at once (${took}s, rc $rc)" \
  || { fail "second signal (rc $rc, ${took}s)"; tail -5 $TMP/sig2x.log; }

# 2. SIGKILL of one rank: the job ends (Open MPI tears it down), it does not hang.
run $TMP/kill.log "${SMOKE[@]}" --set train.epochs=30 --set log.dir=$TMP/kill --set checkpoint.dir=$TMP/kill/ckpt
wait_for $TMP/kill.log "step 8/" 120
pid=$(pgrep -f "^$DDPTRAIN train .*$TMP/kill/ckpt" | tail -1)
start=$(date +%s); kill -KILL "$pid"; wait $job; rc=$?; took=$(( $(date +%s) - start ))
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -lt 60 ] && pass "SIGKILL of a rank ends the job in ${took}s (rc $rc)" \
  || { fail "SIGKILL (rc $rc, ${took}s)"; tail -5 $TMP/kill.log; }

# 3. A rank that stops participating: the others fail at the deadline with a named collective.
start=$(date +%s)
timeout 120 "$MPIEXEC" -np 2 --oversubscribe --bind-to none "$DDPTRAIN" "${SMOKE[@]}" --set log.dir=$TMP/hang \
  --set checkpoint.dir=$TMP/hang/ckpt --set dist.timeout_s=3 --set fault.hang_at_step=5 --set fault.hang_rank=1 >$TMP/hang.log 2>&1
rc=$?; took=$(( $(date +%s) - start ))
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "rank 0.*all_reduce #[0-9]* .* timed out after 3" $TMP/hang.log \
  && grep -q "aborting all ranks" $TMP/hang.log && pass "hung rank: job ends at the deadline (${took}s)" \
  || { fail "hung rank (rc $rc, ${took}s)"; cat $TMP/hang.log; }

# 4. resume=auto skips a corrupt newest checkpoint with a warning and uses the one before.
"$MPIEXEC" -np 2 --oversubscribe --bind-to none "$DDPTRAIN" "${SMOKE[@]}" --set log.dir=$TMP/c \
  --set checkpoint.dir=$TMP/c/ckpt >/dev/null 2>&1
newest=$(ls $TMP/c/ckpt/*.pt | tail -1); older=$(ls $TMP/c/ckpt/*.pt | head -1)
printf 'garbage' | dd of="$newest" bs=1 seek=100 conv=notrunc 2>/dev/null
"$DDPTRAIN" "${SMOKE[@]}" --set log.dir=$TMP/c --set checkpoint.dir=$TMP/c/ckpt --set resume=auto \
  --set train.epochs=3 --set train.max_steps=1 >$TMP/corrupt.log 2>&1
grep -q "skipping checkpoint $newest is corrupt: checksum" $TMP/corrupt.log && grep -q "resumed from $older" $TMP/corrupt.log \
  && pass "resume=auto skips a corrupt checkpoint" || { fail "corrupt checkpoint skipped"; cat $TMP/corrupt.log; }

# 5. Disk full while saving: clear error, non-zero exit, the earlier checkpoint survives.
mkdir -p $MNT
if mount -t tmpfs -o size=1800k tmpfs $MNT 2>/dev/null; then
  timeout 300 "$MPIEXEC" -np 2 --oversubscribe --bind-to none "$DDPTRAIN" "${SMOKE[@]}" --set train.epochs=3 \
    --set log.dir=$TMP/full --set checkpoint.dir=$MNT/ckpt >$TMP/full.log 2>&1
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "failed (earlier checkpoints are untouched).*No space left" $TMP/full.log \
    && [ -z "$(ls $MNT/ckpt/*.tmp 2>/dev/null)" ] && verify_resumable $MNT/ckpt \
    && pass "disk full: one error, earlier checkpoint intact" || { fail "disk full (rc $rc)"; cat $TMP/full.log; cat $TMP/verify.log; }
  # 6. A read-only checkpoint folder: refused at start on every rank, nothing written.
  mount -o remount,ro $MNT
  timeout 120 "$MPIEXEC" -np 2 --oversubscribe --bind-to none "$DDPTRAIN" "${SMOKE[@]}" --set log.dir=$TMP/ro \
    --set checkpoint.dir=$MNT/ckpt >$TMP/ro.log 2>&1
  rc=$?
  [ $rc -eq 2 ] && [ "$(grep -c "checkpoint.dir '$MNT/ckpt' is not writable" $TMP/ro.log)" -eq 1 ] \
    && pass "read-only checkpoint folder" || { fail "read-only checkpoint folder (rc $rc)"; cat $TMP/ro.log; }
  umount $MNT
else
  echo "SKIP disk full / read-only: this machine does not allow mounting a tmpfs (needs root)"
fi

# 7. Diverging training: after train.max_bad_steps skipped steps, one message, exit 2 everywhere.
timeout 120 "$MPIEXEC" -np 2 --oversubscribe --bind-to none "$DDPTRAIN" "${SMOKE[@]}" --set log.dir=$TMP/nan \
  --set checkpoint.dir=$TMP/nan/ckpt --set fault.nan_at_step=3 --set train.max_bad_steps=0 >$TMP/nan.log 2>&1
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c "training diverged" $TMP/nan.log)" -eq 1 ] && pass "divergence stops the job" \
  || { fail "divergence (rc $rc)"; cat $TMP/nan.log; }

# 8. Start-up fails on one rank only (as when a file is missing on one node): one error naming
# rank 1 and its host, every rank exits 2 at once, not after dist.timeout_s (600 s) in the next
# collective. Rank 1 gets its own arguments from a wrapper that picks them by
# OMPI_COMM_WORLD_RANK, not from an MPMD launch (`-np 1 A : -np 1 B`): Debian trixie's Open MPI
# 5.0.7 mpirun crashes on any MPMD launch (open-mpi/ompi#13303).
R0=()  # Rank 0's extra arguments.
one_rank_fails() {  # one_rank_fails NAME PATTERN RANK1-ARGS...
  local name=$1 pattern=$2; shift 2
  local start=$SECONDS
  {
    echo 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then'
    printf '  exec'; printf ' %q' "$DDPTRAIN" "$@"; echo
    printf 'else\n  exec'
    printf ' %q' "$DDPTRAIN" "${SMOKE[@]}" --set log.dir=$TMP/one --set checkpoint.dir=$TMP/one/ckpt "${R0[@]}"
    printf '\nfi\n'
  } >$TMP/per_rank.sh
  timeout 120 "$MPIEXEC" --oversubscribe --bind-to none -np 2 bash $TMP/per_rank.sh >$TMP/one.log 2>&1
  local rc=$?
  [ $rc -eq 2 ] && [ "$(grep -c " error " $TMP/one.log)" -eq 1 ] \
    && grep -q "error rank 1 (host $(hostname)): .*$pattern" $TMP/one.log \
    && pass "$name: one error naming rank 1, exit 2 in $((SECONDS - start)) s" || { fail "$name (rc $rc)"; cat $TMP/one.log; }
}
one_rank_fails "config missing on one rank" "config file '$TMP/nowhere.yaml'" train --config $TMP/nowhere.yaml
one_rank_fails "another config on one rank" "its config differs from rank 0's: train.epochs=3 here, 2 on rank 0" \
  "${SMOKE[@]}" --set log.dir=$TMP/one2 --set checkpoint.dir=$TMP/one2/ckpt --set train.epochs=3
# The same config but data.root (which may differ per node): rank 0 has a tiny CIFAR-10, rank 1 none.
python3 - "$TMP/cifar/cifar-10-batches-bin" <<'PY'
import os, random, sys
random.seed(0)
os.makedirs(sys.argv[1], exist_ok=True)
for f in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(sys.argv[1], f), "wb") as out:
        for _ in range(16):
            out.write(bytes([random.randrange(10)]) + random.randbytes(3072))
PY
R0=(--set data.dataset=cifar10 --set data.root=$TMP/cifar)
one_rank_fails "dataset missing on one rank" "$TMP/nodata" "${SMOKE[@]}" --set log.dir=$TMP/one1 \
  --set checkpoint.dir=$TMP/one1/ckpt --set data.dataset=cifar10 --set data.root=$TMP/nodata
R0=()

echo "faults: $((failures == 0 ? 1 : 0)) passed, $failures failed"
[ $failures -eq 0 ]
