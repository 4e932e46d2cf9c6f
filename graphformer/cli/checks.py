"""Checks of a composed config that run before anything is built (and before torch is
imported): value types, and settings that would silently do something else than asked."""

from __future__ import annotations

import difflib

from graphformer.cli import typecheck

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


def check_settings(cfg: DictConfig) -> None:
    """Types of every constructor argument, and the run's switches, before anything is built;
    first, that the data, model and task configs are not empty."""
    check_not_empty(cfg)
    typecheck.check(cfg, "data", "model", "task", "trainer", "callbacks", "logger")
    typecheck.check_flags(cfg, "train", "test")


def check_not_empty(cfg: DictConfig, groups: tuple[str, ...] = ("data", "model", "task")) -> None:
    """Refuse an empty (or missing) config of ``groups``: an empty group file (``data=empty``
    found through ``hydra.searchpath``) otherwise ends in an interpolation error about a key
    another config reads from it (``'data.out_dim' not found``)."""
    for group in groups:
        node = cfg.get(group)
        if node is None or (isinstance(node, DictConfig) and len(node) == 0):
            choice = _choice(group) or (
                cfg.hydra.runtime.choices.get(group) if "hydra" in cfg else None
            )
            raise ValueError(
                f"the {group} config is empty ({group}={choice}): it needs a _target_ and its "
                f"settings (see conf/{group}/*.yaml, e.g. the default's). Fill in the file, or "
                f"choose another {group}=..."
            )


def check_overrides(cfg: DictConfig, overrides: list[str] | None = None) -> None:
    """Refuse ``+KEY=...`` / ``++KEY=...`` overrides whose top-level ``KEY`` is neither a
    config group nor a key of the run config: nothing would read it.

    Hydra answers a misspelt group (``modle=gps``) with "to append, use +modle=gps"; that
    adds an unread key and trains the default model. ``overrides`` defaults to this job's
    command-line overrides.
    """
    if overrides is None:
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    groups = _groups(cfg)
    known = groups | {key for key in cfg if key != "hydra"}
    for override in overrides:
        if not override.startswith("+"):
            continue
        key = override.lstrip("+").split("=", 1)[0]
        top = key.split("/", 1)[0].split(".", 1)[0].split("@", 1)[0]
        if top in groups:
            continue
        # `+new=...` (no dot) always makes a new top-level key; `+top.x=...` only when top
        # came from such overrides alone.
        if "." in key and top in known and top not in _added(overrides):
            continue
        close = difflib.get_close_matches(top, sorted(known - {top}), n=1, cutoff=0.6)
        hint = ""
        if close:
            example = close[0] + override.lstrip("+")[len(top) :]
            hint = f"; did you mean {close[0]}? ({example})"
        raise ValueError(
            f"{override} adds the top-level key {top!r}, which nothing reads{hint}. "
            f"Config groups: {', '.join(sorted(groups))}."
        )


def _added(overrides: list[str]) -> set[str]:
    """Top-level keys that `+` overrides without a dot create."""
    return {
        o.lstrip("+").split("=", 1)[0]
        for o in overrides
        if o.startswith("+") and "." not in o.split("=", 1)[0]
    }


def _groups(cfg: DictConfig) -> set[str]:
    """The config groups of this run (``data``, ``model``, ... ``hparams_search``)."""
    choices = {}
    if HydraConfig.initialized():
        choices = HydraConfig.get().runtime.choices
    elif "hydra" in cfg:
        choices = cfg.hydra.runtime.choices
    return {name.split("/", 1)[0] for name in choices if not name.startswith("hydra")}


def check_task_fits_data(cfg: DictConfig) -> None:
    """Refuse, before anything is built, a task that predicts per node for data labelled per
    graph (or the other way round), naming the task configs that fit: ``data=zinc`` with the
    default ``task=node_classification`` failed inside the task with "num_classes must be an
    int ≥ 2; got 1". Data configs declare ``level`` (and ``out_dim``); task classes ``level``.
    """
    level = cfg.data.get("level") if cfg.get("data") else None
    target = cfg.task.get("_target_") if cfg.get("task") else None
    if level is None or target is None:
        return
    from hydra.utils import get_class

    if getattr(get_class(target), "level", level) == level:
        return
    fitting = []
    for path in sorted((_config_dir() / "task").glob("*.yaml")):
        task_target = OmegaConf.load(path).get("task", {}).get("_target_")
        if task_target and getattr(get_class(task_target), "level", None) == level:
            fitting.append(path.stem)
    if cfg.data.get("out_dim") == 1:  # one target value: regression first
        fitting.sort(key=lambda name: "regression" not in name)
    fitting = fitting or [f"<a task whose class predicts per {level}>"]
    data = _choice("data") or cfg.data.get("name")
    task = _choice("task") or target
    raise ValueError(
        f"data={data} is labelled per {level} (data.level={level}, data.out_dim="
        f"{cfg.data.get('out_dim')}) but task={task} predicts per "
        f"{getattr(get_class(target), 'level', '?')}; choose task={fitting[0]}"
        + (f" (other per-{level} tasks: {', '.join(fitting[1:])})" if fitting[1:] else "")
    )


def _choice(group: str) -> str | None:
    if HydraConfig.initialized():
        return HydraConfig.get().runtime.choices.get(group)
    return None


def _config_dir():
    from importlib.resources import files

    return files("graphformer.conf")
