"""GNN: the classic stack of graph convolutions (Kipf & Welling; Veličković et al.)."""

from __future__ import annotations

import itertools

from graphformer.graphs import add_self_loops
from graphformer.nn.block import rename_legacy_keys
from graphformer.nn.config import ACTIVATIONS, BlockConfig, block_config, choose
from graphformer.nn.core.checks import check_node_features, check_positive
from graphformer.nn.core.message_passing import MESSAGE_PASSING_ENGINES, check_engine
from graphformer.nn.layers.readout import Readout
from graphformer.nn.layerwise import check_layerwise, local_layer, map_nodes
from graphformer.nn.mixers import build, names

import dgl
import torch
from torch import nn

#: GNN's default block settings: Kipf & Welling's Cora model.
GNN_BLOCK = BlockConfig(
    dim=16, mixer="gcn", num_heads=8, dropout=0.5, attn_dropout=0.5, activation="relu"
)


class GNN(nn.Module):
    r"""``num_layers`` convolutions with dropout before each and an activation between:

    .. math::
        x^{(l+1)} = \sigma\big(\mathrm{conv}_l(\mathrm{drop}(x^{(l)}))\big), \quad
        \text{no } \sigma \text{ after the last layer}

    No residuals, norms or FFN: the baselines of the GCN and GAT papers. The convolutions
    come from the mixer registry (``block.mixer``: one of
    ``graphformer.nn.mixers.names(resizes=True)``, the mixers that map ``in_dim →
    out_dim``), each run on the graph plus self-loops when its ``self_loops`` trait says so.
    With ``mixer='gcn'``, ``dim=16``, ``num_layers=2``, ``dropout=0.5`` (the default
    :data:`GNN_BLOCK`) it is Kipf & Welling's Cora model. ``mixer='gat'`` is GAT
    (:class:`GATConv`, additive scores, heads concatenated) over neighbours plus
    self-loops; with ``dim=64``, ``num_heads=8``, ``dropout=attn_dropout=0.6``,
    ``activation='elu'`` it is Veličković et al.'s Cora model. ``mixer='attention'``
    attends the same way with scaled dot-product attention after a linear map
    (:class:`~graphformer.nn.layers.attention.ProjectedAttention`). A layer whose width
    ``num_heads`` does not divide uses one head (GAT's output layer on Cora).

    Parameters
    ----------
    out_dim, in_dim : output and input feature widths.
    block : the layers' settings (:class:`~graphformer.nn.BlockConfig`): ``dim`` (the
        hidden width), ``mixer`` (the convolution), ``num_heads``, ``dropout`` (on the
        input of every layer), ``attn_dropout`` (on attention weights), ``activation``,
        ``engine``; the rest is unused. Default :data:`GNN_BLOCK`.
    num_layers : number of convolutions (≥ 1).
    level, readout : ``node`` outputs, or ``graph`` outputs pooled by ``readout``.
    head_layers : an MLP head after the convolutions (and the readout): that many linear
        layers, dropout before each and the activation between them; every convolution
        then outputs ``block.dim``, activated. 0 (default): no head at node level (the
        last convolution outputs ``out_dim``, as in Kipf & Welling) and one linear layer
        without dropout at graph level.
    check_finite : raise on NaN/inf input features.

    >>> import dgl, torch
    >>> from graphformer.nn import GNN, BlockConfig
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> gnn = GNN(2, 5, BlockConfig(dim=8, mixer="gat", num_heads=2))
    >>> gnn(graph, torch.randn(3, 5)).shape
    torch.Size([3, 2])
    """

    def __init__(
        self,
        out_dim: int,
        in_dim: int,
        block: BlockConfig | None = None,
        num_layers: int = 2,
        level: str = "node",
        readout: str = "mean",
        check_finite: bool = True,
        head_layers: int = 0,
    ) -> None:
        super().__init__()
        block = block_config(block, GNN_BLOCK)
        dim = block.dim
        check_positive(out_dim=out_dim, in_dim=in_dim)
        check_positive(num_layers=num_layers)
        if isinstance(head_layers, bool) or not isinstance(head_layers, int) or head_layers < 0:
            raise ValueError(
                f"head_layers must be an int ≥ 0 (0: no head at node level); got {head_layers!r}"
            )
        self.conv_name = choose("mixer", block.mixer, names(resizes=True))
        self.level = choose("level", level, ("node", "graph"))
        self.config, self.in_dim, self.check_finite = block, in_dim, check_finite
        self.engine = check_engine(block.engine, MESSAGE_PASSING_ENGINES, "GNN")
        widths = [in_dim] + [dim] * (num_layers - 1) + [out_dim]
        if level == "graph" or head_layers:
            widths[-1] = dim
        self.convs = nn.ModuleList(
            build(block.mixer, block, in_dim=a, out_dim=b) for a, b in itertools.pairwise(widths)
        )
        #: ``graph.ndata`` fields its convolutions read besides ``x`` (``graphformer.fields``).
        self.needs = tuple(sorted({key for conv in self.convs for key in conv.needs}))
        self.dropout = nn.Dropout(block.dropout)
        self.activation = ACTIVATIONS[block.activation]()
        self.readout = Readout(readout) if level == "graph" else None
        self.head = nn.Linear(dim, out_dim) if level == "graph" else None
        if head_layers:
            head: list[nn.Module] = []
            for _ in range(head_layers - 1):
                head += [nn.Dropout(block.dropout), nn.Linear(dim, dim)]
                head.append(ACTIVATIONS[block.activation]())
            self.head = nn.Sequential(*head, nn.Dropout(block.dropout), nn.Linear(dim, out_dim))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Load state dicts written before the Mixer refactor too (``convs.i.attention.*``)."""
        for index in range(len(self.convs)):
            rename_legacy_keys(self.convs[index], state_dict, f"{prefix}convs.{index}.", {})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_feat: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N, out_dim) for ``level='node'``; (batch_size, out_dim) for ``level='graph'``.

        ``edge_feat`` is accepted for a uniform model interface and must be None.
        """
        if edge_feat is not None:
            raise ValueError("GNN does not use edge features; use GraphTransformer instead")
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite)
        if self.convs[0].self_loops:
            graph = add_self_loops(graph)
        h = x
        for index, conv in enumerate(self.convs):
            h = conv(graph, self.dropout(h))
            if index < len(self.convs) - 1 or self.head is not None:
                h = self.activation(h)
        if self.readout is not None:
            h = self.readout(graph, h)
        return h if self.head is None else self.head(h)

    def layerwise(
        self,
        graph: dgl.DGLGraph,
        x: torch.Tensor,
        edge_feat: torch.Tensor | None = None,
        chunk_size: int = 4096,
    ) -> torch.Tensor:
        """:meth:`forward` in eval mode, one convolution at a time over all nodes, each in
        chunks of ``chunk_size`` destination nodes (:mod:`graphformer.nn.layerwise`; call
        it through :func:`~graphformer.nn.layerwise.layerwise_inference`). Convolutions
        whose ``layerwise`` trait is not ``in_edges`` are refused, named."""
        if edge_feat is not None:
            raise ValueError("GNN does not use edge features; use GraphTransformer instead")
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite)
        for conv in self.convs:
            check_layerwise(conv, ("in_edges",))
        if self.convs[0].self_loops:
            graph = add_self_loops(graph)
        h = x
        for index, conv in enumerate(self.convs):
            last = index == len(self.convs) - 1 and self.head is None
            then = None if last else (lambda out, chunk: self.activation(out))
            h = local_layer(conv, graph, h, chunk_size, then)
        if self.readout is not None:
            h = self.readout(graph, h)
        return h if self.head is None else map_nodes(self.head, h, chunk_size)
