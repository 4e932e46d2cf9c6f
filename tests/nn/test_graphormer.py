"""Graphormer's structural encodings: cached shortest-path distances
(graphformer/data/features/distances.py), the spatial bias and the centrality encoding
(graphformer/nn/layers/graphormer.py), the
``graphormer`` mixer built from them, the model's centrality encoding and the data flag.

References: Floyd–Warshall in numpy for the distances, a dense per-head lookup for the bias,
dense per-sample softmax attention with the added bias matrix for the attention.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import os

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli import build as cli_build
from graphformer.data import CacheWarning, GraphDataModule, SBMDataset, collate
from graphformer.data.features.distances import (
    SPD,
    WithDistances,
    compute_distances,
    distances_path,
    load_or_compute_distances,
    shortest_distances,
)
from graphformer.graphs import (
    add_self_loops,
    add_virtual_nodes,
    complete_bipartite,
    complete_graph,
    expander_graph,
    union_graphs,
)
from graphformer.nn import (
    BlockConfig,
    CentralityEncoding,
    GraphormerAttention,
    GraphTransformer,
    GraphTransformerBlock,
    MultiHeadAttention,
    SpatialBias,
)
from graphformer.nn.layers import graphormer as graphormer_module
from graphformer.nn.mixers import REGISTRY, build

import dgl
import numpy as np
import pytest
import torch
from helpers import (
    assert_close,
    dense_edge_tensor,
    dense_sample_attention,
    offsets,
    random_graph,
    randomize_biases,
    tiny_cluster_data,
    with_distances,
    within_sample_permutation,
)
from omegaconf import OmegaConf

SIZES = [5, 1, 8, 3]
EMBED, HEADS = 8, 2


def floyd_warshall(graph: dgl.DGLGraph) -> np.ndarray:
    """[i, j] = hops on a shortest path i → j, -1 where there is none."""
    n = graph.num_nodes()
    dist = np.full((n, n), np.inf)
    np.fill_diagonal(dist, 0)
    for u, v in zip(*[t.tolist() for t in graph.edges()], strict=True):
        dist[u, v] = min(dist[u, v], 1)
    for k in range(n):
        dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
    return np.where(np.isinf(dist), -1, dist).astype(np.int64)


def sample_graphs(sizes=SIZES, p=0.25, seed=3) -> list[dgl.DGLGraph]:
    """Sparse random directed graphs: some pairs are unreachable."""
    return dgl.unbatch(random_graph(sizes, p=p, seed=seed))


def batch_with_distances(sizes=SIZES, p=0.25, seed=3) -> dgl.DGLGraph:
    graphs = sample_graphs(sizes, p, seed)
    dataset = WithDistances(graphs, compute_distances(graphs))
    return dgl.batch([dataset[i] for i in range(len(dataset))])


# --- data: distances and their cache ------------------------------------------------------


def test_distances_match_floyd_warshall():
    graphs = [*sample_graphs(), dgl.graph(([], []), num_nodes=0)]
    computed = compute_distances(graphs)
    assert computed[SPD].dtype == torch.int16
    assert computed["num_nodes"].tolist() == [*SIZES, 0]
    start = 0
    for graph in graphs:
        n = graph.num_nodes()
        block = computed[SPD][start : start + n * n].view(n, n)
        assert np.array_equal(block.numpy(), floyd_warshall(graph))
        start += n * n
    assert start == len(computed[SPD])
    assert (computed[SPD] == -1).any(), "the test graphs need unreachable pairs"


def test_distances_refuse_huge_graphs():
    with pytest.raises(ValueError, match=r"40000 nodes exceeds 32767.*3.2 GB"):
        shortest_distances(dgl.graph(([], []), num_nodes=40000))


def test_distances_cache_is_written_reused_and_rebuilt(tmp_path, monkeypatch):
    graphs = sample_graphs()
    path = distances_path(tmp_path / "cluster_train.bin")
    assert path.name == "cluster_train.spd.bin"
    first = load_or_compute_distances(graphs, path)
    assert path.is_file()

    def fail(graph):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(dgl, "shortest_dist", fail)
        cached = load_or_compute_distances(graphs, path)
    assert all(torch.equal(first[key], cached[key]) for key in first)

    with open(path, "r+b") as file:  # flip a byte in the middle
        file.seek(os.path.getsize(path) // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0xFF]))
    with pytest.warns(CacheWarning, match=r"shortest-path-distance cache .* digest mismatch"):
        rebuilt = load_or_compute_distances(graphs, path)
    assert torch.equal(rebuilt[SPD], first[SPD])

    with pytest.warns(CacheWarning, match=r"node counts differ"):
        other = load_or_compute_distances(graphs[:2], path)
    assert other["num_nodes"].tolist() == SIZES[:2]
    assert load_or_compute_distances(graphs, None)[SPD].shape == first[SPD].shape


def test_with_distances_pads_rows_batches_and_reads_through():
    class Labelled(list):
        num_classes = 3

    graphs = sample_graphs()
    dataset = WithDistances(
        Labelled((g, i) for i, g in enumerate(graphs)), compute_distances(graphs)
    )
    assert len(dataset) == len(SIZES) and dataset.num_classes == 3
    graph, label = dataset[-2]
    assert label == 2
    assert graph.ndata[SPD].shape == (SIZES[2], max(SIZES))
    assert np.array_equal(graph.ndata[SPD][:, : SIZES[2]].numpy(), floyd_warshall(graphs[2]))
    assert (graph.ndata[SPD][:, SIZES[2] :] == -1).all()
    assert SPD not in graphs[2].ndata, "the wrapped dataset was modified"
    batch = dgl.batch([dataset[i][0] for i in range(len(dataset))])
    assert batch.ndata[SPD].shape == (sum(SIZES), max(SIZES))


def test_with_distances_rejects_graphs_of_another_size():
    graphs = sample_graphs()
    dataset = WithDistances(graphs[::-1], compute_distances(graphs))
    with pytest.raises(ValueError, match=r"graph 0 has 3 nodes but its distances were computed"):
        dataset[0]


# --- nn: spatial bias -----------------------------------------------------------------------


def dense_bias(layer: SpatialBias, graphs: list[dgl.DGLGraph]) -> torch.Tensor:
    """(N, N, H) with [i, j] = W[φ(D_ji)], zeros across samples: the reference lookup."""
    n = sum(g.num_nodes() for g in graphs)
    dense = torch.zeros(n, n, layer.num_heads)
    weight = layer.embedding.weight.detach()
    for start, graph in zip(offsets([g.num_nodes() for g in graphs]).tolist(), graphs, strict=True):
        dist = floyd_warshall(graph)
        for i in range(graph.num_nodes()):
            for j in range(graph.num_nodes()):
                d = dist[j, i]
                row = layer.max_distance + 1 if d < 0 else min(d, layer.max_distance)
                dense[start + i, start + j] = weight[row]
    return dense


def test_distance_index_clips_and_separates_unreachable():
    layer = SpatialBias(HEADS, max_distance=3)
    index = layer.distance_index(torch.tensor([-1, 0, 1, 3, 4, 100], dtype=torch.int16))
    assert index.tolist() == [4, 0, 1, 3, 3, 3]


@pytest.mark.parametrize("max_distance", [2, 20])
def test_spatial_bias_equals_dense_lookup(max_distance):
    graphs = sample_graphs()
    batch = batch_with_distances()
    layer = SpatialBias(HEADS, max_distance=max_distance)
    full = complete_graph(batch)
    bias = layer(full, batch.ndata[SPD])
    assert bias.shape == (full.num_edges(), HEADS)
    assert_close(
        "spatial bias vs dense lookup", dense_edge_tensor(full, bias), dense_bias(layer, graphs)
    )


def test_spatial_bias_on_a_sparse_attention_graph():
    """On input ∪ expander (multi-edges included), each edge gets its pair's bias."""
    graphs = sample_graphs()
    batch = batch_with_distances()
    attention_graph = union_graphs(batch, expander_graph(batch, 4, seed=1))
    layer = SpatialBias(HEADS, max_distance=4)
    bias = layer(attention_graph, batch.ndata[SPD])
    reference = dense_bias(layer, graphs)
    src, dst = attention_graph.edges()
    assert_close("spatial bias vs dense lookup", bias, reference[dst, src])


