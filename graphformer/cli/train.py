"""``graphformer-train``: fit a model, test its best checkpoint, return the swept metric."""

from __future__ import annotations

import logging

from graphformer.cli import build, console, tracking

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> float | None:
    """The recipe: seed → data → model → task → callbacks, loggers → trainer → fit → test.

    Returns ``cfg.optimized_metric`` (what sweeps optimise), taken from validation.
    """
    console.setup()
    build.seed_everything(cfg.get("seed"))
    build.check_resumable(cfg)
    datamodule = build.datamodule(cfg)
    task = build.task(cfg, datamodule)
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
        if cfg.get("train", True):
            trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        validation = build.metrics(trainer)
        best = build.best_checkpoint(trainer)
        if cfg.get("test", True):
            if best is None and cfg.get("train", True) and not trainer.fast_dev_run:
                log.warning("no best checkpoint was saved; testing the current weights")
            trainer.test(task, datamodule=datamodule, ckpt_path=best)
        results = {**validation, **build.metrics(trainer)}
        summary.update({f"best/{key}": value for key, value in results.items()})
        tracking.summarize(loggers, summary)
        build.report(trainer, loggers, results)
    finally:
        tracking.finish()
    return build.optimized_metric(cfg, trainer, validation)


@hydra.main(version_base="1.3", config_path="pkg://graphformer.conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg)


if __name__ == "__main__":
    main()
