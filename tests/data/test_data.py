"""The data package: SBM recipes, determinism, caches, Planetoid offline, the DataModule."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from graphformer.data import (
    CacheWarning,
    CitationDataset,
    GraphDataModule,
    SBMDataset,
    collate,
    generate,
)
from graphformer.data import cache as cache_module
from graphformer.data import field_cache as field_cache_module
from graphformer.data.datasets import citation, sbm
from graphformer.data.features.encodings import lap_pe_field, rwse_field
from graphformer.data.field_cache import (
    FieldBatch,
    WithFields,
    compute_field,
    field_path,
    load_or_compute_field,
)
from graphformer.data.info import DatasetInfo, class_info
from graphformer.fields import (
    FAMILIES,
    FIELDS,
    SPD,
    Field,
    get_field,
    register_family,
    register_field,
    width_field_name,
)

import dgl
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

# Cora in DGL's cache layout: in shared/ beside the checkout (or inside it).
REPO = Path(__file__).resolve().parents[2]
SHARED_DGL = next(
    (p for p in (REPO.parent / "shared/data/dgl", REPO / "shared/data/dgl") if p.is_dir()),
    REPO.parent / "shared/data/dgl",
)


@pytest.fixture(autouse=True)
def dgl_home(tmp_path, monkeypatch):
    """Keep DGL's default download dir inside the test's tmp dir."""
    monkeypatch.setenv("DGL_DOWNLOAD_DIR", str(tmp_path / "dgl-home"))


@pytest.fixture(scope="module")
def cora_root(tmp_path_factory) -> Path:
    """A writable copy of shared/data/dgl (DGL writes its processed cache beside the files)."""
    if not (SHARED_DGL / "cora_v2_d697a464").is_dir():
        pytest.skip(f"Cora's raw files are not at {SHARED_DGL}")
    root = tmp_path_factory.mktemp("dgl")
    shutil.copytree(SHARED_DGL, root, dirs_exist_ok=True)
    return root


def undirected_pairs(graph: dgl.DGLGraph) -> tuple[np.ndarray, np.ndarray]:
    """Each undirected edge once (i < j), after checking both directions are stored."""
    src, dst = (t.numpy() for t in graph.edges())
    n = graph.num_nodes()
    assert (src != dst).all(), "self-loop found"
    forward, backward = np.sort(src * n + dst), np.sort(dst * n + src)
    assert np.array_equal(forward, backward), "graph is not symmetric"
    assert len(np.unique(forward)) == len(forward), "duplicate edge"
    keep = src < dst
    return src[keep], dst[keep]


def block_densities(graphs: list[dgl.DGLGraph], block_of) -> tuple[float, float]:
    """Edge density within blocks and across blocks, pooled over ``graphs``."""
    edges_in = edges_out = pairs_in = pairs_out = 0
    for graph in graphs:
        block = block_of(graph)
        i, j = undirected_pairs(graph)
        same = block[i] == block[j]
        edges_in, edges_out = edges_in + same.sum(), edges_out + (~same).sum()
        counts = np.bincount(block)
        within = (counts * (counts - 1) // 2).sum()
        n = len(block)
        pairs_in, pairs_out = pairs_in + within, pairs_out + n * (n - 1) // 2 - within
    return edges_in / pairs_in, edges_out / pairs_out


# --- the SBM recipes -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_graphs() -> list[dgl.DGLGraph]:
    return generate("CLUSTER", "train", 200, seed=0)


@pytest.fixture(scope="module")
def pattern_graphs() -> list[dgl.DGLGraph]:
    return generate("PATTERN", "train", 200, seed=0)


def test_cluster_follows_the_recipe(cluster_graphs):
    sizes = np.array([g.num_nodes() for g in cluster_graphs])
    assert sizes.min() >= 6 * 5 and sizes.max() <= 6 * 34
    assert abs(sizes.mean() - 6 * 19.5) < 6  # std of the mean ≈ 1.5
    inside, across = block_densities(cluster_graphs, lambda g: g.ndata["label"].numpy())
    assert abs(inside - 0.55) < 0.02 and abs(across - 0.25) < 0.01, (inside, across)
    labels = torch.cat([g.ndata["label"] for g in cluster_graphs])
    assert np.allclose(torch.bincount(labels, minlength=6).numpy() / len(labels), 1 / 6, atol=0.02)
    for graph in cluster_graphs:
        feat, label = graph.ndata["feat"], graph.ndata["label"]
        assert feat.dtype == label.dtype == torch.int64
        assert sorted(label.unique().tolist()) == list(range(6))
        informative = feat > 0
        # Exactly one informative node per cluster, carrying its cluster id (1..6).
        assert sorted(label[informative].tolist()) == list(range(6))
        assert torch.equal(feat[informative], label[informative] + 1)


def test_pattern_follows_the_recipe(pattern_graphs):
    sizes = np.array([g.num_nodes() for g in pattern_graphs])
    assert sizes.min() >= 6 * 5 and sizes.max() <= 6 * 34
    assert abs(sizes.mean() - 6 * 19.5) < 8
    labels = torch.cat([g.ndata["label"] for g in pattern_graphs])
    assert set(labels.unique().tolist()) == {0, 1}
    assert 0.12 < labels.float().mean() < 0.22  # pattern ≈ 19.5 of ≈ 117 nodes
    feats = torch.cat([g.ndata["feat"] for g in pattern_graphs])
    assert np.allclose(torch.bincount(feats, minlength=3).numpy() / len(feats), 1 / 3, atol=0.02)
    # Edges per pair type: (base, base), (base, pattern), (pattern, pattern).
    edges, pairs = np.zeros(3), np.zeros(3)
    for graph in pattern_graphs:
        label = graph.ndata["label"].numpy()
        i, j = undirected_pairs(graph)
        edges += np.bincount(label[i] + label[j], minlength=3)
        m, n = label.sum(), len(label) - label.sum()
        pairs += [n * (n - 1) / 2, n * m, m * (m - 1) / 2]
    base, attach, inside = edges / pairs
    assert abs(attach - 0.5) < 0.02, attach
    assert abs(inside - 0.5) < 0.05, inside  # averaged over the 100 patterns
    # p = 0.5 inside the 5 communities, q = 0.35 across: ≈ 1/5 of base pairs are inside.
    assert 0.36 < base < 0.41, base


def test_sbm_edges_hit_p_and_q():
    block = np.repeat(np.arange(5), 30)
    rng = np.random.default_rng(0)
    graphs = [dgl.graph(sbm.sbm_edges(rng, block, 0.5, 0.35)) for _ in range(20)]
    inside, across = block_densities(graphs, lambda g: block)
    assert abs(inside - 0.5) < 0.02 and abs(across - 0.35) < 0.01, (inside, across)


def test_pattern_is_shared_by_consecutive_graphs_and_by_splits():
    """200 graphs over 100 patterns: graphs 2k and 2k+1 of every split plant pattern k."""

    def planted(graph):
        pattern = graph.ndata["label"] == 1
        i, j = undirected_pairs(graph)
        internal = int((pattern[i] & pattern[j]).sum())
        return sorted(graph.ndata["feat"][pattern].tolist()), internal

    train = generate("PATTERN", "train", 4, seed=3)  # ceil(4 / 100) = 1 graph per pattern
    assert planted(train[0]) != planted(train[1])
    train, val = generate("PATTERN", "train", 200, seed=3), generate("PATTERN", "val", 200, seed=3)
    assert planted(train[0]) == planted(train[1]) == planted(val[0]) == planted(val[1])
    assert planted(train[2]) == planted(val[3]) != planted(train[0])


def fingerprint(graphs) -> list:
    """Edges and node data of every graph, as plain lists."""
    return [
        (*(t.tolist() for t in g.edges()), *(g.ndata[k].tolist() for k in sorted(g.ndata)))
        for g in graphs
    ]


@pytest.mark.parametrize("name", ["CLUSTER", "PATTERN"])
def test_generation_is_deterministic_and_differs_across_seeds_and_splits(name):
    first = fingerprint(generate(name, "train", 3, seed=0))
    assert first == fingerprint(generate(name, "train", 3, seed=0))
    assert first != fingerprint(generate(name, "train", 3, seed=1))
    assert first != fingerprint(generate(name, "val", 3, seed=0))
    # Graph i does not depend on how many graphs the split has.
    assert first[:2] == fingerprint(generate(name, "train", 2, seed=0))


# --- SBMDataset and its cache ---------------------------------------------------------------


def test_sbm_dataset_attributes_and_benchmark_size(tmp_path):
    cluster = SBMDataset("CLUSTER", "test", root=tmp_path)  # benchmark size: 1000 graphs
    assert len(cluster) == 1000 and cluster.info.num_classes == 6
    assert cluster.info.num_categories == 7
    assert cluster.info.level == "node" and cluster.info.in_dim is None
    assert isinstance(cluster[0], dgl.DGLGraph)
    assert cluster.cache_path == tmp_path / "CLUSTER_test_n1000_seed0.bin"
    pattern = SBMDataset("pattern", "val", num_graphs=5, seed=2, root=tmp_path)
    assert (pattern.info.num_classes, pattern.info.num_categories) == (2, 3)
    assert pattern.cache_path.name == "PATTERN_val_n5_seed2.bin"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "ZINC"}, r"CLUSTER.*PATTERN.*'ZINC'"),
        ({"split": "dev"}, r"train.*val.*test.*'dev'"),
        ({"num_graphs": 0}, r"num_graphs must be a positive int.*got 0"),
        ({"seed": -1}, r"seed must be a non-negative int; got -1"),
    ],
)
def test_sbm_dataset_rejects_bad_arguments(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        SBMDataset(**{"num_graphs": 2, "root": tmp_path, **kwargs})


def test_sbm_cache_is_reused(tmp_path, monkeypatch):
    first = SBMDataset("CLUSTER", "train", num_graphs=8, root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CLUSTER_train_n8_seed0.bin"]

    def fail(*args, **kwargs):
        raise AssertionError("regenerated instead of loading the cache")

    monkeypatch.setattr(sbm, "cluster_graph", fail)
    second = SBMDataset("CLUSTER", "train", num_graphs=8, root=tmp_path)
    assert fingerprint(first) == fingerprint(second)
    with pytest.raises(AssertionError, match="regenerated"):  # other keys do regenerate
        SBMDataset("CLUSTER", "train", num_graphs=8, seed=1, root=tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "empty"])
def test_damaged_sbm_cache_is_rebuilt_with_a_warning(damage, tmp_path):
    original = SBMDataset("PATTERN", "val", num_graphs=6, root=tmp_path)
    path = original.cache_path
    data = path.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip a byte":
        data = bytearray(data)
        data[-200] ^= 0xFF  # inside the last graph's node data
        data = bytes(data)
    else:
        data = b""
    path.write_bytes(data)
    with pytest.warns(CacheWarning, match=r"PATTERN val cache .*unusable.*rebuilding"):
        rebuilt = SBMDataset("PATTERN", "val", num_graphs=6, root=tmp_path)
    assert fingerprint(rebuilt) == fingerprint(original)
    cache_module.verify(path)  # repaired on disk


def test_cache_from_another_generator_version_is_rebuilt(tmp_path, monkeypatch):
    SBMDataset("CLUSTER", "val", num_graphs=3, root=tmp_path)
    monkeypatch.setattr(sbm, "GENERATOR_VERSION", sbm.GENERATOR_VERSION + 1)
    with pytest.warns(CacheWarning, match=r"stored version=tensor\(\[1\]\), expected"):
        SBMDataset("CLUSTER", "val", num_graphs=3, root=tmp_path)
    SBMDataset("CLUSTER", "val", num_graphs=3, root=tmp_path)  # now current: no warning


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[:-1], "no graphformer trailer"),
        (lambda data: data[:-30], "no graphformer trailer"),
        (lambda data: b"x" + data[1:], "digest mismatch"),
        (lambda data: data[:5], "too short"),
        (lambda data: data + b"more", "no graphformer trailer"),
    ],
)
def test_verify_detects_any_damage(damage, reason, tmp_path):
    payload = b"abc" * 100
    path = cache_module.atomic_write(tmp_path / "c.bin", lambda tmp: Path(tmp).write_bytes(payload))
    cache_module.verify(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(cache_module.CacheError, match=reason):
        cache_module.verify(path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "cache.bin"
    cache_module.atomic_write(path, lambda tmp: Path(tmp).write_bytes(b"old"))

    def crash(tmp):
        Path(tmp).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        cache_module.atomic_write(path, crash)
    cache_module.verify(path)
    assert path.read_bytes()[: -cache_module.TRAILER_SIZE] == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["cache.bin"]  # no stray temp file


# --- Planetoid ------------------------------------------------------------------------------


def test_cora_loads_from_a_copy_of_the_shared_files(cora_root):
    dataset = CitationDataset("Cora", root=cora_root)
    graph = dataset[0]
    assert len(dataset) == 1 and graph.num_nodes() == 2708 and graph.num_edges() == 10556
    assert dataset.info.num_classes == 7 and dataset.info.in_dim == 1433
    assert dataset.info.level == "node"
    assert graph.ndata["feat"].dtype == torch.float32
    assert graph.ndata["label"].max() == 6
    masks = [int(graph.ndata[f"{split}_mask"].sum()) for split in ("train", "val", "test")]
    assert masks == [140, 500, 1000]
    assert citation.raw_folder("Cora", cora_root).name == "cora_v2_d697a464"


@pytest.mark.parametrize("name", ["Cora", "CiteSeer", "PubMed"])
def test_missing_planetoid_files_fail_fast_naming_dataset_and_folder(name, tmp_path):
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as error:
        CitationDataset(name, root=tmp_path / "empty")
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert name in message and str(citation.raw_folder(name, tmp_path / "empty")) in message
    assert "download=True" in message


def test_incomplete_planetoid_folder_is_named(cora_root, tmp_path):
    folder = tmp_path / "cora_v2_d697a464"
    shutil.copytree(cora_root / "cora_v2_d697a464", folder)
    (folder / "ind.cora_v2.graph").unlink()
    for download in (False, True):
        with pytest.raises(FileNotFoundError, match=r"cora_v2_d697a464.*ind\.cora_v2\.graph"):
            CitationDataset("Cora", root=tmp_path, download=download)


def test_read_only_planetoid_folder_is_refused(cora_root, monkeypatch):
    folder = citation.raw_folder("Cora", cora_root)
    real_access = os.access
    monkeypatch.setattr(
        citation.os, "access", lambda path, mode: Path(path) != folder and real_access(path, mode)
    )
    with pytest.raises(PermissionError, match=r"Cora: .*cora_v2_d697a464 is not writable"):
        CitationDataset("Cora", root=cora_root)


# --- GraphDataModule ------------------------------------------------------------------------


def flat(lists: list[list[int]]) -> list[int]:
    return [item for items in lists for item in items]


def cluster_module(root: Path, **kwargs) -> GraphDataModule:
    factory = functools.partial(SBMDataset, name="CLUSTER", root=root)
    defaults = dict(batch_size=4, train_graphs=12, val_graphs=6, test_graphs=5)
    return GraphDataModule(factory, **{**defaults, **kwargs})


def test_batches_are_batched_graphs_with_node_labels(tmp_path):
    module = cluster_module(tmp_path, lap_pe_k=4, rwse_k=3, level="node", out_dim=6)
    module.prepare_data()
    module.setup("fit")
    assert (module.level, module.num_classes, module.num_categories, module.in_dim) == (
        "node",
        6,
        7,
        None,
    )
    batches = list(module.train_dataloader())
    assert [graph.batch_size for graph, _ in batches] == [4, 4, 4]
    graph, labels = batches[0]
    assert torch.equal(labels, graph.ndata["label"]) and labels.dtype == torch.int64
    assert graph.ndata["feat"].shape == (graph.num_nodes(),)
    assert graph.ndata["lap_pe"].shape == (graph.num_nodes(), 4)
    assert graph.ndata["rwse"].shape == (graph.num_nodes(), 3)
    # val is in order and deterministic; train is shuffled, reproducibly for a seed.
    val = [g.batch_num_nodes().tolist() for g, _ in module.val_dataloader()]
    dataset = module.split_dataset("val")
    assert flat(val) == [dataset[i].num_nodes() for i in range(len(dataset))]
    order = [g.batch_num_nodes().tolist() for g, _ in batches]
    again = cluster_module(tmp_path, lap_pe_k=4, rwse_k=3)
    again.setup("fit")
    assert order == [g.batch_num_nodes().tolist() for g, _ in again.train_dataloader()]
    train = module.split_dataset("train")
    assert flat(order) != [train[i].num_nodes() for i in range(len(train))]


def test_encodings_are_cached_per_parameters(tmp_path, monkeypatch):
    module = cluster_module(tmp_path, lap_pe_k=4)
    module.prepare_data()
    stem = tmp_path / "CLUSTER_train_n12_seed0.bin"
    assert field_path(stem, "lap_pe_k4") == tmp_path / "CLUSTER_train_n12_seed0.lap_pe_k4.bin"
    assert field_path(stem, "lap_pe_k4").is_file()
    first = module.split_dataset("train")[0].ndata["lap_pe"]

    cluster_module(tmp_path, lap_pe_k=4, rwse_k=2).prepare_data()  # other parameters
    assert field_path(stem, "rwse_k2").is_file()
    cluster_module(tmp_path, lap_pe_k=2).prepare_data()  # another width: its own file
    assert field_path(stem, "lap_pe_k2").is_file()
    assert len(list(tmp_path.glob("CLUSTER_train_n12_seed0.*_k*.bin"))) == 3

    def fail(*args, **kwargs):
        raise AssertionError("recomputed instead of loading the cache")

    monkeypatch.setattr(field_cache_module, "compute_field", fail)
    reloaded = cluster_module(tmp_path, lap_pe_k=4)
    assert torch.equal(reloaded.split_dataset("train")[0].ndata["lap_pe"], first)
    # The wrapped dataset's graphs are left without the encodings.
    assert "lap_pe" not in reloaded.split_dataset("train").dataset[0].ndata


def test_damaged_encoding_cache_is_rebuilt_with_a_warning(tmp_path):
    cluster_module(tmp_path, rwse_k=3).prepare_data()
    path = tmp_path / "CLUSTER_train_n12_seed0.rwse_k3.bin"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.warns(CacheWarning, match="structural-encoding cache .* no graphformer trailer"):
        module = cluster_module(tmp_path, rwse_k=3)
        graph = module.split_dataset("train")[0]
    assert graph.ndata["rwse"].shape == (graph.num_nodes(), 3)
    path.write_bytes(b"\0" * 64)
    with pytest.warns(CacheWarning):
        cluster_module(tmp_path, rwse_k=3).split_dataset("train")


def test_cora_module_uses_one_graph_with_masks_for_every_split(cora_root):
    factory = functools.partial(CitationDataset, name="Cora", root=cora_root)
    module = GraphDataModule(factory, batch_size=1, rwse_k=2, in_dim=1433, out_dim=7)
    module.setup("fit")
    module.setup("test")
    assert (module.level, module.num_classes, module.in_dim, module.num_categories) == (
        "node",
        7,
        1433,
        None,
    )
    for loader in (module.train_dataloader(), module.val_dataloader(), module.test_dataloader()):
        (graph, labels), *rest = list(loader)
        assert not rest and graph.num_nodes() == 2708 and labels.shape == (2708,)
        assert {"train_mask", "val_mask", "test_mask", "rwse"} <= set(graph.ndata)
    assert len(list(cora_root.glob("cora_v2_d697a464/*.rwse_k2.bin"))) == 1
    with pytest.raises(ValueError, match=r"batch_size=2 is larger than the train split.*1 graph"):
        GraphDataModule(factory, batch_size=2).setup("fit")
    with pytest.raises(ValueError, match="takes no num_graphs"):
        GraphDataModule(factory, batch_size=1, train_graphs=10)


class GraphLevel:
    """A graph-level dataset: (graph, label) pairs, as DGL's graph-classification sets."""

    def __init__(self, split: str, size: int = 6) -> None:
        self.items = []
        for i in range(size):
            graph = dgl.rand_graph(3 + i, 4 + i)
            graph.ndata["feat"] = torch.randn(3 + i, 2)
            graph.edata["feat"] = torch.randn(4 + i, 5)
            self.items.append((graph, torch.tensor(i % 2)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def test_graph_level_batches_stack_labels_and_keep_edge_features():
    module = GraphDataModule(GraphLevel, batch_size=4, lap_pe_k=2)
    assert module.level == "graph" and module.num_classes is None
    graph, labels = next(iter(module.train_dataloader()))
    assert labels.shape == (4,) and graph.batch_size == 4
    assert graph.edata["feat"].shape == (graph.num_edges(), 5)
    assert graph.ndata["lap_pe"].shape == (graph.num_nodes(), 2)
    with pytest.raises(ValueError, match=r"declares level='node'.*has level='graph'"):
        GraphDataModule(GraphLevel, batch_size=2, level="node").setup("fit")


def test_loaders_with_workers_are_seeded_and_persistent(tmp_path):
    module = cluster_module(tmp_path, num_workers=1, seed=None)
    module.setup("fit")
    loader = module.train_dataloader()
    assert loader.persistent_workers and loader.worker_init_fn is not None
    graph, labels = next(iter(loader))
    assert graph.batch_size == 4 and len(labels) == graph.num_nodes()


def test_lightning_ddp_reinstantiation_keeps_the_loader_working(tmp_path):
    """Lightning rebuilds the loader with a DistributedSampler (as it does under DDP)."""
    from lightning.fabric.utilities.data import _replace_dunder_methods
    from lightning.pytorch.utilities.data import _update_dataloader
    from torch.utils.data import DataLoader, DistributedSampler

    module = cluster_module(tmp_path)
    module.setup("fit")
    with _replace_dunder_methods(DataLoader, "dataset"):
        loader = module.train_dataloader()
    shards = []
    for rank in (0, 1):
        sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=rank, shuffle=True)
        rebuilt = _update_dataloader(loader, sampler)
        assert type(rebuilt) is type(loader) and rebuilt.collate_fn is collate
        batches = list(rebuilt)
        assert [g.batch_size for g, _ in batches] == [4, 2]
        shards.append(sorted(i for i in sampler))
    assert sorted(shards[0] + shards[1]) == list(range(12))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"batch_size must be a positive int; got 0"),
        ({"batch_size": -3}, r"batch_size must be a positive int; got -3"),
        ({"num_workers": -1}, r"num_workers must be an int ≥ 0; got -1"),
        ({"lap_pe_k": -1}, r"lap_pe_k must be an int ≥ 0"),
        ({"train_graphs": 0}, r"train_graphs must be a positive int or None; got 0"),
        ({"level": "edge"}, r"level must be one of \('node', 'graph'\); got 'edge'"),
        ({"level": None}, r"level must be one of \('node', 'graph'\); got None"),
    ],
)
def test_module_rejects_bad_arguments(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        cluster_module(tmp_path, **kwargs)


def test_module_errors_name_the_problem(tmp_path, cora_root):
    with pytest.raises(ValueError, match=r"batch_size=8 is larger than the val split of "):
        cluster_module(tmp_path, batch_size=8).setup("fit")
    with pytest.raises(ValueError, match=r"the test split of empty is empty"):
        GraphDataModule(lambda split: [], batch_size=1, name="empty").setup("test")
    with pytest.raises(ValueError, match=r"declares num_categories=3 .* has num_categories=7"):
        cluster_module(tmp_path, num_categories=3).setup("fit")
    with pytest.raises(ValueError, match=r"declares in_dim=None .* has in_dim=1433"):
        factory = functools.partial(CitationDataset, name="Cora", root=cora_root)
        GraphDataModule(factory, batch_size=1, in_dim=None).setup("fit")
    with pytest.raises(TypeError, match="_partial_: true"):
        GraphDataModule(SBMDataset("CLUSTER", num_graphs=2, root=tmp_path))


def test_encodings_are_identical_when_recomputed_in_another_process():
    """scipy's ARPACK draws a fresh start vector per process unless given one: a fresh data
    folder must still give the same Laplacian PE, or the same seed trains differently."""
    script = (
        "import hashlib, graphformer, numpy as np\n"
        "from graphformer.data import generate, lap_pe_field\n"
        "from graphformer.data.field_cache import compute_field\n"
        "graphs = generate('CLUSTER', 'train', 12, seed=0)\n"
        "pe = compute_field(lap_pe_field(8), graphs)['lap_pe_k8']\n"
        "print(hashlib.sha1(pe.numpy().tobytes()).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(digests) == 1


# --- node fields: the data handshake (graphformer.fields) -----------------------------------

COMPUTED: list[int] = []


def in_degree(graph: dgl.DGLGraph) -> torch.Tensor:
    """A throwaway field: each node's in-degree as a float (N, 1); counts its calls."""
    COMPUTED.append(graph.num_nodes())
    return graph.in_degrees().float().unsqueeze(1)


def test_a_new_field_is_computed_cached_and_batched_when_asked_by_name(tmp_path, monkeypatch):
    """What a mixer that needs a new node field adds: one registered Field. The data module
    computes it once per split, caches it beside the dataset and batches it, by name."""
    monkeypatch.setitem(FIELDS, "in_degree", None)  # removed again after the test
    register_field(Field("in_degree", in_degree, description="in-degrees"), replace=True)
    COMPUTED.clear()
    module = cluster_module(tmp_path, fields=["in_degree"])
    module.prepare_data()
    assert len(COMPUTED) == 12 + 6 + 5, "once per graph of every split"
    path = field_path(tmp_path / "CLUSTER_train_n12_seed0.bin", "in_degree")
    assert path == tmp_path / "CLUSTER_train_n12_seed0.in_degree.bin" and path.is_file()
    graph, _ = next(iter(module.val_dataloader()))
    assert torch.equal(graph.ndata["in_degree"], graph.in_degrees().float().unsqueeze(1))
    COMPUTED.clear()
    again = cluster_module(tmp_path, fields=("in_degree",))
    cached, _ = next(iter(again.val_dataloader()))
    assert COMPUTED == [], "the second module reads the cache"
    assert torch.equal(cached.ndata["in_degree"], graph.ndata["in_degree"])
    # A new computation (version 2) gets its own file, never the old one.
    register_field(Field("in_degree", in_degree, version=2), replace=True)
    assert field_path(tmp_path / "x.bin", "in_degree") == tmp_path / "x.in_degree-v2.bin"
    cluster_module(tmp_path, fields=("in_degree",)).split_dataset("train")
    assert len(COMPUTED) == 12


def test_unknown_field_names_list_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"no field named 'sdp' is registered; known .*'spd'"):
        cluster_module(tmp_path, fields=("sdp",))
    with pytest.raises(ValueError, match=r"no field named 'hops' .*register_field"):
        get_field("hops")
    assert get_field(SPD) is FIELDS[SPD] and get_field(FIELDS[SPD]) is FIELDS[SPD]


def test_fields_are_validated_and_registered_once():
    with pytest.raises(ValueError, match=r"already registered.*replace=True"):
        register_field(Field(SPD, in_degree))
    with pytest.raises(ValueError, match=r"Field name must be .*got 'two words'"):
        Field("two words", in_degree)
    with pytest.raises(TypeError, match=r"compute must be a callable"):
        Field("x", compute=3)
    with pytest.raises(ValueError, match=r"version must be an int ≥ 1; got 0"):
        Field("x", in_degree, version=0)
    with pytest.raises(TypeError, match=r"pad must be a number .* got 'a'"):
        Field("x", in_degree, pad="a")
    with pytest.raises(TypeError, match=r"takes a graphformer.fields.Field"):
        register_field("x")
    graph = dgl.rand_graph(4, 6)
    with pytest.raises(ValueError, match=r"pairwise field 'x': compute must return \(4, 4\)"):
        Field("x", in_degree, pad=0)(graph)
    with pytest.raises(ValueError, match=r"one row per node \(4\); got \(3,\)"):
        Field("x", lambda g: torch.zeros(3))(graph)


def test_encoders_ask_the_data_for_the_width_they_read(tmp_path):
    """LapPE/RWSE are fields of a family: the encoder of width k lists ``lap_pe_k<k>``, the data
    computes it by that name and stores it as ``ndata['lap_pe']``; nothing else to set."""
    from graphformer.nn import BlockConfig, GraphTransformer

    model = GraphTransformer(
        6, BlockConfig(dim=8, num_heads=2), num_layers=1, num_categories=7, lap_pe_k=4, rwse_k=3
    )
    assert model.needs == ("lap_pe_k4", "rwse_k3")
    module = cluster_module(tmp_path, fields=model.needs)
    graph = module.split_dataset("train")[0]
    assert graph.ndata["lap_pe"].shape == (graph.num_nodes(), 4)
    assert graph.ndata["rwse"].shape == (graph.num_nodes(), 3)
    assert model(graph, graph.ndata["feat"]).shape == (graph.num_nodes(), 6)
    # The shorthand asks for the same field: one cache file, one attachment.
    same = cluster_module(tmp_path, lap_pe_k=4, fields=model.needs)
    assert [field.name for field in same.fields] == ["lap_pe_k4", "rwse_k3"]
    assert torch.equal(same.split_dataset("train")[0].ndata["lap_pe"], graph.ndata["lap_pe"])


def test_field_families_are_checked(tmp_path):
    lap = get_field("lap_pe_k3")
    assert (lap.name, lap.key, lap.pad) == ("lap_pe_k3", "lap_pe", None) and lap.settings
    assert get_field("lap_pe_k3") is lap
    with pytest.raises(ValueError, match=r"no field named 'lap_pe_k0' .*'lap_pe_k<k>'"):
        get_field("lap_pe_k0")
    with pytest.raises(ValueError, match=r"width of field 'rwse' must be an int ≥ 1; got 0"):
        width_field_name("rwse", 0)
    with pytest.raises(TypeError, match=r"takes an ndata key and a callable"):
        register_family("lap pe", lambda k: None)
    register_family("bad", lambda k: Field(f"bad_k{k}", in_degree))  # key 'bad_k2', not 'bad'
    try:
        with pytest.raises(TypeError, match=r"must make a Field named 'bad_k2' with key 'bad'"):
            get_field("bad_k2")
    finally:
        FAMILIES.pop("bad")
    with pytest.raises(ValueError, match=r"key must be an identifier-like .* got 'a b'"):
        Field("x", in_degree, key="a b")
    with pytest.raises(
        ValueError,
        match=r"fields 'lap_pe_k4' and 'lap_pe_k8' are both stored as ndata\['lap_pe'\]",
    ):
        cluster_module(tmp_path, lap_pe_k=4, fields=("lap_pe_k8",))


def test_pairwise_fields_cache_in_the_spd_layout(tmp_path):
    """The spd field's cache is today's <stem>.spd.bin: files written before stay valid."""
    graphs = [dgl.rand_graph(n, 2 * n) for n in (3, 5)]
    stored = load_or_compute_field(SPD, graphs, field_path(tmp_path / "d.bin", SPD))
    assert (tmp_path / "d.spd.bin").is_file() and stored[SPD].shape == (9 + 25,)
    assert stored[SPD].dtype == torch.int16


# --- the dataset contract: DatasetInfo and the config resolver -------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": "edge"}, r"level must be one of \('node', 'graph'\); got 'edge'"),
        ({"task": "ranking"}, r"task must be one of \('classification', 'regression'\)"),
        ({"out_dim": 0}, r"out_dim must be a positive int .* got 0"),
        ({"out_dim": True}, r"out_dim must be a positive int .* got True"),
        ({"in_dim": -2}, r"DatasetInfo.in_dim must be a positive int or None; got -2"),
        ({"in_dim": 3, "num_categories": 4}, r"node features are continuous \(in_dim=3\) or"),
        ({"edge_in_dim": 1, "edge_categories": 2}, r"edge features .*edge_categories=2"),
        ({"splits": ("train", "dev")}, r"splits must be a non-empty tuple of .*'dev'"),
        ({"splits": ()}, r"splits must be a non-empty tuple"),
    ],
)
def test_dataset_info_refuses_bad_values(kwargs, message):
    good = {"level": "node", "task": "classification", "out_dim": 3, "num_categories": 4}
    with pytest.raises(ValueError, match=message):
        DatasetInfo(**{**good, **kwargs})


