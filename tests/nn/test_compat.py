"""State dicts written before the BlockConfig / Mixer refactor load into today's classes, and
the models compute what they computed.

``tests/fixtures/compat/fixture.pt`` was written at commit 38f2c00 by
``tests/fixtures/compat/make_fixture.py`` (old constructors, adapter modules ``NodeConv``,
``LocalAttention``, ``FullAttention``, ``PerformerMixer``, attribute ``block.full``): state
dicts, one fixed input and the outputs of each model on the engines auto, dgl and torch.
Here each model is built with today's API (``block=BlockConfig(...)``), the old state
dict is loaded strictly, and the outputs must agree to 1e-6.
"""

from __future__ import annotations

from pathlib import Path

import graphformer  # noqa: F401  (installs the DGL import hook before dgl)
from graphformer.nn import GNN, BlockConfig, GraphTransformer, Seq2SeqTransformer
from graphformer.nn.config import upgrade_model_config

import dgl
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

FIXTURE = Path(__file__).parents[1] / "fixtures" / "compat" / "fixture.pt"
ENGINES = ("auto", "dgl", "torch")
CATEGORIES, EDGE_CATEGORIES, IN_DIM, EDGE_IN_DIM, LAP_K = 5, 4, 6, 3, 3

#: name → (BlockConfig fields, GraphTransformer keywords) for the models of the fixture,
#: each the new spelling of the old keywords recorded with it.
SMALL = dict(dim=16, num_heads=4)
TRANSFORMERS = {
    "graph_transformer": (dict(mixer="attention"), dict(lap_pe_k=LAP_K)),
    "graph_transformer_edges": (
        dict(mixer="attention"),
        dict(edge_in_dim=EDGE_IN_DIM, lap_pe_k=LAP_K, level="graph"),
    ),
    "gps": (dict(mixer="gps", local_mixer="gcn", global_mixer="full"), dict(lap_pe_k=LAP_K)),
    "sage": (dict(mixer="sage", prenorm=False, norm="batch"), {}),
    "transformer": (dict(mixer="full", activation="relu"), dict(lap_pe_k=LAP_K)),
    "gatedgcn": (dict(mixer="gatedgcn"), dict(edge_categories=EDGE_CATEGORIES)),
    "gine": (
        dict(mixer="gine"),
        dict(edge_categories=EDGE_CATEGORIES, level="graph", readout="sum"),
    ),
    "exphormer": (
        dict(
            mixer="gps",
            local_mixer="gatedgcn",
            global_mixer="exphormer",
            global_kwargs={"degree": 2, "virtual_nodes": 1},
            norm="batch",
            prenorm=False,
            activation="relu",
        ),
        dict(edge_categories=EDGE_CATEGORIES),
    ),
    "graphormer": (
        dict(mixer="graphormer", global_kwargs={"max_distance": 5}),
        dict(centrality_max_degree=8),
    ),
    "performer": (dict(mixer="gps", local_mixer="gine", global_mixer="performer"), {}),
}
GNNS = {
    "gnn_gcn": (dict(mixer="gcn"), {}),
    "gnn_sage": (dict(mixer="sage"), {}),
    "gnn_gat": (dict(mixer="gat", num_heads=4, activation="elu"), {}),
    "gnn_attention": (dict(mixer="attention", num_heads=4), dict(level="graph", head_layers=2)),
}
#: GNN's old defaults (dropout 0.5 on layers and attention weights, ReLU, 8 heads).
GNN_DEFAULTS = dict(dim=16, num_heads=8, dropout=0.5, attn_dropout=0.5, activation="relu")


@pytest.fixture(scope="module")
def fixture() -> dict:
    return torch.load(FIXTURE, weights_only=False)


def build_graph(inputs: dict[str, torch.Tensor]) -> dgl.DGLGraph:
    sizes = inputs["sizes"]
    graph = dgl.graph((inputs["src"], inputs["dst"]), num_nodes=int(sizes.sum()))
    sample = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    graph.set_batch_num_nodes(sizes)
    graph.set_batch_num_edges(torch.bincount(sample[inputs["src"]], minlength=len(sizes)))
    graph.ndata["lap_pe"] = inputs["lap_pe"]
    graph.ndata["spd"] = inputs["spd"]
    return graph


