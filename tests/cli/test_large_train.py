"""The sampled node-level path through graphformer-train: fast_dev_run of the data configs
and samplers with local mixers, the recipes composed, and DDP ranks drawing different
seeds."""

from __future__ import annotations

from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli.train import train

import hydra
import pytest
from omegaconf import OmegaConf
from training import compose_config

#: A 2,000-node CSBM graph and a small model: a fast_dev_run takes seconds.
SMALL = [
    "data=csbm",
    "data.dataset.num_nodes=2000",
    "data.batch_size=256",
    "model.block.dim=16",
    "model.num_layers=2",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
]


#: Layer-wise evaluation in chunks of 300 destination nodes (7 chunks of the 2,000 nodes).
LAYERWISE = ["data.evaluation=layerwise", "data.eval_batch_size=300"]


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=gnn", "model.block.mixer=sage"],
        ["model=gnn", "model.block.mixer=gcn", "data.evaluation=sampled", "data.fanouts=[-1]"],
        ["model=gatedgcn"],
        ["model=graph_transformer"],  # sparse attention over each subgraph's edges
        ["model=transformer", "data.sampler=cluster", "data.num_parts=8", "data.batch_size=2"],
        ["model=gnn", "model.block.mixer=gcn", *LAYERWISE],
        ["model=gatedgcn", *LAYERWISE],
        ["model=sgformer", *LAYERWISE],
        ["model=polynormer", *LAYERWISE],
    ],
    ids=[
        "sage",
        "gcn-sampled-eval",
        "gatedgcn",
        "attention",
        "full-attention-cluster",
        "gcn-layerwise",
        "gatedgcn-layerwise",
        "sgformer-layerwise",
        "polynormer-layerwise",
    ],
)
def test_fast_dev_run_of_the_sampled_path(overrides, tmp_path, data_dir):
    cfg = compose_config([*SMALL, *overrides, "debug=fast_dev_run"], tmp_path, data_dir)
    assert train(cfg) is not None


def test_layerwise_validation_equals_full_validation(tmp_path, data_dir, monkeypatch):
    """The same trained weights validated with evaluation=layerwise and =full: equal
    metrics (the task's layer-wise inference on the whole graph)."""
    import graphformer.tasks.base as base

    import lightning as L

    calls = []
    inference = base.layerwise_inference
    monkeypatch.setattr(
        base, "layerwise_inference", lambda *a, **k: calls.append(a[-1]) or inference(*a, **k)
    )

    cfg = compose_config(
        [*SMALL, "model=gnn", "model.block.mixer=gat", "trainer.max_epochs=1", "logger=none"],
        tmp_path,
        data_dir,
    )
    assert train(cfg) is not None
    checkpoint = next(Path(cfg.paths.output_dir, "checkpoints").glob("*.ckpt"))
    metrics = {}
    for mode in ("full", "layerwise"):
        data = hydra.utils.instantiate(cfg.data, evaluation=mode, eval_batch_size=300)
        task = hydra.utils.instantiate(cfg.task, model=hydra.utils.instantiate(cfg.model))
        trainer = L.Trainer(
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path / mode,
        )
        (metrics[mode],) = trainer.validate(task, datamodule=data, ckpt_path=checkpoint)
        assert calls == ([300] if mode == "layerwise" else [])  # one whole-graph pass
    assert metrics["full"].keys() == metrics["layerwise"].keys()
    for key, value in metrics["full"].items():
        assert metrics["layerwise"][key] == pytest.approx(value, abs=1e-5), key


def test_layerwise_evaluation_refuses_full_attention(tmp_path, data_dir):
    from graphformer.nn.layerwise import LayerwiseError

    overrides = [*SMALL, "model=transformer", *LAYERWISE, "debug=fast_dev_run"]
    cfg = compose_config(overrides, tmp_path, data_dir)
    with pytest.raises(LayerwiseError, match=r"FullAttention.*evaluation='full'"):
        train(cfg)


@pytest.mark.parametrize("name", ["csbm", "csbm_large", "ogbn_arxiv", "ogbn_products"])
def test_large_data_configs_state_their_facts(name, tmp_path, data_dir):
    cfg = compose_config([f"data={name}"], tmp_path, data_dir)
    data = OmegaConf.to_container(cfg.data, resolve=True)
    facts = {"csbm": (5, 32), "csbm_large": (5, 64), "ogbn_arxiv": (40, 128)}
    facts["ogbn_products"] = (47, 100)
    assert (data["level"], data["out_dim"], data["in_dim"]) == ("node", *facts[name])
    assert data["_target_"] == "graphformer.data.SampledNodeDataModule"
    if name.startswith("ogbn"):  # no files in the test's data folder: a clear error, at once
        with pytest.raises(FileNotFoundError, match="graphformer does not download"):
            hydra.utils.instantiate(cfg.data).prepare_data()


@pytest.mark.parametrize(
    "recipe", ["arxiv_sage", "products_sage", "arxiv_gatedgcn", "products_gatedgcn", "csbm_sage"]
)
def test_large_recipes_compose_with_the_sampler(recipe, tmp_path, data_dir):
    cfg = compose_config([f"experiment={recipe}"], tmp_path, data_dir)
    assert cfg.data._target_ == "graphformer.data.SampledNodeDataModule"
    assert cfg.model.block.mixer in ("sage", "gatedgcn")
    model = hydra.utils.instantiate(cfg.model)
    assert model(*_tiny_graph(cfg.data.in_dim)).shape[1] == cfg.data.out_dim


def _tiny_graph(width: int):
    import dgl
    import torch

    graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    return graph, torch.randn(3, width)


@pytest.mark.slow
def test_ddp_sim_ranks_draw_different_seeds(tmp_path, data_dir):
    seeds = tmp_path / "seeds"
    cfg = compose_config(
        [
            *SMALL,
            "model=gnn",
            "model.block.mixer=sage",
            "trainer=ddp_sim",
            "trainer.max_epochs=1",
            "logger=none",
            "+callbacks.seeds._target_=training.SeedRecorder",
            f"+callbacks.seeds.out_dir={seeds}",
        ],
        tmp_path,
        data_dir,
    )
    assert train(cfg) is not None
    drawn = [[int(x) for x in (seeds / f"rank{r}.txt").read_text().split()] for r in (0, 1)]
    assert drawn[0] and drawn[1]
    assert not set(drawn[0]) & set(drawn[1])  # each rank its own seeds
    assert len(set(drawn[0]) | set(drawn[1])) == 1000  # together: every training node
    assert Path(cfg.paths.output_dir, "checkpoints", "last.ckpt").is_file()
