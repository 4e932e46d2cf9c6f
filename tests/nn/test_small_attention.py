"""The fused CPU attention kernel for heads of width 16 (graphformer.nn.core.small_attention):
values and gradients against the dense formula in float64, the dense engine's use of it
against its torch path, its refusals and its switch."""

from __future__ import annotations

import math
import os
import shutil

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import complete_graph
from graphformer.nn import MultiHeadAttention
from graphformer.nn.core import small_attention
from graphformer.nn.core.dense import Padding, dense_attention

import pytest
import torch

needs_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None,
    reason="no C++ compiler: the kernel cannot be built here (the torch path runs)",
)
pytestmark = needs_compiler


def _formula(q, k, v, mask, keep, scale, p):
    """O = c (softmax(s QKᵀ + M) ⊙ Z) V in whatever dtype the inputs are."""
    scores = q @ k.transpose(-1, -2) * scale
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    if keep is not None:
        weights = weights * keep / (1 - p)
    return weights @ v


def _mask(kind: str, batch: int, heads: int, length: int) -> torch.Tensor | None:
    gen = torch.Generator().manual_seed(1)
    if kind == "none":
        return None
    if kind == "keys":  # (B, 1, 1, L): the last keys of every sample padded
        mask = torch.zeros(batch, 1, 1, length, dtype=torch.float64)
        mask[..., max(1, length - 3) :] = -math.inf
        return mask
    if kind == "cells":  # (B, 1, L, L): a neighbourhood with self-loops
        edges = torch.rand(batch, 1, length, length, generator=gen) < 0.3
        edges |= torch.eye(length, dtype=torch.bool)
        return torch.zeros(edges.shape, dtype=torch.float64).masked_fill(~edges, -math.inf)
    return torch.randn(batch, heads, length, length, generator=gen, dtype=torch.float64)


def test_the_kernel_builds_on_a_machine_with_a_compiler():
    assert small_attention.usable(torch.zeros(3, 16)), "the kernel should build here"
    assert not small_attention.usable(torch.zeros(3, 8)), "only heads of width 16"
    assert not small_attention.usable(torch.zeros(3, 16, dtype=torch.float64))


