"""Opt-in fast dropout: drop rate, scaling, the folded ReLU, eval identity, the switch;
GatedGCN with it equals GatedGCN without it outside training; attention's written-out SDPA
with fast masks against a dense reference, its gradients, and the attention mixers' switch;
the blocks' own dropouts (FastDropout) and a model with every dropout fast."""

from __future__ import annotations

import math

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import complete_graph
from graphformer.nn import BlockConfig, GatedGCN, GraphTransformer, MultiHeadAttention
from graphformer.nn.core.dense import Padding, padded_attention
from graphformer.nn.core.dropout import FastDropout, fast_dropout, keep_mask, random_words

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


def test_half_dropout_takes_one_random_bit_per_element():
    """At p = 0.5 element j·B + i is bit j of random byte i (B bytes): exactly Bernoulli(1/2),
    a 64th as many 64-bit draws as elements (the generator advances by just those), and
    neighbours independent."""
    shape, numel = (3, 1001), 3003  # odd size: the last word's bits are cut
    planes = (numel + 7) // 8
    torch.manual_seed(7)
    mask = keep_mask(torch.Size(shape), 0.5, torch.device("cpu"))
    after = torch.rand(3)
    torch.manual_seed(7)
    bytes_ = random_words((planes + 7) // 8, torch.device("cpu")).view(torch.uint8)[:planes]
    assert torch.equal(torch.rand(3), after), "the same number of draws"
    expected = torch.stack([(bytes_ >> j) & 1 for j in range(8)]).view(-1)[:numel]
    assert mask.dtype == torch.bool and torch.equal(mask.view(-1), expected.bool())
    torch.manual_seed(8)
    big = keep_mask(torch.Size([400_000]), 0.5, torch.device("cpu")).float()
    assert abs(big.mean().item() - 0.5) < 0.005
    for lag in (1, 8, 50_000):  # 50,000 = B: the same byte's next bit
        both = (big[:-lag] * big[lag:]).mean().item()
        assert abs(both - 0.25) < 0.005, (lag, both)


def test_fast_dropout_folds_the_relu_and_passes_gradients_through_kept_entries():
    torch.manual_seed(1)
    x = torch.randn(3, 1001, requires_grad=True)  # odd size: the random words are cut
    y = fast_dropout(x, 0.2, relu=True)
    assert y.shape == x.shape and (y >= 0).all()
    assert ((y != 0) <= (x > 0)).all(), "negative inputs are zero"
    y.sum().backward()
    assert torch.allclose(x.grad, (y != 0).float() / 0.8)
    assert torch.equal(fast_dropout(x, 0.2, training=False, relu=True), torch.relu(x))


def test_fast_dropout_adds_the_residual_in_its_pass_with_the_same_mask_and_gradients():
    torch.manual_seed(2)
    x = torch.randn(4, 777, requires_grad=True)
    skip = torch.randn(4, 777, requires_grad=True)
    for relu in (False, True):
        torch.manual_seed(9)
        fused = fast_dropout(x, 0.3, relu=relu, residual=skip)
        torch.manual_seed(9)
        plain = skip + fast_dropout(x, 0.3, relu=relu)
        assert torch.allclose(fused, plain, atol=1e-6)  # addcmul's fused multiply-add
        grad = torch.randn_like(fused)
        ours = torch.autograd.grad(fused, (x, skip), grad)
        theirs = torch.autograd.grad(plain, (x, skip), grad)
        for a, b in zip(ours, theirs, strict=True):
            assert torch.allclose(a, b, atol=1e-6)
        outside = fast_dropout(x, 0.3, training=False, relu=relu, residual=skip)
        assert torch.equal(outside, skip + (torch.relu(x) if relu else x))


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


def _qkv_and_mask(dtype=torch.float32, requires_grad=False):
    torch.manual_seed(3)
    q, k, v = (torch.randn(3, 2, 7, 4, dtype=dtype, requires_grad=requires_grad) for _ in "qkv")
    valid = torch.arange(7) < torch.tensor([7, 5, 2]).unsqueeze(1)  # three padded samples
    return q, k, v, valid[:, None, None, :]


@pytest.mark.parametrize("additive", [False, True])
def test_padded_attention_with_fast_dropout_equals_the_dense_formula_with_its_mask(additive):
    """softmax(s QKᵀ + M) ⊙ keep / (1 - p) V, the keep mask being fast_dropout's draws for the
    same seed; both mask kinds (boolean valid keys, additive 0 / -inf)."""
    q, k, v, valid = _qkv_and_mask()
    mask = torch.zeros(valid.shape).masked_fill(~valid, -math.inf) if additive else valid
    p, scale = 0.4, 0.3
    torch.manual_seed(11)
    out = padded_attention(q, k, v, mask, p, scale, fast_dropout=True)
    torch.manual_seed(11)
    keep = fast_dropout(torch.ones(3, 2, 7, 7), p)  # 0 or 1 / (1 - p)
    scores = (q @ k.transpose(-2, -1)) * scale
    weights = torch.softmax(scores.masked_fill(~valid, -math.inf), dim=-1)
    assert torch.allclose(out, (weights * keep) @ v, atol=1e-6)
    assert not torch.allclose(out, weights @ v, atol=1e-3), "the mask dropped something"
    # without dropout (or without the switch) it is SDPA
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=valid, scale=scale)
    for fast in (False, True):
        assert torch.allclose(padded_attention(q, k, v, mask, 0.0, scale, fast), sdpa, atol=1e-6)