def dense_biased_attention(layer: MultiHeadAttention, x, sizes, bias) -> torch.Tensor:
    """Per sample: softmax(Q Kᵀ / √d + B) V, then the output projection. bias: (N, N, H)."""
    shape = (-1, layer.num_heads, layer.head_dim)
    q = layer.q_proj(x).view(shape) / math.sqrt(layer.head_dim)
    k, v = layer.k_proj(x).view(shape), layer.v_proj(x).view(shape)
    out = dense_sample_attention(q, k, v, sizes, bias)
    return layer.out_proj(out.reshape(len(x), -1))


@pytest.mark.parametrize("engine", ["auto", "torch"])
def test_attention_with_spatial_bias_equals_dense_biased_softmax(engine):
    graphs = sample_graphs()
    batch = batch_with_distances()
    spatial = SpatialBias(HEADS, max_distance=3)
    with torch.no_grad():
        spatial.embedding.weight.normal_()  # large enough to matter
    attention = randomize_biases(MultiHeadAttention(EMBED, HEADS, engine=engine)).eval()
    x = torch.randn(batch.num_nodes(), EMBED)
    full = complete_graph(batch)

    out = attention(full, x, edge_bias=spatial(full, batch.ndata[SPD]))

    reference = dense_biased_attention(attention, x, SIZES, dense_bias(spatial, graphs))
    assert_close("attention + spatial bias vs dense biased softmax", out, reference)
    assert not torch.allclose(out, attention(full, x), atol=1e-3), "the bias had no effect"


