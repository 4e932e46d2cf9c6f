"""The dense engine on any graph: padded SDPA with the adjacency as the mask.

It must equal DGL message passing, outputs and gradients, on graphs with multi-edges,
isolated nodes, zero in-degree and 1-node samples, with additive biases and Shaw key
terms; refuse (``dense``) or fall back (``auto``) where it cannot apply; and ``auto``
must take it by :func:`graphformer.nn.core.dense.dense_pays_off`.
"""

from __future__ import annotations

import copy

import graphformer  # noqa: F401  (before DGL)
import graphformer.nn.core.dense as dense_module
from graphformer.graphs import (
    add_self_loops,
    add_virtual_nodes,
    complete_bipartite,
    complete_graph,
    expander_graph,
    union_graphs,
)
from graphformer.nn import BlockConfig, GraphTransformer, MultiHeadAttention
from graphformer.nn.core.dense import AttentionLayout, attention_layout, dense_pays_off

import dgl
import pytest
import torch
from helpers import assert_close, random_graph

DIM, HEADS, EDGE_DIM = 16, 4, 6
#: A 1-node sample, a sample whose nodes have no in-edges, and ordinary ones.
SIZES = [5, 1, 8, 3, 6]


def awkward_graph() -> dgl.DGLGraph:
    """Random edges within samples plus multi-edges (an expander), self-loops on some
    nodes only, a sample with no edges at all and nodes with zero in-degree."""
    graph = random_graph(SIZES, p=0.35, seed=3)
    expander = expander_graph(SIZES, 2, seed=5)  # self-loops and repeated edges
    union = union_graphs(graph, expander)
    src, dst = union.edges()
    sample_start = torch.tensor([0, 5, 6, 14, 17])
    # Drop every edge into the last sample's first two nodes and the 3-node sample.
    keep = ~((dst >= sample_start[3]) & (dst < sample_start[4])) & (dst != 17) & (dst != 18)
    kept = dgl.graph((src[keep], dst[keep]), num_nodes=union.num_nodes())
    kept.set_batch_num_nodes(torch.tensor(SIZES))
    sample = torch.repeat_interleave(torch.arange(len(SIZES)), torch.tensor(SIZES))
    kept.set_batch_num_edges(torch.bincount(sample[dst[keep]], minlength=len(SIZES)))
    return kept


def twins(**kwargs) -> tuple[MultiHeadAttention, MultiHeadAttention]:
    torch.manual_seed(0)
    reference = MultiHeadAttention(DIM, HEADS, engine="dgl", **kwargs)
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    dense = copy.deepcopy(reference)
    dense.engine = "dense"
    return reference, dense


def outputs_and_grads(layer, graph, inputs):
    inputs = [t.detach().clone().requires_grad_(True) if t is not None else None for t in inputs]
    out = layer(graph, *inputs)
    loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
    leaves = [t for t in inputs if t is not None] + list(layer.parameters())
    return out, torch.autograd.grad(loss, leaves, allow_unused=True)


def assert_dense_equals_dgl(name, graph, terms=(False, False), **kwargs):
    reference, dense = twins(**kwargs)
    x = torch.randn(graph.num_nodes(), DIM)
    feat = torch.randn(graph.num_edges(), EDGE_DIM) if terms[0] else None
    bias = torch.randn(graph.num_edges(), HEADS) if terms[1] else None
    out_ref, grads_ref = outputs_and_grads(reference, graph, [x, feat, bias])
    out, grads = outputs_and_grads(dense, graph, [x, feat, bias])
    assert_close(f"dense vs DGL engine ({name}): output", out, out_ref, atol=1e-5)
    for got, want in zip(grads, grads_ref, strict=True):
        if want is not None:
            assert_close(f"dense vs DGL engine ({name}): gradients", got, want, atol=1e-5)


def test_awkward_graph_has_what_the_tests_need():
    graph = awkward_graph()
    layout = AttentionLayout(graph, torch.device("cpu"))
    assert layout.multi_edges and layout.within_samples
    assert (graph.in_degrees() == 0).sum() >= 5
    assert (graph.batch_num_nodes() == 1).any()


