"""The dataset contract: what a dataset is, declared once on its class as a :class:`DatasetInfo`.

Models, tasks and configs read these facts from here: the data module exposes them
(``data.out_dim``, ...), and the configs read them through the OmegaConf resolver
``${graphformer.data_info:KEY}``, which finds the dataset class named by the data config's
``dataset._target_`` and asks it, without building the dataset. A dataset class declares
either a class attribute ``info = DatasetInfo(...)``, or, where the facts depend on its
arguments (SBMDataset's ``name``), a classmethod ``describe(**arguments) -> DatasetInfo``
and sets ``self.info`` from it in ``__init__``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import Any

from graphformer.data.splits import SPLITS
from graphformer.fields import LEVELS

from omegaconf import DictConfig, OmegaConf

#: What a dataset's labels are: classes (out_dim of them) or real values (out_dim per target).
TASKS = ("classification", "regression")


def _optional_positive(owner: str, name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{owner}.{name} must be a positive int or None; got {value!r}")


@dataclass(frozen=True)
class DatasetInfo:
    """The facts about a dataset that models, tasks and configs need.

    Parameters
    ----------
    level : ``'node'`` (one label per node; samples are graphs) or ``'graph'`` (one label
        per sample; samples are ``(graph, label)`` pairs).
    task : ``'classification'`` (integer labels below ``out_dim``) or ``'regression'``
        (``out_dim`` real values per label).
    out_dim : the model's output width: number of classes, or of regression targets.
    in_dim : width of continuous node features ``ndata['feat']`` (float), or ``None``.
    num_categories : vocabulary of integer node features (codes below it), or ``None``.
        At most one of ``in_dim`` and ``num_categories``.
    edge_in_dim, edge_categories : the same for ``edata['feat']``; both ``None`` when the
        graphs carry no edge features.
    splits : the splits the dataset provides (a subset of ``('train', 'val', 'test')``).
    """

    level: str
    task: str
    out_dim: int
    in_dim: int | None = None
    num_categories: int | None = None
    edge_in_dim: int | None = None
    edge_categories: int | None = None
    splits: tuple[str, ...] = SPLITS

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"DatasetInfo.level must be one of {LEVELS}; got {self.level!r}")
        if self.task not in TASKS:
            raise ValueError(f"DatasetInfo.task must be one of {TASKS}; got {self.task!r}")
        if isinstance(self.out_dim, bool) or not isinstance(self.out_dim, int) or self.out_dim < 1:
            raise ValueError(
                f"DatasetInfo.out_dim must be a positive int (classes or regression targets); "
                f"got {self.out_dim!r}"
            )
        for name in ("in_dim", "num_categories", "edge_in_dim", "edge_categories"):
            _optional_positive("DatasetInfo", name, getattr(self, name))
        for kind, width, vocab in (
            ("node", "in_dim", "num_categories"),
            ("edge", "edge_in_dim", "edge_categories"),
        ):
            if getattr(self, width) is not None and getattr(self, vocab) is not None:
                raise ValueError(
                    f"DatasetInfo: {kind} features are continuous ({width}="
                    f"{getattr(self, width)}) or integer codes ({vocab}={getattr(self, vocab)}), "
                    "not both; set the other to None"
                )
        splits = tuple(self.splits) if isinstance(self.splits, (tuple, list)) else None
        if not splits or any(split not in SPLITS for split in splits):
            raise ValueError(
                f"DatasetInfo.splits must be a non-empty tuple of {SPLITS}; got {self.splits!r}"
            )
        object.__setattr__(self, "splits", splits)

    @property
    def num_classes(self) -> int | None:
        """``out_dim`` for classification, ``None`` for regression."""
        return self.out_dim if self.task == "classification" else None


#: The keys ``${graphformer.data_info:KEY}`` resolves.
KEYS = (*(field.name for field in fields(DatasetInfo)), "num_classes")


def dataset_info(dataset: Any) -> DatasetInfo | None:
    """``dataset.info`` (through wrappers such as ``WithFields``), or ``None`` for a
    dataset that declares none."""
    info = getattr(dataset, "info", None)
    if info is not None and not isinstance(info, DatasetInfo):
        raise TypeError(
            f"{type(dataset).__name__}.info must be a graphformer.data.DatasetInfo; got "
            f"{type(info).__name__}"
        )
    return info


def class_info(dataset_class: type, **arguments: Any) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``dataset_class`` built with ``arguments``, without
    building it: its ``describe(**arguments)`` classmethod, else its ``info`` attribute."""
    describe = getattr(dataset_class, "describe", None)
    info = describe(**arguments) if callable(describe) else getattr(dataset_class, "info", None)
    if not isinstance(info, DatasetInfo):
        name = getattr(dataset_class, "__qualname__", repr(dataset_class))
        raise TypeError(
            f"{name} declares no DatasetInfo: give the class an attribute `info = "
            "DatasetInfo(level=..., task=..., out_dim=..., ...)` (or a classmethod "
            "`describe(**arguments)` when the facts depend on its arguments), or state the "
            "facts in the data config (data.out_dim: ..., data.level: ..., ...)"
        )
    return info


def config_info(data: DictConfig) -> DatasetInfo:
    """The :class:`DatasetInfo` of the dataset a data config names (``data.dataset``'s
    ``_target_`` and its arguments)."""
    node = data.get("dataset") if isinstance(data, DictConfig) else None
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if not isinstance(target, str):
        raise ValueError(
            "${graphformer.data_info:...} reads the dataset class from data.dataset._target_, "
            "but this data config has none; state the facts (level, out_dim, ...) in it instead"
        )
    module, _, name = target.rpartition(".")
    try:
        dataset_class = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"data.dataset._target_={target!r} cannot be imported: {error}") from None
    arguments = {key: node[key] for key in node if not (key.startswith("_") and key.endswith("_"))}
    return class_info(dataset_class, **arguments)


def resolve(key: str, *, _parent_: Any) -> Any:
    """``${graphformer.data_info:KEY}`` inside a data config: ``KEY`` of its dataset's info."""
    if key not in KEYS:
        raise ValueError(f"${{graphformer.data_info:{key}}}: KEY must be one of {KEYS}")
    value = getattr(config_info(_parent_), key)
    return list(value) if isinstance(value, tuple) else value


def register_resolver() -> None:
    """Register ``graphformer.data_info`` with OmegaConf (done when graphformer.data loads)."""
    OmegaConf.register_new_resolver("graphformer.data_info", resolve, replace=True)


register_resolver()
