"""GraphTransformerBlock (γ around every mixer), Readout and the GraphTransformer model."""

from __future__ import annotations

import dataclasses
import math
import re

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import pe_transform
from graphformer.data.datasets.sbm import cluster_graph
from graphformer.graphs import add_self_loops, complete_graph
from graphformer.nn import (
    BlockConfig,
    GraphTransformer,
    GraphTransformerBlock,
    LapPEEncoder,
    Readout,
)
from graphformer.nn.block import block_mixers
from graphformer.nn.mixers import build, names

import dgl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    assert_close,
    copy_into_torch_mha,
    pad,
    path_graph,
    permute_nodes,
    random_graph,
    randomize_biases,
    unpad,
    with_needs,
    within_sample_permutation,
)
from torch import nn

DIM, HEADS = 16, 4
SIZES = [5, 7, 3]
MIXERS, LOCAL_MIXERS = block_mixers(), names("local")


def config(mixer: str = "attention", **fields) -> BlockConfig:
    """The tests' block settings: width DIM, HEADS heads."""
    return BlockConfig(**{"dim": DIM, "num_heads": HEADS, "mixer": mixer, **fields})


def batch(sizes=SIZES, seed: int = 0) -> dgl.DGLGraph:
    return random_graph(sizes, p=0.35, seed=seed)


def equivariant(module: nn.Module) -> bool:
    """Whether every mixer of a block (or of a model's blocks) is node-permutation equivariant."""
    blocks = getattr(module, "blocks", [module])
    mixers = [m for block in blocks for m in (block.local, block.global_mixer) if m is not None]
    return all(m.permutation_equivariant for m in mixers)


def finite_grads(module: nn.Module, unused: str = "^$") -> bool:
    """Every parameter (but those whose name matches ``unused``) has a finite gradient."""
    grads = [p.grad for n, p in module.named_parameters() if not re.match(unused, n)]
    return all(g is not None and torch.isfinite(g).all() for g in grads)


# --- GraphTransformerBlock ----------------------------------------------------------------


@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("prenorm", [True, False], ids=["prenorm", "postnorm"])
@pytest.mark.parametrize("mixer", MIXERS)
def test_block_shape_equivariance_and_grads(mixer, prenorm, norm):
    block = randomize_biases(GraphTransformerBlock(config(mixer, norm=norm, prenorm=prenorm)))
    graph = with_needs(batch(), block)
    x = torch.randn(graph.num_nodes(), DIM, requires_grad=True)

    out, edges = block(graph, x, return_edges=True)
    assert out.shape == (graph.num_nodes(), DIM)
    edge_loss = edges.square().mean() if edges is not None else 0.0  # mixers updating edges
    (out.square().mean() + edge_loss).backward()
    assert finite_grads(block)
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0

    block.eval()
    one = random_graph([9], p=0.35, seed=1)
    x = torch.randn(9, DIM)
    # Mixers that are not node-equivariant (exphormer's expander) keep the node order
    # here and are tested on their own terms in their test file; edge order never matters.
    perm = torch.randperm(9) if equivariant(block) else torch.arange(9)
    out = block(with_needs(one, block), x)
    permuted = permute_nodes(one, perm, torch.randperm(one.num_edges()))
    out_perm = block(with_needs(permuted, block), x[perm])
    assert_close("block permutation equivariance", out_perm, out[perm])


def test_full_block_equals_attention_then_ffn_by_hand():
    """norm='none', dropout 0, one sample: x + MHA(x), then x + W2 σ(W1 x + b1) + b2."""
    block = randomize_biases(GraphTransformerBlock(config("full", norm="none"))).eval()
    mha = nn.MultiheadAttention(DIM, HEADS, batch_first=True).eval()
    copy_into_torch_mha(block.global_mixer, mha)
    x = torch.randn(6, DIM)

    out = block(dgl.graph(([], []), num_nodes=6), x)  # the input graph's edges are unused

    h = x + mha(x[None], x[None], x[None], need_weights=False)[0][0]
    first, last = block.ffn[0], block.ffn[3]
    expected = h + F.linear(F.gelu(F.linear(h, first.weight, first.bias)), last.weight, last.bias)
    assert_close("full block vs x + MHA(x), x + FFN(x) by hand", out, expected)


