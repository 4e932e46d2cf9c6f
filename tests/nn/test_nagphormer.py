"""NAGphormer's hop tokens, Transformer over tokens and readout
(graphformer/nn/layers/nagphormer.py, graphformer/nn/models/nagphormer.py) against dense
plain-torch formulas with the same weights; the hop-token field through the data's field
handshake; nodes batch independently.

The registry-driven tests run the mixer ``nagphormer`` on every engine, with empty samples,
permuted nodes and gradients (tests/nn/test_engines.py, test_block_model.py).
"""

from __future__ import annotations

import math

import graphformer  # noqa: F401  (before DGL)
from graphformer.data.field_cache import compute_field, field_path, load_or_compute_field
from graphformer.fields import FIELDS, get_field
from graphformer.graphs import add_self_loops
from graphformer.nn import BlockConfig, NAGphormer, NAGphormerMixer, mixers
from graphformer.nn.layers.nagphormer import hop_aggregates, hop_field

import dgl
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, dense_adjacency, random_graph, randomize_biases, with_needs

SIZES = [6, 1, 0, 9, 4]


def dense_hops(graph: dgl.DGLGraph, x: torch.Tensor, hops: int) -> torch.Tensor:
    """[X, ÂX, ..., Â^K X] with Â[i, j] = 1/sqrt(d_in(i) d_out(j)) for an edge j → i."""
    a = dense_adjacency(graph).to(x.dtype)  # [i, j] = 1 for j → i
    d_in, d_out = a.sum(1).clamp(min=1), a.sum(0).clamp(min=1)
    a_hat = a / torch.sqrt(d_in[:, None] * d_out[None, :])
    tokens, h = [x], x
    for _ in range(hops):
        h = a_hat @ h
        tokens.append(h)
    return torch.stack(tokens, 1)


@pytest.mark.parametrize("engine", ["dgl", "torch"])
def test_hop_aggregates_equal_powers_of_the_normalised_adjacency(engine):
    graph = add_self_loops(random_graph(SIZES, p=0.3))
    x = torch.randn(graph.num_nodes(), 5, dtype=torch.float64)
    got = hop_aggregates(graph, x, 4, engine)
    assert got.shape == (graph.num_nodes(), 5, 5)
    assert_close(f"hop tokens ({engine}) vs dense", got, dense_hops(graph, x, 4), 1e-12)


def dense_encoder_layer(layer: torch.nn.TransformerEncoderLayer, t: torch.Tensor) -> torch.Tensor:
    """Pre-norm layer by hand: t + W_O softmax(QKᵀ/√d) V of LN1(t), then + FFN(LN2(·))."""
    attention = layer.self_attn
    heads, dim = attention.num_heads, attention.embed_dim
    width = dim // heads
    h = layer.norm1(t)
    q, k, v = F.linear(h, attention.in_proj_weight, attention.in_proj_bias).chunk(3, -1)
    split = lambda u: u.view(*u.shape[:2], heads, width).transpose(1, 2)  # noqa: E731
    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(width)
    out = (torch.softmax(scores, -1) @ split(v)).transpose(1, 2).reshape(t.shape)
    t = t + attention.out_proj(out)
    return t + layer.linear2(F.gelu(layer.linear1(layer.norm2(t))))


def dense_model(model: NAGphormer, tokens: torch.Tensor) -> torch.Tensor:
    t = model.embed(tokens)
    for layer in model.transformer.layers:
        t = dense_encoder_layer(layer, t)
    t = model.transformer.norm(t)
    score = model.transformer.readout.score
    node, neighbours = t[:, 0], t[:, 1:]
    logits = torch.stack(
        [
            F.linear(torch.cat([node, neighbours[:, k]], -1), score.weight, score.bias)[:, 0]
            for k in range(neighbours.shape[1])
        ],
        1,
    )
    alpha = torch.softmax(logits, 1)
    z = node + (alpha.unsqueeze(-1) * neighbours).sum(1)
    return model.head(F.relu(model.hidden(z)))


def featured(sizes=SIZES, width: int = 6, seed: int = 0) -> dgl.DGLGraph:
    graph = random_graph(sizes, p=0.3, seed=seed)
    graph.ndata["feat"] = torch.randn(
        graph.num_nodes(), width, generator=torch.Generator().manual_seed(seed)
    )
    return graph


