"""gated_sum (GatedGCN's two sums with one backward pass over the edges) against DGL's
own two kernels: outputs and gradients equal, float64 gradcheck, bad shapes named."""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn.core.gated_sum import gated_sum
from graphformer.nn.core.message_passing import MessagePassing

import dgl
import dgl.ops
import pytest
import torch
from helpers import random_graph


def isolated_graph() -> dgl.DGLGraph:
    """Two samples and a node (the last) without in-edges."""
    graph = random_graph([5, 4], p=0.5, seed=1)
    return dgl.add_nodes(graph, 1)


def test_gated_sum_equals_dgls_two_sums_with_their_gradients():
    graph = isolated_graph()
    torch.manual_seed(0)
    value = torch.randn(graph.num_nodes(), 7, requires_grad=True)
    sigma = torch.rand(graph.num_edges(), 7, requires_grad=True)
    g_num, g_den = torch.randn(graph.num_nodes(), 7), torch.randn(graph.num_nodes(), 7)
    num, den = gated_sum(graph, value, sigma)
    torch.autograd.backward([num, den], [g_num, g_den])
    grads = value.grad.clone(), sigma.grad.clone()
    value.grad = sigma.grad = None
    ref_num = dgl.ops.u_mul_e_sum(graph, value, sigma)
    ref_den = dgl.ops.copy_e_sum(graph, sigma)
    torch.autograd.backward([ref_num, ref_den], [g_num, g_den])
    assert torch.equal(num, ref_num) and torch.equal(den, ref_den)
    assert torch.allclose(grads[0], value.grad, atol=1e-6)
    assert torch.allclose(grads[1], sigma.grad, atol=1e-6)
    assert num[-1].abs().sum() == 0 and den[-1].abs().sum() == 0, "no in-edges: zeros"


def test_gated_sum_gradcheck_float64_and_one_used_output():
    graph = isolated_graph()
    value = torch.randn(graph.num_nodes(), 3, dtype=torch.float64, requires_grad=True)
    sigma = torch.rand(graph.num_edges(), 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, s: gated_sum(graph, v, s), (value, sigma))
    # Only one of the two sums in the loss: the other's gradient arrives as None.
    assert torch.autograd.gradcheck(lambda v, s: gated_sum(graph, v, s)[1], (value, sigma))


@pytest.mark.parametrize("engine", ["dgl", "torch"])
def test_the_primitive_is_the_same_two_sums_on_both_engines(engine):
    graph = isolated_graph()
    value, sigma = torch.randn(graph.num_nodes(), 4), torch.rand(graph.num_edges(), 4)
    num, den = MessagePassing(graph, engine, value).gated_sum(value, sigma)
    assert torch.allclose(num, dgl.ops.u_mul_e_sum(graph, value, sigma), atol=1e-6)
    assert torch.allclose(den, dgl.ops.copy_e_sum(graph, sigma), atol=1e-6)


def test_gated_sum_names_bad_shapes():
    graph = isolated_graph()
    with pytest.raises(ValueError, match=r"value \(N, d\) and sigma \(E, d\) of one width"):
        gated_sum(graph, torch.randn(graph.num_nodes(), 4), torch.rand(graph.num_edges(), 3))
