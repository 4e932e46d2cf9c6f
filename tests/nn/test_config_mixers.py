"""BlockConfig (one place for block settings), the Mixer base class and its one registry."""

from __future__ import annotations

import dataclasses
import pickle

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import (
    GNN,
    BlockConfig,
    GCNConv,
    GraphTransformer,
    GraphTransformerBlock,
    Mixer,
    MultiHeadAttention,
    TransformerEncoder,
)
from graphformer.nn.block import block_mixers, edge_readers
from graphformer.nn.mixers import REGISTRY, SCOPES, TRAITS, build, names, register
from graphformer.nn.models.gnn import GNN_BLOCK

import dgl
import pytest
import torch
from helpers import random_graph, with_needs
from hydra.utils import instantiate
from omegaconf import OmegaConf

# --- BlockConfig ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        ({"dim": 0}, r"dim must be a positive int; got 0"),
        ({"dim": 8.0}, r"dim must be a positive int; got 8.0"),
        ({"num_heads": -1}, r"num_heads must be a positive int; got -1"),
        ({"mixer": "mlp"}, r"unknown mixer 'mlp'; choose one of \["),
        ({"local_mixer": "full"}, r"unknown local_mixer 'full'; choose one of \['attention'"),
        ({"global_mixer": "gcn"}, r"unknown global_mixer 'gcn'; choose one of \['exphormer'"),
        ({"global_kwargs": [6]}, r"global_kwargs must be a mapping .*got \[6\]"),
        (
            {"mixer": "gps", "global_mixer": "exphormer", "global_kwargs": {"deg": 6}},
            r"global_kwargs \['deg'\] are not settings of 'exphormer'; it takes \['degree'",
        ),
        ({"ffn_ratio": 0}, r"ffn_ratio must be positive; got 0"),
        ({"ffn_ratio": "2"}, r"ffn_ratio must be a positive number; got '2'"),
        ({"activation": "tanh"}, r"unknown activation 'tanh'; choose one of"),
        ({"norm": "rms"}, r"unknown norm 'rms'; choose one of \['batch', 'layer', 'none'\]"),
        ({"prenorm": "no"}, r"prenorm must be True or False; got 'no'"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\); got 1.0"),
        ({"attn_dropout": -0.1}, r"attn_dropout must be in \[0, 1\); got -0.1"),
        ({"engine": "fast"}, r"unknown engine 'fast'; choose one of"),
    ],
)
def test_every_field_is_checked_with_a_clear_message(fields, pattern):
    with pytest.raises(ValueError, match=pattern):
        BlockConfig(**fields)


def test_global_kwargs_are_checked_only_against_the_global_mixer_in_use():
    BlockConfig(mixer="attention", global_kwargs={"degree": 6})  # no global mixer: unused
    BlockConfig(mixer="exphormer", global_kwargs={"degree": 6})
    with pytest.raises(ValueError, match=r"\['degree'\] are not settings of 'full'"):
        BlockConfig(mixer="full", global_kwargs={"degree": 6})


def test_replace_checks_the_new_config_and_refuses_unknown_fields():
    config = BlockConfig(dim=16)
    assert config.replace(num_heads=8) == BlockConfig(dim=16, num_heads=8)
    assert config.num_heads == 4, "frozen: replace returns a copy"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.dim = 8  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"\['hidden_dim'\] are not BlockConfig fields"):
        config.replace(hidden_dim=8)
    with pytest.raises(ValueError, match=r"unknown norm 'rms'"):
        config.replace(norm="rms")


@pytest.mark.parametrize(
    ("fields", "split"),
    [
        ({"mixer": "gcn"}, ("gcn", None)),
        ({"mixer": "full"}, (None, "full")),
        (
            {"mixer": "gps", "local_mixer": "gine", "global_mixer": "performer"},
            ("gine", "performer"),
        ),
    ],
)
def test_split_names_the_branches(fields, split):
    assert BlockConfig(**fields).split() == split


