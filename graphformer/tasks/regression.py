"""Node and graph regression: L1 or MSE loss, MAE and MSE metrics, optional target
standardisation (loss on standardised targets, metrics in the targets' units)."""

from __future__ import annotations

from typing import Any

from graphformer.tasks.base import GraphTask

import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


def training_targets(dataset: Any, level: str) -> torch.Tensor:
    """Every target of a (training) dataset as a float tensor (items, out_dim): its
    ``targets`` attribute when it (or a dataset it wraps, ``.dataset``) has one, else read
    sample by sample (``(graph, label)`` pairs, or ``ndata['label']`` of node-level ones)."""
    inner = dataset
    while inner is not None and not isinstance(getattr(inner, "targets", None), torch.Tensor):
        inner = getattr(inner, "dataset", None)
    if inner is not None:
        values = inner.targets
    elif level == "graph":
        values = torch.stack([torch.as_tensor(dataset[i][1]) for i in range(len(dataset))])
    else:
        values = torch.cat([dataset[i].ndata["label"] for i in range(len(dataset))])
    values = values.float()
    return values.reshape(len(values), -1)


class Regression(GraphTask):
    r"""Regression of ``out_dim`` targets per item. Loss ``l1`` (default) or ``mse``.

    With ``standardize=True`` the model learns standardised targets: before fitting, the
    mean :math:`\mu` and standard deviation :math:`\sigma` of each target over the
    training split are stored as buffers (``target_mean``, ``target_std``; saved in
    checkpoints), the loss compares the model's output :math:`o` with
    :math:`(y - \mu) / \sigma`, and the prediction is :math:`\hat y = o \sigma + \mu`,
    so MAE and MSE are reported in the targets' own units (QM9's eV, ...).
    """

    def __init__(self, *args, loss: str = "l1", standardize: bool = False, **kwargs):
        if loss not in LOSSES:
            raise ValueError(f"unknown regression loss {loss!r}; choose one of {list(LOSSES)}")
        if not isinstance(standardize, bool):
            raise TypeError(f"standardize must be true or false; got {standardize!r}")
        self.loss_name = loss
        super().__init__(*args, **kwargs)
        self.standardize = standardize
        if standardize:
            self.register_buffer("target_mean", torch.zeros(0))
            self.register_buffer("target_std", torch.ones(0))

    def setup(self, stage: str) -> None:
        """With ``standardize``, compute the training split's target mean and std (once)."""
        if not self.standardize or self.target_mean.numel():
            return
        data = getattr(self.trainer, "datamodule", None)
        if data is None or not hasattr(data, "split_dataset"):
            raise ValueError(
                "task.standardize=true reads the training targets from the data module "
                "(GraphDataModule.split_dataset('train')); pass datamodule= to the trainer"
            )
        self.set_target_statistics(training_targets(data.split_dataset("train"), self.level))

    def set_target_statistics(self, targets: torch.Tensor) -> None:
        """Store the mean and std (population; 1 where a target is constant) of ``targets``
        (items, out_dim) as the standardisation of :attr:`standardize`."""
        if len(targets) == 0:
            raise ValueError("cannot standardise targets: the training split has none")
        std = targets.std(dim=0, unbiased=False)
        self.target_mean = targets.mean(dim=0).to(self.device)
        self.target_std = torch.where(std > 0, std, torch.ones_like(std)).to(self.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The statistics' shape is known only once computed: take the checkpoint's.
        if self.standardize:
            for name in ("target_mean", "target_std"):
                stored = state_dict.get(prefix + name)
                if stored is not None:
                    setattr(self, name, torch.empty_like(stored))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _scale(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.target_mean.numel():
            raise ValueError(
                "task.standardize=true but the target statistics were never computed: "
                "they are set in setup() from the training split (run through a Trainer "
                "with the data module, or call set_target_statistics(train_targets))"
            )
        width = out.shape[1] if out.dim() == 2 else 1
        if self.target_mean.numel() != width:
            raise ValueError(
                f"the target statistics hold {self.target_mean.numel()} targets but the "
                f"model outputs {width}"
            )
        shape = (1, width) if out.dim() == 2 else (1,)
        return self.target_mean.reshape(shape), self.target_std.reshape(shape)

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
        target = target.reshape(out.shape).to(out.dtype)
        if self.standardize:
            mean, std = self._scale(out)
            target = (target - mean) / std
        return LOSSES[self.loss_name](out, target)

    def metric_inputs(self, out: torch.Tensor, target: torch.Tensor):
        if self.standardize:
            mean, std = self._scale(out)
            out = out * std + mean
        return out.reshape(-1), target.reshape(-1).to(out.dtype)


class NodeRegression(Regression):
    """Targets per node."""

    level = "node"


class GraphRegression(Regression):
    """Targets per graph (sample)."""

    level = "graph"