def test_dataset_info_is_declared_once_per_class():
    assert SBMDataset.describe("pattern") == DatasetInfo("node", "classification", 2, None, 3)
    assert CitationDataset.describe("PubMed").in_dim == 500
    assert DatasetInfo("graph", "regression", 1).num_classes is None
    assert DatasetInfo("graph", "classification", 2, splits=["train"]).splits == ("train",)
    with pytest.raises(TypeError, match=r"declares no DatasetInfo: .*info = DatasetInfo"):
        class_info(GraphLevel)


def test_the_resolver_reads_the_facts_from_the_dataset_class(tmp_path):
    cfg = OmegaConf.create(
        {
            "data": {
                "dataset": {"_target_": "graphformer.data.SBMDataset", "name": "PATTERN"},
                "out_dim": "${graphformer.data_info:out_dim}",
                "num_categories": "${graphformer.data_info:num_categories}",
                "level": "${graphformer.data_info:level}",
                "bad": "${graphformer.data_info:width}",
            },
            "model": {"out_dim": "${data.out_dim}"},
        }
    )
    assert (cfg.model.out_dim, cfg.data.num_categories, cfg.data.level) == (2, 3, "node")
    with pytest.raises(InterpolationResolutionError, match=r"KEY must be one of \('level', 'task'"):
        OmegaConf.select(cfg, "data.bad")
    cfg.data.dataset._target_ = "tests.nowhere.Dataset"
    with pytest.raises(InterpolationResolutionError, match=r"cannot be imported"):
        OmegaConf.select(cfg, "data.out_dim")
    # A hand override that contradicts the dataset is refused when the data is built.
    with pytest.raises(ValueError, match=r"declares out_dim=5 but the dataset .* out_dim=6"):
        cluster_module(tmp_path, out_dim=5).setup("fit")
    assert cluster_module(tmp_path).info == SBMDataset.describe("CLUSTER")


