"""The DGL compatibility hook (graphformer/_dgl.py): `import dgl` works and stays quiet."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer import _dgl
from graphformer._dgl import GraphboltFinder, install

import dgl
import pytest
import torch

TORCH_VERSION = torch.__version__.split("+", 1)[0]
REAL_GRAPHBOLT = _dgl.graphbolt_library(Path(dgl.__file__).parent, TORCH_VERSION).exists()


def _finders() -> list[GraphboltFinder]:
    return [finder for finder in sys.meta_path if isinstance(finder, GraphboltFinder)]


def test_import_graphformer_then_dgl_is_clean(tmp_path):
    """With warnings as errors, no DGLBACKEND and a fresh HOME: exit 0, nothing printed."""
    env = {key: value for key, value in os.environ.items() if key != "DGLBACKEND"}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import graphformer, dgl"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""
    assert not (tmp_path / ".dgl").exists(), "DGL wrote its config: DGLBACKEND was not set"


@pytest.mark.skipif(REAL_GRAPHBOLT, reason="this DGL ships graphbolt for the running torch")
def test_graphbolt_attribute_names_cause_and_remedy():
    with pytest.raises(ImportError) as info:
        dgl.graphbolt.ItemSampler  # noqa: B018
    message = str(info.value)
    assert "graphbolt" in message
    assert "ItemSampler" in message
    assert re.search(rf"torch {re.escape(TORCH_VERSION)}\b", message)
    assert re.search(r"install a torch version", message)


@pytest.mark.skipif(REAL_GRAPHBOLT, reason="this DGL ships graphbolt for the running torch")
def test_graphbolt_stand_in_answers_dunders_with_attribute_error():
    """hasattr/getattr probes (pickle, inspect, copy) must not see an ImportError."""
    assert not hasattr(dgl.graphbolt, "__path__")
    assert getattr(dgl.graphbolt, "__wrapped__", None) is None


@pytest.fixture
def fake_dgl(tmp_path):
    """A fake DGL package directory with an (empty) graphbolt folder."""
    (tmp_path / "dgl" / "graphbolt").mkdir(parents=True)
    return tmp_path / "dgl"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux library naming")
def test_finder_steps_aside_when_plugin_exists(fake_dgl):
    (fake_dgl / "graphbolt" / f"libgraphbolt_pytorch_{TORCH_VERSION}.so").touch()
    assert GraphboltFinder().find_spec("dgl.graphbolt", [str(fake_dgl)]) is None


def test_finder_claims_graphbolt_when_plugin_missing(fake_dgl):
    # A plugin for another torch version does not count.
    (fake_dgl / "graphbolt" / "libgraphbolt_pytorch_2.0.0.so").touch()
    spec = GraphboltFinder().find_spec("dgl.graphbolt", [str(fake_dgl)])
    assert spec is not None
    assert spec.name == "dgl.graphbolt"
    assert TORCH_VERSION in spec.origin
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ImportError, match=r"graphbolt.*torch"):
        module.anything  # noqa: B018


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("dgl", None),
        ("dgl.sparse", ["{dgl}"]),
        ("dgl.graphbolt.base", ["{dgl}/graphbolt"]),
        ("graphbolt", None),
        ("dgl.graphbolt", None),
    ],
)
def test_finder_ignores_other_modules(fake_dgl, name, path):
    path = None if path is None else [p.format(dgl=fake_dgl) for p in path]
    assert GraphboltFinder().find_spec(name, path) is None


def test_install_is_idempotent_and_first(monkeypatch):
    monkeypatch.setattr(
        sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, GraphboltFinder)]
    )
    install()
    install()
    assert len(_finders()) == 1
    assert isinstance(sys.meta_path[0], GraphboltFinder)


def test_graphformer_import_installed_exactly_one_finder():
    install()
    assert len(_finders()) == 1


def test_install_sets_dglbackend_only_when_unset(monkeypatch):
    monkeypatch.delenv("DGLBACKEND", raising=False)
    install()
    assert os.environ["DGLBACKEND"] == "pytorch"
    monkeypatch.setenv("DGLBACKEND", "tensorflow")
    install()
    assert os.environ["DGLBACKEND"] == "tensorflow"


@pytest.mark.parametrize(
    ("files", "second"),
    [
        ([], None),  # no bundled runtime (a conda torch links the environment's libgomp)
        (["libgomp.so.1", "libtorch_cpu.so"], None),  # torch 2.13/2.14 wheels: shared SONAME
        (["libgomp-a34b3233.so.1", "libtorch_cpu.so"], "libgomp-a34b3233.so.1"),
        (["libiomp5.so"], "libiomp5.so"),
    ],
)
def test_second_openmp_runtime(tmp_path, files, second):
    for name in files:
        (tmp_path / name).touch()
    assert _dgl.second_openmp_runtime(tmp_path) == second
    assert _dgl.second_openmp_runtime(tmp_path / "missing") is None
    assert _dgl.second_openmp_runtime(None) is None


@pytest.mark.parametrize(
    ("files", "policy"), [(["libgomp.so.1"], None), (["libiomp5.so"], "PASSIVE")]
)
def test_install_sets_passive_wait_only_beside_a_second_runtime(
    monkeypatch, tmp_path, files, policy
):
    """PASSIVE where torch's OpenMP would spin against DGL's; libgomp's default where the
    two share one runtime (PASSIVE there made small-batch steps 2.8x slower); a policy the
    caller set is kept."""
    for name in files:
        (tmp_path / name).touch()
    monkeypatch.setattr(_dgl, "_torch_lib", lambda: tmp_path)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    install()
    assert os.environ.get("OMP_WAIT_POLICY") == policy
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    install()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_torch_lib_is_the_running_torchs():
    """Found without importing torch, it is the folder the running torch loads from."""
    assert _dgl._torch_lib() == Path(torch.__file__).parent / "lib"
