"""Atomic checkpoint writes: a killed job leaves the previous checkpoint, never half a file."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

#: Suffix of the file a checkpoint is written to before it replaces the real one.
PARTIAL = ".partial"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO``, writing each local checkpoint atomically.

    The checkpoint is serialised in memory, written to ``<path>.partial`` in the same
    folder, flushed to disk (``fsync``), then renamed over ``<path>`` with ``os.replace``,
    which is atomic on POSIX and Windows. A process killed at any moment (even SIGKILL)
    leaves either the old or the new checkpoint at ``<path>``, never a truncated one; at
    worst a stale ``.partial`` file, which the next save overwrites. (Lightning's own
    writer goes through a temporary file that may live on another filesystem and is
    copied, not renamed, without fsync.) Remote paths (``s3://`` ...) fall back to
    Lightning's writer.
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
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)


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
