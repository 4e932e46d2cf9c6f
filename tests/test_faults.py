"""Interrupted and failing runs: SIGKILL mid-epoch or mid-checkpoint, SIGTERM (preemption),
and a failing DDP rank.

Each test runs ``python -m graphformer.train`` in a subprocess with a fault-injecting
callback from ``tests/faults.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)

import pytest
import torch

TESTS = Path(__file__).resolve().parent
#: 64 training graphs in batches of 16: 4 steps per epoch.
SMALL = [
    "data.train_graphs=64",
    "data.val_graphs=16",
    "data.test_graphs=16",
    "data.batch_size=16",
    "model.block.dim=16",
    "model.num_layers=2",
    "logger=none",
    "callbacks.rich_progress_bar=null",
    "callbacks.early_stopping=null",
    "trainer.max_epochs=4",
]
STEPS_PER_EPOCH = 4

pytestmark = pytest.mark.slow


def train(run_dir: Path, data_dir: Path, *overrides: str, timeout: int = 240):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "graphformer.train",
        *SMALL,
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    # From outside the checkout, so the installed package (with its configs) is imported.
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, cwd=run_dir.parent
    )


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_sigkill_mid_epoch_then_resume_finishes_the_same_schedule(tmp_path, data_dir):
    killed = train(
        tmp_path / "killed",
        data_dir,
        "+callbacks.fault._target_=faults.KillAt",
        "+callbacks.fault.epoch=2",
        "+callbacks.fault.batch=2",
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    saved = load(last)  # intact: it loads
    assert (saved["epoch"], saved["global_step"]) == (1, 2 * STEPS_PER_EPOCH)
    assert not list(last.parent.glob("*.partial"))

    resumed = train(tmp_path / "resumed", data_dir, f"ckpt_path={last}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = load(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert (final["epoch"], final["global_step"]) == (3, 4 * STEPS_PER_EPOCH)


def test_sigterm_exits_143_with_the_last_epoch_saved_and_says_how_to_resume(tmp_path, data_dir):
    """Lightning stops on SIGTERM with a bare SystemExit (status 0): a scheduler would see a
    preempted job as a success and never requeue it."""
    stopped = train(
        tmp_path / "stopped",
        data_dir,
        "+callbacks.fault._target_=faults.TermAt",
        "+callbacks.fault.epoch=2",
        "+callbacks.fault.batch=1",
    )
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    saved = load(last)
    assert (saved["epoch"], saved["global_step"]) == (1, 2 * STEPS_PER_EPOCH)
    assert "SIGTERM received: training stopped in epoch 2" in stopped.stderr
    assert f"ckpt_path={last}" in stopped.stderr
    assert "graphformer run finished" not in stopped.stdout  # no test of a half-trained model


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, data_dir):
    killed = train(
        tmp_path / "killed",
        data_dir,
        "+callbacks.fault._target_=faults.KillWhileSaving",
        "+callbacks.fault.save=3",
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    folder = tmp_path / "killed" / "checkpoints"
    partial = list(folder.glob("*.partial"))
    assert len(partial) == 1  # the half-written file, never renamed
    with pytest.raises(Exception):  # noqa: B017  (truncated: torch raises one of several)
        load(partial[0])
    for checkpoint in folder.glob("*.ckpt"):
        assert load(checkpoint)["global_step"] > 0  # every visible checkpoint is whole

    resumed = train(tmp_path / "resumed", data_dir, f"ckpt_path={folder / 'last.ckpt'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]


def test_an_exception_on_one_ddp_rank_fails_the_whole_job(tmp_path, data_dir):
    failed = train(
        tmp_path / "ddp",
        data_dir,
        "trainer=ddp_sim",
        "+callbacks.fault._target_=faults.RaiseOnRank",
        "+callbacks.fault.rank=1",
        timeout=180,  # a hang would raise subprocess.TimeoutExpired
    )
    assert failed.returncode != 0
    assert "rank 1 failed on purpose" in failed.stderr
