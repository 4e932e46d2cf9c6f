"""Bad input raises ValueError naming the argument, what was expected and what it got."""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import pe_transform
from graphformer.graphs import complete_graph, is_complete
from graphformer.nn import (
    BlockConfig,
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
)
from graphformer.nn.block import block_mixers
from graphformer.nn.core.message_passing import segment_readout
from graphformer.nn.layers.gat import GATConv

import dgl
import pytest
import torch
from helpers import random_graph, with_distances, with_needs

# With shortest-path distances, which the graphormer mixer reads (the others ignore them).
GRAPH = with_distances(random_graph([4, 3], p=0.5, seed=0))
N, E = GRAPH.num_nodes(), GRAPH.num_edges()
#: The blocks of the small models below: width 8, two heads.
SMALL = BlockConfig(dim=8, num_heads=2)


def block(dim: int = 8, mixer: str = "attention", num_heads: int = 4, **kwargs):
    """A GraphTransformerBlock; ``kwargs`` are BlockConfig fields, or ``edge_dim``."""
    edge_dim = kwargs.pop("edge_dim", None)
    config = BlockConfig(dim=dim, mixer=mixer, num_heads=num_heads, **kwargs)
    return GraphTransformerBlock(config, edge_dim=edge_dim)


def attention(**kwargs) -> MultiHeadAttention:
    return MultiHeadAttention(8, 2, **kwargs)


LAYERS = {
    "attention": lambda: attention(),
    "gcn": lambda: GCNConv(8, 4),
    "sage": lambda: SAGEConv(8, 4),
    # a block with every registered mixer (graphformer.nn.mixers.REGISTRY)
    **{f"block-{name}": lambda name=name: block(8, name, 2) for name in block_mixers()},
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
    quiet(with_needs(GRAPH, quiet), x)  # no error (given the fields its mixers read)


def test_non_finite_model_input():
    net = GraphTransformer(2, SMALL, 1, in_dim=3)
    x = torch.randn(N, 3)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"contains NaN or inf.*check_finite=False"):
        net(GRAPH, x)
    net = GraphTransformer(2, SMALL, 1, in_dim=3, check_finite=False)
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
    with pytest.raises(ValueError, match=r"edge_state was given.*without edge_dim"):
        block(8, "attention", 2)(GRAPH, torch.randn(N, 8), torch.randn(E, 3))
    net = GraphTransformer(2, SMALL, 1, in_dim=3)
    with pytest.raises(ValueError, match=r"edge_feat was given.*without edge_in_dim"):
        net(GRAPH, torch.randn(N, 3), torch.randn(E, 3))


def test_edge_dim_with_a_mixer_that_ignores_edges():
    with pytest.raises(ValueError, match=r"edge features \(edge_dim=3\).*got mixer='gcn'"):
        block(8, "gcn", 2, edge_dim=3)


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: MultiHeadAttention(8, 3), r"num_heads=3 must divide embed_dim=8; heads that do"),
        (lambda: block(10, "full", 4), r"num_heads=4 must divide embed_dim=10"),
    ],
)
def test_heads_must_divide_width(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: block(8, "mlp"), r"unknown mixer 'mlp'; choose one of \["),
        (
            lambda: block(8, "gps", local_mixer="full"),
            r"unknown local_mixer 'full'",
        ),
        (lambda: block(8, norm="rms"), r"unknown norm 'rms'; choose one of"),
        (lambda: block(8, activation="tanh"), r"unknown activation 'tanh'"),
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
        (lambda: block(0), r"dim must be a positive int; got 0"),
        (lambda: block(8, ffn_ratio=0), r"ffn_ratio must be positive; got 0"),
        (lambda: GraphTransformer(0, in_dim=3), r"out_dim must be a positive int; got 0"),
        (lambda: GraphTransformer(2, in_dim=3, num_layers=0), r"num_layers must be a positive"),
        (lambda: GraphTransformer(2, in_dim=0), r"in_dim must be a positive int; got 0"),
        (lambda: CategoricalEncoder(0, 4), r"num_categories must be a positive int; got 0"),
        (lambda: LapPEEncoder(0, 4), r"k must be a positive int; got 0"),
        (lambda: RWSEEncoder(True, 4), r"k must be a positive int; got True"),
        (lambda: pe_transform(lap_k=-1), r"lap_k must be a positive int; got -1"),
        (
            lambda: MultiHeadAttention(8, 2, attn_dropout=1.0),
            r"attn_dropout must be in \[0, 1\); got 1.0",
        ),
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
    net = GraphTransformer(2, SMALL, 1, in_dim=3)
    with pytest.raises(ValueError, match=rf"x must have one row per node: {N} rows; got {N - 1}"):
        net(GRAPH, torch.randn(N - 1, 3))
    with pytest.raises(ValueError, match=rf"features must have shape \({N}, 3\).*got \({N}, 4\)"):
        net(GRAPH, torch.randn(N, 4))