@pytest.mark.parametrize("prenorm", [True, False], ids=["prenorm", "postnorm"])
def test_full_block_equals_torch_transformer_encoder_layer(prenorm):
    """With layer norm, a `full` block is nn.TransformerEncoderLayer on each padded sample."""
    block = GraphTransformerBlock(config("full", activation="gelu", prenorm=prenorm))
    block = randomize_biases(block).eval()
    reference = nn.TransformerEncoderLayer(
        DIM,
        HEADS,
        dim_feedforward=block.ffn[0].out_features,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=prenorm,
    ).eval()
    copy_into_torch_mha(block.global_mixer, reference.self_attn)
    with torch.no_grad():
        for ours, theirs in [
            (block.ffn[0], reference.linear1),
            (block.ffn[3], reference.linear2),
            (block.norm_global, reference.norm1),
            (block.norm_ffn, reference.norm2),
        ]:
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
        for norm in (block.norm_global, block.norm_ffn):
            norm.weight.uniform_(0.5, 1.5)
        reference.norm1.weight.copy_(block.norm_global.weight)
        reference.norm2.weight.copy_(block.norm_ffn.weight)
    graph = batch()
    x = torch.randn(graph.num_nodes(), DIM)

    padded, mask = pad(x, SIZES)
    expected = unpad(reference(padded, src_key_padding_mask=mask), SIZES)
    assert_close("full block vs nn.TransformerEncoderLayer", block(graph, x), expected)


@pytest.mark.parametrize("local_mixer", LOCAL_MIXERS)
def test_gps_block_is_graphgps_layer_by_hand(local_mixer):
    """Post-norm GPS: each branch its own residual + norm, summed, then FFN + residual + norm
    (GraphGPS's GPSLayer and PyG's GPSConv)."""
    block = GraphTransformerBlock(config("gps", local_mixer=local_mixer, prenorm=False))
    block = randomize_biases(block).eval()
    with torch.no_grad():
        for norm in (block.norm_local, block.norm_global, block.norm_ffn):
            norm.weight.uniform_(0.5, 1.5)
    graph = with_needs(batch(), block)  # the fields its mixers read
    x = torch.randn(graph.num_nodes(), DIM)
    mixer = block.local
    out = mixer.mix(add_self_loops(graph) if mixer.self_loops else graph, x, None)[0]
    local = block.norm_local(out if mixer.owns_residual else x + out)
    full = block.norm_global(x + block.global_mixer(complete_graph(SIZES), x))
    h = local + full
    expected = block.norm_ffn(h + block.ffn(h))
    assert_close("gps block vs GraphGPS layer by hand", block(graph, x), expected)


