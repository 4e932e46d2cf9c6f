"""Reproduction recipes start, and experiments/plot.py turns run logs into tables and figures."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli.train import train
from graphformer.nn import BlockConfig, GraphTransformer

import pytest
import torch
from training import SHARED_DGL, compose_config, config_dir

REPO = Path(__file__).resolve().parents[1]
#: Small data and one batch: each recipe only has to start and take a step.
QUICK = ["debug=fast_dev_run", "logger=none", "callbacks=none"]
SMALL_SBM = ["data.train_graphs=8", "data.val_graphs=4", "data.test_graphs=4", "data.batch_size=4"]
#: Recipe → what its data needs here. Others (ZINC, skeleton) are tested with their data.
RECIPES = {
    "cora_gcn": "cora",
    "cora_gat": "cora",
    "cora_gt": "cora",
    "cluster_gt": "sbm",
    "pattern_gt": "sbm",
    "cluster_gps": "sbm",
    "pattern_gps": "sbm",
    "cluster_exphormer": "sbm",
    "pattern_exphormer": "sbm",
    "cluster_graphormer": "sbm",
    "pattern_graphormer": "sbm",
}


def load_plot():
    spec = importlib.util.spec_from_file_location("plot", REPO / "experiments" / "plot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_compare():
    path = REPO / "experiments" / "gps_vs_pyg" / "compare.py"
    spec = importlib.util.spec_from_file_location("gps_vs_pyg_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gps_vs_pyg_names_the_missing_peer(monkeypatch):
    compare = load_compare()
    monkeypatch.setitem(sys.modules, "torch_geometric", None)
    monkeypatch.setitem(sys.modules, "torch_geometric.nn", None)
    with pytest.raises(SystemExit, match="pip install torch_geometric"):
        compare.require_pyg()
    with pytest.raises(SystemExit, match="pip install torch_geometric"):
        compare.main(["--models", "pyg", "--graphs", "2"])


@pytest.mark.slow
def test_gps_vs_pyg_trains_both_and_they_compute_the_same_function(tmp_path):
    """Two epochs of a 2-block stack on 4 graphs; given the peer's weights, graphformer's
    GPS computes PyG GPSConv's function (outputs and gradients)."""
    pytest.importorskip("torch_geometric")
    compare = load_compare()
    args = ["--graphs", "4", "--val-graphs", "2", "--epochs", "2", "--threads", "1"]
    args += ["--override", "model.num_layers=2", "--out", str(tmp_path), "--tag", "t"]
    log = compare.main([*args, "--data-root", str(tmp_path / "data")])
    assert [(row["epoch"], row["model"]) for row in log["epochs"]] == [
        (1, "pyg"),
        (1, "graphformer"),
        (2, "pyg"),
        (2, "graphformer"),
    ]
    assert log["parameters"]["pyg"] == log["parameters"]["graphformer"]
    check = log["same_function"]
    assert check["comparable"], check
    assert check["eval_rel_diff_float64"] < 1e-9
    assert check["train_rel_diff"] < 1e-4 and check["grad_rel_diff"] < 1e-3
    saved = json.loads((tmp_path / "cluster_t.json").read_text())
    assert saved["epochs"] == log["epochs"]
    assert "| 2 | graphformer GPS |" in (tmp_path / "cluster_t.md").read_text()


def test_every_listed_recipe_has_a_config():
    recipes = {path.stem for path in (config_dir() / "experiment").glob("*.yaml")}
    assert set(RECIPES) <= recipes


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_starts_and_takes_a_step(recipe, tmp_path, data_dir):
    if RECIPES[recipe] == "cora" and not SHARED_DGL.is_dir():
        pytest.skip("../shared/data/dgl absent")
    small = SMALL_SBM if RECIPES[recipe] == "sbm" else []
    cfg = compose_config([f"experiment={recipe}", *QUICK, *small], tmp_path, data_dir)
    assert "reproduction" in cfg.tags or recipe == "cora_gt"
    metric = train(cfg)  # the value a sweep would optimise
    assert metric is None or math.isfinite(metric)


def test_gt_recipes_use_the_papers_settings(tmp_path, data_dir):
    for recipe, batch in (("cluster_gt", 32), ("pattern_gt", 26)):
        cfg = compose_config([f"experiment={recipe}"], tmp_path, data_dir)
        model, block = cfg.model, cfg.model.block
        assert (model.num_layers, block.dim, block.num_heads) == (10, 80, 8)
        assert (block.norm, cfg.data.lap_pe_k, cfg.data.batch_size) == ("batch", 10, batch)
        assert cfg.task.optimizer._target_ == "torch.optim.Adam"
        assert cfg.task.optimizer.lr == 5e-4
        assert (cfg.task.scheduler.factor, cfg.task.scheduler.patience) == (0.5, 10)
        assert cfg.optimized_metric == "val/bench_acc" and cfg.task.class_weighting


