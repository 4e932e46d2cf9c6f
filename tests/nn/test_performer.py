"""Performer (FAVOR+) attention (graphformer/nn/layers/performer.py), tested statistically against
exact softmax attention: the kernel estimate is unbiased, and the error of the attention
output shrinks as the number of random features grows.
"""

from __future__ import annotations

import itertools
import math

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import complete_graph
from graphformer.nn import PerformerAttention
from graphformer.nn.layers.performer import gaussian_features, positive_random_features

import dgl
import pytest
import torch
from helpers import (
    assert_close,
    dense_sample_attention,
    generator,
    offsets,
    permute_nodes,
    random_graph,
    randomize_biases,
    within_sample_permutation,
)

SIZES = [6, 1, 0, 9, 4]
EMBED, HEADS = 16, 2


def exact_attention(layer: PerformerAttention, x: torch.Tensor, sizes) -> torch.Tensor:
    """Softmax attention with the Performer layer's own projections, per sample."""
    shape = (-1, layer.num_heads, layer.head_dim)
    w_q, w_k, w_v = layer.in_proj.weight.chunk(3)
    b_q, b_k, b_v = layer.in_proj.bias.chunk(3)
    q = (x @ w_q.T + b_q).view(shape) / math.sqrt(layer.head_dim)
    k, v = (x @ w_k.T + b_k).view(shape), (x @ w_v.T + b_v).view(shape)
    return layer.out_proj(dense_sample_attention(q, k, v, sizes).reshape(len(x), -1))


def batch(sizes=SIZES) -> dgl.DGLGraph:
    return random_graph(sizes, p=0.3)


# --- the random-feature kernel ------------------------------------------------------------


@pytest.mark.parametrize("orthogonal", [True, False], ids=["orthogonal", "iid"])
def test_kernel_estimate_is_unbiased(orthogonal):
    """Over 2,000 independent draws of m = 8 features, the mean of φ(q)ᵀφ(k) is within
    4.5 standard errors of exp(q·k), for each of 12 (q, k) pairs."""
    dim, draws = 8, 2000
    gen = generator(3)
    q = torch.randn(12, dim, generator=gen, dtype=torch.float64) * 0.4
    k = torch.randn(12, dim, generator=gen, dtype=torch.float64) * 0.4
    estimates = torch.stack(
        [
            (positive_random_features(q, omega) * positive_random_features(k, omega)).sum(-1)
            for omega in (
                gaussian_features(8, dim, orthogonal, gen, torch.float64) for _ in range(draws)
            )
        ]
    )  # (draws, pairs)
    exact = torch.exp((q * k).sum(-1))
    standard_error = estimates.std(0) / math.sqrt(draws)
    z = (estimates.mean(0) - exact) / standard_error
    print(
        f"{orthogonal=}: max |z| {z.abs().max():.2f}, max rel. bias "
        f"{((estimates.mean(0) - exact) / exact).abs().max():.2e}"
    )
    assert (z.abs() < 4.5).all(), z


def test_orthogonal_features_are_orthogonal_gaussian_rows():
    omega = gaussian_features(20, 8, orthogonal=True, generator=generator(1), dtype=torch.float64)
    assert omega.shape == (20, 8)
    for block in (omega[:8], omega[8:16], omega[16:]):
        unit = block / block.norm(dim=1, keepdim=True)
        assert torch.allclose(unit @ unit.T, torch.eye(len(block), dtype=torch.float64), atol=1e-10)
    # Row lengths follow χ_8: mean square 8 (over many draws).
    many = gaussian_features(8000, 8, generator=generator(2), dtype=torch.float64)
    assert abs(many.square().sum(1).mean().item() - 8) < 0.3
    assert abs(many.mean().item()) < 0.03


def test_orthogonal_features_estimate_with_lower_variance():
    dim, draws = 8, 600
    gen = generator(5)
    q = torch.randn(6, dim, generator=gen, dtype=torch.float64) * 0.5
    k = torch.randn(6, dim, generator=gen, dtype=torch.float64) * 0.5

    def variance(orthogonal: bool) -> torch.Tensor:
        draws_ = [gaussian_features(8, dim, orthogonal, gen, torch.float64) for _ in range(draws)]
        estimates = torch.stack(
            [
                (positive_random_features(q, w) * positive_random_features(k, w)).sum(-1)
                for w in draws_
            ]
        )
        return estimates.var(0).mean()

    iid, orthogonal = variance(False), variance(True)
    print(f"kernel estimate variance: iid {iid:.3e}, orthogonal {orthogonal:.3e}")
    assert orthogonal < iid


# --- the attention layer ------------------------------------------------------------------


def approximation_error(num_features: int, seeds: int = 6) -> float:
    """Mean over feature draws of the relative RMS error ‖Performer − exact‖ / ‖exact‖ on
    one batch, in float64.

    Inputs of scale 0.5 keep head logits moderate: the estimator's relative variance grows
    as exp(|q|² + |k|² + 2 q·k) / m (Choromanski et al., Lemma 2); with unit-scale inputs
    here thousands of features still leave errors of tens of percent.
    """
    torch.manual_seed(0)
    layer = PerformerAttention(EMBED, HEADS, num_features=num_features)
    layer = randomize_biases(layer).double()
    graph = batch()
    x = 0.5 * torch.randn(graph.num_nodes(), EMBED, dtype=torch.float64)
    with torch.no_grad():
        exact = exact_attention(layer, x, SIZES)
        errors = []
        for seed in range(seeds):
            layer.redraw_features(generator(100 + seed))
            errors.append(((layer(graph, x) - exact).norm() / exact.norm()).item())
    return sum(errors) / len(errors)


