"""A run's numbers: the best checkpoint's validation metrics (the checkpoint that is tested),
the last epoch's, the test metrics, and ``summary.json`` in the run folder.

One set of numbers per run: the report, the loggers' summaries, the sweep summary and the
value a sweep optimises all come from :func:`collect`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graphformer.cli import checkpoint as checkpoints
from graphformer.tasks.base import VAL_METRICS_KEY

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

#: A run's results, in its folder (read by the sweep summary).
SUMMARY_FILE = "summary.json"


def metrics(trainer: L.Trainer) -> dict[str, float]:
    """The trainer's latest logged metrics as plain floats."""
    return {key: float(value) for key, value in trainer.callback_metrics.items()}


def checkpoint_callback(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The callback that keeps the best checkpoint (the first one with a monitor)."""
    monitored = [c for c in trainer.checkpoint_callbacks if c.monitor]
    return monitored[0] if monitored else None


def last_checkpoint(trainer: L.Trainer) -> str | None:
    """Where the newest state was saved, by whichever checkpoint callback saved it."""
    paths = [c.last_model_path for c in trainer.checkpoint_callbacks if c.last_model_path]
    paths += [c.best_model_path for c in trainer.checkpoint_callbacks if not c.monitor]
    return next((path for path in paths if path), None)


def best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint of this fit (Lightning's ``ModelCheckpoint.best_model_path``)."""
    callback = checkpoint_callback(trainer)
    return (callback.best_model_path or None) if callback else None


def _validation(values: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in values.items() if k.startswith("val/")}


@dataclass
class RunResults:
    """What one run ends with.

    ``best``: the validation metrics of the best checkpoint (the one tested), at
    ``best_epoch`` (0-based, as in ``metrics.csv`` and ``epoch_NNN.ckpt``); ``last``: those
    of the last epoch, at ``last_epoch``; ``test``: the test metrics of the tested checkpoint.
    Without a best checkpoint (no monitored ``ModelCheckpoint``, ``fast_dev_run``)
    ``best`` is empty.
    """

    best: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    last: dict[str, float] = field(default_factory=dict)
    last_epoch: int | None = None
    test: dict[str, float] = field(default_factory=dict)
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None

    def summary(self) -> dict[str, float]:
        """The loggers' summary: ``best/<val metric>`` and ``best/epoch`` (the tested
        checkpoint's), ``test/*``, ``last/<val metric>`` and ``last/epoch``."""
        values = {f"best/{key}": value for key, value in self.best.items()}
        if self.best_epoch is not None:
            values["best/epoch"] = self.best_epoch
        values.update(self.test)
        values.update({f"last/{key}": value for key, value in self.last.items()})
        if self.last_epoch is not None:
            values["last/epoch"] = self.last_epoch
        return values


def collect(
    trainer: L.Trainer,
    validation: dict[str, float],
    test: dict[str, float],
    best: str | None,
    last: str | None,
) -> RunResults:
    """The run's :class:`RunResults`. ``validation``: the trainer's metrics after fit;
    ``best`` / ``last``: the checkpoint paths, read before testing (``trainer.test`` with a
    ``ckpt_path`` restores the callbacks' state of that checkpoint)."""
    results = RunResults(
        last=_validation(validation),
        last_epoch=max(trainer.current_epoch - 1, 0) if validation else None,
        test={k: v for k, v in test.items() if k.startswith("test/")},
        best_checkpoint=best,
        last_checkpoint=last,
    )
    if best:
        saved = checkpoints.load(best)
        results.best = dict(saved.get(VAL_METRICS_KEY) or {})
        results.best_epoch = saved.get("epoch")
        callback = checkpoint_callback(trainer)
        if not results.best and callback and callback.best_model_score is not None:
            results.best = {callback.monitor: float(callback.best_model_score)}  # older files
    return results


def optimized_metric(cfg: DictConfig, results: RunResults) -> float | None:
    """The value of ``cfg.optimized_metric`` (what a sweep optimises) at the best checkpoint,
    the one that was tested; the last epoch's when no best checkpoint was kept."""
    name = cfg.get("optimized_metric")
    if not name or not cfg.get("train", True):
        return None
    values = results.best or results.last
    if name not in values:
        logged = sorted({*results.best, *results.last})
        raise KeyError(f"optimized_metric={name!r} was never logged; logged metrics: {logged}")
    return values[name]


def write_summary(
    cfg: DictConfig, results: RunResults, overrides: list[str], started: float
) -> Path:
    """``<run dir>/summary.json``: the job's overrides, its numbers, wall time and files."""
    output_dir = Path(cfg.paths.output_dir)
    document: dict[str, Any] = {
        "overrides": list(overrides),
        "optimized_metric": cfg.get("optimized_metric"),
        "optimized_mode": cfg.get("optimized_mode"),
        **asdict(results),
        "wall_s": round(time.time() - started, 3),
        "run_dir": str(output_dir),
    }
    for key in ("best", "last", "test"):  # NaN/inf are not JSON
        document[key] = {k: float(v) for k, v in document[key].items() if math.isfinite(v)}
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / SUMMARY_FILE
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
