"""Sampled mini-batches of one large graph (graphformer.data.SampledNodeDataModule): exact
with all neighbours, seeds marked and covered, deterministic, Cluster-GCN, refusals."""

from __future__ import annotations

import functools

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import ContextualSBMDataset, GraphDataModule, SampledNodeDataModule
from graphformer.data.sampling import check_fanouts
from graphformer.nn import GNN, BlockConfig, GraphTransformer
from graphformer.nn.layerwise import layerwise_inference

import dgl
import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    """A sparse CSBM graph (mean degree 2.5): 3-hop neighbourhoods are a small part of it."""
    root = tmp_path_factory.mktemp("csbm")
    return functools.partial(
        ContextualSBMDataset,
        num_nodes=3000,
        num_classes=3,
        avg_degree=2.5,
        feat_dim=8,
        homophily=0.8,
        root=root,
    )


def models() -> dict[str, torch.nn.Module]:
    """Two-layer models over every kind of local mixer the sampler must serve."""
    torch.manual_seed(0)
    block = functools.partial(BlockConfig, dim=16, num_heads=2)
    return {
        "gcn": GNN(3, 8, block(mixer="gcn"), num_layers=2),
        "sage": GNN(3, 8, block(mixer="sage"), num_layers=2),
        "gat": GNN(3, 8, block(mixer="gat"), num_layers=2),
        "attention": GraphTransformer(3, in_dim=8, block=block(mixer="attention"), num_layers=2),
        "gatedgcn": GraphTransformer(3, in_dim=8, block=block(mixer="gatedgcn"), num_layers=2),
    }


