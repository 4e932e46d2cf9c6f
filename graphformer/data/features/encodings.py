"""Positional encodings (LapPE, RWSE) as node fields of the data handshake, computed once
per dataset with DGL's transforms and cached on disk.

Each encoding is a family of :class:`~graphformer.fields.Field` objects, one per width ``k``
(:func:`lap_pe_field`, :func:`rwse_field`; registered under the ``ndata`` keys
``lap_pe`` and ``rwse``): :class:`graphformer.nn.LapPEEncoder` ``(k, ...)`` lists
``"lap_pe_k<k>"`` in its ``needs``, and the data module computes, caches and attaches it
like any field (:mod:`graphformer.data.field_cache`), in ``<dataset cache stem>.lap_pe_k<k>.bin``
(``.rwse_k<k>.bin``) next to the dataset's own cache. The file holds the encodings of all
graphs concatenated, each graph's node count, a digest of the dataset's structure and a
digest of the settings the values depend on (:data:`SETTINGS`: ARPACK start vectors, sign
convention, DGL and SciPy versions); a file whose digests differ is rebuilt with a
``CacheWarning``.

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
import functools
from collections.abc import Callable, Iterator

from graphformer.data.validation import check_int
from graphformer.fields import (
    LAP_PE,
    RWSE,
    Field,
    register_family,
    register_field,
    width_field_name,
)

import dgl
import numpy as np
import scipy
import scipy.sparse.linalg
import torch

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


def laplacian_pe(graph: dgl.DGLGraph, k: int) -> torch.Tensor:
    """One graph's ``k`` Laplacian eigenvectors, (n, k) float32 (``dgl.transforms.LapPE``,
    zero columns where the graph has fewer than ``k + 1`` nodes), each with its canonical
    sign. Deterministic: the same graph gives the same values in any process (seeded ARPACK
    start vector; NumPy's global generator, which ``dgl.lap_pe`` draws from, is restored)."""
    with _numpy_state_kept(), _seeded_arpack(), _single_threaded_dgl():
        encoded = pe_transform(lap_k=k)(graph.local_var())
    return canonical_signs(encoded.ndata[LAP_PE].float())


def random_walk_se(graph: dgl.DGLGraph, k: int) -> torch.Tensor:
    """One graph's random-walk landing probabilities after 1..k steps, (n, k) float32
    (``dgl.transforms.RandomWalkPE``)."""
    with _single_threaded_dgl():
        encoded = pe_transform(rwse_k=k)(graph.local_var())
    return encoded.ndata[RWSE].float()


#: What the encodings' values depend on besides the graph (stored with each cache file).
SETTINGS = repr(
    (
        ("version", ENCODINGS_VERSION),
        ("arpack_v0", f"default_rng([{ARPACK_SEED}, n]).random(n)"),
        ("signs", "largest-magnitude entry positive"),
        ("dgl", dgl.__version__),  # LapPE's ARPACK call: which='SR', ncv, tol
        ("scipy", scipy.__version__),
    )
)


def _width_field(key: str, compute: Callable[..., torch.Tensor], what: str, k: int) -> Field:
    """The registered field ``<key>_k<k>``: ``compute(graph, k=k)``, stored as ``ndata[key]``."""
    check_int(f"{key}_k", k, 1)
    return register_field(
        Field(
            width_field_name(key, k),
            functools.partial(compute, k=k),
            key=key,
            settings=SETTINGS,
            description=f"{what}, k={k})",
        )
    )


@functools.cache
def lap_pe_field(k: int) -> Field:
    """The node field ``lap_pe_k<k>``: :func:`laplacian_pe` of width ``k``, stored as
    ``ndata['lap_pe']`` (what :class:`graphformer.nn.LapPEEncoder` ``(k, ...)`` needs)."""
    return _width_field(LAP_PE, laplacian_pe, "positional encodings (LapPE", k)


@functools.cache
def rwse_field(k: int) -> Field:
    """The node field ``rwse_k<k>``: :func:`random_walk_se` of ``k`` steps, stored as
    ``ndata['rwse']`` (what :class:`graphformer.nn.RWSEEncoder` ``(k, ...)`` needs)."""
    return _width_field(RWSE, random_walk_se, "structural encodings (RWSE", k)


register_family(LAP_PE, lap_pe_field)
register_family(RWSE, rwse_field)
