"""The training stack: configs compose, every model runs, runs learn, resume, eval, DDP, sweeps."""

from __future__ import annotations

import csv
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli.checks import check_settings
from graphformer.cli.eval import evaluate
from graphformer.cli.eval import main as eval_main
from graphformer.cli.train import main as train_main
from graphformer.cli.train import train

import hydra
import lightning as L
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from training import SHARED_DGL, SMALL, SMALL_DATA, compose_config, config_dir

# A small CLUSTER and a short schedule: each run takes seconds.
pytestmark = pytest.mark.usefixtures("offline_wandb")


needs_cora = pytest.mark.skipif(not SHARED_DGL.is_dir(), reason="../shared/data/dgl absent")


#: Models that need continuous node features: run on Cora.
CORA_MODELS = ("gnn", "sgformer", "polynormer", "nagphormer")


def model_override(model: str) -> list[str]:
    """The plain GNN stack needs continuous features: pair it with Cora; the encoder–decoder
    needs sequences and its task."""
    if model == "seq2seq":
        return ["model=seq2seq", "data=digits", "task=seq2seq"]
    return [f"model={model}", "data=cora"] if model in CORA_MODELS else [f"model={model}"]


#: Data configs whose task is not the default node classification.
DATA_TASKS = {
    "zinc": "graph_regression",
    "molhiv": "graph_classification",
    "qm9": "graph_regression",
    "zinc_logp": "graph_regression",
    "bbbp": "graph_classification",
    "skeleton": "pose_lifting",
    "digits": "seq2seq",
}


def data_override(data: str) -> list[str]:
    task = DATA_TASKS.get(data)
    return [f"data={data}"] + ([f"task={task}"] if task else [])


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def run(tmp_path: Path, data_dir: Path, *overrides: str, name: str = "run"):
    small = [o for o in SMALL if "data=cora" not in overrides or o not in SMALL_DATA]
    cfg = compose_config([*small, *overrides], tmp_path / name, data_dir)
    return cfg, train(cfg)


# --- configs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [model_override(m) for m in options("model")]
    + [data_override(d) for d in options("data")]
    + [[f"logger={g}"] for g in options("logger")]
    + [[f"trainer={t}"] for t in options("trainer")]
    + [[f"debug={d}"] for d in options("debug")]
    + [[f"experiment={e}"] for e in options("experiment")]
    + [[f"task={t}"] + (["data=digits"] if t == "seq2seq" else []) for t in options("task")]
    + [[f"task/optimizer={o}"] for o in options("task/optimizer")]
    + [[f"task/scheduler={s}"] for s in options("task/scheduler")]
    + [[f"hydra/launcher={h}"] for h in options("hydra/launcher")]
    + [["hparams_search=optuna"], ["callbacks=none"]],
    ids=str,
)
def test_every_config_composes_and_instantiates(overrides, tmp_path, data_dir):
    if "data=cora" in overrides and not SHARED_DGL.is_dir():
        pytest.skip("../shared/data/dgl absent")
    cfg = compose_config(overrides, tmp_path, data_dir)
    run_keys = [key for key in cfg if key != "hydra"]
    OmegaConf.to_container(OmegaConf.masked_copy(cfg, run_keys), resolve=True)  # all resolve
    check_settings(cfg)  # and every value has the type its constructor declares
    model = hydra.utils.instantiate(cfg.model)
    task = hydra.utils.instantiate(cfg.task, model=model)
    assert task.configure_optimizers()
    assert "_target_" in cfg.data
    for group in ("callbacks", "logger"):
        for entry in (cfg.get(group) or {}).values():
            if entry and "_target_" in entry:
                hydra.utils.instantiate(entry)
    if cfg.trainer.accelerator == "cpu":
        assert isinstance(hydra.utils.instantiate(cfg.trainer), L.Trainer)


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_optimizers_are_fused_and_step_as_torchs_loop(name, tmp_path, data_dir):
    """``task/optimizer`` presets run torch's fused kernel (the loop over parameters is the
    CPU default); the update equals the loop's up to rounding, and ``fused=false`` is the
    loop."""
    steps = {}
    for fused in (True, False):
        overrides = [f"task/optimizer={name}", "task.optimizer.weight_decay=0.01"]
        cfg = compose_config([*overrides, f"task.optimizer.fused={fused}"], tmp_path, data_dir)
        torch.manual_seed(0)
        task = hydra.utils.instantiate(cfg.task, model=hydra.utils.instantiate(cfg.model))
        configured = task.configure_optimizers()
        optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
        assert optimizer.defaults["fused"] is fused
        params = [p for p in task.parameters() if p.requires_grad]
        for _ in range(3):
            for i, p in enumerate(params):
                p.grad = torch.full_like(p, 0.1 * (i % 7) - 0.3)
            optimizer.step()
        steps[fused] = [p.detach().clone() for p in params]
    for a, b in zip(steps[True], steps[False], strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)


