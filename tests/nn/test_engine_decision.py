"""The one engine decision (:func:`decide_engine`), each branch; the primitives behind one
interface; refusals of engines a layer cannot honour; the one padding class."""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import add_self_loops, complete_bipartite, complete_graph
from graphformer.nn import (
    GINE,
    GNN,
    BlockConfig,
    GATConv,
    GatedGCN,
    GCNConv,
    GraphTransformerBlock,
    MultiHeadAttention,
    SAGEConv,
)
from graphformer.nn.core.dense import (
    GROUP_COST_CELLS,
    Padding,
    dense_attention,
    padding_index,
    size_groups,
)
from graphformer.nn.core.message_passing import (
    DGLPrimitives,
    MessagePassing,
    TorchPrimitives,
    check_engine,
    decide_engine,
    local_engine,
)
from graphformer.nn.mixers import build
from graphformer.nn.models.decoder import DecoderBlock
from graphformer.nn.models.gnn import GNN_BLOCK

import dgl
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, random_graph

SIZES = [5, 1, 8, 3, 6]
META = torch.zeros(1, device="meta")  # stands in for a device DGL cannot reach


def test_message_passing_calls():
    g, x = random_graph(SIZES), torch.zeros(1)
    assert decide_engine("auto", g, x).engine == "dgl"
    assert decide_engine("auto", g, META).engine == "torch"
    assert decide_engine("dgl", g, META).engine == "dgl"
    assert decide_engine("torch", g, x).engine == "torch"
    assert decide_engine("auto", g, x).layout is None
    with pytest.raises(ValueError, match=r"has no 'dense' engine.*engine='auto'"):
        decide_engine("dense", g, x)  # a call without a dense path


def test_attention_on_a_complete_graph_runs_dense_without_a_layout():
    g, x = complete_graph(SIZES), torch.zeros(sum(SIZES), 4)
    for engine in ("auto", "dense"):
        plan = decide_engine(engine, g, x, attention=True)
        assert plan.dense and plan.layout is None
    for engine in ("dgl", "torch"):
        assert decide_engine(engine, g, x, attention=True).engine == engine
    # edge terms on a complete graph need the mask: a layout, not the shortcut
    plan = decide_engine("dense", g, x, attention=True, edge_terms=True)
    assert plan.dense and plan.layout is not None
    # returned weights: message passing under auto
    assert decide_engine("auto", g, x, attention=True, weights=True).engine == "dgl"


def test_attention_on_other_graphs_follows_the_measured_rule():
    x = torch.zeros(1, 4)
    dense_batch = add_self_loops(random_graph([40] * 4, p=0.3, seed=2))
    plan = decide_engine("auto", dense_batch, x, attention=True)
    assert plan.dense and plan.layout is not None and plan.layout.within_samples
    sparse_batch = add_self_loops(random_graph([200] * 2, p=0.005, seed=2))
    assert decide_engine("auto", sparse_batch, x, attention=True).engine == "dgl"
    assert decide_engine("auto", sparse_batch, META, attention=True).engine == "torch"
    assert decide_engine("dense", sparse_batch, x, attention=True).dense  # pinned


@pytest.mark.parametrize(
    ("need", "message"),
    [
        ({"cross": True}, "cross-attention"),
        ({"value_terms": True, "edge_terms": True}, "Shaw value terms"),
        ({"weights": True}, "return_attention"),
    ],
)
def test_pinned_dense_refuses_and_auto_falls_back(need, message):
    g = add_self_loops(random_graph([40] * 4, p=0.3, seed=2))
    x = torch.zeros(1, 4)
    with pytest.raises(ValueError, match=f"engine='dense' runs .*{message}.*engine='auto'"):
        decide_engine("dense", g, x, attention=True, **need)
    assert decide_engine("auto", g, x, attention=True, **need).engine == "dgl"


def test_an_edge_between_samples_refuses_dense():
    g = dgl.graph((torch.tensor([0]), torch.tensor([7])), num_nodes=10)
    g.set_batch_num_nodes(torch.tensor([5, 5]))
    x = torch.zeros(1, 4)
    with pytest.raises(ValueError, match="an edge between two samples"):
        decide_engine("dense", g, x, attention=True)
    assert decide_engine("auto", g, x, attention=True).engine == "dgl"


def test_decoder_calls_from_sizes():
    x = torch.zeros(1, 4)
    for engine in ("auto", "dense"):
        assert decide_engine(engine, None, x, attention=True, from_sizes=True).dense
    for engine in ("dgl", "torch"):
        assert decide_engine(engine, None, x, attention=True, from_sizes=True).engine == engine
    given = complete_bipartite([2, 3], [1, 2])
    assert not decide_engine("auto", given, x, attention=True, from_sizes=True).dense
    with pytest.raises(ValueError, match=r"engine='dense' .* cannot honour"):
        decide_engine("dense", given, x, attention=True, from_sizes=True)


