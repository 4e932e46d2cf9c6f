"""SGFormer's and Polynormer's attentions (graphformer/nn/layers/sgformer.py, polynormer.py)
against dense plain-torch formulas with the same weights, one sample at a time: the
n × n attention matrix written out, which the layers never build.

The registry-driven tests (engines, empty samples, permutations, gradients) run over
``sgformer``, ``polynormer`` and ``polynormer_local`` by themselves (tests/nn/test_engines.py,
test_block_model.py, test_config_mixers.py).
"""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import (
    BlockConfig,
    GraphTransformerBlock,
    PolynormerAttention,
    PolynormerLocal,
    SGFormerAttention,
    mixers,
)
from graphformer.nn.core.linear_attention import sample_sums

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    assert_close,
    dense_adjacency,
    offsets,
    permute_nodes,
    random_graph,
    randomize_biases,
    within_sample_permutation,
)

SIZES = [6, 1, 0, 9, 4]
DIM = 8


def rows_of(sizes):
    for start, n in zip(offsets(sizes).tolist(), sizes, strict=True):
        yield slice(start, start + n), n


def dense_sgformer(layer: SGFormerAttention, x: torch.Tensor, sizes) -> torch.Tensor:
    """Per sample: Q̃ = Q/‖Q‖_F (or rows by their norms), the n × n matrix A = Q̃K̃ᵀ per
    head, out = (n V + A V) / (n + A 1), averaged over heads."""
    heads, dim = layer.num_heads, layer.dim
    out = []
    for rows, n in rows_of(sizes):
        q = F.linear(x[rows], layer.query.weight, layer.query.bias).view(n, heads, dim)
        k = F.linear(x[rows], layer.key.weight, layer.key.bias).view(n, heads, dim)
        v = F.linear(x[rows], layer.value.weight, layer.value.bias).view(n, heads, dim)
        if layer.norm == "frobenius":
            q, k = q / torch.linalg.norm(q), k / torch.linalg.norm(k)
        else:
            q, k = q / q.norm(dim=-1, keepdim=True), k / k.norm(dim=-1, keepdim=True)
        a = torch.einsum("ihd,jhd->hij", q, k)  # (H, n, n)
        numerator = n * v.transpose(0, 1) + a @ v.transpose(0, 1)  # (H, n, d)
        denominator = n + a.sum(-1, keepdim=True)
        out.append((numerator / denominator).mean(0))
    return torch.cat(out)


def dense_polynormer(layer: PolynormerAttention, x: torch.Tensor, sizes) -> torch.Tensor:
    """Per sample and head: weights W = σ(Q)σ(K)ᵀ (n × n), a = W V / (W 1 + 1e-6), then the
    gate: ReLU(W_O [LN(a) ⊙ (W_h x + β)])."""
    heads, width = layer.num_heads, layer.head_dim
    out = []
    for rows, n in rows_of(sizes):
        k = torch.sigmoid(layer.key(x[rows])).view(n, heads, width)
        q = k if layer.query is None else torch.sigmoid(layer.query(x[rows])).view(n, heads, width)
        v = layer.value(x[rows]).view(n, heads, width)
        w = torch.einsum("ihd,jhd->hij", q, k)
        a = (w @ v.transpose(0, 1)) / (w.sum(-1, keepdim=True) + 1e-6)  # (H, n, d)
        a = a.transpose(0, 1).reshape(n, layer.dim)
        gate = layer.gate(x[rows]) + layer.beta
        out.append(F.relu(layer.out(layer.norm(a) * gate)))
    return torch.cat(out) if out else x.new_zeros(0, layer.dim)


@pytest.mark.parametrize("norm", ["frobenius", "row"])
@pytest.mark.parametrize("heads", [1, 2])
def test_sgformer_equals_the_dense_formula_per_sample(norm, heads):
    torch.manual_seed(0)
    layer = randomize_biases(SGFormerAttention(DIM, heads, bias=True, norm=norm)).double()
    graph = random_graph(SIZES, p=0.3)
    x = torch.randn(graph.num_nodes(), DIM, dtype=torch.float64)
    assert_close(
        f"SGFormer ({norm}) vs dense", layer(graph, x), dense_sgformer(layer, x, SIZES), 1e-12
    )


