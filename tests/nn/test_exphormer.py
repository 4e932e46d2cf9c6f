"""ExphormerAttention: MultiHeadAttention on input ∪ expander ∪ virtual nodes.

Checked against an independent dense reference (plain torch, per sample, over the edge
multiset), across engines, by gradcheck, for the permutation properties it has (and the
one it lacks), for its virtual nodes, its once-per-batch attention graph and its errors.
"""

from __future__ import annotations

import copy
import math

import graphformer  # noqa: F401  (before DGL)
import graphformer.nn.layers.exphormer as exphormer_module
from graphformer.graphs import EdgeKind, add_self_loops, expander_graph
from graphformer.nn import BlockConfig, ExphormerAttention, GraphTransformer, GraphTransformerBlock
from graphformer.nn.mixers import REGISTRY, build

import dgl
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    assert_close,
    offsets,
    permute_nodes,
    random_graph,
    randomize_biases,
    sample_of_node,
    within_sample_permutation,
)

DIM, HEADS = 16, 4
SIZES = [5, 1, 8, 3]  # with a 1-node sample


def batch(sizes=SIZES, seed: int = 0) -> dgl.DGLGraph:
    return random_graph(sizes, p=0.4, seed=seed)


def mixer(**kwargs) -> ExphormerAttention:
    torch.manual_seed(kwargs.pop("init_seed", 0))
    options = {"degree": 4, "virtual_nodes": 2} | kwargs
    return randomize_biases(ExphormerAttention(DIM, HEADS, **options)).eval()


def linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    bias = layer.bias.double() if layer.bias is not None else None
    return F.linear(x, layer.weight.double(), bias)


def dense_reference(module: ExphormerAttention, graph: dgl.DGLGraph, x: torch.Tensor):
    """Per sample, in float64: scores q_i·(k_j + a_kind)/√d over the multiset of edges of
    input ∪ expander ∪ virtual nodes (count[kind, i, j] edges j → i), softmax over all of
    i's edges, Σ α v, out_proj; the real rows only."""
    att, k = module.attention, module.virtual_nodes
    heads, width = att.num_heads, att.head_dim
    expander = expander_graph(graph, module.degree, module.seed)
    edge_sets = [(graph, EdgeKind.INPUT), (expander, EdgeKind.EXPANDER)]
    kind_keys = linear(att.edge_key, module.kind.weight.double()).view(-1, heads, width)
    outputs = []
    sizes = graph.batch_num_nodes().tolist()
    for start, n in zip(offsets(sizes).tolist(), sizes, strict=True):
        h = x[start : start + n].double()
        if k:
            h = torch.cat([h, module.virtual.weight.double() + h.mean(0)])
        m = n + k
        count = torch.zeros(len(EdgeKind), m, m, dtype=torch.float64)
        for edges, kind in edge_sets:
            src, dst = edges.edges()
            inside = (src >= start) & (src < start + n)
            index = (dst[inside] - start, src[inside] - start)
            count[kind].index_put_(index, torch.ones(int(inside.sum()), dtype=torch.float64), True)
        count[EdgeKind.TO_VIRTUAL, n:, :n] = 1  # real j → virtual i
        count[EdgeKind.FROM_VIRTUAL, :n, n:] = 1  # virtual j → real i
        q = linear(att.q_proj, h).view(m, heads, width)
        keys = linear(att.k_proj, h).view(m, heads, width)
        values = linear(att.v_proj, h).view(m, heads, width)
        scores = torch.einsum("ihd,jhd->hij", q, keys)[None] + torch.einsum(
            "ihd,chd->chi", q, kind_keys
        ).unsqueeze(-1)  # (kind, head, i, j)
        logits = scores / math.sqrt(width) + count.log().unsqueeze(1)
        logits = logits.permute(1, 2, 0, 3).reshape(heads, m, -1)  # softmax over (kind, j)
        alpha = logits.softmax(-1).view(heads, m, len(EdgeKind), m).sum(2)
        out = torch.einsum("hij,jhd->ihd", alpha, values).reshape(m, heads * width)
        outputs.append(linear(att.out_proj, out)[:n])
    return torch.cat(outputs)


