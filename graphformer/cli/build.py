"""Config into objects, shared by ``graphformer-train`` and ``graphformer-eval``: the data
module, the model inside its task (checked against the data), callbacks and loggers.

The other steps of a run live beside this module: ``checks`` (config checks before anything
is built), ``seeding``, ``resume`` (checkpoints read back, resume checks), ``results`` (the
best checkpoint's numbers), ``report`` (what is printed), ``signals`` (SIGTERM, full disk),
``resolvers`` (the configs' ``graphformer.*`` resolvers) and ``sweep`` (the sweep summary).
"""

from __future__ import annotations

import logging

from graphformer.data.features.distances import SPD
from graphformer.tasks import GraphTask

import hydra
import lightning as L
import torch
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


def datamodule(cfg: DictConfig) -> L.LightningDataModule:
    return hydra.utils.instantiate(cfg.data)


def task(cfg: DictConfig, data: L.LightningDataModule) -> GraphTask:
    """The model inside its task, checked against the data's level."""
    model = hydra.utils.instantiate(cfg.model)
    provide_distances(model, data)  # before anything (data.level) builds a split
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


def provide_distances(model: torch.nn.Module, data: L.LightningDataModule) -> None:
    """Turn on ``data.distances`` when the model reads shortest-path distances.

    Why here and not in the configs: the model itself knows what it reads (``model.needs``,
    from its mixers: ``graphormer`` needs ``ndata['spd']``, whether it is the whole mixer
    or the global half of ``gps``), so no config has to repeat the mixer registry. The data
    configs leave ``distances`` at null, "as the model needs"; an explicit ``false`` with
    such a model is refused, naming the flag. Runs before any split is built.
    """
    if SPD not in getattr(model, "needs", ()):
        return
    if not hasattr(data, "distances"):
        raise ValueError(
            f"the model reads shortest-path distances (ndata[{SPD!r}]) but the data module "
            f"{type(data).__name__} has no distances flag; use graphformer.data.GraphDataModule "
            "or attach them with graphformer.data.features.distances.WithDistances"
        )
    if data.distances is False:
        raise ValueError(
            f"the model reads shortest-path distances (ndata[{SPD!r}], e.g. model.block.mixer="
            "graphormer) but data.distances=false; set data.distances=true (or null: on when "
            "the model needs them)"
        )
    if data.distances is None:
        log.info("the model reads shortest-path distances: data.distances turned on")
        data.distances = True


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