def test_spatial_bias_is_permutation_equivariant():
    """Relabelling nodes within samples relabels the bias matrix the same way."""
    perm = within_sample_permutation(SIZES, seed=2)
    batch = batch_with_distances()
    permuted_graphs = dgl.unbatch(_relabel(batch, perm))
    distances = WithDistances(permuted_graphs, compute_distances(permuted_graphs))
    permuted = dgl.batch([distances[i] for i in range(len(distances))])
    layer = SpatialBias(HEADS, max_distance=3)
    full = complete_graph(batch)
    dense = dense_edge_tensor(full, layer(full, batch.ndata[SPD]))
    dense_permuted = dense_edge_tensor(full, layer(full, permuted.ndata[SPD]))
    assert_close("spatial bias permutation equivariance", dense_permuted, dense[perm][:, perm])


def _relabel(batch: dgl.DGLGraph, perm: torch.Tensor) -> dgl.DGLGraph:
    """New node n is old node perm[n]; batch structure kept."""
    inverse = torch.argsort(perm)
    src, dst = batch.edges()
    graph = dgl.graph((inverse[src], inverse[dst]), num_nodes=batch.num_nodes())
    graph.set_batch_num_nodes(batch.batch_num_nodes())
    graph.set_batch_num_edges(batch.batch_num_edges())
    return graph


def test_gradcheck_attention_with_spatial_bias_float64():
    batch = batch_with_distances(sizes=[4, 1, 3])
    spatial = SpatialBias(HEADS, max_distance=2).double()
    attention = randomize_biases(MultiHeadAttention(4, HEADS)).double()
    full = complete_graph(batch)
    x = torch.randn(batch.num_nodes(), 4, dtype=torch.float64, requires_grad=True)
    table = spatial.embedding.weight.detach().clone().requires_grad_()

    def attend(x, table):
        bias = torch.func.functional_call(
            spatial, {"embedding.weight": table}, (full, batch.ndata[SPD])
        )
        return attention(full, x, edge_bias=bias)

    assert torch.autograd.gradcheck(attend, (x, table))


@pytest.mark.parametrize(
    ("distances", "pattern"),
    [
        (torch.zeros(17, 8), r"integer tensor"),
        (torch.zeros(16, 8, dtype=torch.int16), r"shape \(17, width\).*got \(16, 8\)"),
        (torch.zeros(17, 5, dtype=torch.int16), r"width 5, narrower than the largest sample \(8"),
    ],
)
def test_spatial_bias_rejects_bad_distances(distances, pattern):
    batch = batch_with_distances()
    with pytest.raises(ValueError, match=pattern):
        SpatialBias(HEADS)(complete_graph(batch), distances)


