"""Bad input raises ValueError naming the argument, what was expected and what it got."""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import (
    MIXERS,
    CategoricalEncoder,
    GCNConv,
    GraphTransformer,
    GraphTransformerBlock,
    LapPEEncoder,
    LinearEncoder,
    MultiHeadAttention,
    Readout,
    RWSEEncoder,
    SAGEConv,
    pe_transform,
)

import pytest
import torch
from helpers import random_graph

GRAPH = random_graph([4, 3], p=0.5, seed=0)
N, E = GRAPH.num_nodes(), GRAPH.num_edges()


def attention(**kwargs) -> MultiHeadAttention:
    return MultiHeadAttention(8, 2, **kwargs)


LAYERS = {
    "attention": lambda: attention(),
    "gcn": lambda: GCNConv(8, 4),
    "sage": lambda: SAGEConv(8, 4),
    # a block with every registered mixer (graphformer.nn.mixers.REGISTRY)
    **{f"block-{name}": lambda name=name: GraphTransformerBlock(8, name, 2) for name in MIXERS},
}


@pytest.fixture(params=list(LAYERS))
def layer(request):
    return LAYERS[request.param]()


def test_wrong_feature_width(layer):
    with pytest.raises(ValueError, match=rf"x must have shape \({N}, 8\).*got \({N}, 5\)"):
        layer(GRAPH, torch.randn(N, 5))


def test_feature_rows_differ_from_node_count(layer):
    with pytest.raises(
        ValueError, match=rf"x must have shape \({N}, 8\) = \(number of nodes.*got \({N + 1}, 8\)"
    ):
        layer(GRAPH, torch.randn(N + 1, 8))


def test_one_dimensional_features(layer):
    with pytest.raises(ValueError, match=rf"x must have shape \({N}, 8\).*got \({N * 8},\)"):
        layer(GRAPH, torch.randn(N * 8))


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_non_floating_features(layer, dtype):
    with pytest.raises(ValueError, match=rf"x must be floating point; got dtype {dtype}"):
        layer(GRAPH, torch.ones(N, 8, dtype=dtype))


def test_features_not_a_tensor():
    with pytest.raises(ValueError, match=r"x must be a torch.Tensor; got list"):
        attention()(GRAPH, [[0.0] * 8] * N)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", list(LAYERS))
def test_non_finite_features(name, bad):
    x = torch.randn(N, 8)
    x[2, 3] = bad
    with pytest.raises(ValueError, match=r"x contains NaN or inf in 1 row\(s\), first rows \[2\]"):
        LAYERS[name]()(GRAPH, x)
    quiet = LAYERS[name]()
    quiet.check_finite = False
    quiet(GRAPH, x)  # no error


def test_non_finite_model_input():
    net = GraphTransformer(2, hidden_dim=8, num_layers=1, num_heads=2, in_dim=3)
    x = torch.randn(N, 3)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"contains NaN or inf.*check_finite=False"):
        net(GRAPH, x)
    net = GraphTransformer(2, hidden_dim=8, num_layers=1, num_heads=2, in_dim=3, check_finite=False)
    net(GRAPH, x)


@pytest.mark.parametrize(
    ("shape", "got"),
    [((E, 4), rf"\({E}, 4\)"), ((E + 1, 3), rf"\({E + 1}, 3\)"), ((E,), rf"\({E},\)")],
)
def test_edge_feat_wrong_shape(shape, got):
    with pytest.raises(ValueError, match=rf"edge_feat must have shape \({E}, 3\).*got {got}"):
        attention(edge_dim=3)(GRAPH, torch.randn(N, 8), edge_feat=torch.randn(shape))


def test_edge_feat_not_floating():
    with pytest.raises(ValueError, match=r"edge_feat must be a floating-point tensor; got torch"):
        attention(edge_dim=3)(
            GRAPH, torch.randn(N, 8), edge_feat=torch.ones(E, 3, dtype=torch.long)
        )


