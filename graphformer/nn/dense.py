r"""The dense engine: attention on a batched graph as padded SDPA per sample.

Attention on a graph is :math:`o_i = \sum_{j \to i} \mathrm{softmax}_j(s_{ij})\, v_j` over
the in-edges of each node. When every edge stays within one sample, the scores of sample
:math:`b` fit in an :math:`n_b \times n_b` matrix, and the whole batch in a padded
:math:`(B, H, L, L)` one with :math:`L = \max_b n_b`: message passing over the edges is
then ``softmax(QKᵀ + M) V`` with a mask :math:`M` that is :math:`-\infty` where there is
no edge, computed by ``torch.nn.functional.scaled_dot_product_attention`` with fused
kernels and no gather or scatter per edge.

- On a **complete graph** (``graphformer.graphs.complete_graph``) :math:`M` only masks
  padding (:func:`dense_attention`), and the graph is never built.
- On **any other graph** (:class:`AttentionLayout`) :math:`M_{ij} = 0` on an edge
  :math:`j \to i`; per-edge additive terms :math:`t_{ij}` (a bias, Shaw key terms
  :math:`q_i \cdot a^K_{ij}`) enter as :math:`M_{ij} = t_{ij}`. A pair joined by several
  edges contributes :math:`\sum_e \exp(s_{ij} + t_e) = \exp(s_{ij} + \log \sum_e e^{t_e})`
  to the softmax, so :math:`M_{ij} = \operatorname{logsumexp}_e t_e` (:math:`\log c` for
  :math:`c` plain copies) counts multi-edges exactly as message passing does. A node
  without in-edges gets zeros, as message passing gives it.

What it cannot run: cross-attention on bipartite graphs, Shaw value terms (a per-edge
value), returned attention weights, and graphs with an edge between two samples.
:func:`dense_pays_off` is the rule by which ``engine='auto'`` takes it.
"""

from __future__ import annotations

from graphformer.graphs import derived

import dgl
import torch
import torch.nn.functional as F

#: ``auto`` runs attention dense when the padded score cells, :math:`B L^2`, are at most
#: this many times the edges, and the longest sample has at most :data:`DENSE_MAX_SAMPLE`
#: nodes. Measured with ``experiments/bench/dense_rule.py`` (README there).
DENSE_CELLS_PER_EDGE = 8.0
#: Above this many nodes in one sample the (L, L) score matrices grow too large to pad.
DENSE_MAX_SAMPLE = 512


