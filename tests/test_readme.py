"""Every Python block of README.md runs as written, each in a fresh interpreter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)

#: Appended to the LightningModule example: it trained, and every parameter moved.
TRAINED = """
module = trainer.lightning_module
assert trainer.global_step == 4, trainer.global_step
assert torch.isfinite(trainer.callback_metrics["train/loss"])
assert all(p.grad is not None for p in module.parameters())
"""


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path):
    code = BLOCKS[index]
    if "LightningModule" in code:
        code += TRAINED
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"README block {index}:\n{code}\n{result.stderr[-3000:]}"
