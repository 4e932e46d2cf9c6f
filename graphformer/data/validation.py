"""Checks every sample of a dataset once, before training: which graph is wrong, and how.

Errors (:class:`DataError`) stop the run: a graph without nodes, missing node features or
labels, NaN/inf features, class labels outside ``[0, num_classes)``, features whose width
or dtype differs from the first graph's (``dgl.batch`` could not join them). Warnings
(:class:`DataWarning`) flag what is legal but often unintended: graphs without edges and
duplicate edges (attention and GCN count each copy).
"""

from __future__ import annotations

import warnings
from typing import Any

import dgl
import torch

#: How many offending graphs or rows a message lists.
SHOWN = 5


class DataError(ValueError):
    """A dataset sample that graphformer cannot train on."""


class DataWarning(UserWarning):
    """A dataset sample that is legal but probably not what was meant."""


def check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> Any:
    """``value`` if it is an int ≥ ``minimum`` (or None when allowed), else a ValueError."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive int" if minimum == 1 else f"an int ≥ {minimum}"
        raise ValueError(f"{name} must be {kind}{' or None' if allow_none else ''}; got {value!r}")
    return value


def split_sample(sample: Any) -> tuple[dgl.DGLGraph, torch.Tensor | None]:
    """``(graph, label)`` of a dataset item: a graph (labels in ``ndata``) or a pair (a
    python number as label becomes a tensor)."""
    if isinstance(sample, dgl.DGLGraph):
        return sample, None
    return sample[0], torch.as_tensor(sample[1])


def feature_schema(graph: dgl.DGLGraph) -> dict[str, tuple]:
    """Per-row shape and dtype of ``ndata['feat']`` and ``edata['feat']``: what
    ``dgl.batch`` needs to agree across graphs."""
    return {
        f"{kind}['feat']": (tuple(data["feat"].shape[1:]), data["feat"].dtype)
        for kind, data in (("ndata", graph.ndata), ("edata", graph.edata))
        if "feat" in data
    }


def check_dataset(dataset: Any, split: str, name: str) -> None:
    """Raise :class:`DataError` at the first bad sample of ``dataset``; warn once per kind
    of suspicious sample. ``name`` and ``split`` only label the messages."""
    info = getattr(dataset, "info", None)  # a DatasetInfo; duck-typed num_classes without one
    num_classes = info.num_classes if info is not None else getattr(dataset, "num_classes", None)
    without_edges, with_duplicates = [], []
    schema = None
    for index in range(len(dataset)):
        graph, label = split_sample(dataset[index])
        where = f"graph {index} of the {split} split of {name}"
        check_graph(graph, label, num_classes, where)
        schema = schema or feature_schema(graph)
        for key, (shape, dtype) in feature_schema(graph).items():
            if key in schema and schema[key] != (shape, dtype):
                raise DataError(
                    f"{where} has {key} of per-row shape {shape} and dtype {dtype}, but graph "
                    f"0 has {schema[key][0]} and {schema[key][1]}; every graph needs the same "
                    "feature width and dtype (dgl.batch joins them): pad, cut or convert them"
                )
        if graph.num_edges() == 0:
            without_edges.append(index)
        elif has_duplicate_edges(graph):
            with_duplicates.append(index)
    if without_edges:
        warnings.warn(
            f"{len(without_edges)} graph(s) of the {split} split of {name} have no edges "
            f"(first: {without_edges[:SHOWN]}); their nodes only see themselves",
            DataWarning,
            stacklevel=2,
        )
    if with_duplicates:
        warnings.warn(
            f"{len(with_duplicates)} graph(s) of the {split} split of {name} have duplicate "
            f"edges (first: {with_duplicates[:SHOWN]}); attention and GCN count every copy. "
            "Deduplicate with dgl.to_simple(graph) if that is not intended",
            DataWarning,
            stacklevel=2,
        )


def check_graph(
    graph: dgl.DGLGraph, label: torch.Tensor | None, num_classes: int | None, where: str
) -> None:
    """The per-sample checks of :func:`check_dataset`."""
    if graph.num_nodes() == 0:
        raise DataError(f"{where} has no nodes; remove it from the dataset")
    if "feat" not in graph.ndata:
        raise DataError(
            f"{where} has no node features ndata['feat'] (it has {sorted(graph.ndata)}); "
            "store the model's input features under 'feat'"
        )
    feat = graph.ndata["feat"]
    if feat.is_floating_point() and not torch.isfinite(feat.sum()):
        bad = (~torch.isfinite(feat.reshape(len(feat), -1))).any(dim=1).nonzero().squeeze(1)
        if len(bad):
            raise DataError(
                f"{where} has NaN or inf in ndata['feat'] at {len(bad)} node(s), first "
                f"{bad[:SHOWN].tolist()}; clean or impute them before training"
            )
    if label is None:
        if "label" not in graph.ndata:
            raise DataError(
                f"{where} has no labels: neither ndata['label'] nor a (graph, label) pair"
            )
        label = graph.ndata["label"]
    if num_classes is not None and not label.is_floating_point() and label.numel():
        low, high = int(label.min()), int(label.max())
        if low < 0 or high >= num_classes:
            raise DataError(
                f"{where} has class labels in [{low}, {high}], outside [0, {num_classes}) "
                f"for num_classes={num_classes}; fix the labels or the dataset's num_classes"
            )


def has_duplicate_edges(graph: dgl.DGLGraph) -> bool:
    """Whether some (src, dst) pair occurs more than once."""
    src, dst = graph.edges()
    return len(torch.unique(src * graph.num_nodes() + dst)) < graph.num_edges()