def seed_outputs(model, loader, split: str, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every seed's output from its own subgraph, in node order, and which nodes had one."""
    out = torch.full((num_nodes, 3), float("nan"))
    for subgraph, labels in loader:
        mask = subgraph.ndata[f"{split}_mask"]
        assert torch.equal(labels, subgraph.ndata["label"])
        out[subgraph.ndata[dgl.NID][mask]] = model(subgraph, subgraph.ndata["feat"])[mask]
    return out, ~out.isnan().any(dim=1)


@pytest.mark.parametrize("name", list(models()))
def test_all_neighbours_equal_the_full_graph(factory, name):
    """L + 1 hops with every neighbour: each seed's output equals its full-batch output."""
    data = SampledNodeDataModule(factory, fanouts=[-1] * 3, batch_size=200, seed=0)
    graph = data.graph
    model = models()[name].eval()
    with torch.no_grad():
        full = model(graph, graph.ndata["feat"])
        loader = SampledNodeDataModule(
            factory, fanouts=[-1] * 3, evaluation="sampled", eval_batch_size=25
        ).val_dataloader()
        out, seen = seed_outputs(model, loader, "val", graph.num_nodes())
    assert torch.equal(seen, graph.ndata["val_mask"])
    torch.testing.assert_close(out[seen], full[seen], rtol=1e-5, atol=1e-5)
    subgraph, _ = next(iter(loader))
    assert subgraph.num_nodes() < graph.num_nodes() / 2  # a neighbourhood, not the graph


def test_too_few_hops_are_not_exact_for_gcn(factory):
    """The control: with L hops GCN reads truncated out-degrees at the boundary."""
    data = SampledNodeDataModule(
        factory, fanouts=[-1], evaluation="sampled", eval_hops=2, eval_batch_size=25
    )
    graph = data.graph
    model = models()["gcn"].eval()
    with torch.no_grad():
        full = model(graph, graph.ndata["feat"])
        out, seen = seed_outputs(model, data.val_dataloader(), "val", graph.num_nodes())
    assert not torch.allclose(out[seen], full[seen], atol=1e-4)


def test_full_evaluation_is_the_whole_graph(factory):
    data = SampledNodeDataModule(factory)
    (graph, labels), *rest = list(data.test_dataloader())
    assert rest == [] and graph is data.graph and torch.equal(labels, graph.ndata["label"])


@pytest.mark.parametrize("name", list(models()))
def test_layerwise_evaluation_equals_the_full_graph(factory, name):
    """evaluation='layerwise': the whole graph, and the task's layer-wise inference in
    chunks of eval_batch_size destination nodes equals the full-graph forward."""
    data = SampledNodeDataModule(factory, evaluation="layerwise", eval_batch_size=700)
    full_data = SampledNodeDataModule(factory)
    assert data.layerwise_chunk_size == 700 and full_data.layerwise_chunk_size is None
    (graph, labels), *rest = list(data.val_dataloader())
    assert rest == [] and graph is data.graph and torch.equal(labels, graph.ndata["label"])
    model = models()[name].eval()
    with torch.no_grad():
        full = model(graph, graph.ndata["feat"])
    out = layerwise_inference(model, graph, graph.ndata["feat"], chunk_size=700)
    torch.testing.assert_close(out, full, rtol=1e-5, atol=1e-5)


def test_training_batches_mark_their_seeds_and_cover_the_split(factory):
    data = SampledNodeDataModule(factory, fanouts=[5, 3], batch_size=128, seed=1)
    data.setup("fit")
    graph, seen = data.graph, []
    for subgraph, labels in data.train_dataloader():
        mask = subgraph.ndata["train_mask"]
        count = int(mask.sum())
        assert mask[:count].all() and not mask[count:].any()  # the seeds come first
        assert "val_mask" not in subgraph.ndata and "test_mask" not in subgraph.ndata
        ids = subgraph.ndata[dgl.NID]
        assert graph.ndata["train_mask"][ids[mask]].all()
        assert torch.equal(labels, graph.ndata["label"][ids])
        torch.testing.assert_close(subgraph.ndata["feat"], graph.ndata["feat"][ids])
        # node-induced: every edge of the graph between two sampled nodes is there
        induced = graph.subgraph(ids)
        assert subgraph.num_edges() == induced.num_edges()
        seen.append(ids[mask])
    seen = torch.cat(seen)
    assert len(seen) == len(seen.unique()) == int(graph.ndata["train_mask"].sum())


def _batches(factory, seed: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    np.random.seed(0)
    data = SampledNodeDataModule(factory, fanouts=[4, 2], batch_size=256, seed=seed)
    return [subgraph.ndata[dgl.NID] for subgraph, _ in data.train_dataloader()]


def test_sampling_is_deterministic_under_the_seed(factory):
    first, again, other = _batches(factory, 3), _batches(factory, 3), _batches(factory, 4)
    assert len(first) == len(again) and all(map(torch.equal, first, again))
    assert not all(
        a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, other, strict=False)
    )


def test_cluster_batches_train_on_their_training_nodes(factory):
    data = SampledNodeDataModule(factory, sampler="cluster", num_parts=12, batch_size=3)
    graph, covered = data.graph, []
    for subgraph, _ in data.train_dataloader():
        ids = subgraph.ndata[dgl.NID]
        assert torch.equal(subgraph.ndata["train_mask"], graph.ndata["train_mask"][ids])
        covered.append(ids)
    assert len(covered) == 4
    covered = torch.cat(covered)
    assert len(covered) == len(covered.unique()) == graph.num_nodes()  # parts partition it
    cache = data.split_dataset("train").cache_path
    assert cache.with_name(f"{cache.stem}.metis12.pkl").is_file()


def test_one_dataset_object_serves_every_split(factory):
    data = SampledNodeDataModule(factory)
    assert data.split_dataset("train") is data.split_dataset("val") is data.split_dataset("test")
    assert (data.level, data.out_dim, data.in_dim) == ("node", 3, 8)
    assert data.graph is not None and data.__getstate__()["_graph"] is None  # never pickled
    assert data.__getstate__()["_splits"] == {}


@pytest.mark.parametrize(
    ("fanouts", "match"),
    [([], "non-empty"), ("10", "non-empty"), ([10, 0], "ints ≥ 1, or -1"), ([2.5], "ints")],
)
def test_bad_fanouts_are_refused(fanouts, match):
    with pytest.raises(ValueError, match=match):
        check_fanouts(fanouts)


def test_bad_settings_are_refused(factory):
    with pytest.raises(ValueError, match="sampler must be one of"):
        SampledNodeDataModule(factory, sampler="random_walk")
    with pytest.raises(ValueError, match="evaluation must be one of"):
        SampledNodeDataModule(factory, evaluation="chunked")  # 'layerwise' is one now
    with pytest.raises(ValueError, match="pairwise"):
        SampledNodeDataModule(factory, fields=["spd"])
    with pytest.raises(ValueError, match="num_parts"):
        SampledNodeDataModule(factory, num_parts=1)
    many = functools.partial(ManyGraphs)
    with pytest.raises(ValueError, match=r"holds 2 graphs.*GraphDataModule"):
        SampledNodeDataModule(many).split_dataset("train")
    assert GraphDataModule(many, batch_size=1).split_dataset("train")  # the right module


def test_use_ddp_without_a_process_group_is_refused(factory):
    with pytest.raises(ValueError, match=r"use_ddp=true needs a torch\.distributed"):
        SampledNodeDataModule(factory, use_ddp=True).train_dataloader()
    with pytest.raises(ValueError, match="use_ddp must be"):
        SampledNodeDataModule(factory, use_ddp="yes")


def test_cluster_without_a_cache_folder_is_refused():
    data = SampledNodeDataModule(
        functools.partial(ContextualSBMDataset, num_nodes=200, feat_dim=4, root=None),
        sampler="cluster",
        num_parts=4,
    )
    with pytest.raises(ValueError, match="no cache_path"):
        data.train_dataloader()


class ManyGraphs:
    """Two small node-level graphs: not one large graph."""

    def __init__(self, split: str = "train") -> None:
        self.graphs = []
        for _ in range(2):
            graph = dgl.rand_graph(10, 30)
            graph.ndata["feat"] = torch.randn(10, 4)
            graph.ndata["label"] = torch.randint(0, 2, (10,))
            self.graphs.append(graph)

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int):
        return self.graphs[index]
