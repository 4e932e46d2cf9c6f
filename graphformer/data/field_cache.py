r"""Node fields (:class:`graphformer.fields.Field`) computed once per dataset, cached on disk
beside it, and attached to every sample.

A field's cache file is ``<dataset cache stem>.<name>.bin`` (``.<name>-v<version>.bin`` from
version 2 on, so a changed computation never reads an old file). It holds the values of
every graph concatenated, each graph's node count and a digest of the dataset's structure
(node counts and edges, :func:`graphformer.data.cache.dataset_digest`), checked against the
dataset so that a regenerated dataset invalidates it, and, for a field with ``settings``, a
digest of them, so that values computed under other settings are not read;
:mod:`graphformer.data.cache` makes writes atomic and detects damage. A per-node field is
stored as its rows, ``(Σ n_g, ...)``; a pairwise field as each graph's
:math:`n_g \times n_g` matrix flattened (``Σ n_g²`` values), the layout of the
shortest-path distances' ``.spd.bin`` files.

:class:`WithFields` attaches each graph's values under the field's ``key``; a pairwise field's
rows are padded with the field's ``pad`` to the width of the dataset's largest graph, and
:func:`pad_pairwise` pads the samples of a batch to its widest one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphformer.data.cache import DATASET, CacheError, dataset_digest, load_or_compute_tensors
from graphformer.data.progress import progress
from graphformer.fields import FIELDS, Field, get_field

import dgl
import torch

NUM_NODES = "num_nodes"
SETTINGS = "settings_digest"


def field_path(cache_path: str | os.PathLike, field: str | Field) -> Path:
    """``<dir>/<stem>.<name>.bin`` (``<stem>.<name>-v<version>.bin`` for versions ≥ 2) for a
    dataset cached at ``cache_path``."""
    field = get_field(field)
    cache_path = Path(cache_path)
    suffix = field.name if field.version == 1 else f"{field.name}-v{field.version}"
    return cache_path.with_name(f"{cache_path.stem}.{suffix}.bin")


def settings_digest(field: str | Field) -> torch.Tensor:
    """Digest (16 uint8) of ``field``'s name, version and ``settings``."""
    field = get_field(field)
    settings = repr((field.name, field.version, field.settings))
    digest = hashlib.blake2b(settings.encode(), digest_size=16).digest()
    return torch.frombuffer(bytearray(digest), dtype=torch.uint8)


def compute_field(field: str | Field, graphs: Sequence[dgl.DGLGraph]) -> dict[str, torch.Tensor]:
    """``field`` of every graph, concatenated (pairwise matrices flattened), each graph's node
    count, the dataset's digest and, for a field with ``settings``, their digest."""
    field = get_field(field)
    what = f"computing {field.description or field.name}"
    values = [field(graph) for graph in progress(graphs, len(graphs), what)]
    if field.pairwise:
        values = [value.reshape(-1) for value in values]
    result = {
        field.name: torch.cat(values) if values else torch.zeros(0),
        NUM_NODES: torch.tensor([graph.num_nodes() for graph in graphs], dtype=torch.int64),
        DATASET: dataset_digest(graphs),
    }
    if field.settings:
        result[SETTINGS] = settings_digest(field)
    return result


def load_or_compute_field(
    field: str | Field, graphs: Sequence[dgl.DGLGraph], path: str | os.PathLike | None
) -> dict[str, torch.Tensor]:
    """``field`` of ``graphs`` from the cache at ``path``, else computed (and saved there).

    An unreadable or inconsistent cache (other node counts or edges) is recomputed with a
    ``CacheWarning``. With ``path=None`` nothing is cached.
    """
    field = get_field(field)
    num_nodes = torch.tensor([graph.num_nodes() for graph in graphs], dtype=torch.int64)

    def check(stored: dict[str, torch.Tensor]) -> None:
        if NUM_NODES not in stored or not torch.equal(stored[NUM_NODES], num_nodes):
            raise CacheError("node counts differ from the dataset's (was the dataset rebuilt?)")
        rows = int(num_nodes.square().sum() if field.pairwise else num_nodes.sum())
        shape = tuple(stored[field.name].shape) if field.name in stored else None
        if not shape or shape[0] != rows or (field.pairwise and len(shape) != 1):
            expected = f"({rows},)" if field.pairwise else f"({rows}, ...)"
            raise CacheError(f"{field.name} has shape {shape}, expected {expected}")
        if field.settings and (
            SETTINGS not in stored or not torch.equal(stored[SETTINGS], settings_digest(field))
        ):
            raise CacheError(
                "computed with other settings (an older graphformer, or another DGL or SciPy)"
            )
        if DATASET not in stored or not torch.equal(stored[DATASET], dataset_digest(graphs)):
            raise CacheError("computed for other graphs (the dataset's edges differ)")

    # "shortest-path distances" → "shortest-path-distance cache ..." in the warning;
    # "positional encodings (LapPE, k=8)" → "positional-encoding cache ..."
    what = (field.description or field.name).split("(")[0].strip()
    what = what.replace(" ", "-").removesuffix("s")
    return load_or_compute_tensors(path, what, lambda: compute_field(field, graphs), check)


