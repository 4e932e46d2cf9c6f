"""The message-passing core: every primitive equal on the DGL and the torch engine, values
and gradients, on a graph with a node without in-edges; and the one engine rule."""

from __future__ import annotations

import importlib

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import GINE, GATConv, GatedGCN
from graphformer.nn.core.message_passing import (
    REDUCES,
    DGLPrimitives,
    MessagePassing,
    TorchPrimitives,
    resolve_engine,
    torch_pays_off,
)

import dgl
import pytest
import torch
from helpers import assert_close, random_graph

N, E, H, D = 6, 14, 2, 3


def graph(idtype: torch.dtype = torch.int64) -> dgl.DGLGraph:
    torch.manual_seed(0)
    src, dst = torch.randint(0, N, (E,)), torch.randint(1, N, (E,))  # node 0: no in-edges
    return dgl.graph((src, dst), num_nodes=N, idtype=idtype)


PRIMITIVES = {
    "copy_u": lambda mp, u, v, e: mp.copy_u(u),
    "copy_v": lambda mp, u, v, e: mp.copy_v(v),
    "u_dot_v": lambda mp, u, v, e: mp.u_dot_v(u, v),
    "e_dot_v": lambda mp, u, v, e: mp.e_dot_v(e, v),
    "u_add_v": lambda mp, u, v, e: mp.u_add_v(u, v),
    "u_add_e": lambda mp, u, v, e: mp.u_add_e(u, e),
    "edge_softmax": lambda mp, u, v, e: mp.edge_softmax(e),
    **{f"copy_e_{op}": lambda mp, u, v, e, op=op: mp.copy_e_reduce(e, op) for op in REDUCES},
    **{f"copy_u_{op}": lambda mp, u, v, e, op=op: mp.copy_u_reduce(u, op) for op in REDUCES},
    **{
        f"u_mul_e_{op}": lambda mp, u, v, e, op=op: mp.u_mul_e_reduce(u, e[..., :1], op)
        for op in REDUCES
    },
    "weighted_degrees": lambda mp, u, v, e: torch.cat(mp.degrees(u, e[:, 0, 0].abs())),
    "add_copy_e_sum": lambda mp, u, v, e: mp.add_copy_e_sum(v, e),
}


@pytest.mark.parametrize("idtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_torch_equals_dgl(name, idtype):
    g = graph(idtype)  # the torch engine gathers with the graph's own index dtype
    inputs = [torch.randn(N, H, D), torch.randn(N, H, D), torch.randn(E, H, D)]
    results = {}
    for engine in ("dgl", "torch"):
        leaves = [t.clone().requires_grad_(True) for t in inputs]
        out = PRIMITIVES[name](MessagePassing(g, engine, leaves[0]), *leaves)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in leaves]
        results[engine] = (out, grads)
    assert_close(f"{name} torch vs DGL", results["torch"][0], results["dgl"][0])
    for theirs, ours in zip(results["dgl"][1], results["torch"][1], strict=True):
        assert_close(f"{name} grads torch vs DGL", ours, theirs)


def test_reduce_gives_zeros_without_in_edges_and_names_bad_reduces():
    g = graph()
    for engine in ("dgl", "torch"):
        mp = MessagePassing(g, engine, torch.zeros(1))
        for op in REDUCES:
            assert not mp.copy_u_reduce(torch.randn(N, D), op)[0].any()
        with pytest.raises(ValueError, match=r"unknown reduce 'min'.*'sum', 'mean', 'max'"):
            mp.copy_u_reduce(torch.randn(N, D), "min")


def test_engine_rule():
    g, x = graph(), torch.zeros(1)
    meta = torch.zeros(1, device="meta")  # stands in for a device DGL cannot reach
    assert resolve_engine("auto", g, x) == "dgl"
    assert resolve_engine("auto", g, meta) == "torch"
    assert resolve_engine("dgl", g, meta) == "dgl"
    assert resolve_engine("torch", g, x) == "torch"
    assert resolve_engine("dense", g, x) == "dgl"  # attention decides on dense itself


def test_torch_below_rule():
    """A layer's ``torch_below``: ``auto`` on torch for CPU graphs of fewer edges, never
    against a pinned engine, never by default."""
    g, x = graph(), torch.zeros(1)
    assert torch_pays_off(g, x, g.num_edges() + 1)
    assert not torch_pays_off(g, x, g.num_edges())  # not fewer
    assert not torch_pays_off(g, x, 0)  # the default: off
    assert not torch_pays_off(g, torch.zeros(1, device="meta"), 10**9)  # CPU calls only
    assert resolve_engine("auto", g, x, torch_below=g.num_edges() + 1) == "torch"
    assert resolve_engine("auto", g, x, torch_below=g.num_edges()) == "dgl"
    assert resolve_engine("dgl", g, x, torch_below=10**9) == "dgl"
    assert type(MessagePassing(g, "auto", x, torch_below=10**9)) is TorchPrimitives
    assert type(MessagePassing(g, "auto", x, torch_below=1)) is DGLPrimitives


def test_add_copy_e_sum_is_base_plus_the_sum():
    g = graph()
    base, e = torch.randn(N, D), torch.randn(E, D)
    for engine in ("dgl", "torch"):
        mp = MessagePassing(g, engine, base)
        expected = base + mp.copy_e_reduce(e, "sum")
        assert_close(f"add_copy_e_sum {engine}", mp.add_copy_e_sum(base, e), expected)


#: Layers with a measured ``torch_below`` rule: the module, its rule's name, and how to
#: build and call it.
TORCH_BELOW_LAYERS = {
    "gine": (
        "graphformer.nn.layers.gine",
        "GINE_TORCH_BELOW",
        lambda engine: GINE(8, engine=engine),
        lambda module, graph, x: module(graph, x, torch.ones(graph.num_edges(), 8))[0],
    ),
    "gatedgcn": (
        "graphformer.nn.layers.gatedgcn",
        "GATEDGCN_TORCH_BELOW",
        lambda engine: GatedGCN(8, engine=engine),
        lambda module, graph, x: module(graph, x, torch.ones(graph.num_edges(), 8))[0],
    ),
    "gat": (
        "graphformer.nn.layers.gat",
        "GAT_TORCH_BELOW",
        lambda engine: GATConv(8, 4, 2, engine=engine),
        lambda module, graph, x: module(graph, x),
    ),
}


@pytest.mark.parametrize("name", TORCH_BELOW_LAYERS)
def test_layer_auto_runs_torch_below_its_measured_size(name, monkeypatch):
    """``engine='auto'``: the torch engine on CPU graphs of fewer edges than the layer's
    rule, DGL from there on; the same outputs either way."""
    module_name, rule, build, call = TORCH_BELOW_LAYERS[name]
    module = importlib.import_module(module_name)
    used, original = [], module.MessagePassing

    def spy(*args, **kwargs):
        mp = original(*args, **kwargs)
        used.append(mp.engine)
        return mp

    monkeypatch.setattr(module, "MessagePassing", spy)
    graph = random_graph([6, 5], p=0.4, seed=3)
    x = torch.randn(graph.num_nodes(), 8)
    torch.manual_seed(0)
    reference = build("dgl").eval()
    torch.manual_seed(0)
    auto = build("auto").eval()
    expected = call(reference, graph, x)
    assert_close(f"{name} auto (torch) vs dgl", call(auto, graph, x), expected)
    monkeypatch.setattr(module, rule, graph.num_edges())
    assert_close(f"{name} auto (dgl) vs dgl", call(auto, graph, x), expected)
    assert used == ["dgl", "torch", "dgl"]  # the reference, auto small, auto at the size
