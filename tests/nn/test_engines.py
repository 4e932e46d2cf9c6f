"""Every engine equals DGL message passing, outputs and gradients.

- dense: padded SDPA on complete graphs (and, masked, on others: test_dense_engine.py);
- torch: index/scatter operations on edge indices (the fallback where DGL cannot reach the
  features' device), on any graph, forced here on the CPU with ``engine='torch'``.
"""

from __future__ import annotations

import copy

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import add_self_loops, complete_bipartite, complete_graph, is_complete
from graphformer.nn import (
    GNN,
    BlockConfig,
    GCNConv,
    GraphTransformer,
    GraphTransformerBlock,
    MultiHeadAttention,
    SAGEConv,
)
from graphformer.nn.block import block_mixers
from graphformer.nn.core.message_passing import segment_readout, segment_softmax
from graphformer.nn.mixers import REGISTRY, build, names
from graphformer.nn.models.gnn import GNN_BLOCK

import dgl
import pytest
import torch
from dgl.nn.functional import edge_softmax
from helpers import assert_close, random_graph, with_needs

SIZES = [3, 7, 1, 5]
MIXERS, LOCAL_MIXERS = block_mixers(), names("local")


def twins(module_class, *args, other="dense", **kwargs):
    """The same module twice, with equal weights, on the DGL and the ``other`` engine
    (``engine=``, or ``block.engine`` for a module built from a BlockConfig ``block=``)."""

    def make(engine):
        if "block" in kwargs:
            return module_class(
                *args, **{**kwargs, "block": kwargs["block"].replace(engine=engine)}
            )
        return module_class(*args, engine=engine, **kwargs)

    dgl_module = make("dgl")
    other_module = make(other)
    other_module.load_state_dict(copy.deepcopy(dgl_module.state_dict()))
    return dgl_module, other_module


def outputs_and_grads(module, call, x):
    x = x.detach().clone().requires_grad_(True)
    out = call(module, x)
    loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
    loss.backward()
    return out, x.grad, {name: p.grad for name, p in module.named_parameters()}


def assert_engines_equal(name, dgl_module, other_module, call, x, other="dense"):
    out_a, dx_a, params_a = outputs_and_grads(dgl_module, call, x)
    out_b, dx_b, params_b = outputs_and_grads(other_module, call, x)
    label = f"{other} vs DGL engine: {name}"
    assert_close(f"{label} output", out_b, out_a)
    assert_close(f"{label} input grad", dx_b, dx_a)
    for key, grad in params_a.items():
        if grad is not None:
            assert_close(f"{label} param grads", params_b[key], grad)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_attention_dense_equals_dgl_on_mixed_sizes(mode):
    dgl_attention, dense_attention = twins(MultiHeadAttention, 16, 4, attn_dropout=0.0)
    for module in (dgl_attention, dense_attention):
        module.train(mode == "train")
    graph = complete_graph(SIZES)
    x = torch.randn(sum(SIZES), 16)
    assert_engines_equal("attention", dgl_attention, dense_attention, lambda m, h: m(graph, h), x)


def test_auto_skips_the_graph_only_on_complete_graphs_with_self_loops(monkeypatch):
    calls = []
    import graphformer.nn.layers.attention as attention_module

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
    attention(no_loops, x)  # dense too, but masked by its adjacency (tests/nn/test_dense_engine.py)
    attention(complete_graph(SIZES), x, return_attention=True)
    assert calls == [1]


def test_dense_engine_masks_the_diagonal_of_a_complete_graph_without_self_loops():
    dgl_attention, dense_attention = twins(MultiHeadAttention, 8, 2)
    graph = complete_graph(SIZES, self_loops=False)
    x = torch.randn(sum(SIZES), 8)
    assert_engines_equal(
        "no self-loops", dgl_attention, dense_attention, lambda m, h: m(graph, h), x
    )
    with pytest.raises(ValueError, match=r"return_attention"):
        dense_attention(complete_graph(SIZES), x, return_attention=True)


@pytest.mark.parametrize("mixer", ["full", "gps"])
def test_block_engines_agree(mixer):
    dgl_block, dense_block = twins(
        GraphTransformerBlock, block=BlockConfig(dim=16, mixer=mixer, num_heads=4)
    )
    graph = dgl.batch([dgl.rand_graph(n, min(2 * n, n * n)) for n in SIZES])
    x = torch.randn(graph.num_nodes(), 16)
    assert_engines_equal(f"{mixer} block", dgl_block, dense_block, lambda m, h: m(graph, h), x)