def test_exphormer_recipes_use_the_papers_settings(tmp_path, data_dir):
    """hamed1375/Exphormer configs/Exphormer/{cluster,pattern}.yaml (exp_deg k = degree 2k)."""
    expected = {
        "cluster_exphormer": ((20, 32, 8), (6, 3), 16, 0.1, 1e-5, 150),
        "pattern_exphormer": ((4, 40, 4), (14, 4), 32, 0.0, 2e-5, 120),
    }
    for recipe, (shape, graph, batch, dropout, decay, epochs) in expected.items():
        cfg = compose_config([f"experiment={recipe}"], tmp_path, data_dir)
        model, block = cfg.model, cfg.model.block
        assert (model.num_layers, block.dim, block.num_heads) == shape
        assert (block.mixer, block.local_mixer, block.global_mixer) == (
            "gps",
            "gatedgcn",
            "exphormer",
        )
        assert (block.global_kwargs.degree, block.global_kwargs.virtual_nodes) == graph
        assert (block.norm, block.prenorm, block.dropout) == ("batch", False, dropout)
        assert (cfg.data.lap_pe_k, cfg.data.batch_size) == (10, batch)
        assert cfg.task.optimizer._target_ == "torch.optim.AdamW"
        assert (cfg.task.optimizer.lr, cfg.task.optimizer.weight_decay) == (2e-4, decay)
        assert cfg.task.scheduler.warmup_epochs == 5 and cfg.trainer.max_epochs == epochs
        assert cfg.trainer.gradient_clip_val == 1.0 and cfg.task.class_weighting


def test_graphormer_recipes_use_graphormer_slims_settings(tmp_path, data_dir):
    """Graphormer-slim (ZINC): 12 × 80, FFN 80, 8 heads, dropouts 0.1, AdamW 2e-4 (weight
    decay 0.01), gradient norm clipped at 5, warm-up then decay; distances from the data."""
    for recipe in ("cluster_graphormer", "pattern_graphormer"):
        cfg = compose_config([f"experiment={recipe}"], tmp_path, data_dir)
        model, block = cfg.model, cfg.model.block
        assert (block.mixer, model.num_layers, block.dim, block.num_heads) == (
            "graphormer",
            12,
            80,
            8,
        )
        assert (block.ffn_ratio, block.dropout, block.attn_dropout) == (1.0, 0.1, 0.1)
        assert block.prenorm and model.centrality_max_degree == 128 and model.lap_pe_k == 0
        assert cfg.data.lap_pe_k == 0 and cfg.data.get("distances") is None  # on: see build
        assert cfg.task.optimizer._target_ == "torch.optim.AdamW"
        assert (cfg.task.optimizer.lr, cfg.task.optimizer.weight_decay) == (2e-4, 0.01)
        assert cfg.task.scheduler.warmup_epochs == 15 and cfg.trainer.max_epochs == 100
        assert cfg.trainer.gradient_clip_val == 5.0
        assert cfg.optimized_metric == "val/bench_acc" and cfg.task.class_weighting


def write_log(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = ["epoch", "step", "train/loss", "val/loss", "val/acc", "test/acc"]
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def fake_multirun(root: Path, seeds: list[int]) -> Path:
    """A Hydra multirun folder as graphformer-train -m ... logger=csv leaves it."""
    for job, seed in enumerate(seeds):
        (root / str(job) / ".hydra").mkdir(parents=True)
        (root / str(job) / ".hydra" / "overrides.yaml").write_text(
            f"- experiment=x\n- seed={seed}\n- logger=csv\n"
        )
        rows = [
            {"epoch": e, "step": e, "train/loss": 1 / (e + 1), "val/loss": 1.2 / (e + 1)}
            for e in range(3)
        ]
        rows += [{"epoch": e, "step": e, "val/acc": 0.5 + e / 10} for e in range(3)]
        rows.append({"epoch": 3, "step": 3, "test/acc": 0.7 + job / 10})
        write_log(root / str(job) / "csv" / "version_0" / "metrics.csv", rows)
    return root


def test_collect_copies_logs_per_seed_and_returns_test_metrics(tmp_path):
    plot = load_plot()
    multirun = fake_multirun(tmp_path / "multirun", [41, 95])
    results = plot.collect(multirun, tmp_path / "experiment")
    assert results == {"test/acc": pytest.approx([0.7, 0.8])}
    logs = sorted(p.name for p in (tmp_path / "experiment" / "logs").iterdir())
    assert logs == ["seed41.csv", "seed95.csv"]
    assert plot.read_epochs(tmp_path / "experiment" / "logs" / "seed41.csv")["val/acc"] == {
        0: 0.5,
        1: 0.6,
        2: pytest.approx(0.7),
    }


def test_collect_and_curves_explain_missing_logs(tmp_path):
    plot = load_plot()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Hydra jobs"):
        plot.collect(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="logger=csv"):
        plot.curves(tmp_path / "empty")


def test_curves_draw_a_png(tmp_path):
    plot = load_plot()
    plot.collect(fake_multirun(tmp_path / "multirun", [41, 95]), tmp_path / "experiment")
    out = plot.curves(tmp_path / "experiment")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_attention_map_of_a_checkpoint(tmp_path):
    """A checkpoint as graphformer-train writes it: weights under model.*, the config."""
    plot = load_plot()
    block = {"_target_": "graphformer.nn.BlockConfig", "dim": 16, "num_heads": 2}
    config = {
        "_target_": "graphformer.nn.GraphTransformer",
        "out_dim": 6,
        "num_categories": 7,
        "block": block,
        "num_layers": 2,
        "lap_pe_k": 4,
    }
    model = GraphTransformer(6, BlockConfig(dim=16, num_heads=2), 2, num_categories=7, lap_pe_k=4)
    state = {f"model.{key}": value for key, value in model.state_dict().items()}
    checkpoint = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "graphformer_config": {"model": config}}, checkpoint)
    shares = plot.attention_map(checkpoint, tmp_path / "map.png")
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"
    assert 0 < shares["edges inside clusters"] < 1
    assert set(shares) == {
        "edges inside clusters",
        "edges from id-carrying nodes",
        "attention inside clusters, first block",
        "attention inside clusters, last block",
        "attention to id-carrying nodes, first block",
        "attention to id-carrying nodes, last block",
    }
