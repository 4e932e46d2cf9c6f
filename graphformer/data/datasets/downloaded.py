"""Benchmarks that DGL downloads, found on disk first so that a missing one fails at once.

DGL's builtin datasets (``DGLBuiltinDataset``) read ``<raw_dir>/<name>_<h>/`` where ``h``
is the first 8 hex digits of ``sha1(url)`` and ``url`` is DGL's download address (it
follows ``$DGL_REPO``). If the split's file is absent and that folder is absent too, DGL
downloads the zip into ``<raw_dir>/<name>.zip`` and unpacks it into the folder; offline it
retries without a timeout. If the folder exists, DGL never downloads into it and fails
later on the missing file. :class:`DGLSource` checks both cases before DGL runs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphformer.data.splits import SPLITS, check_split

from dgl.data.utils import _get_dgl_url, get_download_dir

#: Our split names → DGL's ``mode`` names.
DGL_MODES = {"train": "train", "val": "valid", "test": "test"}


def dgl_folder(root: str | os.PathLike, dgl_name: str, url: str) -> Path:
    """The folder where DGL keeps a downloaded dataset: ``<root>/<name>_<sha1(url)[:8]>``."""
    return Path(root) / f"{dgl_name}_{hashlib.sha1(url.encode('utf-8')).hexdigest()[:8]}"


def resolve_root(root: str | os.PathLike | None) -> Path:
    """``root``, or DGL's download dir (``$DGL_DOWNLOAD_DIR`` or ``~/.dgl``) when ``None``."""
    return Path(get_download_dir() if root is None else root)


def missing_data_error(
    dataset: str, folder: Path, missing: Sequence[str], how: str, download: bool
) -> FileNotFoundError | None:
    """The error for ``missing`` files of ``folder``, or ``None`` when the loader may go on
    (nothing missing, or ``download`` with no folder yet: the library downloads then)."""
    if not missing:
        return None
    if not folder.is_dir():
        if download:
            return None
        return FileNotFoundError(
            f"{dataset}: data not found: no folder {folder}. {how} Or point root= "
            "(data.dataset.root in the config) at the directory that holds "
            f"{folder.name}/, or pass download=True (data.dataset.download=true) when online."
        )
    return FileNotFoundError(
        f"{dataset}: {folder} exists but lacks {', '.join(missing)}, and the loader does "
        f"not download into an existing folder. {how} Or delete the folder and pass "
        "download=True (data.dataset.download=true) when online."
    )


def check_count(num_graphs: int | None, available: int, what: str) -> int:
    """How many graphs to take: ``num_graphs`` (the first ones) or all ``available``."""
    if num_graphs is None:
        return available
    if isinstance(num_graphs, bool) or not isinstance(num_graphs, int) or num_graphs < 1:
        raise ValueError(f"num_graphs must be a positive int or None (all); got {num_graphs!r}")
    if num_graphs > available:
        raise ValueError(
            f"num_graphs={num_graphs} but {what} holds {available} graphs; "
            f"set num_graphs ≤ {available} or None"
        )
    return num_graphs


def check_codes(values: Any, num_categories: int, what: str, source: Path) -> None:
    """Raise when integer codes ``values`` (a tensor) fall outside ``[0, num_categories)``."""
    if values.is_floating_point():
        raise ValueError(f"{what} in {source} must be integer codes; got dtype {values.dtype}")
    if values.numel() and (values.min() < 0 or values.max() >= num_categories):
        raise ValueError(
            f"{what} in {source} must be codes in [0, {num_categories}); got values in "
            f"[{int(values.min())}, {int(values.max())}]. Are the files from another release?"
        )


@dataclass(frozen=True)
class DGLSource:
    """Where a ``dgl.data`` builtin benchmark lives on disk, and how to load one split.

    Parameters
    ----------
    title : the name in messages (``'ZINC'``).
    dgl_class : DGL's dataset class, called as ``dgl_class(mode=..., raw_dir=...)``.
    dgl_name : DGL's dataset name, the folder's prefix (``'zinc'``).
    url_path : the zip's path under DGL's repository (``'dataset/ZINC12k.zip'``).
    file_pattern : the file of one split, with ``{mode}`` (``'ZincDGL_{mode}.bin'``).
    """

    title: str
    dgl_class: type
    dgl_name: str
    url_path: str
    file_pattern: str

    @property
    def url(self) -> str:
        """The URL DGL downloads from (follows ``$DGL_REPO``)."""
        return _get_dgl_url(self.url_path)

    def folder(self, root: str | os.PathLike) -> Path:
        """``<root>/<dgl name>_<sha1(url)[:8]>``, the folder DGL reads."""
        return dgl_folder(root, self.dgl_name, self.url)

    def file(self, split: str) -> str:
        """The file name of ``split`` (ours: train / val / test)."""
        return self.file_pattern.format(mode=DGL_MODES[check_split(split)])

    def how_to_place(self, folder: Path) -> str:
        files = ", ".join(self.file(split) for split in SPLITS)
        return f"Download {self.url} and unzip it into {folder} (it holds {files})."

    def load(self, split: str, root: str | os.PathLike | None, download: bool) -> Any:
        """DGL's dataset of ``split``, after checking its file exists (unless downloading)."""
        folder = self.folder(resolve_root(root))
        missing = [] if (folder / self.file(split)).is_file() else [self.file(split)]
        error = missing_data_error(self.title, folder, missing, self.how_to_place(folder), download)
        if error is not None:
            raise error
        return self.dgl_class(
            mode=DGL_MODES[split], raw_dir=os.fspath(resolve_root(root)), verbose=False
        )

    def cache_path(
        self, split: str, root: str | os.PathLike | None, count: int, total: int
    ) -> Path | None:
        """Where encodings of this split are cached (beside DGL's file; ``None`` when the
        folder is read-only). A prefix of ``count`` < ``total`` graphs gets its own name."""
        folder = self.folder(resolve_root(root))
        if not os.access(folder, os.W_OK):
            return None
        file = Path(self.file(split))
        return folder / (file.name if count == total else f"{file.stem}_first{count}.bin")
