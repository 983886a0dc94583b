#!/usr/bin/env python3
"""Renders a ddptrain run's loss and accuracy curves from <log-dir>/metrics.jsonl to a PNG.

usage: plot_metrics.py --log-dir runs/smoke --out smoke.png [--title TEXT]

Left: training loss (the global mean over each log interval) and test loss, against the
optimizer step. Right: test accuracy against the step (each point is the end of an epoch).
Needs matplotlib (scripts/install.sh puts it in the virtualenv).
"""
import argparse
import json
import os
import sys


def read_metrics(path):
    train, evals = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot_metrics: {path}:{n} is not JSON ({e})")
            (train if row.get("kind") == "train" else evals if row.get("kind") == "eval" else []).append(row)
    return train, evals


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log-dir", required=True, help="a run's log.dir (holds metrics.jsonl)")
    ap.add_argument("--out", required=True, help="PNG file to write")
    ap.add_argument("--title", default=None)
    a = ap.parse_args()
    path = os.path.join(a.log_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        sys.exit(f"plot_metrics: {path} not found; pass the log.dir of a ddptrain run")
    train, evals = read_metrics(path)
    if not train and not evals:
        sys.exit(f"plot_metrics: {path} holds no train or eval rows")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    if evals:
        ax_loss.plot([r["step"] for r in evals], [r["test_loss"] for r in evals], "o-", label="test loss")
        ax_acc.plot([r["step"] for r in evals], [r["test_accuracy"] for r in evals], "o-", color="tab:green")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("test accuracy")
    ax_acc.set_ylim(0, 1)
    ax_acc.grid(alpha=0.3)
    fig.suptitle(a.title or os.path.abspath(a.log_dir))
    fig.tight_layout()
    fig.savefig(a.out, format="png", dpi=100)
    print(f"plot_metrics: wrote {a.out} ({len(train)} train points, {len(evals)} evaluations)")


if __name__ == "__main__":
    main()
