r"""3D pose lifting: the MPJPE metric and the PoseLifting task.

MPJPE, the mean per-joint position error of Human3.6M's Protocol 1, over J joints:

.. math::
    \mathrm{MPJPE} = \frac{1}{J} \sum_{j=1}^{J} \lVert \hat P_j - P_j \rVert_2 ,

in the targets' units (mm for graphformer's skeleton datasets), averaged over all joints
of all samples seen.
"""

from __future__ import annotations

from graphformer.tasks.regression import NodeRegression

import dgl
import torch
from torchmetrics import MeanAbsoluteError, Metric, MetricCollection

POSE_LOSSES = ("mpjpe", "l1", "mse")


def _check_joints(preds: torch.Tensor, target: torch.Tensor) -> None:
    if preds.shape != target.shape or preds.dim() < 1:
        raise ValueError(
            f"preds and target must have the same shape (..., coordinates), e.g. (joints, 3); "
            f"got {tuple(preds.shape)} and {tuple(target.shape)}"
        )


def mpjpe(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance over the last dimension: ``preds``, ``target`` (..., 3)."""
    _check_joints(preds, target)
    return torch.linalg.vector_norm(preds - target.to(preds.dtype), dim=-1).mean()


class MPJPE(Metric):
    r"""Mean per-joint position error :math:`\frac{1}{J}\sum_j \lVert \hat P_j - P_j \rVert_2`
    over every joint seen, in the targets' units.

    ``update(preds, target)`` takes (..., 3) tensors, one row per joint; under DDP the
    sums and counts are added across processes.
    """

    higher_is_better = False
    is_differentiable = True
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        _check_joints(preds, target)
        distance = torch.linalg.vector_norm(preds - target.to(preds.dtype), dim=-1)
        self.total += distance.sum().double()
        self.count += distance.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()


class PoseLifting(NodeRegression):
    """2D → 3D pose lifting: one 3D joint per node; metrics ``mpjpe`` and ``mae``.

    The model's outputs are multiplied by ``output_scale`` before the loss and the metrics,
    so a network with unit-scale outputs can fit targets in mm (the default 1000: it
    predicts metres). Metrics see (joints, 3) rows.

    Parameters
    ----------
    model, optimizer, scheduler, scheduler_monitor, on_nonfinite : see
        :class:`~graphformer.tasks.GraphTask`.
    loss : ``mpjpe`` (the metric itself, default), ``l1`` or ``mse`` (per coordinate).
    output_scale : positive factor from model outputs to target units.
    """

    def __init__(self, *args, loss: str = "mpjpe", output_scale: float = 1000.0, **kwargs):
        if loss not in POSE_LOSSES:
            raise ValueError(f"unknown pose-lifting loss {loss!r}; choose one of {POSE_LOSSES}")
        if isinstance(output_scale, bool) or not float(output_scale) > 0:
            raise ValueError(f"output_scale must be a positive number; got {output_scale!r}")
        # Regression knows l1 and mse only; mpjpe is handled by loss() below.
        super().__init__(*args, loss="l1" if loss == "mpjpe" else loss, **kwargs)
        self.loss_name, self.output_scale = loss, float(output_scale)

    def forward(self, graph: dgl.DGLGraph) -> torch.Tensor:
        return super().forward(graph) * self.output_scale

    def metrics(self) -> MetricCollection:
        return MetricCollection({"mpjpe": MPJPE(), "mae": MeanAbsoluteError()})

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "mpjpe":
            return mpjpe(out.reshape(-1, 3), target.reshape(-1, 3))
        return super().loss(out, target)

    def metric_inputs(self, out: torch.Tensor, target: torch.Tensor):
        return out.reshape(-1, 3), target.reshape(-1, 3).to(out.dtype)