def test_unknown_config_name_lists_the_valid_ones(tmp_path, data_dir):
    with pytest.raises(Exception, match=r"(?s)model.*graph_transformer"):
        compose_config(["model=nope"], tmp_path, data_dir)


# --- runs -----------------------------------------------------------------------------------


#: Models that need data no test can generate quickly: transformer_3d reads 3D coordinates
#: (data=qm9); tests/nn/test_distance_bias.py trains its config on generated 3D samples.
NEEDS_OWN_DATA = ("transformer_3d",)


@pytest.mark.parametrize("model", [m for m in options("model") if m not in NEEDS_OWN_DATA])
def test_fast_dev_run_of_every_model(model, tmp_path, data_dir):
    if model in CORA_MODELS and not SHARED_DGL.is_dir():
        pytest.skip("../shared/data/dgl absent")
    cfg, _ = run(tmp_path, data_dir, *model_override(model), "debug=fast_dev_run")
    assert cfg.model._target_.startswith("graphformer.nn.")


@pytest.mark.slow
def test_default_model_learns(tmp_path, data_dir):
    """CLUSTER has 6 classes (chance ≈ 0.17). Measured here: val/acc 0.371 (seed 1)."""
    _, val_acc = run(tmp_path, data_dir, "data.train_graphs=256", "trainer.max_epochs=8", "seed=1")
    assert val_acc > 0.30


