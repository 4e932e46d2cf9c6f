"""Input checks shared by every layer: which value is wrong, what was expected, what to do."""

from __future__ import annotations

import torch


def check_node_features(
    name: str, x: torch.Tensor, num_rows: int, width: int, check_finite: bool = True
) -> None:
    """Raise ValueError unless ``x`` is a finite float tensor of shape (num_rows, width)."""
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
    # Any NaN/inf makes the sum non-finite, so one cheap reduction clears the usual case;
    # only a non-finite sum (or an overflowing one) pays for the elementwise check.
    if check_finite and not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).any(dim=1).nonzero().squeeze(1)
        raise ValueError(
            f"{name} contains NaN or inf in {len(bad)} row(s), first rows {bad[:5].tolist()}. "
            "Clean the input, or pass check_finite=False to the layer to skip this check."
        )


def check_edge_tensor(name: str, value: torch.Tensor, shape: tuple[int, ...]) -> None:
    """Raise ValueError unless the per-edge tensor ``value`` is float with ``shape``."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        got = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"{name} must be a floating-point tensor; got {got}")
    if tuple(value.shape) != shape:
        raise ValueError(
            f"{name} must have shape {shape} = (number of edges, ...); got {tuple(value.shape)}"
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
