"""Graph convolutions as message passing: GCN and GraphSAGE-mean."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphformer.graphs import add_self_loops_with_features
from graphformer.nn.core.checks import check_edge_tensor, check_node_features, check_positive
from graphformer.nn.core.message_passing import (
    MESSAGE_PASSING_ENGINES,
    MessagePassing,
    check_engine,
)
from graphformer.nn.layerwise import SOURCE_LOOPED_OUT_DEGREES, SOURCE_OUT_DEGREES
from graphformer.nn.mixers import Mixer, Sizes, register

import dgl
import torch
from torch import nn

if TYPE_CHECKING:
    from graphformer.nn.config import BlockConfig


@register("gcn")
class GCNConv(Mixer):
    r"""Graph convolution of Kipf & Welling (ICLR 2017).

    .. math::
        x_i' = \sum_{j \in N(i) \cup \{i\}} \frac{w_{ji}}{\sqrt{d_j^{out} d_i^{in}}} W x_j + b

    with :math:`d` the (weighted) degrees of the graph plus self-loops. On an undirected
    graph this is :math:`\hat D^{-1/2} (A + I) \hat D^{-1/2} X W + b`.
    φ = ``u_mul_e`` (or ``copy_u``), □ = ``sum``.

    Parameters
    ----------
    in_dim, out_dim : input and output feature widths.
    bias : add a learned bias :math:`b`.
    add_self_loops : add a self-loop at every node that lacks one (weight 1) before the
        pass (PyG's name). The looped graph is built once per graph object and reused on
        later calls (``graphformer.graphs.derived``); off, the graph is used as given. As
        the mixer ``gcn`` it is off: the block runs it on the graph plus self-loops (its
        ``self_loops`` trait, ``graphformer.nn.mixers``).
    check_finite : raise on NaN/inf input features.
    engine : see ``graphformer.nn.core.message_passing``.

    >>> import dgl, torch
    >>> from graphformer.nn import GCNConv
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> GCNConv(4, 8)(graph, torch.randn(3, 4)).shape
    torch.Size([3, 8])
    """

    self_loops = True
    resizes = True
    #: Layer-wise inference: exact on a chunk's in-subgraph, given the whole graph's
    #: out-degrees of its sources (``ndata[SOURCE_OUT_DEGREES]`` of a chunk graph).
    layerwise = "in_edges"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        add_self_loops: bool = True,
        check_finite: bool = True,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        check_positive(in_dim=in_dim, out_dim=out_dim)
        self.engine = check_engine(engine, MESSAGE_PASSING_ENGINES, "GCNConv")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.add_self_loops, self.check_finite = add_self_loops, check_finite
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim)) if bias else None
        self.reset_parameters()

    @classmethod
    def build(cls, config: BlockConfig, sizes: Sizes) -> Mixer:
        """``gcn``: the block (or GNN) adds the self-loops; a block's on the local engine."""
        engine = sizes.engine(config)
        return cls(*sizes.widths(config), add_self_loops=False, check_finite=False, engine=engine)

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x``: (N, in_dim) node features; ``edge_weight``: optional (E,) non-negative."""
        dtype = self.weight.dtype
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite, dtype)
        if edge_weight is not None:
            shape = (graph.num_edges(),)
            check_edge_tensor("edge_weight", edge_weight, shape, self.check_finite, True, dtype)
        if self.add_self_loops:
            graph, edge_weight = add_self_loops_with_features(graph, edge_weight, fill_value=1.0)
        mp = MessagePassing(graph, self.engine, x)
        weight = edge_weight.to(x.device) if edge_weight is not None else None
        deg_out, deg_in = mp.degrees(x, weight)
        if SOURCE_OUT_DEGREES in graph.ndata:  # a layer-wise chunk: the whole graph's
            if weight is not None:
                raise ValueError(
                    "GCNConv in layer-wise inference reads the whole graph's (unweighted) "
                    "out-degrees; edge_weight is not supported there: evaluate on the whole graph"
                )
            key = SOURCE_LOOPED_OUT_DEGREES if self.add_self_loops else SOURCE_OUT_DEGREES
            deg_out = graph.ndata[key].to(deg_out)
        norm_src = deg_out.clamp(min=1e-12).pow(-0.5).unsqueeze(1)
        norm_dst = deg_in.clamp(min=1e-12).pow(-0.5).unsqueeze(1)
        project_first = self.out_dim < self.in_dim
        h = (x @ self.weight if project_first else x) * norm_src
        if weight is None:
            h = mp.copy_u_reduce(h, "sum")
        else:
            h = mp.u_mul_e_reduce(h, weight.unsqueeze(1), "sum")
        h = h * norm_dst
        if not project_first:
            h = h @ self.weight
        return h if self.bias is None else h + self.bias


@register("sage")
class SAGEConv(Mixer):
    r"""GraphSAGE with the mean aggregator and a root weight (Hamilton et al., 2017).

    .. math::
        x_i' = W_{root} x_i + W_{neigh} \frac{1}{|N(i)|} \sum_{j \in N(i)} x_j + b

    φ = ``copy_u``, □ = ``mean``. A node with no in-edges aggregates zeros. The root weight
    stands for the node itself, so a GNN runs it on the graph as given; the block mixer
    ``sage`` runs on the graph plus self-loops (``self_loops`` set by its builder), as
    graphformer's sage blocks always have.

    Parameters
    ----------
    in_dim, out_dim : input and output feature widths.
    bias : add a learned bias :math:`b`.
    check_finite : raise on NaN/inf input features.
    engine : see ``graphformer.nn.core.message_passing``.

    >>> import dgl, torch
    >>> from graphformer.nn import SAGEConv
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> SAGEConv(4, 8)(graph, torch.randn(3, 4)).shape
    torch.Size([3, 8])
    """

    resizes = True
    layerwise = "in_edges"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        check_finite: bool = True,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        check_positive(in_dim=in_dim, out_dim=out_dim)
        self.engine = check_engine(engine, MESSAGE_PASSING_ENGINES, "SAGEConv")
        self.in_dim, self.out_dim, self.check_finite = in_dim, out_dim, check_finite
        self.root = nn.Linear(in_dim, out_dim, bias=bias)
        self.neigh = nn.Linear(in_dim, out_dim, bias=False)

    @classmethod
    def build(cls, config: BlockConfig, sizes: Sizes) -> Mixer:
        """``sage``: in a block on the graph plus self-loops and the local engine; as a GNN
        convolution on the graph as given."""
        conv = cls(*sizes.widths(config), check_finite=False, engine=sizes.engine(config))
        return conv.with_traits(self_loops=True) if sizes.in_block else conv

    def reset_parameters(self) -> None:
        self.root.reset_parameters()
        self.neigh.reset_parameters()

    def forward(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, in_dim) node features."""
        dtype = self.root.weight.dtype
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite, dtype)
        project_first = self.out_dim < self.in_dim
        h = self.neigh(x) if project_first else x
        h = MessagePassing(graph, self.engine, x).copy_u_reduce(h, "mean")
        neigh = h if project_first else self.neigh(h)
        return self.root(x) + neigh
