"""Node and graph regression: L1 or MSE loss, MAE and MSE metrics."""

from __future__ import annotations

from graphformer.tasks.base import GraphTask

import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


class Regression(GraphTask):
    """Regression of ``out_dim`` targets per item. Loss ``l1`` (default) or ``mse``."""

    def __init__(self, *args, loss: str = "l1", **kwargs):
        if loss not in LOSSES:
            raise ValueError(f"unknown regression loss {loss!r}; choose one of {list(LOSSES)}")
        self.loss_name = loss
        super().__init__(*args, **kwargs)

    def metrics(self) -> MetricCollection:
        return MetricCollection({"mae": MeanAbsoluteError(), "mse": MeanSquaredError()})

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LOSSES[self.loss_name](out, target.reshape(out.shape).to(out.dtype))

    def metric_inputs(self, out: torch.Tensor, target: torch.Tensor):
        return out.reshape(-1), target.reshape(-1).to(out.dtype)


class NodeRegression(Regression):
    """Targets per node."""

    level = "node"


class GraphRegression(Regression):
    """Targets per graph (sample)."""

    level = "graph"
