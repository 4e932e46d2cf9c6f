"""GraphTask behaviour that needs no config: non-finite losses, label checks, checkpoints."""

from __future__ import annotations

import math
from functools import partial

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import collate
from graphformer.tasks import BenchmarkAccuracy, GraphRegression, NodeClassification
from graphformer.tasks.schedules import warmup_cosine

import dgl
import lightning as L
import pytest
import torch
from dgl.dataloading import GraphDataLoader
from torch import nn
from torchmetrics import Accuracy


class PoisonedModel(nn.Module):
    """Outputs NaN for batches whose graphs have exactly ``poison`` nodes."""

    def __init__(self, out_dim: int, poison: int):
        super().__init__()
        self.linear, self.poison = nn.Linear(1, out_dim), poison

    def forward(self, graph, x, edge_feat=None):
        out = self.linear(x.float().unsqueeze(1))
        return out * float("nan") if graph.num_nodes() == self.poison else out


def graphs(sizes):
    result = []
    for n in sizes:
        g = dgl.rand_graph(n, 2 * n)
        g.ndata["feat"] = torch.zeros(n, dtype=torch.long)
        g.ndata["label"] = torch.randint(0, 3, (n,))
        result.append(g)
    return result


def fit(task, sizes):
    loader = GraphDataLoader(graphs(sizes), batch_size=1, collate_fn=collate)
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, loader)
    return trainer


def node_task(model, **kwargs):
    optimizer = partial(torch.optim.SGD, lr=0.1)
    return NodeClassification(model, optimizer, num_classes=3, **kwargs)


def test_nonfinite_loss_stops_with_step_and_batch_named():
    task = node_task(PoisonedModel(3, poison=7))
    with pytest.raises(FloatingPointError, match=r"non-finite train loss .*global step 2.*batch 2"):
        fit(task, [5, 6, 7, 8])


def test_nonfinite_loss_skip_drops_the_batch_and_counts_it():
    task = node_task(PoisonedModel(3, poison=7), on_nonfinite="skip")
    fit(task, [5, 7, 6, 7])
    assert task.skipped_batches == 2
    assert all(torch.isfinite(p).all() for p in task.parameters())


def test_unknown_nonfinite_policy_is_rejected():
    with pytest.raises(ValueError, match="on_nonfinite must be 'raise' or 'skip'; got 'ignore'"):
        node_task(PoisonedModel(3, 0), on_nonfinite="ignore")


def test_labels_out_of_range_name_the_range():
    task = node_task(PoisonedModel(3, 0))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*got values in \[0, 5\]"):
        task.loss(torch.randn(4, 3), torch.tensor([0, 1, 5, 2]))


def test_class_weighting_follows_the_benchmark_formula():
    task = node_task(PoisonedModel(3, 0), class_weighting=True)
    out, target = torch.randn(6, 3), torch.tensor([0, 0, 0, 1, 1, 2])
    weight = torch.tensor([(6 - 3) / 6, (6 - 2) / 6, (6 - 1) / 6])
    expected = nn.functional.cross_entropy(out, target, weight=weight)
    assert torch.allclose(task.loss(out, target), expected)


def test_regression_metrics_accept_flat_or_column_targets():
    task = GraphRegression(nn.Linear(1, 1), partial(torch.optim.SGD, lr=0.1))
    preds, target = task.metric_inputs(torch.randn(5, 1), torch.randn(5))
    assert preds.shape == target.shape == (5,)


def test_benchmark_accuracy_averages_per_batch_class_recall():
    metric = BenchmarkAccuracy(num_classes=3)
    # batch 1: class 0 recall 1/2, class 1 recall 1/1 (class 2 absent) -> 0.75
    metric.update(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]))
    # batch 2: class 2 recall 1/3 -> 1/3
    metric.update(torch.tensor([2, 0, 0]), torch.tensor([2, 2, 2]))
    metric.update(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))  # empty: ignored
    assert metric.compute().item() == pytest.approx((0.75 + 1 / 3) / 2)
    epoch_macro = Accuracy(task="multiclass", num_classes=3, average="macro")
    epoch_macro.update(torch.tensor([0, 1, 1, 2, 0, 0]), torch.tensor([0, 0, 1, 2, 2, 2]))
    assert epoch_macro.compute().item() == pytest.approx((1 / 2 + 1 + 1 / 3) / 3)
    scores = torch.nn.functional.one_hot(torch.tensor([0, 1, 1]), 3).float()
    assert BenchmarkAccuracy(3)(scores, torch.tensor([0, 0, 1])).item() == pytest.approx(0.75)


def test_classification_logs_the_benchmark_accuracy():
    trainer = fit(node_task(PoisonedModel(3, poison=-1)), [4, 5, 6])
    assert "train/bench_acc" in trainer.callback_metrics


def test_warmup_cosine_rises_linearly_then_decays_to_zero():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=2.0)
    schedule = warmup_cosine(optimizer, warmup_epochs=2, max_epochs=6, start_factor=0.1)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    cosine = [2.0 * 0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(4)]
    assert rates == pytest.approx([0.2, 1.1, *cosine])
    state = schedule.state_dict()  # checkpointable, as Lightning needs for resume
    assert state["_milestones"] == [2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warmup_epochs": -1, "max_epochs": 5}, r"warmup_epochs must be an int ≥ 0; got -1"),
        ({"warmup_epochs": 5, "max_epochs": 5}, r"larger than warmup_epochs=5; got 5"),
        ({"warmup_epochs": 1, "max_epochs": 5, "start_factor": 0}, r"start_factor must be in"),
    ],
)
def test_warmup_cosine_rejects_bad_settings(kwargs, message):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=message):
        warmup_cosine(optimizer, **kwargs)
