#!/usr/bin/env bash
# End-to-end test of "see what training does": TensorBoard events read back with
# TensorBoard's own reader, the progress line, eval and export of a checkpoint (checked with
# Python torch), the metrics plot, `ddptrain env` and `ddptrain bench-devices`.
# usage: observe_test.sh DDPTRAIN MPIEXEC SOURCE_DIR PYTHON   (PYTHON: with torch, tensorboard, matplotlib)
set -uo pipefail
DDPTRAIN=$1 MPIEXEC=$2 SRC=$3 PY=${4:-${DDPTRAIN_PYTHON:-python3}}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SMOKE=(--config "$SRC/configs/smoke.yaml" --set train.threads=1)

"$PY" -c "import torch, tensorboard, matplotlib" || { echo "FAIL $PY lacks torch/tensorboard/matplotlib (bash scripts/install.sh)"; exit 1; }

# A smoke run on 2 ranks (stdout is a file: plain log lines, no progress line).
mpirun2 train "${SMOKE[@]}" --set log.dir=$TMP/logs --set checkpoint.dir=$TMP/ckpt >"$TMP/run.log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "smoke run exits 0" || { fail "smoke run exits 0 (rc $rc)"; cat "$TMP/run.log"; }
grep -q "epoch 1 step 16/64 | loss" "$TMP/run.log" && ! grep -q $'\r' "$TMP/run.log" \
  && pass "log file gets plain step lines, no progress line" || fail "log file gets plain step lines"
grep -q "TensorBoard events: $TMP/logs/events.out.tfevents." "$TMP/run.log" && pass "event file logged" || fail "event file logged"
[ "$(ls $TMP/logs/events.out.tfevents.*.$(hostname)* 2>/dev/null | wc -l)" -eq 1 ] \
  && pass "one event file named events.out.tfevents.<time>.<host>" || { fail "event file name"; ls $TMP/logs; }
"$PY" "$SRC/tests/e2e/observe_check.py" tensorboard "$TMP/logs" && pass "TensorBoard reads every tag at its steps" \
  || fail "TensorBoard reads every tag at its steps"

# The plot.
"$PY" "$SRC/scripts/plot_metrics.py" --log-dir "$TMP/logs" --out "$TMP/curves.png" \
  && [ "$(head -c 8 "$TMP/curves.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] \
  && pass "plot_metrics.py writes a PNG" || fail "plot_metrics.py writes a PNG"

# Progress line, forced on (stdout is not a terminal here): redrawn with \r, no step log lines.
timeout 120 "$DDPTRAIN" train "${SMOKE[@]}" --set log.dir=$TMP/logs_p --set checkpoint.dir=$TMP/ckpt_p \
  --set log.progress=on --set train.max_steps=40 --set log.tensorboard=false --set data.synthetic_test=64 >"$TMP/progress.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q $'\repoch 1 step 40/40 | loss [0-9.]* | [0-9]* img/s | eta' "$TMP/progress.log" \
  && ! grep -q "step 32/40 | loss .* ms/step" "$TMP/progress.log" && grep -q "epoch 1 eval | test loss" "$TMP/progress.log" \
  && [ ! -e "$TMP"/logs_p/events.out.tfevents.* ] \
  && pass "progress line replaces step lines" || { fail "progress line replaces step lines (rc $rc)"; cat -A "$TMP/progress.log" | tail -20; }

# Eval of the last checkpoint with its stored config, on 2 ranks and on 1: the training run's
# last evaluation, every test image once.
LAST=$(ls $TMP/ckpt/epoch_*.pt | tail -1)
want=$("$PY" -c "import json,sys; r=[json.loads(l) for l in open('$TMP/logs/metrics.jsonl') if '\"eval\"' in l][-1]; print('test loss %.4f | test accuracy %.4f (512 images)' % (r['test_loss'], r['test_accuracy']))")
mpirun2 eval --checkpoint "$LAST" --set train.threads=1 >"$TMP/eval2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "| 2 ranks | $want" "$TMP/eval2.log" && pass "eval on 2 ranks: $want" \
  || { fail "eval on 2 ranks (rc $rc, want '$want')"; cat "$TMP/eval2.log"; }
timeout 120 "$DDPTRAIN" eval --checkpoint "$LAST" --config "$SRC/configs/smoke.yaml" --set eval.batch_size=100 >"$TMP/eval1.log" 2>&1
grep -q "| 1 ranks | $want" "$TMP/eval1.log" && pass "eval on 1 rank with --config agrees" \
  || { fail "eval on 1 rank"; cat "$TMP/eval1.log"; }
