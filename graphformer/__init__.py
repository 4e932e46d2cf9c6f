"""graphformer: graph Transformers as DGL message passing.

Import graphformer before DGL: this installs the DGL compatibility hook (see ``_dgl``).
``graphformer.graphs`` and ``graphformer.nn`` (which import torch and DGL, ~3 s) load on
first use, so the command-line tools answer ``--help`` and config errors without them.
"""

import importlib

from graphformer import _dgl

_dgl.install()

__version__ = "0.1.0"
__all__ = ["__version__", "graphs", "nn"]

_LAZY = ("graphs", "nn")


def __getattr__(name: str):
    """``graphformer.graphs`` / ``graphformer.nn``, imported on first access."""
    if name in _LAZY:
        return importlib.import_module(f"graphformer.{name}")
    raise AttributeError(f"module 'graphformer' has no attribute {name!r}")