def test_layout_counts_a_single_repeated_edge_as_a_multi_edge():
    src, dst = torch.tensor([0, 1, 2, 3, 4]), torch.tensor([1, 2, 0, 4, 3])
    graph = dgl.graph((src, dst), num_nodes=5)
    graph.set_batch_num_nodes(torch.tensor([3, 2]))
    graph.set_batch_num_edges(torch.tensor([3, 2]))
    assert not AttentionLayout(graph, torch.device("cpu")).multi_edges
    twice = dgl.graph((torch.cat([src, src[3:4]]), torch.cat([dst, dst[3:4]])), num_nodes=5)
    twice.set_batch_num_nodes(torch.tensor([3, 2]))
    twice.set_batch_num_edges(torch.tensor([3, 3]))
    layout = AttentionLayout(twice, torch.device("cpu"))
    assert layout.multi_edges
    # 3 → 4 twice: log 2 in its cell, 0 on the other edges, -inf elsewhere in that sample
    assert torch.isclose(max(mask.max() for mask in layout.mask), torch.tensor(2.0).log())


@pytest.mark.parametrize(
    ("feat", "bias"),
    [(False, False), (False, True), (True, False), (True, True)],
    ids=["plain", "bias", "shaw_key", "bias_and_shaw_key"],
)
@pytest.mark.parametrize("graph_kind", ["awkward", "simple", "complete"])
def test_dense_equals_dgl_outputs_and_gradients(graph_kind, feat, bias):
    graph = {
        "awkward": awkward_graph,
        "simple": lambda: add_self_loops(random_graph(SIZES, p=0.5, seed=1)),
        "complete": lambda: complete_graph(SIZES),
    }[graph_kind]()
    edge_kwargs = {"edge_dim": EDGE_DIM, "edge_value": False} if feat else {}
    assert_dense_equals_dgl(graph_kind, graph, (feat, bias), **edge_kwargs)


def test_exphormer_attention_graph_with_virtual_nodes():
    graph = random_graph(SIZES, p=0.3, seed=7)
    attention_graph = add_virtual_nodes(union_graphs(graph, expander_graph(graph, 4, seed=2)), 2)
    assert_dense_equals_dgl("exphormer graph", attention_graph, (True, True), edge_dim=EDGE_DIM,
                            edge_value=False)  # fmt: skip


def test_a_graph_without_edges_gives_the_output_bias():
    graph = dgl.graph(([], []), num_nodes=sum(SIZES))
    graph.set_batch_num_nodes(torch.tensor(SIZES))
    graph.set_batch_num_edges(torch.zeros(len(SIZES), dtype=torch.long))
    _, dense = twins()
    out = dense(graph, torch.randn(graph.num_nodes(), DIM))
    assert_close("no edges: output vs out_proj.bias", out, dense.out_proj.bias.expand_as(out))


def test_gradcheck_float64_with_multi_edges_and_terms():
    graph = awkward_graph()
    _, dense = twins(edge_dim=EDGE_DIM, edge_value=False)
    dense = dense.double()
    x = torch.randn(graph.num_nodes(), DIM, dtype=torch.float64, requires_grad=True)
    feat = torch.randn(graph.num_edges(), EDGE_DIM, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(graph.num_edges(), HEADS, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: dense(graph, *t), (x, feat, bias))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("value_terms", "Shaw value terms"),
        ("weights", "return_attention"),
        ("cross", "cross-attention"),
        ("between_samples", "an edge between two samples"),
    ],
)
def test_dense_refuses_what_it_cannot_run_and_auto_falls_back(call, message):
    graph = add_self_loops(random_graph(SIZES, p=0.5, seed=1))
    kwargs, args = {}, {}
    if call == "value_terms":
        kwargs = {"edge_dim": EDGE_DIM}
        args = {"edge_feat": torch.randn(graph.num_edges(), EDGE_DIM)}
    elif call == "weights":
        args = {"return_attention": True}
    elif call == "between_samples":
        src, dst = graph.edges()
        graph = dgl.graph(
            (torch.cat([src, torch.tensor([0])]), torch.cat([dst, torch.tensor([20])]))
        )
        graph.set_batch_num_nodes(torch.tensor(SIZES))
    x = torch.randn(graph.num_nodes(), DIM)
    if call == "cross":
        graph = complete_bipartite(SIZES, SIZES)
        x = (x, x)
    reference, dense = twins(**kwargs)
    with pytest.raises(ValueError, match=f"engine='dense' runs .*{message}.*engine='auto'"):
        dense(graph, x, **args)
    dense.engine = "auto"
    out, out_ref = dense(graph, x, **args), reference(graph, x, **args)
    if call == "weights":
        out, out_ref = out[0], out_ref[0]
    assert_close(f"auto falls back ({call})", out, out_ref)


