"""MoleculeDataset: featurised molecules from a package, cached once, served per split.

A subclass says what content it computes (:meth:`MoleculeDataset.compute`: the featurised
molecules with their targets and, when the split needs RDKit, the split of each molecule)
and which settings decide that content (:meth:`MoleculeDataset.content_key`). The content
is cached at ``<root>/<name>/<name>-<digest of the key>.bin`` with
:func:`graphformer.data.cache.load_or_compute_tensors` (atomic write, BLAKE2b trailer,
rebuilt with a warning when damaged or stale), so featurising runs once per setting and
every split and seed reads the same file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphformer.data.cache import CacheError, load_or_compute_tensors
from graphformer.data.datasets.downloaded import check_count
from graphformer.data.info import DatasetInfo
from graphformer.data.molecules.features import FEATURISER_VERSION, Molecules, to_graphs
from graphformer.data.splits import SPLITS, check_split

import dgl
import torch

#: Compact dtypes of the cache file (codes < 256; local atom indices < 32768).
_STORED = {"atom_feat": torch.uint8, "bond_feat": torch.uint8, "edges": torch.int16}


def default_root(root: str | os.PathLike | None) -> Path:
    """``root``, or ``$GRAPHFORMER_DATA_DIR/molecules`` (default ``./data/molecules``)."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("GRAPHFORMER_DATA_DIR", "data")) / "molecules"


def digest(key: dict[str, Any]) -> str:
    """12 hex digits of BLAKE2b over the JSON of ``key`` (sorted keys)."""
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def pack(molecules: Molecules, **extra: torch.Tensor) -> dict[str, torch.Tensor]:
    """The cache file's tensors: ``molecules`` in compact dtypes, plus ``extra``."""
    tensors = molecules.tensors()
    if tensors["edges"].numel() and int(tensors["edges"].max()) >= 2**15:
        raise ValueError("a molecule has ≥ 32768 atoms; the molecule cache cannot store it")
    for key, dtype in _STORED.items():
        tensors[key] = tensors[key].to(dtype)
    return {**tensors, **extra}


def unpack(tensors: dict[str, torch.Tensor]) -> Molecules:
    """The :class:`Molecules` of a cache file's tensors (int64 codes again)."""
    tensors = dict(tensors)
    for key in _STORED:
        tensors[key] = tensors[key].long()
    return Molecules.from_tensors(tensors)


class MoleculeDataset:
    """One split of a molecule dataset: samples ``(graph, label)``.

    ``graph.ndata['feat']``: (N, 9) int64 atom codes below ``info.num_categories`` (174);
    ``graph.edata['feat']``: (E, 3) int64 bond codes below ``info.edge_categories`` (13)
    (:mod:`graphformer.data.molecules.features`). Subclasses set :attr:`name`,
    :attr:`info` (or ``describe``) and implement :meth:`content_key`, :meth:`compute`,
    :meth:`split_of` and :meth:`labels`.

    Parameters
    ----------
    split : ``'train'``, ``'val'`` or ``'test'``.
    root : folder of the caches (default ``$GRAPHFORMER_DATA_DIR/molecules``); the cache
        goes to ``<root>/<name>/``. Nothing is downloaded: the data come from a package.
    num_graphs : keep the split's first ``num_graphs`` molecules (``None``: all).
    skip_invalid : drop unparsable SMILES with a warning naming them; default ``False``
        stops with an error naming them.
    """

    name = "molecules"
    info: DatasetInfo

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike | None = None,
        num_graphs: int | None = None,
        skip_invalid: bool = False,
    ) -> None:
        self.split = check_split(split)
        self.skip_invalid = bool(skip_invalid)
        self.root = default_root(root)
        folder = self.root / self.name
        key = {"featuriser": FEATURISER_VERSION, **self.content_key()}
        self.content_path = folder / f"{self.name}-{digest(key)}.bin"
        tensors = load_or_compute_tensors(
            self.content_path, f"{self.name} molecules", self.compute, self._check
        )
        self.molecules = unpack(tensors)
        self.content = tensors
        indices = self.split_of(tensors)
        count = check_count(num_graphs, len(indices), f"{self.name} {split}")
        self.indices = [int(i) for i in indices[:count]]
        labels = self.labels(tensors)
        self.graphs = to_graphs(
            self.molecules, self.indices, bond_features=getattr(self, "bond_features", True)
        )
        self.targets = labels[torch.tensor(self.indices, dtype=torch.int64)]
        suffix = "" if count == len(indices) else f"_first{count}"
        self.cache_path = folder / f"{self.content_path.stem}_{split}{suffix}.bin"
        if not os.access(folder, os.W_OK):
            self.cache_path = None

    # --- what subclasses define ---------------------------------------------------------
    def content_key(self) -> dict[str, Any]:
        """The settings that decide the cached content (hashed into its file name)."""
        raise NotImplementedError

    def compute(self) -> dict[str, torch.Tensor]:
        """Read the package, featurise: :func:`pack` of the molecules with their targets."""
        raise NotImplementedError

    def split_of(self, tensors: dict[str, torch.Tensor]) -> Sequence[int]:
        """Indices (into the cached molecules) of :attr:`split`, in order."""
        raise NotImplementedError

    def labels(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """One label per cached molecule (float32 (M, out_dim) or int64 (M,))."""
        raise NotImplementedError

    # --- the dataset ----------------------------------------------------------------------
    def _check(self, tensors: dict[str, torch.Tensor]) -> None:
        missing = [key for key in ("atom_feat", "num_atoms", "rows") if key not in tensors]
        if missing:
            raise CacheError(f"the cache lacks {missing}")
        if int(tensors["num_atoms"].sum()) != len(tensors["atom_feat"]):
            raise CacheError("atom counts do not add up to the stored atoms")

    def __getitem__(self, index: int) -> tuple[dgl.DGLGraph, torch.Tensor]:
        return self.graphs[index], self.targets[index]

    def __len__(self) -> int:
        return len(self.graphs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.split!r}, graphs={len(self)}, "
            f"cache={os.fspath(self.content_path)!r})"
        )


def random_split(count: int, sizes: Sequence[int | None], seed: int) -> dict[str, torch.Tensor]:
    """A random permutation of ``range(count)`` cut into ``sizes`` (train, val, test; a
    ``None`` takes the rest), with ``torch.Generator().manual_seed(seed)``."""
    if len(sizes) != len(SPLITS):
        raise ValueError(f"sizes must give (train, val, test); got {list(sizes)}")
    fixed = sum(size for size in sizes if size is not None)
    if sum(size is None for size in sizes) > 1 or fixed > count:
        raise ValueError(
            f"split sizes {list(sizes)} do not fit {count} molecules (at most one None, the "
            "rest ≤ the total)"
        )
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    result, start = {}, 0
    for split, size in zip(SPLITS, sizes, strict=True):
        size = count - fixed if size is None else size
        result[split] = order[start : start + size]
        start += size
    return result