def padding_index(sizes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """For nodes laid out sample after sample: each node's sample, its position in the
    sample, and the longest sample's size."""
    samples = torch.arange(len(sizes), device=sizes.device)
    sample = torch.repeat_interleave(samples, sizes)
    start = torch.cumsum(sizes, 0) - sizes
    position = torch.arange(len(sample), device=sizes.device) - start[sample]
    return sample, position, int(sizes.max()) if len(sizes) else 0


class Padding:
    """Where each of N rows, laid out sample after sample, sits in a (B, L) padded batch."""

    def __init__(self, sizes: torch.Tensor, device: torch.device) -> None:
        # Index on the sizes' own device, then move: no host sync on the features' device.
        sample, position, self.longest = padding_index(sizes)
        self.sample, self.position = sample.to(device), position.to(device)
        self.sizes = sizes.to(device)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(N, H, D) rows → (B, H, L, D), zeros at padding."""
        padded = x.new_zeros(len(self.sizes), self.longest, *x.shape[1:])
        padded[self.sample, self.position] = x
        return padded.transpose(1, 2)

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """(B, H, L, D) → (N, H, D): the valid rows."""
        return padded.transpose(1, 2)[self.sample, self.position]

    def key_mask(self) -> torch.Tensor:
        """(B, 1, 1, L): True at valid keys. A sample without keys sees only padding (zero
        values), so its queries get zeros, as message passing gives a node without in-edges."""
        valid = torch.arange(self.longest, device=self.sizes.device) < self.sizes.unsqueeze(1)
        valid = valid | (self.sizes == 0).unsqueeze(1)
        return valid[:, None, None, :]


def dense_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    sizes: torch.Tensor,
    dropout: float = 0.0,
) -> torch.Tensor:
    r"""Per-sample full attention :math:`o_i = \sum_{j \in S(i)} \mathrm{softmax}_j(q_i \cdot
    k_j)\, v_j` over the nodes :math:`S(i)` of node i's sample.

    ``q``, ``k``, ``v``: (N, H, D), nodes ordered sample by sample; ``q`` already scaled.
    ``sizes``: (B,) nodes per sample, summing to N. ``dropout``: on the attention weights.
    Returns (N, H, D).
    """
    if q.shape[0] == 0:
        return torch.zeros_like(q)
    layout = Padding(sizes, q.device)
    out = F.scaled_dot_product_attention(
        layout.pad(q),
        layout.pad(k),
        layout.pad(v),
        attn_mask=layout.key_mask(),
        dropout_p=dropout,
        scale=1.0,
    )
    return layout.unpad(out)


def dense_pays_off(graph: dgl.DGLGraph) -> bool:
    r"""The ``auto`` rule: padded SDPA beats message passing on ``graph`` when its
    :math:`B L^2` padded cells are at most :data:`DENSE_CELLS_PER_EDGE` × its edges and no
    sample exceeds :data:`DENSE_MAX_SAMPLE` nodes. Reads only the batch sizes (no sync on a
    GPU graph beyond the sizes, which DGL keeps on the CPU)."""
    sizes = graph.batch_num_nodes()
    if len(sizes) == 0 or graph.num_edges() == 0:
        return False
    longest = int(sizes.max())
    cells = len(sizes) * longest * longest
    return longest <= DENSE_MAX_SAMPLE and cells <= DENSE_CELLS_PER_EDGE * graph.num_edges()


class AttentionLayout:
    r"""The edges of a batched graph as cells of padded per-sample score matrices.

    Edge :math:`j \to i` of sample :math:`b` is the cell :math:`(b, i, j)` of a
    :math:`(B, L, L)` matrix, :math:`i, j` the nodes' positions in the sample. Built once
    per graph object and device (:func:`attention_layout`). ``within_samples`` is False
    when an edge joins two samples; the layout then cannot be used.
    """

    def __init__(self, graph: dgl.DGLGraph, device: torch.device) -> None:
        # Index on the graph's device (the CPU for PyPI's DGL), then move the indices: no
        # host syncs on the features' device. The masks are built there.
        sizes = graph.batch_num_nodes()
        here = Padding(sizes, graph.device)
        batch, longest = len(sizes), here.longest
        src, dst = graph.edges()
        self.within_samples = bool(torch.equal(here.sample[src], here.sample[dst]))
        cell = (here.sample[dst] * longest + here.position[dst]) * longest + here.position[src]
        cells, inverse, counts = torch.unique(cell, return_inverse=True, return_counts=True)
        self.multi_edges = len(cells) < len(cell)
        self.num_cells = len(cells)
        # (sample, query position, key position) of each cell; without multi-edges, of
        # each edge in edge order (the per-edge terms then go straight to their cells).
        cells = cells if self.multi_edges else cell
        self.cell = tuple(
            part.to(device)
            for part in (
                cells // (longest * longest),
                (cells // longest) % longest,
                cells % longest,
            )
        )
        in_degree = graph.in_degrees()
        # Rows of padding or of nodes without in-edges attend to everything (finite
        # softmax); their outputs are zeroed afterwards.
        empty = torch.ones(batch, longest, dtype=torch.bool, device=graph.device)
        empty[here.sample, here.position] = in_degree == 0
        self.padding = Padding(sizes, device)
        self.dst, self.inverse = dst.to(device), inverse.to(device)
        self.has_in_edges = (in_degree > 0).to(device).view(-1, 1, 1)
        # Additive masks (a boolean one costs SDPA a conversion per call): -inf off the
        # edges, 0 on empty rows; ``mask`` adds 0 on edges (log c on a c-fold multi-edge).
        no_edge = torch.tensor(float("-inf"), device=device)
        self.base = torch.where(empty.to(device), 0.0, no_edge)[:, None, :, None].expand(
            batch, 1, longest, longest
        )
        self.mask = self.base.clone()
        self.mask[self.cell[0], :, self.cell[1], self.cell[2]] = (
            counts.to(device).float().log().unsqueeze(1)
        )

    def score_mask(self, terms: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        """The SDPA ``attn_mask``: (B, 1, L, L) 0 / -inf adjacency, or (B, H, L, L) with the
        per-edge additive ``terms`` (E, H) (log-sum-exp over the copies of a multi-edge)."""
        if terms is None:
            return self.mask.to(dtype)
        if self.multi_edges:
            # log Σ_e exp(t_e) per cell, stabilised by the cell's maximum.
            index = self.inverse.unsqueeze(1).expand_as(terms)
            peak = terms.new_full((self.num_cells, terms.shape[1]), float("-inf"))
            peak = peak.scatter_reduce(0, index, terms, reduce="amax").detach()
            spread = (terms - peak[self.inverse]).exp()
            total = terms.new_zeros(peak.shape).index_add_(0, self.inverse, spread)
            terms = total.log() + peak
        batch, _, longest, _ = self.base.shape
        mask = self.base.to(dtype).expand(batch, terms.shape[1], longest, longest).clone()
        b, i, j = self.cell
        mask[b, :, i, j] = terms
        return mask

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        terms: torch.Tensor | None = None,
        dropout: float = 0.0,
    ) -> torch.Tensor:
        r""":math:`o_i = \sum_{j \to i} \mathrm{softmax}_j(q_i \cdot k_j + t_{ij})\, v_j` on
        the layout's graph. ``q``, ``k``, ``v``: (N, H, D), ``q`` already scaled;
        ``terms``: optional (E, H) additive per-edge terms. Returns (N, H, D)."""
        if q.shape[0] == 0:
            return torch.zeros_like(q)
        padding = self.padding
        out = F.scaled_dot_product_attention(
            padding.pad(q),
            padding.pad(k),
            padding.pad(v),
            attn_mask=self.score_mask(terms, q.dtype),
            dropout_p=dropout,
            scale=1.0,
        )
        return padding.unpad(out) * self.has_in_edges


def attention_layout(graph: dgl.DGLGraph, device: torch.device) -> AttentionLayout:
    """:class:`AttentionLayout` of ``graph`` on ``device``, built once per graph object."""
    return derived(graph, f"attention_layout:{device}", lambda g: AttentionLayout(g, device))
