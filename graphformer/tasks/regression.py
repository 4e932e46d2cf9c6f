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

    def check_targets(self, out: torch.Tensor, target: torch.Tensor) -> None:
        """Raise ValueError unless ``target`` holds ``out_dim`` float values per row of ``out``."""
        item = self.level
        if not target.is_floating_point():
            raise ValueError(
                f"regression targets must be floating point; got {target.dtype} labels of shape "
                f"{tuple(target.shape)}{self.data_name()}, which look like class labels: choose "
                f"task={item}_classification, or convert the targets with labels.float() in "
                "the dataset"
            )
        width = out.shape[1] if out.dim() == 2 else 1
        expected = [(len(out), width)] + ([(len(out),)] if width == 1 else [])
        if tuple(target.shape) not in expected:
            got = target.shape[1] if target.dim() == 2 and len(target) == len(out) else None
            fix = f"; set model.out_dim={got} (data.out_dim)" if got else ""
            raise ValueError(
                f"regression targets must have shape {expected[0]}: out_dim={width} per {item}, "
                f"as the model outputs; got {tuple(target.shape)}{fix}"
            )

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check_targets(out, target)
        return LOSSES[self.loss_name](out, target.reshape(out.shape).to(out.dtype))

    def metric_inputs(self, out: torch.Tensor, target: torch.Tensor):
        return out.reshape(-1), target.reshape(-1).to(out.dtype)


class NodeRegression(Regression):
    """Targets per node."""

    level = "node"


class GraphRegression(Regression):
    """Targets per graph (sample)."""

    level = "graph"
