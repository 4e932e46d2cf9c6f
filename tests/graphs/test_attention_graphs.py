"""Attention graphs (graphformer/graphs.py): expander, virtual nodes, unions, k-hop.

Each builder is checked against a brute-force reference on batches whose samples differ in
size, 1-node and empty samples included; the expander's spectral gap against the
Alon–Boppana/Friedman bound with numpy's dense eigensolver.
"""

from __future__ import annotations

import collections
import itertools
import math

import graphformer  # noqa: F401  (before DGL)
from graphformer.fields import EDGE_KIND, HOPS, VIRTUAL
from graphformer.graphs import (
    EdgeKind,
    add_virtual_nodes,
    complete_bipartite,
    complete_graph,
    expander_graph,
    khop_graph,
    union_graphs,
)
from graphformer.nn import Readout

import dgl
import numpy as np
import pytest
import torch
from helpers import offsets, random_graph, sample_of_node

SIZES = [7, 1, 0, 12, 3]


def per_sample_edges(graph: dgl.DGLGraph) -> list[list[tuple[int, int]]]:
    """Each sample's edges in order, as local (src, dst) pairs, via dgl.unbatch."""
    return [
        list(zip(part.edges()[0].tolist(), part.edges()[1].tolist(), strict=True))
        for part in dgl.unbatch(graph)
    ]


# --- expander_graph ----------------------------------------------------------------------


@pytest.mark.parametrize("degree", [2, 4, 6])
def test_expander_is_regular_symmetric_and_stays_in_samples(degree):
    graph = expander_graph(SIZES, degree, seed=3)
    assert graph.batch_num_nodes().tolist() == SIZES
    assert graph.batch_num_edges().tolist() == [n * degree for n in SIZES]
    assert (graph.in_degrees() == degree).all() and (graph.out_degrees() == degree).all()
    src, dst = graph.edges()
    sample = sample_of_node(SIZES)
    assert torch.equal(sample[src], sample[dst]), "an edge crosses samples"
    forward = collections.Counter(zip(src.tolist(), dst.tolist(), strict=True))
    backward = collections.Counter(zip(dst.tolist(), src.tolist(), strict=True))
    assert forward == backward, "the multigraph is not symmetric"
    parts = dgl.unbatch(graph)
    assert [part.num_nodes() for part in parts] == SIZES
    assert [part.num_edges() for part in parts] == [n * degree for n in SIZES]


def test_expander_is_a_union_of_permutations_and_their_inverses():
    degree, graph = 6, expander_graph(SIZES, 6, seed=5)
    src, dst = graph.edges()
    src, dst = src.view(-1, degree), dst.view(-1, degree)  # one row per node
    node = torch.arange(sum(SIZES)).unsqueeze(1)
    half = degree // 2
    assert (src[:, :half] == node).all() and (dst[:, half:] == node).all()
    assert torch.equal(dst[:, :half], src[:, half:])
    sample = sample_of_node(SIZES)
    for k in range(half):
        sigma = dst[:, k]
        assert torch.equal(torch.sort(sigma).values, torch.arange(sum(SIZES))), "not a bijection"
        assert torch.equal(sample[sigma], sample), "a permutation leaves its sample"


def test_expander_permutations_are_uniform():
    """All 3! permutations of a 3-node sample appear about equally often over seeds."""
    draws = 1200
    seen = collections.Counter(
        tuple(expander_graph([2, 3], 2, seed=seed).edges()[1].view(-1, 2)[2:, 0].tolist())
        for seed in range(draws)
    )
    assert set(seen) == {tuple(p) for p in itertools.permutations([2, 3, 4])}
    # Each count is Binomial(1200, 1/6): mean 200, standard deviation ~12.9.
    assert all(abs(count - draws / 6) < 5 * math.sqrt(draws * 5 / 36) for count in seen.values())


