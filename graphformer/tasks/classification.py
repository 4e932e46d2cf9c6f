"""Node and graph classification: cross-entropy, accuracy, balanced accuracy, F1, AUROC."""

from __future__ import annotations

from graphformer.tasks.base import GraphTask
from graphformer.tasks.metrics import BenchmarkAccuracy

import torch
import torch.nn.functional as F
from torchmetrics import AUROC, Accuracy, F1Score, MetricCollection


class Classification(GraphTask):
    """Multi-class classification over ``num_classes`` classes.

    Loss: cross-entropy, optionally with the Benchmarking-GNNs class weights
    (``class_weighting=True``): per batch, class c weighs (V − n_c) / V, where V is the
    number of labelled items in the batch and n_c those of class c.
    Metrics: ``acc`` (micro), ``balanced_acc`` (macro recall), ``f1`` (macro), ``auroc``,
    and ``bench_acc``, the per-batch class-averaged recall that Benchmarking GNNs reports
    on PATTERN and CLUSTER (:class:`~graphformer.tasks.metrics.BenchmarkAccuracy`).
    """

    def __init__(self, *args, num_classes: int, class_weighting: bool = False, **kwargs):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int ≥ 2; got {num_classes!r}")
        self.num_classes = num_classes
        super().__init__(*args, **kwargs)
        self.class_weighting = class_weighting

    def metrics(self) -> MetricCollection:
        kwargs = {"task": "multiclass", "num_classes": self.num_classes}
        return MetricCollection(
            {
                "acc": Accuracy(**kwargs, average="micro"),
                "balanced_acc": Accuracy(**kwargs, average="macro"),
                "f1": F1Score(**kwargs, average="macro"),
                "auroc": AUROC(**kwargs),
                "bench_acc": BenchmarkAccuracy(self.num_classes),
            }
        )

    def check_labels(self, out: torch.Tensor, target: torch.Tensor) -> None:
        """Raise ValueError unless ``target`` holds one integer class per row of ``out``."""
        item = self.level
        if target.is_floating_point():
            regression = f"task={item}_regression"
            if item == "node" and target.dim() == 2 and target.shape[1] == 3:
                regression = "task=pose_lifting (3D joints) or " + regression
            raise ValueError(
                f"class labels must be integers; got {target.dtype} labels of shape "
                f"{tuple(target.shape)}{self.data_name()}. If they are continuous targets, "
                f"this is regression: choose {regression}. If they are integer-valued classes, "
                "convert them with labels.long() in the dataset."
            )
        if tuple(target.shape) != (len(out),):
            squeeze = " (squeeze them: labels.squeeze(1))" if target.dim() == 2 else ""
            raise ValueError(
                f"class labels must have shape ({len(out)},), one class per {item}; got "
                f"{tuple(target.shape)}{squeeze}"
            )

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check_labels(out, target)
        if target.numel() and (target.min() < 0 or target.max() >= self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}) for num_classes="
                f"{self.num_classes}; got values in [{int(target.min())}, {int(target.max())}]"
            )
        weight = None
        if self.class_weighting:
            counts = torch.bincount(target, minlength=self.num_classes).to(out.dtype)
            weight = (len(target) - counts) / max(len(target), 1)
        return F.cross_entropy(out, target, weight=weight)

    def metric_inputs(self, out: torch.Tensor, target: torch.Tensor):
        return out.softmax(dim=-1), target


class NodeClassification(Classification):
    """One class per node; masks select a split's nodes on single-graph datasets."""

    level = "node"


class GraphClassification(Classification):
    """One class per graph (sample)."""

    level = "graph"
