r"""Shortest-path distances (Graphormer's spatial encoding), computed once per dataset with
DGL's ``shortest_dist`` and cached on disk.

For each graph, :math:`D_{ij}` is the number of edges on a shortest directed path from
node :math:`i` to node :math:`j` (``-1`` where :math:`j` is unreachable from :math:`i`),
from ``dgl.shortest_dist`` (a BFS from every node; measured 10–13 ms per random graph of
117 nodes and ~3,000 edges, CLUSTER's size, with 1–2 threads). The cache file
``<dataset cache stem>.spd.bin`` next to the dataset's own cache holds every graph's
:math:`n \times n` matrix flattened and concatenated (int16), each graph's node count and
a digest of the dataset's structure (node counts and edges, as for the positional
encodings), checked against the dataset so that a regenerated dataset invalidates it;
:mod:`graphformer.data.cache` makes writes atomic and detects damage.

:class:`WithDistances` attaches each graph's matrix as ``ndata['spd']``: row :math:`i`
holds :math:`D_{i\cdot}`, padded with ``-1`` to the width of the dataset's largest graph,
so graphs of different sizes batch with ``dgl.batch``. ``graphformer.nn.SpatialBias``
reads it. Storage grows as :math:`\sum_g n_g^2` (2 bytes each): 27 MB for 1,000
CLUSTER graphs; graphs of more than 32,767 nodes are refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphformer.data.cache import DATASET, CacheError, dataset_digest, load_or_compute_tensors
from graphformer.data.progress import progress
from graphformer.fields import SPD

import dgl
import torch

#: The distance stored for a node that cannot be reached (and for padding).
UNREACHABLE = -1
NUM_NODES = "num_nodes"
MAX_NODES = torch.iinfo(torch.int16).max


def distances_path(cache_path: str | os.PathLike) -> Path:
    """``<dir>/<stem>.spd.bin`` for a dataset cached at ``cache_path``."""
    cache_path = Path(cache_path)
    return cache_path.with_name(f"{cache_path.stem}.spd.bin")


def shortest_distances(graph: dgl.DGLGraph) -> torch.Tensor:
    """(n, n) int16 matrix of hop counts along ``graph``'s directed edges, ``[i, j]`` from
    ``i`` to ``j``, ``-1`` where unreachable."""
    if graph.num_nodes() > MAX_NODES:
        raise ValueError(
            f"shortest-path distances are stored as an n × n int16 matrix per graph; a graph "
            f"with {graph.num_nodes()} nodes exceeds {MAX_NODES} (and would need "
            f"{2 * graph.num_nodes() ** 2 / 1e9:.1f} GB). Use sparse attention on such graphs."
        )
    if not graph.is_homogeneous:
        raise ValueError(
            f"shortest-path distances need homogeneous graphs; got edge types "
            f"{graph.canonical_etypes}"
        )
    if graph.num_nodes() == 0:
        return torch.zeros(0, 0, dtype=torch.int16)
    return dgl.shortest_dist(graph).to(torch.int16)


def compute_distances(graphs: Sequence[dgl.DGLGraph]) -> dict[str, torch.Tensor]:
    """Every graph's flattened distance matrix, concatenated, each graph's node count and
    the dataset's digest (``graphformer.data.cache.dataset_digest``)."""
    flat = [
        shortest_distances(graph).reshape(-1)
        for graph in progress(graphs, len(graphs), "computing shortest-path distances")
    ]
    num_nodes = torch.tensor([graph.num_nodes() for graph in graphs], dtype=torch.int64)
    return {
        SPD: torch.cat(flat) if flat else torch.zeros(0, dtype=torch.int16),
        NUM_NODES: num_nodes,
        DATASET: dataset_digest(graphs),
    }


def load_or_compute_distances(
    graphs: Sequence[dgl.DGLGraph], path: str | os.PathLike | None
) -> dict[str, torch.Tensor]:
    """Distances of ``graphs`` from the cache at ``path``, else computed (and saved there).

    An unreadable or inconsistent cache (other node counts or edges) is recomputed with a
    ``CacheWarning``. With ``path=None`` nothing is cached.
    """
    num_nodes = torch.tensor([graph.num_nodes() for graph in graphs], dtype=torch.int64)

    def check(stored: dict[str, torch.Tensor]) -> None:
        if NUM_NODES not in stored or not torch.equal(stored[NUM_NODES], num_nodes):
            raise CacheError("node counts differ from the dataset's (was the dataset rebuilt?)")
        expected = int(num_nodes.square().sum())
        shape = tuple(stored[SPD].shape) if SPD in stored else None
        if shape != (expected,):
            raise CacheError(f"{SPD} has shape {shape}, expected ({expected},)")
        if DATASET not in stored or not torch.equal(stored[DATASET], dataset_digest(graphs)):
            raise CacheError("computed for other graphs (the dataset's edges differ)")

    return load_or_compute_tensors(
        path, "shortest-path-distance", lambda: compute_distances(graphs), check
    )


class WithDistances(torch.utils.data.Dataset):
    """``dataset`` whose graphs carry their shortest-path distances as ``ndata['spd']``.

    Each graph of :math:`n` nodes gets an (n, width) int16 field, row :math:`i` its
    distances to every node (``-1``: unreachable), padded with ``-1`` up to ``width`` = the
    largest graph's node count, so that ``dgl.batch`` can stack graphs of any size. The
    fields go on a shallow copy (``local_var``) of the sample's graph; the wrapped dataset
    is never modified. Other attributes (``num_classes``, ``level``, ...) read through.
    """

    def __init__(self, dataset: Any, distances: dict[str, torch.Tensor]) -> None:
        self.dataset = dataset
        self.distances = distances[SPD]
        self.num_nodes = distances[NUM_NODES].tolist()
        sizes = distances[NUM_NODES].square()
        self.offsets = torch.cat([sizes.new_zeros(1), torch.cumsum(sizes, 0)]).tolist()
        self.width = max(self.num_nodes, default=0)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        index = index + len(self) if index < 0 else index
        sample = self.dataset[index]
        graph = (sample[0] if isinstance(sample, (tuple, list)) else sample).local_var()
        n = self.num_nodes[index]
        if graph.num_nodes() != n:
            raise ValueError(
                f"graph {index} has {graph.num_nodes()} nodes but its distances were computed "
                f"for {n}; recompute them (load_or_compute_distances) for this dataset"
            )
        rows = self.distances.new_full((n, self.width), UNREACHABLE)
        rows[:, :n] = self.distances[self.offsets[index] : self.offsets[index + 1]].view(n, n)
        graph.ndata[SPD] = rows
        return (graph, *sample[1:]) if isinstance(sample, (tuple, list)) else graph

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
