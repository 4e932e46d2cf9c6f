"""Bad input at the public boundaries: configs, data and the CLI each fail with a message
that names the value, what was expected and what to do. (Layer inputs: test_validation.py;
killed and failing runs: test_faults.py; non-finite losses: test_tasks.py.)"""

from __future__ import annotations

import functools
import subprocess
import sys

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli.train import train
from graphformer.data import GraphDataModule
from graphformer.data.validation import DataError, DataWarning, check_dataset

import dgl
import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException
from training import compose_config

QUICK = [
    "data.train_graphs=16",
    "data.val_graphs=8",
    "data.test_graphs=8",
    "data.batch_size=4",
    "model.hidden_dim=16",
    "logger=none",
    "callbacks=none",
    "debug=fast_dev_run",
]


def run(tmp_path, data_dir, *overrides):
    return train(compose_config([*QUICK, *overrides], tmp_path, data_dir))


# --- configs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "valid"),
    [
        ("model=nope", "graph_transformer"),
        ("data=nope", "cluster"),
        ("logger=nope", "wandb"),
        ("trainer=nope", "ddp_sim"),
    ],
)
def test_unknown_group_option_lists_the_valid_ones(override, valid, tmp_path, data_dir):
    with pytest.raises(MissingConfigException, match=rf"(?s)Could not find.*{valid}"):
        compose_config([override], tmp_path, data_dir)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.hidden_dim=0"], r"hidden_dim must be a positive int; got 0"),
        (["model.num_layers=-1"], r"num_layers must be a positive int; got -1"),
        (["model.hidden_dim=abc"], r"hidden_dim must be a positive int; got 'abc'"),
        (["model.num_heads=5"], r"num_heads=5 must divide embed_dim=16; heads that do: \[1, 2"),
        (["model.mixer=conv"], r"unknown mixer 'conv'; choose one of \['attention'"),
        (["~model.out_dim"], r"missing 1 required positional argument: 'out_dim'"),
        (["data.val_graphs=0"], r"val_graphs must be a positive int or None; got 0"),
        (["data.batch_size=64"], r"batch_size=64 is larger than the train split .* ≤ 16"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else "",
)
def test_bad_config_values_are_named(overrides, message, tmp_path, data_dir):
    with pytest.raises(Exception, match=message):
        run(tmp_path, data_dir, *overrides)


def test_misspelt_key_suggests_how_to_add_one(tmp_path, data_dir):
    with pytest.raises(ConfigCompositionException, match=r"\+model.hiden_dim=8"):
        compose_config(["model.hiden_dim=8"], tmp_path, data_dir)


def test_positional_encoding_wider_than_small_graphs_is_padded(tmp_path, data_dir):
    """CLUSTER graphs have ≥ 30 nodes; k = 40 eigenvectors pads the smaller ones."""
    metric = run(tmp_path, data_dir, "data.lap_pe_k=40")
    assert metric is None or metric == metric  # ran, and no NaN


def test_malformed_override_is_refused_by_the_cli(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "graphformer.train", "model.hidden_dim=="],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "Error parsing override 'model.hidden_dim=='" in result.stderr


# --- data -----------------------------------------------------------------------------------


class Graphs(list):
    """A dataset: a list of labelled graphs with the attributes GraphDataModule reads."""

    num_classes, num_categories, level = 3, 4, "node"


def graph(num_nodes=4, edges=((0, 1), (1, 2), (2, 3)), feat=None, label=None):
    src, dst = zip(*edges, strict=True) if edges else ((), ())
    g = dgl.graph((torch.tensor(src, dtype=torch.long), torch.tensor(dst, dtype=torch.long)))
    g = dgl.add_nodes(g, num_nodes - g.num_nodes()) if num_nodes > g.num_nodes() else g
    g.ndata["feat"] = torch.zeros(num_nodes, dtype=torch.long) if feat is None else feat
    g.ndata["label"] = torch.zeros(num_nodes, dtype=torch.long) if label is None else label
    return g


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (graph(0, edges=()), r"graph 1 of the train split of toy has no nodes"),
        (
            graph(feat=torch.tensor([[0.0], [float("nan")], [1.0], [float("inf")]])),
            r"graph 1 .* NaN or inf in ndata\['feat'\] at 2 node\(s\), first \[1, 3\]",
        ),
        (
            graph(label=torch.tensor([0, 1, 3, 2])),
            r"graph 1 .* class labels in \[0, 3\], outside \[0, 3\) for num_classes=3",
        ),
    ],
    ids=["no nodes", "NaN features", "labels out of range"],
)
def test_bad_samples_are_errors_naming_the_graph(bad, message):
    with pytest.raises(DataError, match=message):
        check_dataset(Graphs([graph(), bad]), "train", "toy")


def test_missing_features_and_labels_are_named():
    no_feat = graph()
    del no_feat.ndata["feat"]
    with pytest.raises(DataError, match=r"no node features ndata\['feat'\] \(it has \['label'\]\)"):
        check_dataset(Graphs([no_feat]), "val", "toy")
    no_label = graph()
    del no_label.ndata["label"]
    with pytest.raises(DataError, match=r"no labels: neither ndata\['label'\] nor a"):
        check_dataset(Graphs([no_label]), "val", "toy")


def test_graphs_without_edges_and_duplicate_edges_are_warnings():
    samples = Graphs([graph(), graph(edges=()), graph(edges=((0, 1), (0, 1), (1, 2)))])
    with pytest.warns(DataWarning) as caught:
        check_dataset(samples, "test", "toy")
    messages = [str(w.message) for w in caught]
    assert any(
        "1 graph(s) of the test split of toy have no edges (first: [1])" in m for m in messages
    )
    assert any("duplicate edges (first: [2])" in m and "dgl.to_simple" in m for m in messages)


def test_the_data_module_validates_each_split_once():
    bad = Graphs([graph(), graph(label=torch.tensor([0, 1, 2, 7]))])
    module = GraphDataModule(lambda split: bad, batch_size=1, name="toy", seed=None)
    with pytest.raises(DataError, match=r"graph 1 of the train split of toy"):
        module.setup("fit")
    trusting = GraphDataModule(lambda split: bad, batch_size=1, validate=False, seed=None)
    trusting.setup("fit")  # the user opted out


def test_graph_level_labels_are_checked_too():
    pairs = Graphs([(graph(), torch.tensor(1)), (graph(), torch.tensor(-1))])
    with pytest.raises(DataError, match=r"graph 1 .* class labels in \[-1, -1\]"):
        check_dataset(pairs, "train", "toy")


def test_valid_datasets_pass_silently(recwarn):
    check_dataset(Graphs([graph(), graph(num_nodes=2, edges=((0, 1), (1, 0)))]), "train", "ok")
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]
    partial = functools.partial(Graphs, [graph()])
    assert GraphDataModule(lambda split: partial(), batch_size=1).split_dataset("train")