@pytest.mark.parametrize("shape", [(E, 3), (E - 1, 2), (E,)])
def test_edge_bias_wrong_shape(shape):
    with pytest.raises(ValueError, match=rf"edge_bias must have shape \({E}, 2\).*got"):
        attention()(GRAPH, torch.randn(N, 8), edge_bias=torch.randn(shape))


def test_edge_weight_wrong_shape():
    with pytest.raises(ValueError, match=rf"edge_weight must have shape \({E},\).*got \({E}, 1\)"):
        GCNConv(8, 4)(GRAPH, torch.randn(N, 8), edge_weight=torch.rand(E, 1))


def test_edge_feat_without_edge_dim():
    with pytest.raises(ValueError, match=r"edge_feat was given.*without edge_dim.*pass edge_dim="):
        attention()(GRAPH, torch.randn(N, 8), edge_feat=torch.randn(E, 3))
    with pytest.raises(ValueError, match=r"edge_feat was given.*without edge_dim"):
        GraphTransformerBlock(8, "attention", 2)(GRAPH, torch.randn(N, 8), torch.randn(E, 3))
    net = GraphTransformer(2, hidden_dim=8, num_layers=1, num_heads=2, in_dim=3)
    with pytest.raises(ValueError, match=r"edge_feat was given.*without edge_in_dim"):
        net(GRAPH, torch.randn(N, 3), torch.randn(E, 3))


