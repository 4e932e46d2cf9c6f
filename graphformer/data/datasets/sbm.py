"""CLUSTER and PATTERN: seeded stochastic-block-model node classification datasets.

The recipes of Benchmarking GNNs (Dwivedi et al., 2020/2023, appendix on SBM datasets):

- **CLUSTER**: 6 clusters of uniform size in 5..34; an edge joins two nodes with
  probability p = 0.55 inside a cluster and q = 0.25 across. In each cluster one random
  node carries its cluster id (1..6) as feature, every other node 0. Each node's label is
  its cluster (stored 0-based, 0..5): semi-supervised clustering.
- **PATTERN**: a base SBM of 5 communities of uniform size in 5..34, p = 0.5, q = 0.35,
  node features uniform in {0, 1, 2}. A pattern P (size uniform in 5..34, internal edge
  probability 0.5, features uniform in {0, 1, 2}) is planted: each pattern node links to
  each base node with probability 0.5. Label 1 marks the pattern's nodes. As in the
  benchmark, 100 random patterns are shared by the splits, each used by
  ``ceil(num_graphs / 100)`` consecutive graphs of a split (100 / 20 / 20 at full size).

Graphs are undirected (both directions stored), without self-loops, with shuffled node
order. Graph ``i`` of a split draws from a NumPy generator seeded by
``(seed, dataset, split, i)``, so any graph can be regenerated alone and splits differ.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from graphformer.data.datasets.generated import GeneratedDataset
from graphformer.data.info import DatasetInfo
from graphformer.data.progress import progress
from graphformer.data.splits import SPLITS, check_split

import dgl
import numpy as np
import torch

#: Graphs per split in the published benchmark (``num_graphs=None``).
BENCHMARK_SIZES = {
    "CLUSTER": {"train": 10_000, "val": 1_000, "test": 1_000},
    "PATTERN": {"train": 10_000, "val": 2_000, "test": 2_000},
}
NUM_CLASSES = {"CLUSTER": 6, "PATTERN": 2}
#: Integer feature codes: CLUSTER 0 (uninformative) and 1..6; PATTERN 0..2.
NUM_CATEGORIES = {"CLUSTER": 7, "PATTERN": 3}
NUM_PATTERNS = 100
#: Bump when the generator changes: caches of another version are rebuilt.
GENERATOR_VERSION = 1

_DATASET_STREAM = {"CLUSTER": 0, "PATTERN": 1}
_PATTERN_STREAM = len(SPLITS)  # patterns are shared by the splits


def graph_rng(seed: int, name: str, split: str, index: int) -> np.random.Generator:
    """The generator of graph ``index`` of ``split``: independent of every other graph."""
    return np.random.default_rng([seed, _DATASET_STREAM[name], SPLITS.index(split), index])


def sbm_edges(
    rng: np.random.Generator, block: np.ndarray, p: float, q: float
) -> tuple[np.ndarray, np.ndarray]:
    """Edges of an SBM over nodes with block ids ``block``: each pair ``i < j`` is joined
    with probability ``p`` in the same block and ``q`` across, stored in both directions."""
    i, j = np.triu_indices(len(block), k=1)
    keep = rng.random(len(i)) < np.where(block[i] == block[j], p, q)
    return _both_directions(i[keep], j[keep])


def _both_directions(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([i, j]), np.concatenate([j, i])


def _graph(src: np.ndarray, dst: np.ndarray, feat: np.ndarray, label: np.ndarray) -> dgl.DGLGraph:
    graph = dgl.graph((torch.from_numpy(src), torch.from_numpy(dst)), num_nodes=len(feat))
    graph.ndata["feat"] = torch.from_numpy(feat).long()
    graph.ndata["label"] = torch.from_numpy(label).long()
    return graph


def _block_sizes(rng: np.random.Generator, count: int, size_range: tuple[int, int]) -> np.ndarray:
    low, high = size_range
    return rng.integers(low, high + 1, size=count)


def cluster_graph(
    rng: np.random.Generator,
    num_clusters: int = 6,
    size_range: tuple[int, int] = (5, 34),
    p: float = 0.55,
    q: float = 0.25,
) -> dgl.DGLGraph:
    """One CLUSTER graph: ``ndata['feat']`` codes 0..num_clusters, ``['label']`` 0-based."""
    sizes = _block_sizes(rng, num_clusters, size_range)
    cluster = np.repeat(np.arange(num_clusters), sizes)[rng.permutation(int(sizes.sum()))]
    src, dst = sbm_edges(rng, cluster, p, q)
    # Node order is a uniform shuffle, so each cluster's first node is a uniform pick.
    _, informative = np.unique(cluster, return_index=True)
    feat = np.zeros(len(cluster), dtype=np.int64)
    feat[informative] = cluster[informative] + 1
    return _graph(src, dst, feat, cluster)


@dataclass(frozen=True)
class Pattern:
    """A PATTERN subgraph: dense symmetric adjacency (m, m) without loops, features (m,)."""

    adjacency: np.ndarray
    feat: np.ndarray


def random_pattern(
    rng: np.random.Generator,
    size_range: tuple[int, int] = (5, 34),
    p: float = 0.5,
    vocab_size: int = 3,
) -> Pattern:
    """A random pattern: size uniform in ``size_range``, edges w.p. ``p``, uniform features."""
    (size,) = _block_sizes(rng, 1, size_range)
    upper = np.triu(rng.random((size, size)) < p, k=1)
    return Pattern(adjacency=upper | upper.T, feat=rng.integers(0, vocab_size, size=size))


def pattern_graph(
    rng: np.random.Generator,
    pattern: Pattern,
    num_communities: int = 5,
    size_range: tuple[int, int] = (5, 34),
    p: float = 0.5,
    q: float = 0.35,
    p_attach: float = 0.5,
    vocab_size: int = 3,
) -> dgl.DGLGraph:
    """One PATTERN graph: a base SBM with ``pattern`` planted; label 1 on pattern nodes."""
    sizes = _block_sizes(rng, num_communities, size_range)
    num_base, size = int(sizes.sum()), len(pattern.feat)
    community = np.concatenate([np.repeat(np.arange(num_communities), sizes), np.full(size, -1)])
    local = np.concatenate([np.full(num_base, -1), np.arange(size)])  # index inside pattern
    feat = np.concatenate([rng.integers(0, vocab_size, size=num_base), pattern.feat])
    order = rng.permutation(num_base + size)
    community, local, feat = community[order], local[order], feat[order]

    i, j = np.triu_indices(len(order), k=1)
    in_pattern_i, in_pattern_j = local[i] >= 0, local[j] >= 0
    prob = np.where(community[i] == community[j], p, q)
    prob = np.where(in_pattern_i ^ in_pattern_j, p_attach, prob)
    keep = rng.random(len(i)) < prob
    inside = in_pattern_i & in_pattern_j
    keep[inside] = pattern.adjacency[local[i[inside]], local[j[inside]]]
    src, dst = _both_directions(i[keep], j[keep])
    return _graph(src, dst, feat, (local >= 0).astype(np.int64))


def generate(name: str, split: str, num_graphs: int, seed: int = 0) -> list[dgl.DGLGraph]:
    """The ``num_graphs`` graphs of ``split`` of CLUSTER or PATTERN for ``seed``."""
    name, split = check_name(name), check_split(split)
    indices = progress(range(num_graphs), num_graphs, f"generating {name} {split} graphs")
    if name == "CLUSTER":
        return [cluster_graph(graph_rng(seed, name, split, i)) for i in indices]
    per_pattern = math.ceil(num_graphs / NUM_PATTERNS)
    patterns: dict[int, Pattern] = {}
    graphs = []
    for i in indices:
        k = i // per_pattern
        if k not in patterns:
            patterns[k] = random_pattern(
                np.random.default_rng([seed, _DATASET_STREAM[name], _PATTERN_STREAM, k])
            )
        graphs.append(pattern_graph(graph_rng(seed, name, split, i), patterns[k]))
    return graphs


def sbm_info(name: str) -> DatasetInfo:
    """CLUSTER's or PATTERN's facts: node classification over integer feature codes."""
    name = check_name(name)
    return DatasetInfo(
        level="node",
        task="classification",
        out_dim=NUM_CLASSES[name],
        num_categories=NUM_CATEGORIES[name],
    )


def check_name(name: str) -> str:
    """``name`` upper-cased if it is CLUSTER or PATTERN, else a ValueError listing them."""
    if not isinstance(name, str) or name.upper() not in BENCHMARK_SIZES:
        raise ValueError(f"SBM dataset name must be one of {sorted(BENCHMARK_SIZES)}; got {name!r}")
    return name.upper()


class SBMDataset(GeneratedDataset):
    """One split of CLUSTER or PATTERN, generated once and cached in ``root``.

    ``dataset[i]`` is a DGLGraph with ``ndata['feat']`` (int64 codes below
    ``info.num_categories``) and ``ndata['label']`` (int64 classes below ``info.out_dim``).

    Parameters
    ----------
    name : ``'CLUSTER'`` or ``'PATTERN'``.
    split : ``'train'``, ``'val'`` or ``'test'``.
    num_graphs : graphs in the split; ``None`` takes the benchmark's size
        (CLUSTER 10000 / 1000 / 1000, PATTERN 10000 / 2000 / 2000).
    seed : non-negative base seed; the graphs are a pure function of
        (name, split, index, seed).
    root : cache directory (default: DGL's download dir, ``$DGL_DOWNLOAD_DIR`` or ``~/.dgl``).
        The cache file is :attr:`cache_path`; an unreadable or inconsistent one is rebuilt
        with a :class:`~graphformer.data.cache.CacheWarning`.
    """

    @classmethod
    def describe(cls, name: str = "CLUSTER", **_: object) -> DatasetInfo:
        """The :class:`~graphformer.data.DatasetInfo` of ``name`` (the other arguments
        change nothing)."""
        return sbm_info(name)

    def __init__(
        self,
        name: str = "CLUSTER",
        split: str = "train",
        num_graphs: int | None = None,
        seed: int = 0,
        root: str | os.PathLike | None = None,
        verbose: bool = False,
    ) -> None:
        name, self.split = check_name(name), check_split(split)
        if num_graphs is None:
            num_graphs = BENCHMARK_SIZES[name][split]
        if isinstance(num_graphs, bool) or not isinstance(num_graphs, int) or num_graphs < 1:
            raise ValueError(
                f"num_graphs must be a positive int or None (the benchmark size, "
                f"{BENCHMARK_SIZES[name][split]} for {name} {split}); got {num_graphs!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int; got {seed!r}")
        self.num_graphs, self.seed = num_graphs, seed
        self.info = sbm_info(name)
        super().__init__(name, root, verbose)

    def generator_version(self) -> int:
        return GENERATOR_VERSION

    def generate(self) -> list[dgl.DGLGraph]:
        return generate(self.name, self.split, self.num_graphs, self.seed)
