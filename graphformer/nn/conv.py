"""Graph convolutions as message passing with DGL builtins: GCN and GraphSAGE-mean."""

from __future__ import annotations

from graphformer.graphs import add_self_loops
from graphformer.nn.checks import (
    check_edge_tensor,
    check_kernel_dtype,
    check_node_features,
    check_positive,
)
from graphformer.nn.torch_ops import (
    check_engine,
    edge_index,
    scatter_mean,
    scatter_sum,
    use_torch_engine,
)

import dgl
import dgl.function as fn
import torch
from torch import nn


class GCNConv(nn.Module):
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
    self_loops : add a self-loop at every node that lacks one (weight 1) before the pass.
        Turn off when the graph already has them, to skip rebuilding the graph each call.
    check_finite : raise on NaN/inf input features.
    engine : ``auto`` (DGL builtins, or the torch fallback when DGL could not place the
        graph on the features' device), ``dgl`` or ``torch``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        self_loops: bool = True,
        check_finite: bool = True,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        check_positive(in_dim=in_dim, out_dim=out_dim)
        self.engine = check_engine(engine)
        self.in_dim, self.out_dim = in_dim, out_dim
        self.self_loops, self.check_finite = self_loops, check_finite
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim)) if bias else None
        self.reset_parameters()

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
        with graph.local_scope():
            if edge_weight is not None:
                shape = (graph.num_edges(),)
                check_edge_tensor("edge_weight", edge_weight, shape, self.check_finite, True, dtype)
                graph.edata["w"] = edge_weight.to(graph.device)
            if self.self_loops:
                graph = add_self_loops(graph, fill_value=1.0)
            weight = graph.edata["w"].to(x.device) if edge_weight is not None else None
            fallback = use_torch_engine(self.engine, graph, x)
            if not fallback:
                check_kernel_dtype("x", x, graph)
            if weight is None:
                deg_out, deg_in = graph.out_degrees().to(x), graph.in_degrees().to(x)
            else:
                src, dst = edge_index(graph, x.device)
                deg_out = x.new_zeros(graph.num_nodes()).index_add_(0, src, weight)
                deg_in = x.new_zeros(graph.num_nodes()).index_add_(0, dst, weight)
            norm_src = deg_out.clamp(min=1e-12).pow(-0.5).unsqueeze(1)
            norm_dst = deg_in.clamp(min=1e-12).pow(-0.5).unsqueeze(1)
            project_first = self.out_dim < self.in_dim
            h = (x @ self.weight if project_first else x) * norm_src
            if fallback:
                src, dst = edge_index(graph, x.device)
                messages = h[src] if weight is None else h[src] * weight.unsqueeze(1)
                h = scatter_sum(messages, dst, graph.num_nodes())
            elif weight is None:
                graph.ndata["h"] = h
                graph.update_all(fn.copy_u("h", "m"), fn.sum("m", "h"))
                h = graph.ndata["h"]
            else:
                graph.ndata["h"], graph.edata["w"] = h, weight.unsqueeze(1)
                graph.update_all(fn.u_mul_e("h", "w", "m"), fn.sum("m", "h"))
                h = graph.ndata["h"]
            h = h * norm_dst
            if not project_first:
                h = h @ self.weight
        return h if self.bias is None else h + self.bias


class SAGEConv(nn.Module):
    r"""GraphSAGE with the mean aggregator and a root weight (Hamilton et al., 2017).

    .. math::
        x_i' = W_{root} x_i + W_{neigh} \frac{1}{|N(i)|} \sum_{j \in N(i)} x_j + b

    φ = ``copy_u``, □ = ``mean``. A node with no in-edges aggregates zeros.

    Parameters
    ----------
    in_dim, out_dim : input and output feature widths.
    bias : add a learned bias :math:`b`.
    check_finite : raise on NaN/inf input features.
    engine : ``auto``, ``dgl`` or ``torch``, as for :class:`GCNConv`.
    """

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
        self.engine = check_engine(engine)
        self.in_dim, self.out_dim, self.check_finite = in_dim, out_dim, check_finite
        self.root = nn.Linear(in_dim, out_dim, bias=bias)
        self.neigh = nn.Linear(in_dim, out_dim, bias=False)

    def reset_parameters(self) -> None:
        self.root.reset_parameters()
        self.neigh.reset_parameters()

    def forward(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, in_dim) node features."""
        dtype = self.root.weight.dtype
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite, dtype)
        project_first = self.out_dim < self.in_dim
        h = self.neigh(x) if project_first else x
        if use_torch_engine(self.engine, graph, x):
            src, dst = edge_index(graph, x.device)
            h = scatter_mean(h[src], dst, graph.num_nodes())
        else:
            check_kernel_dtype("x", x, graph)
            with graph.local_scope():
                graph.ndata["h"] = h
                graph.update_all(fn.copy_u("h", "m"), fn.mean("m", "h"))
                h = graph.ndata["h"]
        neigh = h if project_first else self.neigh(h)
        return self.root(x) + neigh
