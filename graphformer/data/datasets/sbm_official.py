"""The official PATTERN and CLUSTER files (Benchmarking GNNs, through DGL), failing fast
offline, with the attributes of our generated :class:`~graphformer.data.SBMDataset`.

So the same model configs run on both and numbers can be compared on the official splits
(PATTERN 10,000 / 2,000 / 2,000 graphs, CLUSTER 10,000 / 1,000 / 1,000). DGL reads
``<root>/pattern_<h>/SBM_PATTERN_<mode>.bin`` and ``<root>/cluster_<h>/CLUSTER_<mode>.bin``
(mode ``train`` / ``valid`` / ``test``; ``h`` from DGL's URL). DGL's graphs store labels as
int16 and a constant float edge feature; here labels are int64 and the edge feature is
dropped, as our generated graphs have none.
"""

from __future__ import annotations

import os

from graphformer.data.datasets.downloaded import DGLSource, check_codes, check_count
from graphformer.data.datasets.sbm import check_name, sbm_info
from graphformer.data.info import DatasetInfo
from graphformer.data.splits import check_split

import dgl
import torch
from dgl.data import CLUSTERDataset, PATTERNDataset

SOURCES = {
    "PATTERN": DGLSource(
        "PATTERN", PATTERNDataset, "pattern", "dataset/SBM_PATTERN.zip", "SBM_PATTERN_{mode}.bin"
    ),
    "CLUSTER": DGLSource(
        "CLUSTER", CLUSTERDataset, "cluster", "dataset/SBM_CLUSTER.zip", "CLUSTER_{mode}.bin"
    ),
}


class OfficialSBMDataset:
    """One split of DGL's official PATTERN or CLUSTER: samples are graphs.

    ``ndata['feat']``: int64 codes below ``info.num_categories`` (PATTERN 3, CLUSTER 7);
    ``ndata['label']``: int64 classes below ``info.out_dim`` (PATTERN 2, CLUSTER 6).

    Parameters
    ----------
    name : ``'PATTERN'`` or ``'CLUSTER'``.
    split : ``'train'``, ``'val'`` or ``'test'`` (DGL's ``valid`` is our ``val``).
    root : directory holding DGL's folder (``pattern_<hash>`` / ``cluster_<hash>``;
        default: ``$DGL_DOWNLOAD_DIR`` or ``~/.dgl``).
    download : let DGL download when the folder is absent. Default ``False``: a missing
        file raises FileNotFoundError at once (DGL would retry forever offline).
    num_graphs : keep only the split's first ``num_graphs`` graphs (``None``: all).
    """

    @classmethod
    def describe(cls, name: str = "PATTERN", **_: object) -> DatasetInfo:
        """The :class:`~graphformer.data.DatasetInfo` of ``name``, as the generated datasets'."""
        return sbm_info(name)

    def __init__(
        self,
        name: str = "PATTERN",
        split: str = "train",
        root: str | os.PathLike | None = None,
        download: bool = False,
        num_graphs: int | None = None,
    ) -> None:
        self.name, self.split = check_name(name), check_split(split)
        self.info = sbm_info(self.name)
        source = SOURCES[self.name]
        dataset = source.load(split, root, download)
        self.root = source.folder(dataset.raw_dir).parent
        path = source.folder(self.root) / source.file(split)
        count = check_count(num_graphs, len(dataset), f"{self.name} {split} ({path})")
        self.graphs: list[dgl.DGLGraph] = []
        for index in range(count):
            original = dataset[index]
            graph = dgl.graph(original.edges(), num_nodes=original.num_nodes())
            graph.ndata["feat"] = original.ndata["feat"].long()
            graph.ndata["label"] = original.ndata["label"].long()
            self.graphs.append(graph)
        check_codes(
            torch.cat([g.ndata["feat"] for g in self.graphs]),
            self.info.num_categories,
            "features",
            path,
        )
        check_codes(
            torch.cat([g.ndata["label"] for g in self.graphs]), self.info.out_dim, "labels", path
        )
        self.cache_path = source.cache_path(split, self.root, count, len(dataset))

    def __getitem__(self, index: int) -> dgl.DGLGraph:
        return self.graphs[index]

    def __len__(self) -> int:
        return len(self.graphs)

    def __repr__(self) -> str:
        return (
            f"OfficialSBMDataset({self.name!r}, {self.split!r}, graphs={len(self)}, "
            f"root={os.fspath(self.root)!r})"
        )