def test_spatial_bias_rejects_edges_across_samples():
    batch = batch_with_distances(sizes=[2, 3])
    crossing = dgl.graph(([0], [4]), num_nodes=5)
    crossing.set_batch_num_nodes(batch.batch_num_nodes())
    crossing.set_batch_num_edges(torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"edges stay within samples"):
        SpatialBias(HEADS)(crossing, batch.ndata[SPD])


def test_spatial_bias_rejects_virtual_nodes():
    batch = batch_with_distances(sizes=[2, 3])
    with pytest.raises(ValueError, match=r"virtual nodes .* have no shortest-path distances"):
        SpatialBias(HEADS)(add_virtual_nodes(complete_graph(batch), 1), batch.ndata[SPD])


# --- nn: centrality encoding ----------------------------------------------------------------


def test_centrality_encoding_equals_degree_lookup():
    graph = random_graph([6, 1, 9], p=0.5, seed=7)  # directed: in- and out-degrees differ
    layer = CentralityEncoding(EMBED, max_degree=4)
    out = layer(graph)
    in_degree = [0] * graph.num_nodes()
    out_degree = [0] * graph.num_nodes()
    for u, v in zip(*[t.tolist() for t in graph.edges()], strict=True):
        out_degree[u] += 1
        in_degree[v] += 1
    assert in_degree != out_degree and max(in_degree) > 4, "the test graph must clip and differ"
    reference = torch.stack(
        [
            layer.in_degree.weight[min(a, 4)] + layer.out_degree.weight[min(b, 4)]
            for a, b in zip(in_degree, out_degree, strict=True)
        ]
    )
    assert_close("centrality encoding vs degree lookup", out, reference)


def test_centrality_encoding_is_permutation_equivariant_and_differentiable():
    graph = random_graph([7, 4], p=0.4, seed=8)
    perm = within_sample_permutation([7, 4], seed=1)
    layer = CentralityEncoding(EMBED, max_degree=8)
    assert_close(
        "centrality encoding permutation equivariance",
        layer(_relabel(graph, perm)),
        layer(graph)[perm],
    )
    layer = layer.double()
    tables = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    names = [name for name, _ in layer.named_parameters()]

    def encode(*weights):
        return torch.func.functional_call(layer, dict(zip(names, weights, strict=True)), (graph,))

    assert torch.autograd.gradcheck(encode, tables)


def test_centrality_encoding_rejects_heterograph_and_bad_sizes():
    with pytest.raises(ValueError, match=r"homogeneous graph"):
        CentralityEncoding(EMBED)(complete_bipartite([2], [3]))
    with pytest.raises(ValueError, match=r"max_degree must be a positive int"):
        CentralityEncoding(EMBED, max_degree=0)
    with pytest.raises(ValueError, match=r"max_distance must be a positive int"):
        SpatialBias(HEADS, max_distance=0)


# --- nn: the graphormer mixer ---------------------------------------------------------------


def graphormer(engine: str = "auto", max_distance: int = 3, seed: int = 0) -> GraphormerAttention:
    """A graphormer mixer with random biases and a spatial table large enough to matter."""
    torch.manual_seed(seed)
    mixer = randomize_biases(GraphormerAttention(EMBED, HEADS, max_distance, engine=engine))
    with torch.no_grad():
        mixer.spatial.embedding.weight.normal_()
    return mixer.eval()


@pytest.mark.parametrize("engine", ["auto", "dgl", "torch"])
def test_graphormer_mixer_equals_dense_biased_softmax(engine):
    """Per sample softmax(q kᵀ/√d + B[φ(D_ji)]) v, then out_proj, with D from Floyd–Warshall:
    samples of 5, 1, 8 and 3 nodes, some pairs unreachable."""
    graphs = sample_graphs()
    batch = batch_with_distances()
    mixer = graphormer(engine)
    x = torch.randn(batch.num_nodes(), EMBED)
    state = torch.randn(batch.num_edges(), 4)

    out, edge_state = mixer(batch, x, state)

    reference = dense_biased_attention(mixer.attention, x, SIZES, dense_bias(mixer.spatial, graphs))
    assert_close("graphormer mixer vs dense biased softmax", out, reference, atol=2e-6)
    assert edge_state is state, "edge state passes through"
    plain = dense_biased_attention(mixer.attention, x, SIZES, None)
    assert not torch.allclose(out, plain, atol=1e-3), "the spatial bias had no effect"


