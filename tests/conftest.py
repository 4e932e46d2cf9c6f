"""Session-wide test setup: seeding, and a summary of errors measured against references."""

from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

# First, before torch loads: install() sets DGLBACKEND, and OMP_WAIT_POLICY=PASSIVE where torch
# bundles a second OpenMP runtime beside DGL's (then the two would spin against each other and
# this suite ran ~7x slower).
import graphformer  # noqa: F401

import pytest
import torch
from helpers import ERRORS
from training import SHARED_DGL, SMALL, compose_config


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Shared by the session's runs: CLUSTER is generated once; Cora is a writable copy."""
    root = tmp_path_factory.mktemp("data")
    if SHARED_DGL.is_dir():
        shutil.copytree(SHARED_DGL, root / "dgl")
    return root


#: A small CLUSTER and a small model: one epoch trains in seconds.
SMALL_RUN = [*SMALL, "trainer.max_epochs=1", "logger=csv"]


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """wandb offline in the test's folder, with no credentials to find."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


@dataclass
class FinishedRun:
    """A run of ``graphformer-train`` that has ended: its folder and what it printed."""

    output_dir: Path
    report: str

    @property
    def last(self) -> Path:
        return self.output_dir / "checkpoints" / "last.ckpt"

    @property
    def best(self) -> Path:
        return next((self.output_dir / "checkpoints").glob("epoch_*.ckpt"))


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, data_dir) -> FinishedRun:
    """One epoch of :data:`SMALL_RUN`, in a folder whose name has a space (as users' do).

    Read-only: copy a checkpoint before damaging it.
    """
    from graphformer.cli.train import train

    output_dir = tmp_path_factory.mktemp("finished run")
    cfg = compose_config(SMALL_RUN, output_dir, data_dir)
    with contextlib.redirect_stdout(io.StringIO()) as report:
        train(cfg)
    return FinishedRun(output_dir, report.getvalue())


def pytest_terminal_summary(terminalreporter):
    if ERRORS:
        terminalreporter.section("largest absolute error per reference")
        width = max(map(len, ERRORS))
        for name, error in sorted(ERRORS.items()):
            terminalreporter.write_line(f"{name:<{width}}  {error:.3e}")
