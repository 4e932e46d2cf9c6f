"""Bad input at the public boundaries: configs, data, checkpoints and the CLI each fail with
a message that names the value, what was expected and what to do. (Layer inputs: test_validation.py;
killed and failing runs: test_faults.py; non-finite losses: test_tasks.py.)"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli.eval import evaluate
from graphformer.cli.train import train
from graphformer.data import (
    CacheWarning,
    GraphDataModule,
    SBMDataset,
    lap_pe_field,
)
from graphformer.data import cache as cache_module
from graphformer.data import field_cache as field_cache_module
from graphformer.data.cache import CacheWriteError, atomic_write
from graphformer.data.datasets import sbm
from graphformer.data.features import encodings as encodings_module
from graphformer.data.field_cache import compute_field, field_path, load_or_compute_field
from graphformer.data.validation import DataError, DataWarning, check_dataset
from graphformer.nn import BlockConfig, GraphTransformer, LapPEEncoder
from graphformer.tasks import GraphRegression, NodeClassification

import dgl
import pytest
import torch
from conftest import SMALL_RUN
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException
from training import compose_config

QUICK = [
    "data.train_graphs=16",
    "data.val_graphs=8",
    "data.test_graphs=8",
    "data.batch_size=4",
    "model.block.dim=16",
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
        (["model.block.dim=0"], r"dim must be a positive int; got 0"),
        (["model.num_layers=-1"], r"num_layers must be a positive int; got -1"),
        (
            ["model.block.num_heads=5"],
            r"num_heads=5 must divide embed_dim=16; heads that do: \[1, 2",
        ),
        (["model.block.mixer=conv"], r"unknown mixer 'conv'; choose one of \['attention'"),
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


def test_the_model_asks_the_data_for_the_encodings_it_reads(tmp_path, data_dir):
    """model.rwse_k=3 with data.rwse_k=0: the model's encoder lists the field ``rwse_k3`` in
    its needs, so the data computes and caches it (before: a mismatch error)."""
    metric = run(tmp_path, data_dir, "data.rwse_k=0", "model.rwse_k=3")
    assert metric is None or metric == metric
    assert list(Path(data_dir).rglob("*.rwse_k3.bin"))


def test_malformed_override_is_refused_by_the_cli(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "graphformer.train", "model.block.dim=="],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "Error parsing override 'model.block.dim=='" in result.stderr


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


# --- data caches: seeds, killed writers, unwritable folders ---------------------------------


def cluster_module(root, **kwargs) -> GraphDataModule:
    factory = functools.partial(SBMDataset, name="CLUSTER", root=root)
    sizes = dict(batch_size=2, train_graphs=6, val_graphs=2, test_graphs=2)
    return GraphDataModule(factory, **{**sizes, **kwargs})


def train_pe(module: GraphDataModule) -> torch.Tensor:
    split = module.split_dataset("train")
    return torch.cat([split[i].ndata["lap_pe"] for i in range(len(split))])


def test_encodings_are_a_function_of_the_dataset_not_of_the_run_seed(tmp_path, monkeypatch):
    """A seed sweep sharing one data folder gets the encodings a fresh folder gives each
    seed, computed once; the random sign flip is the model's, seeded by the run."""
    shared = tmp_path / "shared"
    first = train_pe(cluster_module(shared, lap_pe_k=4, seed=7))
    fresh = train_pe(cluster_module(tmp_path / "fresh", lap_pe_k=4, seed=3))

    def recompute(*args, **kwargs):
        raise AssertionError("the sweep's second job recomputed the shared encodings")

    monkeypatch.setattr(field_cache_module, "compute_field", recompute)
    second = train_pe(cluster_module(shared, lap_pe_k=4, seed=3))
    assert torch.equal(second, fresh) and torch.equal(first, fresh)

    encoder = LapPEEncoder(4, 4).train()
    graph = cluster_module(shared, lap_pe_k=4).split_dataset("train")[0]
    flips = []
    for seed in (3, 3, 7):
        torch.manual_seed(seed)
        flips.append(encoder(graph, graph.ndata["lap_pe"]))
    assert torch.equal(flips[0], flips[1]) and not torch.equal(flips[0], flips[2])


