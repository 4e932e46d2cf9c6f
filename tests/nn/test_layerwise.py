"""Layer-wise inference (graphformer.nn.layerwise): chunked outputs equal the full-graph
forward for every supported model; the rest is refused, named."""

from __future__ import annotations

import functools

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import GNN, BlockConfig, GraphTransformer, Polynormer, SGFormer
from graphformer.nn.layers.degree_gcn import LOG_DEGREE, log_in_degree
from graphformer.nn.layerwise import (
    LAYERWISE,
    LayerwiseError,
    chunks,
    layerwise_inference,
)
from graphformer.nn.mixers import REGISTRY, Mixer

import dgl
import pytest
import torch
from torch import nn

NODES, IN_DIM, CLASSES, CHUNK = 300, 6, 4, 37


def random_graph(seed: int = 0) -> dgl.DGLGraph:
    """A directed graph with uneven degrees, a few isolated nodes and no self-loops."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(0, NODES - 5, (1500,), generator=generator)
    dst = torch.randint(0, NODES - 5, (1500,), generator=generator) ** 2 % (NODES - 5)
    keep = src != dst
    graph = dgl.graph((src[keep], dst[keep]), num_nodes=NODES)
    graph.ndata[LOG_DEGREE] = log_in_degree(graph)
    return graph


def randomise_norms(model: nn.Module) -> nn.Module:
    """BatchNorm running statistics away from (0, 1), so eval-mode BN is not the identity."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


block = functools.partial(BlockConfig, dim=16, num_heads=2)

MODELS = {
    "gnn-sage": lambda: GNN(CLASSES, IN_DIM, block(mixer="sage"), num_layers=3),
    "gnn-gcn": lambda: GNN(CLASSES, IN_DIM, block(mixer="gcn"), num_layers=3),
    "gnn-gat": lambda: GNN(CLASSES, IN_DIM, block(mixer="gat"), num_layers=2),
    "gnn-attention": lambda: GNN(CLASSES, IN_DIM, block(mixer="attention"), num_layers=2),
    "gnn-gcn_degree-head": lambda: GNN(
        CLASSES, IN_DIM, block(mixer="gcn_degree"), num_layers=2, head_layers=2
    ),
    "gt-gatedgcn": lambda: GraphTransformer(
        CLASSES, block(mixer="gatedgcn"), num_layers=2, in_dim=IN_DIM, edge_in_dim=3
    ),
    "gt-gatedgcn-no-edge-feat": lambda: GraphTransformer(
        CLASSES, block(mixer="gatedgcn", norm="batch"), num_layers=2, in_dim=IN_DIM
    ),
    "gt-attention-postnorm": lambda: GraphTransformer(
        CLASSES, block(mixer="attention", prenorm=False), num_layers=2, in_dim=IN_DIM
    ),
    "gt-gps-sage-sgformer": lambda: GraphTransformer(
        CLASSES,
        block(mixer="gps", local_mixer="sage", global_mixer="sgformer"),
        num_layers=2,
        in_dim=IN_DIM,
    ),
    "gt-gps-gcn-polynormer": lambda: GraphTransformer(
        CLASSES,
        block(mixer="gps", local_mixer="gcn", global_mixer="polynormer", prenorm=False),
        num_layers=2,
        in_dim=IN_DIM,
    ),
    "sgformer": lambda: SGFormer(CLASSES, IN_DIM, BlockConfig(dim=16, num_heads=2), num_layers=2),
    "sgformer-row-cat": lambda: SGFormer(
        CLASSES, IN_DIM, BlockConfig(dim=16), attention_norm="row", aggregate="cat"
    ),
    "polynormer": lambda: Polynormer(CLASSES, IN_DIM, block(), num_layers=3, global_layers=2),
    "polynormer-gcn-qk": lambda: Polynormer(
        CLASSES, IN_DIM, block(), num_layers=2, local_conv="gcn", qk_shared=True
    ),
    "polynormer-local-only": lambda: Polynormer(
        CLASSES, IN_DIM, block(), num_layers=2, global_stage=False
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("chunk_size", [CHUNK, NODES])
def test_layerwise_equals_the_full_graph(name, chunk_size):
    torch.manual_seed(0)
    model = randomise_norms(MODELS[name]())
    graph = random_graph()
    x = torch.randn(NODES, IN_DIM)
    edge_feat = torch.randn(graph.num_edges(), 3) if name == "gt-gatedgcn" else None
    with torch.no_grad():
        full = model(graph, x, edge_feat)
    out = layerwise_inference(model, graph, x, edge_feat, chunk_size=chunk_size)
    assert out.shape == full.shape
    torch.testing.assert_close(out, full, rtol=1e-5, atol=1e-5)


def test_chunks_cover_every_edge_once_with_whole_graph_degrees():
    graph = random_graph()
    seen, starts = [], []
    for chunk in chunks(graph, CHUNK):
        dst = torch.arange(chunk.start, chunk.stop)
        assert torch.equal(chunk.nodes[: chunk.num_dst], dst)  # destinations first
        src, local_dst = chunk.graph.edges()
        assert (local_dst < chunk.num_dst).all()  # only the destinations' in-edges
        parent_src, parent_dst = graph.find_edges(chunk.edges)
        assert torch.equal(chunk.nodes[src], parent_src)
        assert torch.equal(chunk.nodes[local_dst], parent_dst)
        assert torch.equal(chunk.graph.in_degrees()[: chunk.num_dst], graph.in_degrees(dst))
        degrees = chunk.graph.ndata["_layerwise_out_degree"]
        assert torch.equal(degrees, graph.out_degrees(chunk.nodes))
        seen.append(chunk.edges)
        starts.append(chunk.start)
    assert starts == list(range(0, NODES, CHUNK))
    assert torch.equal(torch.cat(seen).sort().values, torch.arange(graph.num_edges()))


def test_gcn_without_the_whole_graph_degrees_would_differ():
    """The control: a chunk graph's own out-degrees are not the whole graph's."""
    graph = random_graph()
    chunk = next(iter(chunks(graph, CHUNK)))
    own = chunk.graph.out_degrees()
    assert not torch.equal(own, chunk.graph.ndata["_layerwise_out_degree"])


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: GraphTransformer(CLASSES, block(mixer="full"), 2, in_dim=IN_DIM), "FullAttention"),
        (
            lambda: GraphTransformer(
                CLASSES,
                block(mixer="gps", local_mixer="gatedgcn", global_mixer="performer"),
                2,
                in_dim=IN_DIM,
            ),
            "PerformerAttention",
        ),
        (
            lambda: GraphTransformer(CLASSES, block(mixer="nagphormer"), 2, in_dim=IN_DIM),
            "NAGphormerMixer",
        ),
    ],
    ids=["full", "performer", "nagphormer"],
)
def test_mixers_that_cannot_run_layerwise_are_refused(build, named):
    model = build().eval()
    graph = random_graph()
    with pytest.raises(LayerwiseError, match=f"{named}.*evaluation='full'.*evaluation='sampled'"):
        layerwise_inference(model, graph, torch.randn(NODES, IN_DIM), chunk_size=CHUNK)


