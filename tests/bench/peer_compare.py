#!/usr/bin/env python3
"""ddptrain against its Python peer (tests/bench/peer_ddp.py: PyTorch DDP, gloo) on CPU.

For each row (model, ranks, threads, per-rank batch) it runs `ddptrain bench-train` and the peer
alternately, --reps times each, and prints the medians of their steady-state global images/s
(both exclude start-up and the first 3 steps; ddptrain also excludes evaluation). Both get the
same allocator setting: ddptrain calls mallopt(M_MMAP_MAX, 0) and M_TRIM_THRESHOLD=1 GiB itself;
the peer gets MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824. Ranks run under mpirun with
--bind-to none. Asserts nothing: timings on a shared machine drift; compare rows of one run.

usage: peer_compare.py DDPTRAIN [--python PY] [--mpirun mpirun] [--reps 3] [--rows ...]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# model, ranks, threads per rank, per-rank batch, timed steps
ROWS = {
    "seed_cnn-2x1": ("seed_cnn", 2, 1, 64, 60),
    "seed_cnn-1x2": ("seed_cnn", 1, 2, 64, 60),
    "resnet9-2x1": ("resnet9", 2, 1, 64, 6),
    "resnet9-1x2": ("resnet9", 1, 2, 64, 6),
}
WARMUP = 3  # ddptrain's kTimingWarmupSteps.


def mpirun_prefix(mpirun, ranks):
    return [mpirun, "-np", str(ranks), "--bind-to", "none", "--oversubscribe",
            "-x", "MALLOC_MMAP_MAX_", "-x", "MALLOC_TRIM_THRESHOLD_"]


def run(cmd, pattern):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="1073741824")
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    m = re.search(pattern + r" images_per_s ([0-9.]+)", p.stdout)
    if p.returncode != 0 or not m:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-3000:]}")
    return float(m.group(1))


def ddptrain_cmd(a, model, ranks, threads, batch, steps, extra):
    total = WARMUP + steps
    sets = [f"model.name={model}", "data.dataset=synthetic", "data.augment=false",
            f"data.synthetic_train={(total + 1) * batch * ranks}", "data.synthetic_test=8",
            f"train.batch_size={batch}", f"train.threads={threads}", f"train.max_steps={total}",
            "train.epochs=1", "train.lr=0.01", "train.momentum=0.9", "train.lr_schedule=constant",
            f"log.every_steps={total}"] + extra
    cmd = mpirun_prefix(a.mpirun, ranks) + [a.ddptrain, "bench-train", "--config",
                                            os.path.join(ROOT, "configs/smoke.yaml")]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def peer_cmd(a, model, ranks, threads, batch, steps, extra):
    return mpirun_prefix(a.mpirun, ranks) + [
        a.python, os.path.join(HERE, "peer_ddp.py"), "--model", model, "--batch", str(batch),
        "--threads", str(threads), "--warmup", str(WARMUP), "--steps", str(steps),
        "--images", str((WARMUP + steps + 1) * batch)] + extra


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ddptrain")
    ap.add_argument("--python", default=os.environ.get("DDPTRAIN_PYTHON", sys.executable))
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rows", nargs="*", default=list(ROWS))
    ap.add_argument("--ddptrain-set", nargs="*", default=[], help="extra --set for ddptrain")
    ap.add_argument("--peer-args", nargs="*", default=[], help="extra peer_ddp.py flags (e.g. --channels-last)")
    a = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores; "
          f"medians of {a.reps} alternating runs; ddptrain --set {a.ddptrain_set}; peer {a.peer_args}")
    print("model | ranks | threads | batch/rank | ddptrain img/s | peer img/s | ratio")
    print("----- | ----- | ------- | ---------- | -------------- | ---------- | -----")
    for name in a.rows:
        model, ranks, threads, batch, steps = ROWS[name]
        ours, peer = [], []
        for _ in range(a.reps):
            ours.append(run(ddptrain_cmd(a, model, ranks, threads, batch, steps, a.ddptrain_set), "bench-train"))
            peer.append(run(peer_cmd(a, model, ranks, threads, batch, steps, a.peer_args), "peer"))
        mo, mp = statistics.median(ours), statistics.median(peer)
        print(f"{model} | {ranks} | {threads} | {batch} | {mo:.0f} | {mp:.0f} | {mo / mp:.2f}"
              f"   (runs: {' '.join(f'{x:.0f}' for x in ours)} / {' '.join(f'{x:.0f}' for x in peer)})",
              flush=True)


if __name__ == "__main__":
    main()
