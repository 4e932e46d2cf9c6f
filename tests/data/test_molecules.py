"""Molecules: the RDKit featuriser on molecules written here, the QM9 / zinc_logp / bbbp
loaders on small packages written here, then on a slice of the real package data."""

from __future__ import annotations

import ast
import dataclasses
import functools
import gzip
import json
import logging
import math
import sys
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import BBBPDataset, GraphDataModule, QM9Dataset, ZincLogPDataset
from graphformer.data.datasets import bbbp, molhiv, qm9, zinc_logp
from graphformer.data.molecules import chemistry, features, packages
from graphformer.data.molecules.dataset import random_split
from graphformer.fields import POSITION
from graphformer.nn import BlockConfig, GraphTransformer
from graphformer.tasks import GraphRegression

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
A, B = features.ATOM_OFFSETS, features.BOND_OFFSETS  # each column's start in the vocabulary


def rdkit():
    return pytest.importorskip("rdkit", reason="the molecules extra is not installed")


# --- without RDKit ----------------------------------------------------------------------------


def test_vocabularies_are_ogbs_as_for_molhiv():
    assert features.ATOM_DIMS == molhiv.ATOM_DIMS and features.BOND_DIMS == molhiv.BOND_DIMS
    assert (features.NUM_ATOM_CATEGORIES, features.NUM_BOND_CATEGORIES) == (174, 13)
    assert len(features.ATOM_COLUMNS) == 9 and len(features.BOND_COLUMNS) == 3


def test_no_module_imports_rdkit_at_import_time():
    """graphformer.data imports without RDKit: every rdkit import sits inside a function."""
    for path in (REPO / "graphformer").rglob("*.py"):
        text = path.read_text()
        if "rdkit" not in text:
            continue
        for node in ast.parse(text).body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(name.split(".")[0] == "rdkit" for name in names), path


def test_without_rdkit_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdkit", None)
    with pytest.raises(ImportError, match=r"pip install 'graphformer\[molecules\]'"):
        features.featurise(["C"])


def test_missing_package_names_the_install_command(tmp_path):
    absent = packages.PackageData("no_such_pkg", "no-such-pkg", "pip install x", (str(tmp_path),))
    with pytest.raises(ImportError, match=r"'no-such-pkg' package .*pip install x"):
        absent.file("data.csv")
    (tmp_path / "no_such_pkg").mkdir()
    with pytest.raises(FileNotFoundError, match=r"data\.csv is missing .*pip install x"):
        absent.file("data.csv")


def test_scaffold_split_puts_whole_groups_in_one_split_largest_first():
    scaffolds = ["a"] * 5 + ["b"] * 3 + ["c", "d"]
    split = chemistry.scaffold_split(scaffolds, (0.5, 0.3, 0.2))
    assert split == [0] * 5 + [1] * 3 + [2, 2]
    with pytest.raises(ValueError, match="summing to 1"):
        chemistry.scaffold_split(scaffolds, (0.5, 0.5, 0.5))


def test_random_split_sizes_and_seed():
    parts = random_split(20, (12, 4, None), seed=3)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [12, 4, 4]
    assert sorted(torch.cat(list(parts.values())).tolist()) == list(range(20))
    assert torch.equal(parts["val"], random_split(20, (12, 4, None), seed=3)["val"])
    with pytest.raises(ValueError, match="do not fit 20"):
        random_split(20, (18, 4, None), seed=0)


def test_qm9_target_names_are_checked():
    assert QM9Dataset.describe(targets=["gap", "u0"]).out_dim == 2
    with pytest.raises(ValueError, match=r"one or more of .*'gap'.*\['gapp'\] unknown"):
        QM9Dataset.describe(targets="gapp")


# --- the featuriser on molecules written here ------------------------------------------------


def codes(smiles: str, **kwargs):
    graph = features.smiles_to_graph(smiles, **kwargs)
    return (
        graph,
        graph.ndata["feat"] - torch.from_numpy(A),
        graph.edata["feat"] - torch.from_numpy(B),
    )


