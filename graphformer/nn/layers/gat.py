"""GAT's additive attention (Veličković et al., 2018) as message passing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphformer.nn.core.checks import check_node_features, check_positive
from graphformer.nn.core.message_passing import (
    MESSAGE_PASSING_ENGINES,
    MessagePassing,
    check_engine,
)
from graphformer.nn.mixers import Mixer, Sizes, register

import dgl
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from graphformer.nn.config import BlockConfig


#: ``engine='auto'`` runs GATConv on the ``torch`` engine on CPU graphs of fewer edges than
#: this, on ``dgl`` above (``graphformer.nn.core.message_passing.torch_pays_off``).
#: Measured by ``experiments/molecules/engine_rule.py --layer gat`` (4 heads, forward +
#: backward, width 64, batches of 23-atom molecules; table in experiments/molecules/README.md):
#: torch's CPU time / DGL's 0.68-0.77 at 400 edges, 0.81-0.97 at 1,600, 0.89-1.06 at 3,200,
#: 1.07-1.43 at 6,400 (1 and 2 threads). The rule switches at 2,048, inside the range torch
#: won in both.
GAT_TORCH_BELOW = 2048


@register("gat")
class GATConv(Mixer):
    r"""Graph attention with GAT's additive score, per head :math:`k`:

    .. math::
        e^k_{ij} = \mathrm{LeakyReLU}\big(a^k_{src} \cdot W^k x_j + a^k_{dst} \cdot W^k x_i\big),
        \qquad \alpha^k_{ij} = \mathrm{softmax}_{j \in N(i)}\, e^k_{ij},
        \qquad x_i' = \big\Vert_k \sum_{j \in N(i)} \alpha^k_{ij} W^k x_j + b

    φ = ``u_add_v`` (score) then ``u_mul_e``; □ = ``sum``; the softmax is ``edge_softmax``.
    Heads are concatenated (``concat=True``, each of width ``out_dim / num_heads``) or
    averaged (each of width ``out_dim``). Unlike :class:`MultiHeadAttention`'s scaled
    dot product, the score is a linear function of the two endpoints passed through a
    LeakyReLU, with one shared projection per head: far fewer parameters, as in the
    paper. Attend over neighbours *and* self by adding self-loops
    (``graphformer.graphs.add_self_loops``); as the mixer ``gat`` (``self_loops``) the
    block or GNN adds them. A node with no in-edges outputs ``b``. ``engine='auto'`` runs
    on the ``torch`` engine on CPU graphs of fewer than :data:`GAT_TORCH_BELOW` edges
    (small molecule batches), else on ``dgl``.

    Parameters
    ----------
    in_dim, out_dim : input and output widths.
    num_heads : attention heads.
    concat : concatenate the heads (out_dim must divide by num_heads) or average them.
    negative_slope : of the LeakyReLU.
    attn_dropout : dropout on the attention weights.
    bias : add a learned bias :math:`b`.
    check_finite : raise on NaN/inf input features.
    engine : see ``graphformer.nn.core.message_passing``.

    >>> import dgl, torch
    >>> from graphformer.graphs import add_self_loops
    >>> from graphformer.nn import GATConv
    >>> graph = add_self_loops(dgl.graph(([0, 1, 2], [1, 2, 0])))
    >>> out, weights = GATConv(4, 8, num_heads=2)(graph, torch.randn(3, 4), return_attention=True)
    >>> out.shape, weights.shape  # 3 edges + 3 self-loops, 2 heads
    (torch.Size([3, 8]), torch.Size([6, 2]))
    """

    self_loops = True
    resizes = True
    layerwise = "in_edges"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        attn_dropout: float = 0.0,
        bias: bool = True,
        check_finite: bool = True,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        check_positive(in_dim=in_dim, out_dim=out_dim, num_heads=num_heads)
        if concat and out_dim % num_heads:
            raise ValueError(
                f"with concat=True, num_heads={num_heads} must divide out_dim={out_dim}; "
                "change either, or average the heads with concat=False"
            )
        self.engine = check_engine(engine, MESSAGE_PASSING_ENGINES, "GATConv")
        self.in_dim, self.num_heads, self.concat = in_dim, num_heads, concat
        self.head_dim = out_dim // num_heads if concat else out_dim
        self.negative_slope, self.check_finite = negative_slope, check_finite
        self.project = nn.Linear(in_dim, num_heads * self.head_dim, bias=False)
        self.attn_src = nn.Parameter(torch.empty(1, num_heads, self.head_dim))
        self.attn_dst = nn.Parameter(torch.empty(1, num_heads, self.head_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim)) if bias else None
        self.attn_dropout = nn.Dropout(attn_dropout)
        self.reset_parameters()

    @classmethod
    def build(cls, config: BlockConfig, sizes: Sizes) -> Mixer:
        """``gat``: heads concatenated; as a GNN convolution, one head where ``num_heads``
        does not divide ``out_dim`` (GAT's output layer on Cora)."""
        in_dim, out_dim = sizes.widths(config)
        heads = config.num_heads
        if not sizes.in_block and out_dim % heads:
            heads = 1
        return cls(
            in_dim,
            out_dim,
            heads,
            attn_dropout=config.attn_dropout,
            check_finite=False,
            engine=sizes.engine(config),
        )

    def reset_parameters(self) -> None:
        """Xavier-normal projection and attention vectors (gain √2), zero bias, as in GAT."""
        gain = nn.init.calculate_gain("relu")
        nn.init.xavier_normal_(self.project.weight, gain=gain)
        nn.init.xavier_normal_(self.attn_src, gain=gain)
        nn.init.xavier_normal_(self.attn_dst, gain=gain)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``x``: (N, in_dim). Returns (N, out_dim), and the (E, num_heads) weights if asked."""
        dtype = self.project.weight.dtype
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite, dtype)
        return self.attend(graph, self.project(x), return_attention)

    def attend(
        self, graph: dgl.DGLGraph, projected: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` after the projection: ``projected`` is :math:`W x`, (N, num_heads
        * head_dim), e.g. computed in one matmul with a caller's other projections of ``x``
        (Polynormer's local layer)."""
        h = projected.view(-1, self.num_heads, self.head_dim)
        x = projected
        score_src = (h * self.attn_src).sum(-1, keepdim=True)  # (N, H, 1)
        score_dst = (h * self.attn_dst).sum(-1, keepdim=True)
        mp = MessagePassing(graph, self.engine, x, torch_below=GAT_TORCH_BELOW)
        attention = mp.edge_softmax(
            F.leaky_relu(mp.u_add_v(score_src, score_dst), self.negative_slope)
        )
        out = mp.u_mul_e_reduce(h, self.attn_dropout(attention), "sum")
        out = out.flatten(1) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        return (out, attention.squeeze(-1)) if return_attention else out
