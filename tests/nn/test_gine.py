"""GINE against a dense reference and DGL's GINEConv; equivariance; gradcheck.
(DGL-vs-torch engine equality: tests/nn/test_engines.py, for every registered mixer.)"""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn.layers.gine import GINE

import pytest
import torch
from dgl.nn import GINEConv
from helpers import (
    assert_close,
    dense_adjacency,
    dense_edge_tensor,
    permute_nodes,
    random_graph,
    randomize_biases,
)

DIM = 5


def layer(**kwargs) -> GINE:
    torch.manual_seed(0)
    module = randomize_biases(GINE(DIM, **kwargs))
    with torch.no_grad():
        module.eps.fill_(0.3)
    return module


def test_gine_equals_dense_reference():
    """x' = MLP((1 + ε) x_i + Σ_j A_ij ReLU(x_j + e_ij)) with dense (N, N, D) edge features."""
    graph = random_graph([5, 4], p=0.5, seed=1)
    module = layer()
    x, e = torch.randn(graph.num_nodes(), DIM), torch.randn(graph.num_edges(), DIM)
    dense_e = dense_edge_tensor(graph, e)  # [i, j]: edge j → i
    adjacency = dense_adjacency(graph).unsqueeze(-1)
    neighbours = (torch.relu(x[None, :, :] + dense_e) * adjacency).sum(1)
    expected = module.mlp((1 + module.eps) * x + neighbours)
    out, edges = module(graph, x, e)
    assert_close("GINE vs dense reference", out, expected)
    assert edges is e


@pytest.mark.parametrize("with_edges", [True, False], ids=["edges", "no-edges"])
def test_gine_equals_dgl_gineconv(with_edges):
    module = layer()
    theirs = GINEConv(module.mlp, learn_eps=True)
    with torch.no_grad():
        theirs.eps.copy_(module.eps)
    graph = random_graph([6, 5], p=0.4, seed=2)
    x, e = torch.randn(graph.num_nodes(), DIM), torch.randn(graph.num_edges(), DIM)
    zeros = torch.zeros_like(e)
    ours = module(graph, x, e if with_edges else None)[0]
    expected = theirs(graph, x, e if with_edges else zeros)
    assert_close("GINE vs dgl.nn.GINEConv", ours, expected)


def test_gine_permutation_equivariance():
    graph = random_graph([7], p=0.4, seed=3)
    module = layer()
    x, e = torch.randn(7, DIM), torch.randn(graph.num_edges(), DIM)
    perm, edge_perm = torch.randperm(7), torch.randperm(graph.num_edges())
    out = module(graph, x, e)[0]
    out_perm = module(permute_nodes(graph, perm, edge_perm), x[perm], e[edge_perm])[0]
    assert_close("GINE permutation equivariance", out_perm, out[perm])


@pytest.mark.parametrize("engine", ["dgl", "torch"])
def test_gine_gradcheck_float64(engine):
    graph = random_graph([4, 3], p=0.5, seed=5)
    module = GINE(3, engine=engine).double()
    x = torch.randn(graph.num_nodes(), 3, dtype=torch.float64, requires_grad=True)
    e = torch.randn(graph.num_edges(), 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: module(graph, a, b)[0], (x, e))


def test_gine_eps_is_learned_or_fixed():
    assert [name for name, _ in GINE(DIM).named_parameters()].count("eps") == 1
    fixed = GINE(DIM, learn_eps=False)
    assert "eps" not in dict(fixed.named_parameters()) and "eps" in dict(fixed.named_buffers())


def test_gine_checks_edge_state_values_only_when_asked():
    graph = random_graph([4], p=0.6, seed=4)
    x = torch.randn(graph.num_nodes(), DIM)
    e = torch.full((graph.num_edges(), DIM), float("nan"))
    with pytest.raises(ValueError, match="edge_state contains NaN"):
        layer()(graph, x, e)
    layer(check_finite=False)(graph, x, e)  # the block's setting: no check per layer