def test_model_equals_the_dense_formula_with_the_same_weights():
    torch.manual_seed(0)
    model = NAGphormer(3, 6, BlockConfig(dim=8, num_heads=2), num_layers=2, hops=3)
    model = randomize_biases(model).double().eval()
    graph = with_needs(featured(), model)
    tokens = graph.ndata["hop_feat_3"].double()
    assert_close(
        "hop field vs dense",
        tokens,
        dense_hops(add_self_loops(graph), graph.ndata["feat"].double(), 3),
        1e-6,
    )
    got = model(graph, graph.ndata["feat"].double())
    assert_close("NAGphormer vs dense", got, dense_model(model, tokens), 1e-10)


def test_nodes_batch_independently_once_tokens_exist():
    """Any subset of nodes, in any order, as a batch of its own (no edges at all): the same
    outputs as those rows of the whole graph."""
    torch.manual_seed(1)
    model = NAGphormer(3, 6, BlockConfig(dim=8, num_heads=2), hops=2).eval()
    graph = with_needs(featured(), model)
    whole = model(graph, graph.ndata["feat"])
    subset = torch.tensor([11, 0, 7, 3])
    alone = dgl.graph(([], []), num_nodes=len(subset))
    alone.ndata["hop_feat_2"] = graph.ndata["hop_feat_2"][subset]
    assert_close("subset vs whole", model(alone, graph.ndata["feat"][subset]), whole[subset], 1e-6)


def test_the_hop_field_is_registered_cached_and_reloaded(tmp_path):
    field = hop_field(2)
    assert hop_field(2) is field and FIELDS["hop_feat_2"] is field and get_field("hop_feat_2")
    graphs = [featured([5], seed=1), featured([7], seed=2)]
    path = field_path(tmp_path / "data.bin", field)
    stored = load_or_compute_field(field, graphs, path)
    assert (tmp_path / "data.hop_feat_2.bin").is_file()
    again = load_or_compute_field(field, graphs, path)
    assert torch.equal(stored["hop_feat_2"], again["hop_feat_2"])
    assert stored["hop_feat_2"].shape == (12, 3, 6)
    assert torch.equal(compute_field(field, graphs)["hop_feat_2"], stored["hop_feat_2"])


def test_bad_input_is_refused_with_what_to_do():
    model = NAGphormer(3, 6, BlockConfig(dim=8, num_heads=2), hops=2)
    graph = featured()
    with pytest.raises(ValueError, match=r"graph\.ndata\['hop_feat_2'\].*GraphDataModule"):
        model(graph, graph.ndata["feat"])
    graph.ndata["hop_feat_2"] = torch.zeros(graph.num_nodes(), 4, 6)
    with pytest.raises(ValueError, match=r"must be \(N, 3, 6\)"):
        model(graph, graph.ndata["feat"])
    with pytest.raises(ValueError, match="hops must be an int ≥ 1"):
        NAGphormer(3, 6, hops=0)
    with pytest.raises(ValueError, match="continuous node features"):
        hop_field(2)(random_graph([3]))
    with pytest.raises(ValueError, match="num_heads=3 must divide dim=8"):
        NAGphormerMixer(8, num_heads=3)


def test_mixer_standalone_adds_self_loops_and_equals_its_block_form():
    torch.manual_seed(2)
    graph = random_graph(SIZES, p=0.3)
    x = torch.randn(graph.num_nodes(), 8)
    standalone = NAGphormerMixer(8, num_heads=2).eval()
    built = mixers.build("nagphormer", BlockConfig(dim=8, num_heads=2)).eval()
    built.load_state_dict(standalone.state_dict())
    assert_close(
        "standalone vs on looped graph", standalone(graph, x), built(add_self_loops(graph), x)
    )


def test_an_unpickled_model_registers_its_field_in_the_new_process():
    """Spawned DDP ranks unpickle the model without running __init__; the field must exist
    there for the data module (a fresh process is simulated by unregistering it)."""
    import pickle
    import subprocess
    import sys

    model = NAGphormer(3, 6, BlockConfig(dim=8, num_heads=2), hops=5)
    code = (
        "import pickle, sys, graphformer\n"
        "from graphformer.fields import FIELDS\n"
        "assert 'hop_feat_5' not in FIELDS\n"
        "model = pickle.loads(sys.stdin.buffer.read())\n"
        "assert 'hop_feat_5' in FIELDS, sorted(FIELDS)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(model), capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
