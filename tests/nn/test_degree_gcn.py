"""The degree-scaled GCN: the worked example of a mixer that needs a node field the data
computes. A dense reference, equivariance, gradcheck, and the field's whole path: registered
by the layer's own file, asked for by the model, computed and batched by the data module.
(DGL-vs-torch engine equality and input validation: the registry-driven tests.)"""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli import build as cli_build
from graphformer.fields import get_field
from graphformer.nn import BlockConfig, DegreeScaledGCN, GraphTransformer
from graphformer.nn.layers.degree_gcn import LOG_DEGREE, log_in_degree

import dgl
import pytest
import torch
from helpers import (
    assert_close,
    dense_adjacency,
    permute_nodes,
    random_graph,
    tiny_cluster_data,
)
from omegaconf import OmegaConf

IN, OUT = 4, 6


def with_degrees(graph: dgl.DGLGraph) -> dgl.DGLGraph:
    graph.ndata[LOG_DEGREE] = torch.cat([log_in_degree(g) for g in dgl.unbatch(graph)])
    return graph


def layer(**kwargs) -> DegreeScaledGCN:
    torch.manual_seed(0)
    module = DegreeScaledGCN(IN, OUT, **kwargs)
    with torch.no_grad():
        module.gamma.uniform_(-1, 1)
        module.bias.uniform_(-0.5, 0.5)
    return module


def test_degree_scaled_gcn_equals_dense_reference():
    """x' = (1 + γ log(1 + d_in)) ⊙ (D̂_in^-1/2 (A + I) D̂_out^-1/2 X W + b); the scale reads
    the in-degree of the input graph, before the self-loops."""
    graph = with_degrees(random_graph([5, 4], p=0.5, seed=1))
    module = layer(add_self_loops=True)
    x = torch.randn(graph.num_nodes(), IN)
    adjacency = dense_adjacency(graph)
    scale = torch.log1p(adjacency.sum(1))  # in-degree before the self-loops
    looped = adjacency + torch.eye(len(adjacency))
    norm_in, norm_out = looped.sum(1).rsqrt(), looped.sum(0).rsqrt()
    gcn = norm_in[:, None] * looped * norm_out[None, :] @ (x @ module.weight) + module.bias
    expected = (1 + module.gamma * scale[:, None]) * gcn
    assert_close("degree-scaled GCN vs dense reference", module(graph, x), expected)


def test_degree_scaled_gcn_starts_as_a_gcn():
    from graphformer.nn import GCNConv

    graph = with_degrees(random_graph([6], p=0.4, seed=2))
    x = torch.randn(6, IN)
    torch.manual_seed(3)
    scaled = DegreeScaledGCN(IN, OUT, add_self_loops=True)
    torch.manual_seed(3)
    plain = GCNConv(IN, OUT, add_self_loops=True)
    assert_close("γ = 0 gives GCNConv", scaled(graph, x), plain(graph, x), atol=0.0)


def test_degree_scaled_gcn_permutation_equivariance():
    graph = with_degrees(random_graph([7], p=0.4, seed=3))
    module = layer(add_self_loops=True)
    x, perm = torch.randn(7, IN), torch.randperm(7)
    out = module(graph, x)
    assert_close("equivariance", module(permute_nodes(graph, perm), x[perm]), out[perm])


@pytest.mark.parametrize("engine", ["dgl", "torch"])
def test_degree_scaled_gcn_gradcheck_float64(engine):
    graph = with_degrees(random_graph([4, 3], p=0.5, seed=5))
    module = layer(add_self_loops=True, engine=engine).double()
    x = torch.randn(graph.num_nodes(), IN, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: module(graph, a), (x,))


def test_without_the_field_the_error_names_it_and_the_fix():
    graph = dgl.graph(([0, 1], [1, 0]))
    with pytest.raises(ValueError, match=r"ndata\['log_degree'\].*fields=\['log_degree'\]"):
        DegreeScaledGCN(IN, OUT)(graph, torch.randn(2, IN))


def test_the_data_module_computes_the_field_the_model_needs(tmp_path):
    """The whole handshake with nothing but the layer's file: the field is registered, the
    model lists it, the CLI's one data call asks for it, the batches carry it."""
    assert get_field(LOG_DEGREE).compute is log_in_degree
    model = GraphTransformer(6, BlockConfig(dim=8, mixer="gcn_degree"), 1, num_categories=7)
    assert model.needs == (LOG_DEGREE,)
    cfg = OmegaConf.create({"data": tiny_cluster_data(str(tmp_path))})
    data = cli_build.datamodule(cfg, model)
    data.setup("fit")
    graph, _ = next(iter(data.train_dataloader()))
    expected = torch.cat([log_in_degree(g) for g in dgl.unbatch(graph)])
    assert_close("batched log_degree", graph.ndata[LOG_DEGREE], expected, atol=0.0)
    out = model(graph, graph.ndata["feat"])
    assert out.shape == (graph.num_nodes(), 6)