def check_provided(
    field: str | Field, graphs: Sequence[dgl.DGLGraph], dataset: str = "the dataset"
) -> None:
    """Raise ValueError unless every graph carries the provided ``field`` (one that the
    dataset writes, ``Field.provided_by``, e.g. 3D coordinates) with one row per node.

    Such a field is neither computed nor cached: the samples already hold it. The error
    names the first graph without it, the field and the data that provides it."""
    field = get_field(field)
    for index, graph in enumerate(graphs):
        if field.name not in graph.ndata:
            raise ValueError(field.missing(graph, f"graph {index} of {dataset}"))
        value = graph.ndata[field.name]
        if value.shape[0] != graph.num_nodes():  # DGL enforces it; kept for stand-ins
            raise ValueError(
                f"graph {index} of {dataset}: ndata[{field.name!r}] has {value.shape[0]} "
                f"rows for {graph.num_nodes()} nodes"
            )


def sample_graph(sample: Any) -> dgl.DGLGraph:
    """The graph of a dataset sample: the sample itself, or the first item of a
    ``(graph, label)`` pair."""
    graph = sample[0] if isinstance(sample, (tuple, list)) else sample
    if not isinstance(graph, dgl.DGLGraph):
        raise TypeError(
            "dataset samples must be a DGLGraph or a (DGLGraph, label) pair; got "
            f"{type(sample).__name__}"
        )
    return graph


class WithFields(torch.utils.data.Dataset):
    """``dataset`` whose graphs carry the cached ``fields`` in ``ndata``.

    ``values`` maps each field name to what :func:`load_or_compute_field` returned. Each
    access attaches the fields to a shallow copy (``local_var``) of the sample's graph, so
    the wrapped dataset's features are never modified (only DGL's own per-graph cache of
    its node and edge counts is filled on the source graph, which the copies then share,
    so that ``dgl.batch`` does not rebuild it per copy); a pairwise field of a graph of
    :math:`n` nodes is an (n, width) tensor, row :math:`i` its values for every node of the
    sample, padded with the field's ``pad`` up to ``width`` = the largest graph's node
    count. Other
    attributes (``info``, ``num_classes``, ...) read through.
    """

    #: What the fields are, in messages.
    what = "fields"

    def __init__(self, dataset: Any, values: dict[str, dict[str, torch.Tensor]]) -> None:
        self.dataset = dataset
        # name -> (ndata key, pad: None for a per-node field, its values, each graph's offset)
        self.fields: dict[str, tuple[str, int | float | None, torch.Tensor, list[int]]] = {}
        self.num_nodes: list[int] = []
        for name, stored in values.items():
            field = get_field(name)
            pad = field.pad
            self.num_nodes = stored[NUM_NODES].tolist()
            sizes = stored[NUM_NODES] if pad is None else stored[NUM_NODES].square()
            offsets = torch.cat([sizes.new_zeros(1), torch.cumsum(sizes, 0)]).tolist()
            self.fields[name] = (field.key, pad, stored[name], offsets)
        self.width = max(self.num_nodes, default=0)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        index = index + len(self) if index < 0 else index
        sample = self.dataset[index]
        source = sample_graph(sample)
        # DGL caches an unbatched graph's batch sizes on the graph object when first asked;
        # asked on the source, the copy below inherits them, and dgl.batch (which asks each
        # sample) does not rebuild them for every copy: 4x less time in dgl.batch.
        source.batch_num_nodes(), source.batch_num_edges()
        graph = source.local_var()
        n = self.num_nodes[index] if self.num_nodes else graph.num_nodes()
        if graph.num_nodes() != n:
            raise ValueError(
                f"graph {index} has {graph.num_nodes()} nodes but its {self.what} were "
                f"computed for {n} (ndata {sorted(self.fields)}); recompute them "
                "(load_or_compute_field) for this dataset"
            )
        # The rows were checked above (n) and the cached values live on the CPU: for a
        # homogeneous CPU graph the column is set directly (half the time of ndata's
        # checked setter, which is most of this method's time on molecule-sized graphs).
        homogeneous_cpu = len(graph.ntypes) == 1 and graph.device.type == "cpu"
        for key, pad, values, offsets in self.fields.values():
            value = values[offsets[index] : offsets[index + 1]]
            if pad is not None:
                rows = values.new_full((n, self.width), pad)
                rows[:, :n] = value.view(n, n)
                value = rows
            if (
                homogeneous_cpu and value.device.type == "cpu"
            ):  # what graph.ndata[key] = value does, less its checks
                graph._node_frames[0].update_column(key, value)
            else:
                graph.ndata[key] = value
        return (graph, *sample[1:]) if isinstance(sample, (tuple, list)) else graph

    def __getitems__(self, indices: list[int]) -> FieldBatch:
        """The samples at ``indices`` (what torch's DataLoader asks for per batch): a
        :class:`FieldBatch`, a sequence of exactly ``[self[i] for i in indices]`` that
        :func:`graphformer.data.datamodule.collate` batches without building the
        per-sample copies (the source graphs batched, then each field's rows in one
        ``cat``)."""
        return FieldBatch(self, [i + len(self) if i < 0 else i for i in indices])

    def rows(self, name: str, indices: Sequence[int]) -> torch.Tensor:
        """Field ``name``'s rows of the samples at ``indices``, concatenated as ``dgl.batch``
        would concatenate them from ``self[i]`` (a pairwise field's rows padded to
        ``self.width``)."""
        _, pad, values, offsets = self.fields[name]
        parts = [values[offsets[i] : offsets[i + 1]] for i in indices]
        if pad is not None:
            sizes = [self.num_nodes[i] for i in indices]
            padded = values.new_full((sum(sizes), self.width), pad)
            start = 0
            for n, part in zip(sizes, parts, strict=True):
                padded[start : start + n, :n] = part.view(n, n)
                start += n
            return padded
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


