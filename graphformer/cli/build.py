"""The steps shared by ``graphformer-train`` and ``graphformer-eval``: turn config into objects."""

from __future__ import annotations

import contextlib
import errno
import inspect
import logging
import os
import re
import shlex
import signal
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from graphformer.cli import checkpoint, console, tracking, typecheck
from graphformer.tasks import GraphTask
from graphformer.tasks.base import CONFIG_KEY

import dgl
import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
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


def _run_id() -> str:
    """A run folder's name: the start time to the microsecond, then the process id, so that
    runs started together get folders of their own and the names still sort by time."""
    return f"{datetime.now():%Y-%m-%d_%H-%M-%S.%f}_{os.getpid()}"


# Cached: every reference within one config resolves to the same name.
OmegaConf.register_new_resolver("graphformer.run_id", _run_id, use_cache=True, replace=True)


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


def model(cfg: DictConfig) -> torch.nn.Module:
    """The model of ``cfg.model``; built before the data, which computes what it ``needs``."""
    return hydra.utils.instantiate(cfg.model)


def datamodule(cfg: DictConfig, model: torch.nn.Module | None = None) -> L.LightningDataModule:
    """The data of ``cfg.data``, asked for the node fields ``model`` reads (``model.needs``,
    e.g. ``("spd",)`` for Graphormer: see :mod:`graphformer.fields`) in the one call that
    builds it, together with any ``data.fields`` of the config. A data config that refuses a
    needed field (``distances: false`` with Graphormer) fails here, naming the key."""
    needs = tuple(getattr(model, "needs", ()) or ())
    if not needs:
        return hydra.utils.instantiate(cfg.data)
    if not _takes(cfg.data, "fields"):
        raise ValueError(
            f"the model reads the node fields {list(needs)} but the data module "
            f"{cfg.data.get('_target_')} takes no fields argument; use "
            "graphformer.data.GraphDataModule, or attach them to the samples with "
            "graphformer.data.field_cache.WithFields"
        )
    given = list(cfg.data.get("fields") or ())
    fields = given + [name for name in needs if name not in given]
    try:
        return hydra.utils.instantiate(cfg.data, fields=fields)
    except InstantiationException as error:
        # The data module's own refusal of the fields (ValueError) says what to do: show it.
        if isinstance(error.__cause__, ValueError):
            raise error.__cause__ from None
        raise


def task(
    cfg: DictConfig, data: L.LightningDataModule, model: torch.nn.Module | None = None
) -> GraphTask:
    """``model`` (built from ``cfg.model`` when not given) inside its task, checked against
    the data's level and encodings."""
    if model is None:
        model = hydra.utils.instantiate(cfg.model)
    result: GraphTask = hydra.utils.instantiate(cfg.task, model=model)
    _check_optimizer(cfg, result)
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


def _takes(node: DictConfig, argument: str) -> bool:
    """Whether the ``_target_`` of ``node`` takes ``argument`` (or ``**kwargs``)."""
    try:
        target = hydra.utils.get_object(node._target_)
        parameters = inspect.signature(target).parameters.values()
    except Exception:  # unknowable: let instantiation say what is wrong
        return True
    return any(p.name == argument or p.kind is p.VAR_KEYWORD for p in parameters)


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


def _check_optimizer(cfg: DictConfig, task: GraphTask) -> None:
    """Build the optimizer and scheduler once now (cheap), so torch's own checks of their
    settings (a negative ``lr`` ...) fail before the data is built, naming the config keys."""
    try:
        task.configure_optimizers()
    except (ValueError, TypeError) as error:
        settings = {
            f"task.{key}": OmegaConf.to_container(cfg.task[key], resolve=True)
            for key in ("optimizer", "scheduler")
            if cfg.task.get(key)
        }
        raise ValueError(
            f"the optimizer or scheduler refuses its settings: {error}. The settings: "
            f"{settings}; fix them, e.g. task.optimizer.lr=1e-3"
        ) from error


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


