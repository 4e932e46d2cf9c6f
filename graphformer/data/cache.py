"""On-disk caches: atomic writes, a digest trailer, and rebuild-with-a-warning on damage.

DGL writes a cache file (``dgl.save_graphs``, ``save_tensors``) to a temporary file in the
target's directory; :func:`atomic_write` appends a trailer (a BLAKE2b digest of all the
bytes before it, then a magic tag) and moves the file into place with ``os.replace``, so
readers see the old file or the complete new one, never a half-written one. DGL's readers
ignore the trailing bytes.

:func:`verify` checks the trailer before DGL reads a file. DGL alone is not enough: its
readers do not check reads against the end of the file, so a tensor file missing its tail
loads "successfully" with uninitialised bytes, and flipped bytes load silently.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

from dgl.data.utils import load_tensors, save_tensors

MAGIC = b"GFCACHE1"
DIGEST_SIZE = 16
TRAILER_SIZE = DIGEST_SIZE + len(MAGIC)
_CHUNK = 1 << 22


class CacheWarning(UserWarning):
    """A cache file was unreadable or inconsistent and is being rebuilt."""


class CacheError(ValueError):
    """A cache file is damaged or stale."""


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(str(tmp))
        with open(tmp, "r+b") as file:
            trailer = _digest(file, os.fstat(file.fileno()).st_size) + MAGIC
            file.seek(0, os.SEEK_END)
            file.write(trailer)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
    reason = (str(error).strip().splitlines() or [""])[0]  # DGL appends C++ stack traces
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
