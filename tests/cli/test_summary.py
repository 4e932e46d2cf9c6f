"""The model summary before training counts FLOPs on a real batch (issue 21: it showed 0)."""

from __future__ import annotations

from functools import partial

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli.summary import ModelSummary
from graphformer.data import GraphDataModule, SBMDataset
from graphformer.nn import BlockConfig, GraphTransformer
from graphformer.tasks import NodeClassification

import lightning as L
import torch
from lightning.pytorch.utilities.model_summary import summarize


def test_the_summary_counts_the_flops_of_the_first_training_batch(tmp_path, capsys):
    data = GraphDataModule(
        partial(SBMDataset, name="CLUSTER", root=tmp_path),
        train_graphs=4,
        val_graphs=2,
        test_graphs=2,
        batch_size=2,
        lap_pe_k=0,
    )
    model = GraphTransformer(
        6, BlockConfig(dim=16, num_heads=2), num_layers=1, num_categories=data.num_categories
    )
    task = NodeClassification(model, partial(torch.optim.SGD, lr=0.1), num_classes=6)
    trainer = L.Trainer(
        fast_dev_run=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        callbacks=[ModelSummary(max_depth=1)],
    )
    trainer.fit(task, datamodule=data)

    (graph,) = task.example_input_array
    assert graph.batch_size == 2 and graph.num_nodes() == data.example_batch()[0].num_nodes()
    # The head alone does 2 · nodes · 16 · 6 multiply-adds: the count is real, not 0.
    assert summarize(task).total_flops >= 2 * graph.num_nodes() * 16 * 6
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal width
    assert "Total FLOPs" in printed and "Total FLOPs: 0" not in printed
    assert "DGL's sparse message-passing kernels are not counted" in printed
    assert "In sizes" not in printed
