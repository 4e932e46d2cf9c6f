"""``graphformer-plot PATH``: learning curves of a run or of a whole sweep, to PNG, from the
CSV logs that the default logger set writes (``<run>/csv/version_N/metrics.csv``).

    graphformer-plot logs/train/runs/<id>                one run
    graphformer-plot logs/train/multiruns/<id>           every job of a sweep, one line each
    graphformer-plot <run>/csv/version_0/metrics.csv     one log file

Draws train and validation loss, and a validation metric (``--metric``; default: the run's
``optimized_metric`` if logged, else the first of :data:`METRICS`), per epoch, to
``<PATH>/curves.png`` (``--out`` to choose). Needs matplotlib (the ``plots`` extra).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

#: The validation metric drawn when none is named: the first one a log has.
METRICS = ("val/acc", "val/mpjpe", "val/mae", "val/seq_acc", "val/bench_acc", "val/loss")


def read_epochs(path: Path) -> dict[str, dict[int, float]]:
    """metric → epoch → value, from a Lightning CSVLogger ``metrics.csv``."""
    series: dict[str, dict[int, float]] = defaultdict(dict)
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            if not row.get("epoch"):
                continue
            for key, value in row.items():
                if key not in ("epoch", "step") and value:
                    series[key][int(float(row["epoch"]))] = float(value)
    return dict(series)


def find_logs(path: Path) -> dict[str, Path]:
    """label → ``metrics.csv`` under ``path``: a log file, a run folder (its newest CSV log)
    or a sweep folder (each job's, labelled by its overrides that vary)."""
    path = Path(path)
    if path.is_file():
        return {path.parent.name: path}
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} does not exist; pass a run folder, a sweep folder or a metrics.csv"
        )
    own = sorted(path.glob("csv/version_*/metrics.csv"))
    if own:
        return {path.name: own[-1]}
    jobs = sorted(
        (p for p in path.iterdir() if sorted(p.glob("csv/version_*/metrics.csv"))),
        key=lambda p: (len(p.name), p.name),
    )
    if not jobs:
        raise FileNotFoundError(
            f"no CSV logs under {path} (<run>/csv/version_N/metrics.csv): train with the "
            "default loggers, or add csv: logger=[wandb,csv] / logger=csv"
        )
    overrides = {job: _overrides(job) for job in jobs}
    common = set.intersection(*(set(o) for o in overrides.values()))
    labels = {job: " ".join(o for o in overrides[job] if o not in common) for job in jobs}
    return {
        f"{job.name}: {labels[job]}" if labels[job] else job.name: sorted(
            job.glob("csv/version_*/metrics.csv")
        )[-1]
        for job in jobs
    }


def _overrides(job: Path) -> list[str]:
    file = job / ".hydra" / "overrides.yaml"
    if not file.is_file():
        return []
    return [line[2:].strip() for line in file.read_text().splitlines() if line.startswith("- ")]


def _metric(path: Path, runs: dict[str, dict], metric: str | None) -> str:
    if metric:
        return metric
    for summary in [path / "summary.json", *path.glob("*/summary.json")]:
        if summary.is_file():
            name = json.loads(summary.read_text()).get("optimized_metric")
            if name and any(name in run for run in runs.values()):
                return name
    return default_metric(runs, path)


def default_metric(runs: dict[str, dict], where: object) -> str:
    """The first of :data:`METRICS` that one of ``runs`` logged (``where``: for the error)."""
    present = [m for m in METRICS if any(m in run for run in runs.values())]
    if not present:
        raise ValueError(f"none of {METRICS} is logged under {where}; pass --metric")
    return present[0]


def curves(path: Path, metric: str | None = None, out: Path | None = None) -> Path:
    """Draw the curves of the run(s) under ``path`` to ``out`` (default
    ``<path>/curves.png``); returns the PNG's path."""
    path = Path(path)
    runs = {label: read_epochs(log) for label, log in find_logs(path).items()}
    metric = _metric(path if path.is_dir() else path.parent, runs, metric)
    out = Path(out) if out else (path if path.is_dir() else path.parent) / "curves.png"
    return draw_curves(runs, metric, str(path.name), out)


def draw_curves(runs: dict[str, dict[str, dict[int, float]]], metric: str, title: str, out: Path):
    """Two panels, one colour per run: train (dashed) and validation loss, and ``metric``,
    per whole epoch; ``runs`` maps a label to :func:`read_epochs`' result. Writes ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for index, (label, run) in enumerate(runs.items()):
        color = f"C{index % 10}"
        for key, style in (("train/loss", "--"), ("val/loss", "-")):
            if key in run:
                epochs = sorted(run[key])
                loss_axis.plot(epochs, [run[key][e] for e in epochs], style, color=color)
        if metric in run:
            epochs = sorted(run[metric])
            metric_axis.plot(epochs, [run[metric][e] for e in epochs], color=color, label=label)
    for axis in (loss_axis, metric_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
    loss_axis.set(xlabel="epoch", ylabel="loss", title="loss (dashed: train, solid: val)")
    metric_axis.set(xlabel="epoch", ylabel=metric, title=metric)
    if len(runs) > 1:
        metric_axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="graphformer-plot", description=__doc__.split("\n\n")[0].replace("``", "")
    )
    parser.add_argument("path", type=Path, help="a run folder, a sweep folder or a metrics.csv")
    parser.add_argument("--metric", default=None, help="validation metric to draw, e.g. val/acc")
    parser.add_argument("--out", type=Path, help="PNG file (default: PATH/curves.png)")
    args = parser.parse_args(argv)
    try:
        print(curves(args.path, args.metric, args.out))
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"graphformer-plot: {error}\n")


if __name__ == "__main__":
    main()
