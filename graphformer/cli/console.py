"""What the console scripts show: the run's messages, also in ``<run dir>/<job>.log``, and no
warnings or tips that the user cannot act on."""

from __future__ import annotations

import logging
import warnings

#: Messages about the libraries, not about the run: hidden from the console and the log.
NOISE = (
    # Lightning advertises its cloud loggers on every run.
    "💡 Tip:",
    # The callbacks config brings RichModelSummary, which replaces Lightning's default.
    "Trainer already configured with model summary callbacks",
)

#: Warnings about code outside graphformer's and the user's control.
KNOWN_WARNINGS = (
    # GraphTask.transfer_batch_to_device moves DGL graphs, by design.
    r".*overridden `transfer_batch_to_device`",
    # torch 2.13 deprecates pytree's LeafSpec, which Lightning 2.6 still uses internally.
    r".*isinstance\(treespec, LeafSpec\)",
)

#: Warnings of ``graphformer-eval`` only: testing needs no callback state of the training run.
EVAL_WARNINGS = (r"(?s).*callbacks used to create the checkpoint need to be provided",)

LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(NOISE)


def setup(evaluation: bool = False) -> None:
    """Hide known noise (with ``evaluation``, also :data:`EVAL_WARNINGS`); under Hydra, send
    Lightning's messages through Hydra's handlers.

    Lightning gives its loggers a console handler of their own (and stops propagation) when
    it is imported before logging is configured, so its messages never reached the run's log
    file. When the root logger has handlers (Hydra's console and file), Lightning's loggers
    and Python's warnings go through them instead.
    """
    for message in KNOWN_WARNINGS + (EVAL_WARNINGS if evaluation else ()):
        warnings.filterwarnings("ignore", message=message)
    root = logging.getLogger()
    if root.handlers:
        logging.captureWarnings(True)  # warnings, too, reach the console and the log file
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if root.handlers:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
        for handler in logger.handlers:
            handler.addFilter(_DropNoise())
    for handler in root.handlers:
        handler.addFilter(_DropNoise())


def show(text: str) -> None:
    """Print ``text`` for the user and write it to the run's log files (under Hydra,
    ``<run dir>/<job>.log``), without printing it twice."""
    print(text, flush=True)
    logger = logging.getLogger("graphformer")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, text, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