def test_message_passing_returns_one_class_per_engine():
    g = random_graph(SIZES)
    assert type(MessagePassing(g, "auto", torch.zeros(1))) is DGLPrimitives
    assert type(MessagePassing(g, "torch", torch.zeros(1))) is TorchPrimitives
    assert type(MessagePassing(g, "auto", META)) is TorchPrimitives
    assert MessagePassing(g, "dgl", torch.zeros(1)).engine == "dgl"


@pytest.mark.parametrize(
    "build",
    [
        lambda e: GCNConv(4, 4, engine=e),
        lambda e: SAGEConv(4, 4, engine=e),
        lambda e: GATConv(4, 4, 2, engine=e),
        lambda e: GatedGCN(4, engine=e),
        lambda e: GINE(4, engine=e),
        lambda e: GNN(3, 4, GNN_BLOCK.replace(engine=e)),
    ],
    ids=["GCNConv", "SAGEConv", "GATConv", "GatedGCN", "GINE", "GNN"],
)
def test_layers_without_a_dense_path_refuse_dense(build, request):
    name = request.node.callspec.id
    with pytest.raises(ValueError, match=rf"{name} has no 'dense' engine.*engine='auto'"):
        build("dense")
    for engine in ("auto", "dgl", "torch"):
        assert build(engine) is not None


def test_check_engine_and_the_block_rule():
    assert check_engine("dense") == "dense"
    with pytest.raises(ValueError, match="unknown engine 'fast'"):
        check_engine("fast", ("auto",))
    assert local_engine("dense") == "auto" and local_engine("torch") == "torch"
    # a block's dense: its global attention pinned dense, its local mixers on auto
    config = BlockConfig(dim=8, mixer="gps", local_mixer="gcn", engine="dense")
    block = GraphTransformerBlock(config)
    assert block.global_mixer.engine == "dense" and block.local.engine == "auto"
    gine = build("gine", BlockConfig(dim=8, engine="dense"))
    assert gine.engine == "auto"
    assert MultiHeadAttention(8, 2, engine="dense").engine == "dense"
    assert DecoderBlock(BlockConfig(dim=8, num_heads=2, engine="dense")).self_attn.engine == "dense"


# --- the one padding class ------------------------------------------------------------


@pytest.mark.parametrize("max_groups", [1, 2, 4])
def test_padding_round_trip_and_masks(max_groups):
    sizes = torch.tensor([5, 0, 9, 2, 7, 1, 3])
    padding = Padding(sizes, torch.device("cpu"), max_groups=max_groups)
    assert len(padding.shapes) <= max_groups
    x = torch.randn(int(sizes.sum()), 3, 2)
    blocks = padding.pad(x)
    assert_close("padding round trip", padding.unpad(blocks), x, atol=0.0)
    for block, counts, mask in zip(blocks, padding.counts, padding.key_masks(), strict=True):
        assert mask.shape == (len(counts), 1, 1, block.shape[1])
        for slot, n in enumerate(counts.tolist()):
            assert not block[slot, n:].any()  # zeros at padding
            assert mask[slot, 0, 0, :n].all()
            assert mask[slot, 0, 0, n:].all() if n == 0 else not mask[slot, 0, 0, n:].any()


def test_one_group_is_the_plain_padded_batch():
    sizes = torch.tensor([3, 1, 4])
    (block,) = Padding(sizes, torch.device("cpu"), max_groups=1).pad(torch.arange(8.0))
    sample, position, longest = padding_index(sizes)
    expected = torch.zeros(3, longest)
    expected[sample, position] = torch.arange(8.0)
    assert torch.equal(block, expected)
    assert size_groups(sizes, 1)[0] == 3 * 16
    with pytest.raises(ValueError, match="max_groups must be a positive int; got 0"):
        Padding(sizes, torch.device("cpu"), max_groups=0)


def test_size_groups_weigh_cells_against_a_cost_per_group():
    """Small samples stay in one group (another group's fixed ops cost more than the cells
    it saves); widely spread large ones split; a group is added only when it saves more
    than GROUP_COST_CELLS cells."""
    molecules = torch.arange(15, 32).repeat(2)[:32]  # 32 samples of 15-31 atoms
    cells, groups = size_groups(molecules)
    assert len(groups) == 1 and cells == 32 * 31**2
    cluster = torch.linspace(40, 190, 16).round().long()
    cells, groups = size_groups(cluster)
    assert len(groups) > 1 and cells < 0.6 * 16 * 190**2
    assert sorted(torch.cat(groups).tolist()) == list(range(16))
    # two samples: splitting saves 100² - 1 cells; worth it only above the cost
    assert len(size_groups(torch.tensor([1, 100]))[1]) == 2
    small = int(GROUP_COST_CELLS**0.5) // 2  # saves small² - 1 < GROUP_COST_CELLS
    assert len(size_groups(torch.tensor([1, small]))[1]) == 1


