"""Reading a run's checkpoint back, and the checks before a run resumes from one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphformer.cli import checkpoint
from graphformer.cli.report import cli_override
from graphformer.nn.config import upgrade_model_config
from graphformer.tasks.base import CONFIG_KEY

from omegaconf import DictConfig, OmegaConf


def read_checkpoint(ckpt_path: str) -> dict[str, Any]:
    """The checkpoint at ``ckpt_path``, verified (:func:`graphformer.cli.checkpoint.verify`)."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path!r} is not a file; pass the .ckpt a training run saved "
            "(its path is printed at the end of graphformer-train, under checkpoints/)"
        )
    return checkpoint.load(path)


def stored_config(saved: dict[str, Any], ckpt_path: str) -> DictConfig:
    """The run configuration ``graphformer-train`` stored in the checkpoint ``saved``."""
    if CONFIG_KEY not in saved:
        raise ValueError(
            f"{ckpt_path} holds no graphformer configuration ({CONFIG_KEY!r}); only checkpoints "
            "written by graphformer-train can be evaluated this way"
        )
    config = dict(saved[CONFIG_KEY])
    if isinstance(config.get("model"), dict):  # written before BlockConfig: model.block
        config["model"] = upgrade_model_config(config["model"])
    return OmegaConf.create(config)


def check_resumable(cfg: DictConfig) -> None:
    """Fail before training when ``ckpt_path`` cannot be loaded or continued: damaged, trained
    with another model or task, or already at ``trainer.max_epochs`` / ``max_steps``.

    Lists every differing key, e.g. ``model.block.dim: 64 in the checkpoint, 32 now``.
    Optimizer, trainer and data sizes may change on resume; the architecture may not.
    """
    check_schedule(cfg)
    if not cfg.get("ckpt_path"):
        return
    saved = read_checkpoint(cfg.ckpt_path)
    stored = stored_config(saved, cfg.ckpt_path)
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
    if cfg.get("train", True):
        check_unfinished(cfg, saved)


def check_schedule(cfg: DictConfig) -> None:
    """Refuse a fit that would train nothing: ``trainer.max_epochs=0`` or ``max_steps=0``."""
    for key in ("max_epochs", "max_steps"):
        if cfg.get("train", True) and cfg.trainer.get(key) == 0:
            raise ValueError(
                f"trainer.{key}=0 trains nothing; set it to 1 or more, or pass train=false "
                "(with ckpt_path=... to test a checkpoint)"
            )


def check_unfinished(cfg: DictConfig, saved: dict[str, Any]) -> None:
    """Refuse to resume from a checkpoint (``saved``) that has already reached
    ``trainer.max_epochs`` or ``trainer.max_steps``: Lightning would train nothing."""
    fit_loop = saved.get("loops", {}).get("fit_loop", {})
    epochs = fit_loop.get("epoch_progress", {}).get("current", {}).get("processed")
    epochs = saved.get("epoch", -1) + 1 if epochs is None else epochs
    steps = saved.get("global_step", 0)
    max_epochs, max_steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps", -1)
    if max_epochs is not None and 0 <= max_epochs <= epochs:
        sign = "=" if epochs == max_epochs else ">"
        reached = f"epoch {epochs} {sign} trainer.max_epochs={max_epochs}; raise trainer.max_epochs"
    elif max_steps is not None and 0 <= max_steps <= steps:
        reached = f"step {steps} ≥ trainer.max_steps={max_steps}; raise trainer.max_steps"
    else:
        return
    raise ValueError(
        f"nothing left to train: the checkpoint ckpt_path={cfg.ckpt_path} is at {reached} to "
        f"train on, or test it with: graphformer-eval {cli_override('ckpt_path', cfg.ckpt_path)}"
    )


def _differences(old: object, new: object, prefix: str = ""):
    """(key, old, new) for every leaf that differs between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _differences(old.get(key), new.get(key), f"{prefix}{key}.")
    elif old != new:
        yield prefix.rstrip("."), old, new
