r"""SGFormer's simplified global attention (Wu et al., NeurIPS 2023): one layer of
approximation-free all-pair attention in time linear in the number of nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphformer.nn.core.checks import check_node_features, check_positive
from graphformer.nn.core.linear_attention import per_sample, sample_sums
from graphformer.nn.core.message_passing import segment_readout
from graphformer.nn.mixers import Mixer, Sizes, register

import dgl
import torch
from torch import nn

if TYPE_CHECKING:
    from graphformer.nn.config import BlockConfig

#: How queries and keys are normalised: SGFormer's paper and code divide each by its
#: Frobenius norm over the sample (all nodes, all heads); PyG's ``SGFormerAttention``
#: divides each node's head vector by its own L2 norm.
NORMALISATIONS = ("frobenius", "row")


@register("sgformer")
class SGFormerAttention(Mixer):
    r"""SGFormer's global attention among all nodes of each sample, in :math:`O(n d^2)`.

    The global mixer ``sgformer``. Per head :math:`h` (each ``dim`` wide, as in SGFormer
    and PyG), with
    :math:`Q = X W_Q`, :math:`K = X W_K`, :math:`V = X W_V` over the :math:`n` nodes of a
    sample (``graph.batch_num_nodes()``),

    .. math::
        \tilde Q = \frac{Q}{\lVert Q \rVert_F}, \quad \tilde K = \frac{K}{\lVert K \rVert_F},
        \qquad
        \mathrm{out} = D^{-1}\Big[V + \tfrac{1}{n}\, \tilde Q \big(\tilde K^\top V\big)\Big],
        \quad D = \mathrm{diag}\Big(1 + \tfrac{1}{n}\, \tilde Q \big(\tilde K^\top
        \mathbf{1}\big)\Big),

    i.e. node :math:`i` takes :math:`\big(n v_i + \sum_j (\tilde q_i \cdot \tilde k_j)
    v_j\big) / \big(n + \sum_j \tilde q_i \cdot \tilde k_j\big)`: all-pair attention
    with weights :math:`\tilde q_i \cdot \tilde k_j` plus a self weight :math:`n`,
    computed through :math:`\tilde K^\top V` (:math:`d \times d`) without the
    :math:`n \times n` matrix (:func:`graphformer.nn.core.linear_attention.sample_sums`).
    The Frobenius norms run over the sample's nodes and all heads, as in the authors' code
    (``norm="row"``: each node's head vector by its own norm, as PyG's
    ``SGFormerAttention``). The heads' outputs are averaged. Every sum runs within a
    sample, so a batch of graphs never mixes samples and a 0-node sample contributes
    nothing. No message passing, so no ``engine`` applies.

    Parameters
    ----------
    dim : input and output width.
    num_heads : attention heads (averaged).
    bias : biases on the query, key and value projections (PyG: off; the authors: on).
    norm : ``frobenius`` (the paper) or ``row`` (PyG), see :data:`NORMALISATIONS`.
    check_finite : raise on NaN/inf input features.

    >>> import dgl, torch
    >>> from graphformer.nn.layers.sgformer import SGFormerAttention
    >>> graph = dgl.batch([dgl.graph(([0], [1])), dgl.graph(([0, 1], [1, 2]))])
    >>> SGFormerAttention(8, num_heads=2)(graph, torch.randn(5, 8)).shape
    torch.Size([5, 8])
    """

    scope = "global"
    settings = ("norm", "bias")
    layerwise = "global_sums"

    def __init__(
        self,
        dim: int,
        num_heads: int = 1,
        bias: bool = False,
        norm: str = "frobenius",
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        check_positive(dim=dim, num_heads=num_heads)
        if norm not in NORMALISATIONS:
            raise ValueError(f"unknown norm {norm!r} for SGFormer; choose one of {NORMALISATIONS}")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim
        self.norm, self.check_finite = norm, check_finite
        inner = num_heads * dim
        self.query = nn.Linear(dim, inner, bias=bias)
        self.key = nn.Linear(dim, inner, bias=bias)
        self.value = nn.Linear(dim, inner, bias=bias)

    def reset_parameters(self) -> None:
        """The projections' default (Kaiming-uniform) initialisation, as in the paper's code."""
        for linear in (self.query, self.key, self.value):
            linear.reset_parameters()

    @classmethod
    def build(
        cls, config: BlockConfig, sizes: Sizes, *, norm: str = "frobenius", bias: bool = False
    ) -> Mixer:
        """``config.dim`` wide, ``config.num_heads`` heads; settings ``norm``, ``bias``."""
        return cls(config.dim, config.num_heads, bias=bias, norm=norm, check_finite=False)

    def normalise(self, t: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        """(N, H, D) queries or keys divided by their sample's Frobenius norm (or rows by
        their own norms, ``norm='row'``); a zero norm divides by the smallest normal float."""
        tiny = torch.finfo(t.dtype).tiny
        if self.norm == "row":
            return t / t.norm(dim=-1, keepdim=True).clamp_min(tiny)
        squares = segment_readout(t.square().sum((1, 2)), sizes, "sum")  # (B,)
        return t / per_sample(squares.sqrt().clamp_min(tiny), sizes).view(-1, 1, 1)

    def forward(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, dim), nodes sample after sample as in ``graph``. Returns (N, dim)."""
        dtype = self.query.weight.dtype
        check_node_features("x", x, graph.num_nodes(), self.dim, self.check_finite, dtype)
        sizes = graph.batch_num_nodes().to(x.device)
        shape = (-1, self.num_heads, self.head_dim)
        q = self.normalise(self.query(x).view(shape), sizes)
        k = self.normalise(self.key(x).view(shape), sizes)
        v = self.value(x).view(shape)
        numerator, denominator = sample_sums(q, k, v, sizes)
        n = per_sample(sizes.to(x.dtype), sizes).view(-1, 1)  # each node's sample size
        out = (numerator + n.unsqueeze(-1) * v) / (denominator + n).unsqueeze(-1)
        return out.mean(1)

    def layerwise_sums(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        r"""Layer-wise inference on one sample: these rows' share of :math:`K^\top V`
        (H, D, D) and :math:`\sum_j k_j` (H, D), with :math:`K` row-normalised for
        ``norm='row'``; for ``frobenius`` (raw :math:`K`) also :math:`\lVert Q\rVert_F^2`,
        :math:`\lVert K\rVert_F^2`; and the row count. Summed over chunks, then
        :meth:`layerwise_apply`."""
        shape = (-1, self.num_heads, self.head_dim)
        k, v = self.key(x).view(shape), self.value(x).view(shape)
        count = x.new_tensor(float(len(x)))
        if self.norm == "row":
            k = k / k.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(k.dtype).tiny)
            return torch.einsum("nhm,nhd->hmd", k, v), k.sum(0), count
        squares = (self.query(x).square().sum(), k.square().sum())
        return torch.einsum("nhm,nhd->hmd", k, v), k.sum(0), *squares, count

    def layerwise_apply(self, x: torch.Tensor, sums: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The rows ``x``'s outputs given :meth:`layerwise_sums` over the whole sample: the
        forward's numerator and denominator, with the norms applied to the sums."""
        shape = (-1, self.num_heads, self.head_dim)
        q, v = self.query(x).view(shape), self.value(x).view(shape)
        tiny = torch.finfo(q.dtype).tiny
        if self.norm == "row":
            key_value, key_sum, n = sums
            q = q / q.norm(dim=-1, keepdim=True).clamp_min(tiny)
        else:
            key_value, key_sum, q_squares, k_squares, n = sums
            q = q / q_squares.sqrt().clamp_min(tiny)
            key_norm = k_squares.sqrt().clamp_min(tiny)
            key_value, key_sum = key_value / key_norm, key_sum / key_norm
        numerator = torch.einsum("nhm,hmd->nhd", q, key_value)
        denominator = torch.einsum("nhm,hm->nh", q, key_sum)
        out = (numerator + n * v) / (denominator + n).unsqueeze(-1)
        return out.mean(1)
