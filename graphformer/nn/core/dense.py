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

At head width 16 on the CPU the groups run on a fused C++ kernel
(:mod:`graphformer.nn.core.small_attention`, built on first use) instead of SDPA or the
written-out formula: forward + backward in 0.41–0.45× SDPA's time on CLUSTER-sized samples.

What it cannot run: cross-attention on bipartite graphs, Shaw value terms (a per-edge
value), returned attention weights, and graphs with an edge between two samples.
:func:`dense_pays_off` is the rule by which ``engine='auto'`` takes it.
"""

from __future__ import annotations

import math

from graphformer.graphs import derived
from graphformer.nn.core import small_attention
from graphformer.nn.core.dropout import keep_mask

import dgl
import torch
import torch.nn.functional as F

#: ``auto`` runs attention dense when the padded score cells are at most
#: ``min(DENSE_CELLS_PER_EDGE, L / 8)`` times the edges (:func:`dense_pays_off`). Measured
#: with ``experiments/bench/dense_rule.py`` (table in experiments/bench/README.md): dense
#: wins below about 3 cells per edge at 16 nodes per sample, 6 at 64, 14 at 128 and more.
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


#: At most this many size groups per batch (:class:`Padding`).
MAX_SIZE_GROUPS = 4
#: What one more group costs, in padded score cells: its fixed work (some twenty small ops
#: forward and backward: the split, masks, two matmuls, softmax, dropout) measured 230–320
#: µs per group against 45–50 ns per cell at 4 heads of 16 on 2 cores, ~5,000–7,000 cells
#: (``experiments/bench/README.md``, issue 23's fifth pass). Molecule batches (32 samples of
#: 15–31 atoms: one group 30,752 cells, two 23,840) then stay in one group; CLUSTER's
#: 40–190 nodes (a third to a half of the cells saved) still split.
GROUP_COST_CELLS = 8192


def _grouped_cells(sorted_sizes: torch.Tensor, groups: int) -> tuple[int, list[torch.Tensor]]:
    """Padded score cells Σ_g B_g L_g² when samples sorted by size are cut into ``groups``
    equal-count chunks, and the chunks (positions in the sorted order)."""
    chunks = torch.arange(len(sorted_sizes)).tensor_split(groups)
    chunks = [chunk for chunk in chunks if len(chunk)]
    cells = sum(len(chunk) * int(sorted_sizes[chunk[-1]]) ** 2 for chunk in chunks)
    return cells, chunks


def size_groups(sizes: torch.Tensor, max_groups: int | None = None) -> tuple[int, list]:
    """Split samples into at most ``max_groups`` (default :data:`MAX_SIZE_GROUPS`) groups of
    similar size, each padded to its own longest sample: the count g that minimises the
    padded cells plus :data:`GROUP_COST_CELLS` per group beyond the first (the fewer on a
    tie). Returns the cells and, per group, its samples in batch order (CPU tensors)."""
    sizes = sizes.cpu()
    max_groups = MAX_SIZE_GROUPS if max_groups is None else max_groups
    if max_groups < 1:
        raise ValueError(f"max_groups must be a positive int; got {max_groups}")
    if len(sizes) == 0:
        return 0, []
    if max_groups == 1:  # one group: the batch in its own order
        return len(sizes) * int(sizes.max()) ** 2, [torch.arange(len(sizes))]
    by_size = torch.argsort(sizes, stable=True)
    options = [_grouped_cells(sizes[by_size], g) for g in range(1, max_groups + 1)]
    cells, chunks = min(options, key=lambda option: option[0] + GROUP_COST_CELLS * len(option[1]))
    return cells, [torch.sort(by_size[chunk]).values for chunk in chunks]


def key_mask(sizes: torch.Tensor, longest: int) -> torch.Tensor:
    """(B, 1, 1, longest): True at the valid keys of samples of ``sizes``. A sample without
    keys sees only padding (zero values), so its queries get zeros, as message passing
    gives a node without in-edges."""
    valid = torch.arange(longest, device=sizes.device) < sizes.unsqueeze(1)
    valid = valid | (sizes == 0).unsqueeze(1)
    return valid[:, None, None, :]


def padded_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    dropout: float = 0.0,
    scale: float | None = None,
    fast_dropout: bool = False,
) -> torch.Tensor:
    r""":math:`\mathrm{drop}(\mathrm{softmax}(s\, Q K^\top + M))\, V` on (B, H, L, D)
    blocks: ``F.scaled_dot_product_attention`` with ``attn_mask=mask`` (boolean: True where
    a key is valid; or additive), ``dropout_p=dropout`` and ``scale`` :math:`s` (default
    :math:`1/\sqrt D`). With ``fast_dropout`` and ``dropout > 0`` the same formula written
    out (:func:`dropped_attention`), its dropout mask drawn by
    :func:`graphformer.nn.core.dropout.keep_mask`: on the CPU SDPA's dropout draws one
    ``bernoulli_`` double per score cell (9 % of a ``zinc_logp_gps`` training step); other
    masks than SDPA's for a seed, hence opt-in."""
    if not (fast_dropout and dropout > 0.0):
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout, scale=scale
        )
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return dropped_attention(q, k, v, additive_mask(mask, q.dtype), dropout, scale)[0]


def additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean attention mask (True where a key is valid) as 0 / -inf of ``dtype``;
    others unchanged."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, -math.inf)


def dropped_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    dropout: float,
    scale: float,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    r"""SDPA written out with a fast dropout mask: :math:`O = c\, (P \odot Z)\, V`,
    :math:`P = \mathrm{softmax}(s\, Q K^\top + M)`, :math:`Z` the 0/1 keep mask,
    :math:`c = 1 / (1 - p)` (applied to the (L, D) output, not the (L, L) weights; the mask
    multiplies as bytes: no float copy of it). ``mask``: additive (:func:`additive_mask`) or
    None; ``out``: where to write O (not under autograd). Returns O and (P, Z, P ⊙ Z), what
    the backward pass needs (:func:`dropped_attention_backward`); differentiable by autograd
    as well."""
    scores = torch.matmul(q, k.transpose(-2, -1))
    scores = scores.mul_(scale) if mask is None else torch.add(mask, scores, alpha=scale)
    probs = torch.softmax(scores, dim=-1)
    keep = keep_mask(probs.shape, dropout, probs.device).view(torch.uint8)
    dropped = probs * keep  # uint8 → float on the fly: 0.6× the time of a float factor
    if out is None:
        return torch.matmul(dropped, v) * (1.0 / (1.0 - dropout)), (probs, keep, dropped)
    torch.matmul(dropped, v, out=out).mul_(1.0 / (1.0 - dropout))
    return out, (probs, keep, dropped)


