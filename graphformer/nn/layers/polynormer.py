r"""Polynormer's two attentions (Deng et al., ICLR 2024): a local, GAT-like attention and a
global linear attention, each gated so that the layer is a polynomial of its input."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphformer.nn.core.checks import check_batch_norm, check_node_features, check_positive
from graphformer.nn.core.linear_attention import sample_sums
from graphformer.nn.core.message_passing import (
    MESSAGE_PASSING_ENGINES,
    check_engine,
    local_engine,
)
from graphformer.nn.layers.conv import GCNConv
from graphformer.nn.layers.gat import GATConv
from graphformer.nn.mixers import Mixer, Sizes, register

import dgl
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from graphformer.nn.config import BlockConfig

#: The local stage's aggregation: GAT's attention (the paper's) or a GCN (PyG's default).
LOCAL_CONVS = ("gat", "gcn")


def check_beta(beta: float) -> float:
    """``beta`` if it is a number in [0, 1], else a ValueError naming it."""
    if isinstance(beta, bool) or not isinstance(beta, int | float) or not 0 <= beta <= 1:
        raise ValueError(f"Polynormer's beta must be a number in [0, 1]; got {beta!r}")
    return float(beta)


@register("polynormer_local")
class PolynormerLocal(Mixer):
    r"""Polynormer's local attention layer, a gated GAT (the local mixer ``polynormer_local``).

    .. math::
        h_i = \mathrm{ReLU}(W_h x_i), \qquad
        y_i = \mathrm{drop}\Big(\mathrm{ReLU}\big(\mathrm{BN}\big(
            \mathrm{GAT}(x)_i + W x_i\big)\big)\Big), \qquad
        x_i' = (1 - \beta)\, \mathrm{LN}(h_i \odot y_i) + \beta\, y_i,

    with :math:`\mathrm{GAT}` GAT's attention over the in-neighbours :math:`N(i)` (heads
    concatenated, no bias, no self-loops added: PyG's and the authors' setting;
    :class:`graphformer.nn.GATConv`) or, ``conv="gcn"``, a GCN with self-loops. The
    Hadamard product with :math:`h_i` raises the polynomial degree of the output by one
    per layer; :math:`\beta` keeps a linear path. The batch norm (``batch_norm``) is the
    paper's post-BN; the block's mixer builds it without (the block has its own norms).

    Parameters
    ----------
    dim : input and output width.
    num_heads : GAT heads, concatenated (each ``dim / num_heads`` wide).
    beta : the gate's mixing weight in [0, 1].
    conv : ``gat`` or ``gcn`` (:data:`LOCAL_CONVS`).
    batch_norm : the post-BN after the aggregation.
    dropout : on :math:`y` before the gate.
    check_finite : raise on NaN/inf input features.
    engine : the message-passing engine of the convolution.
    in_dim : input width (default ``dim``; a model's first layer maps its input).

    >>> import dgl, torch
    >>> from graphformer.nn.layers.polynormer import PolynormerLocal
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> PolynormerLocal(8, num_heads=2)(graph, torch.randn(3, 8)).shape
    torch.Size([3, 8])
    """

    layerwise = "in_edges"

    def __init__(
        self,
        dim: int,
        num_heads: int = 1,
        beta: float = 0.9,
        conv: str = "gat",
        batch_norm: bool = False,
        dropout: float = 0.0,
        check_finite: bool = True,
        engine: str = "auto",
        in_dim: int | None = None,
    ) -> None:
        super().__init__()
        in_dim = dim if in_dim is None else in_dim
        check_positive(dim=dim, num_heads=num_heads, in_dim=in_dim)
        if conv not in LOCAL_CONVS:
            raise ValueError(f"unknown Polynormer local conv {conv!r}; choose one of {LOCAL_CONVS}")
        self.dim, self.in_dim = dim, in_dim
        self.beta, self.check_finite = check_beta(beta), check_finite
        self.engine = check_engine(engine, MESSAGE_PASSING_ENGINES, "PolynormerLocal")
        self.gate = nn.Linear(in_dim, dim)
        if conv == "gat":
            self.conv: Mixer = GATConv(
                in_dim, dim, num_heads, bias=False, check_finite=False, engine=self.engine
            )
        else:
            self.conv = GCNConv(in_dim, dim, check_finite=False, engine=self.engine)
        self.linear = nn.Linear(in_dim, dim)
        self.batch_norm = nn.BatchNorm1d(dim) if batch_norm else None
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        """Each part's own initialisation (PyTorch's for the linear maps, GAT's for ``conv``)."""
        for module in (self.gate, self.conv, self.linear, self.batch_norm, self.norm):
            if module is not None:
                module.reset_parameters()

    def projections(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:math:`W_h x`, :math:`W x` and GAT's projection of ``x`` in one matmul (x is read
        once; on Cora's 1,433-wide input these were 3 of a step's largest matmuls). The
        parameters stay three modules (state dicts unchanged)."""
        project = self.conv.project
        weight = torch.cat([self.gate.weight, self.linear.weight, project.weight])
        zeros = self.gate.bias.new_zeros(project.out_features)
        bias = torch.cat([self.gate.bias, self.linear.bias, zeros])
        return F.linear(x, weight, bias).split([self.dim, self.dim, project.out_features], 1)

    @classmethod
    def build(cls, config: BlockConfig, sizes: Sizes) -> Mixer:
        """``config.dim`` wide, ``config.num_heads`` GAT heads, ``config.dropout``."""
        return cls(
            config.dim,
            config.num_heads,
            dropout=config.dropout,
            check_finite=False,
            engine=local_engine(config.engine),
        )

    def forward(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, in_dim) → (N, dim)."""
        dtype = self.gate.weight.dtype
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite, dtype)
        if isinstance(self.conv, GATConv):  # the three projections of x in one matmul
            gate, linear, projected = self.projections(x)
            h, y = F.relu(gate), self.conv.attend(graph, projected) + linear
        else:
            h = F.relu(self.gate(x))
            y = self.conv(graph, x) + self.linear(x)
        if self.batch_norm is not None:
            check_batch_norm(self.batch_norm, y)
            y = self.batch_norm(y)
        y = self.dropout(F.relu(y))
        return (1 - self.beta) * self.norm(h * y) + self.beta * y


