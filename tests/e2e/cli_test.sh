#!/usr/bin/env bash
# End-to-end test of the ddptrain executable under mpirun: a smoke training run on 2 ranks, its
# logs, metrics and checkpoints, resuming from a checkpoint, and bad inputs that must end the
# job with one clear message and a non-zero exit (never a hang).
# usage: cli_test.sh DDPTRAIN MPIEXEC SOURCE_DIR
set -uo pipefail
DDPTRAIN=$1 MPIEXEC=$2 SRC=$3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
mpirun2() { timeout 300 "$MPIEXEC" -np 2 --oversubscribe --bind-to none "$DDPTRAIN" "$@"; }

# --version and --help
"$DDPTRAIN" --version | grep -q "^ddptrain [0-9.]* (git .*) | LibTorch 2\." && pass version || fail version
"$DDPTRAIN" --help | grep -q "train.batch_size" && pass help || fail help

# bench-comm prints both tables (numbers are not checked: speed is not asserted in tests).
mpirun2 bench-comm --max-bytes 32K --iters 2 --steps 2 --batch 8 >$TMP/bench.log 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "busbw" $TMP/bench.log && grep -qE "^ +32768 +8192 \|" $TMP/bench.log \
  && grep -q "comm hidden" $TMP/bench.log && pass "bench-comm tables" || { fail "bench-comm tables (rc $rc)"; cat $TMP/bench.log; }

# A smoke run on 2 ranks.
OUT=$TMP/run1.log
mpirun2 train --config "$SRC/configs/smoke.yaml" --set log.dir=$TMP/logs --set checkpoint.dir=$TMP/ckpt \
  --set train.threads=1 >"$OUT" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "smoke run exits 0" || { fail "smoke run exits 0 (rc $rc)"; cat "$OUT"; }
[ "$(grep -c 'resolved config' "$OUT")" -eq 1 ] && pass "config printed once (rank 0)" || fail "config printed once"
grep -q "world size 2" "$OUT" && pass "world size logged" || fail "world size logged"
grep -qE "epoch 1 step 16/64 \| loss [0-9.]+ \| lr [0-9.e-]+ \| [0-9.]+ ms/step \| [0-9]+ img/s" "$OUT" \
  && pass "step log line format" || fail "step log line format"
grep -q "total wall time" "$OUT" && pass "wall time printed" || fail "wall time printed"
[ "$(ls $TMP/ckpt/epoch_*.pt 2>/dev/null | wc -l)" -eq 2 ] && pass "a checkpoint per epoch" || fail "a checkpoint per epoch"
python3 - "$TMP/logs/metrics.jsonl" <<'PY' && pass "metrics.jsonl" || fail "metrics.jsonl"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in rows if r["kind"] == "train"]
evals = [r for r in rows if r["kind"] == "eval"]
assert len(train) == 4, len(train)
assert {"step", "epoch", "loss", "lr", "images_per_s"} <= set(train[0])
assert len(evals) == 2 and evals[-1]["epoch"] == 2 and evals[-1]["step"] == 64, evals
assert evals[-1]["test_accuracy"] > 0.3, evals   # chance is 0.1
assert train[-1]["loss"] < train[0]["loss"], (train[0], train[-1])
PY

# Resume from the last checkpoint and train one more epoch.
LAST=$(ls $TMP/ckpt/epoch_*.pt | tail -1)
mpirun2 train --config "$SRC/configs/smoke.yaml" --set log.dir=$TMP/logs --set checkpoint.dir=$TMP/ckpt \
  --set train.threads=1 --set train.epochs=3 --set resume=$LAST >"$TMP/run2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "resumed from .* at epoch 3 step 64" "$TMP/run2.log" && grep -q "epoch 3 step 96/96" "$TMP/run2.log" \
  && pass "resume continues at epoch 3" || { fail "resume continues at epoch 3"; cat "$TMP/run2.log"; }

# Bad inputs: one clear message, non-zero exit, no hang, and no good checkpoint touched.
before=$(cd $TMP/ckpt && sha256sum epoch_*.pt)
expect_error() {  # name, pattern, args...
  local name=$1 pattern=$2; shift 2
  local log=$TMP/err.log
  mpirun2 "$@" >"$log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q -- "$pattern" "$log" && [ "$(grep -c -- "$pattern" "$log")" -eq 1 ]; then
    pass "$name"
  else
    fail "$name (rc $rc)"; cat "$log"
  fi
}
expect_error "unknown key" "unknown config key 'train.lrr'" train --config "$SRC/configs/smoke.yaml" --set train.lrr=1
expect_error "bad value" "config key train.batch_size (--set): 'x' is not allowed" train --config "$SRC/configs/smoke.yaml" --set train.batch_size=x
expect_error "missing config" "cannot read config file" train --config $TMP/nope.yaml
expect_error "missing data" "CIFAR-10 not found" train --config "$SRC/configs/seed_cnn.yaml" --set data.root=$TMP/nodata
expect_error "nccl without gpu" "dist.backend=nccl needs CUDA GPUs" train --config "$SRC/configs/smoke.yaml" --set dist.backend=nccl
head -c 1000 "$LAST" > $TMP/truncated.pt
cp "${LAST%.pt}.json" $TMP/truncated.json
head -c 1000 "$LAST" > $TMP/nomanifest.pt
expect_error "checkpoint without manifest" "has no manifest" train --config "$SRC/configs/smoke.yaml" \
  --set log.dir=$TMP/logs2 --set checkpoint.dir=$TMP/ckpt2 --set resume=$TMP/nomanifest.pt
expect_error "truncated checkpoint" "is truncated or missing" train --config "$SRC/configs/smoke.yaml" \
  --set log.dir=$TMP/logs2 --set checkpoint.dir=$TMP/ckpt2 --set resume=$TMP/truncated.pt
expect_error "checkpoint of another model" "holds model 'seed_cnn' but the config asks for 'resnet9'" train \
  --config "$SRC/configs/smoke.yaml" --set model.name=resnet9 --set log.dir=$TMP/logs3 --set checkpoint.dir=$TMP/ckpt3 --set resume=$LAST
touch $TMP/afile
expect_error "unwritable checkpoint dir" "cannot create checkpoint.dir" train --config "$SRC/configs/smoke.yaml" \
  --set log.dir=$TMP/logs4 --set checkpoint.dir=$TMP/afile/sub
[ "$(cd $TMP/ckpt && sha256sum epoch_*.pt)" = "$before" ] && pass "good checkpoints untouched by failed runs" || fail "good checkpoints untouched by failed runs"

echo "e2e: $((failures == 0 ? 1 : 0)) passed, $failures failed"
[ $failures -eq 0 ]
