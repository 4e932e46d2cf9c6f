"""``graphformer-eval ckpt_path=...``: test a checkpoint with the config it was trained with."""

from __future__ import annotations

from pathlib import Path

from graphformer.cli import build, tracking
from graphformer.tasks.base import CONFIG_KEY

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf


def stored_config(ckpt_path: str) -> DictConfig:
    """The run configuration ``graphformer-train`` stored in the checkpoint."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path!r} is not a file; pass the .ckpt a training run saved "
            "(its path is printed at the end of graphformer-train, under checkpoints/)"
        )
    checkpoint = torch.load(path, map_location="cpu")
    if CONFIG_KEY not in checkpoint:
        raise ValueError(
            f"{path} holds no graphformer configuration ({CONFIG_KEY!r}); only checkpoints "
            "written by graphformer-train can be evaluated this way"
        )
    return OmegaConf.create(checkpoint[CONFIG_KEY])


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild data, model and task from the checkpoint's config, then test the checkpoint."""
    run = stored_config(cfg.ckpt_path)
    build.quiet_known_warnings()
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
