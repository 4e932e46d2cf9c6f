r"""SGFormer (Wu et al., NeurIPS 2023): one linear global-attention branch beside a GCN
branch, for node classification on large graphs; no positional encodings."""

from __future__ import annotations

from graphformer.graphs import add_self_loops
from graphformer.nn.config import BlockConfig, block_config, choose
from graphformer.nn.core.checks import check_node_features, check_positive
from graphformer.nn.core.message_passing import MESSAGE_PASSING_ENGINES, check_engine
from graphformer.nn.layers.conv import GCNConv
from graphformer.nn.layers.sgformer import SGFormerAttention
from graphformer.nn.layerwise import global_layer, local_layer, map_nodes

import dgl
import torch
import torch.nn.functional as F
from torch import nn

#: How the two branches meet: a weighted sum (the paper's default) or a concatenation.
AGGREGATES = ("add", "cat")


#: SGFormer's block settings by default: width 64, one head, dropout 0.5.
SGFORMER_BLOCK = BlockConfig(dim=64, num_heads=1, dropout=0.5)


def check_rate(name: str, value: float) -> float:
    """``value`` if it is a number in [0, 1], else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}")
    return float(value)


class SGFormer(nn.Module):
    r"""SGFormer: a global branch of :class:`~graphformer.nn.SGFormerAttention` layers and
    a GCN branch, mixed and classified per node.

    .. math::
        z^{(0)} &= \mathrm{drop}(\mathrm{ReLU}(\mathrm{LN}(W_t x))), \quad
        z^{(l)} = \mathrm{drop}\big(\mathrm{ReLU}\big(\mathrm{LN}\big(
            \tfrac12 [\mathrm{SGAttn}(z^{(l-1)}) + z^{(l-1)}]\big)\big)\big), \\
        g^{(0)} &= \mathrm{drop}(\mathrm{ReLU}(\mathrm{BN}(W_g x))), \quad
        g^{(l)} = \mathrm{drop}\big(\mathrm{ReLU}\big(\mathrm{BN}\big(
            \mathrm{GCN}(g^{(l-1)})\big)\big)\big) + g^{(0)}, \\
        y &= W_o\big(\lambda\, g^{(L_g)} + (1 - \lambda)\, z^{(L_t)}\big)

    (``aggregate="cat"``: :math:`W_o [g; z]`), the architecture of the authors' code and
    of PyG's ``torch_geometric.nn.models.SGFormer`` (same parameters, and equal outputs
    given the same weights on one graph: ``tests/test_pyg_linear_attention.py``). The
    attention runs over all nodes of each sample (the whole graph, or a sampled subgraph),
    in :math:`O(N d^2)`. Outputs logits (PyG returns their log-softmax).

    Parameters
    ----------
    out_dim, in_dim : classes and input feature width.
    block : :class:`~graphformer.nn.BlockConfig`; read are ``dim`` (the hidden width,
        ``hidden_channels``), ``num_heads`` (attention heads, averaged), ``dropout`` (of the
        attention branch, ``trans_dropout``) and ``engine`` (the GCN's). Default:
        :data:`SGFORMER_BLOCK`.
    num_layers : attention layers (``trans_num_layers``).
    gnn_layers, gnn_dropout : GCN layers and their dropout.
    graph_weight : :math:`\lambda`, the GCN branch's weight in the sum.
    aggregate : ``add`` or ``cat`` (:data:`AGGREGATES`).
    attention_norm, attention_bias : :class:`SGFormerAttention`'s ``norm`` (``frobenius``:
        the paper; ``row``: PyG) and ``bias``.
    level : ``node`` only (SGFormer classifies nodes).
    check_finite : raise on NaN/inf input features.

    >>> import dgl, torch
    >>> from graphformer.nn import BlockConfig, SGFormer
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> SGFormer(3, in_dim=5, block=BlockConfig(dim=8))(graph, torch.randn(3, 5)).shape
    torch.Size([3, 3])
    """

    def __init__(
        self,
        out_dim: int,
        in_dim: int,
        block: BlockConfig | None = None,
        num_layers: int = 1,
        gnn_layers: int = 2,
        gnn_dropout: float = 0.5,
        graph_weight: float = 0.5,
        aggregate: str = "add",
        attention_norm: str = "frobenius",
        attention_bias: bool = False,
        level: str = "node",
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        block = block_config(block, SGFORMER_BLOCK)
        dim, num_heads, dropout = block.dim, block.num_heads, block.dropout
        check_positive(out_dim=out_dim, in_dim=in_dim, dim=dim, num_layers=num_layers)
        check_positive(gnn_layers=gnn_layers)
        self.level = choose("level", level, ("node",))
        self.aggregate = choose("aggregate", aggregate, AGGREGATES)
        self.in_dim, self.check_finite = in_dim, check_finite
        self.dropout, self.gnn_dropout = (
            check_rate("dropout", dropout),
            check_rate("gnn_dropout", gnn_dropout),
        )
        self.graph_weight = check_rate("graph_weight", graph_weight)
        engine = check_engine(block.engine, MESSAGE_PASSING_ENGINES, "SGFormer")
        #: ``graph.ndata`` fields it reads besides the features: none.
        self.needs: tuple[str, ...] = ()
        # the global branch
        self.attention_input = nn.Linear(in_dim, dim)
        self.attention_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_layers + 1))
        self.attentions = nn.ModuleList(
            SGFormerAttention(
                dim, num_heads, bias=attention_bias, norm=attention_norm, check_finite=False
            )
            for _ in range(num_layers)
        )
        # the GCN branch
        self.gnn_input = nn.Linear(in_dim, dim)
        self.gnn_norms = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(gnn_layers + 1))
        self.convs = nn.ModuleList(
            GCNConv(dim, dim, check_finite=False, engine=engine) for _ in range(gnn_layers)
        )
        self.head = nn.Linear(2 * dim if aggregate == "cat" else dim, out_dim)

    def global_branch(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        """The attention branch's node states, (N, dim)."""
        z = F.relu(self.attention_norms[0](self.attention_input(x)))
        z = F.dropout(z, self.dropout, self.training)
        for attention, norm in zip(self.attentions, self.attention_norms[1:], strict=True):
            z = F.relu(norm((attention(graph, z) + z) / 2))
            z = F.dropout(z, self.dropout, self.training)
        return z

    def gnn_branch(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        """The GCN branch's node states, (N, dim)."""
        g0 = F.relu(self.gnn_norms[0](self.gnn_input(x)))
        g = g0 = F.dropout(g0, self.gnn_dropout, self.training)
        for conv, norm in zip(self.convs, self.gnn_norms[1:], strict=True):
            g = F.dropout(F.relu(norm(conv(graph, g))), self.gnn_dropout, self.training) + g0
        return g

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_feat: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x``: (N, in_dim) → logits (N, out_dim). ``edge_feat`` must be None."""
        if edge_feat is not None:
            raise ValueError("SGFormer does not read edge features; drop them (edge_feat=None)")
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite)
        z, g = self.global_branch(graph, x), self.gnn_branch(graph, x)
        if self.aggregate == "cat":
            return self.head(torch.cat([z, g], dim=1))
        return self.head(self.graph_weight * g + (1 - self.graph_weight) * z)

    def layerwise(
        self,
        graph: dgl.DGLGraph,
        x: torch.Tensor,
        edge_feat: torch.Tensor | None = None,
        chunk_size: int = 4096,
    ) -> torch.Tensor:
        """:meth:`forward` in eval mode, layer by layer over all nodes in chunks of
        ``chunk_size`` (:mod:`graphformer.nn.layerwise`): each attention layer from its
        global sums (:math:`K^\\top V`, :math:`\\sum_j k_j`, the norms) accumulated over
        chunks; each GCN on the chunks' in-subgraphs of the graph plus self-loops, with the
        whole graph's degrees. One graph (not a batch of several)."""
        if edge_feat is not None:
            raise ValueError("SGFormer does not read edge features; drop them (edge_feat=None)")
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite)
        z = map_nodes(
            lambda rows: F.relu(self.attention_norms[0](self.attention_input(rows))), x, chunk_size
        )
        for attention, norm in zip(self.attentions, self.attention_norms[1:], strict=True):
            z = global_layer(
                attention,
                graph,
                z,
                chunk_size,
                lambda out, rows, n=norm: F.relu(n((out + rows) / 2)),
            )
        g0 = map_nodes(lambda rows: F.relu(self.gnn_norms[0](self.gnn_input(rows))), x, chunk_size)
        looped, g = add_self_loops(graph), g0
        for conv, norm in zip(self.convs, self.gnn_norms[1:], strict=True):
            g = local_layer(
                conv,
                looped,
                g,
                chunk_size,
                lambda h, c, n=norm: F.relu(n(h)) + g0[c.start : c.stop],
            )

        def head(start: int, stop: int) -> torch.Tensor:
            if self.aggregate == "cat":
                return self.head(torch.cat([z[start:stop], g[start:stop]], dim=1))
            return self.head(
                self.graph_weight * g[start:stop] + (1 - self.graph_weight) * z[start:stop]
            )

        return torch.cat([head(s, s + chunk_size) for s in range(0, max(len(x), 1), chunk_size)])
