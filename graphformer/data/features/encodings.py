"""Positional encodings computed once per dataset with DGL's transforms, cached on disk.

:func:`pe_transform` (DGL's ``LapPE`` and ``RandomWalkPE``) runs once per
graph; the results go to ``<dataset cache stem>.pe-lap<k>-rw<k>.bin`` next to the
dataset's own cache, so each set of parameters has its own file. The file stores the
encodings of all graphs concatenated, the node count of each graph, a digest of the
dataset's structure (node counts and edges) and a digest of the settings the values
depend on (k's, ARPACK start vectors, sign convention, DGL and SciPy versions); a file
whose digests differ is rebuilt with a ``CacheWarning``. :mod:`graphformer.data.cache`
makes the writes atomic and detects damage. :class:`WithEncodings` then attaches each
graph's rows as ``ndata['lap_pe']`` / ``ndata['rwse']``.

The cached encodings are a function of the dataset alone, never of the run's seed: each
Laplacian eigenvector gets a canonical sign (its largest-magnitude entry positive) in
place of ``dgl.lap_pe``'s random flip, so runs of every seed share one file. The random
sign flip that LapPE training needs happens per graph and per batch, in training only,
in :class:`graphformer.nn.LapPEEncoder` (drawn from torch's generator, which the run seeds).

Cost (DGL's implementations, measured on CLUSTER graphs of ~117 nodes): LapPE ≈ 10 ms and
RWSE ≈ 3–6 ms per graph, once. DGL's RWSE uses dense N × N matrix powers, fine up to
Cora's 2,708 nodes but ~3 GB per step on PubMed; its LapPE on Cora takes ~7 s (ARPACK).
Checking the dataset digest of a cached file costs ~0.4 ms per CLUSTER graph (0.4 s for
1,000 graphs, measured on a loaded 2-core machine), against ~10 ms per graph to compute.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from graphformer.data import cache
from graphformer.data.cache import DATASET, CacheError, dataset_digest
from graphformer.data.field_cache import WithFields
from graphformer.data.progress import progress
from graphformer.data.validation import check_int
from graphformer.fields import LAP_PE, RWSE

import dgl
import numpy as np
import scipy
import scipy.sparse.linalg
import torch
from dgl.data.utils import load_tensors, save_tensors

NUM_NODES = "num_nodes"
SETTINGS = "settings_digest"
#: Bumped when the computation changes (start vectors, sign convention): caches are rebuilt.
ENCODINGS_VERSION = 2
#: Seeds the ARPACK start vector of each matrix size (see :func:`_seeded_arpack`).
ARPACK_SEED = 0


def pe_transform(lap_k: int = 0, rwse_k: int = 0) -> dgl.transforms.Compose:
    """A DGL transform storing ``ndata['lap_pe']`` (k eigenvectors) and ``ndata['rwse']``.

    Laplacian eigenvectors come from ``dgl.transforms.LapPE`` with ``padding=True``: a graph
    with fewer than ``k + 1`` nodes gets zero columns for the missing eigenvectors.
    Random-walk landing probabilities for 1..k steps come from ``dgl.transforms.RandomWalkPE``.

    >>> import dgl
    >>> from graphformer.data import pe_transform
    >>> graph = pe_transform(lap_k=2, rwse_k=3)(dgl.graph(([0, 1, 2], [1, 2, 0])))
    >>> graph.ndata["lap_pe"].shape, graph.ndata["rwse"].shape
    (torch.Size([3, 2]), torch.Size([3, 3]))
    """
    steps = []
    if lap_k:
        check_int("lap_k", lap_k, 1)
        steps.append(dgl.transforms.LapPE(lap_k, feat_name=LAP_PE, padding=True))
    if rwse_k:
        check_int("rwse_k", rwse_k, 1)
        steps.append(dgl.transforms.RandomWalkPE(rwse_k, feat_name=RWSE))
    return dgl.transforms.Compose(steps)


def encodings_path(cache_path: str | os.PathLike, lap_k: int, rwse_k: int) -> Path:
    """``<dir>/<stem>.pe-lap<lap_k>-rw<rwse_k>.bin`` for a dataset cached at ``cache_path``."""
    cache_path = Path(cache_path)
    return cache_path.with_name(f"{cache_path.stem}.pe-lap{lap_k}-rw{rwse_k}.bin")


@contextlib.contextmanager
def _single_threaded_dgl() -> Iterator[None]:
    """Run DGL's OpenMP kernels on one thread, then restore the caller's setting.

    On graphs of ~100 nodes DGL's parallel format conversion (COO → CSR, done once per
    graph by the transforms) spends its time synchronising threads: measured here on a
    2-core machine, 27 ms per CLUSTER graph with 2 threads against 0.3 ms with 1.
    """
    threads = dgl.utils.get_num_threads()
    dgl.utils.set_num_threads(1)
    try:
        yield
    finally:
        dgl.utils.set_num_threads(threads)


@contextlib.contextmanager
def _numpy_state_kept() -> Iterator[None]:
    """Restore NumPy's global generator afterwards: ``dgl.lap_pe`` draws its sign flips
    from it, and loading a cache instead of computing must not change the run's draws."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def _seeded_arpack(seed: int = ARPACK_SEED) -> Iterator[None]:
    """Give ARPACK a seeded start vector while ``dgl.lap_pe`` runs.

    ``dgl.lap_pe`` calls ``scipy.sparse.linalg.eigs`` (graphs with more than k + 2 nodes)
    without a start vector, and scipy draws one afresh in every process, so eigenvectors
    recomputed in another process differed (measured: three processes, three different
    CLUSTER encodings, hence different training runs from a fresh data folder). This
    passes a start vector drawn from a generator seeded by ``seed`` and the matrix size.
    """
    real = scipy.sparse.linalg.eigs

    def eigs(matrix, *args, v0=None, **kwargs):
        if v0 is None:
            v0 = np.random.default_rng([seed, matrix.shape[0]]).random(matrix.shape[0])
        return real(matrix, *args, v0=v0, **kwargs)

    scipy.sparse.linalg.eigs = eigs
    try:
        yield
    finally:
        scipy.sparse.linalg.eigs = real


