"""The one place that knows DGL's packaging quirks.

PyPI's DGL 2.1.0 ships its C++ plugins (graphbolt, dgl_sparse, tensoradapter) only for
torch 2.0.0–2.2.1. Under a newer torch, ``import dgl`` dies inside ``dgl.graphbolt``,
which needs ``torchdata.datapipes`` and ``libgraphbolt_pytorch_<torch version>``.
graphformer uses none of graphbolt, and DGL reads no graphbolt attribute at import time,
so :func:`install` puts a finder first on ``sys.meta_path`` that answers for
``dgl.graphbolt`` with a stand-in module whose every attribute raises an ImportError
naming the cause. When the wheel does ship the plugin for the running torch, the finder
declines and DGL imports its real graphbolt.

Why not a ``.pth`` file that installs the finder at interpreter start? It would run in
every Python process of the environment, including ones that never use graphformer, and
setuptools cannot ship one in a wheel without custom build commands that editable
installs do not run. The rule instead: ``import graphformer`` before ``import dgl``.
graphformer's ``__init__`` installs the finder, so spawned DDP and dataloader workers,
which re-import graphformer, get it too.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

GRAPHBOLT = "dgl.graphbolt"


def _torch_version() -> str:
    """The running torch's release without its local tag (``2.13.0+cpu`` → ``2.13.0``).

    Only called while DGL imports graphbolt, by which time DGL has imported torch.
    """
    import torch

    return torch.__version__.split("+", 1)[0]


def graphbolt_library(dgl_dir: Path, torch_version: str) -> Path:
    """Where DGL looks for its graphbolt plugin for ``torch_version`` (Linux naming)."""
    suffix = {"darwin": "dylib", "win32": "dll"}.get(sys.platform, "so")
    prefix = "" if sys.platform == "win32" else "lib"
    return dgl_dir / "graphbolt" / f"{prefix}graphbolt_pytorch_{torch_version}.{suffix}"


class _MissingGraphbolt(ModuleType):
    """Stand-in for ``dgl.graphbolt``: importable, but every attribute names the cause."""

    def __init__(self, name: str, library: Path) -> None:
        super().__init__(name)
        self.__file__ = None
        self._library = library

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(
            f"dgl.graphbolt.{attr} is unavailable: this DGL wheel has no graphbolt plugin "
            f"for torch {_torch_version()} (looked for {self._library}). graphformer does "
            "not use graphbolt; to use it yourself, install a torch version that your DGL "
            "ships plugins for (DGL 2.1.0: torch 2.0.0–2.2.1)."
        )


class GraphboltFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Claims ``dgl.graphbolt`` only when the plugin for the running torch is missing."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != GRAPHBOLT or not path:
            return None
        library = graphbolt_library(Path(next(iter(path))), _torch_version())
        if library.exists():
            return None  # DGL supports this torch: stay out of the way.
        return importlib.machinery.ModuleSpec(fullname, self, origin=str(library))

    def create_module(self, spec):
        return _MissingGraphbolt(spec.name, Path(spec.origin))

    def exec_module(self, module):
        return None


#: The OpenMP runtime DGL's Linux wheels link, by its SONAME.
DGL_OPENMP = "libgomp.so.1"
#: File names of OpenMP runtimes a torch wheel may bundle in ``torch/lib``.
OPENMP_RUNTIMES = ("libgomp*.so*", "libiomp*.so*", "libomp*.so*", "libomp*.dylib")


def second_openmp_runtime(torch_lib: Path | None) -> str | None:
    """The OpenMP runtime bundled in ``torch_lib`` (torch's ``lib`` folder) that would run
    *beside* DGL's ``libgomp.so.1``, or None when there is none.

    A runtime bundled under DGL's own SONAME is shared: torch loads it first and DGL's
    kernels then resolve to it (torch 2.13's and 2.14's wheels bundle ``libgomp.so.1``).
    One under a private name (``libgomp-a34b3233.so.1``, as older torch wheels bundled it,
    or Intel's ``libiomp5.so``) is a second runtime with its own thread pool.
    """
    if torch_lib is None or not torch_lib.is_dir():
        return None
    for pattern in OPENMP_RUNTIMES:
        for library in sorted(torch_lib.glob(pattern)):
            if library.name != DGL_OPENMP:
                return library.name
    return None


def _torch_lib() -> Path | None:
    """torch's ``lib`` folder, found without importing torch."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def install() -> None:
    """Make ``import dgl`` work, and run fast, under current torch. Idempotent, import-free.

    Also sets ``OMP_WAIT_POLICY=PASSIVE``, unless the caller chose a policy, when torch
    bundles a second OpenMP runtime beside DGL's (:func:`second_openmp_runtime`): with
    two runtimes' idle threads spin-waiting for the same cores, every DGL kernel call
    costs milliseconds on a small machine (measured on 2 cores with such a torch: one epoch
    of the main job 87 s → 29 s). With one shared runtime (torch 2.13, 2.14) the policy is
    left to libgomp's default, spin briefly and then sleep: ``PASSIVE`` there wakes a
    sleeping thread for every parallel op, and made the ``zinc_gps`` recipe's training
    step 2.8x slower (``experiments/bench/README.md``, issue 23's fifth pass). It only
    takes effect when graphformer is imported before torch, as the command-line tools do.
    """
    os.environ.setdefault("DGLBACKEND", "pytorch")
    if second_openmp_runtime(_torch_lib()) is not None:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if not any(isinstance(finder, GraphboltFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, GraphboltFinder())