def test_padded_attention_with_fast_dropout_has_exact_gradients():
    q, k, v, valid = _qkv_and_mask(torch.float64, requires_grad=True)

    def attend(q, k, v):
        torch.manual_seed(5)  # the same mask at every evaluation
        return padded_attention(q, k, v, valid, 0.3, None, fast_dropout=True)

    assert torch.autograd.gradcheck(attend, (q, k, v))


def test_the_block_setting_reaches_every_attention_and_is_identity_outside_training():
    for flag in (False, True):
        block = BlockConfig(dim=8, num_heads=2, mixer="gps", attn_dropout=0.5, fast_dropout=flag)
        model = GraphTransformer(3, block, 2, in_dim=4)
        layers = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
        assert len(layers) == 2 and all(layer.fast_dropout is flag for layer in layers)
    graph = complete_graph([4, 3, 6])
    x = torch.randn(13, 8)
    for engine in ("dense", "torch"):
        plain = MultiHeadAttention(8, 2, attn_dropout=0.5, engine=engine)
        fast = MultiHeadAttention(8, 2, attn_dropout=0.5, engine=engine, fast_dropout=True)
        fast.load_state_dict(plain.state_dict())
        plain.eval(), fast.eval()
        assert torch.allclose(plain(graph, x), fast(graph, x), atol=1e-6)
        fast.train()
        torch.manual_seed(0)
        dropped = fast(graph, x)
        assert dropped.isfinite().all() and not torch.allclose(dropped, plain(graph, x))
    with pytest.raises(ValueError, match="fast_dropout must be True or False; got 'no'"):
        MultiHeadAttention(8, 2, fast_dropout="no")


def test_fast_dropout_module_is_nn_dropout_with_fast_masks():
    module = FastDropout(0.25)
    assert isinstance(module, torch.nn.Dropout) and module.state_dict() == {}
    x = torch.rand(50_000) + 0.5
    torch.manual_seed(4)
    y = module(x)
    torch.manual_seed(4)
    assert torch.equal(y, fast_dropout(x, 0.25))
    module.eval()
    assert torch.equal(module(x), x)


def test_the_block_setting_makes_every_dropout_of_a_model_fast():
    """With ``fast_dropout`` a GPS model draws no ``bernoulli_`` at all in training (the
    blocks' dropouts, their FFNs', the attention weights'); without it, the same modules are
    ``nn.Dropout``; outputs equal outside training."""
    graph = random_graph([6, 5, 7], p=0.4, seed=3)
    x = torch.randn(graph.num_nodes(), 4)
    models = {}
    for flag in (False, True):
        block = BlockConfig(
            dim=8, num_heads=2, mixer="gps", dropout=0.3, attn_dropout=0.5, fast_dropout=flag
        )
        torch.manual_seed(0)
        models[flag] = GraphTransformer(3, block, 2, in_dim=4)
        # the blocks' and FFNs' dropouts (p = 0.3); attention keeps its nn.Dropout(0.5)
        # module for p and applies the fast masks itself (counted below)
        own = [m for m in models[flag].modules() if isinstance(m, torch.nn.Dropout) and m.p == 0.3]
        assert len(own) == 4 and all(isinstance(m, FastDropout) is flag for m in own)
    for flag, model in models.items():
        model.train()
        with torch.profiler.profile() as profile:
            model(graph, x).sum().backward()
        draws = sum(e.count for e in profile.key_averages() if e.key == "aten::bernoulli_")
        assert (draws == 0) is flag, (flag, draws)  # without the switch: nn.Dropout's draws
    for model in models.values():
        model.eval()
    assert torch.allclose(models[False](graph, x), models[True](graph, x), atol=1e-6)


SIZES = {
    "groups": [40, 3, 90, 7, 64, 12],
    "an-empty-group": [0] * 12 + [5, 7, 30, 31, 60, 64, 90, 100],  # a group of L = 0
}