def test_attached_fields_leave_the_dataset_unchanged_and_batch_with_their_sizes(tmp_path):
    """WithFields attaches encodings to a copy of each graph (the fast column path): the
    dataset's own graph keeps its features, the copy holds the sample's rows, and
    dgl.batch of copies (which share the source's cached sizes) has the right sizes."""
    module = cluster_module(tmp_path, lap_pe_k=4)
    dataset = module.split_dataset("val")
    source = dataset.dataset[1]
    before = sorted(source.ndata)
    first, second = dataset[0], dataset[1]
    assert sorted(source.ndata) == before and "lap_pe" not in source.ndata
    offset = dataset.dataset[0].num_nodes()
    rows = dataset.fields["lap_pe_k4"][2][offset : offset + source.num_nodes()]
    assert second is not source and torch.equal(second.ndata["lap_pe"], rows)
    assert second.ndata["lap_pe"].shape == (source.num_nodes(), 4)
    batch = dgl.batch([first, second, dataset[1]])
    sizes = [first.num_nodes(), source.num_nodes(), source.num_nodes()]
    assert batch.batch_num_nodes().tolist() == sizes
    assert batch.batch_num_edges().tolist() == [
        first.num_edges(),
        source.num_edges(),
        source.num_edges(),
    ]
    assert batch.ndata["lap_pe"].shape == (sum(sizes), 4)


