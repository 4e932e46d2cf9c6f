"""The thesis: MultiHeadAttention on the complete graph is Transformer attention.

Same layer, different graph: complete graph → self-attention, complete bipartite graph →
cross-attention, sparse graph with edge features → Shaw et al. (2018) relative attention.
Each is checked against an independent dense reference.
"""

from __future__ import annotations

import math

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import complete_bipartite, complete_graph
from graphformer.nn import MultiHeadAttention

import dgl
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    assert_close,
    copy_into_torch_mha,
    dense_adjacency,
    dense_attention_weights,
    dense_edge_tensor,
    pad,
    permute_nodes,
    random_graph,
    randomize_biases,
    unpad,
)
from torch import nn

EMBED, HEADS = 16, 4


def ours_and_torch(src_dim: int | None = None) -> tuple[MultiHeadAttention, nn.Module]:
    ours = randomize_biases(MultiHeadAttention(EMBED, HEADS, src_dim=src_dim))
    theirs = nn.MultiheadAttention(EMBED, HEADS, batch_first=True, kdim=src_dim, vdim=src_dim)
    copy_into_torch_mha(ours, theirs)
    return ours.eval(), theirs.eval()


def test_self_attention_on_complete_graph_equals_torch_multihead_attention():
    sizes = [3, 7, 5]
    ours, theirs = ours_and_torch()
    x = torch.randn(sum(sizes), EMBED)
    graph = complete_graph(sizes)

    out, weights = ours(graph, x, return_attention=True)

    padded, mask = pad(x, sizes)
    ref_out, ref_weights = theirs(
        padded, padded, padded, key_padding_mask=mask, average_attn_weights=False
    )
    assert_close("self-attention output vs nn.MultiheadAttention", out, unpad(ref_out, sizes))
    dense = dense_attention_weights(graph, weights, sizes, sizes)
    for b, n in enumerate(sizes):
        # Padded keys get weight 0 in torch, and no edge (0 in `dense`) here.
        assert_close(
            "self-attention weights vs nn.MultiheadAttention",
            dense[b, :, :n, :],
            ref_weights[b, :, :n, :],
        )


def test_self_attention_per_sample_without_padding():
    sizes = [3, 7, 5]
    ours, theirs = ours_and_torch()
    x = torch.randn(sum(sizes), EMBED)
    out, weights = ours(complete_graph(sizes), x, return_attention=True)
    start, edge_start = 0, 0
    for n in sizes:
        sample = x[start : start + n].unsqueeze(0)
        ref_out, ref_weights = theirs(sample, sample, sample, average_attn_weights=False)
        assert_close(
            "self-attention output vs nn.MultiheadAttention", out[start : start + n], ref_out[0]
        )
        # complete_graph orders each sample's edges by (source, destination).
        sample_weights = weights[edge_start : edge_start + n * n].reshape(n, n, HEADS)
        assert_close(
            "self-attention weights vs nn.MultiheadAttention",
            sample_weights.permute(2, 1, 0),
            ref_weights[0],
        )
        start, edge_start = start + n, edge_start + n * n


@pytest.mark.parametrize("src_dim", [None, 6], ids=["src_dim=embed", "src_dim=6"])
def test_cross_attention_on_complete_bipartite_equals_torch(src_dim):
    src_sizes, dst_sizes = [4, 2, 6], [3, 5, 1]
    ours, theirs = ours_and_torch(src_dim)
    x_src = torch.randn(sum(src_sizes), src_dim or EMBED)
    x_dst = torch.randn(sum(dst_sizes), EMBED)
    graph = complete_bipartite(src_sizes, dst_sizes)

    out, weights = ours(graph, (x_src, x_dst), return_attention=True)

    keys, key_mask = pad(x_src, src_sizes)
    queries, _ = pad(x_dst, dst_sizes)
    ref_out, ref_weights = theirs(
        queries, keys, keys, key_padding_mask=key_mask, average_attn_weights=False
    )
    assert out.shape == (sum(dst_sizes), EMBED)
    assert_close("cross-attention output vs nn.MultiheadAttention", out, unpad(ref_out, dst_sizes))
    dense = dense_attention_weights(graph, weights, src_sizes, dst_sizes)
    for b, n in enumerate(dst_sizes):
        assert_close(
            "cross-attention weights vs nn.MultiheadAttention",
            dense[b, :, :n, :],
            ref_weights[b, :, :n, :],
        )


