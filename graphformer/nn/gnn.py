"""GNN: the classic stack of graph convolutions (Kipf & Welling; Veličković et al.)."""

from __future__ import annotations

import itertools

from graphformer.graphs import add_self_loops
from graphformer.nn.attention import MultiHeadAttention
from graphformer.nn.block import ACTIVATIONS, choose
from graphformer.nn.checks import check_node_features, check_positive
from graphformer.nn.conv import GCNConv, SAGEConv
from graphformer.nn.gat import GATConv
from graphformer.nn.message_passing import MESSAGE_PASSING_ENGINES, check_engine
from graphformer.nn.readout import Readout

import dgl
import torch
from torch import nn

CONVS = ("gcn", "sage", "gat", "attention")


class GNN(nn.Module):
    r"""``num_layers`` convolutions with dropout before each and an activation between:

    .. math::
        x^{(l+1)} = \sigma\big(\mathrm{conv}_l(\mathrm{drop}(x^{(l)}))\big), \quad
        \text{no } \sigma \text{ after the last layer}

    No residuals, norms or FFN: the baselines of the GCN and GAT papers. With
    ``conv='gcn'``, ``hidden_dim=16``, ``num_layers=2``, ``dropout=0.5`` it is Kipf &
    Welling's Cora model. ``conv='gat'`` is GAT (:class:`GATConv`, additive scores, heads
    concatenated) over neighbours plus self-loops; with ``hidden_dim=64``, ``num_heads=8``,
    ``dropout=0.6``, ``activation='elu'`` it is Veličković et al.'s Cora model.
    ``conv='attention'`` attends the same way with scaled dot-product
    :class:`MultiHeadAttention` instead. A layer whose width ``num_heads`` does not divide
    uses one head (GAT's output layer on Cora).

    Parameters
    ----------
    out_dim, in_dim : output and input feature widths.
    hidden_dim, num_layers : width and number of convolutions (≥ 1).
    conv : ``gcn``, ``sage``, ``gat`` or ``attention``.
    num_heads : heads for ``gat`` and ``attention``.
    dropout : dropout on the input of every layer; attention also drops weights.
    activation : ``relu``, ``gelu``, ``silu`` or ``elu``.
    level, readout : ``node`` outputs, or ``graph`` outputs pooled by ``readout``.
    head_layers : an MLP head after the convolutions (and the readout): that many linear
        layers, dropout before each and the activation between them; every convolution
        then outputs ``hidden_dim``, activated. 0 (default): no head at node level (the
        last convolution outputs ``out_dim``, as in Kipf & Welling) and one linear layer
        without dropout at graph level.
    check_finite : raise on NaN/inf input features.
    engine : see ``graphformer.nn.message_passing``.
    """

    def __init__(
        self,
        out_dim: int,
        in_dim: int,
        hidden_dim: int = 16,
        num_layers: int = 2,
        conv: str = "gcn",
        num_heads: int = 8,
        dropout: float = 0.5,
        activation: str = "relu",
        level: str = "node",
        readout: str = "mean",
        check_finite: bool = True,
        engine: str = "auto",
        head_layers: int = 0,
    ) -> None:
        super().__init__()
        check_positive(out_dim=out_dim, in_dim=in_dim, hidden_dim=hidden_dim)
        check_positive(num_layers=num_layers)
        if isinstance(head_layers, bool) or not isinstance(head_layers, int) or head_layers < 0:
            raise ValueError(
                f"head_layers must be an int ≥ 0 (0: no head at node level); got {head_layers!r}"
            )
        self.conv_name = choose("conv", conv, CONVS)
        choose("activation", activation, ACTIVATIONS)
        self.level = choose("level", level, ("node", "graph"))
        self.in_dim, self.check_finite = in_dim, check_finite
        self.engine = check_engine(engine, MESSAGE_PASSING_ENGINES, "GNN")
        widths = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        if level == "graph" or head_layers:
            widths[-1] = hidden_dim
        self.convs = nn.ModuleList(
            self._conv(conv, a, b, num_heads, dropout, engine)
            for a, b in itertools.pairwise(widths)
        )
        self.dropout = nn.Dropout(dropout)
        self.activation = ACTIVATIONS[activation]()
        self.readout = Readout(readout) if level == "graph" else None
        self.head = nn.Linear(hidden_dim, out_dim) if level == "graph" else None
        if head_layers:
            head: list[nn.Module] = []
            for _ in range(head_layers - 1):
                head += [nn.Dropout(dropout), nn.Linear(hidden_dim, hidden_dim)]
                head.append(ACTIVATIONS[activation]())
            self.head = nn.Sequential(*head, nn.Dropout(dropout), nn.Linear(hidden_dim, out_dim))

    @staticmethod
    def _conv(
        kind: str, in_dim: int, out_dim: int, heads: int, dropout: float, engine: str
    ) -> nn.Module:
        if kind == "gcn":
            return GCNConv(in_dim, out_dim, self_loops=False, check_finite=False, engine=engine)
        if kind == "sage":
            return SAGEConv(in_dim, out_dim, check_finite=False, engine=engine)
        heads = heads if out_dim % heads == 0 else 1
        if kind == "gat":
            return GATConv(
                in_dim, out_dim, heads, dropout=dropout, check_finite=False, engine=engine
            )
        return nn.ModuleDict(
            {
                "project": nn.Linear(in_dim, out_dim),
                "attention": MultiHeadAttention(
                    out_dim, heads, dropout, check_finite=False, engine=engine
                ),
            }
        )

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_feat: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N, out_dim) for ``level='node'``; (batch_size, out_dim) for ``level='graph'``.

        ``edge_feat`` is accepted for a uniform model interface and must be None.
        """
        if edge_feat is not None:
            raise ValueError("GNN does not use edge features; use GraphTransformer instead")
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite)
        if self.conv_name != "sage":
            graph = add_self_loops(graph)
        h = x
        for index, conv in enumerate(self.convs):
            h = self.dropout(h)
            if isinstance(conv, nn.ModuleDict):
                h = conv["attention"](graph, conv["project"](h))
            else:
                h = conv(graph, h)
            if index < len(self.convs) - 1 or self.head is not None:
                h = self.activation(h)
        if self.readout is not None:
            h = self.readout(graph, h)
        return h if self.head is None else self.head(h)