def test_expander_is_deterministic_under_a_seed():
    first = expander_graph(SIZES, 4, seed=11)
    again = expander_graph(torch.tensor(SIZES), 4, seed=11)
    other = expander_graph(SIZES, 4, seed=12)
    assert all(torch.equal(a, b) for a, b in zip(first.edges(), again.edges(), strict=True))
    assert not torch.equal(first.edges()[1], other.edges()[1])


def second_eigenvalue_modulus(part: dgl.DGLGraph, degree: int) -> float:
    """max(|λ_2|, |λ_n|) of the normalised adjacency A / degree (multi-edges counted)."""
    n = part.num_nodes()
    adjacency = np.zeros((n, n))
    np.add.at(adjacency, (part.edges()[1].numpy(), part.edges()[0].numpy()), 1.0)
    eigenvalues = np.sort(np.linalg.eigvalsh(adjacency / degree))
    assert math.isclose(eigenvalues[-1], 1.0, abs_tol=1e-9), "A/d of a regular graph has λ_1 = 1"
    return max(abs(eigenvalues[-2]), abs(eigenvalues[0]))


@pytest.mark.parametrize("degree", [4, 6, 14])
def test_expander_spectral_gap_meets_the_friedman_bound(degree):
    """λ(A/d) ≤ 2√(d−1)/d + 0.1 on samples of 100+ nodes, over several seeds (Friedman 2008:
    ≤ 2√(d−1)/d + ε with high probability; Alon–Boppana: no d-regular family does better)."""
    sizes = [200, 1, 120, 5, 300]
    bound = 2 * math.sqrt(degree - 1) / degree
    measured = []
    for seed in range(3):
        parts = dgl.unbatch(expander_graph(sizes, degree, seed=seed))
        for part, n in zip(parts, sizes, strict=True):
            if n >= 100:
                measured.append(second_eigenvalue_modulus(part, degree))
    print(f"degree {degree}: bound {bound:.3f}, measured λ {min(measured):.3f}–{max(measured):.3f}")
    assert max(measured) <= bound + 0.1
    assert max(measured) < 1 - 0.1, "no spectral gap"


@pytest.mark.parametrize("degree", [0, 3, -2, 2.0, True, None])
def test_expander_rejects_bad_degree(degree):
    with pytest.raises(ValueError, match=r"degree must be a positive even int.*exp_deg"):
        expander_graph([3], degree)


def test_expander_accepts_a_graph_and_rejects_bad_sizes():
    graph = random_graph([4, 2], p=0.5)
    assert expander_graph(graph, 2).batch_num_nodes().tolist() == [4, 2]
    with pytest.raises(ValueError, match=r"num_nodes must be non-negative"):
        expander_graph([3, -1], 2)


# --- union_graphs ------------------------------------------------------------------------


def test_union_concatenates_each_sample_edges_with_kinds_and_fields():
    sizes = [4, 1, 0, 5]
    inputs = random_graph(sizes, p=0.5, seed=2)
    inputs.edata["feat"] = torch.randn(inputs.num_edges(), 3)
    inputs.ndata["x"] = torch.randn(inputs.num_nodes(), 2)
    expander = expander_graph(sizes, 4, seed=1)

    union = union_graphs(inputs, expander)

    assert union.batch_num_nodes().tolist() == sizes
    assert (
        union.batch_num_edges().tolist()
        == (inputs.batch_num_edges() + expander.batch_num_edges()).tolist()
    )
    expected = [
        a + b for a, b in zip(per_sample_edges(inputs), per_sample_edges(expander), strict=True)
    ]
    assert per_sample_edges(union) == expected
    counts = zip(
        inputs.batch_num_edges().tolist(), expander.batch_num_edges().tolist(), strict=True
    )
    kinds = [kind for a, b in counts for kind in [EdgeKind.INPUT] * a + [EdgeKind.EXPANDER] * b]
    assert union.edata[EDGE_KIND].dtype == torch.int64
    assert union.edata[EDGE_KIND].tolist() == kinds
    # Features follow their edges; the expander's edges get zeros.
    feat = {}
    for (u, v), row in zip(
        zip(*[t.tolist() for t in inputs.edges()], strict=True), inputs.edata["feat"], strict=True
    ):
        feat[u, v] = row
    is_input = union.edata[EDGE_KIND] == EdgeKind.INPUT
    src, dst = union.edges()
    for e in torch.nonzero(is_input).squeeze(1).tolist():
        assert torch.equal(union.edata["feat"][e], feat[src[e].item(), dst[e].item()])
    assert (union.edata["feat"][~is_input] == 0).all()
    assert torch.equal(union.ndata["x"], inputs.ndata["x"])


