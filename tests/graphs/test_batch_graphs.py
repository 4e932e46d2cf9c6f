"""graphformer.graphs.batch_graphs equals dgl.batch: edges, data, batch sizes; the cases it
does not take go to dgl.batch with its messages."""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import batch_graphs

import dgl
import pytest
import torch


def sample(n: int, seed: int, width: int = 3) -> dgl.DGLGraph:
    gen = torch.Generator().manual_seed(seed)
    e = int(torch.randint(0, 3 * n + 1, (1,), generator=gen))
    src = torch.randint(0, max(n, 1), (e,), generator=gen)
    dst = torch.randint(0, max(n, 1), (e,), generator=gen)
    graph = dgl.graph((src, dst), num_nodes=n)
    graph.ndata["x"] = torch.randn(n, width, generator=gen)
    graph.ndata["code"] = torch.randint(0, 5, (n,), generator=gen)
    graph.edata["w"] = torch.randn(e, 2, generator=gen)
    return graph


def assert_same(ours: dgl.DGLGraph, theirs: dgl.DGLGraph) -> None:
    for a, b in zip(ours.edges(), theirs.edges(), strict=True):
        assert torch.equal(a, b)
    assert ours.num_nodes() == theirs.num_nodes()
    assert torch.equal(ours.batch_num_nodes(), theirs.batch_num_nodes())
    assert torch.equal(ours.batch_num_edges(), theirs.batch_num_edges())
    for mine, other in ((ours.ndata, theirs.ndata), (ours.edata, theirs.edata)):
        assert sorted(mine.keys()) == sorted(other.keys())
        for key in list(other.keys()):
            assert mine[key].dtype == other[key].dtype and torch.equal(mine[key], other[key])


def test_batch_graphs_equals_dgl_batch_and_survives_edits():
    graphs = [sample(n, seed) for seed, n in enumerate([5, 1, 8, 3, 7])]
    graphs.insert(2, sample(0, 9))  # an empty sample
    assert_same(batch_graphs(graphs), dgl.batch(graphs))
    assert_same(batch_graphs(graphs), dgl.batch(graphs))  # cached edge arrays
    copies = [g.local_var() for g in graphs]  # share structures: cache hits
    assert_same(batch_graphs(copies), dgl.batch(copies))
    graphs[0].add_edges([0, 1], [2, 3], data={"w": torch.ones(2, 2)})  # in-place edit
    assert_same(batch_graphs(graphs), dgl.batch(graphs))
    unbatched = dgl.unbatch(dgl.batch(graphs[:3]))  # samples with batch sizes of length 1
    assert_same(batch_graphs(unbatched), dgl.batch(unbatched))


def test_batch_graphs_hands_other_cases_to_dgl_batch():
    graphs = [sample(4, 0), sample(6, 1)]
    batches = [dgl.batch(graphs), sample(3, 2)]  # a batch of batches
    assert_same(batch_graphs(batches), dgl.batch(batches))
    small = [sample(4, 0).int(), sample(6, 1).int()]  # (int() after dgl.batch breaks DGL)
    assert batch_graphs(small).idtype == torch.int32
    assert_same(batch_graphs(small), dgl.batch(small))
    mixed = [sample(4, 0), sample(5, 1)]
    mixed[1].ndata["x"] = mixed[1].ndata["x"].double()
    with pytest.raises(Exception) as ours:
        batch_graphs(mixed)
    with pytest.raises(Exception) as theirs:
        dgl.batch(mixed)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(dgl.DGLError, match="cannot be empty"):
        batch_graphs([])