def test_refusals_of_training_mode_batches_and_models_without_layerwise():
    graph = random_graph()
    x = torch.randn(NODES, IN_DIM)
    with pytest.raises(RuntimeError, match=r"model\.eval"):
        layerwise_inference(GNN(CLASSES, IN_DIM), graph, x)
    batch = dgl.batch([graph, graph])
    model = SGFormer(CLASSES, IN_DIM, BlockConfig(dim=8)).eval()
    with pytest.raises(LayerwiseError, match="batch of 2 samples"):
        layerwise_inference(model, batch, torch.randn(2 * NODES, IN_DIM), chunk_size=CHUNK)
    with pytest.raises(LayerwiseError, match="Linear has no layerwise"):
        layerwise_inference(nn.Linear(IN_DIM, 2).eval(), graph, x)
    with pytest.raises(ValueError, match="chunk_size"):
        layerwise_inference(GNN(CLASSES, IN_DIM).eval(), graph, x, chunk_size=0)


def test_every_mixer_declares_a_known_layerwise_kind():
    for name, cls in REGISTRY.items():
        assert cls.layerwise in (*LAYERWISE, None), name
        if cls.layerwise == "global_sums":  # it implements the two methods
            assert cls.layerwise_sums is not Mixer.layerwise_sums, name
            assert cls.layerwise_apply is not Mixer.layerwise_apply, name
    assert REGISTRY["full"].layerwise is None and REGISTRY["attention"].layerwise == "in_edges"


def test_chunks_are_dgl_in_subgraph_blocks():
    """A chunk graph is DGL's in_subgraph + to_block (MultiLayerFullNeighborSampler(1)) of
    its destinations: the same nodes and the same edges, by whole-graph ids."""
    graph = random_graph()
    for chunk in chunks(graph, CHUNK):
        dst = torch.arange(chunk.start, chunk.stop)
        frontier = dgl.in_subgraph(graph, dst)
        block = dgl.to_block(frontier, dst_nodes=dst)
        nodes = block.srcdata[dgl.NID]
        assert torch.equal(nodes[: chunk.num_dst], chunk.nodes[: chunk.num_dst])
        assert torch.equal(nodes.sort().values, chunk.nodes.sort().values)
        edges = frontier.edata[dgl.EID][block.edata[dgl.EID]]
        assert torch.equal(edges.sort().values, chunk.edges.sort().values)
