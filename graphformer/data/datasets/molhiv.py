"""ogbg-molhiv through OGB's ``DglGraphPropPredDataset`` (needs ``pip install ogb``), failing
fast offline.

Binary graph classification (HIV inhibition; OGB's metric is ROC-AUC) on 41,127 molecules,
scaffold split. OGB keeps ``<root>/ogbg_molhiv/`` (or an older ``ogbg_molhiv_dgl/``) with
``RELEASE_v1.txt``, ``raw/*.csv.gz`` (or ``processed/dgl_data_processed``) and
``split/scaffold/{train,valid,test}.csv.gz``; without them it downloads, and with the folder
but no release file it stops to ask on stdin. Both are checked here first.

Node features are 9 integer columns, edge features 3, each with its own vocabulary (OGB's
``get_atom_feature_dims`` / ``get_bond_feature_dims``). Each column is shifted into one
shared vocabulary, so a :class:`~graphformer.nn.CategoricalEncoder` summing one embedding
per column is OGB's ``AtomEncoder`` / ``BondEncoder``.
"""

from __future__ import annotations

import os
from pathlib import Path

from graphformer.data.datasets.downloaded import DGL_MODES, check_count, missing_data_error
from graphformer.data.info import DatasetInfo
from graphformer.data.splits import check_split

import dgl
import torch

NAME = "ogbg-molhiv"
URL = "http://snap.stanford.edu/ogb/data/graphproppred/csv_mol_download/hiv.zip"
#: Vocabulary of each node / edge feature column (OGB ``ogb.utils.features``).
ATOM_DIMS = (119, 5, 12, 12, 10, 6, 6, 2, 2)
BOND_DIMS = (5, 6, 2)
RELEASE_FILE = "RELEASE_v1.txt"
SPLIT_FILES = tuple(f"split/scaffold/{mode}.csv.gz" for mode in ("train", "valid", "test"))


def _offsets(dims: tuple[int, ...]) -> torch.Tensor:
    return torch.tensor((0, *dims[:-1])).cumsum(0)


def ogb_dataset_class() -> type:
    """OGB's ``DglGraphPropPredDataset``, or an ImportError saying how to install OGB."""
    try:
        from ogb.graphproppred import DglGraphPropPredDataset
    except ImportError as error:
        raise ImportError(
            f"{NAME} needs the ogb package, which is not importable here ({error}). "
            "Install it with `pip install ogb`, or pick another data config."
        ) from error
    return DglGraphPropPredDataset


def ogb_folder(root: str | os.PathLike) -> Path:
    """OGB's folder for ogbg-molhiv under ``root``: ``ogbg_molhiv_dgl`` if present (older
    OGB releases), else ``ogbg_molhiv``."""
    older = Path(root) / "ogbg_molhiv_dgl"
    return older if older.is_dir() else Path(root) / "ogbg_molhiv"


def missing_files(folder: Path) -> list[str]:
    """The files OGB needs in ``folder`` that are absent."""
    missing = [name for name in (RELEASE_FILE, *SPLIT_FILES) if not (folder / name).is_file()]
    graphs = ("processed/dgl_data_processed", "raw/edge.csv.gz")
    if not any((folder / name).is_file() for name in graphs):
        missing.append(" or ".join(graphs))
    return missing


class MolHIVDataset:
    """One split of ogbg-molhiv: samples ``(graph, label)`` with an int64 label in {0, 1}.

    ``graph.ndata['feat']``: (N, 9) int64 codes below ``info.num_categories`` (174);
    ``graph.edata['feat']``: (E, 3) int64 codes below ``info.edge_categories`` (13).

    Parameters
    ----------
    split : ``'train'``, ``'val'`` or ``'test'`` (OGB's scaffold split).
    root : directory holding OGB's folder ``ogbg_molhiv`` (default: ``dataset``, OGB's).
    download : let OGB download when the folder is absent. Default ``False``: missing
        files raise FileNotFoundError at once.
    num_graphs : keep only the split's first ``num_graphs`` graphs (``None``: all).
    """

    info = DatasetInfo(
        level="graph",
        task="classification",
        out_dim=2,
        num_categories=sum(ATOM_DIMS),
        edge_categories=sum(BOND_DIMS),
    )

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike | None = None,
        download: bool = False,
        num_graphs: int | None = None,
    ) -> None:
        self.name, self.split = NAME, check_split(split)
        dataset_class = ogb_dataset_class()
        self.root = Path("dataset" if root is None else root)
        folder = ogb_folder(self.root)
        how = (
            f"Download {URL}, unzip it in {self.root} and rename the unpacked folder hiv/ "
            f"to {folder.name}/."
        )
        error = missing_data_error(NAME, folder, missing_files(folder), how, download)
        if error is not None:
            raise error
        dataset = dataset_class(name=NAME, root=os.fspath(self.root))
        indices = dataset.get_idx_split()[DGL_MODES[split]]
        count = check_count(num_graphs, len(indices), f"{NAME} {split}")
        self.dataset, self.indices = dataset, [int(i) for i in indices[:count]]
        self.cache_path = folder / f"graphformer_{split}_n{count}.bin"
        if not os.access(folder, os.W_OK):
            self.cache_path = None
        self._atom_offsets, self._bond_offsets = _offsets(ATOM_DIMS), _offsets(BOND_DIMS)

    def __getitem__(self, index: int) -> tuple[dgl.DGLGraph, torch.Tensor]:
        graph, label = self.dataset[self.indices[index]]
        graph = graph.local_var()
        graph.ndata["feat"] = graph.ndata["feat"].long() + self._atom_offsets
        graph.edata["feat"] = graph.edata["feat"].long() + self._bond_offsets
        return graph, torch.as_tensor(label).long().reshape(())

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"MolHIVDataset({self.split!r}, graphs={len(self)}, root={os.fspath(self.root)!r})"
