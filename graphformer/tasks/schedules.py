"""Learning-rate schedules that torch does not ship as one class."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    warmup_epochs: int,
    max_epochs: int,
    start_factor: float = 0.01,
) -> SequentialLR:
    r"""Linear warm-up, then cosine decay to zero (GraphGPS's schedule), stepped per epoch:

    .. math::
        \eta_t = \eta \Big(f + (1 - f)\frac{t}{W}\Big) \ (t < W), \qquad
        \eta_t = \frac{\eta}{2}\Big(1 + \cos\frac{\pi (t - W)}{T - W}\Big) \ (t \ge W)

    with :math:`f` = ``start_factor``, :math:`W` = ``warmup_epochs``, :math:`T` =
    ``max_epochs``. Deep post-norm stacks often stay at chance without the warm-up.
    """
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be an int ≥ 0; got {warmup_epochs!r}")
    if not isinstance(max_epochs, int) or max_epochs <= warmup_epochs:
        raise ValueError(
            f"max_epochs must be an int larger than warmup_epochs={warmup_epochs}; got "
            f"{max_epochs!r}. Shorten the warm-up or train longer"
        )
    if not 0.0 < start_factor <= 1.0:
        raise ValueError(f"start_factor must be in (0, 1]; got {start_factor}")
    warmup = LinearLR(optimizer, start_factor, 1.0, total_iters=max(warmup_epochs, 1))
    cosine = CosineAnnealingLR(optimizer, T_max=max_epochs - warmup_epochs)
    if warmup_epochs == 0:
        return SequentialLR(optimizer, [cosine], milestones=[])
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_epochs])