@pytest.mark.parametrize("qk_shared", [False, True])
@pytest.mark.parametrize("heads", [1, 2])
def test_polynormer_attention_equals_the_dense_formula_per_sample(qk_shared, heads):
    torch.manual_seed(0)
    layer = PolynormerAttention(DIM, heads, beta=0.6, qk_shared=qk_shared, bias=True)
    layer = randomize_biases(layer).double().eval()
    graph = random_graph(SIZES, p=0.3)
    x = torch.randn(graph.num_nodes(), DIM, dtype=torch.float64)
    want = dense_polynormer(layer, x, SIZES)
    assert_close("Polynormer attention vs dense", layer(graph, x), want, 1e-12)


@pytest.mark.parametrize("conv", ["gat", "gcn"])
def test_polynormer_local_equals_the_dense_formula(conv):
    """y = ReLU(BN(Agg(x) + W x)), out = (1 - β) LN(ReLU(W_h x) ⊙ y) + β y, Agg written with
    the dense adjacency: GAT's softmax over in-neighbours (no self-loops added), or GCN's
    D̃^{-1/2}(A + I)D̃^{-1/2} on a symmetric graph."""
    torch.manual_seed(0)
    layer = PolynormerLocal(DIM, 2, beta=0.7, conv=conv, batch_norm=True, in_dim=5).double()
    layer = randomize_biases(layer).eval()
    with torch.no_grad():
        layer.batch_norm.running_mean.uniform_(-0.3, 0.3)
        layer.batch_norm.running_var.uniform_(0.5, 1.5)
    graph = random_graph([7, 5], p=0.4)
    if conv == "gcn":
        import dgl

        sizes = graph.batch_num_nodes()
        graph = dgl.to_bidirected(graph)
        graph.set_batch_num_nodes(sizes)
    x = torch.randn(graph.num_nodes(), 5, dtype=torch.float64)
    adjacency = dense_adjacency(graph).double()  # [i, j] = 1 for an edge j → i
    if conv == "gat":
        h = layer.conv.project(x).view(-1, 2, DIM // 2)
        score = (h * layer.conv.attn_dst).sum(-1)[:, None, :] + (h * layer.conv.attn_src).sum(-1)[
            None, :, :
        ]  # (i, j, H)
        score = F.leaky_relu(score, 0.2).masked_fill(~adjacency.bool()[..., None], float("-inf"))
        alpha = torch.softmax(score, dim=1).nan_to_num(0.0)
        aggregated = torch.einsum("ijh,jhd->ihd", alpha, h).reshape(-1, DIM)
    else:
        loops = adjacency + torch.eye(len(x), dtype=torch.float64)
        degree = loops.sum(1)
        norm = loops / torch.sqrt(degree[:, None] * degree[None, :])
        aggregated = norm @ (x @ layer.conv.weight) + layer.conv.bias
    y = layer.batch_norm(aggregated + layer.linear(x))
    y = F.relu(y)
    want = 0.3 * layer.norm(F.relu(layer.gate(x)) * y) + 0.7 * y
    assert_close(f"Polynormer local ({conv}) vs dense", layer(graph, x), want, 1e-12)


def test_sample_sums_on_one_sample_equal_the_padded_path():
    """The unpadded path (one non-empty sample) and the padded one agree."""
    torch.manual_seed(1)
    q, k, v = torch.rand(9, 2, 3), torch.rand(9, 2, 3), torch.randn(9, 2, 4)
    one = sample_sums(q, k, v, torch.tensor([0, 9, 0]))
    padded = sample_sums(
        torch.cat([q, q]), torch.cat([k, k]), torch.cat([v, v]), torch.tensor([9, 9])
    )
    assert_close("one sample vs padded numerator", one[0], padded[0][:9], 1e-6)
    assert_close("one sample vs padded denominator", one[1], padded[1][9:], 1e-6)


@pytest.mark.parametrize("name", ["sgformer", "polynormer"])
def test_a_sample_does_not_see_the_others_of_its_batch(name):
    """Each sample's output alone equals its rows in a batch."""
    torch.manual_seed(2)
    block = BlockConfig(dim=DIM, num_heads=2)
    layer = mixers.build(name, block)
    graph = random_graph(SIZES, p=0.3)
    x = torch.randn(graph.num_nodes(), DIM)
    batched = layer(graph, x)
    for (rows, n), seed in zip(rows_of(SIZES), range(9), strict=False):
        alone = layer(random_graph([n], p=0.3, seed=seed), x[rows])
        assert_close(f"{name}: alone vs batched", batched[rows], alone, 1e-5)


@pytest.mark.parametrize("name", ["sgformer", "polynormer"])
def test_equivariant_under_node_relabelling(name):
    torch.manual_seed(3)
    layer = mixers.build(name, BlockConfig(dim=DIM, num_heads=2))
    graph = random_graph(SIZES, p=0.3)
    x = torch.randn(graph.num_nodes(), DIM)
    perm = within_sample_permutation(SIZES, seed=4)
    assert_close(
        f"{name}: permuted", layer(permute_nodes(graph, perm), x[perm]), layer(graph, x)[perm]
    )


def test_float64_gradcheck():
    torch.manual_seed(4)
    graph = random_graph([4, 0, 3], p=0.5)
    for layer in (
        SGFormerAttention(4, 2, bias=True),
        PolynormerAttention(4, 2),
        PolynormerLocal(4, 2),
    ):
        layer = layer.double()
        x = torch.randn(graph.num_nodes(), 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda h, m=layer: m(graph, h), (x,))


def test_bad_settings_are_refused_with_what_to_do():
    with pytest.raises(ValueError, match=r"unknown norm 'l1'.*frobenius"):
        SGFormerAttention(8, norm="l1")
    with pytest.raises(ValueError, match="beta must be a number in \\[0, 1\\]; got 2"):
        PolynormerAttention(8, beta=2)
    with pytest.raises(ValueError, match="num_heads=3 must divide dim=8"):
        PolynormerAttention(8, 3)
    with pytest.raises(ValueError, match="unknown Polynormer local conv 'sage'"):
        PolynormerLocal(8, conv="sage")
    with pytest.raises(ValueError, match="global_kwargs \\['degree'\\] are not settings of"):
        BlockConfig(mixer="gps", global_mixer="sgformer", global_kwargs={"degree": 3})
    with pytest.raises(ValueError, match=r"x must have shape \(3, 8\)"):
        SGFormerAttention(8)(random_graph([3]), torch.randn(3, 4))


def test_gps_block_with_linear_global_mixers_and_their_settings():
    """``gps`` with ``global_mixer=sgformer`` / ``polynormer`` and their settings."""
    graph = random_graph(SIZES, p=0.3)
    x = torch.randn(graph.num_nodes(), DIM)
    for global_mixer, kwargs in (("sgformer", {"norm": "row"}), ("polynormer", {"beta": 0.5})):
        config = BlockConfig(
            dim=DIM, mixer="gps", global_mixer=global_mixer, global_kwargs=kwargs, num_heads=2
        )
        block = GraphTransformerBlock(config)
        assert block(graph, x).shape == x.shape
    assert GraphTransformerBlock(config).global_mixer.beta == 0.5


@pytest.mark.parametrize("mixer", ["sgformer", "polynormer"])
def test_a_block_refuses_dense_with_only_linear_attention(mixer):
    config = BlockConfig(dim=DIM, mixer="gps", global_mixer=mixer, engine="dense")
    with pytest.raises(ValueError, match="linear attentions performer, sgformer and polynormer"):
        GraphTransformerBlock(config)
