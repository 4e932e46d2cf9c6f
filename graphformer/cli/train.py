"""``graphformer-train``: fit a model, test its best checkpoint, return the swept metric."""

from __future__ import annotations

import logging

from graphformer.cli import build, console, tracking

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> float | None:
    """The recipe: check → seed → model → data (with the fields the model needs) → task →
    callbacks, loggers → trainer → fit → test.

    With ``train=false``, tests ``ckpt_path`` (or, without one, the untrained weights).
    Returns ``cfg.optimized_metric`` (what sweeps optimise), taken from validation.
    Exits with status 143 when SIGTERM stops training (see :func:`build.exit_on_sigterm`).
    """
    build.check_settings(cfg)
    console.setup()
    build.seed_everything(cfg.get("seed"))
    build.check_resumable(cfg)
    model = build.model(cfg)
    datamodule = build.datamodule(cfg, model)
    task = build.task(cfg, datamodule, model)
    loggers = build.instantiate_group(cfg.get("logger"))
    callbacks = build.callbacks(cfg, loggers)
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False
    )
    # Without the `hydra` node, which is present only when composed with the compose API.
    run_keys = [key for key in cfg if key != "hydra"]
    task.run_config = OmegaConf.to_container(OmegaConf.masked_copy(cfg, run_keys), resolve=True)
    summary = {"params/total": task.num_parameters}
    for logger in loggers:
        logger.log_hyperparams({**task.run_config, **summary})
    try:
        full_disk = build.name_full_disk(cfg.paths.output_dir)
        with build.exit_on_sigterm(trainer, "training", resumable=True), full_disk:
            if cfg.get("train", True):
                trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
            validation = build.metrics(trainer)
            # Before testing: trainer.test(ckpt_path=...) restores the callbacks' state too.
            best, last = build.best_checkpoint(trainer), build.last_checkpoint(trainer)
            if cfg.get("test", True):
                trainer.test(task, datamodule=datamodule, ckpt_path=_tested(cfg, trainer, best))
        results = {**validation, **build.metrics(trainer)}
        summary.update({f"best/{key}": value for key, value in results.items()})
        tracking.summarize(loggers, summary)
        if cfg.get("train", True):
            checkpoints = {"best checkpoint": best, "last checkpoint": last}
        else:
            checkpoints = {"tested checkpoint": cfg.get("ckpt_path")}
        build.report(loggers, results, checkpoints, _next_steps(best, last))
    finally:
        tracking.finish()
    return build.optimized_metric(cfg, trainer, validation)


def _tested(cfg: DictConfig, trainer: L.Trainer, best: str | None) -> str | None:
    """The checkpoint to test: the best one of this fit, or ``ckpt_path`` with ``train=false``."""
    if not cfg.get("train", True):
        if not cfg.get("ckpt_path"):
            log.warning("train=false without ckpt_path: testing the untrained weights")
        return cfg.get("ckpt_path")
    if best is None and not trainer.fast_dev_run:
        log.warning("no best checkpoint was saved; testing the current weights")
    return best


def _next_steps(best: str | None, last: str | None) -> list[tuple[str, str]]:
    """The commands that test the best checkpoint and resume from the last one."""
    steps = []
    if best:
        steps.append(("test it", f"graphformer-eval {build.cli_override('ckpt_path', best)}"))
    if last:
        resume = build.command("graphformer-train", build.cli_override("ckpt_path", last))
        steps.append(("resume", f"{resume}  (raise trainer.max_epochs to train longer)"))
    return steps


@hydra.main(version_base="1.3", config_path="pkg://graphformer.conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg)


if __name__ == "__main__":
    main()
