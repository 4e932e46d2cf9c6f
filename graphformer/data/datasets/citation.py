"""Planetoid citation graphs (Cora, CiteSeer, PubMed) through DGL, failing fast offline.

DGL's loaders download a missing dataset and, offline, retry without a timeout. So
:class:`CitationDataset` first looks for the raw files where DGL would: the folder
``<root>/<dgl name>_<first 8 hex of sha1(download url)>`` (e.g. ``cora_v2_d697a464``)
holding ``ind.<dgl name>.{x,y,tx,ty,allx,ally,graph,test.index}``. The folder name is
computed from DGL's own URL table, so it follows ``$DGL_REPO`` as DGL does. Without the
files it raises at once, unless ``download=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

from graphformer.data.datasets.downloaded import dgl_folder
from graphformer.data.datasets.one_graph import OneGraph
from graphformer.data.info import DatasetInfo
from graphformer.data.splits import check_split

import dgl
from dgl.data import CiteseerGraphDataset, CoraGraphDataset, PubmedGraphDataset
from dgl.data.citation_graph import CitationGraphDataset
from dgl.data.utils import _get_dgl_url, get_download_dir

#: Our name → (DGL's dataset class, DGL's internal name for files and URLs).
DATASETS = {
    "cora": (CoraGraphDataset, "cora_v2"),
    "citeseer": (CiteseerGraphDataset, "citeseer"),
    "pubmed": (PubmedGraphDataset, "pubmed"),
}
RAW_SUFFIXES = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
#: Our name → (classes, bag-of-words width) of the Planetoid files.
SIZES = {"cora": (7, 1433), "citeseer": (6, 3703), "pubmed": (3, 500)}


def _dgl_name(name: str) -> str:
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise ValueError(
            f"citation dataset must be one of 'Cora', 'CiteSeer', 'PubMed'; got {name!r}"
        )
    return DATASETS[name.lower()][1]


def download_url(name: str) -> str:
    """The URL DGL downloads ``name`` from."""
    return _get_dgl_url(CitationGraphDataset._urls[_dgl_name(name)])


def raw_folder(name: str, root: str | os.PathLike) -> Path:
    """Where DGL keeps ``name``'s raw files under ``root``: ``<dgl name>_<sha1(url)[:8]>``."""
    return dgl_folder(root, _dgl_name(name), download_url(name))


def raw_files(name: str, root: str | os.PathLike) -> list[Path]:
    """The Planetoid files DGL reads for ``name``."""
    folder, dgl_name = raw_folder(name, root), _dgl_name(name)
    return [folder / f"ind.{dgl_name}.{suffix}" for suffix in RAW_SUFFIXES]


class CitationDataset(OneGraph):
    """One citation graph: ``ndata`` ``feat`` (float32, row-normalised bag of words),
    ``label``, and the Planetoid ``train_mask`` / ``val_mask`` / ``test_mask``.

    A single-graph, node-level dataset: every split is the same graph and the task picks
    nodes by ``<split>_mask``; ``split`` is accepted (and checked) so that it plugs into
    :class:`~graphformer.data.GraphDataModule` like the multi-graph datasets.

    Parameters
    ----------
    name : ``'Cora'``, ``'CiteSeer'`` or ``'PubMed'`` (any case).
    split : ``'train'``, ``'val'`` or ``'test'``; does not change the graph.
    root : directory holding DGL's cache folders (default: ``$DGL_DOWNLOAD_DIR`` or
        ``~/.dgl``). DGL writes its processed ``.bin`` / ``.pkl`` files into the raw
        folder, so it must be writable.
    download : let DGL download missing files. Default ``False``: offline, DGL's
        downloader retries with no timeout, so a missing dataset raises
        FileNotFoundError at once instead.
    """

    @classmethod
    def describe(cls, name: str = "Cora", **_: object) -> DatasetInfo:
        """The :class:`~graphformer.data.DatasetInfo` of ``name``: node classification over
        continuous bag-of-words features."""
        _dgl_name(name)  # checks the name
        classes, width = SIZES[name.lower()]
        return DatasetInfo(level="node", task="classification", out_dim=classes, in_dim=width)

    def __init__(
        self,
        name: str = "Cora",
        split: str = "train",
        root: str | os.PathLike | None = None,
        download: bool = False,
    ) -> None:
        check_split(split)
        self.info = self.describe(name)
        dataset_class = DATASETS[name.lower()][0]
        root = Path(get_download_dir() if root is None else root)
        self.name, self.split, self.root = name, split, root
        folder = raw_folder(name, root)
        missing = [path.name for path in raw_files(name, root) if not path.is_file()]
        if missing and not download:
            found = f"missing {', '.join(missing)}" if folder.is_dir() else "no such folder"
            raise FileNotFoundError(
                f"{name}: raw files not found in {folder} ({found}). "
                f"Place the Planetoid files ind.{_dgl_name(name)}.* in that folder "
                f"(DGL's cache layout; the zip is {download_url(name)}), point root= at a "
                "directory that has the folder, or pass download=True when online."
            )
        if missing and folder.is_dir():
            raise FileNotFoundError(
                f"{name}: {folder} exists but lacks {', '.join(missing)}, and DGL does not "
                "download into an existing folder. Delete the folder (download=True then "
                "fetches it again) or complete it with the Planetoid files."
            )
        if not missing and not os.access(folder, os.W_OK):
            raise PermissionError(
                f"{name}: {folder} is not writable, and DGL writes its processed cache "
                "there. Copy the folder into a writable root (e.g. a temporary directory) "
                "and pass that root."
            )
        dataset = dataset_class(raw_dir=os.fspath(root), verbose=False)
        self.graph: dgl.DGLGraph = dataset[0]
        found = (int(dataset.num_classes), int(self.graph.ndata["feat"].shape[1]))
        if found != (self.info.out_dim, self.info.in_dim):
            raise ValueError(
                f"{name}: the files in {folder} hold {found[0]} classes and {found[1]} feature "
                f"columns, but {name} has {self.info.out_dim} and {self.info.in_dim}; are they "
                "another dataset's files?"
            )
        self.cache_path = Path(dataset.save_path) / f"{dataset.save_name}.bin"

    def __repr__(self) -> str:
        return (
            f"CitationDataset({self.name!r}, nodes={self.graph.num_nodes()}, "
            f"classes={self.info.out_dim}, root={os.fspath(self.root)!r})"
        )
