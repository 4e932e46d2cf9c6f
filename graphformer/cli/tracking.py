"""wandb tracking that never prompts and never hangs: offline unless asked or logged in."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from lightning.pytorch.loggers import Logger, WandbLogger

MODES = ("auto", "online", "offline", "disabled")


def has_wandb_credentials() -> bool:
    """True when ``WANDB_API_KEY`` is set or ``wandb login`` wrote a netrc entry."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        hosts = netrc.netrc(path).hosts
    except (OSError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def resolve_mode(mode: str = "auto") -> str:
    """``auto`` → ``WANDB_MODE`` if set, else ``online`` with credentials, else ``offline``."""
    if mode not in MODES:
        raise ValueError(f"unknown wandb mode {mode!r}; choose one of {list(MODES)}")
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("online", "offline", "disabled"):
        return env
    if env == "dryrun":
        return "offline"
    return "online" if has_wandb_credentials() else "offline"


def wandb_logger(mode: str = "auto", save_dir: str = ".", **kwargs) -> WandbLogger:
    """A Lightning ``WandbLogger`` in the resolved mode (see :func:`resolve_mode`).

    The mode is exported as ``WANDB_MODE`` so that wandb itself, and DDP children, agree.
    """
    mode = resolve_mode(mode)
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    logger = WandbLogger(save_dir=save_dir, offline=mode != "online", **kwargs)
    # Lightning 2.6 always passes `anonymous`, a setting wandb ≥ 0.19 ignores and warns about
    # on every run; leave it out unless the caller set it.
    if "anonymous" not in kwargs:
        logger._wandb_init.pop("anonymous", None)
    return logger


def wandb_run_dir(loggers: list[Logger]) -> str | None:
    """Where the wandb run of this job writes (for `wandb sync`), if there is one."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            return logger.experiment.dir.removesuffix("/files")
    return None


def summarize(loggers: list[Logger], values: dict[str, float]) -> None:
    """Write ``values`` (best metrics, parameter count) into each wandb run's summary."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(values)


def finish() -> None:
    """End the current wandb run, so the next job of a multirun gets its own."""
    import wandb

    if wandb.run is not None:
        wandb.finish()
