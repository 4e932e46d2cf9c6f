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


class SampleRows:
    """Rows laid out sample after sample (``sizes``), and the same rows padded to the
    longest sample: (B, H, L, W) blocks for batched matrix products. Padding is one
    ``index_copy_`` into zeros at the rows' flat places, per-sample values reach the rows
    by ``index_select`` (faster forward + backward on the CPU than advanced indexing,
    whose backward accumulates with ``index_put_``)."""

    def __init__(self, sizes: torch.Tensor) -> None:
        #: Each row's sample, and its row in the (B·L) padded rows.
        self.sample, self.position, self.longest = padding_index(sizes)
        self.samples = len(sizes)
        self.flat = self.sample * self.longest + self.position

    def pad(self, t: torch.Tensor) -> torch.Tensor:
        """(N, H, W) → (B, H, L, W), zeros at padding."""
        padded = t.new_zeros(self.samples * self.longest, *t.shape[1:])
        padded.index_copy_(0, self.flat, t)
        return padded.view(self.samples, self.longest, *t.shape[1:]).transpose(1, 2)

    def unpad(self, t: torch.Tensor) -> torch.Tensor:
        """(B, H, L, W) → (N, H, W): the rows' values (read through the transposed view:
        an ``index_select`` would first copy it)."""
        return t.transpose(1, 2)[self.sample, self.position]

    def per_row(self, values: torch.Tensor) -> torch.Tensor:
        """Each row's entry of a per-sample tensor ``values`` (B, ...): (N, ...)."""
        return values.index_select(0, self.sample)


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
    rows = SampleRows(sizes)
    q_pad, k_pad = rows.pad(q), rows.pad(k)
    key_value = k_pad.transpose(2, 3) @ rows.pad(v)  # (B, H, m, d)
    numerator = rows.unpad(q_pad @ key_value)  # (N, H, d)
    key_sum = k_pad.sum(2)  # (B, H, m)
    denominator = (q * rows.per_row(key_sum)).sum(-1)  # (N, H)
    return numerator, denominator


def per_sample(values: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Each node's row of a per-sample tensor ``values`` (B, ...): (N, ...)."""
    sizes = sizes.to(values.device)
    samples = torch.arange(len(sizes), device=values.device)
    sample = torch.repeat_interleave(samples, sizes, output_size=int(sizes.sum()))
    return values.index_select(0, sample)
