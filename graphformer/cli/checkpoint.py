"""Checkpoints that are whole or refused: atomic writes, and an integrity check on every load."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

#: Suffix of the file a checkpoint is written to before it replaces the real one.
PARTIAL = ".partial"


class CheckpointError(RuntimeError):
    """A checkpoint file that is half-written, truncated or damaged, and so cannot be trusted."""


def verify(path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` unless ``path`` is a whole torch checkpoint archive.

    ``torch.save`` writes a zip archive with a CRC-32 of every entry, which ``torch.load``
    never checks: a file damaged after it was written loads, with wrong weights. Reading the
    archive once through :meth:`zipfile.ZipFile.testzip` checks every CRC. Measured on the
    2-core dev machine: 46 ms for the default model's 1.7 MB checkpoint (``torch.load``:
    226 ms), 0.69 s for 256 MB (``torch.load``: 1.0 s).
    """
    path, hint = Path(path), ""
    if path.name.endswith(PARTIAL):
        problem = "is a checkpoint that was still being written when its job stopped"
        finished = path.with_name(path.name[: -len(PARTIAL)])
        if finished.is_file():
            hint = (
                f"The finished checkpoint it was to replace is {finished}: pass "
                f"ckpt_path={finished}. "
            )
    elif path.stat().st_size == 0:
        problem = "is empty (0 bytes)"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, EOFError, ValueError) as error:
            problem = f"is truncated or not a checkpoint at all ({error})"
        else:
            if damaged is None:
                return
            problem = f"is damaged: the CRC-32 of its entry {damaged!r} does not match its content"
    raise CheckpointError(f"{path} {problem}, so it cannot be loaded. {hint}{_fallbacks(path)}")


def _fallbacks(path: Path) -> str:
    """Which other checkpoints of the same run to try instead."""
    others = sorted(p.name for p in path.parent.glob("*.ckpt") if p.name != path.name)
    if not others:
        return f"{path.parent} holds no other checkpoint: train again without ckpt_path."
    return (
        f"Other checkpoints in {path.parent}: {', '.join(others)}; pass one of them as "
        "ckpt_path=... (each is checked the same way when loaded)."
    )


def load(path: str | os.PathLike) -> dict[str, Any]:
    """A local checkpoint, after :func:`verify`, on the CPU (tensors and plain data only)."""
    verify(path)
    return torch.load(path, map_location="cpu", weights_only=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO``, writing each local checkpoint atomically and
    verifying each local checkpoint before it is loaded (:func:`verify`).

    The checkpoint is serialised in memory, written to ``<path>.partial`` in the same
    folder, flushed to disk (``fsync``), then renamed over ``<path>`` with ``os.replace``,
    which is atomic on POSIX and Windows. A process killed at any moment (even SIGKILL)
    leaves either the old or the new checkpoint at ``<path>``, never a truncated one; at
    worst a stale ``.partial`` file, which the next save overwrites. (Lightning's own
    writer goes through a temporary file that may live on another filesystem and is
    copied, not renamed, without fsync.) Remote paths (``s3://`` ...) fall back to
    Lightning's writer and reader.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        partial = path.with_name(path.name + PARTIAL)
        try:
            with open(partial, "wb") as file:
                file.write(buffer.getbuffer())
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise OSError(
                error.errno,
                f"could not write the checkpoint {path} ({len(buffer.getbuffer()) / 2**20:.1f} "
                f"MB): {error.strerror or error}. Free space in {path.parent}, or write the runs "
                "elsewhere with paths.log_dir=... (or GRAPHFORMER_LOG_DIR); the previous "
                "checkpoint there is intact",
                str(path),
            ) from error
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)

    def load_checkpoint(
        self,
        path: str | os.PathLike,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        if "://" not in str(path) and Path(path).is_file():
            verify(path)
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
