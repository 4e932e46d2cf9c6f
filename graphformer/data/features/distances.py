r"""Shortest-path distances (Graphormer's spatial encoding), computed once per dataset and
cached on disk: the ``spd`` field of :mod:`graphformer.fields` through the generic field
cache of :mod:`graphformer.data.field_cache`.

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

from graphformer.data.field_cache import (
    NUM_NODES,
    WithFields,
    compute_field,
    field_path,
    load_or_compute_field,
)
from graphformer.fields import MAX_SPD_NODES, SPD, UNREACHABLE, shortest_distances

import dgl
import torch

MAX_NODES = MAX_SPD_NODES
__all__ = [
    "MAX_NODES",
    "NUM_NODES",
    "SPD",
    "UNREACHABLE",
    "WithDistances",
    "compute_distances",
    "distances_path",
    "load_or_compute_distances",
    "shortest_distances",
]


def distances_path(cache_path: str | os.PathLike) -> Path:
    """``<dir>/<stem>.spd.bin`` for a dataset cached at ``cache_path``."""
    return field_path(cache_path, SPD)


def compute_distances(graphs: Sequence[dgl.DGLGraph]) -> dict[str, torch.Tensor]:
    """Every graph's flattened distance matrix, concatenated, each graph's node count and
    the dataset's digest (``graphformer.data.cache.dataset_digest``)."""
    return compute_field(SPD, graphs)


def load_or_compute_distances(
    graphs: Sequence[dgl.DGLGraph], path: str | os.PathLike | None
) -> dict[str, torch.Tensor]:
    """Distances of ``graphs`` from the cache at ``path``, else computed (and saved there).

    An unreadable or inconsistent cache (other node counts or edges) is recomputed with a
    ``CacheWarning``. With ``path=None`` nothing is cached.
    """
    return load_or_compute_field(SPD, graphs, path)


class WithDistances(WithFields):
    """``dataset`` whose graphs carry their shortest-path distances as ``ndata['spd']``.

    Each graph of :math:`n` nodes gets an (n, width) int16 field, row :math:`i` its
    distances to every node (``-1``: unreachable), padded with ``-1`` up to ``width`` = the
    largest graph's node count, so that ``dgl.batch`` can stack graphs of any size. The
    fields go on a shallow copy (``local_var``) of the sample's graph; the wrapped dataset
    is never modified. Other attributes (``info``, ``num_classes``, ...) read through.
    """

    what = "distances"

    def __init__(self, dataset: Any, distances: dict[str, torch.Tensor]) -> None:
        super().__init__(dataset, {SPD: distances})
