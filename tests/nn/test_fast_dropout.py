"""Opt-in fast dropout: drop rate, scaling, the folded ReLU, eval identity, the switch;
GatedGCN with it equals GatedGCN without it outside training."""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import BlockConfig, GatedGCN, GraphTransformer
from graphformer.nn.core.dropout import fast_dropout

import pytest
import torch
from helpers import random_graph


def test_fast_dropout_drops_at_rate_p_and_scales_the_rest():
    torch.manual_seed(0)
    x = torch.rand(200_000) + 0.5  # all positive
    for p in (0.1, 0.5):
        y = fast_dropout(x, p)
        dropped = (y == 0).float().mean().item()
        assert abs(dropped - p) < 0.005, (p, dropped)
        kept = y != 0
        assert torch.allclose(y[kept], x[kept] / (1 - p))
    assert torch.equal(fast_dropout(x, 0.3, training=False), x)
    assert torch.equal(fast_dropout(x, 0.0), x)


def test_fast_dropout_folds_the_relu_and_passes_gradients_through_kept_entries():
    torch.manual_seed(1)
    x = torch.randn(3, 1001, requires_grad=True)  # odd size: the random words are cut
    y = fast_dropout(x, 0.2, relu=True)
    assert y.shape == x.shape and (y >= 0).all()
    assert ((y != 0) <= (x > 0)).all(), "negative inputs are zero"
    y.sum().backward()
    assert torch.allclose(x.grad, (y != 0).float() / 0.8)
    assert torch.equal(fast_dropout(x, 0.2, training=False, relu=True), torch.relu(x))


def test_fast_dropout_names_bad_probability_and_switch():
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\); got 1.0"):
        fast_dropout(torch.ones(3), 1.0)
    assert not GatedGCN(4).fast_dropout and GatedGCN(4, fast_dropout=True).fast_dropout
    with pytest.raises(ValueError, match="fast_dropout must be True or False; got 'yes'"):
        GatedGCN(4, fast_dropout="yes")
    with pytest.raises(ValueError, match="fast_dropout must be True or False; got 1"):
        BlockConfig(fast_dropout=1)


def test_the_block_setting_reaches_every_gatedgcn_of_a_model():
    """Layers built from configs opt in through ``model.block.fast_dropout``."""
    for flag in (False, True):
        block = BlockConfig(dim=8, mixer="gps", local_mixer="gatedgcn", fast_dropout=flag)
        model = GraphTransformer(3, block, 2, in_dim=4)
        layers = [m for m in model.modules() if isinstance(m, GatedGCN)]
        assert len(layers) == 2 and all(layer.fast_dropout is flag for layer in layers)


def test_gatedgcn_with_fast_dropout_equals_without_outside_training():
    graph = random_graph([6, 5], p=0.4, seed=2)
    torch.manual_seed(0)
    plain = GatedGCN(5, dropout=0.3, fast_dropout=False)
    fast = GatedGCN(5, dropout=0.3, fast_dropout=True)
    fast.load_state_dict(plain.state_dict())
    x, e = torch.randn(graph.num_nodes(), 5), torch.randn(graph.num_edges(), 5)
    plain.train(), fast.train()
    plain(graph, x, e), fast(graph, x, e)  # the same BatchNorm statistics updates
    plain.eval(), fast.eval()
    for a, b in zip(plain(graph, x, e), fast(graph, x, e), strict=True):
        assert torch.equal(a, b)
    fast.train()
    _, e_out = fast(graph, x, e)
    assert ((e_out - e) >= 0).all(), "edge update = dropout(relu(...)) ≥ 0"
