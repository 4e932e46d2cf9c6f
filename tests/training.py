"""Helpers for the training-stack tests: compose configs with Hydra's compose API."""

from __future__ import annotations

from pathlib import Path

import graphformer
import graphformer.cli.resolvers  # noqa: F401  (the configs' resolvers, as the CLI registers them)

import dgl
import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

#: Cora in DGL's cache layout, beside the repository (CI and the dev machines have it).
SHARED_DGL = Path(__file__).resolve().parents[2] / "shared" / "data" / "dgl"

#: A small CLUSTER (64 / 32 / 32 graphs, batches of 16)...
SMALL_DATA = [
    "data.train_graphs=64",
    "data.val_graphs=32",
    "data.test_graphs=32",
    "data.batch_size=16",
]
#: ... and a small model, without the rich progress bar and model summary: an epoch in seconds.
SMALL = [
    *SMALL_DATA,
    "model.block.dim=16",
    "model.num_layers=2",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
]


def config_dir() -> Path:
    """``conf/`` of the checkout, or the installed ``graphformer.conf`` package."""
    checkout = Path(__file__).resolve().parents[1] / "conf"
    if (checkout / "train.yaml").is_file():
        return checkout
    import importlib.resources

    return Path(str(importlib.resources.files("graphformer.conf")))


def compose_config(
    overrides: list[str], out_dir: Path, data_dir: Path, config_name: str = "train"
) -> DictConfig:
    """A run config as ``@hydra.main`` would build it, writing under ``out_dir``.

    Tests share ``data_dir`` so generated datasets are made once per session.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
        cfg.paths.log_dir = str(out_dir / "logs")
        cfg.paths.data_dir = str(data_dir)
        cfg.hydra.runtime.output_dir = str(out_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


class ShardRecorder(L.Callback):
    """Writes a fingerprint of every training graph a rank sees to ``<out_dir>/rank<r>.txt``,
    and the test's number of processes to ``<out_dir>/test_world_size.txt``."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        graph, _ = batch
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / f"rank{trainer.global_rank}.txt", "a") as file:
            for sample in dgl.unbatch(graph):
                features = sample.ndata["feat"].tolist()
                file.write(f"{sample.num_nodes()}:{sample.num_edges()}:{hash(tuple(features))}\n")

    def on_test_start(self, trainer, pl_module) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "test_world_size.txt").write_text(str(trainer.world_size))


class SpoilLastValidation(L.Callback):
    """Scales every weight by 100 before the last epoch's validation, so that epoch is the
    worst and the best checkpoint is an earlier one."""

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == trainer.max_epochs - 1 and not trainer.sanity_checking:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.mul_(100.0)


def wandb_summary(run_dir: Path, timeout: float = 30.0) -> dict:
    """The summary of an offline wandb run, read from its ``.wandb`` file (LevelDB log
    records of wandb's protobuf ``Record``; wandb ships no reader). wandb's service may
    still be writing the file after ``wandb.finish()`` returns: waits for its exit record."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        summary, finished = _read_wandb_summary(run_dir)
        if finished or time.monotonic() > deadline:
            return summary
        time.sleep(0.2)


def _read_wandb_summary(run_dir: Path) -> tuple[dict, bool]:
    import json

    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("*.wandb")
    data, block, position, chunks, summary = path.read_bytes(), 32768, 7, [], {}
    finished = False
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header: padding
            position += block - position % block
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        chunks.append(data[position + 7 : position + 7 + length])
        position += 7 + length
        if kind in (1, 4) and chunks:  # FULL, or LAST of a record split across blocks
            record = wandb_internal_pb2.Record()
            try:
                record.ParseFromString(b"".join(chunks))
            except Exception:  # the record being written: read again later
                return summary, False
            chunks = []
            kind_of_record = record.WhichOneof("record_type")
            finished = finished or kind_of_record == "exit"
            if kind_of_record == "summary":
                for item in record.summary.update:
                    key = item.key or "/".join(item.nested_key)
                    summary[key] = json.loads(item.value_json)
    return summary, finished


class SeedRecorder(L.Callback):
    """Writes the whole-graph ids of every training batch's seed nodes (sampled node-level
    batches: ``ndata['_ID']`` where ``train_mask``) to ``<out_dir>/rank<r>.txt``."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        graph, _ = batch
        seeds = graph.ndata[dgl.NID][graph.ndata["train_mask"].bool()]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / f"rank{trainer.global_rank}.txt", "a") as file:
            file.write("".join(f"{int(node)}\n" for node in seeds))