def test_known_atom_and_bond_codes():
    rdkit()
    graph, atoms, bonds = codes("c1ccccc1")  # benzene: aromatic SP2 CH in a ring
    assert (graph.num_nodes(), graph.num_edges()) == (6, 12)
    assert atoms[0].tolist() == [5, 0, 2, 5, 1, 0, 1, 1, 1]  # C, -, degree 2, charge 0, 1 H
    assert (bonds == torch.tensor([3, 0, 1])).all()  # aromatic, no stereo, conjugated
    graph, atoms, bonds = codes("CCCCCC")  # hexane: no ring, SP3, single bonds
    assert atoms[:, 8].tolist() == [0] * 6 and atoms[:, 6].tolist() == [2] * 6
    assert atoms[:, 4].tolist() == [3, 2, 2, 2, 2, 3] and (bonds[:, 0] == 0).all()
    _, atoms, _ = codes("C1CC1")  # cyclopropane: in a ring, not aromatic
    assert atoms[:, 8].tolist() == [1, 1, 1] and atoms[:, 7].tolist() == [0, 0, 0]
    _, atoms, _ = codes("CC(=O)[O-]")  # acetate: charge −1 → code 4
    assert atoms[:, 3].tolist() == [5, 5, 5, 4]
    _, atoms, _ = codes("[NH4+]")  # ammonium: charge +1, 4 Hs, no neighbours
    assert atoms[0, [0, 2, 3, 4]].tolist() == [6, 0, 6, 4]
    _, _, bonds = codes("CC#N")
    assert bonds[:, 0].tolist() == [0, 0, 2, 2]  # single, single, triple, triple
    _, atoms, _ = codes("C[C@H](N)O")
    assert atoms[1, 1] == 2 and atoms[0, 1] == 0  # tetrahedral CCW at the stereocentre
    _, _, bonds = codes("C/C=C/C")
    assert bonds[2:4, 1].tolist() == [2, 2]  # the double bond is E
    _, atoms, _ = codes("[CH3]")  # methyl radical
    assert atoms[0, 5] == 1
    _, atoms, _ = codes("[U]")  # uranium: Z − 1; no hybridisation listed → other
    assert atoms[0, 0] == 91 and atoms[0, 6] == 5
    _, atoms, _ = codes("[Fe+6]")  # a charge beyond ±5 → the "other" charge index
    assert atoms[0, 3] == 11


def test_a_disconnected_salt_is_one_graph_without_bonds_between_ions():
    rdkit()
    graph, atoms, _ = codes("[Na+].[Cl-]")
    assert (graph.num_nodes(), graph.num_edges()) == (2, 0)
    assert atoms[:, 0].tolist() == [10, 16] and atoms[:, 3].tolist() == [6, 4]
    graph, _, _ = codes("CC(=O)[O-].[Na+]")  # sodium acetate: 4 + 1 atoms, 3 bonds
    assert (graph.num_nodes(), graph.num_edges()) == (5, 6)


def test_explicit_hydrogens_and_positions():
    rdkit()
    graph, atoms, _ = codes("C", explicit_h=True)
    assert graph.num_nodes() == 5 and atoms[:, 0].tolist() == [5, 0, 0, 0, 0]
    xyz = torch.arange(9.0).reshape(3, 3).numpy()
    graph = features.smiles_to_graph("CCO", positions=xyz)
    assert graph.ndata[POSITION].dtype == torch.float32 and graph.ndata[POSITION].shape == (3, 3)
    with pytest.raises(ValueError, match=r"row 0 \('CCO'\) has 3 atoms .*shape \(2, 3\)"):
        features.smiles_to_graph("CCO", positions=xyz[:2])


