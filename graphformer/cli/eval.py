"""``graphformer-eval ckpt_path=...``: test a checkpoint with the config it was trained with."""

from __future__ import annotations

from graphformer.cli import build, console, tracking

import hydra
import lightning as L
from omegaconf import DictConfig


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild data, model and task from the checkpoint's config, then test the checkpoint."""
    run = build.stored_config(cfg.ckpt_path)
    console.setup()
    build.seed_everything(cfg.get("seed"))
    datamodule = build.datamodule(run)
    task = build.task(run, datamodule)
    loggers = build.instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False)
    try:
        trainer.test(task, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        results = build.metrics(trainer)
        build.report(trainer, loggers, results)
    finally:
        tracking.finish()
    return results


@hydra.main(version_base="1.3", config_path="pkg://graphformer.conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