def report(
    loggers: list, results: dict[str, float], checkpoints: dict[str, str | None], commands=()
) -> None:
    """Tell the user where the checkpoints and the wandb run are, the headline numbers and
    the ``commands`` to go on with (each a ``(what, command)`` pair)."""
    lines = ["graphformer run finished:"]
    lines += [f"  {label}: {path}" for label, path in checkpoints.items() if path]
    run_dir = tracking.wandb_run_dir(loggers)
    if run_dir:
        lines.append(f"  wandb run: {run_dir}  (upload later with: wandb sync {run_dir})")
    for key in sorted(results):
        if key.startswith(("val/", "test/")):
            lines.append(f"  {key} = {results[key]:.4f}")
    lines += [f"  {what}: {command}" for what, command in commands]
    console.show("\n".join(lines))


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


def command(program: str, *overrides: str) -> str:
    """``program`` with this job's command-line overrides, those named in ``overrides``
    (``key=value`` words from :func:`cli_override`) replacing any with the same key."""
    keys = {override.split("=", 1)[0].strip("'") for override in overrides}
    given = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    kept = [shlex.quote(o) for o in given if o.split("=", 1)[0].lstrip("+~") not in keys]
    return " ".join([program, *kept, *overrides])


#: errno values of a full disk or quota.
FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def name_full_disk(output_dir: str) -> Iterator[None]:
    """Re-raise a full disk met while training or testing (a logger's metrics file, wandb's
    run files, a checkpoint) naming the file, the run folder and what to do; other errors
    pass through. Checkpoint writes already say so (AtomicCheckpointIO) and are kept as they are."""
    try:
        yield
    except OSError as error:
        if error.errno not in FULL or "paths.log_dir" in str(error):
            raise
        where = error.filename or f"a file under {output_dir}"
        raise OSError(
            error.errno,
            f"the disk is full ({error.strerror or error}) while writing {where}, in the run "
            f"folder {output_dir}. Free space there, or write runs elsewhere with "
            "paths.log_dir=... (or GRAPHFORMER_LOG_DIR); the last completed epoch's "
            "checkpoints/last.ckpt can be resumed with ckpt_path=...",
            error.filename,
        ) from error


@contextlib.contextmanager
def exit_on_sigterm(trainer: L.Trainer, what: str, resumable: bool) -> Iterator[None]:
    """Turn Lightning's stop on SIGTERM (a ``SystemExit`` with status 0) into exit status 143,
    so that a scheduler sees a preempted job as failed; say how to resume it if ``resumable``.

    Lightning only sets a flag in its signal handler and stops between batches, so a
    checkpoint being written is finished first; ``last.ckpt`` holds the last whole epoch.
    """
    try:
        yield
    except SIGTERMException:
        last = last_checkpoint(trainer) if resumable else None
        message = (
            f"graphformer: SIGTERM received: {what} stopped in epoch {trainer.current_epoch}, "
            f"step {trainer.global_step}"
        )
        if last:
            resume = command("graphformer-train", cli_override("ckpt_path", last))
            message += f"; resume from the last completed epoch with: {resume}"
        elif resumable:
            message += "; no epoch had completed, so there is no checkpoint to resume from"
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(128 + signal.SIGTERM) from None


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
    return OmegaConf.create(saved[CONFIG_KEY])


def check_settings(cfg: DictConfig) -> None:
    """Types of every constructor argument, and the run's switches, before anything is built."""
    typecheck.check(cfg, "data", "model", "task", "trainer", "callbacks", "logger")
    typecheck.check_flags(cfg, "train", "test")


def check_resumable(cfg: DictConfig) -> None:
    """Fail before training when ``ckpt_path`` cannot be loaded or continued: damaged, trained
    with another model or task, or already at ``trainer.max_epochs`` / ``max_steps``.

    Lists every differing key, e.g. ``model.hidden_dim: 64 in the checkpoint, 32 now``.
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
