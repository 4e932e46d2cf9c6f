"""On-disk caches: atomic writes, a digest trailer, and rebuild-with-a-warning on damage.

DGL writes a cache file (``dgl.save_graphs``, ``save_tensors``) to a temporary file in the
target's directory; :func:`atomic_write` appends a trailer (a BLAKE2b digest of all the
bytes before it, then a magic tag) and moves the file into place with ``os.replace``, so
readers see the old file or the complete new one, never a half-written one. DGL's readers
ignore the trailing bytes.

:func:`verify` checks the trailer before DGL reads a file. DGL alone is not enough: its
readers do not check reads against the end of the file, so a tensor file missing its tail
loads "successfully" with uninitialised bytes, and flipped bytes load silently.

The temporary file is named ``.<target>.<host>.<pid>.tmp``. A writer killed mid-write
(SIGKILL, OOM) leaves it behind; :func:`remove_stale_temps` deletes those of dead processes
on this host, and those of other hosts once untouched for :data:`STALE_AFTER` seconds, so a
concurrent writer's file is never removed. :func:`check_writable` refuses an unusable
folder before anything expensive is computed, and a failed write raises
:class:`CacheWriteError` naming the file, the free space and what to do.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import dgl
import numpy as np
import torch
from dgl.data.utils import load_tensors, save_tensors

MAGIC = b"GFCACHE1"
DIGEST_SIZE = 16
TRAILER_SIZE = DIGEST_SIZE + len(MAGIC)
_CHUNK = 1 << 22
#: Seconds after which another host's temporary file counts as abandoned.
STALE_AFTER = 24 * 3600
_HOST = socket.gethostname().replace(os.sep, "_") or "localhost"


#: Key of the dataset digest in the tensor caches computed from a dataset's graphs.
DATASET = "dataset_digest"


class CacheWarning(UserWarning):
    """A cache file was unreadable or inconsistent and is being rebuilt."""


class CacheError(ValueError):
    """A cache file is damaged or stale."""


class CacheWriteError(OSError):
    """A cache folder or file cannot be written (read-only, not a folder, disk full)."""


_ADVICE = "set paths.data_dir (or the dataset's root) to a writable folder with free space"


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and probe it with a temporary file; raise
    :class:`CacheWriteError` naming it when it is a file, read-only or otherwise unusable."""
    folder = Path(folder)
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise CacheWriteError(
            errno.ENOTDIR,
            f"the data folder {folder} cannot be created: {blocker} is a file, "
            f"not a folder; move the file away or {_ADVICE}",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise CacheWriteError(
            error.errno,
            f"the data folder {folder} is not writable ({error.strerror or error}); "
            f"fix its permissions or {_ADVICE}",
        ) from error
    return folder


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writers of ``path`` left; return them.

    A file of this host is stale when its process is gone (a live process of that PID keeps
    it, even if the PID was reused); one of another host when untouched for
    :data:`STALE_AFTER` seconds. Files named ``.<target>.<pid>.tmp`` (before the host was
    recorded) count as this host's.
    """
    path = Path(path)
    prefix, removed = f".{path.name}.", []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    for candidate in candidates:
        owner = candidate.name[len(prefix) : -len(".tmp")]
        host, _, pid = owner.rpartition(".")
        if not pid.isdigit():
            continue
        try:
            if host in ("", _HOST):
                stale = not _alive(int(pid))
            else:
                stale = time.time() - candidate.stat().st_mtime > STALE_AFTER
            if stale:
                candidate.unlink()
                removed.append(candidate)
        except OSError:  # gone meanwhile, or not ours to delete: leave it
            continue
    return removed


def _digest(file, size: int) -> bytes:
    """BLAKE2b digest of the first ``size`` bytes of the open binary ``file``."""
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    file.seek(0)
    while size > 0:
        chunk = file.read(min(_CHUNK, size))
        if not chunk:
            break
        digest.update(chunk)
        size -= len(chunk)
    return digest.digest()


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """``write(tmp)`` to a temporary file next to ``path``, add the trailer, move onto ``path``."""
    path = Path(path)
    check_writable(path.parent)
    remove_stale_temps(path)
    tmp = _temp_path(path)
    try:
        write(str(tmp))
        with open(tmp, "r+b") as file:
            trailer = _digest(file, os.fstat(file.fileno()).st_size) + MAGIC
            file.seek(0, os.SEEK_END)
            file.write(trailer)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except Exception as error:
        if isinstance(error, CacheWriteError) or not _is_write_error(error):
            raise
        free = shutil.disk_usage(path.parent).free
        raise CacheWriteError(
            getattr(error, "errno", None) or errno.EIO,
            f"could not write the cache file {path} ({type(error).__name__}: "
            f"{_first_line(error)}); {free / 2**20:.0f} MiB are free on its disk. Free space "
            f"or {_ADVICE}; nothing was cached, the next run computes it again",
        ) from error
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]  # DGL appends C++ stack traces


def _is_write_error(error: BaseException) -> bool:
    """OSErrors, and DGL's C++ stream errors (a full disk reads "FileStream.Write incomplete")."""
    return isinstance(error, OSError) or "FileStream" in str(error)


def verify(path: str | os.PathLike) -> None:
    """Raise :class:`CacheError` unless ``path`` ends with a trailer matching its content."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size - TRAILER_SIZE
        if size < 0:
            raise CacheError(f"file is {size + TRAILER_SIZE} bytes, too short to be a cache")
        file.seek(size)
        trailer = file.read(TRAILER_SIZE)
        if trailer[DIGEST_SIZE:] != MAGIC:
            raise CacheError("no graphformer trailer (truncated, or not written by graphformer)")
        if _digest(file, size) != trailer[:DIGEST_SIZE]:
            raise CacheError("content digest mismatch (corrupted or truncated)")


def warn_rebuild(path: str | os.PathLike, what: str, error: BaseException) -> None:
    """Warn that the cache at ``path`` is unusable (``error`` says why) and will be rebuilt."""
    reason = _first_line(error)
    warnings.warn(
        f"{what} cache {path} is unusable ({type(error).__name__}: {reason}); rebuilding it. "
        "This is expected after an interrupted write or a generator change; if it repeats, "
        "delete the file and check the disk.",
        CacheWarning,
        stacklevel=3,
    )


def load_or_compute_tensors(
    path: str | os.PathLike | None,
    what: str,
    compute: Callable[[], dict],
    check: Callable[[dict], None],
) -> dict:
    """Tensors from the cache at ``path`` if it is intact and ``check`` accepts them (it
    raises :class:`CacheError` otherwise), else ``compute()``, saved there atomically.

    An unreadable or stale cache is rebuilt with a :class:`CacheWarning` naming ``what``.
    With ``path=None`` nothing is cached.
    """
    if path is not None and Path(path).is_file():
        try:
            verify(path)
            stored = load_tensors(os.fspath(path))
            check(stored)
            return stored
        except Exception as error:
            warn_rebuild(path, what, error)
    result = compute()
    if path is not None:
        atomic_write(path, lambda tmp: save_tensors(tmp, result))
    return result


def dataset_digest(graphs: Sequence[dgl.DGLGraph]) -> torch.Tensor:
    """BLAKE2b digest (16 uint8) of every graph's node count and edge list, in order."""
    digest = hashlib.blake2b(digest_size=16)
    for graph in graphs:
        src, dst = graph.edges()
        digest.update(np.int64(graph.num_nodes()).tobytes())
        digest.update(np.int64(len(src)).tobytes())
        digest.update(src.to(torch.int64).contiguous().numpy())  # buffers: no copies
        digest.update(dst.to(torch.int64).contiguous().numpy())
    return torch.frombuffer(bytearray(digest.digest()), dtype=torch.uint8)
