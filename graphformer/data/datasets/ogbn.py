"""ogbn-arxiv and ogbn-products read from OGB's on-disk layout, without the ``ogb`` package
and without the network.

OGB keeps a node-property dataset in ``<root>/<name with _>/`` (e.g. ``ogbn_arxiv/``, the
folder its ``NodePropPredDataset`` downloads and unzips): ``raw/edge.csv.gz`` (one
``src,dst`` row per edge), ``raw/node-feat.csv.gz`` (one row of floats per node),
``raw/node-label.csv.gz`` (one class per node), ``raw/num-node-list.csv.gz`` and
``split/<split name>/{train,valid,test}.csv.gz`` (node ids). :class:`OGBNodeDataset` parses
those files once (pandas), builds the DGL graph with ``feat``, ``label`` and split masks,
and caches it as ``<folder>/processed/graphformer-<settings>.bin`` (written atomically,
with a digest trailer: :mod:`graphformer.data.cache`); later runs and DDP ranks load that.
Missing files fail at once with the folder, the files and OGB's URL.

Edges: ogbn-products stores each undirected edge once and OGB adds the reverse edges
(``add_inverse_edge`` in OGB's ``master.csv``): so do we, always. ogbn-arxiv is a directed
citation graph; ``bidirected=True`` (default, as in the GraphSAGE/GCN, SGFormer and
Polynormer ogbn-arxiv scripts) adds the reverse edges and drops duplicates.
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

#: name → (classes, feature width, split folder, nodes, undirected edges stored once, URL).
DATASETS = {
    "ogbn-arxiv": (40, 128, "time", 169_343, False, "arxiv.zip"),
    "ogbn-products": (47, 100, "sales_ranking", 2_449_029, True, "products.zip"),
}
URL = "http://snap.stanford.edu/ogb/data/nodeproppred/"
#: Bumped when the processed graph changes for the same files (names the cache file).
VERSION = 1
#: OGB's split file names → ours.
SPLIT_FILES = {"train": "train", "val": "valid", "test": "test"}


def _facts(name: str) -> tuple:
    if name not in DATASETS:
        raise ValueError(f"OGB node dataset must be one of {sorted(DATASETS)}; got {name!r}")
    return DATASETS[name]


def ogb_folder(name: str, root: str | os.PathLike) -> Path:
    """Where OGB keeps ``name`` under ``root``: ``<root>/ogbn_arxiv`` for ``ogbn-arxiv``."""
    _facts(name)
    return Path(root) / name.replace("-", "_")


def ogb_files(name: str, root: str | os.PathLike) -> list[Path]:
    """The files :class:`OGBNodeDataset` reads for ``name``."""
    folder, split_name = ogb_folder(name, root), _facts(name)[2]
    raw = [folder / "raw" / f for f in ("edge.csv.gz", "node-feat.csv.gz", "node-label.csv.gz")]
    splits = [folder / "split" / split_name / f"{f}.csv.gz" for f in SPLIT_FILES.values()]
    return raw + splits


def _read(path: Path, dtype) -> np.ndarray:
    import pandas as pd  # DGL's own (undeclared) dependency, present wherever DGL imports

    return pd.read_csv(path, header=None, compression="gzip", dtype=dtype).to_numpy()


class OGBNodeDataset(OneGraph):
    """ogbn-arxiv or ogbn-products as one DGL graph: ``ndata`` ``feat`` (float32), ``label``
    (int64) and the official ``train_mask``/``val_mask``/``test_mask``.

    A single-graph, node-level dataset (every split is the same graph; the task selects
    nodes by mask); train it with :class:`~graphformer.data.SampledNodeDataModule`.

    Parameters
    ----------
    name : ``'ogbn-arxiv'`` or ``'ogbn-products'``.
    split : ``'train'``, ``'val'`` or ``'test'``; does not change the graph.
    root : the folder holding OGB's ``ogbn_arxiv/`` or ``ogbn_products/`` folder.
    bidirected : add reverse edges to ogbn-arxiv (products always has them).
    """

    @classmethod
    def describe(cls, name: str = "ogbn-arxiv", **_: object) -> DatasetInfo:
        """Node classification: 40 classes over 128 features (arxiv), 47 over 100 (products)."""
        classes, width = _facts(name)[:2]
        return DatasetInfo(level="node", task="classification", out_dim=classes, in_dim=width)

    def __init__(
        self,
        name: str = "ogbn-arxiv",
        split: str = "train",
        root: str | os.PathLike = "data/ogb",
        bidirected: bool = True,
    ) -> None:
        check_split(split)
        self.info = self.describe(name)
        self.name, self.split, self.root = name, split, Path(root)
        folder = ogb_folder(name, root)
        missing = [path for path in ogb_files(name, root) if not path.is_file()]
        if missing:
            found = (
                "no such folder"
                if not folder.is_dir()
                else "missing " + ", ".join(os.fspath(path.relative_to(folder)) for path in missing)
            )
            raise FileNotFoundError(
                f"{name}: OGB's files not found in {folder} ({found}). Download and unzip "
                f"{URL}{_facts(name)[5]} into {Path(root)} (it unzips to {folder.name}/ with "
                f"raw/ and split/{_facts(name)[2]}/), or point root= (data.dataset.root) at "
                "the folder that holds it. graphformer does not download it."
            )
        undirected = _facts(name)[4]
        both = True if undirected else bool(bidirected)
        self.cache_path = folder / "processed" / f"graphformer-v{VERSION}-bidirected{int(both)}.bin"
        self.graph = self._load()
        if self.graph is None:
            self.graph = self._parse(folder, both)
            graph = self.graph
            atomic_write(self.cache_path, lambda tmp: dgl.save_graphs(tmp, [graph]))

    def _load(self) -> dgl.DGLGraph | None:
        if not self.cache_path.is_file():
            return None
        try:
            verify(self.cache_path)
            (graph,), _ = dgl.load_graphs(os.fspath(self.cache_path))
            return graph
        except Exception as error:
            warn_rebuild(self.cache_path, f"{self.name} graph", error)
            return None

    def _parse(self, folder: Path, bidirected: bool) -> dgl.DGLGraph:
        classes, width, split_name = _facts(self.name)[:3]
        edges = _read(folder / "raw" / "edge.csv.gz", np.int64)
        feat = _read(folder / "raw" / "node-feat.csv.gz", np.float32)
        label = _read(folder / "raw" / "node-label.csv.gz", np.float64).reshape(-1)
        num_nodes = len(feat)
        if feat.shape[1] != width or len(label) != num_nodes:
            raise ValueError(
                f"{self.name}: {folder}/raw holds {feat.shape[1]} feature columns and "
                f"{len(label)} labels for {num_nodes} nodes; {self.name} has {width} columns "
                "and one label per node. Are these another dataset's files?"
            )
        shaped = edges.ndim == 2 and edges.shape[1] == 2
        if not shaped or (len(edges) and (edges.min() < 0 or edges.max() >= num_nodes)):
            raise ValueError(
                f"{self.name}: {folder}/raw/edge.csv.gz must hold src,dst rows of node ids "
                f"below {num_nodes}; got shape {edges.shape}"
            )
        src, dst = torch.from_numpy(edges[:, 0].copy()), torch.from_numpy(edges[:, 1].copy())
        graph = dgl.graph((src, dst), num_nodes=num_nodes)
        if bidirected:
            stored_once = _facts(self.name)[4]
            graph = dgl.add_reverse_edges(graph) if stored_once else dgl.to_bidirected(graph)
        labels = torch.from_numpy(np.nan_to_num(label, nan=-1).astype(np.int64))
        if labels.min() < 0 or labels.max() >= classes:
            raise ValueError(
                f"{self.name}: labels must lie in [0, {classes}); got [{int(labels.min())}, "
                f"{int(labels.max())}] in {folder}/raw/node-label.csv.gz"
            )
        graph.ndata["feat"] = torch.from_numpy(feat)
        graph.ndata["label"] = labels
        for ours, theirs in SPLIT_FILES.items():
            ids = _read(folder / "split" / split_name / f"{theirs}.csv.gz", np.int64)
            ids = torch.from_numpy(ids.reshape(-1).copy())
            mask = torch.zeros(num_nodes, dtype=torch.bool)
            mask[ids] = True
            graph.ndata[f"{ours}_mask"] = mask
        return graph

    def __repr__(self) -> str:
        return (
            f"OGBNodeDataset({self.name!r}, nodes={self.graph.num_nodes()}, "
            f"edges={self.graph.num_edges()}, root={os.fspath(self.root)!r})"
        )
