"""Write tests/data/compat/fixture.pt: state dicts, one fixed input and the outputs of
graphformer's models as built by the code *before* the block-config / Mixer refactor.

Run it at commit 38f2c00 (the last commit with the old constructors, ``hidden_dim=``,
``global_attention=`` and the NodeConv / LocalAttention / FullAttention / PerformerMixer
adapters), from a checkout of that commit:

    git worktree add /tmp/old 38f2c00
    PYTHONPATH=/tmp/old python tests/data/compat/make_fixture.py tests/data/compat/fixture.pt

``tests/test_compat.py`` loads each state dict into today's classes and asserts equal
outputs: checkpoints written before the refactor keep loading, and the models compute
what they computed. The models are small (width 16, two layers); each entry records the
old constructor keywords it was built with.
"""

from __future__ import annotations

import sys

import graphformer  # noqa: F401  (installs the DGL import hook before dgl)
from graphformer.nn import GNN, GraphTransformer, Seq2SeqTransformer

import dgl
import torch

SIZES = (5, 7)
CATEGORIES, EDGE_CATEGORIES, IN_DIM, EDGE_IN_DIM, LAP_K = 5, 4, 6, 3, 3
ENGINES = ("auto", "dgl", "torch")


def make_graph(seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch of two random undirected graphs and every input the models read."""
    g = torch.Generator().manual_seed(seed)
    total = sum(SIZES)
    sample = torch.repeat_interleave(torch.arange(len(SIZES)), torch.tensor(SIZES))
    upper = torch.rand(total, total, generator=g) < 0.4
    upper = torch.triu(upper, 1) & (sample[:, None] == sample[None, :])
    adjacency = upper | upper.T
    src, dst = adjacency.nonzero(as_tuple=True)
    graph = dgl.graph((src, dst), num_nodes=total)
    graph.set_batch_num_nodes(torch.tensor(SIZES))
    graph.set_batch_num_edges(torch.bincount(sample[src], minlength=len(SIZES)))
    spd = torch.full((total, max(SIZES)), -1, dtype=torch.int16)
    start = 0
    for part, size in zip(dgl.unbatch(graph), SIZES, strict=True):
        spd[start : start + size, :size] = dgl.shortest_dist(part).to(torch.int16)
        start += size
    num_edges = graph.num_edges()
    return {
        "src": src,
        "dst": dst,
        "sizes": torch.tensor(SIZES),
        "codes": torch.randint(0, CATEGORIES, (total,), generator=g),
        "feat": torch.randn(total, IN_DIM, generator=g),
        "edge_codes": torch.randint(0, EDGE_CATEGORIES, (num_edges,), generator=g),
        "edge_feat": torch.randn(num_edges, EDGE_IN_DIM, generator=g),
        "lap_pe": torch.randn(total, LAP_K, generator=g),
        "spd": spd,
    }


def build_graph(inputs: dict[str, torch.Tensor]) -> dgl.DGLGraph:
    """The batched graph of :func:`make_graph`'s tensors, with ``lap_pe`` and ``spd``."""
    graph = dgl.graph((inputs["src"], inputs["dst"]), num_nodes=int(inputs["sizes"].sum()))
    sample = torch.repeat_interleave(torch.arange(len(inputs["sizes"])), inputs["sizes"])
    graph.set_batch_num_nodes(inputs["sizes"])
    graph.set_batch_num_edges(torch.bincount(sample[inputs["src"]], minlength=len(inputs["sizes"])))
    graph.ndata["lap_pe"] = inputs["lap_pe"]
    graph.ndata["spd"] = inputs["spd"]
    return graph


#: name → old GraphTransformer keywords (besides out_dim, width 16, two layers).
SMALL = dict(out_dim=3, hidden_dim=16, num_layers=2, num_heads=4, num_categories=CATEGORIES)
TRANSFORMERS = {
    "graph_transformer": dict(mixer="attention", lap_pe_k=LAP_K),
    "graph_transformer_edges": dict(
        mixer="attention", edge_in_dim=EDGE_IN_DIM, lap_pe_k=LAP_K, level="graph"
    ),
    "gps": dict(mixer="gps", local_mixer="gcn", global_attention="full", lap_pe_k=LAP_K),
    "sage": dict(mixer="sage", prenorm=False, norm="batch"),
    "transformer": dict(mixer="full", lap_pe_k=LAP_K, activation="relu"),
    "gatedgcn": dict(mixer="gatedgcn", edge_categories=EDGE_CATEGORIES),
    "gine": dict(mixer="gine", edge_categories=EDGE_CATEGORIES, level="graph", readout="sum"),
    "exphormer": dict(
        mixer="gps",
        local_mixer="gatedgcn",
        global_attention="exphormer",
        global_kwargs={"degree": 2, "virtual_nodes": 1},
        norm="batch",
        prenorm=False,
        activation="relu",
        edge_categories=EDGE_CATEGORIES,
    ),
    "graphormer": dict(
        mixer="graphormer", centrality_max_degree=8, global_kwargs={"max_distance": 5}
    ),
    "performer": dict(mixer="gps", local_mixer="gine", global_attention="performer"),
}
GNNS = {
    "gnn_gcn": dict(conv="gcn"),
    "gnn_sage": dict(conv="sage"),
    "gnn_gat": dict(conv="gat", num_heads=4, activation="elu"),
    "gnn_attention": dict(conv="attention", num_heads=4, level="graph", head_layers=2),
}
SEQ2SEQ = dict(src_vocab=7, tgt_vocab=6, hidden_dim=16, num_layers=2, num_heads=2, max_len=8)


def transformer_inputs(inputs, kwargs):
    graph = build_graph(inputs)
    edge = None
    if kwargs.get("edge_in_dim"):
        edge = inputs["edge_feat"]
    elif kwargs.get("edge_categories"):
        edge = inputs["edge_codes"]
    return graph, inputs["codes"], edge


def main(path: str) -> None:
    torch.manual_seed(0)
    inputs = make_graph()
    models = {}
    for name, extra in TRANSFORMERS.items():
        kwargs = {**SMALL, **extra}
        graph, x, edge = transformer_inputs(inputs, kwargs)
        outputs, state = {}, None
        for engine in ENGINES:
            torch.manual_seed(0)
            model = GraphTransformer(**kwargs, engine=engine).eval()
            state = model.state_dict() if state is None else state
            model.load_state_dict(state)
            with torch.no_grad():
                outputs[engine] = model(graph, x, edge)
        models[name] = {"kwargs": kwargs, "state_dict": state, "outputs": outputs}
    for name, extra in GNNS.items():
        kwargs = {"out_dim": 3, "in_dim": IN_DIM, "hidden_dim": 16, **extra}
        outputs = {}
        state = None
        for engine in ENGINES:
            torch.manual_seed(1)
            model = GNN(**kwargs, engine=engine).eval()
            state = model.state_dict() if state is None else state
            model.load_state_dict(state)
            with torch.no_grad():
                outputs[engine] = model(build_graph(inputs), inputs["feat"])
        models[name] = {"kwargs": kwargs, "state_dict": state, "outputs": outputs}
    g = torch.Generator().manual_seed(3)
    src_sizes, tgt_sizes = torch.tensor([3, 5]), torch.tensor([4, 2])
    src = torch.randint(0, SEQ2SEQ["src_vocab"], (8,), generator=g)
    tgt = torch.randint(0, SEQ2SEQ["tgt_vocab"], (6,), generator=g)
    outputs, state = {}, None
    for engine in ENGINES:
        torch.manual_seed(2)
        model = Seq2SeqTransformer(**SEQ2SEQ, engine=engine).eval()
        state = model.state_dict() if state is None else state
        model.load_state_dict(state)
        with torch.no_grad():
            outputs[engine] = model(src, src_sizes, tgt, tgt_sizes)
    models["seq2seq"] = {
        "kwargs": dict(SEQ2SEQ),
        "state_dict": state,
        "outputs": outputs,
        "inputs": {"src": src, "src_sizes": src_sizes, "tgt": tgt, "tgt_sizes": tgt_sizes},
    }
    torch.save({"commit": "38f2c00", "inputs": inputs, "models": models}, path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/compat/fixture.pt")