def test_unparsable_smiles_are_counted_and_named_never_skipped_silently(caplog):
    rdkit()
    smiles = ["CCO", "C1CC", "c1ccccc1", "not a molecule", "", "CC"]
    with pytest.raises(
        features.InvalidSmilesError,
        match=r"3 of 6 SMILES of the input .*row 1 'C1CC', row 3 'not a molecule', row 4 ''"
        r".*skip_invalid=True",
    ):
        features.featurise(smiles)
    with caplog.at_level(logging.WARNING, logger="graphformer.data"):
        molecules = features.featurise(smiles, skip_invalid=True)
    assert "3 of 6 SMILES" in caplog.text and "skipped" in caplog.text
    assert molecules.rows.tolist() == [0, 2, 5] and molecules.invalid == (1, 3, 4)
    assert molecules.num_atoms.tolist() == [3, 6, 2]


def test_penalised_logp_is_logp_minus_sa_minus_large_rings():
    rdkit()
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    for smiles, cycle in (("CCO", 0), ("C1CCCCC1", 0), ("C1CCCCCCC1", 2)):
        mol = Chem.MolFromSmiles(smiles)
        sa = chemistry.sascorer().calculateScore(mol)
        assert 1 <= sa <= 10
        assert chemistry.penalised_logp(mol) == pytest.approx(Descriptors.MolLogP(mol) - sa - cycle)
    assert chemistry.scaffold(Chem.MolFromSmiles("CCc1ccccc1")) == "c1ccccc1"


# --- the loaders on packages written here ----------------------------------------------------

METHANE = [(0, 0, 0), (0.63, 0.63, 0.63), (-0.63, -0.63, 0.63), (-0.63, 0.63, -0.63)]
METHANOL = [(0, 0, 0), (1.43, 0, 0), (1.75, 0.9, 0), (-0.4, 1.0, 0), (-0.4, -0.5, 0.9)]
# N#CC#CC#N with coordinates listed C, C, C, C, N, N: not the SMILES order (QM9's row 476).
DINITRILE = [(1.16, 0, 0), (2.54, 0, 0), (3.74, 0, 0), (5.12, 0, 0), (0, 0, 0), (6.28, 0, 0)]
QM9_ROWS = [  # SMILES, elements, coordinates (Å), the gap in hartree
    ("C", "CHHHH", [*METHANE, (0.63, -0.63, -0.63)], 0.5048),
    ("CO", "COHHHH", [*METHANOL, (-0.4, -0.5, -0.9)], 0.3),
    ("C#N", "CNH", [(0, 0, 0), (1.16, 0, 0), (-1.07, 0, 0)], 0.4),
    ("N#CC#CC#N", "CCCCNN", DINITRILE, 0.2),
]


def qm9_csv(rows) -> str:
    columns = ["SMILES", "Elements", "XYZ_Ang", *(c for c, _, _ in qm9.TARGETS.values())]
    lines = [",".join(columns)]
    for i, (smiles, elements, xyz, gap) in enumerate(rows):
        symbols = "[" + ",".join(f"'{s}'" for s in elements) + "]"
        coords = "[" + ",".join("[" + ",".join(f"{v}." if v == 0 else str(v) for v in p) + "]"
                                for p in xyz) + "]"  # fmt: skip
        values = [float(i)] * len(qm9.TARGETS)
        values[list(qm9.TARGETS).index("gap")] = gap
        lines.append(f'"{smiles}","{symbols}","{coords}",' + ",".join(map(str, values)))
    return "\n".join(lines) + "\n"


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """qm9pack, molsets and qc-b3db, each a folder with a few molecules written here."""
    root = tmp_path / "packages"
    (root / "fake_qm9" / "data").mkdir(parents=True)
    parts = [QM9_ROWS[:2], QM9_ROWS[2:3], QM9_ROWS[3:]]
    for name, rows in zip(qm9.PARTS, parts, strict=True):
        (root / "fake_qm9" / name).write_text(qm9_csv(rows * 5))
    moses = root / "fake_moses" / "dataset" / "data"
    moses.mkdir(parents=True)
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C1CCCCCCC1", "CCN(CC)CC", "O=C=O"] * 5
    with gzip.open(moses / "train.csv.gz", "wt") as file:
        file.write("SMILES\n" + "\n".join(smiles) + "\n")
    (root / "fake_b3db").mkdir()
    b3db_rows = [
        ("c1ccccc1CC", "BBB+"), ("c1ccccc1CCO", "BBB+"), ("c1ccccc1CN", "BBB-"),
        ("c1ccccc1C(=O)O", "BBB-"), ("c1ccccc1CCC", "BBB+"), ("c1ccccc1CCCl", "BBB+"),
        ("C1CCCCC1N", "BBB+"), ("C1CCCCC1O", "BBB-"), ("CCO", "BBB+"), ("c1ccncc1C", "BBB-"),
    ]  # fmt: skip
    lines = ["NO.\tSMILES\tBBB+/BBB-"] + [f"{i}\t{s}\t{y}" for i, (s, y) in enumerate(b3db_rows)]
    (root / "fake_b3db" / bbbp.SOURCE_FILE).write_text("\n".join(lines) + "\n")
    fakes = ((qm9, "QM9PACK", "fake_qm9"), (zinc_logp, "MOLSETS", "fake_moses"))
    for module, constant, name in (*fakes, (bbbp, "B3DB", "fake_b3db")):
        fake = packages.PackageData(name, f"{name}-dist", "pip install fake", (str(root),))
        monkeypatch.setattr(module, constant, fake)
    monkeypatch.setitem(zinc_logp.SUBSETS, "tiny", (20, 5, 5))
    return tmp_path / "data"


