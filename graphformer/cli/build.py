"""Config into objects, shared by ``graphformer-train`` and ``graphformer-eval``: the data
module, the model inside its task (checked against the data), callbacks and loggers.

The other steps of a run live beside this module: ``checks`` (config checks before anything
is built), ``seeding``, ``resume`` (checkpoints read back, resume checks), ``results`` (the
best checkpoint's numbers), ``report`` (what is printed), ``signals`` (SIGTERM, full disk),
``resolvers`` (the configs' ``graphformer.*`` resolvers) and ``sweep`` (the sweep summary).
"""

from __future__ import annotations

import inspect
import logging

from graphformer.tasks import GraphTask

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


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
    the data's level."""
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
    return result


def _takes(node: DictConfig, argument: str) -> bool:
    """Whether the ``_target_`` of ``node`` takes ``argument`` (or ``**kwargs``)."""
    try:
        target = hydra.utils.get_object(node._target_)
        parameters = inspect.signature(target).parameters.values()
    except Exception:  # unknowable: let instantiation say what is wrong
        return True
    return any(p.name == argument or p.kind is p.VAR_KEYWORD for p in parameters)


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
