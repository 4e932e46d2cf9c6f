"""Sweeps and dashboards you can trust (issue 21): one study per search, the best
checkpoint's numbers everywhere, a summary of every sweep, runs grouped, curves offline,
launchers that compose, and refusals of settings that would silently mislead."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli import checks, plot, report, resolvers, sweep, tracking
from graphformer.cli.eval import evaluate
from graphformer.cli.train import train

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict, read_write
from training import SMALL, compose_config, wandb_summary

pytestmark = pytest.mark.usefixtures("offline_wandb")


# --- one set of numbers per run -------------------------------------------------------------


@pytest.mark.slow
def test_a_run_whose_best_epoch_is_not_the_last_reports_the_best_epochs_numbers(
    tmp_path, data_dir, capsys
):
    """The report and wandb's best/* gave the last epoch's val metrics while the test ran on
    an earlier best checkpoint and the sweep objective used its value: three sets of numbers."""
    cfg = compose_config(
        [
            *SMALL,
            "trainer.max_epochs=3",
            "optimized_metric=val/loss",
            "optimized_mode=min",
            "+callbacks.spoil._target_=training.SpoilLastValidation",
        ],
        tmp_path / "run",
        data_dir,
    )
    objective = train(cfg)
    printed = capsys.readouterr().out
    run = Path(cfg.paths.output_dir)
    (metrics_csv,) = run.glob("csv/version_*/metrics.csv")  # the default loggers write CSV
    rows = _rows(metrics_csv)
    per_epoch = {int(r["epoch"]): float(r["val/loss"]) for r in rows if r.get("val/loss")}
    best_epoch = min(per_epoch, key=per_epoch.get)
    assert best_epoch < 2 and per_epoch[2] > per_epoch[best_epoch]  # the premise
    best, last = per_epoch[best_epoch], per_epoch[2]

    assert objective == pytest.approx(best)  # the sweep objective
    assert f"best epoch {best_epoch} (the tested checkpoint), validation:" in printed
    assert f"    val/loss = {best:.4f}\n" in printed  # the report
    assert f"    last/val/loss = {last:.4f}\n" in printed
    assert f"epoch_{best_epoch:03d}.ckpt" in printed
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best"]["val/loss"] == pytest.approx(best)
    assert summary["best_epoch"] == best_epoch
    (wandb_run,) = (run / "wandb").glob("offline-run-*")
    logged = wandb_summary(wandb_run)  # wandb's offline summary
    assert logged["best/val/loss"] == pytest.approx(best)
    assert logged["best/epoch"] == best_epoch
    assert logged["last/val/loss"] == pytest.approx(last)
    assert {key for key in logged if key.startswith("best/")} == {
        f"best/{key}" for key in summary["best"]
    } | {"best/epoch"}  # monitored metrics only: no best/lr-AdamW, best/time/...
    assert _csv_value(metrics_csv, "best/val/loss") == pytest.approx(best)  # CSV's too


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def _csv_value(path: Path, key: str) -> float:
    return float([r[key] for r in _rows(path) if r.get(key)][-1])


def test_explained_metric_names_and_logger_locations_in_the_report(finished_run):
    assert "(bench_acc: class-averaged recall computed per batch" in finished_run.report
    assert f"csv log: {finished_run.output_dir}/csv/version_0/metrics.csv" in finished_run.report


# --- refusals --------------------------------------------------------------------------------


def test_a_misspelt_group_added_with_plus_is_refused(tmp_path, data_dir):
    """`modle=gps` → Hydra suggests `+modle=gps`, which trained the default model, exit 0."""
    cfg = compose_config(["+modle=gps"], tmp_path, data_dir)
    with pytest.raises(
        ValueError,
        match=r"\+modle=gps adds the top-level key 'modle', which "
        r"nothing reads; did you mean model\? \(model=gps\)",
    ):
        train(cfg)
    # Additions under existing keys and groups stay allowed.
    fine = ["+callbacks.x._target_=training.ShardRecorder", "+data.foo=1", "+trainer.x=1"]
    checks.check_overrides(compose_config(fine, tmp_path, data_dir))


def test_data_that_needs_another_task_says_which_before_building(tmp_path, data_dir):
    """`data=zinc` failed inside NodeClassification: `num_classes must be an int ≥ 2; got 1`."""
    cfg = compose_config(["data=zinc"], tmp_path, data_dir)
    with pytest.raises(
        ValueError,
        match=r"data=zinc is labelled per graph .* but "
        r"task=node_classification predicts per node; choose task=graph_regression",
    ):
        train(cfg)


def test_a_callbacks_preset_keeps_checkpointing_unless_turned_off(tmp_path, data_dir):
    """`callbacks=early_stopping` dropped the checkpoints: the current weights were tested."""
    for preset in ("early_stopping", "none", "default"):
        cfg = compose_config([f"callbacks={preset}"], tmp_path, data_dir)
        assert {"model_checkpoint", "last_checkpoint"} <= set(cfg.callbacks)
        assert cfg.callbacks.model_checkpoint.dirpath == f"{tmp_path}/checkpoints"
    off = compose_config(["callbacks/checkpoint=none"], tmp_path, data_dir)
    assert "model_checkpoint" not in off.callbacks and "early_stopping" in off.callbacks


# --- launchers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], (1, 0, 1)),
        (["trainer=gpu"], (1, 1, 1)),
        (["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"], (2, 4, 4)),
        (["trainer=ddp_sim"], (1, 0, 1)),
    ],
    ids=["cpu", "gpu", "ddp", "ddp_spawn"],
)
def test_slurm_launcher_composes_with_and_without_ddp(overrides, expected, tmp_path, data_dir):
    """Without trainer=ddp: InterpolationKeyError 'trainer.num_nodes' not found."""
    cfg = compose_config(["hydra/launcher=slurm", *overrides], tmp_path, data_dir)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == expected


def _cli(tmp_path: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "GRAPHFORMER_DATA_DIR": str(data_dir),
        "GRAPHFORMER_LOG_DIR": str(tmp_path / "logs"),
        "WANDB_MODE": "offline",
    }
    return subprocess.run(
        [sys.executable, "-m", "graphformer.train", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_local_launcher_says_where_each_jobs_output_is(tmp_path, data_dir):
    """It printed nothing, left a literal .submitit/%j/ folder, and the results sat in
    .submitit/<id>/<id>_0_log.out."""
    result = _cli(
        tmp_path,
        data_dir,
        "-m",
        "hydra/launcher=local",
        "seed=1",
        "trainer.max_epochs=1",
        "logger=csv",
        *SMALL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    assert "Each job's console output (submitit)" in result.stdout
    (log,) = (sweep_dir / ".submitit").glob("*_0_log.out")
    assert f"  {log}\n" in result.stdout
    assert not (sweep_dir / ".submitit" / "%j").exists()  # it left a literal %j folder
    (row,) = _rows(sweep_dir / "sweep_summary.csv")
    assert row["status"] == "ok" and Path(row["run folder"]) == sweep_dir / "0"
    assert (sweep_dir / "0" / "summary.json").is_file()


# --- one study per search -----------------------------------------------------------------


def _study(path: Path, trials: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name="train_search")
    for value in range(trials):
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=value))


def test_an_optuna_study_is_joined_only_when_asked_and_reseeded_past_its_trials(tmp_path):
    new = tmp_path / "sweep_b"
    assert resolvers.optuna_storage(None, str(new)) == f"sqlite:///{new / 'optuna.db'}"
    assert resolvers.optuna_seed(42, None) == 42
    earlier = tmp_path / "sweep_a"
    earlier.mkdir()
    _study(earlier / "optuna.db", trials=3)
    assert resolvers.optuna_storage(str(earlier), str(new)) == f"sqlite:///{earlier / 'optuna.db'}"
    assert resolvers.optuna_seed(42, str(earlier)) == 45  # no replay of trials 0-2
    with pytest.raises(FileNotFoundError, match=r"hparams_search.resume=.*no Optuna study"):
        resolvers.optuna_storage(str(tmp_path / "nope"), str(new))


def test_optuna_config_keeps_each_study_in_its_sweep_folder(tmp_path, data_dir):
    cfg = compose_config(["hparams_search=optuna"], tmp_path, data_dir)
    with read_write(cfg.hydra), open_dict(cfg):
        cfg.hydra.sweep.dir = str(tmp_path / "sweep")
    storage = cfg.hydra.sweeper.storage
    assert storage == f"sqlite:///{tmp_path / 'sweep' / 'optuna.db'}"


# --- sweep summary and collect ---------------------------------------------------------------


def _fake_sweep(root: Path, jobs: list[tuple[list[str], float | None]]) -> Path:
    for number, (overrides, value) in enumerate(jobs):
        folder = root / str(number)
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        if value is None:
            continue  # a failed job
        (folder / "summary.json").write_text(
            json.dumps(
                {
                    "overrides": overrides,
                    "optimized_metric": "val/acc",
                    "optimized_mode": "max",
                    "best": {"val/acc": value},
                    "best_epoch": 1,
                    "test": {"test/acc": value - 0.1},
                    "wall_s": 3.0,
                    "run_dir": str(folder),
                    "best_checkpoint": str(folder / "checkpoints" / "epoch_001.ckpt"),
                }
            )
        )
    return root


def test_sweep_summary_sorts_jobs_and_never_pools_settings(tmp_path):
    sweep_dir = _fake_sweep(
        tmp_path / "sweep",
        [
            (["model.num_layers=2", "seed=1"], 0.30),
            (["model.num_layers=4", "seed=1"], 0.10),
            (["model.num_layers=2", "seed=2"], 0.20),
            (["model.num_layers=4", "seed=2"], None),
        ],
    )
    text = sweep.summarize(sweep_dir)
    rows = _rows(sweep_dir / "sweep_summary.csv")
    assert [row["job"] for row in rows] == ["0", "2", "1", "3"]  # best first, failed last
    assert rows[-1]["status"].startswith("no summary.json")
    assert "| model.num_layers=2 | 2 | 0.2500 ± 0.0500 (n=2) |" in text
    assert "| model.num_layers=4 | 1 | 0.1000 ± 0.0000 (n=1) |" in text
    assert (sweep_dir / "sweep_summary.md").read_text() in text


def test_optuna_results_name_the_best_trials_job(tmp_path):
    sweep_dir = _fake_sweep(
        tmp_path / "sweep",
        [(["task.optimizer.lr=0.001"], 0.2), (["task.optimizer.lr=0.0025"], 0.3)],
    )
    OmegaConf.save(
        {"name": "optuna", "best_params": {"task.optimizer.lr": 0.0025}, "best_value": 0.3},
        sweep_dir / "optimization_results.yaml",
    )
    text = sweep.summarize(sweep_dir)
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert results.best_job == "1" and results.best_run_dir == str(sweep_dir / "1")
    assert results.best_checkpoint == str(sweep_dir / "1" / "checkpoints" / "epoch_001.ckpt")
    assert "Optuna's best trial: job 1" in text


def _load_experiments_plot():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "experiments" / "plot.py"
    spec = importlib.util.spec_from_file_location("experiments_plot", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _multirun_logs(root: Path, jobs: list[list[str]]) -> Path:
    for number, overrides in enumerate(jobs):
        folder = root / str(number)
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        log = folder / "csv" / "version_0" / "metrics.csv"
        log.parent.mkdir(parents=True)
        log.write_text(
            "epoch,step,train/loss,val/loss,val/acc,test/acc\n"
            f"0,1,1.0,1.1,0.2,\n1,2,0.8,0.9,0.3,\n2,3,,,,{0.5 + number / 10}\n"
        )
    return root


def test_collect_groups_by_settings_and_never_overwrites(tmp_path):
    """A sweep over model.num_layers=2,4 with one seed averaged the two architectures, and
    only one seed1.csv survived."""
    plot_script = _load_experiments_plot()
    multirun = _multirun_logs(
        tmp_path / "multirun", [["model.num_layers=2", "seed=1"], ["model.num_layers=4", "seed=1"]]
    )
    groups = plot_script.collect_groups(multirun, tmp_path / "experiment")
    assert groups == {
        ("model.num_layers=2",): {"test/acc": [0.5]},
        ("model.num_layers=4",): {"test/acc": [pytest.approx(0.6)]},
    }
    assert len(list((tmp_path / "experiment" / "logs").rglob("*.csv"))) == 2
    with pytest.raises(ValueError, match=r"different settings"):
        plot_script.collect(multirun, tmp_path / "other")
    with pytest.raises(FileExistsError, match=r"would overwrite"):
        plot_script.collect_groups(multirun, tmp_path / "experiment")


def test_graphformer_plot_draws_a_sweep_and_a_run(tmp_path, capsys):
    multirun = _multirun_logs(tmp_path / "multirun", [["seed=1"], ["seed=2"]])
    out = plot.curves(multirun)
    assert out == multirun / "curves.png" and out.read_bytes()[:4] == b"\x89PNG"
    plot.main([str(multirun / "0"), "--out", str(tmp_path / "one.png")])
    assert (tmp_path / "one.png").is_file()
    with pytest.raises(SystemExit):
        plot.main([str(tmp_path / "nothing")])
    assert "does not exist" in capsys.readouterr().err


# --- dashboards ----------------------------------------------------------------------------


def test_wandb_runs_of_a_sweep_share_a_group_and_are_named_and_tagged(tmp_path, data_dir):
    """group=None, an empty name and tags ['dev']: runs of one sweep could not be grouped."""
    cfg = compose_config(["model=gcn", "seed=3"], tmp_path, data_dir)
    with read_write(cfg.hydra), open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = str(tmp_path / "multiruns" / "2026-12-03_sweep")
    HydraConfig.instance().set_config(cfg)
    group, name, tags = tracking.run_identity()
    assert group == "2026-12-03_sweep"
    assert name == "model=gcn seed=3"
    assert tags == ["model:gcn", "data:cluster"]
    logger = tracking.wandb_logger(mode="disabled", save_dir=str(tmp_path), tags=["dev"])
    assert logger._wandb_init["group"] == group and logger._wandb_init["name"] == name
    assert logger._wandb_init["tags"] == ["dev", "model:gcn", "data:cluster"]


# --- quiet, fast CLI -----------------------------------------------------------------------


def test_help_and_config_errors_do_not_import_the_heavy_stack(tmp_path):
    """--help took 8.4 s: it imported Lightning, torch and DGL before composing a config."""
    code = (
        "import sys\n"
        "from graphformer.cli.train import main\n"
        "sys.argv = ['graphformer-train', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'lightning', 'dgl') if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert "heavy: []" in result.stdout, result.stdout[-500:] + result.stderr[-2000:]


def test_printed_commands_run_as_printed_without_an_activated_venv(monkeypatch):
    """`test it: graphformer-eval ...` failed: command not found (the venv is not active)."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    program = report.program("graphformer-eval")
    assert os.access(program.split()[0], os.X_OK), program
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    if (Path(sys.executable).parent / "graphformer-eval").exists():
        assert report.program("graphformer-eval") == "graphformer-eval"