def test_union_takes_explicit_kinds_and_replaces_old_ones():
    sizes = [3, 2]
    first = union_graphs(complete_graph(sizes), kinds=[5])
    assert set(first.edata[EDGE_KIND].tolist()) == {5}
    again = union_graphs(first, expander_graph(sizes, 2), kinds=[7, 9])
    assert again.edata[EDGE_KIND].tolist() == [7] * 9 + [9] * 6 + [7] * 4 + [9] * 4


@pytest.mark.parametrize(
    ("graphs", "kinds", "pattern"),
    [
        ((), None, r"at least one graph"),
        ((complete_graph([2, 3]), complete_graph([3, 2])), None, r"same nodes and samples"),
        ((complete_graph([2]),), [0, 1], r"one non-negative int per graph \(1\)"),
        ((complete_graph([2]),), [-1], r"non-negative int"),
        ((complete_bipartite([2], [3]),), None, r"homogeneous DGLGraphs"),
    ],
)
def test_union_rejects_bad_input(graphs, kinds, pattern):
    with pytest.raises(ValueError, match=pattern):
        union_graphs(*graphs, kinds=kinds)


def test_union_rejects_mismatched_edge_fields():
    first, second = complete_graph([2]), complete_graph([2])
    first.edata["feat"] = torch.zeros(4, 3)
    second.edata["feat"] = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"edata\['feat'\] must have one dtype and trailing shape"):
        union_graphs(first, second)


# --- add_virtual_nodes -------------------------------------------------------------------


def virtual_reference(graph: dgl.DGLGraph, k: int) -> list[list[tuple[int, int, int]]]:
    """Per sample, (src, dst, kind) of every edge, by loops over samples and nodes."""
    expected = []
    for part in dgl.unbatch(graph):
        n = part.num_nodes()
        src, dst = part.edges()
        edges = [(u, v, EdgeKind.INPUT) for u, v in zip(src.tolist(), dst.tolist(), strict=True)]
        for j in range(k):
            edges += [(i, n + j, EdgeKind.TO_VIRTUAL) for i in range(n)]
        for j in range(k):
            edges += [(n + j, i, EdgeKind.FROM_VIRTUAL) for i in range(n)]
        expected.append(edges)
    return expected


@pytest.mark.parametrize("k", [1, 3])
def test_virtual_nodes_match_brute_force(k):
    sizes = [3, 1, 0, 4]
    graph = random_graph(sizes, p=0.5, seed=4)
    graph.ndata["x"] = torch.randn(graph.num_nodes(), 2)
    graph.edata["feat"] = torch.randn(graph.num_edges(), 3)

    virtual = add_virtual_nodes(graph, k)

    assert virtual.batch_num_nodes().tolist() == [n + k for n in sizes]
    kind = virtual.edata[EDGE_KIND]
    got = [
        [(u, v, kind[start + e].item()) for e, (u, v) in enumerate(edges)]
        for start, edges in zip(
            offsets(virtual.batch_num_edges()).tolist(), per_sample_edges(virtual), strict=True
        )
    ]
    assert got == virtual_reference(graph, k)
    mask = virtual.ndata[VIRTUAL]
    assert mask.dtype == torch.bool
    expected_mask = [flag for n in sizes for flag in [False] * n + [True] * k]
    assert mask.tolist() == expected_mask
    assert torch.equal(virtual.ndata["x"][~mask], graph.ndata["x"])
    assert (virtual.ndata["x"][mask] == 0).all()
    is_input = kind == EdgeKind.INPUT
    assert (virtual.edata["feat"][~is_input] == 0).all()
    # Input edges keep their features, in their order within each sample.
    assert torch.equal(virtual.edata["feat"][is_input], graph.edata["feat"])