def test_grouped_attention_equals_one_group():
    sizes = torch.tensor([40, 3, 90, 7, 64, 12])
    qkv = torch.randn(int(sizes.sum()), 3, 2, 4)
    grouped = dense_attention(qkv, sizes)
    one = Padding(sizes, torch.device("cpu"), max_groups=1)
    reference = one.attend(qkv, one.key_masks(), 0.0, None)
    assert len(Padding(sizes, torch.device("cpu")).shapes) > 1
    assert_close("grouped vs one-group dense attention", grouped, reference)
    # and one group equals plain SDPA per sample
    start = 0
    for n in sizes.tolist():
        q, k, v = qkv[start : start + n].permute(1, 2, 0, 3)
        want = F.scaled_dot_product_attention(q, k, v).transpose(0, 1)
        assert_close("one group vs SDPA per sample", reference[start : start + n], want)
        start += n


def test_head_rows_lay_each_head_out_in_its_groups_block():
    """The head-major layout attend runs on, against the node-major blocks of pad(): group
    g's queries, keys and values as one (3, B_g, H, L_g, D) block, its outputs as one
    (B_g, H, L_g, D), zeros at padding, groups one after another."""
    sizes = torch.tensor([40, 3, 90, 0, 7, 64, 12])
    padding = Padding(sizes, torch.device("cpu"))
    assert len(padding.shapes) > 1
    heads, width, nodes = 3, 2, int(sizes.sum())
    in_rows, out_rows = padding.head_rows(heads)
    assert padding.head_rows(heads)[0] is in_rows  # built once per head count
    qkv = torch.randn(nodes, 3, heads, width)
    buffer = torch.zeros(3 * heads * padding.num_rows, width)
    buffer.index_copy_(0, in_rows, qkv.reshape(-1, width))
    out = torch.randn(nodes, heads, width)
    out_blocks, start = [], 0
    for block, out_block, (batch, longest) in zip(
        padding.pad(qkv), padding.pad(out), padding.shapes, strict=True
    ):
        cells = 3 * heads * batch * longest
        got = buffer[start : start + cells].view(3, batch, heads, longest, width)
        assert torch.equal(got, block.permute(2, 0, 3, 1, 4))
        out_blocks.append(out_block.transpose(1, 2).reshape(-1, width))
        start += cells
    assert start == len(buffer)
    read = torch.cat(out_blocks).index_select(0, out_rows).view(nodes, heads, width)
    assert torch.equal(read, out)


@pytest.mark.parametrize("fast_dropout", [False, True])
def test_grouped_attention_gradients_equal_sdpa_per_sample(fast_dropout):
    """Values and gradients of the grouped, head-major dense attention against plain SDPA
    on each sample, on both of padded_attention's paths: SDPA, and the written-out one
    fast dropout takes (at a dropout so small that no cell drops)."""
    sizes = torch.tensor([40, 3, 90, 7, 64, 12])
    qkv = torch.randn(int(sizes.sum()), 3, 2, 4, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(int(sizes.sum()), 2, 4, dtype=torch.float64)
    dropout = 1e-9 if fast_dropout else 0.0  # rounds to no dropped cell in 16-bit draws
    got = dense_attention(qkv, sizes, dropout=dropout, fast_dropout=fast_dropout)
    (got_grad,) = torch.autograd.grad(got, qkv, upstream)
    want, start = [], 0
    for n in sizes.tolist():
        q, k, v = qkv[start : start + n].permute(1, 2, 0, 3)
        want.append(F.scaled_dot_product_attention(q, k, v).transpose(0, 1))
        start += n
    want = torch.cat(want)
    (want_grad,) = torch.autograd.grad(want, qkv, upstream)
    atol = 1e-7 if fast_dropout else 1e-10  # fast dropout scales by 1 / (1 - 1e-9)
    assert_close("grouped attention vs SDPA per sample", got, want, atol=atol)
    assert_close("its gradient", got_grad, want_grad, atol=atol)


@pytest.mark.parametrize(
    "kwargs",
    [{"mixer": "gcn"}, {"mixer": "attention"}, {"mixer": "gps", "global_mixer": "performer"}],
    ids=["gcn", "attention", "gps-performer"],
)
def test_a_block_without_a_dense_mixer_refuses_dense(kwargs):
    with pytest.raises(ValueError, match=r"GraphTransformerBlock\(engine='dense'\).*'auto'"):
        GraphTransformerBlock(BlockConfig(dim=8, num_heads=2, engine="dense", **kwargs))
    GraphTransformerBlock(BlockConfig(dim=8, num_heads=2, engine="auto", **kwargs))
    for mixer in ("full", "exphormer"):  # a global attention takes it
        GraphTransformerBlock(BlockConfig(dim=8, mixer="gps", global_mixer=mixer, engine="dense"))