@pytest.mark.parametrize(("kwargs", "name"), [({"lap_pe_k": 2}, "lap_pe"), ({"rwse_k": 3}, "rwse")])
def test_model_missing_positional_encoding(kwargs, name):
    net = GraphTransformer(2, SMALL, 1, in_dim=3, **kwargs)
    with pytest.raises(
        ValueError, match=rf"uses {name} but graph.ndata has no '{name}'.*pe_transform"
    ):
        net(GRAPH, torch.randn(N, 3))


def test_model_wrong_positional_encoding_width():
    net = GraphTransformer(2, SMALL, 1, in_dim=3, lap_pe_k=2)
    graph = random_graph([4, 3], p=0.5, seed=0)
    graph.ndata["lap_pe"] = torch.randn(N, 4)
    with pytest.raises(ValueError, match=rf"lap_pe must have shape \({N}, 2\).*got \({N}, 4\)"):
        net(graph, torch.randn(N, 3))


def test_model_built_for_edges_needs_edge_feat():
    net = GraphTransformer(2, SMALL, 1, in_dim=3, edge_in_dim=2)
    with pytest.raises(ValueError, match=r"built for edge features; pass edge_feat"):
        net(GRAPH, torch.randn(N, 3))


@pytest.mark.parametrize("shape", [(E + 1, 2), (E, 5)], ids=["rows", "width"])
def test_model_edge_feat_wrong_shape_names_edge_feat(shape):
    net = GraphTransformer(2, SMALL, 1, in_dim=3, edge_in_dim=2)
    with pytest.raises(ValueError, match=rf"edge_feat must have shape \({E}, 2\).*got"):
        net(GRAPH, torch.randn(N, 3), torch.randn(shape))


# --- edge tensors, magnitudes, dtypes, engines (issue 11) -----------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("edge_feat", lambda v: attention(edge_dim=3)(GRAPH, torch.randn(N, 8), edge_feat=v)),
        ("edge_bias", lambda v: attention()(GRAPH, torch.randn(N, 8), edge_bias=v[:, :2])),
        ("edge_weight", lambda v: GCNConv(8, 4)(GRAPH, torch.randn(N, 8), edge_weight=v[:, 0])),
        (
            "edge_feat",
            lambda v: GraphTransformer(2, SMALL, 1, in_dim=3, edge_in_dim=3)(
                GRAPH, torch.randn(N, 3), v
            ),
        ),
    ],
    ids=["attention edge_feat", "edge_bias", "edge_weight", "model edge_feat"],
)
def test_non_finite_edge_tensors_are_named(name, call, bad):
    value = torch.rand(E, 3)
    value[1] = bad
    with pytest.raises(
        ValueError, match=rf"{name} contains NaN or inf in 1 edge\(s\), first edges \[1\]"
    ):
        call(value)


def test_negative_edge_weight_is_refused():
    weight = torch.rand(E)
    weight[2] = -1.0
    with pytest.raises(
        ValueError,
        match=r"edge_weight must be non-negative; got values down to -1 in 1 edge\(s\), first "
        r"edges \[2\]",
    ):
        GCNConv(8, 4)(GRAPH, torch.randn(N, 8), edge_weight=weight)


def test_finite_inputs_too_large_for_float32_are_named_not_turned_into_nan():
    net = GraphTransformer(2, SMALL, 1, in_dim=3, edge_in_dim=2)
    x = torch.randn(N, 3)
    x[4, 1] = 3e20
    with pytest.raises(
        ValueError,
        match=r"features has finite values up to 3.0e\+20 .* first rows \[4\]; above 1.2e\+18, "
        r"float32 LayerNorm",
    ):
        net(GRAPH, x, torch.randn(E, 2))
    with pytest.raises(ValueError, match=r"edge_feat has finite values up to 1.0e\+21"):
        net(GRAPH, torch.randn(N, 3), torch.full((E, 2), 1e21))
    double = GraphTransformer(2, SMALL, 1, in_dim=3).double()
    assert torch.isfinite(double(GRAPH, x.double())).all()  # float64 has the range for it


def test_nonfinite_loss_message_does_not_blame_finite_inputs():
    from graphformer.tasks.base import diagnose_inputs

    graph = random_graph([4, 3], p=0.5, seed=0)
    graph.ndata["feat"] = torch.randn(N, 3) * 1e6
    assert diagnose_inputs(graph, torch.zeros(2)).startswith(
        "The batch's inputs are finite (largest magnitude"
    )
    graph.ndata["feat"][0, 0] = float("nan")
    assert diagnose_inputs(graph, torch.zeros(2)) == "ndata['feat'] hold NaN or inf: clean them"


