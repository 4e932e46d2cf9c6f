"""The cache of a generated dataset: made once from a seed, stored atomically, rebuilt."""

from __future__ import annotations

import os
from pathlib import Path

from graphformer.data.cache import (
    CacheError,
    atomic_write,
    check_writable,
    remove_stale_temps,
    verify,
    warn_rebuild,
)

import dgl
import torch
from dgl.data import DGLDataset


class GeneratedDataset(DGLDataset):
    """One split of seeded, generated graphs, cached as ``dgl.save_graphs`` in ``root``.

    DGLDataset's steps: :meth:`has_cache` → :meth:`load`, else :meth:`process` (calls
    :meth:`generate`) → :meth:`save`. The cache records the generator version, the number
    of graphs and the seed; a file that is damaged (digest trailer, see
    :mod:`graphformer.data.cache`) or records other values is rebuilt with a
    :class:`~graphformer.data.cache.CacheWarning`. The folder is checked for writing before
    anything is generated, and temporary files of killed writers are removed.

    Subclasses set ``split``, ``num_graphs`` and ``seed`` before calling
    ``super().__init__``, and define :meth:`generate` and :meth:`generator_version`.
    """

    def __init__(self, name: str, root: str | os.PathLike | None, verbose: bool) -> None:
        self.graphs: list[dgl.DGLGraph] = []
        super().__init__(
            name,
            raw_dir=None if root is None else os.fspath(root),
            hash_key=(self.split, self.num_graphs, self.seed, self.generator_version()),
            verbose=verbose,
        )

    def generate(self) -> list[dgl.DGLGraph]:
        raise NotImplementedError

    def generator_version(self) -> int:
        """Bumped when the generator changes: caches of another version are rebuilt."""
        raise NotImplementedError

    @property
    def cache_path(self) -> Path:
        """``<root>/<name>_<split>_n<num_graphs>_seed<seed>.bin``."""
        file = f"{self.name}_{self.split}_n{self.num_graphs}_seed{self.seed}.bin"
        return Path(self.save_dir) / file

    def _metadata(self) -> dict[str, torch.Tensor]:
        return {
            "version": torch.tensor([self.generator_version()]),
            "num_graphs": torch.tensor([self.num_graphs]),
            "seed": torch.tensor([self.seed]),
        }

    def has_cache(self) -> bool:
        remove_stale_temps(self.cache_path)
        if self.cache_path.is_file():
            return True
        check_writable(self.cache_path.parent)  # before DGL creates it and we generate
        return False

    def load(self) -> None:
        """Load the cache; on any damage warn and raise, so DGLDataset regenerates."""
        try:
            verify(self.cache_path)
            graphs, stored = dgl.load_graphs(str(self.cache_path))
            for key, expected in self._metadata().items():
                if key not in stored or not torch.equal(stored[key], expected):
                    raise CacheError(f"stored {key}={stored.get(key)}, expected {expected}")
            if len(graphs) != self.num_graphs:
                raise CacheError(f"holds {len(graphs)} graphs, expected {self.num_graphs}")
        except Exception as error:
            warn_rebuild(self.cache_path, f"{self.name} {self.split}", error)
            raise
        self.graphs = graphs

    def process(self) -> None:
        check_writable(self.cache_path.parent)  # a damaged cache is rebuilt: before generating
        self.graphs = self.generate()

    def save(self) -> None:
        labels = self._metadata()
        atomic_write(self.cache_path, lambda tmp: dgl.save_graphs(tmp, self.graphs, labels))

    def __getitem__(self, index: int) -> dgl.DGLGraph:
        return self.graphs[index]

    def __len__(self) -> int:
        return len(self.graphs)
