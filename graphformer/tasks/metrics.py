"""Benchmarking-GNNs' accuracy for SBM node classification, as a torchmetrics Metric."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class BenchmarkAccuracy(Metric):
    r"""The accuracy Benchmarking GNNs reports on PATTERN and CLUSTER, as a fraction.

    Per batch b, over the classes :math:`C_b` present in its targets,

    .. math::
        \mathrm{acc}_b = \frac{1}{|C_b|} \sum_{c \in C_b}
            \frac{|\{i : y_i = c,\ \hat y_i = c\}|}{|\{i : y_i = c\}|},
        \qquad \mathrm{BenchmarkAccuracy} = \frac{1}{B} \sum_b \mathrm{acc}_b .

    The benchmark prints 100 × this value. It is the mean over batches of per-batch
    balanced accuracy, so it differs from accuracy over the epoch (``acc``) and from
    epoch-level macro recall (``balanced_acc``); on PATTERN plain accuracy reads about 4
    points higher. Under DDP, batch sums and counts are added across processes.
    """

    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("batches", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """``preds``: (N, C) scores or (N,) classes; ``target``: (N,) classes of one batch."""
        if target.numel() == 0:
            return
        classes = preds.argmax(dim=-1) if preds.dim() == 2 else preds
        count = torch.bincount(target, minlength=self.num_classes)
        correct = torch.bincount(target[classes == target], minlength=self.num_classes)
        present = count > 0
        recall = correct[present].double() / count[present].double()
        self.total += recall.mean()
        self.batches += 1

    def compute(self) -> torch.Tensor:
        return (self.total / self.batches.clamp(min=1)).float()
