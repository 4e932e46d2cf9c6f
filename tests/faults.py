"""Callbacks that inject faults into a graphformer-train subprocess (tests/test_faults.py).

They are added on the command line, e.g. ``+callbacks.fault._target_=faults.KillAt``, with
``tests/`` on PYTHONPATH.
"""

from __future__ import annotations

import os
import signal

import lightning as L


class KillAt(L.Callback):
    """SIGKILL the process at the start of batch ``batch`` of epoch ``epoch`` (mid-epoch)."""

    signal = signal.SIGKILL

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), self.signal)


class TermAt(KillAt):
    """SIGTERM the process there instead: what a scheduler sends to preempt a job."""

    signal = signal.SIGTERM


class KillWhileSaving(L.Callback):
    """SIGKILL the process during checkpoint write number ``save``: half of the new file is
    on disk, not yet renamed over the old one."""

    def __init__(self, save: int) -> None:
        import graphformer.cli.checkpoint as checkpoint_module

        real_replace, count = checkpoint_module.os.replace, [0]

        def replace(source, target):
            count[0] += 1
            if count[0] == save:
                with open(source, "r+b") as file:
                    file.truncate(os.path.getsize(source) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(source, target)

        checkpoint_module.os.replace = replace


class RaiseOnRank(L.Callback):
    """Raise on one DDP rank at its second training batch; the other ranks carry on."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_rank == self.rank and batch_idx == 1:
            raise RuntimeError(f"rank {self.rank} failed on purpose")
