"""graphformer's SGFormer and Polynormer against PyG's (torch_geometric.nn.models, PyG ≥ 2.6),
given the same weights: equal outputs on one graph.

Needs the optional peer (``pip install torch_geometric``); skipped without it. The weight maps
below are the whole correspondence. Differences that make some inputs differ (each asserted
or named where it matters):

- SGFormer: the paper (and graphformer's default) divides Q and K by their Frobenius norms;
  PyG divides each node's head vector by its own norm. graphformer's ``norm="row"`` is PyG's.
- SGFormer and Polynormer in PyG pad a batch of graphs to the largest one and only zero the
  padded *values*: padded keys still enter the normaliser (SGFormer: and the node count
  ``N`` is the padded one), so a graph's output depends on the other graphs of its batch.
  graphformer's sums run within each sample: equal on one graph, per-sample correct on many
  (``test_pyg_sgformer_mixes_graphs_of_a_batch_ours_does_not``).
- PyG's GCN normalises with in-degrees on both ends; graphformer's with out- and in-degrees:
  equal on symmetric graphs (Cora, CiteSeer), which are used here.
- PyG's Polynormer global stage only runs with one head (its attention's input width is
  ``hidden_channels``, the local stage's output ``heads * hidden_channels``); its global
  heads split channels as (channel, head), graphformer's as (head, channel).
- PyG's Polynormer holds a ``lin_in`` layer that its forward never calls.
- Outputs: PyG returns log-softmax, graphformer logits; compared after log-softmax.
"""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import BlockConfig, Polynormer, SGFormer
from graphformer.nn.layers.polynormer import PolynormerAttention
from graphformer.nn.layers.sgformer import SGFormerAttention

import dgl
import pytest
import torch
from helpers import assert_close

pyg = pytest.importorskip("torch_geometric")
from torch_geometric.nn.attention import (  # noqa: E402
    PolynormerAttention as PyGPolynormerAttention,
)
from torch_geometric.nn.attention import SGFormerAttention as PyGSGFormerAttention  # noqa: E402
from torch_geometric.nn.models import Polynormer as PyGPolynormer  # noqa: E402
from torch_geometric.nn.models import SGFormer as PyGSGFormer  # noqa: E402


def symmetric_graph(num_nodes: int = 40, edges: int = 120, seed: int = 0) -> dgl.DGLGraph:
    torch.manual_seed(seed)
    return dgl.to_bidirected(dgl.rand_graph(num_nodes, edges))


def edge_index(graph: dgl.DGLGraph) -> torch.Tensor:
    src, dst = graph.edges()
    return torch.stack([src, dst])


def copy_linear(ours: torch.nn.Linear, theirs: torch.nn.Linear) -> None:
    ours.weight.copy_(theirs.weight)
    if ours.bias is not None:
        ours.bias.copy_(theirs.bias)


