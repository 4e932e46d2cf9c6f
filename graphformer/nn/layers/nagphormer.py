r"""NAGphormer's hop tokens (Chen et al., ICLR 2023): each node becomes a short sequence of
its per-hop neighbourhood aggregates, a Transformer runs over each node's sequence, and an
attention-based readout merges it back into one vector.

Once the tokens exist, a node's output depends on its own tokens only: nodes batch
independently (any subset of nodes, in any order, with no neighbourhood to sample), which
is what makes the model scale to large graphs. The tokens of the input features are
precomputed once per dataset as the node field :func:`hop_field` (the data module caches
them, as any registered :class:`graphformer.fields.Field`); the mixer ``nagphormer``
computes them of its input inside a block, by ``hops`` message passes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from graphformer.fields import FEAT, Field, register_field
from graphformer.graphs import add_self_loops
from graphformer.nn.core.checks import check_node_features, check_positive
from graphformer.nn.core.message_passing import (
    MESSAGE_PASSING_ENGINES,
    MessagePassing,
    check_engine,
    local_engine,
)
from graphformer.nn.mixers import Mixer, Sizes, register

import dgl
import torch
from torch import nn

if TYPE_CHECKING:
    from graphformer.nn.config import BlockConfig


def hop_aggregates(
    graph: dgl.DGLGraph, x: torch.Tensor, hops: int, engine: str = "auto"
) -> torch.Tensor:
    r"""The hop tokens :math:`[x, \hat A x, \hat A^2 x, \dots, \hat A^K x]` of every node,
    (N, K + 1, F), with :math:`\hat A = D_{in}^{-1/2} A D_{out}^{-1/2}` on ``graph`` as
    given (:math:`\hat A_{ij} = 1/\sqrt{d^{in}_i d^{out}_j}` for an edge :math:`j \to i`;
    on a symmetric graph with self-loops, GCN's :math:`\tilde D^{-1/2}(A + I)\tilde
    D^{-1/2}`). ``hops`` = K message passes (``copy_u`` + ``sum``) on ``engine``; the
    graph's edges never cross samples, so neither do the tokens."""
    check_positive(hops=hops)
    mp = MessagePassing(graph, engine, x)
    out_degree, in_degree = mp.degrees(x)
    scale_src = out_degree.clamp(min=1).pow(-0.5).unsqueeze(-1)
    scale_dst = in_degree.clamp(min=1).pow(-0.5).unsqueeze(-1)
    tokens, h = [x], x
    for _ in range(hops):
        h = mp.copy_u_reduce(h * scale_src, "sum") * scale_dst
        tokens.append(h)
    return torch.stack(tokens, dim=1)


def hop_field_name(hops: int) -> str:
    """``hop_feat_<hops>``: the ``ndata`` key of the input features' hop tokens."""
    check_positive(hops=hops)
    return f"hop_feat_{hops}"


def input_hop_tokens(graph: dgl.DGLGraph, hops: int) -> torch.Tensor:
    """One sample's hop tokens of its input features ``ndata['feat']`` on the graph plus
    self-loops: (n, hops + 1, F) float32."""
    if FEAT not in graph.ndata or not graph.ndata[FEAT].is_floating_point():
        raise ValueError(
            f"hop tokens are aggregates of continuous node features ndata[{FEAT!r}]; this "
            f"graph has {sorted(graph.ndata)} (NAGphormer needs float features, e.g. Cora's)"
        )
    feat = graph.ndata[FEAT].to(torch.float32)
    if feat.dim() != 2:
        raise ValueError(
            f"hop tokens need (n, F) node features ndata[{FEAT!r}]; got {tuple(feat.shape)}"
        )
    return hop_aggregates(add_self_loops(graph), feat, hops, "dgl")


@functools.cache
def hop_field(hops: int) -> Field:
    r"""The registered node field of the input features' hop tokens :math:`[X, \hat A X,
    \dots, \hat A^{hops} X]` per node, (n, hops + 1, F), named :func:`hop_field_name`, on
    each sample's graph plus self-loops. Computed from ``ndata['feat']`` once per dataset
    and cached beside it (the cache is keyed to the graph's structure: bump ``version``
    if a dataset's features change under the same edges)."""
    return register_field(
        Field(
            hop_field_name(hops),
            functools.partial(input_hop_tokens, hops=hops),
            description=f"{hops}-hop feature tokens",
        )
    )


def check_hops(hops: int) -> int:
    """``hops`` if it is an int ≥ 1, else a ValueError naming it."""
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 1:
        raise ValueError(
            f"hops must be an int ≥ 1 (the hop tokens after the node's own); got {hops!r}"
        )
    return hops


class HopReadout(nn.Module):
    r"""NAGphormer's attention-based readout of a node's token sequence
    :math:`(z_0, z_1, \dots, z_K)`:

    .. math::
        \alpha_k = \mathrm{softmax}_{k=1..K}\big(w^\top [z_0 \Vert z_k] + b\big), \qquad
        z = z_0 + \sum_{k=1}^{K} \alpha_k z_k.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(2 * dim, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (N, K + 1, dim) → (N, dim)."""
        node, neighbours = tokens[:, :1], tokens[:, 1:]
        pairs = torch.cat([node.expand_as(neighbours), neighbours], dim=-1)
        alpha = torch.softmax(self.score(pairs), dim=1)  # (N, K, 1)
        return node.squeeze(1) + (alpha * neighbours).sum(1)


class HopTransformer(nn.Module):
    """Pre-norm Transformer encoder layers (``torch.nn.TransformerEncoderLayer``, GELU FFN
    of width ``ffn_ratio * dim``) over each node's tokens, a final LayerNorm, and
    :class:`HopReadout`: (N, K + 1, dim) → (N, dim). Nodes are independent rows."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        ffn_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        check_positive(dim=dim, num_heads=num_heads, num_layers=num_layers)
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide dim={dim} for NAGphormer")
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim,
                num_heads,
                int(ffn_ratio * dim),
                dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(num_layers)
        )
        for layer in self.layers:
            layer.self_attn.dropout = attn_dropout
        self.norm = nn.LayerNorm(dim)
        self.readout = HopReadout(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (N, K + 1, dim) → (N, dim)."""
        for layer in self.layers:
            tokens = layer(tokens)
        return self.readout(self.norm(tokens))


@register("nagphormer")
class NAGphormerMixer(Mixer):
    r"""NAGphormer as a mixer (``nagphormer``): hop tokens of its input, a Transformer over
    each node's tokens, the attention readout.

    .. math::
        T_i = [x_i, (\hat A x)_i, \dots, (\hat A^K x)_i], \qquad
        x_i' = \mathrm{Readout}\big(\mathrm{LN}(\mathrm{Transformer}(T_i))\big),

    with :math:`\hat A` as in :func:`hop_aggregates` on the graph plus self-loops (the
    ``self_loops`` trait: the block adds them; standalone, ``add_self_loops``), the
    Transformer :class:`HopTransformer` and the readout :class:`HopReadout`. A local mixer:
    messages pass along the input graph's edges only, so samples of a batch never mix. Here
    the tokens are recomputed from the block's input at every call (:math:`O(K E d)`); the
    model :class:`~graphformer.nn.NAGphormer` precomputes them once from the input features.

    Parameters
    ----------
    dim : input and output width.
    num_heads : attention heads over the tokens.
    hops : :math:`K`, hop tokens after the node's own.
    num_layers : Transformer layers over the tokens.
    dropout, attn_dropout : in the Transformer layers, on the attention weights.
    add_self_loops : add missing self-loops before propagating (off as a block's mixer).
    check_finite : raise on NaN/inf input features.
    engine : the propagation's message-passing engine.

    >>> import dgl, torch
    >>> from graphformer.nn.layers.nagphormer import NAGphormerMixer
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> NAGphormerMixer(8, num_heads=2, hops=3)(graph, torch.randn(3, 8)).shape
    torch.Size([3, 8])
    """

    self_loops = True

    def __init__(
        self,
        dim: int,
        num_heads: int = 1,
        hops: int = 3,
        num_layers: int = 1,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        add_self_loops: bool = True,
        check_finite: bool = True,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        self.dim, self.hops = dim, check_hops(hops)
        self.add_self_loops, self.check_finite = add_self_loops, check_finite
        self.engine = check_engine(engine, MESSAGE_PASSING_ENGINES, "NAGphormerMixer")
        self.transformer = HopTransformer(dim, num_heads, num_layers, dropout, attn_dropout)

    @classmethod
    def build(cls, config: BlockConfig, sizes: Sizes) -> Mixer:
        """``config.dim`` wide, ``config.num_heads`` heads, 3 hops, one layer."""
        return cls(
            config.dim,
            config.num_heads,
            dropout=config.dropout,
            attn_dropout=config.attn_dropout,
            add_self_loops=False,
            check_finite=False,
            engine=local_engine(config.engine),
        )

    def forward(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, dim) → (N, dim)."""
        dtype = self.transformer.norm.weight.dtype
        check_node_features("x", x, graph.num_nodes(), self.dim, self.check_finite, dtype)
        if self.add_self_loops:
            graph = add_self_loops(graph)
        return self.transformer(hop_aggregates(graph, x, self.hops, self.engine))
