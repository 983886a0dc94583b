#!/usr/bin/env bash
# End-to-end test of the ddptrain executable under mpirun: a smoke training run on 2 ranks, its
# logs, metrics and checkpoints, resuming from a checkpoint, and bad inputs that must end the
# job with one clear message and a non-zero exit (never a hang).
# usage: cli_test.sh DDPTRAIN MPIEXEC SOURCE_DIR
set -uo pipefail
DDPTRAIN=$1 MPIEXEC=$2 SRC=$3
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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
# The start-up log names only what differs from the defaults (smoke.yaml's keys and the --set ones),
# once (rank 0); the whole resolved config is the run folder's config.yaml.
[ "$(grep -c "config $SRC/configs/smoke.yaml: .*train.threads=1 .*log.dir=$TMP/logs" "$OUT")" -eq 1 ] \
  && ! grep -q "train.nesterov=" "$OUT" && pass "config changes printed once (rank 0)" || fail "config changes printed once"
grep -qx "  nesterov: false" "$TMP/logs/config.yaml" && grep -qx "  threads: 1" "$TMP/logs/config.yaml" \
  && pass "resolved config in log.dir/config.yaml" || fail "resolved config in log.dir/config.yaml"
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

# checkpoint.every_steps: mid-epoch checkpoints (step 10 and 20 of 32-step epochs) besides epoch ends.
mpirun2 train --config "$SRC/configs/smoke.yaml" --set log.dir=$TMP/mid --set checkpoint.dir=$TMP/mid/ckpt \
  --set train.threads=1 --set train.epochs=1 --set checkpoint.every_steps=10 --set checkpoint.keep=10 >$TMP/mid.log 2>&1
[ "$(cd $TMP/mid/ckpt 2>/dev/null && ls *.json | tr '\n' ' ')" = "epoch_0000_step_00000010.json epoch_0000_step_00000020.json epoch_0000_step_00000030.json epoch_0001_step_00000032.json " ] \
  && pass "checkpoint.every_steps" || { fail "checkpoint.every_steps"; ls $TMP/mid/ckpt; }

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
expect_error "cutout without augmentation" "data.cutout=8 is part of augmentation; set data.augment=true" train \
  --config "$SRC/configs/smoke.yaml" --set data.augment=false --set data.cutout=8 --set log.dir=$TMP/logs_cut
expect_error "cutout larger than the images" "data.cutout=40 does not fit" train --config "$SRC/configs/smoke.yaml" \
  --set data.cutout=40 --set log.dir=$TMP/logs_cut
expect_error "missing config" "cannot read config file" train --config $TMP/nope.yaml
expect_error "missing data" "CIFAR-10 not found" train --config "$SRC/configs/seed_cnn.yaml" --set data.root=$TMP/nodata \
  --set data.download=false
# data.download is on by default; without network (a refused loopback port stands in for the official
# site) the one error says how to train offline.
expect_error "download without network" "train offline on Debian's Fashion-MNIST: bash scripts/train.sh --config configs/fashion_mnist.yaml" \
  train --config "$SRC/configs/seed_cnn.yaml" --set data.root=$TMP/nodata --set data.url=http://127.0.0.1:9/cifar.tar.gz
mkdir -p $TMP/badcifar/cifar-10-batches-bin
python3 - "$TMP/badcifar/cifar-10-batches-bin" <<'PY'
import os, sys
d = sys.argv[1]
for n in ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(d, n), "wb") as f:
        f.write(bytes(3073 * 4))
with open(os.path.join(d, "data_batch_3.bin"), "ab") as f:
    f.write(bytes(100))  # a torn copy: 100 bytes of a fifth record
PY
expect_error "truncated data file" "data_batch_3.bin is truncated or not a CIFAR binary batch" train \
  --config "$SRC/configs/seed_cnn.yaml" --set data.root=$TMP/badcifar --set log.dir=$TMP/l5 --set checkpoint.dir=$TMP/c5
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

# ---- Data: download through a server on 127.0.0.1 (the test's own), under mpirun -np 2 ----
SRV=$TMP/srv
mkdir -p "$SRV"
python3 - "$SRV" <<'PY'
import io, os, random, tarfile, sys
random.seed(0)
with tarfile.open(os.path.join(sys.argv[1], "c.tar.gz"), "w:gz") as t:
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        data = bytearray()
        for _ in range(64):
            data.append(random.randrange(10))
            data += random.randbytes(3072)
        info = tarfile.TarInfo("cifar-10-batches-bin/" + name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(bytes(data)))
PY
MD5=$(md5sum "$SRV/c.tar.gz" | cut -d' ' -f1)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$SRV" >"$TMP/http.log" 2>&1 &
HTTP_PID=$!
e2e_on_exit() { kill $HTTP_PID 2>/dev/null; }
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null && break
  sleep 0.1
