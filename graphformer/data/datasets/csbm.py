r"""Contextual stochastic block model (CSBM): large node-classification graphs with a
controllable homophily and feature signal, generated vectorised and cached.

The model (Deshpande et al., NeurIPS 2018; the generator of many heterophily studies):

.. math::
    y_i \sim \mathrm{Uniform}\{0, \dots, C-1\}, \qquad
    x_i = \mu_{y_i} + \varepsilon_i,\ \varepsilon_i \sim \mathcal N(0, I_F), \qquad
    \mu_c = s\, g_c / \lVert g_c \rVert,\ g_c \sim \mathcal N(0, I_F)

so that :math:`\lVert \mu_c \rVert = s` (the *signal*: 0 makes the features useless,
large values make them alone sufficient). Edges: :math:`M = N \bar d / 2` undirected pairs;
each picks a uniform source :math:`i`, then with probability :math:`h` (the *homophily*)
a uniform node of :math:`i`'s class, else a uniform node of one of the other classes
(uniform). Self-loops and repeated pairs are dropped and both directions stored, so the
edge homophily (share of edges joining same-class nodes) is :math:`h` in expectation and
the mean in-degree is :math:`\approx \bar d`; :math:`h = 1/C` is the structure-free graph.

Every step is a NumPy array operation (no per-node Python loop): 1M nodes and 10M directed
edges take seconds to generate. The graph is cached at
``<root>/csbm-<settings>.bin`` (DGL's format, written atomically with a digest trailer by
:mod:`graphformer.data.cache`), so every later run, and every DDP rank, loads it instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from graphformer.data.cache import atomic_write, verify, warn_rebuild
from graphformer.data.datasets.one_graph import OneGraph
from graphformer.data.info import DatasetInfo
from graphformer.data.splits import check_split

import dgl
import numpy as np
import torch

#: Bumped when the generator's output changes for the same settings (names the cache file).
VERSION = 2


def _check(name: str, value: object, low: float, high: float | None = None, kind=int) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and isinstance(value, int)
    if not ok or value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f"≥ {low}"
        what = "an int" if kind is int else "a number"
        raise ValueError(f"csbm: {name} must be {what} {bound}; got {value!r}")


def contextual_sbm(
    num_nodes: int,
    num_classes: int = 5,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    feat_dim: int = 32,
    signal: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(src, dst, feat, label)`` of a CSBM graph (see the module docstring for the math).

    ``src``/``dst``: int64 directed edges, both directions of every undirected pair, no
    self-loops, no duplicates; ``feat``: (N, feat_dim) float32; ``label``: (N,) int64.
    """
    _check("num_nodes", num_nodes, 2)
    _check("num_classes", num_classes, 2)
    _check("avg_degree", avg_degree, 0, kind=float)
    _check("homophily", homophily, 0.0, 1.0, kind=float)
    _check("feat_dim", feat_dim, 1)
    _check("signal", signal, 0, kind=float)
    _check("seed", seed, 0)
    rng = np.random.default_rng(seed)
    label = rng.integers(num_classes, size=num_nodes)
    # Nodes grouped by class: class c's members are by_class[start[c] : start[c] + size[c]].
    by_class = np.argsort(label, kind="stable")
    size = np.bincount(label, minlength=num_classes)
    start = np.concatenate(([0], np.cumsum(size)[:-1]))
    pairs = round(num_nodes * avg_degree / 2)
    src = rng.integers(num_nodes, size=pairs)
    same = rng.random(pairs) < homophily
    other = (label[src] + rng.integers(1, num_classes, size=pairs)) % num_classes
    target = np.where(same, label[src], other)
    # A class without members (tiny graphs) sends its pairs to the source itself: dropped below.
    empty = size[target] == 0
    offset = (rng.random(pairs) * size[target]).astype(np.int64)
    dst = np.where(empty, src, by_class[np.minimum(start[target] + offset, num_nodes - 1)])
    low, high = np.minimum(src, dst), np.maximum(src, dst)
    keys = np.unique(low[low != high] * num_nodes + high[low != high])
    low, high = keys // num_nodes, keys % num_nodes
    means = rng.standard_normal((num_classes, feat_dim), dtype=np.float32)
    means *= np.float32(signal) / np.linalg.norm(means, axis=1, keepdims=True)
    feat = rng.standard_normal((num_nodes, feat_dim), dtype=np.float32)
    feat += means[label]
    return (
        np.concatenate((low, high)),
        np.concatenate((high, low)),
        feat,
        label.astype(np.int64),
    )


