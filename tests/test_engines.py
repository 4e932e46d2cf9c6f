"""The dense engine equals DGL message passing on complete graphs: outputs and gradients."""

from __future__ import annotations

import copy

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import complete_graph, is_complete
from graphformer.nn import GraphTransformer, GraphTransformerBlock, MultiHeadAttention

import dgl
import pytest
import torch
from helpers import assert_close

SIZES = [3, 7, 1, 5]


def twins(module_class, *args, **kwargs):
    """The same module twice, with equal weights, on the DGL and the dense engine."""
    dgl_module = module_class(*args, engine="dgl", **kwargs)
    dense_module = module_class(*args, engine="dense", **kwargs)
    dense_module.load_state_dict(copy.deepcopy(dgl_module.state_dict()))
    return dgl_module, dense_module


def outputs_and_grads(module, call, x):
    x = x.detach().clone().requires_grad_(True)
    out = call(module, x)
    loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
    loss.backward()
    return out, x.grad, {name: p.grad for name, p in module.named_parameters()}


def assert_engines_equal(name, dgl_module, dense_module, call, x):
    out_a, dx_a, params_a = outputs_and_grads(dgl_module, call, x)
    out_b, dx_b, params_b = outputs_and_grads(dense_module, call, x)
    assert_close(f"dense vs DGL engine: {name} output", out_b, out_a)
    assert_close(f"dense vs DGL engine: {name} input grad", dx_b, dx_a)
    for key, grad in params_a.items():
        if grad is not None:
            assert_close(f"dense vs DGL engine: {name} param grads", params_b[key], grad)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_attention_dense_equals_dgl_on_mixed_sizes(mode):
    dgl_attention, dense_attention = twins(MultiHeadAttention, 16, 4, dropout=0.0)
    for module in (dgl_attention, dense_attention):
        module.train(mode == "train")
    graph = complete_graph(SIZES)
    x = torch.randn(sum(SIZES), 16)
    assert_engines_equal("attention", dgl_attention, dense_attention, lambda m, h: m(graph, h), x)


def test_auto_uses_dense_only_on_complete_graphs_with_self_loops(monkeypatch):
    calls = []
    import graphformer.nn.attention as attention_module

    real = attention_module.dense_attention
    monkeypatch.setattr(
        attention_module, "dense_attention", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    attention = MultiHeadAttention(8, 2)
    x = torch.randn(sum(SIZES), 8)
    attention(complete_graph(SIZES), x)
    assert calls == [1]
    no_loops = complete_graph(SIZES, self_loops=False)
    assert not is_complete(no_loops)
    attention(no_loops, x)
    attention(complete_graph(SIZES), x, return_attention=True)
    assert calls == [1]


def test_dense_engine_without_self_loops_would_differ_so_it_is_refused():
    attention = MultiHeadAttention(8, 2, engine="dense")
    with pytest.raises(ValueError, match=r"engine='dense' runs only .*complete_graph"):
        attention(complete_graph(SIZES, self_loops=False), torch.randn(sum(SIZES), 8))
    with pytest.raises(ValueError, match=r"return_attention"):
        attention(complete_graph(SIZES), torch.randn(sum(SIZES), 8), return_attention=True)


def test_unknown_engine_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown attention engine 'fast'.*'dgl', 'dense'"):
        MultiHeadAttention(8, 2, engine="fast")


@pytest.mark.parametrize("mixer", ["full", "gps"])
def test_block_engines_agree(mixer):
    dgl_block, dense_block = twins(GraphTransformerBlock, 16, mixer=mixer, num_heads=4)
    graph = dgl.batch([dgl.rand_graph(n, min(2 * n, n * n)) for n in SIZES])
    x = torch.randn(graph.num_nodes(), 16)
    assert_engines_equal(f"{mixer} block", dgl_block, dense_block, lambda m, h: m(graph, h), x)


@pytest.mark.parametrize("mixer", ["full", "gps"])
def test_model_engines_agree(mixer):
    torch.manual_seed(1)
    dgl_model, dense_model = twins(
        GraphTransformer, 3, hidden_dim=16, num_layers=2, mixer=mixer, in_dim=5, level="graph"
    )
    graph = dgl.batch([dgl.rand_graph(n, min(2 * n, n * n)) for n in SIZES])
    x = torch.randn(graph.num_nodes(), 5)
    assert_engines_equal(f"{mixer} model", dgl_model, dense_model, lambda m, h: m(graph, h), x)