@pytest.mark.parametrize("virtual_nodes", [0, 1, 3])
@pytest.mark.parametrize("self_loops", [False, True], ids=["input", "input+loops"])
def test_equals_dense_reference_over_the_edge_multiset(virtual_nodes, self_loops):
    module = mixer(virtual_nodes=virtual_nodes, degree=6)
    graph = add_self_loops(batch()) if self_loops else batch()
    x = torch.randn(graph.num_nodes(), DIM)
    out, edge_state = module(graph, x)
    assert edge_state is None
    expected = dense_reference(module, graph, x)
    assert_close(f"exphormer vs dense reference k={virtual_nodes}", out, expected.float(), 1e-6)
    # The multiset matters: a 1-node sample has `degree` expander self-loops.
    attention = module.attention_graph(graph).graph
    src, dst = attention.edges()
    one = int(offsets(SIZES)[1])
    one_loops = (src == one + virtual_nodes * 1) & (dst == src)  # after sample 0's virtuals
    assert int(one_loops.sum()) == 6 + int(self_loops)


def test_edge_state_passes_through():
    graph = batch()
    state = torch.randn(graph.num_edges(), 3)
    assert mixer()(graph, torch.randn(graph.num_nodes(), DIM), state)[1] is state


def outputs_and_grads(module, graph, x):
    x = x.detach().clone().requires_grad_(True)
    out = module(graph, x)[0]
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out, x.grad, {name: p.grad for name, p in module.named_parameters()}


def test_dgl_and_torch_engines_agree():
    dgl_mixer = mixer(engine="dgl", virtual_nodes=3)
    torch_mixer = mixer(engine="torch", virtual_nodes=3)
    torch_mixer.load_state_dict(copy.deepcopy(dgl_mixer.state_dict()))
    graph = batch()
    x = torch.randn(graph.num_nodes(), DIM)
    out_a, dx_a, grads_a = outputs_and_grads(dgl_mixer, graph, x)
    out_b, dx_b, grads_b = outputs_and_grads(torch_mixer, graph, x)
    assert_close("exphormer torch vs dgl output", out_b, out_a)
    assert_close("exphormer torch vs dgl input grad", dx_b, dx_a)
    for name, grad in grads_a.items():
        assert grad is not None, name
        assert_close(f"exphormer torch vs dgl grad {name}", grads_b[name], grad)


