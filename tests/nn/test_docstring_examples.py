"""The ``>>>`` examples in graphformer.nn's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import graphformer.nn  # (graphformer first: before DGL)

import pytest
import torch

MODULES = sorted(info.name for info in pkgutil.iter_modules(graphformer.nn.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"graphformer.nn.{name}")
    torch.manual_seed(0)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, module.__name__):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize("name", graphformer.nn.__all__)
def test_every_public_layer_has_an_example(name):
    """Each public class and function of graphformer.nn shows its use in a ``>>>`` example."""
    obj = getattr(graphformer.nn, name)
    assert ">>>" in (inspect.getdoc(obj) or ""), f"graphformer.nn.{name} has no >>> example"
