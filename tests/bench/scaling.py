#!/usr/bin/env python3
"""Weak scaling of ddptrain on this machine: `ddptrain bench-train` at 1, 2 and 4 ranks (1 thread
each, the same per-rank batch; more ranks than cores are oversubscribed), plus `ddptrain
bench-comm`'s fraction of communication hidden by overlap at 2 and 4 ranks.

Weak-scaling efficiency(n) = img/s(n) / (n x img/s(1)). Each point is the median of --reps runs,
alternating over rank counts. Asserts nothing about time.

usage: scaling.py DDPTRAIN [--model seed_cnn] [--batch 64] [--steps 40] [--reps 3] [--ranks 1 2 4]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def run(cmd):
    p = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-3000:]}")
    return p.stdout


def mpirun(a, n):
    return [a.mpirun, "-np", str(n), "--bind-to", "none", "--oversubscribe"]


def bench_train(a, n):
    total = 3 + a.steps
    sets = [f"model.name={a.model}", "data.dataset=synthetic", "data.augment=false",
            f"data.synthetic_train={(total + 1) * a.batch * n}", "data.synthetic_test=8",
            f"train.batch_size={a.batch}", "train.threads=1", f"train.max_steps={total}", "train.epochs=1",
            "train.lr_schedule=constant", f"log.every_steps={total}"]
    cmd = mpirun(a, n) + [a.ddptrain, "bench-train", "--config", os.path.join(ROOT, "configs/smoke.yaml")]
    for s in sets:
        cmd += ["--set", s]
    out = run(cmd)
    ips = float(re.search(r"bench-train images_per_s ([0-9.]+)", out).group(1))
    row = [l for l in out.splitlines() if l.startswith(a.model + " |")][0].split(" | ")
    return ips, float(row[8]), float(row[13])  # img/s, ms/step, comm wait ms/step


def hidden(a, n):
    out = run(mpirun(a, n) + [a.ddptrain, "bench-comm", "--min-bytes", "8K", "--max-bytes", "8K", "--iters", "3",
                              "--model", a.model, "--batch", str(a.batch), "--steps", str(a.steps)])
    m = re.findall(r"^\s*([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+(-?[0-9]+)%\s*$", out, re.M)
    return float(m[-1][3]) if m else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ddptrain")
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--model", default="seed_cnn")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ranks", type=int, nargs="*", default=[1, 2, 4])
    a = ap.parse_args()
    res = {n: [] for n in a.ranks}
    for _ in range(a.reps):
        for n in a.ranks:
            res[n].append(bench_train(a, n))
    hid = {n: hidden(a, n) for n in a.ranks if n > 1}
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, {a.model}, "
          f"batch {a.batch}/rank, 1 thread/rank, medians of {a.reps}")
    print("ranks | img/s | ms/step | comm wait ms/step | weak-scaling efficiency | comm hidden by overlap")
    print("----- | ----- | ------- | ----------------- | ----------------------- | ----------------------")
    base = statistics.median(r[0] for r in res[a.ranks[0]]) / a.ranks[0]
    for n in a.ranks:
        ips = statistics.median(r[0] for r in res[n])
        ms = statistics.median(r[1] for r in res[n])
        wait = statistics.median(r[2] for r in res[n])
        h = f"{hid[n]:.0f}%" if n in hid else "-"
        print(f"{n} | {ips:.0f} | {ms:.1f} | {wait:.2f} | {ips / (n * base):.2f} | {h}", flush=True)


if __name__ == "__main__":
    main()
