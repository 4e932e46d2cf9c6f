"""Wall time per training epoch, logged next to the metrics."""

from __future__ import annotations

import time

import lightning.pytorch as pl


class EpochTimer(pl.Callback):
    """Logs each training epoch's wall time in seconds as ``time/train_epoch_s``, from the
    epoch's first batch to its end (validation excluded), so runs compared at equal epochs
    show their cost per epoch in ``metrics.csv`` and on wandb."""

    def __init__(self) -> None:
        self._start: float | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._start is not None:
            seconds = time.perf_counter() - self._start
            pl_module.log("time/train_epoch_s", seconds, on_epoch=True, sync_dist=True)