def test_encoding_cache_of_other_graphs_or_settings_is_rebuilt(tmp_path, monkeypatch):
    """Same file name and node counts, other edges (or another DGL): not reused."""
    module = cluster_module(tmp_path, lap_pe_k=4)
    module.prepare_data()
    dataset = module.split_dataset("train").dataset
    field = lap_pe_field(4)
    path = field_path(dataset.cache_path, field)
    rewired = [dgl.reverse(g, copy_ndata=True) for g in dataset.graphs]
    rewired[0] = dgl.remove_edges(rewired[0], torch.tensor([0]))
    with pytest.warns(CacheWarning, match=r"computed for other graphs"):
        stored = load_or_compute_field(field, rewired, path)
    assert torch.equal(stored[field.name], compute_field(field, rewired)[field.name])
    other_dgl = encodings_module.SETTINGS.replace(repr(dgl.__version__), "'9.9.9'")
    assert other_dgl != encodings_module.SETTINGS
    with pytest.warns(CacheWarning, match=r"computed with other settings"):
        load_or_compute_field(dataclasses.replace(field, settings=other_dgl), rewired, path)


KILLED_WRITER = """
import os, signal, sys
import graphformer
from graphformer.data.cache import atomic_write

def write(tmp):
    with open(tmp, "wb") as file:
        file.write(b"x" * 4096)
    os.kill(os.getpid(), signal.SIGKILL)

atomic_write(sys.argv[1], write)
"""


def test_temp_files_of_killed_cache_writers_are_removed_but_live_ones_kept(tmp_path):
    target = tmp_path / "CLUSTER_train_n6_seed0.bin"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    (left,) = tmp_path.glob(".*.tmp")  # what SIGKILL leaves
    legacy = tmp_path / f".{target.name}.{killed_pid()}.tmp"  # named as before the host
    legacy.write_bytes(b"old")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as writer:
        live = tmp_path / f".{target.name}.{socket.gethostname()}.{writer.pid}.tmp"
        foreign = tmp_path / f".{target.name}.other-host.{writer.pid}.tmp"
        old_foreign = tmp_path / f".{target.name}.other-host.1.tmp"
        for path in (live, foreign, old_foreign):
            path.write_bytes(b"busy")
        two_days_ago = time.time() - 2 * 86400
        os.utime(old_foreign, (two_days_ago, two_days_ago))
        try:
            atomic_write(target, lambda tmp: Path(tmp).write_bytes(b"whole"))
        finally:
            writer.kill()
    assert not left.exists() and not legacy.exists() and not old_foreign.exists()
    assert live.exists() and foreign.exists()  # a concurrent writer's file is never removed
    live.unlink()  # its writer is dead now: the next reader of the cache removes it
    left.write_bytes(b"stale")
    with pytest.warns(CacheWarning):  # the target holds b"whole", not graphs
        SBMDataset("CLUSTER", num_graphs=6, root=tmp_path)
    assert not left.exists()


def killed_pid() -> int:
    """The PID of a process that has exited."""
    with subprocess.Popen([sys.executable, "-c", "pass"]) as process:
        process.wait()
    return process.pid


def no_generation(*args, **kwargs):
    raise AssertionError("generated before finding the folder unwritable")


def test_data_folder_that_is_a_file_is_refused_before_generating(tmp_path, monkeypatch):
    monkeypatch.setattr(sbm, "generate", no_generation)
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    with pytest.raises(
        CacheWriteError, match=rf"{blocker} is a file, not a folder.*paths.data_dir"
    ):
        SBMDataset("CLUSTER", num_graphs=2, root=blocker / "sbm")


