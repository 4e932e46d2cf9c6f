"""Downloaded benchmarks (ZINC, official PATTERN/CLUSTER, ogbg-molhiv, CiteSeer/PubMed):
tiny fixtures in the libraries' own on-disk layouts, fast errors when files are missing,
and the data configs."""

from __future__ import annotations

import functools
import math
import sys
import types
from pathlib import Path

from graphformer.cli.train import train
from graphformer.data import (
    GraphDataModule,
    MolHIVDataset,
    OfficialSBMDataset,
    SBMDataset,
    ZINC12kDataset,
)
from graphformer.data.datasets import citation, molhiv, sbm_official, zinc
from graphformer.nn import BlockConfig, GraphTransformer

import dgl
import hydra
import pytest
import torch
from training import compose_config

SIZES = {"train": 6, "val": 4, "test": 3}
MODES = {"train": "train", "val": "valid", "test": "test"}
METADATA = ("level", "num_classes", "num_categories", "in_dim", "edge_in_dim", "edge_categories")


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """DGL's default dir in the tmp dir, DGL's default repository, wandb offline."""
    monkeypatch.setenv("DGL_DOWNLOAD_DIR", str(tmp_path / "dgl-home"))
    monkeypatch.delenv("DGL_REPO", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.setenv("WANDB_SILENT", "true")


def random_graph(generator: torch.Generator, low: int = 5, high: int = 10) -> dgl.DGLGraph:
    """A small undirected graph (both directions stored), without self-loops."""
    n = int(torch.randint(low, high, (1,), generator=generator))
    src, dst = torch.triu_indices(n, n, offset=1)
    keep = torch.rand(len(src), generator=generator) < 0.4
    src, dst = src[keep], dst[keep]
    return dgl.graph((torch.cat([src, dst]), torch.cat([dst, src])), num_nodes=n)


def write_zinc(root: Path) -> Path:
    """``<root>/zinc_<hash>/ZincDGL_<mode>.bin`` as in ZINC12k.zip: int64 atom and bond
    codes, targets under the label key ``g_label``."""
    folder = zinc.SOURCE.folder(root)
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for split, count in SIZES.items():
        graphs = []
        for _ in range(count):
            graph = random_graph(generator)
            graph.ndata["feat"] = torch.randint(0, 28, (graph.num_nodes(),), generator=generator)
            graph.edata["feat"] = torch.randint(0, 4, (graph.num_edges(),), generator=generator)
            graphs.append(graph)
        labels = {"g_label": torch.randn(count, generator=generator)}
        dgl.save_graphs(str(folder / f"ZincDGL_{MODES[split]}.bin"), graphs, labels)
    return folder


def write_sbm(root: Path, name: str) -> Path:
    """DGL's official PATTERN/CLUSTER layout: int64 features, int16 labels, and a constant
    float edge feature of shape (E, 1)."""
    source = sbm_official.SOURCES[name]
    folder = source.folder(root)
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(1)
    vocab, classes = {"PATTERN": (3, 2), "CLUSTER": (7, 6)}[name]
    for split, count in SIZES.items():
        graphs = []
        for _ in range(count):
            graph = random_graph(generator)
            n = graph.num_nodes()
            graph.ndata["feat"] = torch.randint(0, vocab, (n,), generator=generator)
            graph.ndata["label"] = torch.randint(0, classes, (n,), generator=generator).short()
            graph.edata["feat"] = torch.ones(graph.num_edges(), 1)
            graphs.append(graph)
        dgl.save_graphs(str(folder / source.file(split)), graphs)
    return folder


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """A ``paths.data_dir``: DGL's folders under ``dgl/``."""
    root = tmp_path_factory.mktemp("data")
    write_zinc(root / "dgl")
    for name in ("PATTERN", "CLUSTER"):
        write_sbm(root / "dgl", name)
    return root


def one_batch(module: GraphDataModule) -> tuple[dgl.DGLGraph, torch.Tensor]:
    module.prepare_data()
    module.setup("fit")
    return next(iter(module.train_dataloader()))


# --- DGL's layout ----------------------------------------------------------------------------


def test_folders_are_where_dgl_looks(tmp_path):
    """The folder names DGL derives from its URLs (default repository)."""
    assert zinc.SOURCE.folder(tmp_path).name == "zinc_8af4f93b"
    assert sbm_official.SOURCES["PATTERN"].folder(tmp_path).name == "pattern_ce998509"
    assert sbm_official.SOURCES["CLUSTER"].folder(tmp_path).name == "cluster_2034468a"
    for dgl_class, source in [
        (dgl.data.ZINCDataset, zinc.SOURCE),
        (dgl.data.PATTERNDataset, sbm_official.SOURCES["PATTERN"]),
        (dgl.data.CLUSTERDataset, sbm_official.SOURCES["CLUSTER"]),
    ]:
        assert source.dgl_class is dgl_class
        assert [source.file(split) for split in SIZES] == [
            source.file_pattern.format(mode=mode) for mode in ("train", "valid", "test")
        ]


# --- ZINC --------------------------------------------------------------------------------------


def test_zinc_splits_shapes_dtypes_and_metadata(data_root):
    for split, count in SIZES.items():
        dataset = ZINC12kDataset(split, root=data_root / "dgl")
        assert len(dataset) == count
        graph, target = dataset[0]
        assert graph.ndata["feat"].dtype == graph.edata["feat"].dtype == torch.int64
        assert graph.ndata["feat"].shape == (graph.num_nodes(),)
        assert graph.edata["feat"].shape == (graph.num_edges(),)
        assert target.dtype == torch.float32 and target.shape == (1,)
    info = dataset.info
    assert (info.level, info.out_dim, info.num_categories) == ("graph", 1, 28)
    assert (info.in_dim, info.edge_in_dim, info.edge_categories) == (None, None, 4)
    # Targets are DGL's g_label, in order.
    _, stored = dgl.load_graphs(str(zinc.SOURCE.folder(data_root / "dgl") / "ZincDGL_test.bin"))
    targets = torch.cat([ZINC12kDataset("test", root=data_root / "dgl")[i][1] for i in range(3)])
    assert torch.equal(targets, stored["g_label"])
    first = ZINC12kDataset("train", root=data_root / "dgl", num_graphs=2)
    assert len(first) == 2 and first.cache_path.name == "ZincDGL_train_first2.bin"
    with pytest.raises(ValueError, match=r"num_graphs=7 but ZINC train .* holds 6 graphs"):
        ZINC12kDataset("train", root=data_root / "dgl", num_graphs=7)


def test_zinc_batches_through_the_datamodule_into_the_model(data_root):
    factory = functools.partial(ZINC12kDataset, root=data_root / "dgl")
    module = GraphDataModule(
        factory, batch_size=3, lap_pe_k=4, level="graph", out_dim=1, in_dim=None,
        num_categories=28, edge_in_dim=None, edge_categories=4,
    )  # fmt: skip
    graph, targets = one_batch(module)
    assert graph.batch_size == 3 and targets.shape == (3, 1) and targets.dtype == torch.float32
    assert graph.ndata["lap_pe"].shape == (graph.num_nodes(), 4)
    model = GraphTransformer(
        out_dim=1, block=BlockConfig(dim=8, num_heads=2), num_layers=1, num_categories=28,
        edge_categories=4, lap_pe_k=4, level="graph",
    )  # fmt: skip
    assert model(graph, graph.ndata["feat"], graph.edata["feat"]).shape == (3, 1)
    # The encodings are cached beside DGL's file.
    assert (zinc.SOURCE.folder(data_root / "dgl") / "ZincDGL_train.lap_pe_k4.bin").is_file()


def test_zinc_with_out_of_range_codes_is_refused(tmp_path):
    folder = write_zinc(tmp_path)
    graphs, labels = dgl.load_graphs(str(folder / "ZincDGL_train.bin"))
    graphs[0].ndata["feat"][0] = 28
    dgl.save_graphs(str(folder / "ZincDGL_train.bin"), graphs, labels)
    with pytest.raises(ValueError, match=r"atom codes in .*ZincDGL_train\.bin .*\[0, 28\)"):
        ZINC12kDataset("train", root=tmp_path)


# --- official PATTERN / CLUSTER --------------------------------------------------------------


@pytest.mark.parametrize("name", ["PATTERN", "CLUSTER"])
def test_official_sbm_matches_the_generated_attributes(name, data_root, tmp_path):
    generated = SBMDataset(name, "val", num_graphs=2, root=tmp_path / "sbm")
    for split, count in SIZES.items():
        dataset = OfficialSBMDataset(name, split, root=data_root / "dgl")
        assert len(dataset) == count
        assert {key: getattr(dataset.info, key) for key in METADATA} == {
            key: getattr(generated.info, key) for key in METADATA
        }
        graph = dataset[0]
        assert graph.ndata["feat"].dtype == graph.ndata["label"].dtype == torch.int64
        assert graph.ndata["feat"].shape == graph.ndata["label"].shape == (graph.num_nodes(),)
        assert set(graph.edata) == set(generated[0].edata) == set()
    factory = functools.partial(OfficialSBMDataset, name=name, root=data_root / "dgl")
    module = GraphDataModule(factory, batch_size=2, lap_pe_k=2, level="node")
    graph, labels = one_batch(module)
    assert graph.batch_size == 2 and torch.equal(labels, graph.ndata["label"])
    assert module.num_categories == generated.info.num_categories
    assert module.out_dim == generated.info.num_classes
    small = GraphDataModule(factory, batch_size=2, train_graphs=2, val_graphs=2, test_graphs=2)
    small.prepare_data()
    assert [len(small.split_dataset(split)) for split in SIZES] == [2, 2, 2]


# --- missing data ---------------------------------------------------------------------------

LOADERS = {
    "ZINC": (functools.partial(ZINC12kDataset), zinc.SOURCE),
    "PATTERN": (functools.partial(OfficialSBMDataset, "PATTERN"), sbm_official.SOURCES["PATTERN"]),
    "CLUSTER": (functools.partial(OfficialSBMDataset, "CLUSTER"), sbm_official.SOURCES["CLUSTER"]),
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_missing_files_fail_at_once_saying_how_to_place_them(name, tmp_path):
    loader, source = LOADERS[name]
    folder = source.folder(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        loader(split="val", root=tmp_path)
    message = str(error.value)
    assert message.startswith(f"{name}: data not found: no folder {folder}.")
    assert source.url in message and f"unzip it into {folder}" in message
    assert source.file("train") in message and "download=True" in message
    # An existing folder without the split's file: DGL would not download into it.
    folder.mkdir()
    (folder / source.file("train")).touch()
    for download in (False, True):
        with pytest.raises(FileNotFoundError, match=rf"{name}: .* lacks {source.file('val')}"):
            loader(split="val", root=tmp_path, download=download)


def test_missing_data_default_root_is_dgls_download_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no folder .*dgl-home/zinc_8af4f93b"):
        ZINC12kDataset("train")


@pytest.mark.parametrize("name", ["CiteSeer", "PubMed"])
def test_citeseer_and_pubmed_configs_fail_fast_without_files(name, tmp_path):
    cfg = compose_config([f"data={name.lower()}"], tmp_path / "out", tmp_path / "data")
    module = hydra.utils.instantiate(cfg.data)
    with pytest.raises(FileNotFoundError) as error:
        module.prepare_data()
    folder = citation.raw_folder(name, tmp_path / "data" / "dgl")
    message = str(error.value)
    assert name in message and str(folder) in message and "download=True" in message
    assert citation.download_url(name) in message


# --- ogbg-molhiv ------------------------------------------------------------------------------


def test_molhiv_without_ogb_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ogb", None)  # makes `import ogb` fail
    monkeypatch.setitem(sys.modules, "ogb.graphproppred", None)
    with pytest.raises(ImportError, match=r"ogbg-molhiv needs the ogb package.*pip install ogb"):
        MolHIVDataset("train", root=tmp_path)


class FakeOGBDataset:
    """Stands in for ``ogb.graphproppred.DglGraphPropPredDataset``: 6 molecules with 9 atom
    and 3 bond columns at their vocabularies' top codes, labels (1,), split 3 / 2 / 1."""

    def __init__(self, name: str, root: str) -> None:
        self.name, self.root = name, root
        generator = torch.Generator().manual_seed(2)
        self.graphs = [random_graph(generator) for _ in range(6)]
        for graph in self.graphs:
            top = [dim - 1 for dim in molhiv.ATOM_DIMS]
            graph.ndata["feat"] = torch.tensor(top).repeat(graph.num_nodes(), 1)
            graph.edata["feat"] = torch.tensor([dim - 1 for dim in molhiv.BOND_DIMS]).repeat(
                graph.num_edges(), 1
            )
        self.labels = torch.tensor([[0], [1], [0], [1], [1], [0]])

    def get_idx_split(self) -> dict[str, torch.Tensor]:
        return {"train": torch.arange(3), "valid": torch.arange(3, 5), "test": torch.arange(5, 6)}

    def __getitem__(self, index: int):
        return self.graphs[index], self.labels[index]

    def __len__(self) -> int:
        return len(self.graphs)


@pytest.fixture
def fake_ogb(monkeypatch):
    package = types.ModuleType("ogb")
    graphproppred = types.ModuleType("ogb.graphproppred")
    graphproppred.DglGraphPropPredDataset = FakeOGBDataset
    package.graphproppred = graphproppred
    monkeypatch.setitem(sys.modules, "ogb", package)
    monkeypatch.setitem(sys.modules, "ogb.graphproppred", graphproppred)


def write_molhiv(root: Path) -> Path:
    """OGB's folder layout (the fake dataset does not read the files' contents)."""
    folder = root / "ogbg_molhiv"
    for name in ("RELEASE_v1.txt", "raw/edge.csv.gz", *molhiv.SPLIT_FILES):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()
    return folder


def test_molhiv_missing_files_fail_at_once(fake_ogb, tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        MolHIVDataset("train", root=tmp_path)
    message = str(error.value)
    assert message.startswith(f"ogbg-molhiv: data not found: no folder {tmp_path / 'ogbg_molhiv'}")
    assert molhiv.URL in message and "download=True" in message
    folder = write_molhiv(tmp_path)
    (folder / "RELEASE_v1.txt").unlink()  # OGB would stop to ask on stdin
    with pytest.raises(FileNotFoundError, match=r"ogbg_molhiv exists but lacks RELEASE_v1\.txt"):
        MolHIVDataset("train", root=tmp_path, download=True)


def test_molhiv_shifts_columns_into_one_vocabulary(fake_ogb, tmp_path):
    write_molhiv(tmp_path)
    assert [len(MolHIVDataset(split, root=tmp_path)) for split in SIZES] == [3, 2, 1]
    dataset = MolHIVDataset("val", root=tmp_path)
    graph, label = dataset[1]
    assert label.dtype == torch.int64 and label.shape == () and int(label) == 1
    # The top code of each column lands just below the next column's range.
    assert graph.ndata["feat"][0].tolist() == [
        sum(molhiv.ATOM_DIMS[: i + 1]) - 1 for i in range(len(molhiv.ATOM_DIMS))
    ]
    assert int(graph.ndata["feat"].max()) == dataset.info.num_categories - 1 == 173
    assert int(graph.edata["feat"].max()) == dataset.info.edge_categories - 1 == 12
    factory = functools.partial(MolHIVDataset, root=tmp_path)
    module = GraphDataModule(factory, batch_size=1, level="graph", out_dim=2, num_categories=174)
    graph, labels = one_batch(module)
    assert graph.batch_size == 1 and labels.shape == (1,) and labels.dtype == torch.int64


# --- configs ----------------------------------------------------------------------------------

DECLARED = {
    "zinc": ("graph", 1, None, 28, None, 4),
    "citeseer": ("node", 6, 3703, None, None, None),
    "pubmed": ("node", 3, 500, None, None, None),
    "pattern_official": ("node", 2, None, 3, None, None),
    "cluster_official": ("node", 6, None, 7, None, None),
    "molhiv": ("graph", 2, None, 174, None, 13),
}


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_data_configs_declare_metadata_and_never_download(name, tmp_path):
    cfg = compose_config([f"data={name}"], tmp_path / "out", tmp_path / "data")
    keys = ("level", "out_dim", "in_dim", "num_categories", "edge_in_dim", "edge_categories")
    assert tuple(cfg.data[key] for key in keys) == DECLARED[name]
    assert cfg.data.dataset.download is False
    assert cfg.data.dataset.root.startswith(str(tmp_path / "data"))


def test_zinc_config_runs_fast_dev_run_on_the_fixture(data_root, tmp_path):
    overrides = [
        "data=zinc",
        "task=graph_regression",
        "model=graph_transformer",
        "debug=fast_dev_run",
        "data.batch_size=2",
        "data.lap_pe_k=2",
        "model.block.dim=8",
        "model.num_layers=1",
        "model.block.num_heads=2",
        "callbacks.rich_progress_bar=null",
        "callbacks.model_summary=null",
    ]
    cfg = compose_config(overrides, tmp_path / "run", data_root)
    assert cfg.model.edge_categories == 4 and cfg.model.level == "graph"
    mae = train(cfg)
    assert mae is not None and math.isfinite(mae)


@pytest.mark.parametrize("recipe", ["zinc_gt", "zinc_gps"])
def test_zinc_recipes_start_on_the_fixture(recipe, data_root, tmp_path):
    overrides = [f"experiment={recipe}", "debug=fast_dev_run", "logger=none", "callbacks=none"]
    cfg = compose_config([*overrides, "data.batch_size=2"], tmp_path / "run", data_root)
    assert cfg.task._target_ == "graphformer.tasks.GraphRegression"
    assert cfg.model.edge_categories == 4 and "reproduction" in cfg.tags
    mae = train(cfg)
    assert mae is not None and math.isfinite(mae)