@pytest.mark.slow
def test_deep_postnorm_gps_stack_learns():
    """16 post-norm BatchNorm GPS blocks (GCN + full attention, dropout 0.1, attention
    dropout 0.5, as the cluster_gps recipe) must leave ln C within 3 epochs on small
    CLUSTER graphs. One shared residual + norm over the summed branches, or per-chunk
    Xavier attention projections, each keeps the train loss at ln 6 (issue 12)."""
    torch.manual_seed(0)
    graphs = [cluster_graph(np.random.default_rng([0, i]), size_range=(4, 10)) for i in range(48)]
    block = BlockConfig(
        dim=32,
        mixer="gps",
        num_heads=4,
        norm="batch",
        prenorm=False,
        activation="relu",
        dropout=0.1,
        attn_dropout=0.5,
    )
    model = GraphTransformer(6, block, 16, num_categories=7)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5)
    for _ in range(3):
        losses = []
        for start in range(0, len(graphs), 16):
            graph = dgl.batch(graphs[start : start + 16])
            loss = F.cross_entropy(model(graph, graph.ndata["feat"]), graph.ndata["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    last_epoch = sum(losses) / len(losses)
    assert last_epoch < math.log(6) - 0.08, f"train loss {last_epoch:.3f} stayed near ln 6"


def test_block_passes_edge_features_with_self_loops():
    """Loops added by the block get zero edge features; the caller's graph is untouched."""
    block = randomize_biases(GraphTransformerBlock(config("attention"), edge_dim=3)).eval()
    graph = batch()
    x = torch.randn(graph.num_nodes(), DIM)
    edge_feat = torch.randn(graph.num_edges(), 3)

    out = block(graph, x, edge_feat)

    assert "feat" not in graph.edata and graph.num_edges() == len(edge_feat)
    assert not torch.allclose(out, block(graph, x, torch.randn_like(edge_feat)))
    graph.edata["feat"] = edge_feat
    looped = add_self_loops(graph, fill_value=0.0)
    h = x + block.local(looped, block.norm_local(x), looped.edata["feat"])
    expected = h + block.ffn(block.norm_ffn(h))
    assert_close("block with edge features vs mix + ffn", out, expected)


# --- Readout ------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["mean", "sum", "max"])
def test_readout_equals_torch_reductions(op):
    sizes = [3, 1, 6]
    graph = batch(sizes)
    x = torch.randn(graph.num_nodes(), 5)
    reduce = {"mean": torch.mean, "sum": torch.sum, "max": torch.amax}[op]
    expected = torch.stack([reduce(part, dim=0) for part in torch.split(x, sizes)])
    assert_close(f"Readout({op}) vs torch per-sample reduction", Readout(op)(graph, x), expected)


# --- GraphTransformer ---------------------------------------------------------------------


BLOCK_FIELDS = {field.name for field in dataclasses.fields(BlockConfig)}


def model(**kwargs) -> GraphTransformer:
    """A 2-block model of width DIM; block settings among ``kwargs`` go to its BlockConfig."""
    fields = {key: kwargs.pop(key) for key in list(kwargs) if key in BLOCK_FIELDS}
    return GraphTransformer(
        3, BlockConfig(**{"dim": DIM, "num_heads": HEADS, **fields}), 2, **kwargs
    )


@pytest.mark.parametrize("level", ["node", "graph"])
@pytest.mark.parametrize("mixer", MIXERS)
def test_model_output_shapes(mixer, level):
    net = model(mixer=mixer, level=level, in_dim=4)
    graph = with_needs(batch(), net)
    out = net(graph, torch.randn(graph.num_nodes(), 4))
    assert out.shape == ((graph.num_nodes(), 3) if level == "node" else (len(SIZES), 3))
    out.sum().backward()
    last = len(net.blocks) - 1  # the last block's edge update (GatedGCN) reaches no output
    assert finite_grads(net, unused=rf"blocks\.{last}\.local\.norm_edge")


def pe_batch(sizes=(2, 6, 5), lap_k: int = 3, rwse_k: int = 4) -> dgl.DGLGraph:
    """Path graphs with LapPE and RWSE from pe_transform; the first has < lap_k + 1 nodes."""
    transform = pe_transform(lap_k=lap_k, rwse_k=rwse_k)
    return dgl.batch([transform(path_graph(n)) for n in sizes])


def test_pe_transform_pads_small_graphs():
    graph = pe_batch()
    assert graph.ndata["lap_pe"].shape == (13, 3)
    assert graph.ndata["rwse"].shape == (13, 4)
    small = graph.ndata["lap_pe"][:2]
    assert (small[:, 1:] == 0).all(), "a 2-node graph has one eigenvector; the rest is padding"
    assert small[:, 0].abs().sum() > 0


@pytest.mark.parametrize("mixer", MIXERS)
def test_model_with_positional_encodings(mixer):
    net = model(mixer=mixer, in_dim=4, lap_pe_k=3, rwse_k=4, level="graph")
    graph = with_needs(pe_batch(), net)
    out = net(graph, torch.randn(graph.num_nodes(), 4))
    assert out.shape == (3, 3) and torch.isfinite(out).all()


def test_lap_pe_sign_flip_only_in_training():
    graph = pe_batch(sizes=(4, 6, 5, 7))
    pe = graph.ndata["lap_pe"]
    encoder = LapPEEncoder(3, 3)
    with torch.no_grad():
        encoder.linear.weight.copy_(torch.eye(3))
        encoder.linear.bias.zero_()

    assert torch.equal(encoder.eval()(graph, pe), pe)
    flipped = encoder.train()(graph, pe)
    assert torch.equal(flipped.abs(), pe.abs())
    assert not torch.equal(flipped, pe)
    signs = torch.where(pe != 0, flipped / pe, torch.nan)
    for part in torch.split(signs, graph.batch_num_nodes().tolist()):
        # One sign per (graph, eigenvector).
        column_signs = part.nanmean(dim=0)
        assert set(column_signs.abs().tolist()) == {1.0}
        assert torch.all((part == column_signs) | part.isnan())

    net = model(in_dim=4, lap_pe_k=3)
    x = torch.randn(graph.num_nodes(), 4)
    net.eval()
    assert torch.equal(net(graph, x), net(graph, x))
    assert not torch.allclose(net.train()(graph, x), net.eval()(graph, x))


def test_model_with_categorical_inputs():
    graph = batch()
    net = model(num_categories=7, edge_categories=4, mixer="attention", level="graph")
    x = torch.randint(0, 7, (graph.num_nodes(), 2))
    edge_codes = torch.randint(0, 4, (graph.num_edges(),))
    out = net(graph, x, edge_codes)
    assert out.shape == (3, 3) and torch.isfinite(out).all()
    assert not torch.allclose(out, net(graph, x, (edge_codes + 1) % 4))


@pytest.mark.parametrize(("mixer", "local_mixer"), [("attention", "gcn"), ("gps", "attention")])
def test_model_with_edge_features(mixer, local_mixer):
    graph = batch()
    net = model(mixer=mixer, local_mixer=local_mixer, in_dim=4, edge_in_dim=3).eval()
    x, edge_feat = torch.randn(graph.num_nodes(), 4), torch.randn(graph.num_edges(), 3)
    out = net(graph, x, edge_feat)
    assert out.shape == (graph.num_nodes(), 3)
    assert not torch.allclose(out, net(graph, x, edge_feat * 2))


def test_deep_stack_gradients_do_not_vanish():
    graph = batch([6, 6])
    net = GraphTransformer(
        out_dim=1,
        block=BlockConfig(dim=32, mixer="attention", num_heads=4),
        num_layers=32,
        in_dim=4,
        level="graph",
    )
    net(graph, torch.randn(12, 4)).sum().backward()
    assert finite_grads(net)
    first = torch.cat([p.grad.flatten() for p in net.blocks[0].parameters()])
    assert first.norm() > 1e-6


@pytest.mark.parametrize("mixer", MIXERS)
def test_graph_output_invariant_to_node_permutation(mixer):
    graph = pe_batch(sizes=(4, 6, 5))
    local_mixer = "attention" if mixer == "gps" else "gcn"
    edge_in_dim = 2 if mixer in ("attention", "gps") else None
    net = model(
        mixer=mixer,
        local_mixer=local_mixer,
        in_dim=4,
        lap_pe_k=3,
        rwse_k=4,
        edge_in_dim=edge_in_dim,
        level="graph",
    ).eval()
    x = torch.randn(15, 4)
    edge_feat = torch.randn(graph.num_edges(), 2) if edge_in_dim else None
    if not equivariant(net):
        pytest.skip(f"{mixer} is not node-permutation equivariant (tests/test_{mixer}.py)")
    perm = within_sample_permutation([4, 6, 5], seed=3)
    assert not torch.equal(perm, torch.arange(15))

    out = net(with_needs(graph, net), x, edge_feat)
    out_perm = net(with_needs(permute_nodes(graph, perm), net), x[perm], edge_feat)
    assert_close("graph-level output permutation invariance", out_perm, out)


@pytest.mark.parametrize("prenorm", [True, False])
def test_attention_weights_are_each_attention_blocks_softmax(prenorm):
    block = BlockConfig(dim=8, mixer="attention", num_heads=2, prenorm=prenorm)
    model = GraphTransformer(3, block, 2, in_dim=4)
    model.eval()
    graph = dgl.batch([dgl.rand_graph(5, 12), dgl.rand_graph(4, 6)])
    x = torch.randn(graph.num_nodes(), 4)
    looped, weights = model.attention_weights(graph, x)
    assert len(weights) == 2 and looped.num_edges() == weights[0].shape[0]
    assert weights[0].shape[1] == 2
    per_node = torch.zeros(graph.num_nodes(), 2).index_add_(0, looped.edges()[1], weights[1])
    assert torch.allclose(per_node, torch.ones_like(per_node))
    first = model.blocks[0]
    h = model.node_encoder(x)
    mixer_input = first.norm_local(h) if prenorm else h
    _, expected = first.local(looped, mixer_input, return_attention=True)
    assert_close("attention_weights vs block 0 by hand", weights[0], expected)
    # Recording weights runs message passing where auto may run the dense engine: the same
    # function, up to rounding.
    recorded = model.encode(graph, x, attention=[])
    assert_close("encode while recording weights vs not", model.encode(graph, x), recorded)


def test_attention_weights_skip_blocks_without_local_attention_and_need_eval():
    block = BlockConfig(dim=8, mixer="gps", local_mixer="gcn", num_heads=2)
    model = GraphTransformer(3, block, 2, in_dim=4)
    graph = dgl.rand_graph(5, 10)
    with pytest.raises(RuntimeError, match=r"model.eval\(\)"):
        model.attention_weights(graph, torch.randn(5, 4))
    assert model.eval().attention_weights(graph, torch.randn(5, 4))[1] == []


def test_injected_mixers_equal_the_named_ones():
    """Mixer modules passed in (as PyG's GPSConv(conv=...)) make the same block as names."""
    named = GraphTransformerBlock(config("gps", local_mixer="sage")).eval()
    injected = GraphTransformerBlock(
        config(),
        local=build("sage", config()),
        global_mixer=build("full", config()),
    ).eval()
    injected.load_state_dict(named.state_dict())
    graph = batch()
    x = torch.randn(graph.num_nodes(), DIM)
    assert_close("block with injected mixers vs named", injected(graph, x), named(graph, x))


def test_edge_state_flows_from_block_to_block():
    """With GatedGCN, block 1 reads the edge state block 0 wrote: changing block 0's edge
    update changes the output, though block 0's node output does not depend on it."""
    net = model(mixer="gatedgcn", in_dim=4, edge_in_dim=2).eval()
    graph = batch()
    x, edge_feat = torch.randn(graph.num_nodes(), 4), torch.randn(graph.num_edges(), 2)
    before = net(graph, x, edge_feat)
    with torch.no_grad():
        net.blocks[0].local.norm_edge.bias.add_(1.0)
    assert not torch.allclose(net(graph, x, edge_feat), before)


def test_gps_takes_its_global_half_and_its_settings_by_name():
    block = GraphTransformerBlock(config("gps", local_mixer="sage", global_mixer="performer"))
    assert type(block.global_mixer).__name__ == "PerformerAttention"
    with pytest.raises(ValueError, match="unknown global_mixer 'sage'"):
        config("gps", global_mixer="sage")
    with pytest.raises(ValueError, match=r"global_kwargs \['degree'\] are not settings of 'full'"):
        config("gps", global_kwargs={"degree": 6})