@pytest.mark.parametrize("engine", ["dgl", "torch"])
def test_gradcheck_float64(engine):
    torch.manual_seed(0)
    module = ExphormerAttention(4, 2, degree=2, virtual_nodes=2, engine=engine).double()
    graph = random_graph([3, 1, 2], p=0.5, seed=1)
    x = torch.randn(graph.num_nodes(), 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: module(graph, h)[0], (x,))
    # ... and through the kind and virtual-node embeddings.
    names = ("kind.weight", "virtual.weight")

    def of_embeddings(*weights):
        params = dict(zip(names, weights, strict=True))
        return torch.func.functional_call(module, params, (graph, x.detach()))[0]

    weights = tuple(module.get_parameter(n).detach().clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(of_embeddings, weights)


# --- permutations: what is and is not equivariant -------------------------------------


def test_equivariant_when_the_expander_is_relabelled_with_the_nodes(monkeypatch):
    """Relabel a batch's nodes within samples (and reorder its edges) and the expander with
    them: the output rows are relabelled the same way."""
    module = mixer(degree=6, virtual_nodes=2)
    graph = batch()
    x = torch.randn(graph.num_nodes(), DIM)
    out = module(graph, x)[0]
    perm = within_sample_permutation(SIZES, seed=3)
    assert not torch.equal(perm, torch.arange(len(perm)))
    relabelled = permute_nodes(expander_graph(graph, 6, 0), perm)
    monkeypatch.setattr(exphormer_module, "expander_graph", lambda g, degree, seed: relabelled)
    edge_perm = shuffled_edges_within_samples(graph)
    out_perm = module(permute_nodes(graph, perm, edge_perm), x[perm])[0]
    assert_close("exphormer equivariance given the relabelled expander", out_perm, out[perm])


def shuffled_edges_within_samples(graph: dgl.DGLGraph, seed: int = 5) -> torch.Tensor:
    sample = sample_of_node(graph.batch_num_nodes())[graph.edges()[1]]
    noise = torch.rand(graph.num_edges(), generator=torch.Generator().manual_seed(seed))
    return torch.argsort(sample + noise)


def test_invariant_to_the_order_of_input_edges():
    module = mixer(degree=6, virtual_nodes=1)
    graph = batch()
    x = torch.randn(graph.num_nodes(), DIM)
    reordered = permute_nodes(
        graph, torch.arange(graph.num_nodes()), shuffled_edges_within_samples(graph)
    )
    assert not torch.equal(reordered.edges()[0], graph.edges()[0])
    assert_close("exphormer edge-order invariance", module(reordered, x)[0], module(graph, x)[0])


def test_not_equivariant_to_relabelling_nodes_alone():
    """The expander is drawn over node positions: relabelling a sample's nodes gives them
    other expander neighbours (Exphormer's per-graph expander has the same property)."""
    module = mixer(degree=6, virtual_nodes=1)
    assert module.permutation_equivariant is False
    graph = batch()
    x = torch.randn(graph.num_nodes(), DIM)
    perm = within_sample_permutation(SIZES, seed=3)
    out_perm = module(permute_nodes(graph, perm), x[perm])[0]
    assert (out_perm - module(graph, x)[0][perm]).abs().max() > 1e-3


def test_expander_is_fixed_by_seed_and_sample_sizes():
    graph, other = batch(seed=0), batch(seed=1)  # same sizes, other input edges
    a, b = mixer(seed=7).attention_graph(graph), mixer(seed=7).attention_graph(other)

    def expander_edges(built):
        src, dst = built.graph.edges()
        keep = built.kind == EdgeKind.EXPANDER
        return torch.stack([src[keep], dst[keep]])

    assert torch.equal(expander_edges(a), expander_edges(b))
    c = mixer(seed=8).attention_graph(graph)
    assert not torch.equal(expander_edges(a), expander_edges(c))
    module = mixer().train()  # no dropout: train and eval see the same graph
    x = torch.randn(graph.num_nodes(), DIM)
    assert torch.equal(module(graph, x)[0], module.eval()(graph, x)[0])


# --- virtual nodes and the once-per-batch attention graph ---------------------------------


def test_virtual_nodes_never_reach_the_output_but_their_states_matter():
    """Readouts see real nodes only; the virtual states (learned + the sample's mean) reach
    the real nodes as keys and values, but what the virtual nodes gather is dropped."""
    block = BlockConfig(
        dim=DIM,
        mixer="gps",
        num_heads=HEADS,
        local_mixer="gatedgcn",
        global_mixer="exphormer",
        global_kwargs={"degree": 6, "virtual_nodes": 3},
        norm="batch",
    )
    net = GraphTransformer(3, block, 2, in_dim=4, level="graph")
    graph = batch()
    x = torch.randn(graph.num_nodes(), 4)
    assert net.encode(graph, x).shape == (graph.num_nodes(), DIM)
    out = net(graph, x)
    assert out.shape == (len(SIZES), 3)
    out.sum().backward()
    for block in net.blocks:
        assert block.global_mixer.virtual.weight.shape == (3, DIM)
        assert block.global_mixer.virtual.weight.grad.abs().sum() > 0
        used = block.global_mixer.kind.weight.grad.abs().sum(1) > 0
        # Input, expander and virtual → node edges reach the output through the score;
        # node → virtual edges only shape the virtual rows, which are dropped.
        assert used.tolist() == [True, True, False, True]


def test_attention_graph_is_built_once_per_batch_for_a_whole_stack(monkeypatch):
    builds = []
    real = exphormer_module.add_virtual_nodes
    monkeypatch.setattr(
        exphormer_module, "add_virtual_nodes", lambda *a: builds.append(1) or real(*a)
    )
    config = BlockConfig(dim=DIM, num_heads=HEADS, mixer="gps", global_mixer="exphormer")
    graph = batch()
    x = torch.randn(graph.num_nodes(), 4)
    net = GraphTransformer(3, config.replace(local_mixer="gatedgcn"), 4, in_dim=4)
    net(graph, x)
    assert len(builds) == 1
    net(graph, x)  # the same batch graph object again
    assert len(builds) == 1
    net(batch(seed=2), x)
    assert len(builds) == 2
    # A local mixer on self-loops: the stack shares the looped graph, built once per call.
    looped = GraphTransformer(3, config.replace(local_mixer="attention"), 3, in_dim=4)
    looped(graph, x)
    assert len(builds) == 3
    # Other settings: another attention graph; the same settings: the same one.
    h = torch.randn(graph.num_nodes(), DIM)
    exphormer = config.replace(mixer="exphormer")
    GraphTransformerBlock(exphormer.replace(global_kwargs={"degree": 2}))(graph, h)
    assert len(builds) == 4
    GraphTransformerBlock(exphormer)(graph, h)  # net's defaults: 6, 1, 0
    assert len(builds) == 4


def test_registry_entry_and_gps_global_half():
    entry = REGISTRY["exphormer"]
    assert entry is ExphormerAttention
    assert entry.scope == "global" and entry.settings == ("degree", "virtual_nodes", "seed")
    block = GraphTransformerBlock(
        BlockConfig(
            dim=DIM,
            mixer="gps",
            num_heads=HEADS,
            local_mixer="gatedgcn",
            global_mixer="exphormer",
            global_kwargs={"degree": 6, "virtual_nodes": 3},
            attn_dropout=0.2,
        )
    )
    full = block.global_mixer
    assert isinstance(full, ExphormerAttention)
    assert (full.degree, full.virtual_nodes, full.seed) == (6, 3, 0)
    assert full.attention.attn_dropout.p == 0.2
    graph = batch()
    out = block(graph, torch.randn(graph.num_nodes(), DIM))
    assert out.shape == (graph.num_nodes(), DIM) and torch.isfinite(out).all()
    plain = GraphTransformerBlock(BlockConfig(dim=DIM, mixer="exphormer", num_heads=HEADS))
    assert (plain.global_mixer.degree, plain.global_mixer.virtual_nodes) == (6, 1)


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"degree": 3}, r"degree must be a positive even int.*got 3\. Exphormer's exp_deg"),
        ({"degree": 0}, r"degree must be a positive even int.*got 0"),
        ({"degree": -2}, r"degree must be a positive even int.*got -2"),
        ({"degree": 6.0}, r"degree must be a positive even int.*got 6\.0"),
        ({"virtual_nodes": -1}, r"virtual_nodes must be a non-negative int.*got -1\. Pass 0"),
        ({"virtual_nodes": True}, r"virtual_nodes must be a non-negative int.*got True"),
        ({"seed": "0"}, r"seed must be an int; got '0'"),
    ],
)
def test_bad_settings_name_the_value_and_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExphormerAttention(DIM, HEADS, **kwargs)
    with pytest.raises(ValueError, match=match):
        build("exphormer", BlockConfig(dim=DIM, num_heads=HEADS, global_kwargs=kwargs))


