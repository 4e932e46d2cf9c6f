"""What a job does when the disk fills up or the scheduler sends SIGTERM."""

from __future__ import annotations

import contextlib
import errno
import signal
import sys
from collections.abc import Iterator

from graphformer.cli import report, results

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

#: errno values of a full disk or quota.
FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def name_full_disk(output_dir: str) -> Iterator[None]:
    """Re-raise a full disk met while training or testing (a logger's metrics file, wandb's
    run files, a checkpoint) naming the file, the run folder and what to do; other errors
    pass through. Checkpoint writes already say so (AtomicCheckpointIO) and are kept as they are."""
    try:
        yield
    except OSError as error:
        if error.errno not in FULL or "paths.log_dir" in str(error):
            raise
        where = error.filename or f"a file under {output_dir}"
        raise OSError(
            error.errno,
            f"the disk is full ({error.strerror or error}) while writing {where}, in the run "
            f"folder {output_dir}. Free space there, or write runs elsewhere with "
            "paths.log_dir=... (or GRAPHFORMER_LOG_DIR); the last completed epoch's "
            "checkpoints/last.ckpt can be resumed with ckpt_path=...",
            error.filename,
        ) from error


@contextlib.contextmanager
def exit_on_sigterm(trainer: L.Trainer, what: str, resumable: bool) -> Iterator[None]:
    """Turn Lightning's stop on SIGTERM (a ``SystemExit`` with status 0) into exit status 143,
    so that a scheduler sees a preempted job as failed; say how to resume it if ``resumable``.

    Lightning only sets a flag in its signal handler and stops between batches, so a
    checkpoint being written is finished first; ``last.ckpt`` holds the last whole epoch.
    """
    try:
        yield
    except SIGTERMException:
        last = results.last_checkpoint(trainer) if resumable else None
        message = (
            f"graphformer: SIGTERM received: {what} stopped in epoch {trainer.current_epoch}, "
            f"step {trainer.global_step}"
        )
        if last:
            resume = report.command("graphformer-train", report.cli_override("ckpt_path", last))
            message += f"; resume from the last completed epoch with: {resume}"
        elif resumable:
            message += "; no epoch had completed, so there is no checkpoint to resume from"
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(128 + signal.SIGTERM) from None
