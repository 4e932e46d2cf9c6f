"""GatedGCN against an edge-by-edge reference and DGL's GatedGCNConv; equivariance; gradcheck.
(DGL-vs-torch engine equality: tests/nn/test_engines.py, for every registered mixer.)"""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import GatedGCN

import pytest
import torch
from dgl.nn import GatedGCNConv
from helpers import assert_close, permute_nodes, random_graph, randomize_biases

DIM = 6


def layer(**kwargs) -> GatedGCN:
    """Eval mode with random BatchNorm statistics and affine parameters."""
    torch.manual_seed(0)
    module = randomize_biases(GatedGCN(DIM, **kwargs))
    with torch.no_grad():
        for norm in (module.norm_node, module.norm_edge):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.uniform_(0.5, 1.5)
    return module.eval()


def batch_norm_eval(norm: torch.nn.BatchNorm1d, v: torch.Tensor) -> torch.Tensor:
    return (v - norm.running_mean) / (norm.running_var + norm.eps).sqrt() * norm.weight + norm.bias


def reference(module: GatedGCN, graph, x, e):
    """The docstring's equations, one edge at a time."""
    src, dst = graph.edges()
    numerator, denominator = torch.zeros(len(x), DIM), torch.zeros(len(x), DIM)
    gates = []
    for k, (j, i) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
        gate = module.gate_dst(x[i]) + module.gate_src(x[j]) + module.gate_edge(e[k])
        gates.append(gate)
        numerator[i] += torch.sigmoid(gate) * module.value(x[j])
        denominator[i] += torch.sigmoid(gate)
    h = module.root(x) + numerator / (denominator + 1e-6)
    h_out = x + torch.relu(batch_norm_eval(module.norm_node, h))
    e_out = e + torch.relu(batch_norm_eval(module.norm_edge, torch.stack(gates)))
    return h_out, e_out


def test_gatedgcn_equals_edge_by_edge_reference():
    graph = random_graph([5, 4], p=0.5, seed=1)
    module = layer()
    x, e = torch.randn(graph.num_nodes(), DIM), torch.randn(graph.num_edges(), DIM)
    h, e_out = module(graph, x, e)
    h_ref, e_ref = reference(module, graph, x, e)
    assert_close("GatedGCN nodes vs edge-by-edge reference", h, h_ref)
    assert_close("GatedGCN edges vs edge-by-edge reference", e_out, e_ref)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_gatedgcn_equals_dgl_gatedgcnconv(mode):
    """DGL's layer with the same weights: its A, B, C are our root, value, gate_edge; its
    D acts on sources and E on destinations (our gate_src, gate_dst)."""
    module = layer().train(mode == "train")
    theirs = GatedGCNConv(DIM, DIM, DIM).train(mode == "train")
    pairs = {"A": "root", "B": "value", "C": "gate_edge", "D": "gate_src", "E": "gate_dst"}
    pairs |= {"bn_node": "norm_node", "bn_edge": "norm_edge"}
    for their_name, our_name in pairs.items():
        getattr(theirs, their_name).load_state_dict(getattr(module, our_name).state_dict())
    graph = random_graph([6, 5], p=0.4, seed=2)
    x, e = torch.randn(graph.num_nodes(), DIM), torch.randn(graph.num_edges(), DIM)
    outputs = zip(module(graph, x, e), theirs(graph, x, e), ("nodes", "edges"), strict=True)
    for ours, expected, what in outputs:
        assert_close(f"GatedGCN {what} vs dgl.nn.GatedGCNConv ({mode})", ours, expected)


def test_gatedgcn_permutation_equivariance():
    graph = random_graph([7], p=0.4, seed=3)
    module = layer()
    x, e = torch.randn(7, DIM), torch.randn(graph.num_edges(), DIM)
    perm, edge_perm = torch.randperm(7), torch.randperm(graph.num_edges())
    h, e_out = module(graph, x, e)
    h_perm, e_perm = module(permute_nodes(graph, perm, edge_perm), x[perm], e[edge_perm])
    assert_close("GatedGCN node equivariance", h_perm, h[perm])
    assert_close("GatedGCN edge equivariance", e_perm, e_out[edge_perm])


def test_gatedgcn_without_edge_state_starts_from_zeros():
    graph = random_graph([5], p=0.5, seed=4)
    module, x = layer(), torch.randn(5, DIM)
    zeros = torch.zeros(graph.num_edges(), DIM)
    for got, expected in zip(module(graph, x), module(graph, x, zeros), strict=True):
        assert_close("GatedGCN edge_state=None vs zeros", got, expected)


@pytest.mark.parametrize("engine", ["dgl", "torch"])
def test_gatedgcn_gradcheck_float64(engine):
    graph = random_graph([4, 3], p=0.5, seed=5)
    module = GatedGCN(3, engine=engine).double()  # train mode: BatchNorm on batch statistics
    x = torch.randn(graph.num_nodes(), 3, dtype=torch.float64, requires_grad=True)
    e = torch.randn(graph.num_edges(), 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: module(graph, a, b), (x, e))


def test_gatedgcn_names_bad_edge_state():
    graph = random_graph([4], p=0.5, seed=6)
    with pytest.raises(ValueError, match=rf"edge_state must have shape \({graph.num_edges()}, 6\)"):
        GatedGCN(DIM)(graph, torch.randn(4, DIM), torch.randn(graph.num_edges(), 2))


def test_one_edge_in_training_names_gatedgcns_own_batch_norm():
    """Issue 22, item 13: with norm='layer' a 1-edge graph ended in torch's 'Expected more
    than 1 value per channel', about a batch norm the user had not chosen."""
    from graphformer.nn import BlockConfig, GraphTransformer

    import dgl

    model = GraphTransformer(3, BlockConfig(dim=8, mixer="gatedgcn", norm="layer"), 1, in_dim=4)
    graph = dgl.graph(([0], [1]), num_nodes=2)
    with pytest.raises(ValueError, match=r"GatedGCN batch-normalises .*whatever the block's norm"):
        model.train()(graph, torch.randn(2, 4))
    model.eval()(graph, torch.randn(2, 4))  # running statistics: fine