def test_complete_graph_edited_in_place_leaves_the_dense_engine():
    """DGL's add_edges/remove_edges edit the graph in place: the dense engine would then
    attend over edges that are no longer there."""
    layer = attention().eval()
    x = torch.randn(5, 8)
    for edit in (
        lambda g: g.remove_edges(torch.tensor([1, 7])),
        lambda g: g.add_edges(torch.tensor([0]), torch.tensor([1])),
        lambda g: g.set_batch_num_nodes(torch.tensor([2, 3])),
    ):
        graph = complete_graph([5])
        assert is_complete(graph)
        edit(graph)
        if graph.batch_size == 2:
            graph.set_batch_num_edges(torch.tensor([4, 21]))
        assert not is_complete(graph)
        reference = MultiHeadAttention(8, 2, engine="dgl").eval()
        reference.load_state_dict(layer.state_dict())
        torch.testing.assert_close(layer(graph, x), reference(graph, x))


@pytest.mark.parametrize("op", ["mean", "sum", "max"])
def test_readout_of_graphs_without_nodes_is_zero_on_both_engines(op):
    empty = dgl.batch([dgl.graph(([], []), num_nodes=0)] * 2)
    mixed = dgl.batch([dgl.graph(([], []), num_nodes=0), dgl.graph(([0], [1]), num_nodes=2)])
    for graph, x in ((empty, torch.zeros(0, 4)), (mixed, torch.randn(2, 4))):
        dgl_out = Readout(op)(graph, x)
        torch_out = segment_readout(x, graph.batch_num_nodes(), op)
        assert torch.isfinite(dgl_out).all()
        torch.testing.assert_close(dgl_out, torch_out)
        assert torch.equal(dgl_out[0], torch.zeros(4))


@pytest.mark.parametrize(
    "call",
    [
        lambda: attention(engine="dgl").half()(GRAPH, torch.randn(N, 8).half()),
        lambda: GCNConv(8, 4).half()(GRAPH, torch.randn(N, 8).half()),
        lambda: GATConv(8, 4, 2, engine="dgl").half()(GRAPH, torch.randn(N, 8).half()),
    ],
    ids=["attention", "gcn", "gat"],
)
def test_float16_message_passing_on_the_cpu_is_refused_before_dgl(call):
    with pytest.raises(
        ValueError, match=r"x is float16 but the graph is on the CPU.*engine='torch'"
    ):
        call()
    assert attention(engine="torch").half()(GRAPH, torch.randn(N, 8).half()).dtype == torch.float16
    # below GAT_TORCH_BELOW edges `auto` takes the torch engine, which runs float16
    assert GATConv(8, 4, 2).half()(GRAPH, torch.randn(N, 8).half()).dtype == torch.float16


def test_float64_inputs_to_a_float32_model_are_named():
    net = GraphTransformer(2, SMALL, 1, in_dim=3, edge_in_dim=2)
    with pytest.raises(
        ValueError,
        match=r"features has dtype torch.float64 but the layer's parameters are torch.float32; "
        r"convert the input with features.to\(torch.float32\)",
    ):
        net(GRAPH, torch.randn(N, 3, dtype=torch.float64), torch.randn(E, 2))
    with pytest.raises(ValueError, match=r"edge_feat has dtype torch.float64 but the layer's"):
        net(GRAPH, torch.randn(N, 3), torch.randn(E, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x has dtype torch.float64"):
        attention()(GRAPH, torch.randn(N, 8, dtype=torch.float64))


def test_meta_tensors_skip_the_value_checks():
    layer = attention().to("meta")
    out = layer(complete_graph([4, 3]), torch.empty(N, 8, device="meta"))
    assert out.shape == (N, 8) and out.device.type == "meta"


def test_batch_norm_on_a_single_node_in_training_is_named():
    net = GraphTransformer(2, SMALL.replace(norm="batch"), 1, in_dim=3, level="graph")
    one = dgl.graph(([], []), num_nodes=1)
    with pytest.raises(
        ValueError,
        match=r"norm='batch' needs more than one node per batch in training; this batch has 1 node",
    ):
        net(one, torch.randn(1, 3))
    assert net.eval()(one, torch.randn(1, 3)).shape == (1, 2)


def test_model_built_for_edges_names_the_setting_and_the_missing_data():
    """Issue 22, item 14: the message named neither edge_in_dim nor the data's missing edge
    features (a CLI user never passes edge_feat)."""
    net = GraphTransformer(2, SMALL, 1, in_dim=3, edge_in_dim=4)
    with pytest.raises(
        ValueError, match=r"edge_in_dim=4\).*no edata\['feat'\].*model.edge_in_dim=null"
    ):
        net(GRAPH, torch.randn(N, 3))


def test_float16_on_the_cpu_names_the_cli_settings():
    """Issue 22, item 16: the message named no setting a CLI user can change."""
    with pytest.raises(ValueError, match=r"16-bit trainer.precision .*model.block.engine=torch"):
        GCNConv(8, 4).half()(GRAPH, torch.randn(N, 8).half())