def test_graphormer_engines_agree_outputs_and_gradients():
    batch = batch_with_distances()
    dgl_mixer = graphormer("dgl").train()
    torch_mixer = GraphormerAttention(EMBED, HEADS, 3, engine="torch").train()
    torch_mixer.load_state_dict(copy.deepcopy(dgl_mixer.state_dict()))
    x = torch.randn(batch.num_nodes(), EMBED)
    results = []
    for mixer in (dgl_mixer, torch_mixer):
        h = x.clone().requires_grad_()
        out = mixer(batch, h)[0]
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out, h.grad, [p.grad for p in mixer.parameters()]))
    (out_a, dx_a, grads_a), (out_b, dx_b, grads_b) = results
    assert_close("graphormer torch vs dgl: output", out_b, out_a)
    assert_close("graphormer torch vs dgl: input grad", dx_b, dx_a)
    for grad_a, grad_b in zip(grads_a, grads_b, strict=True):
        assert_close("graphormer torch vs dgl: param grads", grad_b, grad_a)
    assert grads_a[-1].abs().sum() > 0, "the spatial table gets a gradient"


def test_gradcheck_graphormer_mixer_float64():
    batch = batch_with_distances(sizes=[4, 1, 3])
    mixer = graphormer("dgl", max_distance=2).double()
    names = [name for name, _ in mixer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in mixer.parameters()]
    x = torch.randn(batch.num_nodes(), EMBED, dtype=torch.float64, requires_grad=True)

    def attend(x, *params):
        weights = dict(zip(names, params, strict=True))
        return torch.func.functional_call(mixer, weights, (batch, x))[0]

    assert torch.autograd.gradcheck(attend, (x, *params))


def test_graphormer_mixer_is_permutation_equivariant():
    """Permute nodes within samples and recompute the distances: the outputs permute."""
    perm = within_sample_permutation(SIZES, seed=4)
    assert not torch.equal(perm, torch.arange(len(perm)))
    batch = batch_with_distances()
    permuted = with_distances(_relabel(batch, perm))
    mixer = graphormer()
    x = torch.randn(batch.num_nodes(), EMBED)
    out = mixer(batch, x)[0]
    assert_close("graphormer permutation equivariance", mixer(permuted, x[perm])[0], out[perm])


def test_graphormer_runs_on_the_graph_with_self_loops_the_model_passes():
    """GraphTransformer adds self-loops once for local mixers and passes that graph to
    every branch: it keeps ndata['spd'] and the input graph's nodes, so the global half
    computes what it computes on the input graph."""
    batch = batch_with_distances()
    looped = add_self_loops(batch)
    assert looped.num_edges() > batch.num_edges() and torch.equal(
        looped.ndata[SPD], batch.ndata[SPD]
    )
    mixer = graphormer()
    x = torch.randn(batch.num_nodes(), EMBED)
    assert_close("graphormer on graph + self-loops", mixer(looped, x)[0], mixer(batch, x)[0])


def test_graphormer_as_block_and_as_the_global_half_of_gps():
    batch = batch_with_distances()
    x = torch.randn(batch.num_nodes(), EMBED)
    config = BlockConfig(dim=EMBED, mixer="graphormer", num_heads=HEADS, norm="none")
    block = GraphTransformerBlock(config)
    assert isinstance(block.global_mixer, GraphormerAttention) and block.local is None
    assert block.needs == (SPD,)
    expected = x + block.global_mixer(batch, x)[0]
    expected = expected + block.ffn(expected)
    assert_close("graphormer block vs x + mixer(x), then FFN", block.eval()(batch, x), expected)

    gps = GraphTransformerBlock(
        BlockConfig(
            dim=EMBED,
            mixer="gps",
            num_heads=HEADS,
            local_mixer="gcn",
            global_mixer="graphormer",
            global_kwargs={"max_distance": 5},
        )
    )
    global_mixer = gps.global_mixer
    assert isinstance(global_mixer, GraphormerAttention)
    assert global_mixer.spatial.max_distance == 5
    assert gps(batch, x).shape == x.shape
    with pytest.raises(ValueError, match=r"global_kwargs \['degree'\] are not settings of "):
        BlockConfig(dim=EMBED, mixer="graphormer", global_kwargs={"degree": 3})


