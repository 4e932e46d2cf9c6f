"""Large single-graph datasets: the contextual SBM generator and the ogbn-arxiv/products
loader (on a tiny fixture written in OGB's layout; no network)."""

from __future__ import annotations

import gzip
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import ContextualSBMDataset, OGBNodeDataset, contextual_sbm
from graphformer.data.cache import CacheWarning
from graphformer.data.datasets.csbm import edge_homophily
from graphformer.data.datasets.ogbn import URL, ogb_folder

import numpy as np
import pytest
import torch

# --- contextual SBM -------------------------------------------------------------------------


def test_csbm_has_the_asked_size_homophily_and_signal():
    src, dst, feat, label = contextual_sbm(20_000, 4, 12.0, 0.3, 16, 3.0, seed=1)
    assert feat.shape == (20_000, 16) and feat.dtype == np.float32 and label.dtype == np.int64
    assert set(np.unique(label)) == {0, 1, 2, 3}
    assert abs(len(src) / 20_000 - 12.0) < 0.2  # mean in-degree (self-loops, repeats dropped)
    assert (src != dst).all()
    keys = src * 20_000 + dst
    assert len(np.unique(keys)) == len(keys)  # no duplicates
    assert set(keys.tolist()) == set((dst * 20_000 + src).tolist())  # both directions
    assert abs((label[src] == label[dst]).mean() - 0.3) < 0.02
    # signal: the class means have norm 3, the noise is unit-variance per dimension
    means = np.stack([feat[label == c].mean(0) for c in range(4)])
    assert np.allclose(np.linalg.norm(means, axis=1), 3.0, atol=0.15)
    noise = feat - means[label]
    assert abs(noise.std() - 1.0) < 0.02


def test_csbm_is_deterministic_and_the_seed_matters():
    first, again = contextual_sbm(500, seed=3), contextual_sbm(500, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[3], contextual_sbm(500, seed=4)[3])


@pytest.mark.parametrize(
    ("key", "value"),
    [("num_nodes", 1), ("num_classes", 1), ("homophily", 1.5), ("feat_dim", 0), ("seed", -1)],
)
def test_csbm_refuses_bad_settings(key, value):
    with pytest.raises(ValueError, match=f"csbm: {key} must be"):
        contextual_sbm(**{"num_nodes": 100, key: value})


