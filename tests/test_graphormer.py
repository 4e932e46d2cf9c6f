"""Graphormer's structural encodings: cached shortest-path distances (graphformer/data/spd.py),
the spatial bias and the centrality encoding (graphformer/nn/graphormer.py).

References: Floyd–Warshall in numpy for the distances, a dense per-head lookup for the bias,
dense per-sample softmax attention with the added bias matrix for the attention.
"""

from __future__ import annotations

import math
import os

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import CacheWarning
from graphformer.data.spd import (
    SPD,
    WithDistances,
    compute_distances,
    distances_path,
    load_or_compute_distances,
    shortest_distances,
)
from graphformer.graphs import (
    add_virtual_nodes,
    complete_bipartite,
    complete_graph,
    expander_graph,
    union_graphs,
)
from graphformer.nn import CentralityEncoding, MultiHeadAttention, SpatialBias

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
    within_sample_permutation,
)

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
