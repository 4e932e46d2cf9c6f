"""The environment `make setup` builds: released versions only, and consistent."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import Version

#: Always checked, whether or not graphformer requires them directly: their release
#: candidates broke ddp_spawn pickling and the Optuna sweeper (see pyproject.toml).
HYDRA = ("hydra-core", "omegaconf")


def installed_requirements() -> set[str]:
    """graphformer's requirements, extras included, that are installed here."""
    names = set(HYDRA)
    for line in metadata.requires("graphformer") or []:
        name = Requirement(line).name
        if name != "graphformer":
            names.add(name)
    result = set()
    for name in names:
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        result.add(name)
    return result


def test_no_dependency_is_a_prerelease():
    names = installed_requirements()
    assert set(HYDRA) <= names
    prereleases = {
        name: metadata.version(name)
        for name in names
        if Version(metadata.version(name)).is_prerelease
    }
    assert not prereleases, f"prereleases installed: {prereleases}; reinstall with `make setup`"


def test_pip_check_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
