"""model.compile: the compiled graph-free parts compute what eager does; clear refusals."""

from __future__ import annotations

import shutil

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import BlockConfig, GraphTransformer

import pytest
import torch
from helpers import assert_close, random_graph

BLOCK = BlockConfig(
    dim=8, mixer="gps", local_mixer="gine", num_heads=2, norm="batch", prenorm=False
)


def model(compile: bool) -> GraphTransformer:
    torch.manual_seed(0)
    return GraphTransformer(
        2, BLOCK, 2, in_dim=3, edge_in_dim=2, level="graph", head_layers=2, compile=compile
    )


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="inductor needs a C++ compiler")
def test_compiled_model_equals_eager_outputs_and_gradients():
    eager, compiled = model(False), model(True)
    assert compiled.compiled == [
        "blocks.0.local.mlp",
        "blocks.0.ffn",
        "blocks.1.local.mlp",
        "blocks.1.ffn",
        "head",
    ]
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    for sizes, seed in (([5, 4], 1), ([7, 3, 6], 2)):  # two batch sizes: dynamic shapes
        graph = random_graph(sizes, p=0.5, seed=seed)
        x, e = torch.randn(graph.num_nodes(), 3), torch.randn(graph.num_edges(), 2)
        outs = []
        for m in (eager, compiled):
            m.zero_grad()
            out = m(graph, x, e)
            out.square().sum().backward()
            outs.append((out, [p.grad for p in m.parameters()]))
        assert_close("compiled vs eager output", outs[1][0], outs[0][0])
        for ours, theirs in zip(outs[1][1], outs[0][1], strict=True):
            assert_close("compiled vs eager gradient", ours, theirs)


def test_compile_flag_is_checked_and_names_a_missing_compiler(monkeypatch):
    with pytest.raises(ValueError, match="compile must be true or false; got 'yes'"):
        GraphTransformer(2, BLOCK, 1, in_dim=3, compile="yes")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"needs a C\+\+ compiler .* model\.compile=false"):
        GraphTransformer(2, BLOCK, 1, in_dim=3, compile=True)
