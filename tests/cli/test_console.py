"""What a user sees: a main-job-like run prints no library noise and keeps its log file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: The main job's defaults (wandb offline, default callbacks), on fewer and smaller graphs.
SMALL = [
    "data.train_graphs=48",
    "data.val_graphs=16",
    "data.test_graphs=16",
    "data.batch_size=4",
    "model.block.dim=16",
    "model.num_layers=1",
    "trainer.max_epochs=1",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("console")
    run_dir = root / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    command = [
        sys.executable,
        "-m",
        "graphformer.train",
        *SMALL,
        f"paths.data_dir={root / 'data'}",
        f"hydra.run.dir={run_dir}",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr, run_dir


def test_output_has_no_library_noise(run):
    output, _ = run
    warnings = [line for line in output.splitlines() if "warn" in line.lower()]
    assert len(warnings) <= 2, warnings
    for noise in ("Tip:", "anonymous", "deprecated", "Trainer already configured"):
        assert noise not in output


def test_dataset_generation_reports_progress(run):
    output, _ = run
    assert "generating CLUSTER train graphs: 48/48" in output
    assert "computing positional encodings (LapPE, k=8): 48/48" in output


def test_run_log_holds_the_run(run):
    _, run_dir = run
    log = (run_dir / "train.log").read_text()
    expected = ("Seed set to 42", "generating CLUSTER", "graphformer run finished", "test/acc")
    for line in expected:
        assert line in log