def test_graphormer_registry_entry():
    entry = REGISTRY["graphormer"]
    assert (entry.scope, entry.settings) == ("global", ("max_distance",))
    assert entry.needs == (SPD,)
    config = BlockConfig(
        dim=EMBED, num_heads=HEADS, attn_dropout=0.2, global_kwargs={"max_distance": 7}
    )
    mixer = build("graphormer", config, "global")
    assert mixer.spatial.max_distance == 7 and mixer.attention.attn_dropout.p == 0.2
    assert graphormer_module.SPD == SPD, "nn and data name the distance field alike"


def test_graphormer_without_distances_says_which_flag_to_turn_on():
    batch = dgl.batch(sample_graphs())
    x = torch.randn(batch.num_nodes(), EMBED)
    with pytest.raises(ValueError, match=r"graphormer mixer reads .*ndata\['spd'\].*distances=t"):
        graphormer()(batch, x)
    net = GraphTransformer(
        3, BlockConfig(dim=EMBED, mixer="graphormer", num_heads=HEADS), 1, in_dim=EMBED
    )
    assert net.needs == (SPD,)
    with pytest.raises(ValueError, match=r"model's global mixer .*data.distances=true"):
        net(batch, x)
    assert GraphTransformer(3, BlockConfig(dim=EMBED), 1, in_dim=EMBED).needs == ()


# --- nn: centrality in the model ------------------------------------------------------------


def test_model_centrality_uses_the_input_graph_before_self_loops():
    graph = random_graph([6, 1, 9], p=0.5, seed=7)
    config = BlockConfig(dim=EMBED, mixer="attention", num_heads=HEADS)
    net = GraphTransformer(3, config, 2, in_dim=4, centrality_max_degree=16).eval()
    assert net.blocks[0].local.self_loops, "the local mixer runs on the graph + self-loops"
    seen = []
    net.centrality.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    x = torch.randn(graph.num_nodes(), 4)
    out = net(graph, x)
    assert len(seen) == 1 and seen[0].num_edges() == graph.num_edges()
    assert torch.equal(seen[0].in_degrees(), graph.in_degrees())
    with torch.no_grad():
        net.centrality.in_degree.weight.normal_()
    assert not torch.allclose(net(graph, x), out, atol=1e-4), "centrality changes the output"
    assert GraphTransformer(3, BlockConfig(dim=EMBED), 1, in_dim=4).centrality is None


@pytest.mark.parametrize("bad", [-1, True, 2.5])
def test_model_refuses_bad_centrality_max_degree(bad):
    with pytest.raises(ValueError, match=r"centrality_max_degree must be an int ≥ 0"):
        GraphTransformer(3, BlockConfig(dim=EMBED), 1, in_dim=4, centrality_max_degree=bad)


