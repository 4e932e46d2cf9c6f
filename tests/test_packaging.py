"""The package ships what users need: every subpackage, the configs, the console scripts."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_setup_cfg_lists_every_package():
    listed = configparser.ConfigParser()
    listed.read(ROOT / "setup.cfg")
    packages = set(listed["options"]["packages"].split())
    on_disk = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "graphformer").rglob("__init__.py")
    }
    assert on_disk | {"graphformer.conf"} == packages


def test_nn_imports_without_training_stack():
    """`graphformer.nn` must import with Lightning, Hydra and wandb absent."""
    code = (
        "import sys\n"
        "for name in ('lightning', 'hydra', 'wandb', 'torchmetrics', 'omegaconf'):\n"
        "    sys.modules[name] = None\n"
        "import graphformer.nn\n"
        "assert not any(m in sys.modules and sys.modules[m] for m in ('lightning', 'hydra'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("script", ["graphformer-train", "graphformer-eval"])
def test_console_scripts_are_installed(script):
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / script).is_file(), f"{script} missing from {bin_dir}; reinstall the package"