def test_qm9_loader_targets_units_split_positions_and_cache(fake_packages, monkeypatch):
    rdkit()
    train = QM9Dataset("train", root=fake_packages, targets=["gap", "mu"])
    sizes = [len(QM9Dataset(s, root=fake_packages)) for s in ("val", "test")]
    assert (len(train), sizes) == (16, [2, 2])  # 20 molecules: 80 / 10 / 10 %
    assert train.info.out_dim == 2 and train.units == ("eV", "D")
    graph, target = train[0]
    assert target.dtype == torch.float32 and target.shape == (2,)
    gaps = {round(float(QM9Dataset(s, root=fake_packages)[i][1]), 4)
            for s in ("train", "val", "test") for i in range(2)}  # fmt: skip
    assert gaps <= {round(g * qm9.HARTREE_TO_EV, 4) for *_, g in QM9_ROWS}
    assert graph.ndata[POSITION].dtype == torch.float32
    assert graph.ndata[POSITION].shape == (graph.num_nodes(), 3)
    # The molecule listed in another order gets each heavy atom's own coordinates.
    dinitrile = next(g for g, _ in train if g.num_nodes() == 6)
    x = dinitrile.ndata[POSITION][:, 0].tolist()
    line = [0, 1.16, 2.54, 3.74, 5.12, 6.28]
    assert x == pytest.approx(line, abs=1e-5) or x == pytest.approx(line[::-1], abs=1e-5)
    assert dinitrile.ndata["feat"][0, 0] == 6  # atom 0 of N#CC#CC#N is N (Z − 1)
    # Cached: a second build reads the file and featurises nothing.
    monkeypatch.setattr(QM9Dataset, "compute", lambda self: pytest.fail("recomputed"))
    again = QM9Dataset("train", root=fake_packages, targets=["gap", "mu"])
    assert torch.equal(again.targets, train.targets)
    assert train.content_path.is_file() and train.content_path.parent.name == "qm9"


def test_zinc_logp_loader_computes_penalised_logp(fake_packages):
    rdkit()
    from rdkit import Chem

    parts = {
        s: ZincLogPDataset(s, root=fake_packages, subset="tiny") for s in ("train", "val", "test")
    }
    assert [len(d) for d in parts.values()] == [20, 5, 5]
    smiles = zinc_logp.read_moses_smiles()
    train = parts["train"]
    for i in (0, 7):
        row = int(train.content["source_rows"][train.indices[i]])
        expected = chemistry.penalised_logp(Chem.MolFromSmiles(smiles[row]))
        assert float(train[i][1]) == pytest.approx(expected, rel=1e-5)
        assert train[i][0].num_nodes() == Chem.MolFromSmiles(smiles[row]).GetNumAtoms()
    with pytest.raises(ValueError, match=r"subset must be one of \['12k', '250k'"):
        ZincLogPDataset("train", root=fake_packages, subset="1k")


