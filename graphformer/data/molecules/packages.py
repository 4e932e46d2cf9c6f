"""Data files inside PyPI packages, found without importing the packages.

``qm9pack`` imports ``pkg_resources`` and ``setuptools`` at import time, ``B3DB`` reads
all of its tables (≈ 80 MB) when imported, and ``moses`` (the ``molsets`` wheel) imports
its generative models, whose requirements (``pomegranate==0.12.0``, no wheel for Python
3.11) are not installed: ``pip install --no-deps molsets`` installs its files only, and
``make setup`` installs them outside site-packages (``pip install --no-deps --target
<venv>/molsets molsets``; ``$GRAPHFORMER_MOLSETS`` names another such folder), so that
``pip check`` of the environment stays clean. The files are located with
:func:`importlib.util.find_spec`, which runs no package code.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from graphformer.data.molecules.features import INSTALL


@dataclass(frozen=True)
class PackageData:
    """A data file shipped inside a package.

    Parameters
    ----------
    module : the import name of the package (``qm9pack``, ``moses``, ``B3DB``).
    distribution : its name on PyPI (``qm9pack``, ``molsets``, ``qc-b3db``).
    install : the command that installs it.
    private : also look for ``<folder>/<module>`` in these folders when the package is
        not importable (``molsets`` installed with ``pip install --target``, so that its
        unmet requirements do not break ``pip check`` of the environment).
    note : appended to the install advice.
    """

    module: str
    distribution: str
    install: str
    private: tuple[str, ...] = ()
    note: str = ""

    def places(self) -> list[Path]:
        """The folders searched after the import path, in order."""
        return [Path(folder) / self.module for folder in self.private if folder]

    def folder(self) -> Path:
        """The package's folder, or an ImportError saying what to install."""
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        locations += [place for place in self.places() if place.is_dir()]
        if not locations:
            searched = "".join(f", nor in {place}" for place in self.places())
            raise ImportError(
                f"this dataset reads its data from the {self.distribution!r} package (import "
                f"name {self.module!r}), which is not installed{searched}. Install it with "
                f"`{self.install}`{self.note}."
            )
        return Path(locations[0])

    def file(self, relative: str) -> Path:
        """``<package folder>/<relative>``, or a FileNotFoundError naming it."""
        path = self.folder() / relative
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing from the installed {self.distribution!r} package "
                f"(version {self.version()}); reinstall it with `{self.install}`"
            )
        return path

    def version(self) -> str:
        """The installed distribution's version (part of cache keys), or ``'unknown'``."""
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            pass
        for place in self.places():
            for found in importlib.metadata.distributions(path=[str(place.parent)]):
                if found.metadata["Name"].lower() == self.distribution.lower():
                    return found.version
        return "unknown"


QM9PACK = PackageData("qm9pack", "qm9pack", INSTALL)
#: Where ``make setup`` installs molsets (``pip install --no-deps --target``).
MOLSETS_TARGET = Path(sys.prefix) / "molsets"
MOLSETS = PackageData(
    "moses",
    "molsets",
    f"pip install --no-deps --target {MOLSETS_TARGET} molsets==0.3.1",
    (os.environ.get("GRAPHFORMER_MOLSETS", ""), str(MOLSETS_TARGET)),
    note=" (as `make setup` does; `pip install --no-deps molsets` works too but leaves its "
    "unmet requirements to `pip check`). Its own requirements (pomegranate==0.12.0) do not "
    "install on Python 3.11; only its data file is read",
)
B3DB = PackageData("B3DB", "qc-b3db", INSTALL)