def spy_on_dense(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = AttentionLayout.attend
    monkeypatch.setattr(AttentionLayout, "attend", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_auto_takes_the_dense_engine_by_the_measured_rule(monkeypatch):
    calls = spy_on_dense(monkeypatch)
    attention = MultiHeadAttention(DIM, HEADS)
    dense_batch = add_self_loops(random_graph([40] * 4, p=0.3, seed=2))
    assert dense_pays_off(dense_batch)
    attention(dense_batch, torch.randn(dense_batch.num_nodes(), DIM))
    assert calls == [1]
    # Sparse samples: B·L² far above DENSE_CELLS_PER_EDGE per edge.
    sparse_batch = add_self_loops(random_graph([200] * 2, p=0.005, seed=2))
    assert not dense_pays_off(sparse_batch)
    attention(sparse_batch, torch.randn(sparse_batch.num_nodes(), DIM))
    # One huge sample: beyond DENSE_MAX_SAMPLE even if dense.
    big = dgl.rand_graph(dense_module.DENSE_MAX_SAMPLE + 1, 60_000)
    assert not dense_pays_off(big)
    assert calls == [1]


def test_the_layout_is_built_once_per_graph(monkeypatch):
    builds = []
    real = AttentionLayout.__init__
    monkeypatch.setattr(
        AttentionLayout, "__init__", lambda self, *a: builds.append(1) or real(self, *a)
    )
    graph = add_self_loops(random_graph([40] * 3, p=0.3, seed=1))
    assert dense_pays_off(graph)  # so auto, the local attention's engine, runs it dense
    model = GraphTransformer(3, BlockConfig(dim=DIM), num_layers=3, in_dim=4)
    model(graph, torch.randn(graph.num_nodes(), 4))
    assert builds == [1]
    layout = attention_layout(graph, torch.device("cpu"))
    assert attention_layout(graph, torch.device("cpu")) is layout


def test_model_dense_equals_dgl():
    torch.manual_seed(0)
    graph = random_graph(SIZES, p=0.4, seed=4)
    reference = GraphTransformer(3, BlockConfig(dim=DIM, engine="dgl"), num_layers=2, in_dim=4)
    dense = copy.deepcopy(reference)
    for module in dense.modules():
        if hasattr(module, "engine"):
            module.engine = "dense"
    x = torch.randn(graph.num_nodes(), 4)
    assert_close("model: dense vs DGL engine", dense(graph, x), reference(graph, x), atol=1e-5)


def test_half_precision_attention_on_the_cpu_runs_dense():
    """DGL's CPU kernels refuse float16 (tests/data/test_validation.py); SDPA does not."""
    graph = add_self_loops(random_graph([12] * 3, p=0.5, seed=1))
    _, dense = twins()
    x = torch.randn(graph.num_nodes(), DIM)
    out = dense.half()(graph, x.half())
    assert out.dtype == torch.float16
    assert_close("float16 dense vs float32", out.float(), dense.float()(graph, x), atol=2e-2)
