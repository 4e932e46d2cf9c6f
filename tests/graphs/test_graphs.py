"""Attention graphs (graphformer/graphs.py): complete, complete bipartite, self-loops."""

from __future__ import annotations

import itertools

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import (
    BIPARTITE_ETYPE,
    add_self_loops,
    causal_graph,
    complete_bipartite,
    complete_graph,
)

import dgl
import pytest
import torch
from helpers import assert_close, edge_set, offsets, random_graph

SIZES = [3, 1, 4, 2]


def brute_force_complete(sizes, self_loops=True) -> set[tuple[int, int]]:
    edges = set()
    for start, size in zip(offsets(sizes).tolist(), sizes, strict=True):
        for u in range(start, start + size):
            for v in range(start, start + size):
                if self_loops or u != v:
                    edges.add((u, v))
    return edges


@pytest.mark.parametrize("self_loops", [True, False])
@pytest.mark.parametrize("sizes", [[1], [4], [2, 3], SIZES, [3, 0, 2], [0]])
def test_complete_graph_matches_brute_force(sizes, self_loops):
    graph = complete_graph(sizes, self_loops=self_loops)
    expected = brute_force_complete(sizes, self_loops)
    assert graph.num_nodes() == sum(sizes)
    assert graph.num_edges() == len(expected), "duplicate or missing edges"
    assert edge_set(graph) == expected
    per_sample = [n * n if self_loops else n * n - n for n in sizes]
    assert graph.batch_num_nodes().tolist() == sizes
    assert graph.batch_num_edges().tolist() == per_sample


@pytest.mark.parametrize(
    "counts",
    [
        SIZES,
        tuple(SIZES),
        torch.tensor(SIZES),
        torch.tensor(SIZES, dtype=torch.int32),
        random_graph(SIZES, p=0.5),
    ],
    ids=["list", "tuple", "tensor", "int32", "dglgraph"],
)
def test_complete_graph_accepts_every_count_form(counts):
    graph = complete_graph(counts)
    assert edge_set(graph) == brute_force_complete(SIZES)
    assert graph.batch_num_nodes().tolist() == SIZES


def test_complete_graph_of_int_is_one_sample():
    graph = complete_graph(5)
    assert graph.batch_size == 1
    assert edge_set(graph) == set(itertools.product(range(5), repeat=2))


def test_complete_graph_nothing_crosses_samples_and_unbatches():
    sizes = [3, 0, 2, 5]
    graph = complete_graph(sizes, self_loops=False)
    sample = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    src, dst = graph.edges()
    assert torch.equal(sample[src], sample[dst])
    parts = dgl.unbatch(graph)
    assert [part.num_nodes() for part in parts] == sizes
    for part, n in zip(parts, sizes, strict=True):
        assert edge_set(part) == brute_force_complete([n], self_loops=False)


def test_complete_graph_readout_works():
    sizes = [2, 4]
    graph = complete_graph(sizes)
    graph.ndata["h"] = torch.arange(6.0).unsqueeze(1)
    assert dgl.readout_nodes(graph, "h", op="sum").squeeze(1).tolist() == [1.0, 14.0]


def test_large_complete_graph_builds():
    graph = complete_graph([128] * 128)
    assert graph.num_edges() == 128 * 128 * 128
    assert graph.batch_num_edges().tolist() == [128 * 128] * 128


@pytest.mark.parametrize(
    ("counts", "error", "pattern"),
    [
        (-1, ValueError, r"num_nodes must be non-negative; got \[-1\]"),
        ([2, -3], ValueError, r"num_nodes must be non-negative; got \[2, -3\]"),
        (2.0, TypeError, r"num_nodes must be an int.*got float"),
        ([1.5, 2.0], ValueError, r"num_nodes must hold integer.*got dtype torch.float"),
        (torch.tensor([2.0]), ValueError, r"integer.*got dtype torch.float32"),
        (torch.tensor([[1, 2]]), ValueError, r"one dimension.*shape \(1, 2\)"),
        (None, TypeError, r"num_nodes must be an int.*got NoneType"),
        (True, TypeError, r"num_nodes must be an int.*got bool"),
        ({"a": 1}, TypeError, r"num_nodes must be an int.*got dict"),
    ],
)
def test_complete_graph_rejects_bad_counts(counts, error, pattern):
    with pytest.raises(error, match=pattern):
        complete_graph(counts)


