r"""Opt-in fast dropout: inverted dropout whose masks take 16 random bits per element (1
at ``p = 0.5``).

``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``, which on a CPU without
Intel's MKL stream (AMD machines among them) runs one Mersenne-Twister double per element,
serially: on (E, d) edge tensors it is most of a dropout's time (a quarter of a GatedGCN
recipe's step, issue 23). :func:`fast_dropout` draws a quarter as many 64-bit integers
(``random_``, still serial) and compares each 16-bit quarter with a threshold in one
vectorised pass:

.. math::
    \mathrm{keep} = (b \ge \lfloor 2^{16} p \rceil - 2^{15}), \qquad
    y = \mathrm{keep} \odot x / (1 - p)

with :math:`b` a uniform int16, so an element is dropped with probability
:math:`\lfloor 2^{16} p \rceil / 2^{16}` (within :math:`2^{-17}` of ``p``). At
``p = 0.5`` (the GPS recipes' attention dropout) one random bit per element is exactly
Bernoulli(1/2): a 64th as many integers are drawn, and bit plane :math:`j` of byte
:math:`i` decides element :math:`j B + i` (:math:`B` bytes; planes outermost, so the
unpacking is one vectorised AND over contiguous bytes): the mask of a (16, 8, 190, 190)
score tensor in 1.0 against 3.7–8.4 ms, a dropout's forward and backward in 0.5×
the time. With ``relu=True`` the ReLU is folded into the mask (:math:`x > 0` and kept),
one pass less forward and backward. The masks differ from ``F.dropout``'s for the same
seed (other random numbers), so outputs of a seeded run change: it is off unless asked for
(``GatedGCN(fast_dropout=True)``, ``MultiHeadAttention(fast_dropout=True)``, or
``BlockConfig(fast_dropout=True)`` — from the CLI ``model.block.fast_dropout=true`` — for
everything built from configs: those layers, and the blocks' own dropouts as
:class:`FastDropout`). Measured on the 2-core CPU
VM: the mask of an (85,600 × 70) edge tensor in 9–13 ms against ``bernoulli_``'s 40–57 ms;
one GatedGCN layer (width 70, 16 CLUSTER graphs) forward + backward in 0.70× the time.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn


def random_words(count: int, device: torch.device) -> torch.Tensor:
    """``count`` uniform 64-bit integers, all 64 bits random (``random_()`` alone leaves the
    sign bit 0)."""
    return torch.empty(count, dtype=torch.int64, device=device).random_(-(2**63), None)


@functools.cache
def _bit_planes(device: torch.device) -> torch.Tensor:
    """(8, 1) uint8: 1, 2, 4, ..., 128 (the bit of each plane)."""
    return torch.tensor([[1 << j] for j in range(8)], dtype=torch.uint8, device=device)


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """A boolean mask of ``shape``, each element True (kept) with probability ``1 - p``:
    one random bit per element at ``p = 0.5``, 16 otherwise (the module's docstring)."""
    numel = math.prod(shape)
    if p == 0.5:
        planes = (numel + 7) // 8  # bytes, each holding 8 elements' bits
        bytes_ = random_words((planes + 7) // 8, device).view(torch.uint8)[:planes]
        keep = torch.bitwise_and(_bit_planes(device), bytes_).ne_(0)  # (8, planes) of 0/1
        return keep.view(-1)[:numel].view(shape).view(torch.bool)
    bits = random_words((numel + 3) // 4, device).view(torch.int16)[:numel].view(shape)
    return bits >= round(p * 65536) - 32768


def fast_dropout(
    x: torch.Tensor,
    p: float,
    training: bool = True,
    relu: bool = False,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """Inverted dropout of ``x`` with probability ``p`` from 16-bit random draws, 1-bit at
    ``p = 0.5`` (:func:`keep_mask`, the module's docstring); with ``relu`` it returns
    ``dropout(relu(x))`` in one pass, with ``residual`` (shaped as ``x``) ``residual +
    dropout(...)`` in that same pass (one ``addcmul``: no (E, d) temporary for the dropped
    tensor). Outside training (or
    ``p == 0``) the identity (or the ReLU), plus ``residual``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1); got {p}")
    if not training or p == 0.0 or x.numel() == 0:
        out = torch.relu(x) if relu else x
        return out if residual is None else residual + out
    keep = keep_mask(x.shape, p, x.device)
    if relu:
        keep &= x > 0
    # x times a 0-or-1/(1-p) factor (what autograd keeps): faster here than torch.where
    # or masked_fill, whose forward and backward each take a slower pass
    factor = keep_factor(keep, p, x.dtype)
    return x * factor if residual is None else torch.addcmul(residual, x, factor)


def keep_factor(keep: torch.Tensor, p: float, dtype: torch.dtype) -> torch.Tensor:
    """A :func:`keep_mask` as inverted dropout's factor: 1 / (1 - p) where kept, else 0, of
    ``dtype``. Converted as bytes (the same 0/1): uint8 → float runs 2.5–4× faster than
    bool → float on the CPU (0.7 vs 2.3–2.8 ms on an (85,600 × 70) edge tensor)."""
    return keep.view(torch.uint8).to(dtype).mul_(1.0 / (1.0 - p))


class FastDropout(nn.Dropout):
    """``nn.Dropout`` whose masks come from :func:`fast_dropout` (same ``p``, no parameters
    or buffers: state dicts do not change)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def dropout_module(p: float, fast: bool = False) -> nn.Dropout:
    """``nn.Dropout(p)``, or :class:`FastDropout` with ``fast`` (``BlockConfig.fast_dropout``)."""
    return FastDropout(p) if fast else nn.Dropout(p)
