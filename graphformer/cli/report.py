"""What a run prints at its end: where everything is, its numbers, and the commands that go on
from it, each runnable as printed."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

from graphformer.cli import console, tracking
from graphformer.cli.results import RunResults

from hydra.core.hydra_config import HydraConfig

#: Metric names that need a word, shown once under the numbers when they appear.
METRIC_NOTES = {
    "bench_acc": "bench_acc: class-averaged recall computed per batch, then averaged, as "
    "Benchmarking GNNs reports PATTERN and CLUSTER (acc: plain accuracy; balanced_acc: "
    "class-averaged recall over the whole split)",
    "mpjpe": "mpjpe: mean per-joint position error, in the targets' units (mm for the "
    "skeleton datasets)",
}


def logger_locations(loggers: list) -> list[tuple[str, str]]:
    """``(what, where)`` for every logger: CSV and TensorBoard folders, the wandb run."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    where = []
    for logger in loggers:
        if isinstance(logger, CSVLogger):
            path = Path(logger.log_dir) / "metrics.csv"
            folder = shlex.quote(str(Path(logger.save_dir)))
            where.append(("csv log", f"{path}  (curves: {program('graphformer-plot')} {folder})"))
        elif isinstance(logger, TensorBoardLogger):
            where.append(("tensorboard", f"tensorboard --logdir {logger.log_dir}"))
        elif isinstance(logger, WandbLogger):
            run_dir = tracking.wandb_run_dir([logger])
            where.append(("wandb run", f"{run_dir}  (upload later with: wandb sync {run_dir})"))
    return where


def report(
    loggers: list,
    results: RunResults,
    checkpoints: dict[str, str | None],
    commands=(),
    run_dir: str | None = None,
) -> None:
    """Tell the user where the run folder, checkpoints and logs are, the numbers (the best
    checkpoint's validation metrics with its epoch, the test metrics of the tested checkpoint,
    the last epoch's as ``last/``), and the ``commands`` to go on with (``(what, command)``)."""
    lines = ["graphformer run finished:"]
    if run_dir:
        lines.append(f"  run folder: {run_dir}")
    lines += [f"  {label}: {path}" for label, path in checkpoints.items() if path]
    lines += [f"  {what}: {where}" for what, where in logger_locations(loggers)]
    if results.best:
        lines.append(f"  best epoch {results.best_epoch} (the tested checkpoint), validation:")
        lines += [f"    {key} = {results.best[key]:.4f}" for key in sorted(results.best)]
    if results.test:
        lines.append("  test:")
        lines += [f"    {key} = {results.test[key]:.4f}" for key in sorted(results.test)]
    if results.last and (results.last_epoch != results.best_epoch or not results.best):
        lines.append(f"  last epoch {results.last_epoch}, validation:")
        lines += [f"    last/{key} = {results.last[key]:.4f}" for key in sorted(results.last)]
    names = {key.rpartition("/")[2] for key in (*results.best, *results.test, *results.last)}
    lines += [f"  ({note})" for name, note in METRIC_NOTES.items() if name in names]
    lines += [f"  {what}: {command}" for what, command in commands]
    console.show("\n".join(lines))


def program(name: str) -> str:
    """How to call the console script ``name`` as printed: its bare name when the shell
    finds it (an activated venv), else its full path beside this Python, else
    ``python -m``."""
    beside = Path(sys.executable).parent / name
    found = shutil.which(name)
    if found and (not beside.exists() or Path(found).resolve() == beside.resolve()):
        return name
    if beside.exists():
        return shlex.quote(str(beside))
    module = "graphformer.cli." + name.removeprefix("graphformer-")
    return f"{shlex.quote(sys.executable)} -m {module}"


#: Values that Hydra's override grammar and the shell both take as they are.
_PLAIN = re.compile(r"[\w/.\-+:]+")


def cli_override(key: str, value: str) -> str:
    """``key=value`` as one shell word that Hydra parses back to exactly ``value``.

    A path with spaces, commas, quotes or brackets is put in Hydra's double quotes (inside,
    a quote and the backslashes before it are escaped), then quoted for the shell.
    """
    if _PLAIN.fullmatch(value):
        return f"{key}={value}"
    escaped = re.sub(r'(\\*)("|$)', lambda m: 2 * m[1] + "\\" * len(m[2]) + m[2], value)
    return shlex.quote(f'{key}="{escaped}"')


def command(name: str, *overrides: str) -> str:
    """The console script ``name`` (see :func:`program`) with this job's command-line
    overrides, those named in ``overrides`` (``key=value`` words from :func:`cli_override`)
    replacing any with the same key."""
    keys = {override.split("=", 1)[0].strip("'") for override in overrides}
    given = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    kept = [shlex.quote(o) for o in given if o.split("=", 1)[0].lstrip("+~") not in keys]
    return " ".join([program(name), *kept, *overrides])