def test_complete_graph_rejects_string_with_clear_message():
    with pytest.raises(TypeError, match=r"num_nodes must be an int.*got str"):
        complete_graph("3")


@pytest.mark.parametrize(
    ("src_sizes", "dst_sizes"), [([2], [3]), ([4, 1, 3], [2, 5, 1]), ([2, 0, 3], [1, 4, 0])]
)
def test_complete_bipartite_edge_set(src_sizes, dst_sizes):
    graph = complete_bipartite(src_sizes, dst_sizes)
    assert graph.canonical_etypes == [BIPARTITE_ETYPE]
    assert graph.num_src_nodes() == sum(src_sizes)
    assert graph.num_dst_nodes() == sum(dst_sizes)
    expected = set()
    for b, (ns, nd) in enumerate(zip(src_sizes, dst_sizes, strict=True)):
        s0, d0 = sum(src_sizes[:b]), sum(dst_sizes[:b])
        expected |= {(s0 + u, d0 + v) for u in range(ns) for v in range(nd)}
    assert graph.num_edges() == len(expected)
    assert edge_set(graph) == expected
    per_sample = [ns * nd for ns, nd in zip(src_sizes, dst_sizes, strict=True)]
    assert graph.batch_num_edges().tolist() == per_sample
    parts = dgl.unbatch(graph)
    assert [part.num_edges() for part in parts] == per_sample
    assert [part.num_src_nodes() for part in parts] == src_sizes


def test_complete_bipartite_rejects_mismatched_sample_counts():
    with pytest.raises(ValueError, match=r"same number of samples; got 2 and 3"):
        complete_bipartite([2, 3], [1, 1, 1])


def test_complete_bipartite_names_the_bad_argument():
    with pytest.raises(ValueError, match=r"num_dst must be non-negative"):
        complete_bipartite([2], [-1])


def sample_edges(graph: dgl.DGLGraph) -> list[set[tuple[int, int]]]:
    return [edge_set(part) for part in dgl.unbatch(graph)]


def test_add_self_loops_no_duplicates_and_batch_kept():
    sizes = [4, 3, 5]
    graph = random_graph(sizes, p=0.5, self_loops=True, seed=3)
    src, dst = graph.edges()
    had_loop = set(src[src == dst].tolist())
    assert 0 < len(had_loop) < graph.num_nodes(), "the test graph needs some loops, not all"
    graph.ndata["x"] = torch.randn(graph.num_nodes(), 2)
    graph.edata["w"] = torch.rand(graph.num_edges(), 3) + 1.0

    looped = add_self_loops(graph, fill_value=-7.0)

    assert looped.batch_num_nodes().tolist() == sizes
    loops = [(n, n) for n in range(graph.num_nodes())]
    assert edge_set(looped) == edge_set(graph) | set(loops)
    assert looped.num_edges() == graph.num_edges() + graph.num_nodes() - len(had_loop)
    # dgl.unbatch: each sample gets its own edges plus its own loops, nothing else.
    expected = [
        edges | {(n, n) for n in range(size)}
        for edges, size in zip(sample_edges(graph), sizes, strict=True)
    ]
    assert sample_edges(looped) == expected
    assert torch.equal(looped.ndata["x"], graph.ndata["x"])

    # Old edges keep their features; new loops get fill_value.
    def features(g):
        pairs = zip(g.edges()[0].tolist(), g.edges()[1].tolist(), strict=True)
        return dict(zip(pairs, g.edata["w"], strict=True))

    old, new = features(graph), features(looped)
    for (u, v), w in new.items():
        if (u, v) in old:
            assert torch.equal(w, old[u, v])
        else:
            assert u == v and u not in had_loop
            assert torch.all(w == -7.0)


def test_add_self_loops_new_loops_follow_each_sample_edges():
    graph = random_graph([3, 4, 2], p=0.6, self_loops=True, seed=1)
    looped = add_self_loops(graph)
    for before, after in zip(dgl.unbatch(graph), dgl.unbatch(looped), strict=True):
        src, dst = after.edges()
        kept = before.num_edges()
        assert torch.equal(src[:kept], before.edges()[0])
        assert torch.equal(dst[:kept], before.edges()[1])
        assert torch.equal(src[kept:], dst[kept:])