@pytest.mark.parametrize("length", [1, 13, 16, 31, 33])
@pytest.mark.parametrize("kind", ["none", "keys", "cells", "bias"])
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_kernel_values_and_gradients_equal_the_formula(length, kind, p):
    """One group of samples (one of the group's padded length, shorter ones, an empty one)
    read from packed (N, 3, H, 16) rows: outputs and the gradients of q, k, v and of a
    per-head bias mask against autograd through the formula per sample in float64, with and
    without a keep mask, at lengths around the kernel's 16-column chunks."""
    heads, scale = 2, 0.3
    sizes = torch.tensor([length, max(length - 5, 1), 0, max(length // 2, 1)])
    starts = torch.cumsum(sizes, 0) - sizes
    batch, nodes = len(sizes), int(sizes.sum())
    torch.manual_seed(length)
    qkv = torch.randn(nodes, 3, heads, 16, dtype=torch.float64)
    mask = _mask(kind, batch, heads, length)
    keep = (torch.rand(batch * heads, length, length) > p).to(torch.uint8) if p else None
    grad = torch.randn(nodes, heads, 16, dtype=torch.float64)

    leaf = qkv.clone().requires_grad_()
    bias = mask.clone().requires_grad_() if kind == "bias" else None
    outs = []
    for b, (start, n) in enumerate(zip(starts.tolist(), sizes.tolist(), strict=True)):
        q, k, v = leaf[start : start + n].permute(1, 2, 0, 3)  # (H, n, 16) each
        m = bias if bias is not None else mask
        m = None if m is None else m[b, :, : min(n, m.shape[2]), :n]
        z = None if keep is None else keep.view(batch, heads, length, length)[b, :, :n, :n]
        outs.append(_formula(q, k, v, m, None if z is None else z.double(), scale, p))
    want = torch.cat([o.transpose(0, 1) for o in outs])  # (N, H, 16)
    want.backward(grad)

    qkv32, mask32 = qkv.float().contiguous(), None if mask is None else mask.float().contiguous()
    group = small_attention.Samples(starts, sizes, length)
    out = torch.full((nodes, heads, 16), float("nan"))
    lse = small_attention.forward(out, qkv32, group, mask32, keep, scale, p)
    grad_qkv = torch.full_like(qkv32, float("nan"))
    saved = (mask32, keep, lse)
    grad_bias = small_attention.backward(
        grad_qkv, grad.float(), qkv32, group, saved, scale, p, kind == "bias"
    )
    torch.testing.assert_close(out.double(), want.detach(), atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(grad_qkv.double(), leaf.grad, atol=5e-6, rtol=1e-5)
    if kind == "bias":
        torch.testing.assert_close(
            grad_bias.view(bias.shape).double(), bias.grad, atol=5e-6, rtol=1e-5
        )
    else:
        assert grad_bias is None


def test_rows_whose_keys_are_all_masked_get_zeros_and_no_gradient():
    """A sample without valid keys (message passing: a node without in-edges) gets zeros
    and passes no gradient, where softmax over -inf alone would give NaN."""
    sizes, starts = torch.tensor([5, 5]), torch.tensor([0, 5])
    qkv = torch.randn(10, 3, 2, 16)
    mask = torch.zeros(2, 1, 1, 5)
    mask[1] = -math.inf  # sample 1 sees no key
    out = torch.empty(10, 2, 16)
    group = small_attention.Samples(starts, sizes, 5)
    lse = small_attention.forward(out, qkv, group, mask, None, 0.25, 0.0)
    assert torch.equal(out[5:], torch.zeros_like(out[5:])) and out[:5].abs().sum() > 0
    assert torch.isinf(lse[2:]).all()
    grad_qkv = torch.empty_like(qkv)
    small_attention.backward(
        grad_qkv, torch.ones(10, 2, 16), qkv, group, (mask, None, lse), 0.25, 0.0, False
    )
    assert grad_qkv.isfinite().all() and grad_qkv[5:].abs().sum() == 0
    assert grad_qkv[:5].abs().sum() > 0


def test_the_kernel_names_what_it_refuses():
    qkv, out = torch.randn(9, 3, 2, 16), torch.empty(9, 2, 16)
    starts, sizes = torch.tensor([0, 4]), torch.tensor([4, 5])
    group = small_attention.Samples(starts, sizes, 5)
    with pytest.raises(RuntimeError, match=r"contiguous float32 \(N, 3, H, 16\)"):
        small_attention.forward(out, qkv.double(), group, None, None, 1.0, 0.0)
    with pytest.raises(RuntimeError, match=r"sample 1 \(rows 4 \+ 5\) lies outside"):
        small_attention.forward(out, qkv, group._replace(length=4), None, None, 1.0, 0.0)
    with pytest.raises(RuntimeError, match=r"\(B, 1 or H, 1 or L, L\)"):
        small_attention.forward(out, qkv, group, torch.zeros(2, 1, 3, 5), None, 1.0, 0.0)
    with pytest.raises(RuntimeError, match=r"int64 \(B,\) CPU"):
        small_attention.forward(out, qkv, group._replace(starts=starts.int()), None, None, 1.0, 0.0)


@pytest.mark.parametrize("p", [0.0, 0.5])
@pytest.mark.parametrize("terms", [False, True], ids=["key-masks", "edge-terms"])
def test_the_dense_engine_gives_the_same_with_and_without_the_kernel(monkeypatch, p, terms):
    """Padding.attend over several size groups through the kernel equals its torch path
    (SDPA without dropout; the written-out formula with fast dropout's masks, drawn alike
    for a seed): outputs and the gradients of q, k, v and of per-edge terms."""
    sizes = torch.tensor([7, 97, 2, 100, 0, 5, 99, 8])
    padding = Padding(sizes, torch.device("cpu"))
    assert len(padding.shapes) > 1
    torch.manual_seed(0)
    qkv = torch.randn(int(sizes.sum()), 3, 4, 16, requires_grad=True)
    upstream = torch.randn(int(sizes.sum()), 4, 16)
    key_masks = padding.key_masks()
    leaves = []
    if terms:  # (B_g, H, L_g, L_g) per-edge terms with gradients, -inf at padded keys
        for mask in key_masks:
            batch, _, _, longest = mask.shape
            leaves.append(torch.randn(batch, 4, longest, longest, requires_grad=True))
    results = {}
    for switch in ("1", "0"):
        monkeypatch.setenv(small_attention.ENV, switch)
        masks_now = key_masks
        if terms:
            masks_now = [
                t.masked_fill(~m, -math.inf) for t, m in zip(leaves, key_masks, strict=True)
            ]
        torch.manual_seed(5)
        out = padding.attend(qkv, masks_now, p, None, fast_dropout=True)
        fused = out.grad_fn.name() == "_FusedAttentionBackward"
        results[switch] = (out, torch.autograd.grad(out, (qkv, *leaves), upstream), fused)
    (out, grads, fused), (ref, ref_grads, fused_off) = results["1"], results["0"]
    assert fused and not fused_off
    torch.testing.assert_close(out, ref, atol=2e-6, rtol=1e-5)
    for mine, theirs in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-4)
        assert mine.abs().sum() > 0


def test_the_switch_turns_the_kernel_off(monkeypatch):
    monkeypatch.setenv(small_attention.ENV, "0")
    assert not small_attention.enabled() and not small_attention.usable(torch.zeros(2, 16))
    padding = Padding(torch.tensor([3, 4]), torch.device("cpu"))
    qkv = torch.randn(7, 3, 2, 16, requires_grad=True)
    out = padding.attend(qkv, padding.key_masks(), 0.0, None)
    assert out.grad_fn.name() != "_FusedAttentionBackward"  # SDPA's nodes
    monkeypatch.delenv(small_attention.ENV)
    out = padding.attend(qkv, padding.key_masks(), 0.0, None)
    assert out.grad_fn.name() == "_FusedAttentionBackward"


def test_attention_layer_through_the_kernel_equals_torch_multihead_attention():
    """MultiHeadAttention (4 heads of 16) on complete graphs runs the kernel and equals
    torch.nn.MultiheadAttention per sample with the same weights; permuting the nodes
    within a sample permutes its outputs (and gradients)."""
    torch.manual_seed(2)
    sizes = [5, 17, 9]
    graph = complete_graph(sizes)
    layer = MultiHeadAttention(64, 4)
    peer = torch.nn.MultiheadAttention(64, 4, batch_first=True)
    with torch.no_grad():
        proj = (layer.q_proj, layer.k_proj, layer.v_proj)
        peer.in_proj_weight.copy_(torch.cat([m.weight for m in proj]))
        peer.in_proj_bias.copy_(torch.cat([m.bias for m in proj]))
        peer.out_proj.weight.copy_(layer.out_proj.weight)
        peer.out_proj.bias.copy_(layer.out_proj.bias)
    x = torch.randn(sum(sizes), 64, requires_grad=True)
    with torch.profiler.profile() as profile:
        out = layer(graph, x)
    assert "graphformer_small_attention::forward" in {e.key for e in profile.key_averages()}
    want = torch.cat([peer(part[None], part[None], part[None])[0][0] for part in x.split(sizes)])
    torch.testing.assert_close(out, want, atol=2e-6, rtol=1e-5)
    perm = torch.cat(
        [torch.randperm(n) + start for n, start in zip(sizes, [0, 5, 22], strict=True)]
    )
    x_perm = x.detach()[perm].requires_grad_()
    torch.testing.assert_close(layer(graph, x_perm), out[perm], atol=2e-6, rtol=1e-5)
    out.square().sum().backward()
    layer(graph, x_perm).square().sum().backward()
    torch.testing.assert_close(x_perm.grad, x.grad[perm], atol=1e-5, rtol=1e-4)


def test_ninja_from_the_wheel_is_put_on_path_for_the_build_only(monkeypatch, tmp_path):
    ninja = pytest.importorskip("ninja")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ninja on PATH
    with small_attention._ninja_on_path():
        assert os.environ["PATH"].split(os.pathsep)[0] == ninja.BIN_DIR
        assert shutil.which("ninja") is not None
    assert os.environ["PATH"] == str(tmp_path)


def test_a_failed_build_warns_once_and_leaves_the_torch_path(monkeypatch):
    """No compiler (or ninja, or a broken build): one RuntimeWarning naming the cause and
    what to do, and None, so usable() is False and the dense engine keeps torch's kernels."""
    from torch.utils import cpp_extension

    def broken(**kwargs):
        raise RuntimeError("Error building extension: c++: command not found")

    monkeypatch.setattr(cpp_extension, "load", broken)
    with pytest.warns(RuntimeWarning, match=r"could not be built.*command not found.*=0"):
        assert small_attention._ops.__wrapped__() is None


def test_int32_sample_sizes_reach_the_kernel_as_int64_rows():
    """``dense_attention`` takes the samples' sizes as given (int32 too); the kernel's sample
    rows are int64 whatever they came as, and the outputs equal those of int64 sizes."""
    torch.manual_seed(4)
    sizes = torch.tensor([6, 11, 3])
    qkv = torch.randn(20, 3, 2, 16)
    with torch.profiler.profile() as profile:
        out = dense_attention(qkv, sizes.int())
    assert "graphformer_small_attention::forward" in {e.key for e in profile.key_averages()}
    torch.testing.assert_close(out, dense_attention(qkv, sizes), atol=0, rtol=0)