def canonical_signs(pe: torch.Tensor) -> torch.Tensor:
    """``pe`` (nodes, k) with each column's sign chosen so its largest-magnitude entry
    (the first, on ties) is positive: the same for an eigenvector and its negation."""
    if pe.numel() == 0:
        return pe
    top = pe.abs().argmax(dim=0)
    peak = pe[top, torch.arange(pe.shape[1])]
    return pe * torch.where(peak < 0, -1.0, 1.0).to(pe.dtype)


def settings_digest(lap_k: int, rwse_k: int) -> torch.Tensor:
    """Digest of everything besides the graphs that the encodings' values depend on."""
    settings = (
        ("lap_k", lap_k),
        ("rwse_k", rwse_k),
        ("version", ENCODINGS_VERSION),
        ("arpack_v0", f"default_rng([{ARPACK_SEED}, n]).random(n)"),
        ("signs", "largest-magnitude entry positive"),
        ("dgl", dgl.__version__),  # LapPE's ARPACK call: which='SR', ncv, tol
        ("scipy", scipy.__version__),
    )
    digest = hashlib.blake2b(repr(settings).encode(), digest_size=16).digest()
    return torch.frombuffer(bytearray(digest), dtype=torch.uint8)


def compute_encodings(
    graphs: Sequence[dgl.DGLGraph], lap_k: int, rwse_k: int
) -> dict[str, torch.Tensor]:
    """The encodings of ``graphs``, concatenated over nodes, plus each graph's node count
    and the digests of the dataset and the settings. Deterministic: the same graphs give
    the same values in any process (seeded ARPACK start vectors, canonical signs)."""
    transform = pe_transform(lap_k, rwse_k)
    fields = [name for name, k in ((LAP_PE, lap_k), (RWSE, rwse_k)) if k]
    rows: dict[str, list[torch.Tensor]] = {name: [] for name in fields}
    with _numpy_state_kept(), _seeded_arpack(), _single_threaded_dgl():
        for graph in progress(graphs, len(graphs), f"computing encodings ({', '.join(fields)})"):
            encoded = transform(graph.local_var())
            for name in fields:
                value = encoded.ndata[name].float()
                rows[name].append(canonical_signs(value) if name == LAP_PE else value)
    result = {name: torch.cat(parts) for name, parts in rows.items()}
    result[NUM_NODES] = torch.tensor([graph.num_nodes() for graph in graphs], dtype=torch.int64)
    result[DATASET] = dataset_digest(graphs)
    result[SETTINGS] = settings_digest(lap_k, rwse_k)
    return result


