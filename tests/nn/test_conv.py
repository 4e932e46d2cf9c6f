"""GCNConv and SAGEConv against their dense matrix formulas."""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import GCNConv, SAGEConv

import dgl
import pytest
import torch
from helpers import assert_close, dense_adjacency, permute_nodes, random_graph, randomize_biases

DIMS = [(8, 3), (3, 8), (5, 5)]
DIM_IDS = ["in>out", "in<out", "in=out"]


def undirected_graph(seed: int = 0) -> dgl.DGLGraph:
    """A random undirected graph (both directions of every edge), no loops, one isolated."""
    graph = dgl.to_bidirected(random_graph([9], p=0.25, seed=seed))
    return dgl.add_nodes(graph, 1)  # node 9: no edges at all


def symmetric_weights(graph: dgl.DGLGraph, seed: int = 0) -> torch.Tensor:
    """Positive edge weights with w(u → v) = w(v → u)."""
    n = graph.num_nodes()
    table = torch.rand(n, n, generator=torch.Generator().manual_seed(seed)) + 0.1
    table = table + table.T
    src, dst = graph.edges()
    return table[src, dst]


def dense_gcn(conv: GCNConv, x, adjacency_with_loops: torch.Tensor) -> torch.Tensor:
    """D^-1/2 Â D^-1/2 X W + b with D the row sums of Â."""
    deg_inv_sqrt = adjacency_with_loops.sum(dim=1).pow(-0.5)
    norm = deg_inv_sqrt[:, None] * adjacency_with_loops * deg_inv_sqrt[None, :]
    return norm @ x @ conv.weight + conv.bias


@pytest.mark.parametrize(("in_dim", "out_dim"), DIMS, ids=DIM_IDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_gcn_equals_dense_formula(in_dim, out_dim, weighted):
    graph = undirected_graph()
    conv = randomize_biases(GCNConv(in_dim, out_dim))
    x = torch.randn(graph.num_nodes(), in_dim)
    weight = symmetric_weights(graph) if weighted else None

    out = conv(graph, x, edge_weight=weight)

    adjacency = dense_adjacency(graph, weight)
    assert torch.equal(adjacency, adjacency.T)
    expected = dense_gcn(conv, x, adjacency + torch.eye(graph.num_nodes()))
    assert_close("GCNConv vs dense D^-1/2 (A+I) D^-1/2 X W + b", out, expected)


@pytest.mark.parametrize(("in_dim", "out_dim"), DIMS, ids=DIM_IDS)
def test_gcn_on_graph_with_loops(in_dim, out_dim):
    """A graph that has all its loops: add_self_loops=False uses them; True adds none twice."""
    graph = dgl.add_self_loop(undirected_graph(seed=1))
    conv = randomize_biases(GCNConv(in_dim, out_dim, add_self_loops=False))
    x = torch.randn(graph.num_nodes(), in_dim)
    expected = dense_gcn(conv, x, dense_adjacency(graph))

    assert_close("GCNConv vs dense D^-1/2 (A+I) D^-1/2 X W + b", conv(graph, x), expected)
    conv.add_self_loops = True
    assert_close("GCNConv vs dense D^-1/2 (A+I) D^-1/2 X W + b", conv(graph, x), expected)


def test_gcn_without_self_loops_on_loopless_graph():
    graph = undirected_graph(seed=2)
    conv = randomize_biases(GCNConv(4, 6, add_self_loops=False))
    x = torch.randn(graph.num_nodes(), 4)
    adjacency = dense_adjacency(graph)
    deg = adjacency.sum(dim=1)
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1e-12).pow(-0.5), 0.0)
    expected = (inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]) @ x @ conv.weight + conv.bias
    assert_close("GCNConv vs dense D^-1/2 A D^-1/2 X W + b", conv(graph, x), expected)


def dense_sage(conv: SAGEConv, x, adjacency) -> torch.Tensor:
    deg = adjacency.sum(dim=1, keepdim=True)
    mean = torch.where(deg > 0, adjacency @ x / deg.clamp(min=1), 0.0)
    root = x @ conv.root.weight.T + conv.root.bias
    return root + mean @ conv.neigh.weight.T


@pytest.mark.parametrize(("in_dim", "out_dim"), DIMS, ids=DIM_IDS)
def test_sage_equals_dense_formula(in_dim, out_dim):
    graph = random_graph([7, 5], p=0.3, self_loops=True, seed=3)  # directed, with isolated
    conv = randomize_biases(SAGEConv(in_dim, out_dim))
    x = torch.randn(graph.num_nodes(), in_dim)
    expected = dense_sage(conv, x, dense_adjacency(graph))
    assert_close("SAGEConv vs dense root(x) + neigh(mean)", conv(graph, x), expected)


def test_sage_zero_in_degree_gives_root():
    graph = dgl.graph(([0, 1], [1, 2]), num_nodes=4)  # nodes 0 and 3: no in-edges
    conv = randomize_biases(SAGEConv(3, 5))
    x = torch.randn(4, 3, requires_grad=True)
    out = conv(graph, x)
    assert_close("SAGEConv zero in-degree vs root(x)", out[[0, 3]], conv.root(x[[0, 3]]))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    "make", [lambda: GCNConv(4, 6), lambda: SAGEConv(4, 6)], ids=["gcn", "sage"]
)
def test_permutation_equivariance(make):
    graph = random_graph([10], p=0.3, seed=4)
    conv = randomize_biases(make())
    x = torch.randn(10, 4)
    perm, edge_perm = torch.randperm(10), torch.randperm(graph.num_edges())
    permuted = permute_nodes(graph, perm, edge_perm)
    assert_close(
        f"{type(conv).__name__} permutation equivariance",
        conv(permuted, x[perm]),
        conv(graph, x)[perm],
    )


def test_gcn_gradcheck_float64():
    graph = random_graph([5], p=0.5, seed=5)
    conv = randomize_biases(GCNConv(3, 2)).double()
    names = [name for name, _ in conv.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in conv.parameters()]
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    weight = (torch.rand(graph.num_edges(), dtype=torch.float64) + 0.5).requires_grad_()

    def convolve(*tensors):
        values = dict(zip(names, tensors[: len(names)], strict=True))
        return torch.func.functional_call(conv, values, (graph, *tensors[len(names) :]))

    assert torch.autograd.gradcheck(convolve, [*params, x, weight])


@pytest.mark.parametrize("weighted", [False, True])
def test_gcn_zero_in_degree_is_finite(weighted):
    graph = dgl.graph(([0, 1], [1, 2]), num_nodes=4)  # node 3 isolated, node 0 only sends
    conv = randomize_biases(GCNConv(3, 2, add_self_loops=False))
    x = torch.randn(4, 3, requires_grad=True)
    weight = torch.tensor([0.5, 2.0], requires_grad=True) if weighted else None
    out = conv(graph, x, edge_weight=weight)
    assert torch.isfinite(out).all()
    assert_close("GCNConv zero in-degree vs bias", out[[0, 3]], conv.bias.expand(2, -1))
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())
    if weighted:
        assert torch.isfinite(weight.grad).all()
