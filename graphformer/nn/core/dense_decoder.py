"""The dense engine for a decoder: causal self-attention and cross-attention as padded SDPA.

On :func:`graphformer.graphs.causal_graph` node i of a sample receives from nodes j ≤ i;
on :func:`graphformer.graphs.complete_bipartite` every query of a sample receives from
every key of the same sample. Both are ``softmax(QKᵀ + mask) V`` per sample, so padding
the samples (one :class:`~graphformer.nn.core.dense.Padding` group) and calling
``torch.nn.functional.scaled_dot_product_attention`` (with ``is_causal``, or with a
key-padding mask) computes the same thing with fused kernels and never builds the graphs.
The maths lives on :class:`~graphformer.nn.MultiHeadAttention`
(:meth:`~graphformer.nn.MultiHeadAttention.dense_causal`,
:meth:`~graphformer.nn.MultiHeadAttention.dense_cross`), with its projections and its
attention dropout, so they equal its message passing on those graphs with the same weights.
"""

from __future__ import annotations

from graphformer.nn.layers.attention import MultiHeadAttention

import torch


def causal_attention(
    attention: MultiHeadAttention, x: torch.Tensor, sizes: torch.Tensor
) -> torch.Tensor:
    """``attention`` on ``causal_graph(sizes)``: :meth:`MultiHeadAttention.dense_causal`."""
    return attention.dense_causal(x, sizes)


def cross_attention(
    attention: MultiHeadAttention,
    memory: torch.Tensor,
    memory_sizes: torch.Tensor,
    x: torch.Tensor,
    sizes: torch.Tensor,
) -> torch.Tensor:
    """``attention`` on ``complete_bipartite(memory_sizes, sizes)`` with inputs
    ``(memory, x)``: :meth:`MultiHeadAttention.dense_cross`."""
    return attention.dense_cross(memory, memory_sizes, x, sizes)