def test_unknown_setting_is_refused_by_the_registry():
    with pytest.raises(ValueError, match=r"\['deg'\] are not settings of 'exphormer'"):
        BlockConfig(dim=DIM, mixer="gps", global_mixer="exphormer", global_kwargs={"deg": 6})


def test_graph_whose_batch_information_does_not_hold_its_edges():
    graph = dgl.graph((torch.tensor([0, 3]), torch.tensor([3, 0])), num_nodes=5)
    graph.set_batch_num_nodes(torch.tensor([2, 3]))
    graph.set_batch_num_edges(torch.tensor([2, 0]))  # the edges cross samples
    with pytest.raises(
        ValueError, match=r"batch information.*batch_num_nodes \[2, 3\].*dgl\.batch"
    ):
        mixer()(graph, torch.randn(5, DIM))


def test_heterograph_and_bad_features_are_refused():
    hetero = dgl.heterograph({("a", "r", "b"): ([0], [0])})
    with pytest.raises(ValueError, match="ExphormerAttention needs homogeneous DGLGraphs"):
        exphormer_module.build_exphormer_graph(hetero)
    graph = batch()
    with pytest.raises(ValueError, match=rf"x must have shape \({graph.num_nodes()}, {DIM}\)"):
        mixer()(graph, torch.randn(graph.num_nodes(), DIM + 1))
    x = torch.randn(graph.num_nodes(), DIM)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        mixer()(graph, x)


@pytest.mark.parametrize("seed", [None, 2**70])
def test_a_seed_out_of_torchs_range_is_refused_when_built(seed):
    """Refused at construction (from the CLI: before the data is prepared), not at the
    first forward with torch's 'Overflow when unpacking long long'."""
    with pytest.raises(
        ValueError, match=r"seed must be an int; got .*It must lie in \[-2\*\*63, 2\*\*64\)"
    ):
        ExphormerAttention(16, 4, seed=seed)
    with pytest.raises(ValueError, match=r"seed must be"):
        build(
            "exphormer",
            BlockConfig(dim=16, num_heads=4, mixer="exphormer", global_kwargs={"seed": seed}),
        )