@pytest.mark.parametrize("mixer", ["full", "gps"])
def test_model_engines_agree(mixer):
    torch.manual_seed(1)
    block = BlockConfig(dim=16, mixer=mixer)
    dgl_model, dense_model = twins(
        GraphTransformer, 3, block=block, num_layers=2, in_dim=5, level="graph"
    )
    graph = dgl.batch([dgl.rand_graph(n, min(2 * n, n * n)) for n in SIZES])
    x = torch.randn(graph.num_nodes(), 5)
    assert_engines_equal(f"{mixer} model", dgl_model, dense_model, lambda m, h: m(graph, h), x)


# --- the torch fallback engine --------------------------------------------------------


def sparse_graph(sizes=SIZES, seed=0):
    """Random batched graph whose first node (in sample 0) has no in-edges."""
    graph = random_graph(sizes, p=0.5, seed=seed)
    src, dst = graph.edges()
    keep = dst != 0
    pruned = dgl.graph((src[keep], dst[keep]), num_nodes=graph.num_nodes())
    pruned.set_batch_num_nodes(graph.batch_num_nodes())
    num_edges = graph.batch_num_edges().clone()
    num_edges[0] -= int((~keep).sum())
    pruned.set_batch_num_edges(num_edges)
    return pruned


def test_segment_softmax_equals_edge_softmax():
    graph = sparse_graph()
    scores = torch.randn(graph.num_edges(), 3, 1)
    expected = edge_softmax(graph, scores)
    assert_close("segment_softmax", segment_softmax(scores, graph.edges()[1], 16), expected)


@pytest.mark.parametrize("op", ["sum", "mean", "max"])
def test_segment_readout_equals_dgl_readout_with_an_empty_sample(op):
    graph = dgl.batch([dgl.rand_graph(n, n) for n in (3, 0, 5)])
    x = torch.randn(graph.num_nodes(), 4)
    with graph.local_scope():
        graph.ndata["h"] = x
        expected = dgl.readout_nodes(graph, "h", op=op)
    assert_close(f"segment_readout {op}", segment_readout(x, graph.batch_num_nodes(), op), expected)


@pytest.mark.parametrize("edges", ["plain", "shaw+bias"])
def test_attention_torch_equals_dgl(edges):
    graph = sparse_graph()
    edge_dim = 3 if edges != "plain" else None
    dgl_attention, torch_attention = twins(
        MultiHeadAttention, 16, 4, edge_dim=edge_dim, other="torch"
    )
    edge_feat = torch.randn(graph.num_edges(), 3) if edge_dim else None
    bias = torch.randn(graph.num_edges(), 4) if edge_dim else None

    def call(module, h):
        out, weights = module(graph, h, edge_feat=edge_feat, edge_bias=bias, return_attention=True)
        return torch.cat([out.flatten(), weights.flatten()])

    x = torch.randn(graph.num_nodes(), 16)
    assert_engines_equal(f"attention {edges}", dgl_attention, torch_attention, call, x, "torch")
    assert torch_attention(graph, x)[0].abs().max() == torch_attention.out_proj.bias.abs().max()


def test_cross_attention_torch_equals_dgl():
    graph = complete_bipartite([2, 3], [4, 1])
    dgl_attention, torch_attention = twins(MultiHeadAttention, 8, 2, src_dim=6, other="torch")
    x_src = torch.randn(5, 6)

    def call(module, h):
        return module(graph, (x_src, h))

    x = torch.randn(5, 8)
    assert_engines_equal("cross-attention", dgl_attention, torch_attention, call, x, "torch")


@pytest.mark.parametrize("weighted", [False, True])
def test_gcn_torch_equals_dgl(weighted):
    graph = sparse_graph()
    weights = torch.rand(graph.num_edges()) + 0.1 if weighted else None
    dgl_conv, torch_conv = twins(GCNConv, 6, 4, other="torch")
    x = torch.randn(graph.num_nodes(), 6)
    call = lambda m, h: m(graph, h, edge_weight=weights)  # noqa: E731
    assert_engines_equal(f"GCN weighted={weighted}", dgl_conv, torch_conv, call, x, "torch")


def test_sage_torch_equals_dgl():
    graph = sparse_graph()
    dgl_conv, torch_conv = twins(SAGEConv, 6, 4, other="torch")
    x = torch.randn(graph.num_nodes(), 6)
    assert_engines_equal("SAGE", dgl_conv, torch_conv, lambda m, h: m(graph, h), x, "torch")