def test_read_only_data_folder_is_refused_before_generating(tmp_path, monkeypatch):
    """Simulated: the tests run as root, which may write anywhere."""
    monkeypatch.setattr(sbm, "generate", no_generation)
    real = cache_module.tempfile.TemporaryFile

    def read_only(*args, dir=None, **kwargs):
        if Path(dir) == tmp_path:
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(cache_module.tempfile, "TemporaryFile", read_only)
    with pytest.raises(CacheWriteError, match=rf"{tmp_path} is not writable \(Permission denied\)"):
        SBMDataset("CLUSTER", num_graphs=2, root=tmp_path)
    module = cluster_module(tmp_path, validate=False)
    with pytest.raises(CacheWriteError, match=r"not writable"):
        module.prepare_data()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_names_the_cache_file_and_what_to_do(tmp_path, monkeypatch):
    """DGL's own writer on a full disk: its temporary file is a link to /dev/full."""
    target = tmp_path / "CLUSTER_train_n2_seed0.bin"
    monkeypatch.setattr(cache_module, "_temp_path", lambda path: tmp_path / "full.tmp")
    (tmp_path / "full.tmp").symlink_to("/dev/full")
    with pytest.raises(
        CacheWriteError,
        match=rf"could not write the cache file {target} .*"
        r"FileStream.Write incomplete.*MiB are free.*paths.data_dir",
    ):
        SBMDataset("CLUSTER", num_graphs=2, root=tmp_path)
    assert not target.exists() and not (tmp_path / "full.tmp").exists()


# --- labels and targets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["task=node_regression"],
            r"regression targets must be floating point; got torch.int64 labels of shape "
            r"\(\d+,\) in data CLUSTER, which look like class "
            r"labels: choose task=node_classification",
        ),
        (
            ["model=gps", "data=skeleton"],
            r"class labels must be integers; got torch.float32 labels of shape \(\d+, 3\) "
            r"in data skeleton\..*"
            r"choose task=pose_lifting",
        ),
        (
            ["data.lap_pe_k=4", "model.lap_pe_k=8"],
            r"fields 'lap_pe_k4' and 'lap_pe_k8' are both stored as ndata\['lap_pe'\]; .* "
            r"\(data.lap_pe_k, data.rwse_k\) must equal the model's \(model.lap_pe_k",
        ),
    ],
    ids=["node_regression on cluster", "classification on skeleton", "lap_pe_k mismatch"],
)
def test_task_and_data_that_do_not_fit_name_the_config_choice(
    overrides, message, tmp_path, data_dir
):
    with pytest.raises(ValueError, match=message):
        run(tmp_path, data_dir, *overrides)


def task_of(kind, out_dim=3):
    model = GraphTransformer(out_dim, BlockConfig(dim=8, num_heads=2), num_layers=1, in_dim=2)
    optimizer = functools.partial(torch.optim.SGD, lr=0.1)
    if kind == "classification":
        return NodeClassification(model, optimizer, num_classes=out_dim)
    return GraphRegression(model, optimizer)


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [
        (
            "classification",
            torch.tensor([0.0, 1.0, 2.0, 1.0]),
            r"class labels must be integers; "
            r"got torch.float32 labels of shape \(4,\).* convert them with labels.long\(\)",
        ),
        (
            "classification",
            torch.tensor([[0], [1], [2], [1]]),
            r"class labels must have shape "
            r"\(4,\), one class per node; got \(4, 1\) \(squeeze them: labels.squeeze\(1\)\)",
        ),
        (
            "regression",
            torch.randn(4, 5),
            r"regression targets must have shape \(4, 3\): "
            r"out_dim=3 per graph, as the model outputs; got \(4, 5\); set model.out_dim=5",
        ),
    ],
    ids=["float class labels", "(n, 1) labels", "targets wider than out_dim"],
)
def test_labels_that_do_not_fit_the_task_are_named(kind, target, message):
    with pytest.raises(ValueError, match=message):
        task_of(kind).loss(torch.randn(4, 3), target)