def test_virtual_nodes_readout_excludes_them():
    sizes = [3, 1, 4]
    graph = random_graph(sizes, p=0.5, seed=1)
    virtual = add_virtual_nodes(graph, 2)
    h = torch.randn(virtual.num_nodes(), 5)
    real = h[~virtual.ndata[VIRTUAL]]
    pooled = Readout("mean")(graph, real)
    by_hand = torch.stack(
        [
            h[start : start + n].mean(0)
            for start, n in zip(offsets(virtual.batch_num_nodes()).tolist(), sizes, strict=True)
        ]
    )
    assert torch.allclose(pooled, by_hand)


def test_virtual_nodes_embedding_layout():
    """``x[virtual] = embedding.weight.repeat(batch_size, 1)`` puts embedding j at the j-th
    virtual node of every sample."""
    sizes, k = [2, 0, 3], 2
    virtual = add_virtual_nodes(complete_graph(sizes), k)
    weight = torch.randn(k, 4)
    x = torch.zeros(virtual.num_nodes(), 4)
    x[virtual.ndata[VIRTUAL]] = weight.repeat(len(sizes), 1)
    for start, n in zip(offsets(virtual.batch_num_nodes()).tolist(), sizes, strict=True):
        assert torch.equal(x[start + n : start + n + k], weight)


def test_virtual_nodes_on_a_union_keep_its_kinds():
    sizes = [5, 1, 2]
    union = union_graphs(random_graph(sizes, p=0.4, seed=2), expander_graph(sizes, 4, seed=2))
    virtual = add_virtual_nodes(union, 2)
    kind = virtual.edata[EDGE_KIND]
    old = (kind == EdgeKind.INPUT) | (kind == EdgeKind.EXPANDER)
    assert torch.equal(kind[old], union.edata[EDGE_KIND])
    assert int((kind == EdgeKind.TO_VIRTUAL).sum()) == 2 * sum(sizes)
    assert int((kind == EdgeKind.FROM_VIRTUAL).sum()) == 2 * sum(sizes)
    # Every real node now receives from 2 virtual nodes and its 4 expander neighbours.
    mask = virtual.ndata[VIRTUAL]
    in_degrees = virtual.in_degrees()
    assert (in_degrees[mask] == torch.tensor(sizes).repeat_interleave(2)).all()
    assert (in_degrees[~mask] >= 6).all()


def test_virtual_nodes_k0_adds_only_fields():
    graph = random_graph([3, 2], p=0.5)
    virtual = add_virtual_nodes(graph, 0)
    assert per_sample_edges(virtual) == per_sample_edges(graph)
    assert not virtual.ndata[VIRTUAL].any()
    assert (virtual.edata[EDGE_KIND] == EdgeKind.INPUT).all()


@pytest.mark.parametrize("k", [-1, 1.0, True])
def test_virtual_nodes_reject_bad_k(k):
    with pytest.raises(ValueError, match=r"k \(virtual nodes per sample\) must be a non-negative"):
        add_virtual_nodes(complete_graph([2]), k)


def test_virtual_nodes_reject_heterograph():
    with pytest.raises(ValueError, match=r"add_virtual_nodes needs homogeneous DGLGraphs"):
        add_virtual_nodes(complete_bipartite([2], [3]), 1)