# A checkpoint written on GPUs (tensors tagged cuda:1) evaluates and resumes here on CPU: loads
# map every tensor to the model's device.
mkdir -p $TMP/gpu_ckpt
"$PY" "$SRC/tests/e2e/observe_check.py" as-gpu "$LAST" $TMP/gpu_ckpt/epoch_0099_step_00000099.pt >"$TMP/g.log" 2>&1 \
  && mpirun2 eval --checkpoint $TMP/gpu_ckpt/epoch_0099_step_00000099.pt --set train.threads=1 >>"$TMP/g.log" 2>&1 \
  && grep -q "| 2 ranks | $want" "$TMP/g.log" && pass "eval of a GPU-written checkpoint on CPU" \
  || { fail "eval of a GPU-written checkpoint on CPU"; cat "$TMP/g.log"; }
mpirun2 train "${SMOKE[@]}" --set log.dir=$TMP/logs_g --set checkpoint.dir=$TMP/ckpt_g --set log.tensorboard=false \
  --set train.epochs=3 --set train.max_steps=66 --set resume=$TMP/gpu_ckpt/epoch_0099_step_00000099.pt >"$TMP/g2.log" 2>&1 \
  && grep -q "resumed from $TMP/gpu_ckpt/epoch_0099_step_00000099.pt at epoch 3 step 64" "$TMP/g2.log" \
  && grep -q "epoch 3 step 66/66 | loss" "$TMP/g2.log" && pass "resume from a GPU-written checkpoint on CPU" \
  || { fail "resume from a GPU-written checkpoint on CPU"; tail -20 "$TMP/g2.log"; }
timeout 60 "$DDPTRAIN" eval >"$TMP/e.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "eval needs --checkpoint" "$TMP/e.log" && pass "eval without --checkpoint" || fail "eval without --checkpoint (rc $rc)"
timeout 60 "$DDPTRAIN" eval --checkpoint $TMP/none.pt >"$TMP/e.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "checkpoint $TMP/none.pt does not exist" "$TMP/e.log" && pass "eval of a missing checkpoint" || fail "eval of a missing checkpoint (rc $rc)"

# Export for Python: seed CNN from the smoke run, ResNet-9 (BatchNorm buffers) from a 1-step run.
timeout 120 "$DDPTRAIN" export --checkpoint "$LAST" --out $TMP/seed.pt --example $TMP/seed_ex.pt >"$TMP/x.log" 2>&1 \
  && "$PY" "$SRC/tests/e2e/observe_check.py" export seed_cnn $TMP/seed.pt $TMP/seed_ex.pt \
  && pass "export seed_cnn: strict load_state_dict, same logits" || { fail "export seed_cnn"; cat "$TMP/x.log"; }
timeout 300 "$DDPTRAIN" train "${SMOKE[@]}" --set model.name=resnet9 --set train.max_steps=1 --set train.batch_size=4 \
  --set data.synthetic_test=8 --set log.dir=$TMP/logs_r --set checkpoint.dir=$TMP/ckpt_r >"$TMP/r.log" 2>&1 \
  && timeout 120 "$DDPTRAIN" export --checkpoint "$(ls $TMP/ckpt_r/epoch_*.pt | tail -1)" --out $TMP/r9.pt --example $TMP/r9_ex.pt >>"$TMP/r.log" 2>&1 \
  && "$PY" "$SRC/tests/e2e/observe_check.py" export resnet9 $TMP/r9.pt $TMP/r9_ex.pt \
  && pass "export resnet9: strict load_state_dict, same logits" || { fail "export resnet9"; tail -20 "$TMP/r.log"; }

# export never replaces a checkpoint or writes onto a directory.
sum_before=$(sha256sum "$LAST" | cut -d' ' -f1)
timeout 60 "$DDPTRAIN" export --checkpoint "$LAST" --out "$LAST" >"$TMP/xo.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "is a checkpoint; exporting over it would destroy it" "$TMP/xo.log" \
  && [ "$(sha256sum "$LAST" | cut -d' ' -f1)" = "$sum_before" ] && pass "export onto the checkpoint is refused" \
  || { fail "export onto the checkpoint (rc $rc)"; cat "$TMP/xo.log"; }
timeout 60 "$DDPTRAIN" export --checkpoint "$LAST" --out "$TMP" >"$TMP/xo.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "is a directory" "$TMP/xo.log" && pass "export onto a directory is refused" \
  || { fail "export onto a directory (rc $rc)"; cat "$TMP/xo.log"; }

# ddptrain env, alone and on 2 ranks.
timeout 60 "$DDPTRAIN" env >"$TMP/env1.log" 2>&1; rc=$?
ok=1
for field in "^ddptrain: ddptrain [0-9.]* (git" "^LibTorch: 2\." "^CUDA: " "^NCCL: " "^MPI: .*(MPI [0-9]" "^threads: [0-9]" \
             "^auto choice: device .* | backend mpi" "^ranks: 1" "^  rank 0: host $(hostname) | pid [0-9]* | local rank 0"; do
  grep -q "$field" "$TMP/env1.log" || { echo "missing: $field"; ok=0; }