def test_edge_dim_with_a_mixer_that_ignores_edges():
    with pytest.raises(ValueError, match=r"edge features \(edge_dim=3\).*got mixer='gcn'"):
        GraphTransformerBlock(8, "gcn", 2, edge_dim=3)


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: MultiHeadAttention(8, 3), r"num_heads=3 must divide embed_dim=8; heads that do"),
        (lambda: GraphTransformerBlock(10, "full", 4), r"num_heads=4 must divide embed_dim=10"),
    ],
)
def test_heads_must_divide_width(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: GraphTransformerBlock(8, "mlp"), r"unknown mixer 'mlp'; choose one of \["),
        (
            lambda: GraphTransformerBlock(8, "gps", local_mixer="full"),
            r"unknown local_mixer 'full'",
        ),
        (lambda: GraphTransformerBlock(8, norm="rms"), r"unknown norm 'rms'; choose one of"),
        (lambda: GraphTransformerBlock(8, activation="tanh"), r"unknown activation 'tanh'"),
        (lambda: Readout("median"), r"unknown readout 'median'; choose one of"),
        (
            lambda: GraphTransformer(2, in_dim=3, level="graph", readout="min"),
            r"unknown readout 'min'",
        ),
        (lambda: GraphTransformer(2, in_dim=3, level="edge"), r"unknown level 'edge'"),
    ],
)
def test_unknown_choices(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: MultiHeadAttention(0, 1), r"embed_dim must be a positive int; got 0"),
        (lambda: MultiHeadAttention(8, -2), r"num_heads must be a positive int; got -2"),
        (lambda: MultiHeadAttention(8, 2, src_dim=0), r"src_dim must be a positive int; got 0"),
        (lambda: MultiHeadAttention(8, 2, edge_dim=0), r"edge_dim must be a positive int; got 0"),
        (lambda: MultiHeadAttention(8.0, 2), r"embed_dim must be a positive int; got 8.0"),
        (lambda: GCNConv(0, 4), r"in_dim must be a positive int; got 0"),
        (lambda: SAGEConv(4, -1), r"out_dim must be a positive int; got -1"),
        (lambda: GraphTransformerBlock(0), r"dim must be a positive int; got 0"),
        (lambda: GraphTransformerBlock(8, ffn_ratio=0), r"ffn_ratio must be positive; got 0"),
        (lambda: GraphTransformer(0, in_dim=3), r"out_dim must be a positive int; got 0"),
        (lambda: GraphTransformer(2, in_dim=3, num_layers=0), r"num_layers must be a positive"),
        (lambda: GraphTransformer(2, in_dim=0), r"in_dim must be a positive int; got 0"),
        (lambda: CategoricalEncoder(0, 4), r"num_categories must be a positive int; got 0"),
        (lambda: LapPEEncoder(0, 4), r"k must be a positive int; got 0"),
        (lambda: RWSEEncoder(True, 4), r"k must be a positive int; got True"),
        (lambda: pe_transform(lap_k=-1), r"lap_k must be a positive int; got -1"),
        (lambda: MultiHeadAttention(8, 2, dropout=1.0), r"dropout must be in \[0, 1\); got 1.0"),
    ],
)
def test_non_positive_sizes(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


@pytest.mark.parametrize(
    ("codes", "pattern"),
    [
        (torch.tensor([0, 5, 2]), r"category codes must lie in \[0, 5\); got values in \[0, 5\]"),
        (torch.tensor([[1, -1]]), r"category codes must lie in \[0, 5\); got values in \[-1, 1\]"),
        (torch.tensor([0.0, 1.0]), r"needs integer category codes; got dtype torch.float32"),
        (torch.tensor([True]), r"needs integer category codes; got dtype torch.bool"),
    ],
)
def test_categorical_encoder_rejects_bad_codes(codes, pattern):
    with pytest.raises(ValueError, match=pattern):
        CategoricalEncoder(5, 4)(codes)


def test_linear_encoder_wrong_width():
    with pytest.raises(ValueError, match=r"features must have shape \(6, 3\).*got \(6, 2\)"):
        LinearEncoder(3, 4)(torch.randn(6, 2))


def test_model_needs_node_inputs():
    with pytest.raises(ValueError, match=r"needs in_dim .* or num_categories .*got neither"):
        GraphTransformer(2)
    with pytest.raises(ValueError, match=r"either in_dim .* or num_categories.*not both"):
        GraphTransformer(2, in_dim=3, num_categories=4)


def test_model_wrong_feature_rows_and_width():
    net = GraphTransformer(2, hidden_dim=8, num_layers=1, num_heads=2, in_dim=3)
    with pytest.raises(ValueError, match=rf"x must have one row per node: {N} rows; got {N - 1}"):
        net(GRAPH, torch.randn(N - 1, 3))
    with pytest.raises(ValueError, match=rf"features must have shape \({N}, 3\).*got \({N}, 4\)"):
        net(GRAPH, torch.randn(N, 4))


@pytest.mark.parametrize(("kwargs", "name"), [({"lap_pe_k": 2}, "lap_pe"), ({"rwse_k": 3}, "rwse")])
def test_model_missing_positional_encoding(kwargs, name):
    net = GraphTransformer(2, hidden_dim=8, num_layers=1, num_heads=2, in_dim=3, **kwargs)
    with pytest.raises(
        ValueError, match=rf"uses {name} but graph.ndata has no '{name}'.*pe_transform"
    ):
        net(GRAPH, torch.randn(N, 3))


def test_model_wrong_positional_encoding_width():
    net = GraphTransformer(2, hidden_dim=8, num_layers=1, num_heads=2, in_dim=3, lap_pe_k=2)
    graph = random_graph([4, 3], p=0.5, seed=0)
    graph.ndata["lap_pe"] = torch.randn(N, 4)
    with pytest.raises(ValueError, match=rf"lap_pe must have shape \({N}, 2\).*got \({N}, 4\)"):
        net(graph, torch.randn(N, 3))


def test_model_built_for_edges_needs_edge_feat():
    net = GraphTransformer(2, hidden_dim=8, num_layers=1, num_heads=2, in_dim=3, edge_in_dim=2)
    with pytest.raises(ValueError, match=r"built for edge features; pass edge_feat"):
        net(GRAPH, torch.randn(N, 3))


@pytest.mark.parametrize("shape", [(E + 1, 2), (E, 5)], ids=["rows", "width"])
def test_model_edge_feat_wrong_shape_names_edge_feat(shape):
    net = GraphTransformer(2, hidden_dim=8, num_layers=1, num_heads=2, in_dim=3, edge_in_dim=2)
    with pytest.raises(ValueError, match=rf"edge_feat must have shape \({E}, 2\).*got"):
        net(GRAPH, torch.randn(N, 3), torch.randn(shape))
