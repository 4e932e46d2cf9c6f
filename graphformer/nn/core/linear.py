r"""Per-edge linear maps on oneDNN, where torch's default GEMM is slow for their shape.

GatedGCN adds :math:`C e_{ij}` to every edge's gate: a GEMM of (E, d) edge states by a
(d, d) weight, with E in the tens of thousands and d small. torch's CPU ``addmm`` runs it
on MKL's sgemm, which on the 2-core AMD VM of this project's benchmarks reaches 45–55
GFLOP/s at d = 70 (the width of the benchmarking-gnns GatedGCN recipes), against 100–110
for oneDNN's matmul (``torch.ops.mkldnn._linear_pointwise``, the kernel inductor uses for
CPU linears) on the same shape; at d = 32–64 the two are level. oneDNN also writes
:math:`\mathrm{other} + e C^\top` in one pass (a fused ``add`` post-op), where ``addmm``
first copies ``other``. Measured with ``experiments/bench/edge_linear.py`` (table in
experiments/bench/README.md, issue 23's fourth pass).

:func:`add_linear` takes oneDNN when :func:`onednn_pays_off` (a CPU float32 batch of at
least :data:`ONEDNN_MIN_ROWS` rows, where oneDNN's per-shape set-up of ~1 ms is paid back;
every new number of edges builds a new primitive) and the op exists in this torch build;
else ``torch.addmm``. Backward: the input gradient :math:`g C` on oneDNN too, the weight
gradient :math:`g^\top e` on torch's ``mm`` (oneDNN needs both operands transposed and
copied for it, which measured slower).
"""

from __future__ import annotations

import torch

#: Fewest rows for which oneDNN's per-shape primitive set-up (~1 ms for each new row
#: count, measured) is paid back by its faster GEMM.
ONEDNN_MIN_ROWS = 16384


def _onednn_linear():
    """``torch.ops.mkldnn._linear_pointwise`` when this torch build has it, else None."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


def onednn_pays_off(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`add_linear` takes oneDNN for ``x`` (rows, in) and ``weight``."""
    return (
        x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and x.dim() == 2
        and x.shape[0] >= ONEDNN_MIN_ROWS
        and _onednn_linear() is not None
    )


class _AddLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, other, x, weight):  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        x, other = x.contiguous(), other.contiguous()
        return _onednn_linear().binary(x, other, weight.contiguous(), None, "add")

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_weight = None
        if ctx.needs_input_grad[1]:  # g C = linear(g, Cᵀ)
            grad_x = _onednn_linear()(grad, weight.t().contiguous(), None, "none", [], "")
        if ctx.needs_input_grad[2]:
            grad_weight = grad.t().mm(x)
        return grad, grad_x, grad_weight


def add_linear(other: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{other} + x W^\top` for ``other`` (rows, out), ``x`` (rows, in) and
    ``weight`` :math:`W` (out, in): ``torch.addmm(other, x, weight.t())``, on oneDNN when
    :func:`onednn_pays_off` (module docstring). Same values to float32 rounding."""
    if onednn_pays_off(x, weight):
        return _AddLinear.apply(other, x, weight)
    return torch.addmm(other, x, weight.t())