class FieldBatch(Sequence):
    """The samples of one batch of a :class:`WithFields` dataset (``dataset.__getitems__``).

    As a sequence it is ``[dataset[i] for i in indices]`` (each item built on access), so
    any collate function can consume it; graphformer's ``collate`` instead batches
    :meth:`sources` (the wrapped dataset's samples, cheaper: no copy per sample) and then
    :meth:`attach` es every field to the batched graph in one pass per field.
    """

    def __init__(self, dataset: WithFields, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self.dataset[i] for i in self.indices[index]]
        return self.dataset[self.indices[index]]

    def sources(self) -> Sequence[Any]:
        """The wrapped dataset's samples at the indices (a :class:`FieldBatch` again when
        it is a :class:`WithFields` too)."""
        inner = self.dataset.dataset
        if isinstance(inner, WithFields):
            return inner.__getitems__(self.indices)
        return [inner[i] for i in self.indices]

    def attach(self, graph: dgl.DGLGraph, sources: Sequence[Any]) -> dgl.DGLGraph:
        """Set every field's rows on ``graph``, the ``dgl.batch`` of ``sources`` (what
        :meth:`sources` returned); each source's node count is checked against the one
        its fields were computed for, as ``dataset[i]`` checks it."""
        owner = self.dataset
        if owner.num_nodes:
            expected = [owner.num_nodes[i] for i in self.indices]
            if isinstance(sources, FieldBatch):  # checked by its own attach, in the batch
                actual = graph.batch_num_nodes().tolist()
            else:
                actual = [sample_graph(sample).num_nodes() for sample in sources]
            if actual != expected:
                pairs = enumerate(zip(actual, expected, strict=True))
                k = next(k for k, (a, b) in pairs if a != b)
                raise ValueError(
                    f"graph {self.indices[k]} has {actual[k]} nodes but its {owner.what} were "
                    f"computed for {expected[k]} (ndata {sorted(owner.fields)}); recompute "
                    "them (load_or_compute_field) for this dataset"
                )
        for name, (key, *_) in owner.fields.items():
            graph.ndata[key] = owner.rows(name, self.indices)
        return graph


def pad_pairwise(graphs: list[dgl.DGLGraph]) -> list[dgl.DGLGraph]:
    """``graphs`` whose pairwise fields (registered with a ``pad``) are padded with it to the
    widest of the batch, so ``dgl.batch`` can stack samples of datasets padded to other
    widths (:class:`WithFields` pads to its own dataset's largest graph, so within one split
    nothing is copied)."""
    for name in list(graphs[0].ndata):
        field = FIELDS.get(name)
        if field is None or not field.pairwise:
            continue
        widths = [graph.ndata[name].shape[1] for graph in graphs]
        width = max(widths)
        if min(widths) == width:
            continue
        padded = []
        for graph, own in zip(graphs, widths, strict=True):
            if own < width:
                graph = graph.local_var()
                graph.ndata[name] = torch.nn.functional.pad(
                    graph.ndata[name], (0, width - own), value=field.pad
                )
            padded.append(graph)
        graphs = padded
    return graphs
