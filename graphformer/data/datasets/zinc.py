"""ZINC (the 12k subset of Benchmarking GNNs) through ``dgl.data.ZINCDataset``, failing fast
offline.

Graph-level regression of constrained solubility on molecules: node features are atom
types (integer codes below 28), edge features bond types (codes below 4). Splits
10,000 / 1,000 / 1,000 graphs. DGL reads ``<root>/zinc_<sha1(url)[:8]>/ZincDGL_<mode>.bin``
(mode ``train`` / ``valid`` / ``test``), unpacked from ``https://data.dgl.ai/dataset/ZINC12k.zip``.
"""

from __future__ import annotations

import os

from graphformer.data.datasets.downloaded import DGLSource, check_codes, check_count
from graphformer.data.info import DatasetInfo
from graphformer.data.splits import check_split

import dgl
import torch
from dgl.data import ZINCDataset

SOURCE = DGLSource("ZINC", ZINCDataset, "zinc", "dataset/ZINC12k.zip", "ZincDGL_{mode}.bin")
NUM_ATOM_TYPES = 28
NUM_BOND_TYPES = 4


class ZINC12kDataset:
    """One split of ZINC-12k: samples ``(graph, target)``.

    ``graph.ndata['feat']`` are int64 atom codes below ``info.num_categories`` (28),
    ``graph.edata['feat']`` int64 bond codes below ``info.edge_categories`` (4); ``target``
    is a float32 tensor of shape (1,).

    Parameters
    ----------
    split : ``'train'``, ``'val'`` or ``'test'`` (DGL's ``valid`` is our ``val``).
    root : directory holding DGL's folder ``zinc_<hash>`` (default: ``$DGL_DOWNLOAD_DIR``
        or ``~/.dgl``).
    download : let DGL download when the folder is absent. Default ``False``: a missing
        file raises FileNotFoundError at once (DGL would retry forever offline).
    num_graphs : keep only the split's first ``num_graphs`` graphs (``None``: all).
    """

    info = DatasetInfo(
        level="graph",
        task="regression",
        out_dim=1,
        num_categories=NUM_ATOM_TYPES,
        edge_categories=NUM_BOND_TYPES,
    )

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike | None = None,
        download: bool = False,
        num_graphs: int | None = None,
    ) -> None:
        self.name, self.split = "ZINC", check_split(split)
        dataset = SOURCE.load(split, root, download)
        source = SOURCE.folder(dataset.raw_dir) / SOURCE.file(split)
        count = check_count(num_graphs, len(dataset), f"ZINC {split} ({source})")
        self.samples: list[tuple[dgl.DGLGraph, torch.Tensor]] = []
        for index in range(count):
            graph, target = dataset[index]
            graph.ndata["feat"] = graph.ndata["feat"].long()
            graph.edata["feat"] = graph.edata["feat"].long()
            self.samples.append((graph, torch.as_tensor(target, dtype=torch.float32).reshape(1)))
        graphs = [graph for graph, _ in self.samples]
        check_codes(
            torch.cat([g.ndata["feat"] for g in graphs]), NUM_ATOM_TYPES, "atom codes", source
        )
        check_codes(
            torch.cat([g.edata["feat"] for g in graphs]), NUM_BOND_TYPES, "bond codes", source
        )
        self.root = SOURCE.folder(dataset.raw_dir).parent
        self.cache_path = SOURCE.cache_path(split, self.root, count, len(dataset))

    def __getitem__(self, index: int) -> tuple[dgl.DGLGraph, torch.Tensor]:
        return self.samples[index]

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return f"ZINC12kDataset({self.split!r}, graphs={len(self)}, root={os.fspath(self.root)!r})"