def _check(
    stored: dict[str, torch.Tensor],
    num_nodes: torch.Tensor,
    widths: dict[str, int],
    graphs: Sequence[dgl.DGLGraph],
) -> None:
    if NUM_NODES not in stored or not torch.equal(stored[NUM_NODES], num_nodes):
        raise CacheError("node counts differ from the dataset's (was the dataset rebuilt?)")
    if SETTINGS not in stored or not torch.equal(
        stored[SETTINGS], settings_digest(*widths.values())
    ):
        raise CacheError(
            "computed with other settings (an older graphformer, or another DGL or SciPy)"
        )
    if DATASET not in stored or not torch.equal(stored[DATASET], dataset_digest(graphs)):
        raise CacheError("computed for other graphs (the dataset's edges differ)")
    for name, k in widths.items():
        if not k:
            continue
        shape = tuple(stored[name].shape) if name in stored else None
        if shape != (int(num_nodes.sum()), k):
            raise CacheError(f"{name} has shape {shape}, expected ({int(num_nodes.sum())}, {k})")


def load_or_compute_encodings(
    graphs: Sequence[dgl.DGLGraph],
    lap_k: int,
    rwse_k: int,
    path: str | os.PathLike | None,
) -> dict[str, torch.Tensor]:
    """Encodings of ``graphs`` from the cache at ``path``, else computed (and saved there).

    An unreadable or inconsistent cache (other node counts, graphs or settings) is
    recomputed with a ``CacheWarning``; the folder is checked for writing before
    computing. With ``path=None`` nothing is cached.
    """
    widths = {LAP_PE: lap_k, RWSE: rwse_k}
    num_nodes = torch.tensor([graph.num_nodes() for graph in graphs], dtype=torch.int64)
    if path is not None:
        cache.remove_stale_temps(path)
        if Path(path).is_file():
            try:
                cache.verify(path)
                stored = load_tensors(os.fspath(path))
                _check(stored, num_nodes, widths, graphs)
                return stored
            except Exception as error:
                cache.warn_rebuild(path, "positional-encoding", error)
        cache.check_writable(Path(path).parent)
    result = compute_encodings(graphs, lap_k, rwse_k)
    if path is not None:
        cache.atomic_write(path, lambda tmp: save_tensors(tmp, result))
    return result


class WithEncodings(WithFields):
    """``dataset`` whose graphs carry their rows of ``encodings`` (what
    :func:`load_or_compute_encodings` returned: ``lap_pe`` and/or ``rwse``, per node) in
    ``ndata``, attached as :class:`~graphformer.data.field_cache.WithFields` attaches fields:
    to a shallow copy of each sample's graph, its node count checked."""

    what = "encodings"

    def __init__(self, dataset: Any, encodings: dict[str, torch.Tensor]) -> None:
        stored = {name: encodings[name] for name in (LAP_PE, RWSE) if name in encodings}
        num_nodes = encodings[NUM_NODES]
        super().__init__(
            dataset, {name: {NUM_NODES: num_nodes, name: value} for name, value in stored.items()}
        )

    def pad_of(self, name: str) -> None:
        """Encodings are per node."""
        return None