def reads_edges(name: str) -> bool:
    """Whether the registered mixer ``name`` takes edge state."""
    return build(name, BlockConfig(dim=16, num_heads=4), edge_dim=16).reads_edges


@pytest.mark.parametrize("other", ["torch", "dense"])
@pytest.mark.parametrize("name", REGISTRY)
def test_every_registered_mixer_engine_equals_dgl(name, other):
    """Each mixer of the registry, node output, edge state and gradients, on the DGL engine
    and on ``other`` (``dense``: padded SDPA where the mixer's attention allows it, e.g.
    exphormer's and graphormer's graphs; the other mixers run it as ``auto``)."""
    torch.manual_seed(3)
    config, edge_dim = BlockConfig(dim=16, num_heads=4), 16 if reads_edges(name) else None
    dgl_mixer = build(name, config.replace(engine="dgl"), edge_dim=edge_dim)
    torch_mixer = build(name, config.replace(engine=other), edge_dim=edge_dim)
    torch_mixer.load_state_dict(copy.deepcopy(dgl_mixer.state_dict()))
    graph = add_self_loops(sparse_graph()) if dgl_mixer.self_loops else sparse_graph()
    graph = with_needs(graph, dgl_mixer)  # e.g. graphormer's shortest-path distances
    edge_state = torch.randn(graph.num_edges(), 16) if edge_dim else None

    def call(mixer, h):
        out, edges = mixer.mix(graph, h, edge_state)
        return torch.cat([out.flatten(), edges.flatten() if edges is not None else out[:0, 0]])

    x = torch.randn(graph.num_nodes(), 16)
    assert_engines_equal(f"mixer {name}", dgl_mixer, torch_mixer, call, x, other)


@pytest.mark.parametrize(
    ("mixer", "local_mixer"),
    [(name, "gcn") for name in MIXERS if name != "gps"] + [("gps", name) for name in LOCAL_MIXERS],
)
def test_model_torch_engine_equals_dgl(mixer, local_mixer):
    torch.manual_seed(2)
    block = BlockConfig(dim=16, mixer=mixer, local_mixer=local_mixer)
    local = block.split()[0]
    edges = local is not None and reads_edges(local)
    dgl_model, torch_model = twins(
        GraphTransformer,
        3,
        block=block,
        num_layers=2,
        in_dim=5,
        edge_in_dim=2 if edges else None,
        lap_pe_k=2,
        level="graph",
        other="torch",
    )
    graph = with_needs(sparse_graph(), dgl_model)
    graph.ndata["lap_pe"] = torch.randn(graph.num_nodes(), 2)
    edge_feat = torch.randn(graph.num_edges(), 2) if edges else None
    for model in (dgl_model, torch_model):
        model.eval()  # LapPE sign flips are random in training
    call = lambda m, h: m(graph, h, edge_feat)  # noqa: E731
    x = torch.randn(graph.num_nodes(), 5)
    assert_engines_equal(f"{mixer}/{local_mixer} model", dgl_model, torch_model, call, x, "torch")


@pytest.mark.parametrize("conv", ["gcn", "sage", "attention"])
def test_gnn_torch_engine_equals_dgl(conv):
    block = GNN_BLOCK.replace(mixer=conv, dropout=0.0, attn_dropout=0.0, num_heads=2)
    dgl_model, torch_model = twins(GNN, 3, 5, block=block, other="torch")
    graph = sparse_graph()
    x = torch.randn(graph.num_nodes(), 5)
    assert_engines_equal(
        f"GNN {conv}", dgl_model, torch_model, lambda m, h: m(graph, h), x, "torch"
    )


