r"""Kernelised (linear) attention within each sample: the sums every linear global mixer
shares (SGFormer, Polynormer).

For non-negative (or any) feature maps :math:`\phi(q_i), \psi(k_j) \in \mathbb{R}^m` per
head, attention whose weights are :math:`\phi(q_i)^\top \psi(k_j)` factorises,

.. math::
    \sum_{j \in S(i)} \big(\phi(q_i)^\top \psi(k_j)\big)\, v_j
        = \phi(q_i)^\top \Big(\sum_{j \in S(i)} \psi(k_j)\, v_j^\top\Big), \qquad
    \sum_{j \in S(i)} \phi(q_i)^\top \psi(k_j) = \phi(q_i)^\top \sum_{j \in S(i)} \psi(k_j),

with :math:`S(i)` the nodes of node :math:`i`'s sample (``graph.batch_num_nodes()``):
:math:`O(n m d)` per sample of :math:`n` nodes instead of :math:`O(n^2 d)`, and no
:math:`n \times n` matrix. The per-sample sums are batched matrix products over the nodes
padded to the longest sample (:func:`graphformer.nn.core.dense.padding_index`); a batch
of one sample (one big graph, or a sampled subgraph) is not padded at all. A segment sum
by ``index_add`` would materialise every node's :math:`m \times d` outer product.
"""

from __future__ import annotations

from graphformer.nn.core.dense import padding_index

import torch


def sample_sums(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sizes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Numerator and denominator of linear attention within each sample.

    ``q``, ``k``: (N, H, m) feature maps of queries and keys; ``v``: (N, H, d) values;
    ``sizes``: (B,) nodes per sample, rows laid out sample after sample (0-node samples
    allowed). Returns ``(numerator, denominator)``: (N, H, d) rows
    :math:`\phi(q_i)^\top \sum_{j \in S(i)} \psi(k_j) v_j^\top` and (N, H) rows
    :math:`\phi(q_i)^\top \sum_{j \in S(i)} \psi(k_j)`.
    """
    if q.shape[0] == 0:
        return v.new_zeros(v.shape), v.new_zeros(v.shape[:2])
    sizes = sizes.to(q.device)
    if int((sizes > 0).sum()) == 1:  # one sample holds every node: no padding
        key_value = torch.einsum("nhm,nhd->hmd", k, v)
        numerator = torch.einsum("nhm,hmd->nhd", q, key_value)
        return numerator, torch.einsum("nhm,hm->nh", q, k.sum(0))
    sample, position, longest = padding_index(sizes)

    def pad(t: torch.Tensor) -> torch.Tensor:  # (N, H, W) → (B, H, L, W), zero padding
        padded = t.new_zeros(len(sizes), longest, *t.shape[1:])
        padded[sample, position] = t
        return padded.transpose(1, 2)

    q_pad, k_pad = pad(q), pad(k)
    key_value = k_pad.transpose(2, 3) @ pad(v)  # (B, H, m, d)
    numerator = (q_pad @ key_value).transpose(1, 2)[sample, position]  # (N, H, d)
    key_sum = k_pad.sum(2)  # (B, H, m)
    denominator = (q * key_sum[sample]).sum(-1)  # (N, H)
    return numerator, denominator


def per_sample(values: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Each node's row of a per-sample tensor ``values`` (B, ...): (N, ...)."""
    sizes = sizes.to(values.device)
    samples = torch.arange(len(sizes), device=values.device)
    return values[torch.repeat_interleave(samples, sizes, output_size=int(sizes.sum()))]