@register("polynormer")
class PolynormerAttention(Mixer):
    r"""Polynormer's global attention: gated linear attention among all nodes of each
    sample, in :math:`O(n d^2)` (the global mixer ``polynormer``).

    Per head, with sigmoid kernels :math:`q_i = \sigma(W_Q x_i)`, :math:`k_j =
    \sigma(W_K x_j)` (shared, :math:`q = k`, with ``qk_shared``) and :math:`v_j = W_V x_j`,

    .. math::
        a_i = \frac{q_i^\top \sum_{j \in S(i)} k_j v_j^\top}
                   {q_i^\top \sum_{j \in S(i)} k_j + \epsilon}, \qquad
        x_i' = \mathrm{drop}\Big(\mathrm{ReLU}\big(W_O\,
            [\mathrm{LN}(\Vert_h a^h_i) \odot (W_h x_i + \beta)]\big)\Big),

    with :math:`S(i)` the nodes of node :math:`i`'s sample (``graph.batch_num_nodes()``)
    and :math:`\epsilon = 10^{-6}`: softmax-free attention with non-negative weights
    :math:`q_i \cdot k_j`, never an :math:`n \times n` matrix
    (:func:`graphformer.nn.core.linear_attention.sample_sums`); the gate
    :math:`(W_h x_i + \beta)` makes it a polynomial of degree one higher than its input.
    Sums run within each sample, so a batch of graphs never mixes samples. No message
    passing, so no ``engine`` applies.

    Parameters
    ----------
    dim : input and output width; split over ``num_heads`` heads.
    num_heads : heads; must divide ``dim``.
    beta : the gate's offset (fixed, as in PyG).
    qk_shared : one projection for queries and keys.
    bias : biases on the query, key and value projections (off, as in PyG).
    dropout : on the output.
    check_finite : raise on NaN/inf input features.

    >>> import dgl, torch
    >>> from graphformer.nn.layers.polynormer import PolynormerAttention
    >>> graph = dgl.batch([dgl.graph(([0], [1])), dgl.graph(([0, 1], [1, 2]))])
    >>> PolynormerAttention(8, num_heads=2)(graph, torch.randn(5, 8)).shape
    torch.Size([5, 8])
    """

    scope = "global"
    settings = ("beta", "qk_shared")
    layerwise = "global_sums"

    def __init__(
        self,
        dim: int,
        num_heads: int = 1,
        beta: float = 0.9,
        qk_shared: bool = False,
        bias: bool = False,
        dropout: float = 0.0,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        check_positive(dim=dim, num_heads=num_heads)
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide dim={dim} for Polynormer")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.beta, self.qk_shared, self.check_finite = check_beta(beta), qk_shared, check_finite
        self.gate = nn.Linear(dim, dim)
        self.query = None if qk_shared else nn.Linear(dim, dim, bias=bias)
        self.key = nn.Linear(dim, dim, bias=bias)
        self.value = nn.Linear(dim, dim, bias=bias)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation of every projection and of the norm."""
        for module in (self.gate, self.query, self.key, self.value, self.norm, self.out):
            if module is not None:
                module.reset_parameters()

    @classmethod
    def build(
        cls, config: BlockConfig, sizes: Sizes, *, beta: float = 0.9, qk_shared: bool = False
    ) -> Mixer:
        """``config.dim`` wide, ``config.num_heads`` heads; settings ``beta``, ``qk_shared``."""
        return cls(config.dim, config.num_heads, beta, qk_shared, check_finite=False)

    def forward(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, dim), nodes sample after sample as in ``graph``. Returns (N, dim)."""
        check_node_features(
            "x", x, graph.num_nodes(), self.dim, self.check_finite, self.key.weight.dtype
        )
        shape = (-1, self.num_heads, self.head_dim)
        k = torch.sigmoid(self.key(x)).view(shape)
        q = k if self.query is None else torch.sigmoid(self.query(x)).view(shape)
        v = self.value(x).view(shape)
        sizes = graph.batch_num_nodes().to(x.device)
        numerator, denominator = sample_sums(q, k, v, sizes)
        attention = (numerator / (denominator + 1e-6).unsqueeze(-1)).reshape(-1, self.dim)
        gated = self.norm(attention) * (self.gate(x) + self.beta)
        return self.dropout(F.relu(self.out(gated)))

    def layerwise_sums(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Layer-wise inference on one sample: these rows' share of
        :math:`\sum_j k_j v_j^\top` (H, D, D) and :math:`\sum_j k_j` (H, D)."""
        shape = (-1, self.num_heads, self.head_dim)
        k = torch.sigmoid(self.key(x)).view(shape)
        return torch.einsum("nhm,nhd->hmd", k, self.value(x).view(shape)), k.sum(0)

    def layerwise_apply(
        self, x: torch.Tensor, sums: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """The rows ``x``'s outputs given :meth:`layerwise_sums` over the whole sample."""
        shape = (-1, self.num_heads, self.head_dim)
        key_value, key_sum = sums
        k = torch.sigmoid(self.key(x)).view(shape)
        q = k if self.query is None else torch.sigmoid(self.query(x)).view(shape)
        numerator = torch.einsum("nhm,hmd->nhd", q, key_value)
        denominator = torch.einsum("nhm,hm->nh", q, key_sum)
        attention = (numerator / (denominator + 1e-6).unsqueeze(-1)).reshape(-1, self.dim)
        gated = self.norm(attention) * (self.gate(x) + self.beta)
        return self.dropout(F.relu(self.out(gated)))
