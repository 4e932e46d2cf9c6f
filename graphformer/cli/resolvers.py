"""The ``graphformer.*`` OmegaConf resolvers that the configs use, registered on import.

Light on purpose (standard library and OmegaConf only): the console scripts import this
before Hydra composes a config, for ``--help`` too.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

log = logging.getLogger(__name__)

#: The Optuna study's file in the sweep folder (``hparams_search=optuna``).
OPTUNA_DB = "optuna.db"


def existing_dir(path: str) -> str:
    """``path``, created if missing (sqlite storage needs its folder before any run starts)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def direction(mode: str) -> str:
    """``max`` → ``maximize``, ``min`` → ``minimize`` (Optuna's words for optimized_mode)."""
    directions = {"max": "maximize", "min": "minimize"}
    if mode not in directions:
        raise ValueError(f"optimized_mode must be 'max' or 'min'; got {mode!r}")
    return directions[mode]


def run_id() -> str:
    """A run folder's name: the start time to the microsecond, then the process id, so that
    runs started together get folders of their own and the names still sort by time."""
    return f"{datetime.now():%Y-%m-%d_%H-%M-%S.%f}_{os.getpid()}"


def optuna_storage(resume: str | None, sweep_dir: str) -> str:
    """The sqlite URL of an Optuna search's study.

    A new search keeps its study in its own sweep folder (``<sweep dir>/optuna.db``), so two
    searches never share trials. ``resume`` (``hparams_search.resume=<an earlier sweep
    folder or its optuna.db>``) continues that search's study instead, and says so.
    """
    if not resume:
        return f"sqlite:///{Path(existing_dir(sweep_dir)).resolve() / OPTUNA_DB}"
    path = _study_file(resume)
    log.info(
        "hparams_search.resume: continuing the Optuna study in %s (%d trials so far)",
        path,
        count_trials(path),
    )
    return f"sqlite:///{path}"


def optuna_seed(seed: int | None, resume: str | None) -> int | None:
    """The sampler's seed: ``seed`` for a new search; for a resumed one, ``seed`` plus the
    number of trials already in the study, so the sampler does not replay earlier trials."""
    if seed is None or not resume:
        return seed
    return seed + count_trials(_study_file(resume))


def _study_file(resume: str) -> Path:
    path = Path(resume).expanduser().resolve()
    if path.is_dir():
        path = path / OPTUNA_DB
    if not path.is_file():
        raise FileNotFoundError(
            f"hparams_search.resume={resume!r}: no Optuna study there ({path} is not a file); "
            f"pass the sweep folder of an earlier search (it holds {OPTUNA_DB}), or leave "
            "hparams_search.resume=null to start a new search"
        )
    return path


def count_trials(path: Path) -> int:
    """How many trials the Optuna sqlite study file ``path`` holds (0 before the first)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        try:
            return connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        except sqlite3.OperationalError:  # created, no trial table yet
            return 0


#: Lightning strategies that expect one process per device started by the launcher (SLURM
#: tasks); the others (``ddp_spawn``, ``ddp_fork``, single-device) start them themselves.
_TASK_PER_DEVICE = ("ddp", "ddp_find_unused_parameters_true", "ddp_find_unused_parameters_false")


def _devices(devices: object) -> int:
    if isinstance(devices, bool) or not isinstance(devices, int | str | list | tuple):
        raise ValueError(f"trainer.devices must be a count or a list of ids; got {devices!r}")
    if isinstance(devices, list | tuple):
        return len(devices)
    if isinstance(devices, str):
        if devices.strip().lstrip("-").isdigit():
            return int(devices)
        raise ValueError(
            f"hydra/launcher=slurm needs trainer.devices as a number (GPUs per node); got "
            f"{devices!r}: set trainer.devices=1 (or 2, 4 ...)"
        )
    return devices


def slurm_gpus(accelerator: str | None, devices: object) -> int:
    """GPUs per SLURM node: ``trainer.devices`` on a GPU, none for ``accelerator=cpu``."""
    if str(accelerator).lower() in ("gpu", "cuda"):
        return _devices(devices)
    return 0


def slurm_tasks(strategy: str | None, devices: object) -> int:
    """SLURM tasks per node: one per device for DDP (as Lightning expects under SLURM), else
    one (single-device jobs, and strategies that start their own processes)."""
    if str(strategy).lower() in _TASK_PER_DEVICE:
        return _devices(devices)
    return 1


def data_info(key: str, *, _parent_: Any) -> Any:
    """``${graphformer.data_info:KEY}``: the dataset's fact ``KEY``
    (:mod:`graphformer.data.info`, imported on first use: it loads DGL)."""
    from graphformer.data.info import resolve

    return resolve(key, _parent_=_parent_)


def register() -> None:
    """Register every resolver (idempotent)."""
    OmegaConf.register_new_resolver("graphformer.data_info", data_info, replace=True)
    OmegaConf.register_new_resolver("graphformer.direction", direction, replace=True)
    OmegaConf.register_new_resolver("graphformer.mkdir", existing_dir, replace=True)
    # Cached: every reference within one config resolves to the same name (Hydra copies the
    # cache into each job of a sweep, so the sweep folder is the same for all of them).
    OmegaConf.register_new_resolver("graphformer.run_id", run_id, use_cache=True, replace=True)
    OmegaConf.register_new_resolver(
        "graphformer.optuna_storage", optuna_storage, use_cache=True, replace=True
    )
    OmegaConf.register_new_resolver(
        "graphformer.optuna_seed", optuna_seed, use_cache=True, replace=True
    )
    OmegaConf.register_new_resolver("graphformer.slurm_gpus", slurm_gpus, replace=True)
    OmegaConf.register_new_resolver("graphformer.slurm_tasks", slurm_tasks, replace=True)


register()