def assert_same_batch(a, b) -> None:
    (graph_a, labels_a), (graph_b, labels_b) = a, b
    assert torch.equal(labels_a, labels_b)
    assert graph_a.batch_num_nodes().tolist() == graph_b.batch_num_nodes().tolist()
    assert graph_a.batch_num_edges().tolist() == graph_b.batch_num_edges().tolist()
    assert [t.tolist() for t in graph_a.edges()] == [t.tolist() for t in graph_b.edges()]
    for frame_a, frame_b in ((graph_a.ndata, graph_b.ndata), (graph_a.edata, graph_b.edata)):
        assert list(frame_a) == list(frame_b)
        for key in frame_a:
            assert torch.equal(frame_a[key], frame_b[key]), key


def test_loader_batches_fields_per_batch_exactly_as_per_sample(tmp_path):
    """The loader fetches a WithFields batch as a FieldBatch, which collate batches from the
    wrapped graphs with each field attached once per batch: the same batch as collating the
    per-sample copies, for encodings and a pairwise field (and two wrappers deep)."""
    module = cluster_module(tmp_path, lap_pe_k=4, rwse_k=3, fields=["spd"])
    dataset = module.split_dataset("val")
    assert isinstance(dataset, WithFields)
    raw = dataset.dataset
    graphs = [raw[i] for i in range(len(raw))]
    lap, spd = lap_pe_field(4), get_field("spd")
    deep = WithFields(WithFields(raw, {lap.name: compute_field(lap, graphs)}), {})
    deep = WithFields(deep.dataset, {spd.name: compute_field(spd, graphs)})
    assert isinstance(deep.dataset, WithFields)
    assert_same_batch(collate(deep.__getitems__([1, 2])), collate([deep[1], deep[2]]))
    indices = [4, 0, 3]
    batch = dataset.__getitems__(indices)
    assert isinstance(batch, FieldBatch) and len(batch) == 3
    samples = [dataset[i] for i in indices]
    assert torch.equal(batch[1].ndata["spd"], samples[1].ndata["spd"])
    assert [g.num_nodes() for g in batch[:2]] == [g.num_nodes() for g in samples[:2]]
    assert_same_batch(collate(batch), collate(samples))
    # Through the loader (which calls __getitems__), in the loader's order.
    graph, labels = next(iter(module.val_dataloader()))
    assert_same_batch((graph, labels), collate([dataset[i] for i in range(4)]))


def test_field_batches_of_graph_level_samples_and_stale_fields(tmp_path):
    graphs = [dgl.rand_graph(n, 2 * n) for n in (3, 5, 4)]
    for graph in graphs:
        graph.ndata["feat"] = torch.randn(graph.num_nodes(), 2)
    samples = [(graph, torch.tensor(float(i))) for i, graph in enumerate(graphs)]
    fields = [lap_pe_field(2), rwse_field(3)]
    dataset = WithFields(samples, {f.name: compute_field(f, graphs) for f in fields})
    batch = dataset.__getitems__([2, 0])
    assert_same_batch(collate(batch), collate([dataset[2], dataset[0]]))
    # Fields computed for other graphs are refused per batch as per sample.
    samples[0] = (dgl.rand_graph(6, 4), torch.tensor(0.0))
    samples[0][0].ndata["feat"] = torch.randn(6, 2)
    with pytest.raises(ValueError, match=r"graph 0 has 6 nodes but its fields were computed for 3"):
        collate(dataset.__getitems__([2, 0]))
    with pytest.raises(ValueError, match=r"graph 0 has 6 nodes but its fields were computed for 3"):
        dataset[0]