def dropped_attention_backward(
    grad: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    saved: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    scale: float,
    dropout: float,
    out: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    r"""Gradients of :func:`dropped_attention` for (B·H, L, D) blocks, written into ``out``
    (the gradients of q, k, v, same shapes): with :math:`G' = c\, G` (:math:`G` the
    output's gradient), :math:`\partial V = (P \odot Z)^\top G'`, :math:`\partial P = (G'
    V^\top) \odot Z`, :math:`\partial S = P \odot (\partial P - \mathrm{rowsum}(\partial P
    \odot P))` (returned: the additive mask's gradient), :math:`\partial Q = s\, \partial
    S\, K`, :math:`\partial K = s\, \partial S^\top Q`."""
    probs, keep, dropped = saved
    grad = grad * (1.0 / (1.0 - dropout))  # c on the (L, D) gradient, not on (L, L) cells
    torch.bmm(dropped.transpose(1, 2), grad, out=out[2])
    grad_probs = torch.bmm(grad, v.transpose(1, 2)).mul_(keep)
    grad_scores = torch._softmax_backward_data(grad_probs, probs, -1, probs.dtype)
    # s applied to ∂Q and ∂K: 2 (L, D) passes, fewer cells than one (L, L) for L > 2D
    torch.bmm(grad_scores, k, out=out[0]).mul_(scale)
    torch.bmm(grad_scores.transpose(1, 2), q, out=out[1]).mul_(scale)
    return grad_scores


def _first_order_only(how: str) -> None:
    """Raise in a written-out backward asked for a second order (``create_graph=True``)."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            f"dense attention {how} has first-order gradients only (its backward is "
            f"written out); for higher orders set {small_attention.ENV}=0 and build the "
            "layer with fast_dropout=False"
        )


class _PackedAttention(torch.autograd.Function):
    r""":meth:`Padding.attend` with fast dropout on torch's kernels as one autograd node: the
    packed (N, 3, H, D) rows padded into head-major blocks, :func:`dropped_attention` per
    size group, the outputs read back; its backward writes the blocks' gradients into one
    buffer (no stacking of q, k, v, no mask or scale nodes). Additive masks (per-edge terms)
    get their gradients, :math:`\partial S` summed to their shapes. First-order only:
    ``create_graph=True`` raises."""

    @staticmethod
    def forward(ctx, qkv, padding, dropout, scale, *masks):
        nodes, _, heads, width = qkv.shape
        _, out_rows = padding.head_rows(heads)
        buffer = padding.head_major(qkv)
        out = qkv.new_empty(heads * padding.num_rows, width)
        saved = []
        for block, out_block, mask, (batch, longest) in zip(
            padding.blocks(buffer, 3 * heads),
            padding.blocks(out, heads),
            masks,
            padding.shapes,
            strict=True,
        ):
            q, k, v = block.view(3, batch, heads, longest, width).unbind(0)
            out_block = out_block.view(batch, heads, longest, width)
            _, tensors = dropped_attention(q, k, v, mask, dropout, scale, out=out_block)
            saved += [t.view(batch * heads, longest, longest) for t in tensors]  # P, Z, P⊙Z
        ctx.padding, ctx.heads, ctx.scale, ctx.dropout = padding, heads, scale, dropout
        ctx.mask_shapes = [None if mask is None else mask.shape for mask in masks]
        ctx.save_for_backward(buffer, *saved)
        return out.index_select(0, out_rows).view(nodes, heads, width)

    @staticmethod
    def backward(ctx, grad):
        _first_order_only("with fast dropout")
        buffer, *saved = ctx.saved_tensors
        padding, heads = ctx.padding, ctx.heads
        in_rows, out_rows = padding.head_rows(heads)
        width = grad.shape[-1]
        padded = grad.new_zeros(heads * padding.num_rows, width)  # zero at padded queries
        padded.index_copy_(0, out_rows, grad.reshape(-1, width))
        grad_buffer = torch.empty_like(buffer)
        grad_masks = []
        for g, (block, grad_block, grad_out, (batch, longest)) in enumerate(
            zip(
                padding.blocks(buffer, 3 * heads),
                padding.blocks(grad_buffer, 3 * heads),
                padding.blocks(padded, heads),
                padding.shapes,
                strict=True,
            )
        ):
            qkv = block.view(3, batch * heads, longest, width).unbind(0)
            grads = grad_block.view(3, batch * heads, longest, width).unbind(0)
            grad_out = grad_out.view(batch * heads, longest, width)
            grad_scores = dropped_attention_backward(
                grad_out, *qkv, tuple(saved[3 * g : 3 * g + 3]), ctx.scale, ctx.dropout, grads
            )
            if ctx.needs_input_grad[4 + g]:  # ∂M = ∂S, summed over M's broadcast dims
                grad_scores = grad_scores.view(batch, heads, *grad_scores.shape[1:])
                grad_masks.append(grad_scores.sum_to_size(ctx.mask_shapes[g]))
            else:
                grad_masks.append(None)
        grad_qkv = grad_buffer.index_select(0, in_rows).view(grad.shape[0], 3, heads, width)
        return grad_qkv, None, None, None, *grad_masks


class _FusedAttention(torch.autograd.Function):
    r""":meth:`Padding.attend` on the fused kernel (:mod:`graphformer.nn.core.small_attention`)
    as one autograd node: each size group's samples read from and written to the packed
    (N, 3, H, 16) rows in place (no padded copies, no padded query rows computed), with or
    without fast dropout (its keep masks drawn as :func:`dropped_attention` draws them: the
    same masks for a seed). It saves each row's log-sum-exp and recomputes the weights in
    the backward pass. Additive masks (per-edge terms) get their gradients. First-order
    only."""

    @staticmethod
    def forward(ctx, qkv, padding, dropout, scale, *masks):
        nodes, _, heads, width = qkv.shape
        out = qkv.new_empty(nodes, heads, width)
        saved = []
        for samples, mask, (batch, longest) in zip(
            padding.group_rows, masks, padding.shapes, strict=True
        ):
            mask = None if mask is None else mask.contiguous()
            keep = None
            if dropout > 0.0:
                shape = (batch * heads, longest, longest)
                keep = keep_mask(shape, dropout, qkv.device).view(torch.uint8)
            lse = small_attention.forward(out, qkv, samples, mask, keep, scale, dropout)
            saved += [mask, keep, lse]
        ctx.padding, ctx.scale, ctx.dropout = padding, scale, dropout
        ctx.mask_shapes = [None if mask is None else mask.shape for mask in masks]
        ctx.save_for_backward(qkv, *saved)
        return out

    @staticmethod
    def backward(ctx, grad):
        _first_order_only("through the fused kernel")
        qkv, *saved = ctx.saved_tensors
        padding, heads = ctx.padding, qkv.shape[2]
        grad = grad.contiguous()
        grad_qkv = torch.empty_like(qkv)  # every node's rows belong to one group
        grad_masks = []
        for g, (samples, (batch, longest)) in enumerate(
            zip(padding.group_rows, padding.shapes, strict=True)
        ):
            needs_mask_grad = ctx.needs_input_grad[4 + g]
            saved_g, settings = tuple(saved[3 * g : 3 * g + 3]), (ctx.scale, ctx.dropout)
            grad_scores = small_attention.backward(
                grad_qkv, grad, qkv, samples, saved_g, *settings, needs_mask_grad
            )
            if needs_mask_grad:  # ∂M = ∂S, summed over M's broadcast dims
                grad_scores = grad_scores.view(batch, heads, longest, longest)
                grad_masks.append(grad_scores.sum_to_size(ctx.mask_shapes[g]))
            else:
                grad_masks.append(None)
        return grad_qkv, None, None, None, *grad_masks


class Padding:
    r"""Rows laid out sample after sample, padded per sample into groups of similar size.

    Padding every sample to the batch's longest wastes :math:`B L^2 - \sum_b n_b^2`
    score cells; on CLUSTER's 40–190-node samples grouping cuts the padded cells by about
    a third (:func:`size_groups`). Group :math:`g` is a :math:`(B_g, L_g)` padded block of
    one flat buffer; node :math:`n` sits at row ``flat[n]`` of it (slot of its sample in
    the group × :math:`L_g` + its position in the sample), so padding and unpadding are one
    scatter and one gather for the whole batch. ``max_groups=1`` is the plain padded
    batch: one :math:`(B, L)` block, samples in batch order (a decoder's causal and cross
    attention, whose masks need the samples aligned).
    """

    def __init__(
        self, sizes: torch.Tensor, device: torch.device, max_groups: int | None = None
    ) -> None:
        _, chunks = size_groups(sizes, max_groups)
        sizes = sizes.cpu()
        sample, self.position, _ = padding_index(sizes)
        #: Per group (CPU): its samples' sizes, and (samples, longest sample).
        self.counts = [sizes[chunk] for chunk in chunks]
        self.shapes = [(len(chunk), int(sizes[chunk].max())) for chunk in chunks]
        #: Per sample (CPU): its group's longest sample, its first row in the flat node
        #: buffer and its first cell in the flat score buffer (groups' (B_g, L_g, L_g)
        #: blocks one after another).
        self.longest = torch.zeros(len(sizes), dtype=torch.long)
        self.row_start = torch.zeros(len(sizes), dtype=torch.long)
        self.cell_start = torch.zeros(len(sizes), dtype=torch.long)
        self.slot = torch.zeros(len(sizes), dtype=torch.long)  # place in its group
        self.group_samples = torch.zeros(len(sizes), dtype=torch.long)  # its group's B_g
        self.group_start = torch.zeros(len(sizes), dtype=torch.long)  # its group's first row
        rows = cells = 0
        for chunk, (batch, longest) in zip(chunks, self.shapes, strict=True):
            slot = torch.arange(batch)
            self.longest[chunk] = longest
            self.slot[chunk] = slot
            self.group_samples[chunk] = batch
            self.group_start[chunk] = rows
            self.row_start[chunk] = rows + slot * longest
            self.cell_start[chunk] = cells + slot * longest * longest
            rows, cells = rows + batch * longest, cells + batch * longest * longest
        self.num_rows, self.num_cells = rows, cells
        #: Per group: its samples' first rows in the batch, sizes (CPU, int64), padded length.
        counts = sizes.long()  # int32 graphs' sizes are int32; the kernel takes int64
        first_rows = torch.cumsum(counts, 0) - counts
        self.group_rows = [
            small_attention.Samples(first_rows[chunk], counts[chunk], longest)
            for chunk, (_, longest) in zip(chunks, self.shapes, strict=True)
        ]
        self.sample = sample
        self.flat_cpu = self.row_start[sample] + self.position
        self.flat = self.flat_cpu.to(device)
        padding = torch.ones(rows, dtype=torch.bool)
        padding[self.flat_cpu] = False
        self.padding_rows = torch.nonzero(padding).squeeze(1).to(device)
        self.device = device
        self._head_rows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def head_rows(self, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Where each node's heads go in the head-major blocks :meth:`attend` runs on, as
        row numbers of (rows, D) views: group g's queries, keys and values are one
        :math:`(3, B_g, H, L_g, D)` block, its outputs one :math:`(B_g, H, L_g, D)`, the
        groups one after another. Returns ((N·3·H,) rows of node n's (c, h) in the input
        blocks, (N·H,) rows of its head h in the outputs); built once per head count."""
        if heads not in self._head_rows:
            s = self.sample
            longest, slot = self.longest[s], self.slot[s]
            # (N, H): offset of node n's head h within its group's (B_g, H, L_g) block
            within = (slot * heads * longest + self.position).view(-1, 1)
            within = within + torch.arange(heads).view(1, heads) * longest.view(-1, 1)
            out_rows = heads * self.group_start[s].view(-1, 1) + within
            per_part = (self.group_samples[s] * heads * longest).view(-1, 1, 1)
            in_rows = (
                (3 * heads * self.group_start[s]).view(-1, 1, 1)
                + torch.arange(3).view(1, 3, 1) * per_part
                + within.unsqueeze(1)
            )
            self._head_rows[heads] = (
                in_rows.reshape(-1).to(self.device),
                out_rows.reshape(-1).to(self.device),
            )
        return self._head_rows[heads]

    def key_masks(self) -> list[torch.Tensor]:
        """Per group, (B_g, 1, 1, L_g): True at valid keys (:func:`key_mask`)."""
        return [
            key_mask(counts.to(self.device), longest)
            for counts, (_, longest) in zip(self.counts, self.shapes, strict=True)
        ]

    def pad(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, ...) rows → per group (B_g, L_g, ...), zeros at padding."""
        buffer = x.new_empty(self.num_rows, *x.shape[1:])
        buffer.index_copy_(0, self.flat, x)  # (forward + backward 0.67x of buffer[flat] = x)
        buffer.index_fill_(0, self.padding_rows, 0.0)  # finite: padded keys meet -inf in the mask
        blocks = buffer.split([batch * longest for batch, longest in self.shapes])
        return [
            block.view(batch, longest, *x.shape[1:])
            for block, (batch, longest) in zip(blocks, self.shapes, strict=True)
        ]

    def unpad(self, blocks: list[torch.Tensor]) -> torch.Tensor:
        """Per group (B_g, L_g, ...) → (N, ...): the valid rows in batch order."""
        rows = [block.reshape(-1, *block.shape[2:]) for block in blocks]
        return (rows[0] if len(rows) == 1 else torch.cat(rows)).index_select(0, self.flat)

    def head_major(self, qkv: torch.Tensor) -> torch.Tensor:
        """Packed (N, 3, H, D) rows → one (3·H·rows, D) buffer of the groups' head-major
        (3, B_g, H, L_g, D) blocks (:meth:`head_rows`), zeros at padding: finite, padded
        keys meet -inf in the mask. One row copy."""
        _, _, heads, width = qkv.shape
        in_rows, _ = self.head_rows(heads)
        buffer = qkv.new_zeros(3 * heads * self.num_rows, width)
        return buffer.index_copy_(0, in_rows, qkv.reshape(-1, width))

    def blocks(self, buffer: torch.Tensor, parts: int) -> list[torch.Tensor]:
        """A buffer of ``parts`` rows per padded node split into its groups' blocks."""
        if len(self.shapes) == 1:
            return [buffer]
        return list(buffer.split([parts * batch * longest for batch, longest in self.shapes]))

    def attend(
        self,
        qkv: torch.Tensor,
        masks: list[torch.Tensor],
        dropout: float,
        scale: float | None,
        fast_dropout: bool = False,
    ) -> torch.Tensor:
        """SDPA per group on packed (N, 3, H, D) queries, keys and values; ``masks[g]``:
        group g's ``attn_mask``; ``fast_dropout``: see :func:`padded_attention`. Returns
        (N, H, D). One row copy pads all three into head-major blocks (:meth:`head_rows`),
        so q, k, v and the outputs are contiguous (B_g, H, L_g, D) tensors: no transposed
        copies before the matmuls and no restriding in the backward pass. At head width
        16 on the CPU in float32 (:func:`graphformer.nn.core.small_attention.usable`),
        without dropout or with fast dropout, the fused kernel runs each group
        (:mod:`graphformer.nn.core.small_attention`); otherwise, with fast dropout, the
        written-out formula (:func:`dropped_attention`). Either way the whole of it is one
        autograd node with its backward written out (:class:`_PackedAttention`), except
        under autocast, where autograd runs the formula in autocast's dtypes; without
        dropout and without the kernel, SDPA per group."""
        nodes, _, heads, width = qkv.shape
        # the fused kernel: without dropout, or with fast dropout's masks (plain dropout
        # keeps SDPA's); the written-out path under autocast would meet autocast's dtypes
        fused = (dropout == 0.0 or fast_dropout) and small_attention.usable(qkv)
        written_out = fast_dropout and dropout > 0.0
        if fused or (written_out and not torch.is_autocast_enabled(qkv.device.type)):
            scale = 1.0 / math.sqrt(width) if scale is None else scale
            masks = [additive_mask(mask, qkv.dtype) for mask in masks]
            if fused:
                return _FusedAttention.apply(qkv.contiguous(), self, dropout, scale, *masks)
            return _PackedAttention.apply(qkv, self, dropout, scale, *masks)
        _, out_rows = self.head_rows(heads)
        outs = []
        for block, mask, (batch, longest) in zip(
            self.blocks(self.head_major(qkv), 3 * heads), masks, self.shapes, strict=True
        ):
            q, k, v = block.view(3, batch, heads, longest, width).unbind(0)
            out = padded_attention(q, k, v, mask, dropout, scale, fast_dropout)
            outs.append(out.reshape(-1, width))
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        return out.index_select(0, out_rows).view(nodes, heads, width)


def dense_attention(
    qkv: torch.Tensor,
    sizes: torch.Tensor,
    dropout: float = 0.0,
    scale: float | None = None,
    padding: tuple[Padding, list[torch.Tensor]] | None = None,
    fast_dropout: bool = False,
) -> torch.Tensor:
    r"""Per-sample full attention :math:`o_i = \sum_{j \in S(i)} \mathrm{softmax}_j(s\, q_i
    \cdot k_j)\, v_j` over the nodes :math:`S(i)` of node i's sample.

    ``qkv``: (N, 3, H, D) queries, keys and values, nodes ordered sample by sample;
    ``sizes``: (B,) nodes per sample, summing to N; ``dropout``: on the attention weights;
    ``scale`` :math:`s`: SDPA's (default :math:`1/\sqrt{D}`). Samples run in size groups
    (:class:`Padding`); ``padding``: those groups and their key masks when already built
    for ``sizes`` (:func:`full_padding`); ``fast_dropout``: see :func:`padded_attention`.
    Returns (N, H, D).
    """
    if qkv.shape[0] == 0:
        return qkv.new_zeros(0, *qkv.shape[2:])
    groups, masks = padding if padding is not None else _full_padding(sizes, qkv.device)
    return groups.attend(qkv, masks, dropout, scale, fast_dropout)


def _full_padding(sizes: torch.Tensor, device: torch.device) -> tuple[Padding, list[torch.Tensor]]:
    groups = Padding(sizes, device)
    return groups, groups.key_masks()


def full_padding(graph: dgl.DGLGraph, device: torch.device) -> tuple[Padding, list[torch.Tensor]]:
    """The :class:`Padding` of ``graph``'s samples for full attention on ``device`` and its
    key masks, built once per batch graph and shared by every layer that attends over its
    samples (a 10-layer GPS model built them 10 times per batch before). Rebuilt, not
    reused, when the graph's batch sizes were reset since."""
    sizes = graph.batch_num_nodes()
    built, groups, masks = derived(
        graph, f"full_padding:{device}", lambda g: (sizes, *_full_padding(sizes, device))
    )
    if built is not sizes and not torch.equal(built, sizes):
        return _full_padding(sizes, device)
    return groups, masks


def dense_pays_off(graph: dgl.DGLGraph) -> bool:
    r"""The ``auto`` rule: padded SDPA beats message passing on ``graph`` when its padded
    score cells (in size groups, :func:`size_groups`) are at most
    :math:`\min(8, L/8)` × its edges (:data:`DENSE_CELLS_PER_EDGE`; :math:`L` the largest
    sample, whose small score matrices pay SDPA's fixed costs) and no sample exceeds
    :data:`DENSE_MAX_SAMPLE` nodes. CLUSTER batches (about 4 cells per edge) run dense;
    a sparse or huge graph does not. Reads only the batch sizes, which DGL keeps on the
    CPU; decided once per graph object."""
    return derived(graph, "dense_pays_off", _dense_pays_off)


def _dense_pays_off(graph: dgl.DGLGraph) -> bool:
    sizes = graph.batch_num_nodes()
    longest = int(sizes.max()) if len(sizes) else 0
    if longest == 0 or graph.num_edges() == 0 or longest > DENSE_MAX_SAMPLE:
        return False
    per_edge = min(DENSE_CELLS_PER_EDGE, longest / 8)
    return size_groups(sizes)[0] <= per_edge * graph.num_edges()


class AttentionLayout:
    r"""The edges of a batched graph as cells of padded per-sample score matrices.

    Edge :math:`j \to i` of sample :math:`b` is the cell :math:`(b, i, j)` of its size
    group's :math:`(B_g, L_g, L_g)` matrix (:class:`Padding`), :math:`i, j` the nodes'
    positions in the sample; the groups' matrices are blocks of one flat buffer, and
    ``cell[e]`` is edge e's place in it. Built once per graph object and device
    (:func:`attention_layout`), with no sort: multiplicities are counted into the buffer.
    ``within_samples`` is False when an edge joins two samples; the layout then cannot
    be used.
    """

    def __init__(self, graph: dgl.DGLGraph, device: torch.device) -> None:
        # Index on the CPU (where PyPI's DGL keeps graphs), then move the indices: no host
        # syncs on the features' device. The masks are built there. Built once per batch:
        # edge-long gathers by index_select (2-3x faster than advanced indexing on the CPU).
        sizes = graph.batch_num_nodes().cpu()
        src, dst = (ends.cpu().long() for ends in graph.edges())
        self.groups = groups = Padding(sizes, device)
        sample, position = groups.sample, groups.position
        sample_dst = sample.index_select(0, dst)
        self.within_samples = bool(torch.equal(sample.index_select(0, src), sample_dst))
        if not self.within_samples:
            return
        # node n's row of score cells starts at its sample's first cell + its position × L_g
        row_start = groups.cell_start.index_select(0, sample)
        row_start += position * groups.longest.index_select(0, sample)
        cell = row_start.index_select(0, dst) + position.index_select(0, src)
        # Additive masks (a boolean one costs SDPA a conversion per call): 0 on an edge
        # (log c on a c-fold multi-edge), -inf off the edges, 0 on empty rows. A pair joined
        # twice leaves fewer distinct (zero) cells than edges.
        additive = torch.full((groups.num_cells,), -math.inf).index_fill_(0, cell, 0.0)
        self.multi_edges = int((additive == 0.0).sum()) < len(cell)
        if self.multi_edges:
            multiplicity = torch.bincount(cell, minlength=groups.num_cells)
            additive = multiplicity.to(torch.get_default_dtype()).log()
        in_degree = torch.bincount(dst, minlength=graph.num_nodes())
        # Rows of padding or of nodes without in-edges attend to everything (finite
        # softmax); their outputs are zeroed afterwards.
        empty = torch.ones(groups.num_rows, dtype=torch.bool)
        empty[groups.flat_cpu] = in_degree == 0
        self.empty = [row.to(device) for row in self._rows(empty)]
        self.cell = cell.to(device)
        self.dst = dst.to(device)
        # None when every node has an in-edge (always, with self-loops): nothing to zero.
        self.has_in_edges = (
            None if bool((in_degree > 0).all()) else ((in_degree > 0).to(device).view(-1, 1, 1))
        )
        self.mask = self._blocks(self._fill_empty(additive.to(device).unsqueeze(1), inplace=True))

    def _rows(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """A (rows, ...) buffer → per group (B_g, L_g, ...)."""
        shapes = self.groups.shapes
        parts = flat.split([batch * longest for batch, longest in shapes])
        return [
            part.view(b, n, *flat.shape[1:]) for part, (b, n) in zip(parts, shapes, strict=True)
        ]

    def _fill_empty(self, cells: torch.Tensor, inplace: bool = False) -> list[torch.Tensor]:
        """A (cells, H) buffer → per group (B_g, L_g, L_g, H), 0 on the empty rows; with
        ``inplace``, views of ``cells`` filled in place (a buffer outside autograd)."""
        shapes = self.groups.shapes
        parts = cells.split([batch * longest * longest for batch, longest in shapes])
        blocks = []
        for part, empty, (batch, longest) in zip(parts, self.empty, shapes, strict=True):
            block = part.view(batch, longest, longest, cells.shape[1])
            fill = block.masked_fill_ if inplace else block.masked_fill
            blocks.append(fill(empty[:, :, None, None], 0.0))
        return blocks

    @staticmethod
    def _blocks(blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        """(B_g, L_g, L_g, H) → SDPA's (B_g, H, L_g, L_g) layout."""
        return [block.permute(0, 3, 1, 2) for block in blocks]

    def score_masks(self, terms: torch.Tensor | None, dtype: torch.dtype) -> list[torch.Tensor]:
        """Per group, the SDPA ``attn_mask``: (B_g, 1, L, L) 0 / -inf adjacency, or
        (B_g, H, L, L) with the per-edge additive ``terms`` (E, H) (log-sum-exp over the
        copies of a multi-edge)."""
        if terms is None:
            return [mask.to(dtype) for mask in self.mask]
        cells = terms.new_full((self.groups.num_cells, terms.shape[1]), float("-inf"))
        index = self.cell.unsqueeze(1).expand_as(terms)
        if self.multi_edges:  # log Σ_e exp(t_e) per cell, stabilised by the cell's maximum
            peak = cells.scatter_reduce(0, index, terms, reduce="amax").detach()
            spread = (terms - peak.index_select(0, self.cell)).exp()
            total = torch.zeros_like(peak).index_add_(0, self.cell, spread)
            cells = total.log() + peak
        else:
            cells = cells.scatter(0, index, terms)
        return self._blocks(self._fill_empty(cells))

    def attend(
        self,
        qkv: torch.Tensor,
        terms: torch.Tensor | None = None,
        dropout: float = 0.0,
        scale: float | None = None,
        fast_dropout: bool = False,
    ) -> torch.Tensor:
        r""":math:`o_i = \sum_{j \to i} \mathrm{softmax}_j(s\, q_i \cdot k_j + t_{ij})\, v_j`
        on the layout's graph. ``qkv``: (N, 3, H, D) queries, keys and values; ``terms``:
        optional (E, H) additive per-edge terms; ``scale`` :math:`s` as SDPA's;
        ``fast_dropout``: see :func:`padded_attention`. Returns (N, H, D)."""
        if qkv.shape[0] == 0:
            return qkv.new_zeros(0, *qkv.shape[2:])
        masks = self.score_masks(terms, qkv.dtype)
        out = self.groups.attend(qkv, masks, dropout, scale, fast_dropout)
        return out if self.has_in_edges is None else out * self.has_in_edges


def attention_layout(graph: dgl.DGLGraph, device: torch.device) -> AttentionLayout:
    """:class:`AttentionLayout` of ``graph`` on ``device``, built once per graph object."""
    return derived(graph, f"attention_layout:{device}", lambda g: AttentionLayout(g, device))