def test_python_int_labels_are_validated():
    pairs = Graphs([(graph(), 1), (graph(), 2)])
    check_dataset(pairs, "train", "toy")
    with pytest.raises(DataError, match=r"graph 1 .* class labels in \[5, 5\], outside \[0, 3\)"):
        check_dataset(Graphs([(graph(), 1), (graph(), 5)]), "train", "toy")


def test_features_of_different_widths_name_the_graph():
    wide = graph(feat=torch.zeros(4, 2))
    with pytest.raises(
        DataError,
        match=r"graph 2 .* ndata\['feat'\] of per-row shape \(2,\) and "
        r"dtype torch.float32, but graph 0 has \(3,\) and torch.float32",
    ):
        check_dataset(Graphs([graph(feat=torch.zeros(4, 3))] * 2 + [wide]), "train", "toy")


# --- config types, checked before anything is built -----------------------------------------


@pytest.fixture
def no_data(monkeypatch):
    """Make building the data fail the test: checks must come first."""

    def built(*args, **kwargs):
        raise AssertionError("the data was built before the settings were checked")

    monkeypatch.setattr(GraphDataModule, "prepare_data", built)
    monkeypatch.setattr(GraphDataModule, "setup", built)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.block.prenorm=no",
            r"model.block.prenorm='no': expected true or false \(an argument of ",
        ),
        ("task.class_weighting=yes", r"task.class_weighting='yes': expected true or false"),
        ("trainer.max_epochs=true", r"trainer.max_epochs=true: expected an int or null"),
        ("train=no", r"train='no': expected true or false"),
        ("model.block.dim=abc", r"model.block.dim='abc': expected an int"),
        ("task.optimizer.lr=fast", r"task.optimizer.lr='fast': expected a number or Tensor"),
        ("task.optimizer.lr=null", r"task.optimizer.lr=null: expected a number or Tensor"),
        ("task.optimizer.lr=-0.1", r"Invalid learning rate: -0.1.*'lr': -0.1.*task.optimizer.lr"),
        (
            "model.block.attn_dropout=1.5",
            r"model.block.attn_dropout=1.5: expected a probability in \[0, 1\]",
        ),
    ],
)
def test_wrong_types_and_ranges_are_named_before_the_data_is_built(
    override, message, tmp_path, data_dir, no_data
):
    """'no' is truthy (pre-norm was built), true is the int 1 (one epoch was trained), and a
    bad lr failed inside configure_optimizers after the data was built."""
    with pytest.raises(ValueError, match=message):
        run(tmp_path, data_dir, override)


# --- checkpoints: damaged ones are refused, writes that fail name the file ------------------