def test_approximation_error_shrinks_with_more_features():
    counts = [64, 256, 1024, 4096]
    errors = [approximation_error(m) for m in counts]
    print(
        "relative error by features:", dict(zip(counts, [f"{e:.4f}" for e in errors], strict=True))
    )
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))
    # Error ∝ 1/sqrt(m): 64x more features should cut it about 8x; ask for 4x.
    assert errors[-1] < errors[0] / 4
    assert errors[-1] < 0.03


def test_one_node_samples_output_their_own_value_exactly_and_empty_ones_nothing():
    layer = randomize_biases(PerformerAttention(EMBED, HEADS, num_features=4)).eval()
    graph = batch([1, 0, 1, 3])
    x = torch.randn(5, EMBED)
    out = layer(graph, x)
    values = layer.out_proj(
        x @ layer.in_proj.weight[2 * EMBED :].T + layer.in_proj.bias[2 * EMBED :]
    )
    assert_close("performer on a 1-node sample vs W_O v", out[:2], values[:2])
    assert_close(
        "performer vs exact on a 1-node sample",
        out[:2],
        exact_attention(layer, x, [1, 0, 1, 3])[:2],
    )
    empty = dgl.graph(([], []), num_nodes=0)
    assert layer(empty, torch.zeros(0, EMBED)).shape == (0, EMBED)


def test_attention_stays_within_samples():
    """The batched layer equals the layer run on each sample alone."""
    layer = randomize_biases(PerformerAttention(EMBED, HEADS, num_features=32)).eval()
    graph = batch()
    x = torch.randn(graph.num_nodes(), EMBED)
    out = layer(graph, x)
    for start, n in zip(offsets(SIZES).tolist(), SIZES, strict=True):
        alone = layer(complete_graph([n]), x[start : start + n])
        assert_close("performer batched vs one sample alone", out[start : start + n], alone)


def test_permutation_equivariance_within_samples():
    layer = randomize_biases(PerformerAttention(EMBED, HEADS, num_features=32)).eval()
    graph = batch()
    x = torch.randn(graph.num_nodes(), EMBED)
    perm = within_sample_permutation(SIZES, seed=4)
    out = layer(graph, x)
    out_perm = layer(permute_nodes(graph, perm), x[perm])
    assert_close("performer permutation equivariance", out_perm, out[perm])


def test_large_logits_stay_finite():
    layer = PerformerAttention(EMBED, HEADS, num_features=16).eval()
    graph = batch()
    x = 30 * torch.randn(graph.num_nodes(), EMBED)
    out = layer(graph, x)
    assert torch.isfinite(out).all()


def test_gradcheck_float64():
    """Gradients with respect to the features and every weight (random features fixed)."""
    layer = randomize_biases(PerformerAttention(4, 2, num_features=6)).double()
    graph = batch([3, 1, 2])
    names = [name for name, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)

    def attend(*tensors):
        weights = dict(zip(names, tensors[:-1], strict=True))
        return torch.func.functional_call(layer, weights, (graph, tensors[-1]))

    assert torch.autograd.gradcheck(attend, [*params, x])


def test_features_are_a_buffer_redrawn_on_schedule():
    layer = PerformerAttention(EMBED, HEADS, num_features=8, redraw_interval=2)
    assert "features" in layer.state_dict()
    graph = batch()
    x = torch.randn(graph.num_nodes(), EMBED)
    first = layer.features.clone()
    layer(graph, x)
    layer(graph, x)
    assert torch.equal(layer.features, first), "redrawn too early"
    layer(graph, x)
    assert not torch.equal(layer.features, first), "not redrawn after 2 calls"
    layer.eval()
    before = layer.features.clone()
    for _ in range(4):
        layer(graph, x)
    assert torch.equal(layer.features, before), "redrawn in eval mode"
    clone = PerformerAttention(EMBED, HEADS, num_features=8)
    clone.load_state_dict(layer.state_dict())
    assert torch.equal(clone.eval()(graph, x), layer(graph, x))


def test_mixer_protocol_passes_edge_state_through():
    mixer = PerformerAttention(EMBED, HEADS, num_features=8).eval()
    graph = batch()
    x = torch.randn(graph.num_nodes(), EMBED)
    state = torch.randn(graph.num_edges(), 3)
    out, edge_state = mixer.mix(graph, x, state)
    assert edge_state is state
    assert torch.equal(out, mixer(graph, x))
    assert mixer.mix(graph, x)[1] is None
    assert mixer.scope == "global"


def test_default_feature_count_is_d_log_d():
    assert PerformerAttention(64, 4).num_features == math.ceil(16 * math.log(16))  # 45
    assert PerformerAttention(4, 4).num_features == 1


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"dim": 10, "num_heads": 4}, r"num_heads=4 must divide embed_dim=10"),
        ({"num_features": 0}, r"num_features must be a positive int"),
        ({"redraw_interval": -1}, r"redraw_interval must be an int ≥ 0"),
        ({"redraw_interval": 1.5}, r"redraw_interval must be an int ≥ 0"),
    ],
)
def test_rejects_bad_settings(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        PerformerAttention(**{"dim": EMBED, "num_heads": HEADS, **kwargs})


def test_rejects_bad_features():
    layer = PerformerAttention(EMBED, HEADS)
    graph = batch()
    with pytest.raises(ValueError, match=r"x must have shape \(20, 16\)"):
        layer(graph, torch.randn(19, EMBED))
    with pytest.raises(ValueError, match=r"NaN or inf"):
        layer(graph, torch.full((20, EMBED), float("nan")))
