"""Session-wide test setup: seeding, and a summary of errors measured against references."""

from __future__ import annotations

import shutil
from pathlib import Path

# First, before torch loads: install() sets DGLBACKEND and OMP_WAIT_POLICY=PASSIVE (without
# it, DGL's and torch's OpenMP runtimes spin against each other and this suite runs ~7x slower).
import graphformer  # noqa: F401

import pytest
import torch
from helpers import ERRORS
from training import SHARED_DGL


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


def pytest_terminal_summary(terminalreporter):
    if ERRORS:
        terminalreporter.section("largest absolute error per reference")
        width = max(map(len, ERRORS))
        for name, error in sorted(ERRORS.items()):
            terminalreporter.write_line(f"{name:<{width}}  {error:.3e}")
