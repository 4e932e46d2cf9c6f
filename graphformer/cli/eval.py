"""``graphformer-eval ckpt_path=...``: test a checkpoint with the config it was trained with.

Importing this module is cheap (Hydra and OmegaConf only); :func:`evaluate` imports the rest.
"""

from __future__ import annotations

from graphformer.cli import checks, resolvers, typecheck  # noqa: F401  (registers resolvers)

import hydra
from omegaconf import DictConfig, OmegaConf


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild data, model and task from the checkpoint's config, then test the checkpoint.

    ``+data.KEY=VALUE`` overrides one of the checkpoint's data settings (e.g. the size of
    the test split); a key the checkpoint's data config does not have is refused, and so
    are ``+model.*`` / ``+task.*`` overrides (they cannot change a trained checkpoint).
    """
    checks.check_overrides(cfg)
    refuse_model_overrides(cfg)
    typecheck.check(cfg, "trainer", "logger")
    from graphformer.cli import build, console, report, results, resume, seeding, signals, tracking

    run = resume.stored_config(resume.read_checkpoint(cfg.ckpt_path), cfg.ckpt_path)
    run.data = override_data(run.data, cfg.get("data"))
    typecheck.check(run, "data")
    console.setup(evaluation=True)
    seeding.seed_everything(cfg.get("seed"))
    model = build.model(run)
    datamodule = build.datamodule(run, model)
    task = build.task(run, datamodule, model)
    loggers = build.instantiate_group(cfg.get("logger"))
    # No checkpointing: nothing is trained (and Lightning's default ModelCheckpoint would warn
    # that its folder differs from the training run's).
    trainer = hydra.utils.instantiate(
        cfg.trainer, logger=loggers or False, enable_checkpointing=False
    )
    try:
        with signals.exit_on_sigterm(trainer, "evaluation", resumable=False):
            trainer.test(task, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        tested = results.metrics(trainer)
        test = {key: value for key, value in tested.items() if key.startswith("test/")}
        outcome = results.RunResults(test=test)
        report.report(loggers, outcome, {"evaluated checkpoint": cfg.ckpt_path})
    finally:
        tracking.finish()
    return tested


def refuse_model_overrides(cfg: DictConfig) -> None:
    """Refuse ``+model.*`` / ``+task.*`` overrides: the checkpoint is tested with the model
    and task it was trained with, so they would be ignored (exit 0, the checkpoint's own
    metrics)."""
    for group in ("model", "task"):
        node = cfg.get(group)
        if node:
            keys = (
                [f"{group}.{key}" for key in _leaf_keys(node)]
                if isinstance(node, DictConfig)
                else [group]
            )
            raise ValueError(
                f"graphformer-eval tests the checkpoint with the {group} it was trained with; "
                f"{', '.join(keys)} cannot change the model or task of a trained checkpoint "
                f"and would be ignored. Drop the override (only +data.KEY=VALUE applies at "
                f"evaluation), or train a new run with {keys[0]}=..."
            )


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
