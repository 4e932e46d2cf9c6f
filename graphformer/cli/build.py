"""The steps shared by ``graphformer-train`` and ``graphformer-eval``: turn config into objects."""

from __future__ import annotations

import logging
from pathlib import Path

from graphformer.cli import tracking
from graphformer.tasks import GraphTask
from graphformer.tasks.base import CONFIG_KEY

import dgl
import hydra
import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def _existing_dir(path: str) -> str:
    """``path``, created if missing (sqlite storage needs its folder before any run starts)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


OmegaConf.register_new_resolver(
    "graphformer.direction",
    lambda mode: {"max": "maximize", "min": "minimize"}[mode],
    replace=True,
)
OmegaConf.register_new_resolver("graphformer.mkdir", _existing_dir, replace=True)


def seed_everything(seed: int | None) -> None:
    """Seed Python, NumPy, torch (and dataloader workers) through Lightning, and DGL."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an int in [0, 2**31) (DGL's limit) or null; got {seed!r}")
    L.seed_everything(seed, workers=True)
    dgl.seed(seed)


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every ``_target_`` entry of a config group (callbacks, loggers)."""
    if not group:
        return []
    return [
        hydra.utils.instantiate(entry)
        for entry in group.values()
        if isinstance(entry, DictConfig) and "_target_" in entry
    ]


def callbacks(cfg: DictConfig, loggers: list) -> list[L.Callback]:
    """The configured callbacks; without a logger, the LR monitor (which needs one) is dropped."""
    result = instantiate_group(cfg.get("callbacks"))
    if not loggers:
        dropped = [c for c in result if isinstance(c, LearningRateMonitor)]
        if dropped:
            log.info("no logger configured: the learning-rate monitor is skipped")
        result = [c for c in result if not isinstance(c, LearningRateMonitor)]
    return result


def datamodule(cfg: DictConfig) -> L.LightningDataModule:
    return hydra.utils.instantiate(cfg.data)


def task(cfg: DictConfig, data: L.LightningDataModule) -> GraphTask:
    """The model inside its task, checked against the data's level."""
    model = hydra.utils.instantiate(cfg.model)
    result: GraphTask = hydra.utils.instantiate(cfg.task, model=model)
    data_level = getattr(data, "level", None)
    if data_level is not None and data_level != result.level:
        raise ValueError(
            f"task {type(result).__name__} predicts per {result.level} but data "
            f"{cfg.data.get('name', type(data).__name__)} is labelled per {data_level}; "
            f"choose task=node_classification/node_regression or task=graph_classification/"
            f"graph_regression to match"
        )
    check_encodings(model, data)
    return result


def check_encodings(model: torch.nn.Module, data: L.LightningDataModule) -> None:
    """Fail before the data is built when the model reads positional encodings that the
    data does not compute, naming both config keys."""
    for key, encoder in (("lap_pe_k", "lap_pe"), ("rwse_k", "rwse")):
        wanted = getattr(getattr(model, encoder, None), "k", 0)
        made = getattr(data, key, None)
        if wanted and made is not None and made != wanted:
            raise ValueError(
                f"model.{key}={wanted} but data.{key}={made}: the model reads {wanted} "
                f"columns of ndata[{encoder!r}] that the data does not compute. Set "
                f"data.{key}={wanted}, or model.{key}={made} (by default model.{key} "
                f"follows data.{key})"
            )


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
    callback = checkpoint_callback(trainer)
    return (callback.best_model_path or None) if callback else None


def optimized_metric(
    cfg: DictConfig, trainer: L.Trainer, validation: dict[str, float]
) -> float | None:
    """The best validation value of ``cfg.optimized_metric`` (what a sweep optimises).

    The checkpoint callback's best score when it monitors that metric, else the last value.
    """
    name = cfg.get("optimized_metric")
    if not name or not cfg.get("train", True):
        return None
    if name not in validation:
        raise KeyError(
            f"optimized_metric={name!r} was never logged; logged metrics: {sorted(validation)}"
        )
    callback = checkpoint_callback(trainer)
    if callback and callback.monitor == name and callback.best_model_score is not None:
        return float(callback.best_model_score)
    return validation[name]


def report(trainer: L.Trainer, loggers: list, results: dict[str, float]) -> None:
    """Tell the user where the checkpoint and the wandb run are, and the headline numbers."""
    lines = ["graphformer run finished:"]
    best = best_checkpoint(trainer)
    if best:
        lines.append(f"  best checkpoint: {best}")
    last = last_checkpoint(trainer)
    if last:
        lines.append(f"  last checkpoint: {last}")
    run_dir = tracking.wandb_run_dir(loggers)
    if run_dir:
        lines.append(f"  wandb run: {run_dir}  (upload later with: wandb sync {run_dir})")
    for key in sorted(results):
        if key.startswith(("val/", "test/")):
            lines.append(f"  {key} = {results[key]:.4f}")
    log.info("\n".join(lines))


def stored_config(ckpt_path: str) -> DictConfig:
    """The run configuration ``graphformer-train`` stored in the checkpoint."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path!r} is not a file; pass the .ckpt a training run saved "
            "(its path is printed at the end of graphformer-train, under checkpoints/)"
        )
    checkpoint = torch.load(path, map_location="cpu")
    if CONFIG_KEY not in checkpoint:
        raise ValueError(
            f"{path} holds no graphformer configuration ({CONFIG_KEY!r}); only checkpoints "
            "written by graphformer-train can be evaluated this way"
        )
    return OmegaConf.create(checkpoint[CONFIG_KEY])


def check_resumable(cfg: DictConfig) -> None:
    """Fail before training when ``ckpt_path`` was trained with another model or task.

    Lists every differing key, e.g. ``model.hidden_dim: 64 in the checkpoint, 32 now``.
    Optimizer, trainer and data sizes may change on resume; the architecture may not.
    """
    if not cfg.get("ckpt_path"):
        return
    stored = stored_config(cfg.ckpt_path)
    now = {
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "task": {"_target_": cfg.task.get("_target_")},
    }
    then = {
        "model": OmegaConf.to_container(stored.get("model", {}), resolve=True),
        "task": {"_target_": OmegaConf.select(stored, "task._target_")},
    }
    differences = [
        f"{key}: {old!r} in the checkpoint, {new!r} now"
        for key, old, new in _differences(then, now)
    ]
    if differences:
        raise ValueError(
            f"ckpt_path={cfg.ckpt_path} was trained with a different model or task:\n  "
            + "\n  ".join(differences)
            + "\nResume with the checkpoint's settings (see its run's .hydra/config.yaml) or drop "
            "ckpt_path to start afresh."
        )


def _differences(old: object, new: object, prefix: str = ""):
    """(key, old, new) for every leaf that differs between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _differences(old.get(key), new.get(key), f"{prefix}{key}.")
    elif old != new:
        yield prefix.rstrip("."), old, new