def _overwrite_a_tensor(path: Path) -> None:
    """Overwrite 16 float32 weights inside the archive, as a bad disk or copy would."""
    with zipfile.ZipFile(path) as archive:
        tensors = [info for info in archive.infolist() if re.search(r"/data/\d+$", info.filename)]
        entry = max(tensors, key=lambda info: info.file_size)
    with open(path, "r+b") as file:
        file.seek(entry.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", file.read(4))
        file.seek(entry.header_offset + 30 + name_length + extra_length)
        file.write(struct.pack("<16f", *[0.5] * 16))  # plausible values: no NaN to notice


DAMAGE = {
    "zero bytes": lambda path: path.write_bytes(b""),
    "random bytes": lambda path: path.write_bytes(os.urandom(4096)),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "weights overwritten": _overwrite_a_tensor,
}


@pytest.fixture
def damaged(request, finished_run, tmp_path) -> Path:
    """A copy of the finished run's checkpoints, one of them damaged (or a .partial file)."""
    folder = shutil.copytree(finished_run.output_dir / "checkpoints", tmp_path / "checkpoints")
    if request.param == "partial":
        return Path(shutil.copy(folder / "last.ckpt", folder / "last.ckpt.partial"))
    DAMAGE[request.param](folder / "last.ckpt")
    return folder / "last.ckpt"


@pytest.mark.slow
@pytest.mark.parametrize("damaged", [*DAMAGE, "partial"], indirect=True)
@pytest.mark.parametrize("job", ["eval", "resume"])
def test_damaged_checkpoints_are_refused_naming_the_file_and_the_fallbacks(
    damaged, job, tmp_path, data_dir
):
    """Before: EOFError; torch's advice to set weights_only=False; "PytorchStreamReader
    failed" without the file; and overwritten weights loaded silently (test/loss 1e30)."""
    from graphformer.cli.checkpoint import CheckpointError

    ckpt_path = f'ckpt_path="{damaged}"'
    if job == "eval":
        cfg = compose_config([ckpt_path], tmp_path / "eval", data_dir, config_name="eval")
        action = functools.partial(evaluate, cfg)
    else:
        cfg = compose_config([*SMALL_RUN, ckpt_path, "trainer.max_epochs=2"], tmp_path, data_dir)
        action = functools.partial(train, cfg)
    with pytest.raises(CheckpointError) as caught:
        action()
    message = str(caught.value)
    assert message.startswith(f"{damaged} ")
    assert "so it cannot be loaded" in message
    assert re.search(r"Other checkpoints in .*: epoch_000.ckpt(, last.ckpt)?; pass one", message)
    assert "weights_only" not in message


def test_a_full_disk_while_logging_names_the_file_and_what_to_do(tmp_path, data_dir, monkeypatch):
    """A logger's write on a full disk was a bare "OSError: [Errno 28] No space left on device"."""
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    metrics_file = tmp_path / "run" / "metrics.csv"

    def full(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(metrics_file))

    monkeypatch.setattr(ExperimentWriter, "save", full)
    with pytest.raises(OSError) as caught:
        run(tmp_path, data_dir, "logger=csv", "~debug", "trainer.max_epochs=1")
    message = str(caught.value)
    assert f"while writing {metrics_file}" in message
    assert "paths.log_dir" in message and caught.value.errno == errno.ENOSPC


def test_a_full_disk_names_the_checkpoint_and_what_to_do(tmp_path, monkeypatch):
    """It was a bare "OSError: [Errno 28] No space left on device"."""
    from graphformer.cli import checkpoint

    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.os, "fsync", full)
    target = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(OSError, match=r"No space left on device\. Free space in .*paths.log_dir"):
        checkpoint.AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(4)}, target)
    with pytest.raises(OSError) as caught:
        checkpoint.AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(4)}, target)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert str(target) in str(caught.value)
    assert list(target.parent.iterdir()) == []  # no .partial left behind


@pytest.mark.parametrize(
    "path",
    [
        "/runs/a b/last.ckpt",
        "/runs/a,b/last.ckpt",
        "/runs/it's/last.ckpt",
        '/runs/a "b"/last.ckpt',
        "/runs/a\\b\\",
        "/runs/[x]=y {z}/last.ckpt",
        "/runs/2026-12-01_21-50-03.123456_42/checkpoints/last.ckpt",
    ],
)
def test_printed_checkpoint_overrides_parse_back_to_the_path(path):
    """A path with a space was printed as is: Hydra cannot parse it back."""
    from graphformer.cli.report import cli_override

    words = shlex.split(cli_override("ckpt_path", path))
    assert len(words) == 1
    (override,) = OverridesParser.create().parse_overrides(words)
    assert (override.key_or_group, override.value()) == ("ckpt_path", path)


def test_a_partial_checkpoint_names_the_finished_one_to_pass_instead(tmp_path):
    """Issue 22, item 16: a ``.partial`` file's error listed the folder's checkpoints but
    not the finished file it was written to replace."""
    from graphformer.cli.checkpoint import CheckpointError, verify

    finished = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}}, finished)
    partial = Path(shutil.copy(finished, tmp_path / "last.ckpt.partial"))
    with pytest.raises(CheckpointError, match=rf"pass ckpt_path={re.escape(str(finished))}"):
        verify(partial)