def test_hydra_builds_a_block_node_and_the_config_pickles():
    """A ``block:`` node with its own ``_target_``, global_kwargs handed as a DictConfig."""
    node = OmegaConf.create(
        {
            "_target_": "graphformer.nn.GraphTransformer",
            "out_dim": 3,
            "in_dim": 4,
            "num_layers": 1,
            "block": {
                "_target_": "graphformer.nn.BlockConfig",
                "dim": 8,
                "num_heads": 2,
                "mixer": "gps",
                "global_mixer": "exphormer",
                "global_kwargs": {"degree": 2},
            },
        }
    )
    model = instantiate(node)
    assert isinstance(model.config, BlockConfig) and type(model.config.global_kwargs) is dict
    assert model.blocks[0].global_mixer.degree == 2
    assert pickle.loads(pickle.dumps(model.config)) == model.config
    assert hash(model.config) == hash(model.config.replace())  # usable as a dict key


def test_models_take_a_block_config_and_refuse_anything_else():
    config = BlockConfig(dim=8, num_heads=2)
    assert GraphTransformer(3, config, 1, in_dim=4).blocks[0].config is config
    assert TransformerEncoder(config, 1).config.mixer == "full"
    with pytest.raises(TypeError, match=r"block must be a graphformer.nn.BlockConfig"):
        GraphTransformerBlock({"dim": 8})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"block must be a graphformer.nn.BlockConfig"):
        GraphTransformer(3, 8, in_dim=4)  # type: ignore[arg-type]


def test_a_new_block_setting_reaches_every_block_through_one_object():
    """Every block of a model holds the model's one config: a new field is read from there."""
    config = BlockConfig(dim=8, num_heads=2, dropout=0.25)
    model = GraphTransformer(3, config, 3, in_dim=4)
    assert all(block.config is config for block in model.blocks)
    assert all(block.dropout.p == 0.25 for block in model.blocks)


# --- Mixer and the registry -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registered_mixer_declares_its_traits(name):
    cls = REGISTRY[name]
    assert issubclass(cls, Mixer) and cls.scope in SCOPES
    assert all(hasattr(cls, trait) for trait in TRAITS)
    mixer = build(name, BlockConfig(dim=8, num_heads=2))
    assert isinstance(mixer, cls)
    graph = random_graph([3, 4], p=0.5, seed=0)
    if mixer.self_loops:
        graph = dgl.add_self_loop(graph)
    graph = with_needs(graph, mixer)  # e.g. graphormer's distances
    x = torch.randn(graph.num_nodes(), 8)
    out, _ = mixer.eval().mix(graph, x, None)
    assert out.shape == x.shape


def test_names_come_from_the_registry():
    assert set(names()) == set(REGISTRY)
    assert set(names("local")) | set(names("global")) == set(REGISTRY)
    assert block_mixers() == (*names(), "gps")
    assert names(resizes=True) == tuple(n for n, c in REGISTRY.items() if c.resizes)
    assert {"gcn", "sage", "gat", "attention"} <= set(names(resizes=True))
    assert set(edge_readers()) == {"attention", "gatedgcn", "gine"}
    with pytest.raises(ValueError, match=r"scope must be one of \('local', 'global'\)"):
        names("everywhere")


def test_register_refuses_non_mixers_bad_scopes_and_taken_names():
    with pytest.raises(TypeError, match=r"register\('x'\) takes a Mixer subclass"):
        register("x")(torch.nn.Linear)

    class Nowhere(Mixer):
        scope = "somewhere"

    with pytest.raises(ValueError, match=r"Nowhere.scope must be one of"):
        register("nowhere")(Nowhere)

    class Other(Mixer):
        pass

    with pytest.raises(ValueError, match=r"mixer name 'gcn' is taken by GCNConv"):
        register("gcn")(Other)
    assert "nowhere" not in REGISTRY and REGISTRY["gcn"] is GCNConv


def test_with_traits_sets_instance_traits_only():
    conv = GCNConv(4, 4).with_traits(self_loops=False)
    assert conv.self_loops is False and GCNConv.self_loops is True
    with pytest.raises(ValueError, match=r"\['scope'\] are not instance traits"):
        conv.with_traits(scope="global")


def test_default_mix_calls_forward_and_passes_edge_state_through():
    conv = GCNConv(4, 4, add_self_loops=False)
    graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    x, edge_state = torch.randn(3, 4), torch.randn(3, 2)
    out, edges = conv.mix(graph, x, edge_state)
    assert torch.equal(out, conv(graph, x)) and edges is edge_state