@pytest.mark.parametrize(
    "model",
    [
        lambda: GraphTransformer(
            3,
            BlockConfig(dim=16, mixer="gps", local_mixer="attention"),
            2,
            in_dim=5,
            edge_in_dim=2,
            lap_pe_k=2,
            level="graph",
            check_finite=False,
        ),
        lambda: GraphTransformer(
            3, BlockConfig(dim=16, mixer="gcn"), 2, in_dim=5, check_finite=False
        ),
        lambda: GNN(
            3,
            5,
            GNN_BLOCK.replace(mixer="attention", num_heads=2),
            level="graph",
            check_finite=False,
        ),
        *(
            lambda name=name: GraphTransformer(
                3,
                BlockConfig(dim=16, mixer="gps", local_mixer=name),
                2,
                in_dim=5,
                check_finite=False,
            )
            for name in LOCAL_MIXERS
        ),
    ],
    ids=["gps-graph", "gcn-node", "gnn-attention", *(f"gps-{n}" for n in LOCAL_MIXERS)],
)
def test_auto_engine_runs_when_the_graph_stays_on_another_device(model):
    """Features on another device than the graph, as on a GPU with PyPI's CPU-only DGL.

    The 'meta' device stands in for the GPU: any DGL call that mixed the CPU graph with
    the features would fail, so passing proves every op took the fallback path. (The
    finite-input check reads a value back, which meta tensors cannot do: it is off here.)
    """
    model = model().train().to("meta")
    graph = with_needs(sparse_graph(), model)  # the fields its mixers read, on the CPU
    graph.ndata["lap_pe"] = torch.randn(graph.num_nodes(), 2)
    x = torch.randn(graph.num_nodes(), 5, device="meta")
    edge_feat = torch.randn(graph.num_edges(), 2, device="meta")
    uses_edges = getattr(model, "edge_encoder", None) is not None
    out = model(graph, x, edge_feat if uses_edges else None)
    assert out.device.type == "meta"
    assert out.shape[0] == (len(SIZES) if model.level == "graph" else graph.num_nodes())
    out.sum().backward()


@pytest.mark.parametrize(
    "build",
    [
        lambda engine: MultiHeadAttention(8, 2, engine=engine),
        lambda engine: GCNConv(4, 4, engine=engine),
        lambda engine: GraphTransformerBlock(BlockConfig(dim=8, engine=engine)),
    ],
    ids=["attention", "gcn", "block"],
)
def test_unknown_engine_lists_the_valid_ones(build):
    with pytest.raises(ValueError, match=r"unknown engine 'fast'.*'auto', 'dgl', 'dense', 'torch'"):
        build("fast")


#: Batches with empty samples: 0-node samples among others (dense enough that ``auto``
#: takes the dense engine for attention), and a batch whose samples all have 0 nodes.
EMPTY_SAMPLE_BATCHES = {"some_empty": [0, 12, 0, 9], "all_empty": [0, 0]}


@pytest.mark.parametrize("batch", EMPTY_SAMPLE_BATCHES)
@pytest.mark.parametrize("other", ["auto", "torch", "dense"])
@pytest.mark.parametrize("name", REGISTRY)
def test_every_registered_mixer_on_batches_with_empty_samples_equals_dgl(name, other, batch):
    """Every engine (``auto`` included) gives the DGL engine's result on a batch with 0-node
    samples, and on an all-empty batch, for every registered mixer."""
    torch.manual_seed(4)
    config, edge_dim = BlockConfig(dim=16, num_heads=4), 16 if reads_edges(name) else None
    dgl_mixer = build(name, config.replace(engine="dgl"), edge_dim=edge_dim)
    other_mixer = build(name, config.replace(engine=other), edge_dim=edge_dim)
    other_mixer.load_state_dict(copy.deepcopy(dgl_mixer.state_dict()))
    graph = random_graph(EMPTY_SAMPLE_BATCHES[batch], p=0.9, seed=6)
    graph = add_self_loops(graph) if dgl_mixer.self_loops else graph
    graph = with_needs(graph, dgl_mixer)
    edge_state = torch.randn(graph.num_edges(), 16) if edge_dim else None
    x = torch.randn(graph.num_nodes(), 16)
    for mixer in (dgl_mixer, other_mixer):
        mixer.eval()
    want, want_edges = dgl_mixer.mix(graph, x, edge_state)
    got, got_edges = other_mixer.mix(graph, x, edge_state)
    assert got.shape == (graph.num_nodes(), 16)
    assert_close(f"{name} on {batch} ({other} vs dgl)", got, want, atol=1e-5)
    if want_edges is not None:
        assert_close(f"{name} edges on {batch}", got_edges, want_edges, atol=1e-5)


def test_auto_attention_model_on_a_batch_with_an_empty_sample_equals_dgl():
    """The issue's case: ``auto`` attention on one 0-node sample plus three 100-node ones
    takes the dense path, and must give the DGL engine's result."""
    torch.manual_seed(5)
    graph = dgl.batch([dgl.graph(([], []), num_nodes=0)] + [dgl.rand_graph(100, 1500)] * 3)
    block = BlockConfig(dim=8, mixer="attention", num_heads=2)
    reference, auto = twins(GraphTransformer, 3, block=block, num_layers=2, in_dim=4, other="auto")
    reference.eval(), auto.eval()
    x = torch.randn(graph.num_nodes(), 4)
    assert_close("auto vs dgl, empty sample", auto(graph, x), reference(graph, x), atol=1e-5)
