"""add_linear: other + x Wᵀ on oneDNN for large CPU batches equals torch.addmm in values and
gradients; the rule that picks it; GatedGCN on that path equals DGL's GatedGCNConv."""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import GatedGCN
from graphformer.nn.core import linear
from graphformer.nn.core.linear import ONEDNN_MIN_ROWS, add_linear, onednn_pays_off

import pytest
import torch
from dgl.nn import GatedGCNConv
from helpers import assert_close, random_graph

needs_onednn = pytest.mark.skipif(
    linear._onednn_linear() is None, reason="this torch build has no oneDNN linear"
)


def _inputs(rows: int, width_in: int = 70, width_out: int = 70):
    torch.manual_seed(0)
    other = torch.randn(rows, width_out, requires_grad=True)
    x = torch.randn(rows, width_in, requires_grad=True)
    weight = torch.randn(width_out, width_in, requires_grad=True)
    return other, x, weight


@needs_onednn
@pytest.mark.parametrize("widths", [(70, 70), (48, 48), (33, 70)])
def test_add_linear_on_onednn_equals_addmm_with_gradients(widths):
    other, x, weight = _inputs(ONEDNN_MIN_ROWS + 5, *widths)
    assert onednn_pays_off(x, weight)
    ours = add_linear(other, x, weight)
    assert ours.grad_fn is not None and "AddLinear" in type(ours.grad_fn).__name__
    theirs = torch.addmm(other, x, weight.t())
    assert_close("add_linear vs addmm", ours, theirs, atol=1e-4)
    grad = torch.randn_like(ours)
    for name, a, b in zip(
        ("other", "x", "weight"),
        torch.autograd.grad(ours, (other, x, weight), grad),
        torch.autograd.grad(theirs, (other, x, weight), grad),
        strict=True,
    ):
        assert_close(f"add_linear gradient of {name}", a, b, atol=1e-3 * b.abs().max().item())


def test_the_rule_takes_onednn_only_for_large_cpu_float32_batches():
    _, x, weight = _inputs(ONEDNN_MIN_ROWS - 1)
    assert not onednn_pays_off(x, weight), "small batches: oneDNN's per-shape set-up"
    assert not onednn_pays_off(x.double(), weight.double()), "float32 only"
    small = add_linear(torch.zeros(3, 2), torch.ones(3, 4), torch.ones(2, 4))
    assert torch.equal(small, torch.full((3, 2), 4.0))


@needs_onednn
def test_gatedgcn_on_the_onednn_path_equals_dgl_gatedgcnconv(monkeypatch):
    """Every batch large enough (the threshold lowered): the edge GEMM runs on oneDNN."""
    monkeypatch.setattr(linear, "ONEDNN_MIN_ROWS", 1)
    calls = []
    original = linear._AddLinear.apply
    monkeypatch.setattr(linear._AddLinear, "apply", lambda *a: calls.append(1) or original(*a))
    torch.manual_seed(0)
    ours, theirs = GatedGCN(6), GatedGCNConv(6, 6, 6)
    pairs = {"A": "root", "B": "value", "C": "gate_edge", "D": "gate_src", "E": "gate_dst"}
    pairs |= {"bn_node": "norm_node", "bn_edge": "norm_edge"}
    for their_name, our_name in pairs.items():
        getattr(theirs, their_name).load_state_dict(getattr(ours, our_name).state_dict())
    graph = random_graph([6, 5], p=0.4, seed=2)
    x, e = torch.randn(graph.num_nodes(), 6), torch.randn(graph.num_edges(), 6)
    e.requires_grad_(True)
    for a, b, what in zip(ours(graph, x, e), theirs(graph, x, e), ("nodes", "edges"), strict=True):
        assert_close(f"GatedGCN {what} on oneDNN vs GatedGCNConv", a, b)
    assert calls, "the edge GEMM took oneDNN"
    grad_ours = torch.autograd.grad(sum(t.sum() for t in ours(graph, x, e)), e)[0]
    grad_theirs = torch.autograd.grad(sum(t.sum() for t in theirs(graph, x, e)), e)[0]
    assert_close("GatedGCN edge gradient on oneDNN vs GatedGCNConv", grad_ours, grad_theirs)