@pytest.mark.parametrize("p", [0.5, 0.3])
@pytest.mark.parametrize("terms", [False, True], ids=["key-masks", "edge-terms"])
@pytest.mark.parametrize("sizes", list(SIZES.values()), ids=list(SIZES))
def test_packed_attention_with_fast_dropout_equals_autograd_through_the_formula(p, terms, sizes):
    """Padding.attend with fast dropout is one autograd node with a written-out backward:
    its values and gradients (of q, k, v and of additive per-edge terms in the masks) equal
    autograd's through padded_attention on the same blocks with the same draws (size groups
    drawn in order), across several size groups, one of them of empty samples only."""
    sizes = torch.tensor(sizes)
    padding = Padding(sizes, torch.device("cpu"))
    assert len(padding.shapes) > 1
    masks = padding.key_masks()
    leaves = []
    if terms:  # (B_g, 1, L_g, L_g) additive terms with gradients, -inf at padded keys
        for i, mask in enumerate(masks):
            batch, _, _, longest = mask.shape
            leaves.append(torch.randn(batch, 1, longest, longest, dtype=torch.float64))
            leaves[-1].requires_grad_(True)
            masks[i] = leaves[-1].masked_fill(~mask, -math.inf)
    qkv = torch.randn(int(sizes.sum()), 3, 2, 4, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(int(sizes.sum()), 2, 4, dtype=torch.float64)
    torch.manual_seed(21)
    got = padding.attend(qkv, masks, p, 0.7, fast_dropout=True)
    assert got.grad_fn.name() == "_PackedAttentionBackward"
    got_grads = torch.autograd.grad(got, (qkv, *leaves), upstream, retain_graph=True)
    torch.manual_seed(21)
    outs = []
    for block, mask in zip(padding.pad(qkv), masks, strict=True):  # (B_g, L_g, 3, H, D)
        q, k, v = block.permute(2, 0, 3, 1, 4)
        outs.append(padded_attention(q, k, v, mask, p, 0.7, fast_dropout=True).transpose(1, 2))
    want = padding.unpad(outs)
    want_grads = torch.autograd.grad(want, (qkv, *leaves), upstream)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    for a, b in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert all(grad.abs().sum() > 0 for grad in got_grads if grad.numel())
    dropped = (got - padding.attend(qkv, masks, 0.0, 0.7)).abs().amax()
    assert dropped > 1e-3, "cells were dropped"


def test_packed_attention_with_fast_dropout_has_exact_gradients_and_refuses_a_second_order():
    sizes = torch.tensor([5, 2, 9])
    padding = Padding(sizes, torch.device("cpu"))
    masks = padding.key_masks()
    qkv = torch.randn(16, 3, 2, 3, dtype=torch.float64, requires_grad=True)

    def attend(qkv):
        torch.manual_seed(6)  # the same masks at every evaluation
        return padding.attend(qkv, masks, 0.5, None, fast_dropout=True)

    assert torch.autograd.gradcheck(attend, (qkv,))
    with pytest.raises(RuntimeError, match=r"first-order gradients only.*fast_dropout=False"):
        torch.autograd.grad(attend(qkv).sum(), qkv, create_graph=True)


def test_attention_with_fast_dropout_under_autocast_takes_autograds_path():
    """Under CPU bf16 autocast the packed node would meet autocast's mixed dtypes: the layer
    runs the same formula through autograd (fast masks, no bernoulli_) and trains."""
    graph = complete_graph([4, 3, 6])
    x = torch.randn(13, 8, requires_grad=True)
    layer = MultiHeadAttention(8, 2, attn_dropout=0.5, fast_dropout=True)
    with torch.profiler.profile() as profile, torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(graph, x)
    assert out.dtype == torch.bfloat16
    names = {e.key for e in profile.key_averages()}
    assert "aten::bernoulli_" not in names and "aten::random_" in names
    out.float().sum().backward()
    assert x.grad.isfinite().all() and x.grad.abs().sum() > 0
    padding = Padding(torch.tensor([4, 3, 6]), torch.device("cpu"))
    qkv = torch.randn(13, 3, 2, 4, requires_grad=True)
    outside = padding.attend(qkv, padding.key_masks(), 0.5, None, fast_dropout=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = padding.attend(qkv, padding.key_masks(), 0.5, None, fast_dropout=True)
    assert outside.grad_fn.name() == "_PackedAttentionBackward"
    assert inside.grad_fn.name() != "_PackedAttentionBackward"


def test_edge_bias_gets_its_gradient_through_the_packed_node():
    """Neighbourhood attention on the dense engine with an edge bias (E, H) and fast dropout:
    the bias enters the masks as per-edge terms; its gradient equals the one autograd gives
    through the same formula (autocast's path, forced here in float32 by patching the
    check), with the same draws."""
    graph = random_graph([6, 5, 7], p=0.5, seed=4)
    x = torch.randn(graph.num_nodes(), 8)
    layer = MultiHeadAttention(8, 2, attn_dropout=0.5, engine="dense", fast_dropout=True)
    grads = []
    for packed in (True, False):
        bias = torch.randn(graph.num_edges(), 2, generator=torch.Generator().manual_seed(1))
        bias.requires_grad_(True)
        torch.manual_seed(3)
        with pytest.MonkeyPatch.context() as patch:
            if not packed:
                patch.setattr(torch, "is_autocast_enabled", lambda *args: True)
            out = layer(graph, x, edge_bias=bias)
        assert ("_PackedAttentionBackward" in _node_names(out.grad_fn)) is packed
        (grad,) = torch.autograd.grad(out.square().sum(), bias)
        grads.append(grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-5)


def _node_names(node) -> set[str]:
    """The names of the autograd nodes behind ``node``."""
    names, stack, seen = set(), [node], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(node.name())
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names