done
[ $rc -eq 0 ] && [ $ok -eq 1 ] && pass "env prints every field" || { fail "env prints every field (rc $rc)"; cat "$TMP/env1.log"; }
mpirun2 env >"$TMP/env2.log" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "^ranks: 2" "$TMP/env2.log" && grep -q "^  rank 1: host" "$TMP/env2.log" \
  && [ "$(grep -c '^LibTorch:' "$TMP/env2.log")" -eq 1 ] && pass "env on 2 ranks lists both, printed once" \
  || { fail "env on 2 ranks (rc $rc)"; cat "$TMP/env2.log"; }

# Threads per rank follow the CPUs the rank may run on (its affinity mask), not the machine's count.
N=$(nproc)
thr() { grep -o "^threads: [0-9]*" "$1" | grep -o "[0-9]*$"; }
timeout 60 "$MPIEXEC" -np 1 --bind-to none "$DDPTRAIN" env >"$TMP/t_none.log" 2>&1
timeout 60 "$MPIEXEC" -np 1 --bind-to core "$DDPTRAIN" env >"$TMP/t_core.log" 2>&1
timeout 60 taskset -c 0 "$DDPTRAIN" env >"$TMP/t_taskset.log" 2>&1
[ "$(thr $TMP/t_none.log)" = "$N" ] && [ "$(thr $TMP/t_core.log)" = 1 ] && [ "$(thr $TMP/t_taskset.log)" = 1 ] \
  && [ "$(thr $TMP/env2.log)" = "$(( N / 2 > 0 ? N / 2 : 1 ))" ] \
  && pass "threads: $N unbound, 1 when bound to a core or taskset, N/2 for 2 ranks" \
  || { fail "threads follow the affinity mask"; grep -h "^threads" $TMP/t_*.log $TMP/env2.log; }
# train.threads sets the intra-op threads; 1 and 2 threads train alike (summation order only):
# both learn (loss below ln 10 = 2.303 after 12 steps) to the same loss.
for t in 1 2; do
  timeout 300 "$DDPTRAIN" train --config "$SRC/configs/smoke.yaml" --set train.threads=$t --set train.max_steps=12 \
    --set train.lr=0.05 --set log.every_steps=12 --set log.dir=$TMP/thr$t --set checkpoint.dir=$TMP/thr$t/ckpt >"$TMP/thr$t.log" 2>&1
done
loss_at() { grep -o "step 12/12 | loss [0-9.]*" "$1" | grep -o "[0-9.]*$"; }
grep -q "| 1 intra-op threads per rank" $TMP/thr1.log && grep -q "| 2 intra-op threads per rank" $TMP/thr2.log \
  && [ -n "$(loss_at $TMP/thr1.log)" ] \
  && "$PY" -c "import sys; a, b = $(loss_at $TMP/thr1.log), $(loss_at $TMP/thr2.log); sys.exit(not (a < 2.28 and abs(a - b) < 2e-3))" \
  && pass "train.threads=1 and 2: set as asked, same loss after 12 steps ($(loss_at $TMP/thr1.log) vs $(loss_at $TMP/thr2.log))" \
  || { fail "train.threads switch"; tail -3 $TMP/thr1.log $TMP/thr2.log; }
timeout 300 taskset -c 0 "$DDPTRAIN" train --config "$SRC/configs/smoke.yaml" --set train.threads=2 --set train.max_steps=2 \
  --set log.dir=$TMP/thr_ts --set checkpoint.dir=$TMP/thr_ts/ckpt >"$TMP/thr_ts.log" 2>&1
grep -q "train.threads=2 but rank 0 may run on only 1 CPU(s)" $TMP/thr_ts.log && pass "more threads than the rank's CPUs: warned" \
  || { fail "threads beyond the affinity mask not warned"; tail -5 $TMP/thr_ts.log; }

# bench-devices: a table with the CPU figure (and the GPU one, or why there is none).
timeout 300 "$DDPTRAIN" bench-devices "${SMOKE[@]}" --set train.epochs=1 --set train.max_steps=8 --set data.synthetic_test=64 >"$TMP/bench.log" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -qE "^cpu +\| +1 \| +8 \| +[0-9.]+ \| +[0-9]+ \|" "$TMP/bench.log" \
  && grep -qE "^cuda +\|" "$TMP/bench.log" && pass "bench-devices prints the table" || { fail "bench-devices (rc $rc)"; tail -8 "$TMP/bench.log"; }

echo "e2e observe: $failures failed"
[ $failures -eq 0 ]