def test_bbbp_loader_scaffold_split_labels_and_invalid_rows(fake_packages, caplog):
    rdkit()
    parts = {s: BBBPDataset(s, root=fake_packages) for s in ("train", "val", "test")}
    assert sum(len(d) for d in parts.values()) == 10
    assert parts["train"].targets.dtype == torch.int64
    assert set(torch.cat([d.targets for d in parts.values()]).tolist()) == {0, 1}
    from rdkit import Chem

    table = bbbp.read_b3db()
    seen = {}
    for split, dataset in parts.items():
        for row in dataset.molecules.rows[dataset.indices].tolist():
            key = chemistry.scaffold(Chem.MolFromSmiles(table["SMILES"][row]))
            assert seen.setdefault(key, split) == split  # a scaffold lives in one split
    # Groups by size: 6 benzenes and 2 cyclohexanes fill train (80 % of 10), then one each.
    assert [len(d) for d in parts.values()] == [8, 1, 1]
    # An unparsable SMILES stops the build, naming its row, unless skip_invalid.
    path = bbbp.B3DB.file(bbbp.SOURCE_FILE)
    path.write_text(path.read_text() + "10\tC1CC(\tBBB+\n")
    with pytest.raises(features.InvalidSmilesError, match=r"1 of 11 SMILES of B3DB .*row 10"):
        BBBPDataset("train", root=fake_packages / "other")
    with caplog.at_level(logging.WARNING, logger="graphformer.data"):
        kept = BBBPDataset("train", root=fake_packages / "other", skip_invalid=True)
    assert "row 10 'C1CC('" in caplog.text and len(kept) == 8


def test_molecules_batch_through_the_datamodule_into_a_model(fake_packages):
    rdkit()
    factory = functools.partial(QM9Dataset, root=fake_packages, targets="gap")
    module = GraphDataModule(factory, batch_size=4, rwse_k=3, level="graph", out_dim=1,
                             num_categories=174, edge_categories=13)  # fmt: skip
    graph, targets = next(iter(module.train_dataloader()))
    assert graph.batch_size == 4 and targets.shape == (4, 1)
    assert graph.ndata[POSITION].shape == (graph.num_nodes(), 3)
    block = BlockConfig(dim=8, num_heads=2, mixer="gine")
    model = GraphTransformer(1, block, num_layers=2, num_categories=174, edge_categories=13,
                             rwse_k=3, level="graph")  # fmt: skip
    assert model(graph, graph.ndata["feat"], graph.edata["feat"]).shape == (4, 1)


# --- standardised regression ---------------------------------------------------------------


def test_standardized_regression_learns_scaled_targets_and_reports_units():
    task = GraphRegression(torch.nn.Linear(1, 1), optimizer=torch.optim.Adam, standardize=True)
    with pytest.raises(ValueError, match="never computed"):
        task.loss(torch.zeros(2, 1), torch.zeros(2, 1))
    task.set_target_statistics(torch.tensor([[1.0], [3.0], [5.0]]))  # mean 3, std √(8/3)
    std = math.sqrt(8 / 3)
    out, target = torch.tensor([[0.5], [-1.0]]), torch.tensor([[3.0 + 0.5 * std], [3.0]])
    assert float(task.loss(out, target)) == pytest.approx(0.5)  # |0.5 − 0.5|, |−1 − 0|
    preds, values = task.metric_inputs(out, target)
    assert torch.allclose(preds, torch.tensor([3.0 + 0.5 * std, 3.0 - std]))
    assert torch.equal(values, target.reshape(-1))
    fresh = GraphRegression(torch.nn.Linear(1, 1), optimizer=torch.optim.Adam, standardize=True)
    fresh.load_state_dict(task.state_dict())  # the statistics travel in checkpoints
    assert torch.equal(fresh.target_mean, torch.tensor([3.0]))
    plain = GraphRegression(torch.nn.Linear(1, 1), optimizer=torch.optim.Adam)
    assert "target_mean" not in plain.state_dict()  # unchanged without standardize
    with pytest.raises(TypeError, match="standardize must be true or false"):
        GraphRegression(torch.nn.Linear(1, 1), optimizer=torch.optim.Adam, standardize="yes")