@pytest.mark.slow
def test_resume_continues_and_eval_reproduces_test_metric(tmp_path, data_dir):
    cfg, _ = run(tmp_path, data_dir, "trainer.max_epochs=1", "logger=csv", name="first")
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    first = torch.load(last, weights_only=False)
    assert first["epoch"] == 0

    resumed, _ = run(
        tmp_path,
        data_dir,
        "trainer.max_epochs=2",
        "logger=csv",
        f"ckpt_path={last}",
        name="resumed",
    )
    second = torch.load(
        Path(resumed.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=False
    )
    assert second["epoch"] == 1
    assert second["global_step"] == 2 * first["global_step"]

    best = next((Path(resumed.paths.output_dir) / "checkpoints").glob("epoch_*.ckpt"))
    logged = _logged_test_metric(Path(resumed.paths.output_dir), "test/acc")
    # The default callbacks log each training epoch's wall time.
    assert _logged_test_metric(Path(resumed.paths.output_dir), "time/train_epoch_s") > 0
    eval_cfg = compose_config(
        [f"ckpt_path={best}"], tmp_path / "eval", data_dir, config_name="eval"
    )
    results = evaluate(eval_cfg)
    assert abs(results["test/acc"] - logged) < 1e-6


def _logged_test_metric(output_dir: Path, name: str) -> float:
    """The value the CSV logger recorded for ``name`` (the test metric of the run)."""
    (metrics_csv,) = output_dir.glob("csv/version_*/metrics.csv")
    with open(metrics_csv) as file:
        values = [row[name] for row in csv.DictReader(file) if row.get(name)]
    return float(values[-1])


@pytest.mark.slow
def test_ddp_sim_runs_two_ranks_on_different_shards(tmp_path, data_dir):
    shards = tmp_path / "shards"
    _, val_acc = run(
        tmp_path,
        data_dir,
        "trainer=ddp_sim",
        "trainer.max_epochs=1",
        "logger=none",  # CSVLogger breaks when ddp_spawn re-spawns for test
        "+callbacks.shards._target_=training.ShardRecorder",
        f"+callbacks.shards.out_dir={shards}",
    )
    assert val_acc is not None
    seen = [set((shards / f"rank{rank}.txt").read_text().split()) for rank in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 32  # 64 training graphs, half each
    assert not seen[0] & seen[1]
    # The test runs once, in this process: every test graph counted once, no second spawn.
    assert (shards / "test_world_size.txt").read_text() == "1"


# --- tracking -------------------------------------------------------------------------------


@pytest.mark.slow
def test_wandb_offline_writes_a_run_and_contacts_no_server(tmp_path, data_dir, monkeypatch):
    """Point wandb at a local listener: an offline run must never connect to it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connections: list = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connections.append(server.accept())
            except TimeoutError:
                continue

    listener = threading.Thread(target=accept, daemon=True)
    listener.start()
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    try:
        cfg, _ = run(tmp_path, data_dir, "trainer.max_epochs=1", "logger=wandb")
    finally:
        stop.set()
        listener.join()
        server.close()
    runs = list((Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))
    assert connections == []


# --- the console scripts, as users run them -------------------------------------------------


def _cli(tmp_path: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [a for a in args if a.startswith("-")]
    overrides = [a for a in args if not a.startswith("-")]
    env = {
        **os.environ,
        "GRAPHFORMER_DATA_DIR": str(data_dir),
        "GRAPHFORMER_LOG_DIR": str(tmp_path / "logs"),
        "WANDB_MODE": "offline",
    }
    return subprocess.run(
        [sys.executable, "-m", "graphformer.train", *flags, *SMALL, *overrides],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_multirun_sweep_runs_four_jobs_into_one_directory(tmp_path, data_dir):
    result = _cli(
        tmp_path,
        data_dir,
        "-m",
        "model.num_layers=1,2",
        "seed=1,2",
        "trainer.max_epochs=1",
        "logger=csv",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = list((tmp_path / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir() and p.name.isdigit())
    assert jobs == ["0", "1", "2", "3"]
    # It ended with no summary: the best job was found with grep in the jobs' train.log.
    rows = _summary_rows(sweeps[0])
    assert len(rows) == 4 and "| job | overrides | best val/acc |" in result.stdout
    values = [float(row["best val/acc"]) for row in rows]
    assert values == sorted(values, reverse=True)  # best first
    best = rows[0]
    assert Path(best["run folder"]) == sweeps[0] / best["job"]
    assert Path(best["best checkpoint"]).parent == sweeps[0] / best["job"] / "checkpoints"
    assert Path(best["best checkpoint"]).is_file()
    # Seeds of one setting are aggregated; the two settings never are.
    summary = (sweeps[0] / "sweep_summary.md").read_text()
    aggregated = [line for line in summary.splitlines() if "(n=2)" in line]
    assert len(aggregated) == 2
    assert {line.split("|")[1].strip() for line in aggregated} == {
        "model.num_layers=1",
        "model.num_layers=2",
    }


def _summary_rows(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "sweep_summary.csv", newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_optuna_searches_in_one_log_dir_stay_separate_and_name_their_best_job(tmp_path, data_dir):
    """Every search shared <log_dir>/optuna.db under one study name: a second search joined
    the first, reported the first's best value and replayed its trials."""

    def search(*overrides: str):
        result = _cli(tmp_path, data_dir, "-m", "hparams_search=optuna", "logger=none", *overrides)
        assert result.returncode == 0, result.stderr[-3000:]
        output = result.stdout + result.stderr
        assert "Best parameters" in output
        assert "existing study" not in output and "alembic" not in output
        (sweep,) = set((tmp_path / "logs" / "train" / "multiruns").iterdir()) - seen
        seen.add(sweep)
        assert (sweep / "optuna.db").is_file()  # the study lives in the sweep's own folder
        return sweep, output

    seen: set[Path] = set()
    first, output = search("hydra.sweeper.n_trials=3", "trainer.max_epochs=1")
    assert "| job | overrides | best val/acc |" in output
    second, _ = search("model=gcn", "hydra.sweeper.n_trials=2", "trainer.max_epochs=1")
    for sweep, trials in ((first, 3), (second, 2)):
        rows = _summary_rows(sweep)
        assert len(rows) == trials
        results = OmegaConf.load(sweep / "optimization_results.yaml")
        # Its best value is one of its own trials' (the best), and it names that job.
        assert results.best_value == pytest.approx(float(rows[0]["best val/acc"]))
        assert results.best_run_dir == rows[0]["run folder"]
        assert results.best_checkpoint == rows[0]["best checkpoint"]
        assert Path(results.best_checkpoint).is_file()


@pytest.mark.slow
def test_same_seed_reproduces_metrics_and_weights_exactly(tmp_path, data_dir):
    def fit(seed: int, name: str):
        cfg, val_acc = run(
            tmp_path, data_dir, f"seed={seed}", "trainer.max_epochs=2", "logger=none", name=name
        )
        last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
        return val_acc, last["state_dict"]

    first, again, other = fit(3, "a"), fit(3, "b"), fit(4, "c")
    assert first[0] == again[0]
    assert all(torch.equal(first[1][key], again[1][key]) for key in first[1])
    assert any(not torch.equal(first[1][key], other[1][key]) for key in first[1])


@pytest.mark.slow
def test_resume_from_a_different_model_names_the_differing_keys(tmp_path, data_dir):
    cfg, _ = run(tmp_path, data_dir, "trainer.max_epochs=1", "logger=none", name="first")
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    with pytest.raises(
        ValueError, match=r"(?s)different model.*model.block.dim: 16 in the checkpoint, 32 now"
    ):
        run(tmp_path, data_dir, f"ckpt_path={last}", "model.block.dim=32", name="second")


def test_eval_of_a_missing_checkpoint_says_what_to_pass(tmp_path, data_dir):
    cfg = compose_config(
        [f"ckpt_path={tmp_path / 'nope.ckpt'}"], tmp_path, data_dir, config_name="eval"
    )
    with pytest.raises(FileNotFoundError, match=r"nope.ckpt.*is not a file; pass the .ckpt"):
        evaluate(cfg)


# --- a run's life cycle: resume, report, test only, run folders, eval overrides, help -------


def _quoted(path: Path) -> str:
    """A path as a Hydra override value (the finished run's folder has a space)."""
    return f'"{path}"'


def test_max_epochs_zero_is_refused_before_anything_is_built(tmp_path, data_dir):
    with pytest.raises(ValueError, match=r"trainer.max_epochs=0 trains nothing; set it to 1"):
        run(tmp_path, data_dir, "trainer.max_epochs=0")


@pytest.mark.slow
def test_resuming_a_finished_run_says_how_to_train_on(finished_run, tmp_path, data_dir):
    with pytest.raises(
        ValueError,
        match=r"nothing left to train: the checkpoint .* is at epoch 1 = trainer.max_epochs=1; "
        r"raise trainer.max_epochs to train on, or test it with: graphformer-eval",
    ):
        run(tmp_path, data_dir, "trainer.max_epochs=1", f"ckpt_path={_quoted(finished_run.last)}")


def _printed_ckpt_path(report: str, what: str) -> str:
    """The ckpt_path of the command the report prints after ``what:``, as the shell and
    Hydra read it."""
    (line,) = [line for line in report.splitlines() if line.strip().startswith(f"{what}:")]
    words = [w for w in shlex.split(line.split(":", 1)[1]) if w.startswith("ckpt_path=")]
    (override,) = OverridesParser.create().parse_overrides(words)
    return override.value()


@pytest.mark.slow
def test_report_names_this_runs_checkpoints_and_commands_that_parse(
    finished_run, tmp_path, data_dir, capsys
):
    """With max_epochs=1 the last checkpoint went unreported; after a resume, the report
    named the previous run's; a path with a space was printed unquoted."""
    assert f"last checkpoint: {finished_run.last}\n" in finished_run.report
    assert f"best checkpoint: {finished_run.best}\n" in finished_run.report
    assert _printed_ckpt_path(finished_run.report, "test it") == str(finished_run.best)
    assert _printed_ckpt_path(finished_run.report, "resume") == str(finished_run.last)

    resumed, _ = run(
        tmp_path,
        data_dir,
        "trainer.max_epochs=2",
        "logger=none",
        f"ckpt_path={_quoted(finished_run.last)}",
        name="resumed",
    )
    report = capsys.readouterr().out
    last = Path(resumed.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert f"last checkpoint: {last}\n" in report
    assert _printed_ckpt_path(report, "resume") == str(last)


@pytest.mark.slow
def test_train_false_tests_the_given_checkpoint(finished_run, tmp_path, data_dir, capsys):
    """It tested the untrained weights (test acc 0.166 against the checkpoint's 0.271)."""
    run(tmp_path, data_dir, "train=false", "logger=none", f"ckpt_path={_quoted(finished_run.best)}")
    tested = re.findall(r"test/\w+ = \S+", capsys.readouterr().out)
    assert tested == re.findall(r"test/\w+ = \S+", finished_run.report)
    assert tested


@pytest.mark.slow
def test_eval_names_the_evaluated_file_and_honours_data_overrides(
    finished_run, tmp_path, data_dir, capsys
):
    def evaluated(*overrides: str) -> dict[str, float]:
        ckpt_path = f"ckpt_path={_quoted(finished_run.best)}"
        cfg = compose_config([ckpt_path, *overrides], tmp_path, data_dir, config_name="eval")
        return evaluate(cfg)

    full = evaluated()
    report = capsys.readouterr().out
    assert f"evaluated checkpoint: {finished_run.best}\n" in report
    assert "last checkpoint" not in report  # it named the training run's last.ckpt
    assert evaluated("+data.test_graphs=16")["test/loss"] != full["test/loss"]  # ignored
    with pytest.raises(ValueError, match=r"has no data.test_graph; \+data.KEY=VALUE can override"):
        evaluated("+data.test_graph=8")


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, data_dir):
    """The folder was named to the second: two runs started together shared one."""
    folders = [
        OmegaConf.select(compose_config([], tmp_path, data_dir), "hydra.run.dir") for _ in (1, 2)
    ]
    assert folders[0] != folders[1]
    assert sorted(folders) == folders  # the names still sort by start time


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        (
            train_main,
            [r"train a graph Transformer", r"trainer.max_epochs=N .*\[8\]", r"data=NAME .*\[clus"],
        ),
        (eval_main, [r"test a checkpoint", r"ckpt_path=PATH", r"\+data.KEY=VALUE"]),
    ],
    ids=["train", "eval"],
)
def test_help_describes_the_job_and_its_main_options(main, expected, monkeypatch, capsys):
    """It said only "train is powered by Hydra"."""
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["graphformer", "--help"])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 0
    shown = capsys.readouterr().out
    for pattern in expected:
        assert re.search(pattern, shown), pattern


@pytest.mark.parametrize("override", ["+model.block.mixer=gps", "+task.lr=0.1"])
def test_eval_refuses_model_and_task_overrides(tmp_path, data_dir, override):
    """Issue 22, item 7: ``+model.mixer=gps`` was ignored (exit 0 with the checkpoint's own
    metrics); only data settings can be overridden at evaluation."""
    cfg = compose_config(
        [f"ckpt_path={tmp_path / 'x.ckpt'}", override], tmp_path, data_dir, config_name="eval"
    )
    key = override[1:].split("=")[0]
    with pytest.raises(ValueError, match=rf"{re.escape(key)}.*cannot change the model"):
        evaluate(cfg)


@pytest.mark.parametrize("empty", [None, {}])
def test_an_empty_data_config_is_named(tmp_path, data_dir, empty):
    """Issue 22, item 8: an empty config group file (``data=empty`` via hydra.searchpath)
    ended in ``InterpolationKeyError: 'data.out_dim' not found``."""
    from omegaconf import open_dict

    cfg = compose_config([], tmp_path, data_dir)
    with open_dict(cfg):
        cfg.data = empty
    with pytest.raises(ValueError, match=r"the data config is empty.*_target_"):
        check_settings(cfg)