def test_add_self_loops_all_loops_present_is_identity():
    graph = dgl.add_self_loop(random_graph([3, 2], seed=2))
    graph.set_batch_num_nodes(torch.tensor([3, 2]))
    assert add_self_loops(graph).num_edges() == graph.num_edges()


def test_add_self_loops_empty_and_isolated_nodes():
    graph = dgl.batch([dgl.graph(([], []), num_nodes=3), dgl.graph(([], []), num_nodes=0)])
    looped = add_self_loops(graph)
    assert edge_set(looped) == {(0, 0), (1, 1), (2, 2)}
    assert looped.batch_num_edges().tolist() == [3, 0]


def test_add_self_loops_rejects_heterograph():
    with pytest.raises(ValueError, match=r"homogeneous graph; got node types"):
        add_self_loops(complete_bipartite([2], [3]))


def brute_force_causal(sizes, self_loops=True) -> set[tuple[int, int]]:
    return {(u, v) for u, v in brute_force_complete(sizes) if u < v or (self_loops and u == v)}


@pytest.mark.parametrize("self_loops", [True, False])
@pytest.mark.parametrize("sizes", [[1], [4], [2, 3], SIZES, [3, 0, 2], [0]])
def test_causal_graph_matches_brute_force(sizes, self_loops):
    graph = causal_graph(sizes, self_loops=self_loops)
    expected = brute_force_causal(sizes, self_loops)
    assert graph.num_edges() == len(expected), "duplicate or missing edges"
    assert edge_set(graph) == expected
    per_sample = [n * (n + 1) // 2 if self_loops else n * (n - 1) // 2 for n in sizes]
    assert graph.batch_num_nodes().tolist() == sizes
    assert graph.batch_num_edges().tolist() == per_sample
    assert [part.num_edges() for part in dgl.unbatch(graph)] == per_sample


def test_causal_graph_takes_counts_from_a_graph_and_rejects_bad_ones():
    assert edge_set(causal_graph(random_graph(SIZES, p=0.5))) == brute_force_causal(SIZES)
    with pytest.raises(ValueError, match=r"num_nodes must be non-negative; got \[2, -1\]"):
        causal_graph([2, -1])


def test_complete_bipartite_takes_counts_from_encoder_and_decoder_graphs():
    """Decoder → encoder cross-attention: each pair (source, target) has its own lengths."""
    src_sizes, tgt_sizes = [5, 2, 3], [1, 4, 4]
    graph = complete_bipartite(complete_graph(src_sizes), causal_graph(tgt_sizes))
    assert graph.batch_num_nodes("src").tolist() == src_sizes
    assert graph.batch_num_nodes("dst").tolist() == tgt_sizes
    assert edge_set(graph) == edge_set(complete_bipartite(src_sizes, tgt_sizes))


def test_derived_graphs_are_built_once_per_graph_and_rebuilt_when_it_grows(monkeypatch):
    """GCNConv(self_loops=True) called again on one graph reuses its self-loop graph; a
    GPS block on the DGL engine reuses the complete graph; growing the graph rebuilds."""
    import graphformer.graphs.transformer as graphs_module
    from graphformer.nn import BlockConfig, GCNConv, GraphTransformerBlock

    calls = {"loops": 0, "complete": 0}
    loop_graph, complete = graphs_module._loop_graph, graphs_module.complete_graph

    def count(key, build):
        return lambda *a, **k: calls.__setitem__(key, calls[key] + 1) or build(*a, **k)

    monkeypatch.setattr(graphs_module, "_loop_graph", count("loops", loop_graph))
    monkeypatch.setattr(graphs_module, "complete_graph", count("complete", complete))
    graph = dgl.rand_graph(6, 12)
    x = torch.randn(6, 8)
    conv = GCNConv(8, 8)
    first = conv(graph, x)
    assert_close("GCNConv on a reused self-loop graph", conv(graph, x), first)
    block = GraphTransformerBlock(BlockConfig(dim=8, mixer="gps", num_heads=2, engine="dgl"))
    block(graph, x)
    block(graph, x)
    assert calls == {"loops": 1, "complete": 1}
    graph.add_edges([0, 1], [2, 3])
    conv(graph, x)
    assert calls["loops"] == 2