def check(name: str, model: torch.nn.Module, entry: dict, engine: str, run) -> None:
    model.load_state_dict(entry["state_dict"])  # strict: every old key has a new home
    model.eval()
    with torch.no_grad():
        out = run(model)
    torch.testing.assert_close(out, entry["outputs"][engine], atol=1e-6, rtol=0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", TRANSFORMERS)
def test_graph_transformer_state_dicts_load_and_compute_the_same(fixture, name, engine):
    entry, inputs = fixture["models"][name], fixture["inputs"]
    fields, kwargs = TRANSFORMERS[name]
    block = BlockConfig(**SMALL, **fields, engine=engine)
    model = GraphTransformer(3, block, num_layers=2, num_categories=CATEGORIES, **kwargs)
    edge = None
    if kwargs.get("edge_in_dim"):
        edge = inputs["edge_feat"]
    elif kwargs.get("edge_categories"):
        edge = inputs["edge_codes"]
    graph = build_graph(inputs)
    check(name, model, entry, engine, lambda m: m(graph, inputs["codes"], edge))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", GNNS)
def test_gnn_state_dicts_load_and_compute_the_same(fixture, name, engine):
    entry, inputs = fixture["models"][name], fixture["inputs"]
    fields, kwargs = GNNS[name]
    block = BlockConfig(**{**GNN_DEFAULTS, **fields}, engine=engine)
    model = GNN(3, IN_DIM, block, **kwargs)
    graph = build_graph(inputs)
    check(name, model, entry, engine, lambda m: m(graph, inputs["feat"]))


@pytest.mark.parametrize("engine", ENGINES)
def test_seq2seq_state_dict_loads_and_computes_the_same(fixture, engine):
    entry = fixture["models"]["seq2seq"]
    block = BlockConfig(dim=16, num_heads=2, activation="relu", engine=engine)
    model = Seq2SeqTransformer(7, 6, block, num_layers=2, max_len=8)
    x = entry["inputs"]
    check(
        "seq2seq",
        model,
        entry,
        engine,
        lambda m: m(x["src"], x["src_sizes"], x["tgt"], x["tgt_sizes"]),
    )


def test_fixture_covers_every_model(fixture):
    assert set(fixture["models"]) == {*TRANSFORMERS, *GNNS, "seq2seq"}
    assert fixture["commit"] == "38f2c00"


@pytest.mark.parametrize("name", [*TRANSFORMERS, *GNNS, "seq2seq"])
def test_old_model_configs_are_upgraded_and_build_the_same_model(fixture, name):
    """A checkpoint's stored config from before BlockConfig (flat ``hidden_dim``, ``mixer``,
    ``conv``, ``global_attention`` ...) builds, through ``upgrade_model_config``, the model
    whose state dict it holds: same outputs (``graphformer.cli.build.stored_config``)."""
    entry, inputs = fixture["models"][name], fixture["inputs"]
    kind = "GNN" if name in GNNS else "Seq2SeqTransformer" if name == "seq2seq" else None
    target = f"graphformer.nn.{kind or 'GraphTransformer'}"
    config = upgrade_model_config({"_target_": target, **entry["kwargs"]})
    assert "block" in config and "hidden_dim" not in config
    assert upgrade_model_config(config) == config, "today's layout is left as it is"
    model = instantiate(OmegaConf.create(config))
    graph = build_graph(inputs)
    if name in GNNS:
        run = lambda m: m(graph, inputs["feat"])  # noqa: E731
    elif name == "seq2seq":
        x = entry["inputs"]
        run = lambda m: m(x["src"], x["src_sizes"], x["tgt"], x["tgt_sizes"])  # noqa: E731
    else:
        kwargs = entry["kwargs"]
        edge = inputs["edge_feat"] if kwargs.get("edge_in_dim") else None
        edge = inputs["edge_codes"] if kwargs.get("edge_categories") else edge
        run = lambda m: m(graph, inputs["codes"], edge)  # noqa: E731
    check(name, model, entry, "auto", run)


def test_stored_config_of_an_old_checkpoint_has_todays_layout():
    from graphformer.cli.resume import stored_config
    from graphformer.tasks.base import CONFIG_KEY

    old = {"_target_": "graphformer.nn.GraphTransformer", "out_dim": 3, "hidden_dim": 32}
    saved = {CONFIG_KEY: {"model": {**old, "mixer": "gps", "global_attention": "performer"}}}
    model = stored_config(saved, "old.ckpt").model
    assert (model.block.dim, model.block.mixer, model.block.global_mixer) == (
        32,
        "gps",
        "performer",
    )
    assert "hidden_dim" not in model and model.out_dim == 3
