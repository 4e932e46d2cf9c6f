"""``torch.compile`` for graphformer models: the graph-free parts, compiled in place.

Dynamo cannot trace through DGL: every DGL call breaks the graph (``dgl.ops`` hand tensors
to DGL's C library through ``torch._C._to_dlpack``, ``HeteroGraphIndex.metagraph`` calls a
packed C function, ``check_is_view`` reads ``UntypedStorage.data_ptr``), and the dense
engine's size groups read tensor values (``int(sizes.max())``, ``repeat_interleave`` with
data-dependent output sizes). Measured on the ``zinc_gps`` settings with 2 layers:
``torch._dynamo.explain`` finds 34 graphs and 33 breaks, and takes 94 s. Compiling the
whole model is therefore slower to start and not faster to run. :func:`compile_model`
compiles instead, in place (``nn.Module.compile``, so state-dict keys do not change), the
modules whose ``forward`` takes tensors only: every block's feed-forward network, the
MLPs inside mixers (GINE's), and the head, with dynamic shapes (batches change size).
Inductor on the CPU needs a C++ compiler.
"""

from __future__ import annotations

import shutil

from torch import nn

#: Attribute names of the graph-free submodules :func:`compile_model` compiles.
COMPILED = ("ffn", "mlp", "head")


def compile_model(model: nn.Module, dynamic: bool = True, **options: object) -> list[str]:
    r"""Compile ``model``'s graph-free submodules in place (module docstring); returns
    their names. ``options`` go to ``torch.compile`` (``mode``, ``backend``, ...).

    Raises RuntimeError when no C++ compiler is on the PATH (inductor's CPU backend needs
    one) and ``backend`` is not given.
    """
    if "backend" not in options and not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
        raise RuntimeError(
            "model.compile needs a C++ compiler for torch.compile's inductor backend on the "
            "CPU, and none (g++, c++, clang++) is on the PATH: install one (e.g. apt-get "
            "install g++), or set model.compile=false"
        )
    names = []
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] in COMPILED and isinstance(module, nn.Sequential):
            module.compile(dynamic=dynamic, **options)
            names.append(name)
    return names
