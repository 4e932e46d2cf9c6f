"""The dense engine for a decoder: causal self-attention and cross-attention as padded SDPA.

On :func:`graphformer.graphs.causal_graph` node i of a sample receives from nodes j ≤ i;
on :func:`graphformer.graphs.complete_bipartite` every query of a sample receives from
every key of the same sample. Both are ``softmax(QKᵀ + mask) V`` per sample, so padding
the samples and calling ``torch.nn.functional.scaled_dot_product_attention`` (with
``is_causal``, or with a key-padding mask) computes the same thing with fused kernels and
never builds the graphs. These functions use only the public projections of a
:class:`~graphformer.nn.MultiHeadAttention` (``q_proj``, ``k_proj``, ``v_proj``,
``out_proj``, ``num_heads``, ``head_dim``, ``attn_dropout``), so they equal its message
passing on those graphs with the same weights.
"""

from __future__ import annotations

import math

from graphformer.nn.core.dense import Padding
from graphformer.nn.layers.attention import MultiHeadAttention

import torch
import torch.nn.functional as F


def _heads(attention: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    return x.view(-1, attention.num_heads, attention.head_dim)


def _project(attention: MultiHeadAttention, x_src: torch.Tensor, x_dst: torch.Tensor):
    q = _heads(attention, attention.q_proj(x_dst)) / math.sqrt(attention.head_dim)
    k = _heads(attention, attention.k_proj(x_src))
    v = _heads(attention, attention.v_proj(x_src))
    return q, k, v


def _dropout(attention: MultiHeadAttention) -> float:
    return attention.attn_dropout.p if attention.training else 0.0


def causal_attention(
    attention: MultiHeadAttention, x: torch.Tensor, sizes: torch.Tensor
) -> torch.Tensor:
    r"""Masked self-attention :math:`o_i = W_O \sum_{j \le i} \mathrm{softmax}_j(q_i \cdot
    k_j / \sqrt d)\, v_j` within each sample: ``attention`` on ``causal_graph(sizes)``.

    ``x``: (N, embed_dim), rows sample after sample; ``sizes``: (B,) rows per sample.
    Samples are right-padded, so a valid query's causal window never reaches padding and
    ``is_causal`` alone is the whole mask.
    """
    if x.shape[0] == 0:
        return attention.out_proj(x)
    layout = Padding(sizes, x.device)
    q, k, v = (layout.pad(t) for t in _project(attention, x, x))
    out = F.scaled_dot_product_attention(
        q, k, v, dropout_p=_dropout(attention), is_causal=True, scale=1.0
    )
    return attention.out_proj(layout.unpad(out).reshape(-1, attention.embed_dim))


def cross_attention(
    attention: MultiHeadAttention,
    memory: torch.Tensor,
    memory_sizes: torch.Tensor,
    x: torch.Tensor,
    sizes: torch.Tensor,
) -> torch.Tensor:
    r"""Cross-attention :math:`o_i = W_O \sum_{j \in M(i)} \mathrm{softmax}_j(q_i \cdot k_j /
    \sqrt d)\, v_j` over the memory rows :math:`M(i)` of query i's sample: ``attention``
    on ``complete_bipartite(memory_sizes, sizes)`` with inputs ``(memory, x)``.

    ``memory``: (N_src, src_dim); ``x``: (N_dst, embed_dim); sizes: (B,) rows per sample.
    """
    if x.shape[0] == 0 or memory.shape[0] == 0:  # no queries, or no keys anywhere
        return attention.out_proj(x.new_zeros(x.shape))
    queries, keys = Padding(sizes, x.device), Padding(memory_sizes, x.device)
    q, k, v = _project(attention, memory, x)
    out = F.scaled_dot_product_attention(
        queries.pad(q),
        keys.pad(k),
        keys.pad(v),
        attn_mask=keys.key_mask(),
        dropout_p=_dropout(attention),
        scale=1.0,
    )
    return attention.out_proj(queries.unpad(out).reshape(-1, attention.embed_dim))