# --- khop_graph ----------------------------------------------------------------------------


def brute_force_hops(graph: dgl.DGLGraph, k: int) -> dict[tuple[int, int], int]:
    """(src, dst) → directed distance for every pair within k hops, by dgl.shortest_dist
    on each sample."""
    pairs, start = {}, 0
    for part in dgl.unbatch(graph):
        n = part.num_nodes()
        if n:
            distance = dgl.shortest_dist(part)  # [j, i] = d(j → i), -1 unreachable
            for j, i in itertools.product(range(n), repeat=2):
                d = int(distance[j, i])
                if 0 <= d <= k:
                    pairs[(start + j, start + i)] = d
        start += n
    return pairs


@pytest.mark.parametrize("k", [1, 2, 3])
def test_khop_graph_matches_shortest_distances(k):
    graph = random_graph(SIZES, p=0.15, seed=k)
    khop = khop_graph(graph, k)
    src, dst = khop.edges()
    got = dict(
        zip(zip(src.tolist(), dst.tolist(), strict=True), khop.edata[HOPS].tolist(), strict=True)
    )
    assert len(got) == khop.num_edges()  # one edge per pair
    assert got == brute_force_hops(graph, k)
    assert khop.batch_num_nodes().tolist() == SIZES
    assert sum(len(edges) for edges in per_sample_edges(khop)) == khop.num_edges()
    sample = sample_of_node(SIZES)
    assert torch.equal(sample[src], sample[dst])


def test_khop_graph_of_one_hop_is_the_input_plus_self_loops_once():
    src = torch.tensor([0, 1, 1, 3, 4, 4])
    dst = torch.tensor([1, 2, 2, 3, 5, 4])  # a multi-edge and two existing loops
    graph = dgl.graph((src, dst), num_nodes=6)
    graph.set_batch_num_nodes(torch.tensor([3, 3]))
    graph.set_batch_num_edges(torch.tensor([3, 3]))
    khop = khop_graph(graph, 1)
    pairs = set(zip(khop.edges()[0].tolist(), khop.edges()[1].tolist(), strict=True))
    assert pairs == {(0, 1), (1, 2), (4, 5)} | {(i, i) for i in range(6)}
    no_loops = khop_graph(graph, 1, self_loops=False)
    assert (no_loops.edata[HOPS] > 0).all() and no_loops.num_edges() == 3


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_khop_graph_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k \\(hops\\) must be an int ≥ 1"):
        khop_graph(random_graph([3]), k)


def test_khop_graph_refuses_an_edge_between_two_samples():
    """An edge from sample 0 into sample 1 would give cross-sample k-hop edges counted in
    the wrong sample's ``batch_num_edges``: refused, naming the edge."""
    graph = dgl.graph(([0, 1, 2], [1, 2, 3]), num_nodes=4)  # 1 → 2 joins the samples
    graph.set_batch_num_nodes(torch.tensor([2, 2]))
    graph.set_batch_num_edges(torch.tensor([2, 1]))
    with pytest.raises(ValueError, match=r"khop_graph.*joins sample 0 and sample 1"):
        khop_graph(graph, 2)


@pytest.mark.parametrize("seed", [None, 2**70, -(2**63) - 1, 1.5, True])
def test_expander_graph_refuses_a_seed_torch_cannot_take(seed):
    """A seed that is not an int in torch's range [-2**63, 2**64) is refused by name, not
    by torch's 'manual_seed expected a long' or 'Overflow when unpacking long long'."""
    with pytest.raises(
        ValueError, match=r"seed must be an int; got .*It must lie in \[-2\*\*63, 2\*\*64\)"
    ):
        expander_graph([3, 4], 2, seed=seed)


def test_expander_graph_takes_the_ends_of_the_seed_range():
    for seed in (-(2**63), 2**64 - 1):
        assert expander_graph([3, 4], 2, seed=seed).num_edges() == 14
