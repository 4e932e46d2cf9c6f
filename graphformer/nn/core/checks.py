"""Input checks shared by every layer: which value is wrong, what was expected, what to do."""

from __future__ import annotations

import math

import dgl
import torch
from torch import nn


def largest_safe(dtype: torch.dtype) -> float:
    """The largest magnitude an input may have: √(largest float) / 16 of ``dtype`` (at least
    float32's, ≈ 1.2e18). Above it, LayerNorm's variance and attention's q·k overflow."""
    return torch.finfo(torch.promote_types(dtype, torch.float32)).max ** 0.5 / 16


def check_values(name: str, x: torch.Tensor, non_negative: bool = False, unit: str = "row") -> None:
    """Raise ValueError if ``x`` holds NaN/inf, values too large for float32 arithmetic
    (:func:`largest_safe`) or, with ``non_negative``, negative values.

    One ``aminmax`` pass clears the usual case (it propagates NaN); only a failing tensor
    pays for locating the rows. Meta and empty tensors have no values to check.
    """
    if x.device.type == "meta" or x.numel() == 0:
        return
    low, high = (float(v) for v in torch.aminmax(x.detach()))
    flat = x.detach().reshape(len(x), -1) if x.dim() else x.detach().reshape(1, 1)
    skip = "or pass check_finite=False to the layer to skip this check."

    def where(bad: torch.Tensor) -> str:
        rows = bad.any(dim=1).nonzero().squeeze(1)
        return f"{len(rows)} {unit}(s), first {unit}s {rows[:5].tolist()}"

    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(
            f"{name} contains NaN or inf in {where(~torch.isfinite(flat))}. Clean the input, "
            + skip
        )
    limit = largest_safe(x.dtype)
    if max(-low, high) > limit:
        raise ValueError(
            f"{name} has finite values up to {max(-low, high):.1e} in magnitude in "
            f"{where(flat.abs() > limit)}; above {limit:.1e}, float32 LayerNorm and attention "
            f"overflow to NaN. Standardize or rescale the input, {skip}"
        )
    if non_negative and low < 0:
        raise ValueError(
            f"{name} must be non-negative; got values down to {low:.3g} in {where(flat < 0)}. "
            "Use non-negative weights (e.g. their absolute value or a softplus)."
        )


def check_dtype(name: str, x: torch.Tensor, expected: torch.dtype | None) -> None:
    """Raise ValueError unless ``x`` has the dtype of the layer's parameters, ``expected``
    (not checked under autocast, which mixes dtypes on purpose)."""
    if expected is None or x.dtype == expected or torch.is_autocast_enabled(x.device.type):
        return
    raise ValueError(
        f"{name} has dtype {x.dtype} but the layer's parameters are {expected}; convert the "
        f"input with {name}.to({expected}) (in a dataset: once, when it is built), or the "
        f"model with model.to({x.dtype})"
    )


def check_node_features(
    name: str,
    x: torch.Tensor,
    num_rows: int,
    width: int,
    check_finite: bool = True,
    dtype: torch.dtype | None = None,
) -> None:
    """Raise ValueError unless ``x`` is a finite float tensor of shape (num_rows, width)
    (and, when given, of ``dtype``: the layer's parameters')."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(
            f"{name} must be floating point; got dtype {x.dtype}. Convert with .float(), or "
            "embed integer categories with graphformer.nn.CategoricalEncoder first."
        )
    if x.dim() != 2 or x.shape[0] != num_rows or x.shape[1] != width:
        raise ValueError(
            f"{name} must have shape ({num_rows}, {width}) = (number of nodes, feature "
            f"width the layer was built with); got {tuple(x.shape)}"
        )
    check_dtype(name, x, dtype)
    if check_finite:
        check_values(name, x, unit="row")


def check_edge_tensor(
    name: str,
    value: torch.Tensor,
    shape: tuple[int, ...],
    check_finite: bool = True,
    non_negative: bool = False,
    dtype: torch.dtype | None = None,
) -> None:
    """Raise ValueError unless the per-edge tensor ``value`` is float with ``shape`` (and
    ``dtype`` when given); with ``check_finite`` also unless its values are finite, not too
    large (:func:`check_values`) and, when ``non_negative``, ≥ 0."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        got = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"{name} must be a floating-point tensor; got {got}")
    if tuple(value.shape) != shape:
        raise ValueError(
            f"{name} must have shape {shape} = (number of edges, ...); got {tuple(value.shape)}"
        )
    check_dtype(name, value, dtype)
    if check_finite:
        check_values(name, value, non_negative, unit="edge")


def check_kernel_dtype(name: str, x: torch.Tensor, graph: dgl.DGLGraph) -> None:
    """Raise ValueError for float16 features on a CPU graph: DGL's CPU kernels take
    bfloat16, float32 and float64 only."""
    if x.dtype == torch.float16 and graph.device.type == "cpu":
        raise ValueError(
            f"{name} is float16 but the graph is on the CPU, where DGL's message passing "
            "supports bfloat16, float32 and float64 only; use float32 on the CPU "
            "(model.float(), x.float()), engine='torch' (torch's own kernels), or a GPU. "
            "From the CLI: drop the 16-bit trainer.precision (the default is 32; bf16-mixed "
            "runs on the CPU), or set model.block.engine=torch"
        )


def check_batch_norm(norm: nn.Module, x: torch.Tensor) -> None:
    """Raise ValueError when a BatchNorm in training would see a single node."""
    if isinstance(norm, nn.BatchNorm1d) and norm.training and len(x) == 1:
        raise ValueError(
            "norm='batch' needs more than one node per batch in training; this batch has 1 "
            "node (a single 1-node graph). Use a larger batch_size, drop 1-node graphs, or "
            "choose norm='layer'"
        )


def check_divisible(embed_dim: int, num_heads: int) -> None:
    """Raise ValueError unless ``num_heads`` splits ``embed_dim`` evenly."""
    check_positive(embed_dim=embed_dim, num_heads=num_heads)
    if embed_dim % num_heads:
        divisors = [h for h in range(1, min(embed_dim, 16) + 1) if embed_dim % h == 0]
        raise ValueError(
            f"num_heads={num_heads} must divide embed_dim={embed_dim}; heads that do: {divisors}"
        )


def check_positive(**sizes: int) -> None:
    """Raise ValueError for any size that is not a positive int."""
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{key} must be a positive int; got {value!r}")