def test_csbm_dataset_caches_and_rebuilds_a_damaged_cache(tmp_path):
    dataset = ContextualSBMDataset(num_nodes=2000, feat_dim=8, homophily=0.9, root=tmp_path)
    graph = dataset[0]
    assert dataset.cache_path.is_file() and len(dataset) == 1
    assert dataset.info.out_dim == 5 and dataset.info.in_dim == 8
    masks = [graph.ndata[f"{s}_mask"] for s in ("train", "val", "test")]
    assert torch.equal(sum(m.int() for m in masks), torch.ones(2000, dtype=torch.int32))
    assert [int(m.sum()) for m in masks] == [1000, 500, 500]
    assert abs(edge_homophily(graph) - 0.9) < 0.03
    again = ContextualSBMDataset(num_nodes=2000, feat_dim=8, homophily=0.9, root=tmp_path)[0]
    assert torch.equal(again.ndata["feat"], graph.ndata["feat"])
    assert torch.equal(torch.stack(again.edges()), torch.stack(graph.edges()))
    data = dataset.cache_path.read_bytes()
    dataset.cache_path.write_bytes(data[: len(data) // 2])
    with pytest.warns(CacheWarning, match="CSBM graph cache"):
        rebuilt = ContextualSBMDataset(num_nodes=2000, feat_dim=8, homophily=0.9, root=tmp_path)
    assert torch.equal(rebuilt[0].ndata["label"], graph.ndata["label"])


def test_csbm_split_fractions_are_checked(tmp_path):
    with pytest.raises(ValueError, match="split fractions"):
        ContextualSBMDataset(num_nodes=100, train_fraction=0.8, val_fraction=0.3)


# --- OGB node datasets ------------------------------------------------------------------------


def _write(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as file:
        for row in rows:
            file.write(",".join(str(v) for v in np.atleast_1d(row)) + "\n")


def write_fixture(root: Path, name: str, num_nodes: int = 12) -> dict:
    """A tiny dataset in OGB's on-disk layout: a ring of directed edges plus one chord."""
    classes, width, split = {
        "ogbn-arxiv": (40, 128, "time"),
        "ogbn-products": (47, 100, "sales_ranking"),
    }[name]
    folder = ogb_folder(name, root)
    rng = np.random.default_rng(0)
    edges = [(i, (i + 1) % num_nodes) for i in range(num_nodes)] + [(0, 5)]
    feat = rng.standard_normal((num_nodes, width)).round(4)
    label = rng.integers(classes, size=num_nodes)
    _write(folder / "raw" / "edge.csv.gz", edges)
    _write(folder / "raw" / "node-feat.csv.gz", feat)
    _write(folder / "raw" / "node-label.csv.gz", label)
    _write(folder / "raw" / "num-node-list.csv.gz", [num_nodes])
    ids = {"train": range(0, 6), "valid": range(6, 9), "test": range(9, num_nodes)}
    for part, nodes in ids.items():
        _write(folder / "split" / split / f"{part}.csv.gz", list(nodes))
    return {"edges": edges, "feat": feat, "label": label}


@pytest.mark.parametrize("name", ["ogbn-arxiv", "ogbn-products"])
def test_ogb_layout_loads_with_features_labels_and_split_masks(tmp_path, name):
    fixture = write_fixture(tmp_path, name)
    dataset = OGBNodeDataset(name, root=tmp_path)
    graph = dataset[0]
    assert graph.num_nodes() == 12 and len(dataset) == 1
    torch.testing.assert_close(
        graph.ndata["feat"], torch.tensor(fixture["feat"], dtype=torch.float32)
    )
    assert graph.ndata["label"].tolist() == fixture["label"].tolist()
    assert graph.ndata["train_mask"].nonzero().squeeze(1).tolist() == list(range(6))
    assert graph.ndata["val_mask"].nonzero().squeeze(1).tolist() == [6, 7, 8]
    assert graph.ndata["test_mask"].sum() == 3
    pairs = set(zip(*(t.tolist() for t in graph.edges()), strict=True))
    expected = set(fixture["edges"]) | {(b, a) for a, b in fixture["edges"]}
    assert pairs == expected and graph.num_edges() == len(expected)  # both directions, once
    assert (dataset.info.out_dim, dataset.info.in_dim) == {
        "ogbn-arxiv": (40, 128),
        "ogbn-products": (47, 100),
    }[name]
    assert dataset.cache_path.is_file()
    cached = OGBNodeDataset(name, root=tmp_path)[0]  # from processed/, same graph
    assert torch.equal(cached.ndata["feat"], graph.ndata["feat"])


def test_arxiv_can_stay_directed(tmp_path):
    fixture = write_fixture(tmp_path, "ogbn-arxiv")
    graph = OGBNodeDataset("ogbn-arxiv", root=tmp_path, bidirected=False)[0]
    assert set(zip(*(t.tolist() for t in graph.edges()), strict=True)) == set(fixture["edges"])


def test_missing_ogb_files_name_the_folder_and_the_url(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ogbn_products \(no such folder\).*products\.zip"):
        OGBNodeDataset("ogbn-products", root=tmp_path)
    write_fixture(tmp_path, "ogbn-arxiv")
    (ogb_folder("ogbn-arxiv", tmp_path) / "split" / "time" / "valid.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing split/time/valid\.csv\.gz") as error:
        OGBNodeDataset("ogbn-arxiv", root=tmp_path)
    assert URL + "arxiv.zip" in str(error.value)


def test_another_datasets_files_are_refused(tmp_path):
    write_fixture(tmp_path, "ogbn-products")
    folder = ogb_folder("ogbn-products", tmp_path)
    arxiv = ogb_folder("ogbn-arxiv", tmp_path)
    (arxiv / "split").mkdir(parents=True)
    (folder / "raw").rename(arxiv / "raw")
    (folder / "split" / "sales_ranking").rename(arxiv / "split" / "time")
    with pytest.raises(ValueError, match=r"100 feature columns.*128 columns"):
        OGBNodeDataset("ogbn-arxiv", root=tmp_path)


def test_unknown_ogb_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="ogbn-arxiv"):
        OGBNodeDataset("ogbn-papers100M", root=tmp_path)
