"""Per-seed table of final and best validation and test accuracy from ``compare.py`` logs.

Usage::

    cd experiments/gps_vs_pyg && python summary.py logs/cluster_g64_l4_sched20_seed?.json

Prints a markdown table (one row per seed and model: final validation, best validation
and its epoch, test at that epoch, final test, train balanced accuracy at the end, train
wall and CPU seconds) and, per model, mean ± standard deviation over the seeds and the
per-seed difference graphformer − PyG.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

LABELS = {"pyg": "PyG GPSConv", "graphformer": "graphformer GPS"}
KEYS = ("final_val", "best_val", "test_at_best", "final_test", "final_train")


def per_seed(log: dict) -> dict[str, dict]:
    """For each model of one run: its final/best numbers (fractions)."""
    out = {}
    for model in log["models"]:
        rows = [r for r in log["epochs"] if r["model"] == model]
        if not rows:
            continue
        best = max(rows, key=lambda r: r["val_bench_acc"])  # the first epoch at the max
        last = rows[-1]
        out[model] = {
            "epochs": last["epoch"],
            "final_val": last["val_bench_acc"],
            "best_val": best["val_bench_acc"],
            "best_epoch": best["epoch"],
            "test_at_best": best.get("test_bench_acc", float("nan")),
            "final_test": last.get("test_bench_acc", float("nan")),
            "final_train": last["train_bench_acc"],
            "final_val_loss": last["val_loss"],
            "min_val_loss": min(r["val_loss"] for r in rows),
            "train_wall_s": sum(r["train_wall_s"] for r in rows),
            "train_cpu_s": sum(r["train_cpu_s"] for r in rows),
        }
    return out


def mean_std(values: list[float]) -> str:
    values = [100 * v for v in values if v == v]  # a run still going has no final test
    if len(values) < 2:
        return f"{values[0]:.1f}" if values else "–"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def table(paths: list[Path]) -> str:
    logs = sorted((json.loads(p.read_text()) for p in paths), key=lambda log: log["seed"])
    lines = [
        "| seed | model | epochs | final val | best val (epoch) | test at best val "
        "| final test | final train | val loss final / min | train s wall / CPU |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    summary: dict[str, dict[str, list[float]]] = {m: {k: [] for k in KEYS} for m in LABELS}
    diffs: dict[str, list[float]] = {k: [] for k in KEYS}
    for log in logs:
        numbers = per_seed(log)
        for model, n in numbers.items():
            lines.append(
                f"| {log['seed']} | {LABELS[model]} | {n['epochs']} | {100 * n['final_val']:.1f} % "
                f"| {100 * n['best_val']:.1f} % ({n['best_epoch']}) "
                f"| {100 * n['test_at_best']:.1f} % | {100 * n['final_test']:.1f} % "
                f"| {100 * n['final_train']:.1f} % "
                f"| {n['final_val_loss']:.3f} / {n['min_val_loss']:.3f} "
                f"| {n['train_wall_s']:.0f} / {n['train_cpu_s']:.0f} |"
            )
            for key in KEYS:
                summary[model][key].append(n[key])
        if set(numbers) == set(LABELS):
            for key in KEYS:
                diffs[key].append(numbers["graphformer"][key] - numbers["pyg"][key])
    lines += ["", "| model | " + " | ".join(KEYS) + " |", "|---|" + "---:|" * len(KEYS)]
    for model, values in summary.items():
        if values["final_val"]:
            cells = " | ".join(mean_std(values[k]) for k in KEYS)
            lines.append(f"| {LABELS[model]} (mean ± std, %) | {cells} |")
    if diffs["final_val"]:
        cells = " | ".join(", ".join(f"{100 * d:+.1f}" for d in diffs[k]) for k in KEYS)
        lines.append(f"| graphformer − PyG per seed (points) | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(table([Path(p) for p in sys.argv[1:]]))