done
export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1
dl() {  # root, url, md5, more args...
  local root=$1 url=$2 md5=$3; shift 3
  mpirun2 train --config "$SRC/configs/seed_cnn.yaml" --set data.download=true --set data.root="$root" \
    --set data.url="$url" --set data.md5="$md5" --set train.epochs=1 --set train.threads=1 \
    --set log.dir="$TMP/dlogs" --set checkpoint.dir="$TMP/dckpt" "$@"
}
expect_dl_error() {  # name, pattern, dl args...: like expect_error, through dl
  local name=$1 pattern=$2; shift 2
  dl "$@" >"$TMP/err.log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$(grep -c -- "$pattern" "$TMP/err.log")" -eq 1 ]; then
    pass "$name"
  else
    fail "$name (rc $rc)"; cat "$TMP/err.log"
  fi
}
URL=http://127.0.0.1:$PORT/c.tar.gz
dl "$TMP/dl" "$URL" "$MD5" >"$TMP/dl1.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "data cifar10: 320 training images, 64 test images" "$TMP/dl1.log" \
  && [ "$(grep -c 'GET /c.tar.gz' "$TMP/http.log")" -eq 1 ] \
  && pass "download, verify, extract, train (one GET for 2 ranks)" || { fail "download (rc $rc)"; cat "$TMP/dl1.log" "$TMP/http.log"; }
dl "$TMP/dl" "$URL" "$MD5" --set checkpoint.dir="$TMP/dckpt2" >"$TMP/dl2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(grep -c 'GET /c.tar.gz' "$TMP/http.log")" -eq 1 ] && ! grep -q downloading "$TMP/dl2.log" \
  && pass "present data is not fetched again" || { fail "re-use (rc $rc)"; cat "$TMP/dl2.log"; }
expect_dl_error "download: HTTP 404" "rank 0 (host $(hostname)): data.download: download of http://127.0.0.1:$PORT/missing.tar.gz failed: HTTP 404" \
  "$TMP/dl404" "http://127.0.0.1:$PORT/missing.tar.gz" "$MD5"
DEAD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect_dl_error "download: connection refused" "failed: Could.* connect to server" \
  "$TMP/dlrefused" "http://127.0.0.1:$DEAD/c.tar.gz" "$MD5"
expect_dl_error "download: wrong checksum" "is $MD5, expected 0123456789abcdef0123456789abcdef" \
  "$TMP/dlmd5" "$URL" 0123456789abcdef0123456789abcdef
head -c 20000 "$SRV/c.tar.gz" >"$SRV/half.tar.gz"
expect_dl_error "download: truncated archive" "is corrupt or truncated" \
  "$TMP/dlhalf" "http://127.0.0.1:$PORT/half.tar.gz" "$(md5sum "$SRV/half.tar.gz" | cut -d' ' -f1)"
[ ! -e "$TMP/dlhalf/cifar-10-batches-bin" ] && pass "no half dataset left" || fail "no half dataset left"

# ---- Data: host pipeline gives the same training as the device pipeline ----
for pl in device host; do
  mpirun2 train --config "$SRC/configs/smoke.yaml" --set log.dir=$TMP/pl_$pl --set checkpoint.dir=$TMP/plc_$pl \
    --set train.threads=1 --set train.max_steps=16 --set data.pipeline=$pl >"$TMP/pl_$pl.log" 2>&1 || fail "pipeline $pl run"
done
a=$(grep -o "step 16/16 | loss [0-9.]*" "$TMP/pl_device.log"); b=$(grep -o "step 16/16 | loss [0-9.]*" "$TMP/pl_host.log")
[ -n "$a" ] && [ "$a" = "$b" ] && pass "host pipeline = device pipeline ($a)" || { fail "host pipeline = device pipeline ('$a' vs '$b')"; cat "$TMP/pl_host.log"; }

# ---- Data: Fashion-MNIST from Debian's dataset-fashion-mnist (offline) ----
if [ -d /usr/share/datasets/fashion-mnist ]; then
  mpirun2 train --config "$SRC/configs/fashion_mnist.yaml" --set log.dir=$TMP/fm --set checkpoint.dir=$TMP/fmc \
    --set train.threads=1 --set train.max_steps=20 --set data.limit_test=200 >"$TMP/fm.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] && grep -q "data fashion_mnist: 60000 training images, 200 test images" "$TMP/fm.log" \
    && pass "fashion_mnist trains offline" || { fail "fashion_mnist (rc $rc)"; cat "$TMP/fm.log"; }
else
  echo "SKIP fashion_mnist: /usr/share/datasets/fashion-mnist missing (apt-get install dataset-fashion-mnist)"
fi

echo "e2e: $((failures == 0 ? 1 : 0)) passed, $failures failed"
[ $failures -eq 0 ]