@pytest.mark.slow
def test_eval_prints_no_warnings_about_training_callbacks(finished_run, tmp_path, data_dir):
    """Lightning warned `Please add the following callbacks: [ModelCheckpoint...]` and
    `The dirpath has changed...` on every graphformer-eval."""
    cfg = compose_config(
        [f'ckpt_path="{finished_run.best}"'], tmp_path, data_dir, config_name="eval"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate(cfg)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if re.search("following callbacks|dirpath has changed", m)]


def test_progress_bar_shows_only_the_named_metrics_and_no_version(monkeypatch):
    """The bar wrapped mid-metric (every val metric shown) and showed `v_num: 0.000`."""
    from graphformer.tasks.progress import ProgressBar

    from lightning.pytorch.callbacks import RichProgressBar

    shown = {"v_num": 0, "train/loss": 1.0, "val/acc": 0.5, "val/f1": 0.2, "val/loss": 1.1}
    monkeypatch.setattr(RichProgressBar, "get_metrics", lambda self, t, m: dict(shown))
    bar = ProgressBar(metrics=["train/loss", "val/loss", "val/acc"])
    assert bar.get_metrics(None, None) == {"train/loss": 1.0, "val/loss": 1.1, "val/acc": 0.5}
    assert "v_num" not in ProgressBar().get_metrics(None, None)


