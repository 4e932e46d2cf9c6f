"""``graphformer-train``: fit a model, test its best checkpoint, return the swept metric.

Importing this module is cheap (Hydra and OmegaConf only): ``--help`` and config errors
answer without loading torch, DGL or Lightning, which :func:`train` imports when it runs.
"""

from __future__ import annotations

import logging
import time

from graphformer.cli import checks, resolvers  # noqa: F401  (resolvers: registers them)

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> float | None:
    """The recipe: check → seed → model → data (with the fields the model needs) → task →
    callbacks, loggers → trainer → fit → test.

    With ``train=false``, tests ``ckpt_path`` (or, without one, the untrained weights).
    Returns ``cfg.optimized_metric`` (what sweeps optimise) at the best checkpoint, the one
    that is tested and reported. Writes ``summary.json`` in the run folder (read by the
    sweep summary). Exits with status 143 when SIGTERM stops training
    (see :func:`graphformer.cli.signals.exit_on_sigterm`).
    """
    started = time.time()
    checks.check_overrides(cfg)
    checks.check_settings(cfg)
    from graphformer.cli import build, console, report, results, resume, seeding, signals, tracking

    checks.check_task_fits_data(cfg)
    console.setup()
    seeding.seed_everything(cfg.get("seed"))
    resume.check_resumable(cfg)
    model = build.model(cfg)
    datamodule = build.datamodule(cfg, model)
    task = build.task(cfg, datamodule, model)
    loggers = build.instantiate_group(cfg.get("logger"))
    callbacks = build.callbacks(cfg, loggers)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    # Without the `hydra` node, which is present only when composed with the compose API.
    run_keys = [key for key in cfg if key != "hydra"]
    task.run_config = OmegaConf.to_container(OmegaConf.masked_copy(cfg, run_keys), resolve=True)
    summary = {"params/total": task.num_parameters}
    for logger in loggers:
        logger.log_hyperparams({**task.run_config, **summary})
    try:
        full_disk = signals.name_full_disk(cfg.paths.output_dir)
        with signals.exit_on_sigterm(trainer, "training", resumable=True), full_disk:
            if cfg.get("train", True):
                trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
            validation = results.metrics(trainer)
            # Before testing: trainer.test(ckpt_path=...) restores the callbacks' state too.
            best, last = results.best_checkpoint(trainer), results.last_checkpoint(trainer)
            tested = {}
            if cfg.get("test", True):
                tester = _test_trainer(cfg, trainer, callbacks, loggers)
                tester.test(task, datamodule=datamodule, ckpt_path=_tested(cfg, trainer, best))
                tested = results.metrics(tester)
            outcome = results.collect(trainer, validation, tested, best, last)
        summary.update(outcome.summary())
        tracking.summarize(loggers, summary, step=trainer.global_step)
        if cfg.get("train", True):
            checkpoints = {
                "best checkpoint": outcome.best_checkpoint,
                "last checkpoint": outcome.last_checkpoint,
            }
        else:
            checkpoints = {"tested checkpoint": cfg.get("ckpt_path")}
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        if trainer.is_global_zero:  # under DDP every rank runs this; one writes
            results.write_summary(cfg, outcome, overrides, started)
        steps = _next_steps(report, outcome.best_checkpoint, outcome.last_checkpoint)
        report.report(loggers, outcome, checkpoints, steps, run_dir=cfg.paths.output_dir)
    finally:
        tracking.finish()
    return results.optimized_metric(cfg, outcome)


def _test_trainer(cfg: DictConfig, trainer, callbacks: list, loggers: list):
    """The trainer that tests: ``trainer``, except under a spawning strategy (``ddp_spawn``,
    e.g. ``trainer=ddp_sim``), where a one-process trainer in this process tests, as
    Lightning advises for ``trainer.test``: every test sample counts once (the distributed
    sampler pads the ranks' shares with repeats), and the ranks are not spawned a second
    time (a spawned rank aborted at exit, "terminate called without an active exception",
    in ~1 of 6 runs on a 2-core machine, failing a finished run)."""
    if getattr(trainer.strategy, "_start_method", None) != "spawn" or trainer.world_size == 1:
        return trainer
    return hydra.utils.instantiate(
        cfg.trainer,
        strategy="auto",
        devices=1,
        num_nodes=1,
        sync_batchnorm=False,
        callbacks=callbacks,
        logger=loggers or False,
    )


def _tested(cfg: DictConfig, trainer, best: str | None) -> str | None:
    """The checkpoint to test: the best one of this fit, or ``ckpt_path`` with ``train=false``."""
    if not cfg.get("train", True):
        if not cfg.get("ckpt_path"):
            log.warning("train=false without ckpt_path: testing the untrained weights")
        return cfg.get("ckpt_path")
    if best is None and not trainer.fast_dev_run:
        log.warning("no best checkpoint was saved; testing the current weights")
    return best


def _next_steps(report, best: str | None, last: str | None) -> list[tuple[str, str]]:
    """The commands that test the best checkpoint and resume from the last one."""
    steps = []
    if best:
        test = f"{report.program('graphformer-eval')} {report.cli_override('ckpt_path', best)}"
        steps.append(("test it", test))
    if last:
        resume = report.command("graphformer-train", report.cli_override("ckpt_path", last))
        steps.append(("resume", f"{resume}  (raise trainer.max_epochs to train longer)"))
    return steps


@hydra.main(version_base="1.3", config_path="pkg://graphformer.conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg)


if __name__ == "__main__":
    main()