# --- a slice of the real package data (with the molecules extra) -----------------------------


def installed(data: packages.PackageData) -> bool:
    try:
        data.folder()
    except ImportError:
        return False
    return True


def test_real_qm9_slice():
    rdkit()
    if not installed(packages.QM9PACK):
        pytest.skip("qm9pack is not installed")
    table = qm9.read_qm9(limit=300)
    assert list(table["SMILES"][:3]) == ["C", "N", "O"]
    from rdkit import Chem

    for smiles, elements, xyz in zip(table["SMILES"], table["Elements"], table["XYZ_Ang"],
                                     strict=True):  # fmt: skip
        mol = Chem.MolFromSmiles(smiles)
        positions = qm9.heavy_positions(mol, *qm9.parse_atoms(elements, xyz))
        assert positions is not None and positions.shape == (mol.GetNumAtoms(), 3)
    gap = table["HOMO_LUMO_gap_au"].to_numpy() * qm9.HARTREE_TO_EV
    assert 3 < gap.mean() < 12  # QM9's gaps: a few eV


def test_real_b3db_and_moses_slices():
    rdkit()
    if not (installed(packages.B3DB) and installed(packages.MOLSETS)):
        pytest.skip("qc-b3db or molsets is not installed")
    table = bbbp.read_b3db()
    assert len(table) == 7807 and set(table["BBB+/BBB-"]) == set(bbbp.LABELS)
    molecules = features.featurise(table["SMILES"][:200].tolist(), what="B3DB")
    assert len(molecules) == 200
    smiles = zinc_logp.read_moses_smiles(limit=200)
    assert smiles[0] == "CCCS(=O)c1ccc2[nH]c(=NC(=O)OC)[nH]c2c1"  # MOSES' first molecule
    molecules = features.featurise(smiles, what="MOSES")
    assert int(molecules.atom_feat.max()) < features.NUM_ATOM_CATEGORIES


def test_dataset_classes_carry_their_facts():
    for cls in (ZincLogPDataset, BBBPDataset):
        assert dataclasses.asdict(cls.info)["num_categories"] == 174
    assert BBBPDataset.info.task == "classification" and ZincLogPDataset.info.out_dim == 1


# --- recipes ---------------------------------------------------------------------------------

MOLECULE_RECIPES = sorted(
    path.stem
    for path in (REPO / "conf" / "experiment").glob("*.yaml")
    if path.stem.startswith(("qm9_", "zinc_logp_", "bbbp_"))
)


def test_the_molecule_recipes_exist():
    expected = {f"qm9_{m}" for m in ("gine", "gatedgcn", "gps", "graphormer")}
    expected |= {f"zinc_logp_{m}" for m in ("gine", "gatedgcn", "gps")}
    expected |= {"bbbp_gine", "bbbp_gps"}
    assert expected <= set(MOLECULE_RECIPES)


@pytest.mark.parametrize("recipe", MOLECULE_RECIPES)
def test_molecule_recipe_composes_with_its_data_facts(recipe, tmp_path, data_dir):
    import hydra
    from training import compose_config

    cfg = compose_config([f"experiment={recipe}"], tmp_path, data_dir)
    bonds = None if recipe == "qm9_graphormer" else 13  # Graphormer reads no bond codes
    assert (cfg.data.num_categories, cfg.data.edge_categories) == (174, bonds)
    model = hydra.utils.instantiate(cfg.model)
    params = sum(p.numel() for p in model.parameters())
    if recipe.startswith("zinc_logp_"):  # GraphGPS's ZINC settings, within 500k parameters
        assert (cfg.model.num_layers, cfg.model.block.dim, cfg.data.batch_size) == (10, 64, 32)
        assert params <= 500_000 and cfg.trainer.max_epochs == 2000
    if recipe.startswith("qm9_"):
        assert cfg.task.standardize and cfg.data.dataset.targets == "gap"
    if recipe.startswith("bbbp_"):
        assert cfg.optimized_metric == "val/auroc" and cfg.optimized_mode == "max"
    assert "gps" not in recipe or (cfg.model.block.local_mixer, cfg.data.rwse_k) == ("gine", 20)