def test_a_gnn_takes_only_mixers_that_change_width():
    with pytest.raises(ValueError, match=r"unknown mixer 'gatedgcn'; choose one of \["):
        GNN(3, 4, GNN_BLOCK.replace(mixer="gatedgcn"))
    with pytest.raises(ValueError, match=r"mixer 'gine' keeps its width .*choose one of"):
        build("gine", BlockConfig(dim=8), in_dim=4, out_dim=8)


def test_injected_mixers_must_be_mixers():
    with pytest.raises(TypeError, match=r"local must be a graphformer.nn.Mixer .*got Linear"):
        GraphTransformerBlock(BlockConfig(dim=8), local=torch.nn.Linear(8, 8))
    block = GraphTransformerBlock(BlockConfig(dim=8, num_heads=2), local=MultiHeadAttention(8, 2))
    assert block.global_mixer is None and block.local.scope == "local"


def test_gat_is_a_block_mixer():
    block = GraphTransformerBlock(BlockConfig(dim=8, mixer="gat", num_heads=2))
    graph = random_graph([3, 4], p=0.5, seed=1)
    out = block(graph, torch.randn(graph.num_nodes(), 8))
    assert out.shape == (7, 8) and block.local.self_loops


# --- the mixer protocol of injected modules (issue 22, items 3, 4, 12) -------------------


class _BareTensor(Mixer):
    """Returns a bare tensor, not (x, edge_state)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(16, 16)

    def mix(self, graph, x, edge_state=None):
        return self.lin(x)


class _OneRow(Mixer):
    """A global mixer returning one row for the whole graph."""

    scope = "global"

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(16, 16)

    def mix(self, graph, x, edge_state=None):
        return self.lin(x).mean(0, keepdim=True), None


class _DuckMixer(torch.nn.Module):
    """Not a Mixer, but with a compatible ``mix``: accepted, with the default traits."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(16, 16)

    def mix(self, graph, x, edge_state=None):
        return self.lin(x), edge_state


class _WrongSignature(Mixer):
    def mix(self, x):
        return x, None


PROTOCOL = r"mix\(graph, x, edge_state\) -> \(x, edge_state\)"


@pytest.mark.parametrize(
    ("kwargs", "num_nodes", "message"),
    [
        ({"local": _BareTensor()}, 2, r"local mixer _BareTensor returned a Tensor"),
        ({"global_mixer": _OneRow()}, 5, r"global mixer _OneRow returned x of shape \(1, 16\)"),
    ],
)
def test_injected_mixer_outputs_are_checked_against_the_protocol(kwargs, num_nodes, message):
    """A bare tensor was unpacked row-wise on a 2-node graph (row 0 the output, row 1 the
    edge state) and one row was broadcast to every node: both are refused at the forward,
    the message stating the protocol."""
    graph = dgl.graph((torch.arange(num_nodes), torch.arange(num_nodes).roll(1)))
    block = GraphTransformerBlock(BlockConfig(dim=16), **kwargs)
    with pytest.raises(ValueError, match=f"{message}.*{PROTOCOL}"):
        block(graph, torch.randn(num_nodes, 16))


def test_injected_modules_need_a_compatible_mix():
    with pytest.raises(TypeError, match=rf"local must be a graphformer.nn.Mixer .*{PROTOCOL}"):
        GraphTransformerBlock(BlockConfig(dim=16), local=torch.nn.Linear(16, 16))
    with pytest.raises(TypeError, match=r"_WrongSignature\.mix\(x\) cannot be called as mix"):
        GraphTransformerBlock(BlockConfig(dim=16), local=_WrongSignature())
    graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    block = GraphTransformerBlock(BlockConfig(dim=16), local=_DuckMixer())
    assert block(graph, torch.randn(3, 16)).shape == (3, 16)


@pytest.mark.parametrize("mixer", ["gcn", "attention"])
def test_a_block_without_a_global_mixer_refuses_global_kwargs(mixer):
    """Issue 22, item 2: the settings were accepted and ignored (the config alone may carry
    them, e.g. for ``build('exphormer', config)``; a block that would ignore them refuses)."""
    config = BlockConfig(dim=16, mixer=mixer, global_kwargs={"degree": 6})
    with pytest.raises(ValueError, match=rf"mixer='{mixer}' has none, so they would be ignored"):
        GraphTransformerBlock(config)
    with pytest.raises(ValueError, match=r"would be ignored"):
        GraphTransformer(3, config, 1, in_dim=4)
