"""``graphformer-eval ckpt_path=...``: test a checkpoint with the config it was trained with."""

from __future__ import annotations

from graphformer.cli import build, console, tracking, typecheck

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild data, model and task from the checkpoint's config, then test the checkpoint.

    ``+data.KEY=VALUE`` overrides one of the checkpoint's data settings (e.g. the size of
    the test split); a key the checkpoint's data config does not have is refused.
    """
    typecheck.check(cfg, "trainer", "logger")
    run = build.stored_config(build.read_checkpoint(cfg.ckpt_path), cfg.ckpt_path)
    run.data = override_data(run.data, cfg.get("data"))
    typecheck.check(run, "data")
    console.setup()
    build.seed_everything(cfg.get("seed"))
    model = build.model(run)
    datamodule = build.datamodule(run, model)
    task = build.task(run, datamodule, model)
    loggers = build.instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False)
    try:
        with build.exit_on_sigterm(trainer, "evaluation", resumable=False):
            trainer.test(task, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        results = build.metrics(trainer)
        build.report(loggers, results, {"evaluated checkpoint": cfg.ckpt_path})
    finally:
        tracking.finish()
    return results


def override_data(stored: DictConfig, overrides: DictConfig | None) -> DictConfig:
    """The checkpoint's data config with ``overrides`` merged in; unknown keys are refused."""
    if not overrides:
        return stored
    unknown = [key for key in _leaf_keys(overrides) if not _has_key(stored, key)]
    if unknown:
        settings = [key for key in _leaf_keys(stored) if not key.rpartition(".")[2].startswith("_")]
        raise ValueError(
            f"the checkpoint's data config ({stored.get('name', stored.get('_target_'))}) has no "
            f"{', '.join('data.' + key for key in unknown)}; +data.KEY=VALUE can override: "
            f"{', '.join('data.' + key for key in settings)}"
        )
    return OmegaConf.merge(stored, overrides)


def _leaf_keys(node: DictConfig, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        if isinstance(value, DictConfig):
            keys += _leaf_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def _has_key(node: DictConfig, dotted: str) -> bool:
    parent, _, leaf = dotted.rpartition(".")
    container = OmegaConf.select(node, parent) if parent else node
    return isinstance(container, DictConfig) and leaf in container


@hydra.main(version_base="1.3", config_path="pkg://graphformer.conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
