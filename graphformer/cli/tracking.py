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


def wandb_logger(
    mode: str = "auto",
    save_dir: str = ".",
    group: str | None = None,
    name: str | None = None,
    tags: list[str] | None = None,
    **kwargs,
) -> WandbLogger:
    """A Lightning ``WandbLogger`` in the resolved mode (see :func:`resolve_mode`).

    The mode is exported as ``WANDB_MODE`` so that wandb itself, and DDP children, agree.
    Under Hydra, left at null, ``group`` is the sweep's id (its folder's name; null for a
    single run) and ``name`` the job's overrides (see :func:`run_identity`); ``tags`` gain
    ``experiment:``, ``model:`` and ``data:`` tags naming the chosen configs.
    """
    default_group, default_name, choice_tags = run_identity()
    group = default_group if group is None else group
    name = default_name if name is None else name
    tags = [*(tags or []), *(t for t in choice_tags if t not in (tags or []))]
    kwargs.update(group=group, name=name, tags=tags)
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


def run_identity() -> tuple[str | None, str | None, list[str]]:
    """``(group, name, tags)`` of this Hydra job: the sweep folder's name in a multirun
    (else None), the job's command-line overrides joined by spaces (else None), and
    ``experiment:<name>``, ``model:<name>``, ``data:<name>`` tags for the chosen configs."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, None, []
    hydra_cfg = HydraConfig.get()
    group = None
    if hydra_cfg.mode == RunMode.MULTIRUN:
        group = Path(hydra_cfg.sweep.dir).name
    name = " ".join(hydra_cfg.overrides.task) or None
    choices = hydra_cfg.runtime.choices
    tags = [f"{key}:{choices[key]}" for key in ("experiment", "model", "data") if choices.get(key)]
    return group, name, tags


def wandb_run_dir(loggers: list[Logger]) -> str | None:
    """Where the wandb run of this job writes (for `wandb sync`), if there is one."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            return logger.experiment.dir.removesuffix("/files")
    return None


def summarize(loggers: list[Logger], values: dict[str, float], step: int = 0) -> None:
    """Write ``values`` (the best checkpoint's metrics, the parameter count ...) into each
    wandb run's summary, and log those not logged before (``best/*``, ``last/*``,
    ``params/*``) once, at ``step``, to every other logger (a row of CSV's metrics.csv,
    TensorBoard scalars)."""
    new = {k: v for k, v in values.items() if k.startswith(("best/", "last/", "params/"))}
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(values)
        elif new:
            logger.log_metrics(new, step=step)
            logger.save()


def finish() -> None:
    """End the current wandb run, so the next job of a multirun gets its own."""
    import wandb

    if wandb.run is not None:
        wandb.finish()