def shaw_reference(
    layer: MultiHeadAttention,
    graph: dgl.DGLGraph,
    x: torch.Tensor,
    edge_feat: torch.Tensor | None = None,
    edge_bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense Shaw et al. (2018) attention, [i, j] = edge j → i. Returns output and (H, N, N)."""
    n, h, d = graph.num_nodes(), layer.num_heads, layer.head_dim
    q = F.linear(x, layer.q_proj.weight, layer.q_proj.bias).view(n, h, d)
    k = F.linear(x, layer.k_proj.weight, layer.k_proj.bias).view(n, h, d)
    v = F.linear(x, layer.v_proj.weight, layer.v_proj.bias).view(n, h, d)
    score = torch.einsum("ihd,jhd->hij", q, k)
    if edge_feat is not None:
        dense_feat = dense_edge_tensor(graph, edge_feat)  # (N, N, edge_dim)
        a_key = F.linear(dense_feat, layer.edge_key.weight).view(n, n, h, d)
        a_value = torch.zeros(n, n, h, d)
        if layer.edge_value is not None:
            a_value = F.linear(dense_feat, layer.edge_value.weight).view(n, n, h, d)
        score = score + torch.einsum("ihd,ijhd->hij", q, a_key)
    score = score / math.sqrt(d)
    if edge_bias is not None:
        score = score + dense_edge_tensor(graph, edge_bias).permute(2, 0, 1)
    has_edge = dense_adjacency(graph) > 0
    score = score.masked_fill(~has_edge, float("-inf"))
    alpha = torch.softmax(score, dim=-1)
    alpha = torch.where(has_edge.any(dim=1)[None, :, None], alpha, 0.0)  # no in-edges
    out = torch.einsum("hij,jhd->ihd", alpha, v)
    if edge_feat is not None:
        out = out + torch.einsum("hij,ijhd->ihd", alpha, a_value)
    out = F.linear(out.reshape(n, h * d), layer.out_proj.weight, layer.out_proj.bias)
    return out, alpha


@pytest.mark.parametrize(
    ("use_feat", "use_bias", "edge_value"),
    [
        (False, False, True),
        (True, False, True),
        (False, True, True),
        (True, True, True),
        (True, True, False),
    ],
    ids=["plain", "edge_feat", "edge_bias", "both", "key_term_only"],
)
def test_edge_attention_equals_dense_shaw_reference(use_feat, use_bias, edge_value):
    sizes, edge_dim = [6, 4, 7], 5
    graph = random_graph(sizes, p=0.4, seed=11)
    layer = MultiHeadAttention(EMBED, HEADS, edge_dim=edge_dim, edge_value=edge_value)
    layer = randomize_biases(layer).eval()
    assert (layer.edge_value is None) == (not edge_value)
    x = torch.randn(graph.num_nodes(), EMBED)
    edge_feat = torch.randn(graph.num_edges(), edge_dim) if use_feat else None
    edge_bias = torch.randn(graph.num_edges(), HEADS) if use_bias else None

    out, weights = layer(graph, x, edge_feat, edge_bias, return_attention=True)

    ref_out, ref_alpha = shaw_reference(layer, graph, x, edge_feat, edge_bias)
    assert_close("edge attention output vs dense Shaw reference", out, ref_out)
    src, dst = graph.edges()
    assert_close(
        "edge attention weights vs dense Shaw reference", weights, ref_alpha[:, dst, src].T
    )


def test_edge_terms_change_the_output():
    graph = random_graph([6], p=0.5, seed=2)
    layer = MultiHeadAttention(EMBED, HEADS, edge_dim=3).eval()
    x = torch.randn(6, EMBED)
    plain = layer(graph, x)
    assert not torch.allclose(plain, layer(graph, x, edge_feat=torch.randn(graph.num_edges(), 3)))
    assert not torch.allclose(
        plain, layer(graph, x, edge_bias=torch.randn(graph.num_edges(), HEADS))
    )


@pytest.mark.parametrize("edge_dim", [None, 3])
def test_zero_in_degree_outputs_out_proj_bias_with_finite_gradients(edge_dim):
    # Nodes 3 and 4 receive nothing; node 4 sends nothing either.
    graph = dgl.graph(([0, 1, 2, 3, 3], [1, 2, 0, 0, 1]), num_nodes=5)
    layer = randomize_biases(MultiHeadAttention(EMBED, HEADS, edge_dim=edge_dim))
    x = torch.randn(5, EMBED, requires_grad=True)
    edge_feat = torch.randn(5, 3, requires_grad=True) if edge_dim else None

    out = layer(graph, x, edge_feat)

    assert torch.isfinite(out).all()
    assert_close(
        "zero in-degree output vs out_proj.bias", out[3:], layer.out_proj.bias.expand(2, -1)
    )
    out.square().sum().backward()
    grads = [x.grad] + [p.grad for p in layer.parameters()]
    grads += [edge_feat.grad] if edge_dim else []
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert x.grad[:3].abs().sum() > 0


@pytest.mark.parametrize("with_edges", [False, True], ids=["plain", "edge_feat+bias"])
def test_gradcheck_float64(with_edges):
    """Gradients with respect to features, edge terms and every weight, in float64."""
    graph = random_graph([5], p=0.5, seed=4)
    layer = MultiHeadAttention(4, 2, edge_dim=3 if with_edges else None)
    layer = randomize_biases(layer).double()
    names = [name for name, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    inputs = [torch.randn(5, 4, dtype=torch.float64, requires_grad=True)]
    if with_edges:
        inputs.append(torch.randn(graph.num_edges(), 3, dtype=torch.float64, requires_grad=True))
        inputs.append(torch.randn(graph.num_edges(), 2, dtype=torch.float64, requires_grad=True))

    def attend(*tensors):
        weights = dict(zip(names, tensors[: len(names)], strict=True))
        return torch.func.functional_call(layer, weights, (graph, *tensors[len(names) :]))

    assert torch.autograd.gradcheck(attend, [*params, *inputs])


@pytest.mark.parametrize("with_edges", [False, True], ids=["plain", "edge_feat+bias"])
def test_permutation_equivariance(with_edges):
    graph = random_graph([9], p=0.4, seed=5)
    layer = randomize_biases(MultiHeadAttention(EMBED, HEADS, edge_dim=3)).eval()
    x = torch.randn(9, EMBED)
    num_edges = graph.num_edges()
    edge_feat = torch.randn(num_edges, 3) if with_edges else None
    edge_bias = torch.randn(num_edges, HEADS) if with_edges else None
    perm, edge_perm = torch.randperm(9), torch.randperm(num_edges)

    out = layer(graph, x, edge_feat, edge_bias)
    permuted = permute_nodes(graph, perm, edge_perm)
    out_perm = layer(
        permuted,
        x[perm],
        edge_feat[edge_perm] if with_edges else None,
        edge_bias[edge_perm] if with_edges else None,
    )
    assert_close("attention permutation equivariance", out_perm, out[perm])


def test_attention_weights_sum_to_one_over_in_edges():
    graph = random_graph([8, 5], p=0.35, seed=6)
    layer = MultiHeadAttention(EMBED, HEADS, edge_dim=2)
    x = torch.randn(graph.num_nodes(), EMBED)
    _, weights = layer(graph, x, torch.randn(graph.num_edges(), 2), return_attention=True)
    assert weights.shape == (graph.num_edges(), HEADS)
    assert (weights >= 0).all()
    totals = torch.zeros(graph.num_nodes(), HEADS).index_add_(0, graph.edges()[1], weights)
    has_in_edges = graph.in_degrees() > 0
    assert (~has_in_edges).any(), "the test graph needs a node without in-edges"
    assert_close(
        "attention weights sum over in-edges vs 1",
        totals[has_in_edges],
        torch.ones(int(has_in_edges.sum()), HEADS),
    )
    assert (totals[~has_in_edges] == 0).all()


def test_attention_dropout_eval_deterministic_train_random():
    graph = complete_graph([6, 4])
    layer = randomize_biases(MultiHeadAttention(EMBED, HEADS, attn_dropout=0.5))
    no_dropout = MultiHeadAttention(EMBED, HEADS)
    no_dropout.load_state_dict(layer.state_dict())
    x = torch.randn(10, EMBED)

    layer.eval()
    first, second = layer(graph, x), layer(graph, x)
    assert torch.equal(first, second)
    assert_close("eval-mode dropout vs no dropout", first, no_dropout(graph, x))

    layer.train()
    train_out, weights = layer(graph, x, return_attention=True)
    assert not torch.allclose(train_out, first)
    assert not torch.allclose(layer(graph, x), train_out)
    # The returned weights are taken before dropout.
    totals = torch.zeros(10, HEADS).index_add_(0, graph.edges()[1], weights)
    assert torch.allclose(totals, torch.ones(10, HEADS))


@pytest.mark.parametrize("src_dim", [None, 6], ids=["self", "cross"])
def test_initialisation_is_torch_multihead_attentions(src_dim):
    """Same seed, same draw as ``nn.MultiheadAttention._reset_parameters``: self-attention's
    projections are chunks of one Xavier-uniform (3E, E) matrix; out_proj keeps
    ``nn.Linear``'s default (|w| ≤ 1/√E); every bias is zero."""
    ours = MultiHeadAttention(16, 4, src_dim=src_dim)
    theirs = nn.MultiheadAttention(16, 4, kdim=src_dim, vdim=src_dim)
    torch.manual_seed(0)
    ours.reset_parameters()
    torch.manual_seed(0)
    theirs._reset_parameters()
    if src_dim is None:
        expected = theirs.in_proj_weight.chunk(3)
    else:
        expected = (theirs.q_proj_weight, theirs.k_proj_weight, theirs.v_proj_weight)
    projections = (ours.q_proj, ours.k_proj, ours.v_proj)
    for linear, weight in zip(projections, expected, strict=True):
        assert_close("in-projection init vs nn.MultiheadAttention", linear.weight, weight)
    assert ours.out_proj.weight.abs().max() <= 1 / math.sqrt(16)
    for linear in (*projections, ours.out_proj):
        assert not linear.bias.any()