# --- the README's sweep, cluster and tracking commands, as written ---------------------------


def _readme_commands(*sections: str) -> list[str]:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    commands = []
    for section in sections:
        body = text.split(f"### {section}", 1)[1].split("\n### ", 1)[0]
        for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
            joined = block.replace("\\\n", " ")
            commands += [line.split("  #", 1)[0].strip() for line in joined.splitlines()]
    return [c for c in commands if c]


def test_readme_sweep_and_cluster_commands_compose(tmp_path, data_dir):
    commands = [
        c
        for c in _readme_commands("Sweeps", "Multi-GPU and clusters")
        if c.startswith("graphformer-train")
    ]
    assert len(commands) >= 6
    for command in commands:
        words = [w for w in command.split()[1:] if w != "-m"]
        # One job of the sweep: the first value of each comma list; a placeholder folder.
        overrides = [w.split(",")[0].replace("<id>", "earlier") for w in words]
        cfg = compose_config(overrides, tmp_path, data_dir)
        checks.check_overrides(cfg, overrides)
        checks.check_settings(cfg)
        if any(o.startswith("hydra/launcher=") for o in overrides):
            OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def test_readme_plot_commands_run_as_written(tmp_path, monkeypatch):
    multirun = _multirun_logs(tmp_path / "logs" / "train" / "multiruns" / "sweep", [["seed=1"]])
    run = tmp_path / "logs" / "train" / "runs" / "run"
    run.mkdir(parents=True)
    (run / "csv").symlink_to(multirun / "0" / "csv")
    monkeypatch.chdir(tmp_path)
    commands = [c for c in _readme_commands("Tracking") if c.startswith("graphformer-plot")]
    assert len(commands) == 2
    for command in commands:
        words = command.replace("<run>", "run").replace("<id>", "sweep").split()[1:]
        plot.main(words)
    assert (run / "curves.png").is_file() and (tmp_path / "curves.png").is_file()


def test_curves_have_whole_epoch_ticks(tmp_path, monkeypatch):
    """The curve plots had fractional epoch ticks (0.0, 0.5, 1.0 ...)."""
    import matplotlib.pyplot as plt

    figures = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda figure: figures.append(figure))
    plot.curves(_multirun_logs(tmp_path / "multirun", [["seed=1"]]))
    for axis in figures[0].axes:
        ticks = [t for t in axis.get_xticks() if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    close(figures[0])


DATA_CONFIGS = sorted(p.stem for p in (Path(__file__).parents[2] / "conf" / "data").glob("*.yaml"))


@pytest.mark.parametrize("data", DATA_CONFIGS)
@pytest.mark.parametrize("value", ["true", "false", "null"])
def test_every_data_config_takes_data_distances(data, value, tmp_path):
    """Issue 22, item 15: conf/model/graphormer.yaml and graphformer's own advice say
    ``data.distances=...``, but no data config had the key: Hydra refused the override
    ('Key 'distances' is not in struct')."""
    cfg = compose_config([f"data={data}", f"data.distances={value}"], tmp_path, tmp_path)
    assert cfg.data.distances == {"true": True, "false": False, "null": None}[value]