def test_a_molecule_recipe_runs_fast_dev_run_on_a_tiny_slice(fake_packages, tmp_path, data_dir):
    rdkit()
    from graphformer.cli.train import train

    from training import compose_config

    overrides = ["experiment=qm9_gine", "debug=fast_dev_run", "logger=none", "callbacks=none"]
    overrides += ["data.batch_size=2", "model.num_layers=2", "model.block.dim=16"]
    cfg = compose_config(overrides, tmp_path / "run", data_dir)
    cfg.paths.data_dir = str(fake_packages.parent)
    metric = train(cfg)
    assert metric is None or math.isfinite(metric)


def _compare_script():
    import importlib.util

    path = REPO / "experiments" / "molecules" / "compare.py"
    spec = importlib.util.spec_from_file_location("molecules_compare", path)
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    return compare


def test_the_pyg_comparison_names_the_missing_peer(monkeypatch):
    compare = _compare_script()
    monkeypatch.setitem(sys.modules, "torch_geometric", None)
    monkeypatch.setitem(sys.modules, "torch_geometric.nn", None)
    with pytest.raises(SystemExit, match="pip install torch_geometric"):
        compare.require_pyg()
    assert compare.schedule(10, 2)(0) < compare.schedule(10, 2)(2) == 1.0


def test_the_comparison_summarizes_draws_curves_and_resumes_finished_seeds(tmp_path):
    """A saved log (2 seeds, the second cut short): the table and curves of the finished
    seed; ``--resume`` keeps it, and refuses a log made with other settings."""
    pytest.importorskip("matplotlib")
    compare = _compare_script()
    models, epochs = ["pyg", "graphformer"], 3

    def history(seed, count):
        rows = []
        for epoch in range(count):
            for i, name in enumerate(models):
                value = 1.0 / (epoch + 1) + 0.1 * i + 0.01 * seed
                rows.append(
                    {
                        "epoch": epoch,
                        "model": name,
                        "train_loss": value,
                        "val": value,
                        "test": value,
                        "train_wall_s": 2.0 - i,
                        "train_cpu_s": 2.0 - i,
                        "seed": seed,
                    }
                )
        return rows

    log = {
        "tag": "toy",
        "command": "compare.py --tag toy",
        "settings": {"recipe": "toy"},
        "models": models,
        "seeds": [0, 1],
        "epochs": epochs,
        "sizes": [8, 4, 4],
        "regression": True,
        "environment": {"threads": 1, "loadavg_start": [0.5]},
        "wall_s": 60.0,
        "runs": [
            {"seed": 0, "params": {"pyg": 10, "graphformer": 10}, "history": history(0, 3)},
            {"seed": 1, "params": {"pyg": 10, "graphformer": 10}, "history": history(1, 1)},
        ],
    }
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(log))
    text = compare.summarize(path)
    assert "| graphformer | 10 | 0 | 2 | 0.4333 |" in text
    assert "wall median 0.50×" in text and "(1, 2)" in text  # seed 1 cut short, named
    assert path.with_suffix(".png").stat().st_size > 0
    fresh = {key: log[key] for key in ("settings", "models", "epochs", "sizes")}
    assert list(compare.finished_runs(path, fresh, epochs)) == [0]
    with pytest.raises(SystemExit, match="other sizes"):
        compare.finished_runs(path, {**fresh, "sizes": [9, 4, 4]}, epochs)