def copy_norm(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    ours.load_state_dict(theirs.state_dict())


def copy_gcn(ours, theirs) -> None:
    ours.weight.copy_(theirs.lin.weight.T)
    ours.bias.copy_(theirs.bias)


def copy_gat(ours, theirs) -> None:
    ours.project.weight.copy_(theirs.lin.weight)
    ours.attn_src.copy_(theirs.att_src)
    ours.attn_dst.copy_(theirs.att_dst)


def randomize(module: torch.nn.Module, seed: int = 1) -> None:
    """Random values in every parameter and BatchNorm statistic (no default 0/1 hides a
    mismatch)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
        for buffer_name, buffer in module.named_buffers():
            if buffer_name.endswith("running_mean"):
                buffer.copy_(torch.randn(buffer.shape, generator=gen) * 0.1)
            elif buffer_name.endswith("running_var"):
                buffer.copy_(torch.rand(buffer.shape, generator=gen) + 0.5)


# --- the attention operators -----------------------------------------------------------------


@pytest.mark.parametrize("heads", [1, 2])
def test_sgformer_attention_row_norm_equals_pyg_on_one_graph(heads):
    torch.manual_seed(0)
    theirs = PyGSGFormerAttention(16, heads, head_channels=16, qkv_bias=True)
    ours = SGFormerAttention(16, heads, bias=True, norm="row")
    with torch.no_grad():
        for mine, their in ((ours.query, theirs.q), (ours.key, theirs.k), (ours.value, theirs.v)):
            copy_linear(mine, their)
    graph = symmetric_graph(25)
    x = torch.randn(25, 16)  # float32: PyG's normaliser builds a float32 tensor of ones
    assert_close("SGFormer attention vs PyG", ours(graph, x), theirs(x.unsqueeze(0))[0], atol=1e-6)


def test_pyg_sgformer_mixes_graphs_of_a_batch_ours_does_not():
    """A 5-node graph batched with a 20-node one: PyG's output for it changes, ours not."""
    torch.manual_seed(0)
    theirs = PyGSGFormerAttention(8, 1, head_channels=8)
    ours = SGFormerAttention(8, 1, norm="row")
    with torch.no_grad():
        for mine, their in ((ours.query, theirs.q), (ours.key, theirs.k), (ours.value, theirs.v)):
            copy_linear(mine, their)
    small, large = torch.randn(5, 8), torch.randn(20, 8)
    alone = theirs(small.unsqueeze(0))[0]
    padded = torch.zeros(2, 20, 8)
    padded[0, :5], padded[1] = small, large
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[0, :5], mask[1] = True, True
    batched = theirs(padded, mask)[0, :5]
    assert (batched - alone).abs().max() > 1e-3  # PyG: depends on the batch
    graphs = dgl.batch([dgl.rand_graph(5, 8), dgl.rand_graph(20, 40)])
    ours_batched = ours(graphs, torch.cat([small, large]))[:5]
    assert_close("ours, batched vs alone", ours_batched, alone, atol=1e-6)


@pytest.mark.parametrize("qk_shared", [False, True])
def test_polynormer_attention_equals_pyg_on_one_graph(qk_shared):
    torch.manual_seed(0)
    theirs = PyGPolynormerAttention(16, 1, head_channels=16, qk_shared=qk_shared).double()
    ours = PolynormerAttention(16, 1, qk_shared=qk_shared).double()
    randomize(theirs)
    with torch.no_grad():
        pairs = [(ours.gate, theirs.h_lins), (ours.key, theirs.k), (ours.value, theirs.v)]
        pairs += [(ours.out, theirs.lin_out)] + ([] if qk_shared else [(ours.query, theirs.q)])
        for mine, their in pairs:
            copy_linear(mine, their)
        copy_norm(ours.norm, theirs.lns)
    ours.eval(), theirs.eval()
    graph = symmetric_graph(30)
    x = torch.randn(30, 16, dtype=torch.float64)
    got, want = ours(graph, x), theirs(x.unsqueeze(0))[0]
    assert_close("Polynormer attention vs PyG", got, want, atol=1e-12)


# --- the models ------------------------------------------------------------------------------


def copy_sgformer(ours: SGFormer, theirs) -> None:
    with torch.no_grad():
        trans, gnn = theirs.trans_conv, theirs.graph_conv
        copy_linear(ours.attention_input, trans.fcs[0])
        for mine, their in zip(ours.attention_norms, trans.bns, strict=True):
            copy_norm(mine, their)
        for mine, their in zip(ours.attentions, trans.attns, strict=True):
            for a, b in ((mine.query, their.q), (mine.key, their.k), (mine.value, their.v)):
                copy_linear(a, b)
        copy_linear(ours.gnn_input, gnn.fcs[0])
        for mine, their in zip(ours.gnn_norms, gnn.bns, strict=True):
            copy_norm(mine, their)
        for mine, their in zip(ours.convs, gnn.convs, strict=True):
            copy_gcn(mine, their)
        copy_linear(ours.head, theirs.fc)


@pytest.mark.parametrize("aggregate", ["add", "cat"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_sgformer_model_equals_pyg_given_the_same_weights(aggregate, mode):
    """Same outputs (eval) and, with dropout off, the same training-mode outputs
    (BatchNorm on batch statistics) and input gradients."""
    torch.manual_seed(0)
    dropout = 0.0 if mode == "train" else 0.5
    kwargs = dict(trans_num_layers=2, trans_num_heads=2, gnn_num_layers=2, aggregate=aggregate)
    theirs = PyGSGFormer(12, 16, 4, trans_dropout=dropout, gnn_dropout=dropout, **kwargs)
    randomize(theirs)  # float32: PyG's attention builds a float32 tensor of ones
    ours = SGFormer(
        4,
        12,
        BlockConfig(dim=16, num_heads=2, dropout=dropout),
        num_layers=2,
        gnn_layers=2,
        gnn_dropout=dropout,
        aggregate=aggregate,
        attention_norm="row",
    )
    copy_sgformer(ours, theirs)
    ours.train(mode == "train"), theirs.train(mode == "train")
    graph = symmetric_graph(40)
    x = torch.randn(40, 12, requires_grad=True)
    got = torch.log_softmax(ours(graph, x), -1)
    want = theirs(x, edge_index(graph), torch.zeros(40, dtype=torch.long))
    assert_close(f"SGFormer model ({mode}) vs PyG", got, want, atol=1e-5)
    weights = torch.randn_like(got)
    (grad_ours,) = torch.autograd.grad((got * weights).sum(), x)
    (grad_theirs,) = torch.autograd.grad((want * weights).sum(), x)
    assert_close("SGFormer input gradient vs PyG", grad_ours, grad_theirs, atol=1e-5)


def copy_polynormer(ours: Polynormer, theirs, conv: str) -> None:
    with torch.no_grad():
        for index, mine in enumerate(ours.local):
            copy_linear(mine.gate, theirs.h_lins[index])
            copy_linear(mine.linear, theirs.lins[index])
            copy_norm(mine.norm, theirs.lns[index])
            copy_norm(mine.batch_norm, theirs.post_bns[index])
            (copy_gat if conv == "gat" else copy_gcn)(mine.conv, theirs.local_convs[index])
        copy_norm(ours.norm, theirs.ln)
        for mine, their in zip(ours.globals, theirs.global_attn, strict=True):
            for a, b in ((mine.gate, their.h_lins), (mine.key, their.k), (mine.value, their.v)):
                copy_linear(a, b)
            copy_linear(mine.query, their.q)
            copy_linear(mine.out, their.lin_out)
            copy_norm(mine.norm, their.lns)
        copy_linear(ours.local_head, theirs.pred_local)
        copy_linear(ours.global_head, theirs.pred_global)


@pytest.mark.parametrize("stage", ["local", "global"])
@pytest.mark.parametrize("conv", ["gat", "gcn"])
def test_polynormer_model_equals_pyg_given_the_same_weights(conv, stage):
    torch.manual_seed(0)
    theirs = PyGPolynormer(
        12, 16, 4, local_layers=3, global_layers=2, local_attn=conv == "gat", beta=0.7
    ).double()
    theirs._global = stage == "global"
    randomize(theirs)
    ours = Polynormer(
        4,
        12,
        BlockConfig(dim=16, num_heads=1, dropout=0.5),
        num_layers=3,
        global_layers=2,
        beta=0.7,
        local_conv=conv,
        global_stage=stage == "global",
    ).double()
    copy_polynormer(ours, theirs, conv)
    ours.eval(), theirs.eval()
    graph = symmetric_graph(40)
    x = torch.randn(40, 12, dtype=torch.float64, requires_grad=True)
    got = torch.log_softmax(ours(graph, x), -1)
    want = theirs(x, edge_index(graph), torch.zeros(40, dtype=torch.long))
    assert_close(f"Polynormer model ({conv}, {stage}) vs PyG", got, want, atol=1e-10)
    weights = torch.randn_like(got)
    (grad_ours,) = torch.autograd.grad((got * weights).sum(), x)
    (grad_theirs,) = torch.autograd.grad((want * weights).sum(), x)
    assert_close("Polynormer input gradient vs PyG", grad_ours, grad_theirs, atol=1e-10)


def test_the_models_have_as_many_parameters_as_pygs():
    block = BlockConfig(dim=16, num_heads=1)
    sg = sum(p.numel() for p in SGFormer(12, 10, block, num_layers=2, gnn_layers=3).parameters())
    their_sg = PyGSGFormer(10, 16, 12, trans_num_layers=2, gnn_num_layers=3)
    assert sg == sum(p.numel() for p in their_sg.parameters())
    poly = Polynormer(12, 10, block, num_layers=3, global_layers=2)
    their_poly = PyGPolynormer(10, 16, 12, local_layers=3, global_layers=2, local_attn=True)
    unused = sum(p.numel() for p in their_poly.lin_in.parameters())  # PyG's, never called
    assert (
        sum(p.numel() for p in poly.parameters())
        == sum(p.numel() for p in their_poly.parameters()) - unused
    )


def test_the_comparison_script_runs_both_sides_and_writes_its_tables(tmp_path):
    """experiments/linear_attention/compare.py, 3 epochs on a 300-node generated graph."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "linear_attention" / "compare.py"
    spec = importlib.util.spec_from_file_location("linear_attention_compare", path)
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    args = ["--datasets", "csbm", "--nodes", "300", "--epochs", "3", "--local-epochs", "1"]
    out = compare.main([*args, "--seeds", "0", "--out", str(tmp_path), "--tag", "t"])
    variants = {(row["model"], row["variant"]) for row in out["rows"]}
    assert variants == {
        ("sgformer", "pyg"),
        ("sgformer", "graphformer"),
        ("sgformer", "graphformer-row"),
        ("polynormer", "pyg"),
        ("polynormer", "graphformer"),
    }
    assert all(0 <= row["test_mean"] <= 100 and row["time_ratio_median"] > 0 for row in out["rows"])
    assert "| csbm | sgformer | graphformer |" in (tmp_path / "t.md").read_text()
