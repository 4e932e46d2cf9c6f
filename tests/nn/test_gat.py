"""GATConv against GAT's dense formula, its torch engine, and DGL's own GATConv."""

from __future__ import annotations

import copy

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import add_self_loops
from graphformer.nn import GNN, GATConv
from graphformer.nn.models.gnn import GNN_BLOCK

import dgl
import pytest
import torch
import torch.nn.functional as F
from dgl.nn import GATConv as DGLGATConv
from helpers import assert_close, dense_adjacency, permute_nodes, random_graph, randomize_biases


def dense_gat(conv: GATConv, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """Per head: e_ij = LeakyReLU(a_src·Wx_j + a_dst·Wx_i) on edges j → i, softmax over j."""
    h = conv.project(x).view(len(x), conv.num_heads, conv.head_dim)  # (N, H, D)
    score_src = (h * conv.attn_src).sum(-1)  # (N, H)
    score_dst = (h * conv.attn_dst).sum(-1)
    scores = F.leaky_relu(score_dst[:, None, :] + score_src[None, :, :], conv.negative_slope)
    scores = scores.masked_fill(~adjacency.bool()[:, :, None], float("-inf"))  # (i, j, H)
    weights = torch.nan_to_num(scores.softmax(dim=1))  # rows without edges: zeros
    out = torch.einsum("ijh,jhd->ihd", weights, h)
    out = out.reshape(len(x), -1) if conv.concat else out.mean(dim=1)
    return out + conv.bias


@pytest.mark.parametrize("concat", [True, False], ids=["concat", "mean"])
def test_gat_equals_dense_formula(concat):
    graph = dgl.add_nodes(add_self_loops(random_graph([9], p=0.3)), 1)  # node 9: no edges
    conv = randomize_biases(GATConv(5, 8, num_heads=2, concat=concat))
    x = torch.randn(graph.num_nodes(), 5)
    out, weights = conv(graph, x, return_attention=True)
    assert_close(
        "GATConv vs dense additive attention", out, dense_gat(conv, x, dense_adjacency(graph))
    )
    assert_close("GATConv zero in-degree output is the bias", out[9], conv.bias)
    per_node = torch.zeros(graph.num_nodes(), 2).index_add_(0, graph.edges()[1], weights)
    assert torch.allclose(per_node[:9], torch.ones(9, 2))


def test_gat_matches_dgls_gatconv():
    """Same weights in DGL's own layer: an implementation we did not write."""
    graph = add_self_loops(random_graph([12], p=0.3, seed=3))
    ours = GATConv(6, 8, num_heads=2)
    theirs = DGLGATConv(6, 4, num_heads=2, allow_zero_in_degree=True, bias=True)
    with torch.no_grad():
        theirs.fc.weight.copy_(ours.project.weight)
        theirs.attn_l.copy_(ours.attn_src)
        theirs.attn_r.copy_(ours.attn_dst)
        theirs.bias.zero_()
    x = torch.randn(12, 6)
    assert_close("GATConv vs dgl.nn.GATConv", ours(graph, x), theirs(graph, x).reshape(12, -1))


def test_gat_torch_engine_equals_dgl_with_gradients():
    graph = add_self_loops(random_graph([7, 5], p=0.4, seed=1))
    dgl_conv = randomize_biases(GATConv(6, 8, num_heads=4))
    torch_conv = copy.deepcopy(dgl_conv)
    torch_conv.engine = "torch"
    x = torch.randn(graph.num_nodes(), 6, requires_grad=True)
    results = []
    for conv in (dgl_conv, torch_conv):
        x.grad = None
        out = conv(graph, x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out, x.grad.clone(), conv.attn_src.grad.clone()))
    for name, a, b in zip(("output", "input grad", "attn grad"), *results, strict=True):
        assert_close(f"GATConv torch vs DGL engine: {name}", b, a)


def test_gat_is_permutation_equivariant_and_differentiable():
    graph = add_self_loops(random_graph([10], p=0.3, seed=2))
    conv = GATConv(4, 6, num_heads=3)
    x = torch.randn(10, 4, requires_grad=True)
    perm = torch.randperm(10)
    assert_close(
        "GATConv permutation equivariance",
        conv(permute_nodes(graph, perm), x[perm]),
        conv(graph, x)[perm],
    )
    conv(graph, x).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in conv.parameters())


def test_gat_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"num_heads=3 must divide out_dim=8.*concat=False"):
        GATConv(4, 8, num_heads=3)
    with pytest.raises(ValueError, match=r"x must have shape \(5, 4\)"):
        GATConv(4, 8)(dgl.rand_graph(5, 10), torch.randn(5, 3))


def test_gnn_gat_uses_gat_heads_and_one_output_head():
    model = GNN(7, 20, GNN_BLOCK.replace(dim=64, mixer="gat", num_heads=8))
    assert [(c.num_heads, c.concat) for c in model.convs] == [(8, True), (1, True)]
    assert model(dgl.rand_graph(10, 30), torch.randn(10, 20)).shape == (10, 7)
