r"""Fused CPU attention for heads of width 16: a C++ kernel built on first use.

For each sample's head (a block of :math:`n` rows) with queries, keys and values
:math:`Q, K, V \in \mathbb{R}^{n \times 16}`, an additive mask :math:`M` and an optional
0/1 keep mask :math:`Z` with :math:`c = 1 / (1 - p)`:

.. math::
    S = s\, Q K^\top + M, \qquad P = \mathrm{softmax}(S), \qquad O = c\, (P \odot Z)\, V

and in the backward pass, from :math:`P` recomputed with the saved row log-sum-exp,
:math:`\partial P = c\, (\partial O\, V^\top) \odot Z`, :math:`\partial S = P \odot
(\partial P - \mathrm{rowsum}(P \odot \partial P))`, :math:`\partial Q = s\, \partial S\, K`,
:math:`\partial K = s\, \partial S^\top Q`, :math:`\partial V = c\, (P \odot Z)^\top
\partial O` (and :math:`\partial M = \partial S` for masks with gradients: per-edge terms).

Why: at head width 16 torch's CPU kernels run far below the GEMM rate. SDPA's flash kernel
calls a GEMM per 32-query block (4.5× its FLOP bound on the default model's CLUSTER
epoch), and the written-out form (batched matmuls, softmax, dropout) writes several
(B, H, L, L) tensors per layer. The kernel (``small_attention.cpp`` beside this file) reads
each sample's n rows of the packed (N, 3, H, 16) queries, keys and values in place, keeps
its n × ⌈n/16⌉·16 scores in its thread's buffers (one 16-float vector per row, eight rows
per register block), and writes the nodes' output and gradient rows: no padded copies, no
padded query rows, no (B, H, L, L) tensor. Measured on the 2-core CPU VM
(experiments/bench/README.md, issue 23's ninth pass): forward + backward in 0.41–0.44×
SDPA's time on CLUSTER-sized neighbourhood attention; the ``zinc_gps`` training step in
0.87× the time; the default model's CLUSTER epoch 2.39× its FLOP bound instead of 3.30×.

It runs where :func:`usable` says so: CPU, float32, head width 16, no autocast. The dense
engine (:class:`graphformer.nn.core.dense.Padding`) then takes it for attention without
dropout and for fast dropout (:mod:`graphformer.nn.core.dropout`'s masks); with plain
dropout it keeps SDPA, whose masks are torch's. The kernel is compiled by
``torch.utils.cpp_extension`` on first use (10–20 s, needs a C++ compiler and ninja: the
``ninja`` wheel is a dependency) for the machine it runs on, and cached in torch's extension
folder under a name keyed by the CPU's instruction-set flags. Where it cannot be built, one
warning says why and the dense engine keeps its torch path. ``GRAPHFORMER_FUSED_ATTENTION=0``
turns it off (read at every call).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import platform
import shutil
import warnings
from pathlib import Path
from typing import NamedTuple

import torch

#: Set to ``0`` to keep the dense engine on its torch path.
ENV = "GRAPHFORMER_FUSED_ATTENTION"
#: The head width the kernel is written for (one 16-float vector per row).
WIDTH = 16
NAMESPACE = "graphformer_small_attention"
SOURCE = Path(__file__).with_name("small_attention.cpp")
#: Compiler flags: the build is for the machine it runs on (hence the cache key below).
CFLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp")

log = logging.getLogger(__name__)


class Samples(NamedTuple):
    """One group's samples in the packed rows: sample b is rows ``starts[b]`` to
    ``starts[b] + sizes[b]`` (int64 CPU tensors), at most ``length`` (the group's padded
    length, which lays out its masks)."""

    starts: torch.Tensor
    sizes: torch.Tensor
    length: int


def _cpu_tag() -> str:
    """A short key of this CPU's instruction-set flags, so a cache shared between machines
    (a home folder on a cluster) never loads a build made for another CPU."""
    flags = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags += line
                break
    return hashlib.sha1(flags.encode()).hexdigest()[:10]


@contextlib.contextmanager
def _ninja_on_path():
    """torch's extension builder runs ``ninja`` from PATH; the ``ninja`` wheel installs it
    into the environment's bin folder, which is not on PATH unless the environment is
    activated. Put it there for the build only."""
    if shutil.which("ninja") is not None:
        yield
        return
    try:
        import ninja
    except ImportError:
        yield
        return
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + path
    try:
        yield
    finally:
        os.environ["PATH"] = path


@functools.cache
def _ops():
    """The kernel's ops (``torch.ops.graphformer_small_attention``), built and loaded once
    per process; None, with one warning, where that fails."""
    from torch.utils import cpp_extension

    log.info("loading graphformer's fused attention kernel (compiled on first use, 10-20 s)")
    try:
        with _ninja_on_path():
            cpp_extension.load(
                name=f"{NAMESPACE}_{_cpu_tag()}",
                sources=[str(SOURCE)],
                extra_cflags=list(CFLAGS),
                extra_ldflags=["-fopenmp"],
                is_python_module=False,
            )
    except Exception as error:  # no compiler, no ninja, a failed build: the torch path
        warnings.warn(
            f"graphformer's fused attention kernel could not be built ({type(error).__name__}:"
            f" {str(error).strip().splitlines()[-1] if str(error).strip() else ''}); "
            "attention runs on torch's kernels (correct, slower at head width 16). Install a "
            f"C++ compiler and ninja, or set {ENV}=0 to skip the attempt.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return getattr(torch.ops, NAMESPACE)


def enabled() -> bool:
    """False when ``GRAPHFORMER_FUSED_ATTENTION=0``."""
    return os.environ.get(ENV, "1") != "0"


def usable(x: torch.Tensor) -> bool:
    """Whether the kernel runs attention on blocks like ``x`` (..., 16): on the CPU, in
    float32, outside autocast, enabled, and built (the first call builds it)."""
    return (
        x.shape[-1] == WIDTH
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and enabled()
        and _ops() is not None
    )


def forward(
    out: torch.Tensor,
    qkv: torch.Tensor,
    samples: Samples,
    mask: torch.Tensor | None,
    keep: torch.Tensor | None,
    scale: float,
    dropout: float,
) -> torch.Tensor:
    """Attention within one group of ``samples``, written into their nodes' rows of ``out``
    (N, H, 16). ``qkv``: contiguous float32 (N, 3, H, 16) packed queries, keys and values;
    ``mask``: contiguous additive (B, 1 or H, 1 or L, L) or None; ``keep``: the group's
    (B·H, L, L) uint8 keep mask of dropout ``dropout`` or None. Returns the rows' log-sum-exp
    (B·H, L), what :func:`backward` needs. No autograd."""
    keep_scale = 1.0 / (1.0 - dropout) if keep is not None else 1.0
    return _ops().forward(out, qkv, *samples, mask, keep, scale, keep_scale)


def backward(
    grad_qkv: torch.Tensor,
    grad: torch.Tensor,
    qkv: torch.Tensor,
    samples: Samples,
    saved: tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor],
    scale: float,
    dropout: float,
    mask_grad: bool,
) -> torch.Tensor | None:
    """The gradients of the group's q, k, v written into their nodes' rows of ``grad_qkv``
    (N, 3, H, 16), from the output's contiguous ``grad`` (N, H, 16) and what :func:`forward`
    was given and gave: ``saved`` = (mask, keep, log-sum-exp). Returns the scores' gradient
    (B·H, L, L), the mask's before its broadcast is summed, when ``mask_grad``; else None."""
    mask, keep, lse = saved
    keep_scale = 1.0 / (1.0 - dropout) if keep is not None else 1.0
    return _ops().backward(
        grad_qkv, grad, qkv, *samples, mask, keep, lse, scale, keep_scale, mask_grad
    )