def random_split_masks(
    num_nodes: int, fractions: tuple[float, float], seed: int
) -> dict[str, torch.Tensor]:
    """``{train,val,test}_mask``: a seeded random split with ``fractions`` = (train, val)
    of the nodes, the rest test."""
    train, val = (float(f) for f in fractions)
    if train <= 0 or val < 0 or train + val >= 1:
        raise ValueError(
            f"csbm: split fractions (train, val) must be > 0 and ≥ 0 with a sum below 1 (the "
            f"rest is test); got {fractions!r}"
        )
    order = torch.from_numpy(np.random.default_rng(seed + 1).permutation(num_nodes))
    cut = (int(train * num_nodes), int((train + val) * num_nodes))
    masks = {}
    bounds = ((0, cut[0]), (cut[0], cut[1]), (cut[1], num_nodes))
    for name, (a, b) in zip(("train", "val", "test"), bounds, strict=True):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[order[a:b]] = True
        masks[f"{name}_mask"] = mask
    return masks


class ContextualSBMDataset(OneGraph):
    """One CSBM graph (:func:`contextual_sbm`) with ``ndata`` ``feat``, ``label`` and
    seeded random ``train_mask``/``val_mask``/``test_mask``; generated once, then loaded
    from ``<root>/csbm-....bin``.

    A single-graph, node-level dataset (every split is the same graph; the task selects
    nodes by mask), like :class:`~graphformer.data.CitationDataset`.

    Parameters
    ----------
    num_nodes, num_classes, avg_degree, homophily, feat_dim, signal, seed :
        see :func:`contextual_sbm`.
    split : ``'train'``, ``'val'`` or ``'test'``; does not change the graph.
    train_fraction, val_fraction : the random split (the rest is test).
    root : cache folder; ``None`` generates without caching.
    """

    @classmethod
    def describe(cls, num_classes: int = 5, feat_dim: int = 32, **_: object) -> DatasetInfo:
        """Node classification over ``num_classes`` classes, ``feat_dim`` float features."""
        return DatasetInfo(
            level="node", task="classification", out_dim=num_classes, in_dim=feat_dim
        )

    def __init__(
        self,
        num_nodes: int = 10_000,
        num_classes: int = 5,
        avg_degree: float = 10.0,
        homophily: float = 0.8,
        feat_dim: int = 32,
        signal: float = 1.0,
        seed: int = 0,
        split: str = "train",
        train_fraction: float = 0.5,
        val_fraction: float = 0.25,
        root: str | os.PathLike | None = None,
    ) -> None:
        check_split(split)
        settings = dict(
            num_nodes=num_nodes,
            num_classes=num_classes,
            avg_degree=avg_degree,
            homophily=homophily,
            feat_dim=feat_dim,
            signal=signal,
            seed=seed,
        )
        self.info = self.describe(num_classes, feat_dim)
        self.name, self.split, self.settings = "CSBM", split, settings
        fractions = (train_fraction, val_fraction)
        stem = (
            f"csbm-v{VERSION}-n{num_nodes}-c{num_classes}-d{avg_degree:g}-h{homophily:g}"
            f"-f{feat_dim}-s{signal:g}-seed{seed}-split{train_fraction:g}_{val_fraction:g}"
        )
        self.cache_path = None if root is None else Path(root) / f"{stem}.bin"
        self.graph = self._load()
        if self.graph is None:
            self.graph = self._generate(settings, fractions)
            if self.cache_path is not None:
                graph = self.graph
                atomic_write(self.cache_path, lambda tmp: dgl.save_graphs(tmp, [graph]))

    def _load(self) -> dgl.DGLGraph | None:
        path = self.cache_path
        if path is None or not path.is_file():
            return None
        try:
            verify(path)
            (graph,), _ = dgl.load_graphs(os.fspath(path))
            return graph
        except Exception as error:
            warn_rebuild(path, "CSBM graph", error)
            return None

    @staticmethod
    def _generate(settings: dict, fractions: tuple[float, float]) -> dgl.DGLGraph:
        src, dst, feat, label = contextual_sbm(**settings)
        num_nodes = settings["num_nodes"]
        graph = dgl.graph((torch.from_numpy(src), torch.from_numpy(dst)), num_nodes=num_nodes)
        graph.ndata["feat"] = torch.from_numpy(feat)
        graph.ndata["label"] = torch.from_numpy(label)
        graph.ndata.update(random_split_masks(num_nodes, fractions, settings["seed"]))
        return graph

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"ContextualSBMDataset(nodes={s['num_nodes']}, edges={self.graph.num_edges()}, "
            f"classes={s['num_classes']}, homophily={s['homophily']}, signal={s['signal']})"
        )


def edge_homophily(graph: dgl.DGLGraph) -> float:
    """Share of ``graph``'s edges whose endpoints have the same ``ndata['label']``."""
    src, dst = graph.edges()
    label = graph.ndata["label"]
    return float((label[src] == label[dst]).float().mean()) if graph.num_edges() else float("nan")