def test_graphormer_model_trains_a_step_with_centrality():
    batch = batch_with_distances()
    config = BlockConfig(dim=EMBED, mixer="graphormer", num_heads=HEADS)
    net = GraphTransformer(3, config, 2, in_dim=4, centrality_max_degree=4, level="graph")
    net(batch, torch.randn(batch.num_nodes(), 4)).square().sum().backward()
    grads = {name: p.grad for name, p in net.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["centrality.in_degree.weight"].abs().sum() > 0
    assert grads["blocks.1.global_mixer.spatial.embedding.weight"].abs().sum() > 0


# --- data: the datamodule's distances flag --------------------------------------------------


def sbm_module(root, **kwargs) -> GraphDataModule:
    factory = functools.partial(SBMDataset, name="CLUSTER", root=root)
    sizes = dict(batch_size=3, train_graphs=6, val_graphs=3, test_graphs=3)
    return GraphDataModule(factory, **{**sizes, **kwargs})


def test_datamodule_distances_flag_attaches_cached_distances(tmp_path, monkeypatch, caplog):
    assert SPD not in next(iter(sbm_module(tmp_path).train_dataloader()))[0].ndata, "off"
    with caplog.at_level(logging.INFO, logger="graphformer.data"):
        module = sbm_module(tmp_path, distances=True)
        module.prepare_data()
    assert "computing shortest-path distances: 6/6" in caplog.text
    assert distances_path(tmp_path / "CLUSTER_train_n6_seed0.bin").is_file()
    graph, _ = next(iter(module.val_dataloader()))
    sizes = graph.batch_num_nodes().tolist()
    assert graph.ndata[SPD].shape[0] == graph.num_nodes()
    assert graph.ndata[SPD].shape[1] >= max(sizes)
    start = 0
    for sample, n in zip(dgl.unbatch(graph), sizes, strict=True):
        expected = floyd_warshall(dgl.graph(sample.edges(), num_nodes=n))
        assert np.array_equal(graph.ndata[SPD][start : start + n, :n].numpy(), expected)
        start += n

    def fail(*args, **kwargs):
        raise AssertionError("the distances should come from the cache")

    monkeypatch.setattr(dgl, "shortest_dist", fail)
    again = sbm_module(tmp_path, distances=True)
    cached, _ = next(iter(again.val_dataloader()))
    assert torch.equal(cached.ndata[SPD], graph.ndata[SPD])


def test_datamodule_refuses_a_distances_flag_that_is_not_a_bool(tmp_path):
    with pytest.raises(TypeError, match=r"distances must be true, false or null.*'yes'"):
        sbm_module(tmp_path, distances="yes")


def test_training_asks_the_data_for_the_fields_the_model_needs(tmp_path):
    """graphformer-train builds the model first and passes its needs to the one call that
    builds the data; a data config that refuses them (distances: false) is refused."""
    graphormer_model = GraphTransformer(
        6, BlockConfig(dim=EMBED, mixer="graphormer"), 1, num_categories=7
    )
    cfg = OmegaConf.create({"data": tiny_cluster_data(str(tmp_path))})
    data = cli_build.datamodule(cfg, graphormer_model)
    assert data.distances is None and [field.name for field in data.fields] == [SPD]
    plain = cli_build.datamodule(
        cfg, GraphTransformer(6, BlockConfig(dim=EMBED), 1, num_categories=7)
    )
    assert plain.fields == (), "other models are unaffected"
    cfg.data.distances = False
    with pytest.raises(ValueError, match=r"data.distances=false; set data.distances=true"):
        cli_build.datamodule(cfg, graphormer_model)
    with pytest.raises(ValueError, match=r"data.distances=false; set data.distances=true"):
        sbm_module(tmp_path, distances=False, fields=graphormer_model.needs)


def test_collate_pads_distances_of_different_widths():
    small, large = sample_graphs(sizes=[2, 3]), sample_graphs(sizes=[6])
    a = WithDistances(small, compute_distances(small))  # width 3
    b = WithDistances(large, compute_distances(large))  # width 6
    first, second = a[0], b[0]
    for sample in (first, second):
        sample.ndata["label"] = torch.zeros(sample.num_nodes(), dtype=torch.int64)
    graph, _ = collate([first, second])
    assert graph.ndata[SPD].shape == (8, 6)
    assert torch.equal(graph.ndata[SPD][:2, :3], first.ndata[SPD])
    assert (graph.ndata[SPD][:2, 3:] == -1).all()
    assert torch.equal(graph.ndata[SPD][2:], second.ndata[SPD])
    assert first.ndata[SPD].shape == (2, 3), "the sample itself is not modified"
    pairs, _ = collate([(first, 0), (second, 1)])
    assert pairs.ndata[SPD].shape == (8, 6)


def test_distances_cache_is_rebuilt_for_other_edges_of_the_same_sizes(tmp_path):
    graphs = sample_graphs()
    path = distances_path(tmp_path / "data.bin")
    load_or_compute_distances(graphs, path)
    other = sample_graphs(seed=11)
    assert [g.num_nodes() for g in other] == [g.num_nodes() for g in graphs]
    with pytest.warns(CacheWarning, match=r"edges differ"):
        rebuilt = load_or_compute_distances(other, path)
    assert torch.equal(rebuilt[SPD], compute_distances(other)[SPD])
