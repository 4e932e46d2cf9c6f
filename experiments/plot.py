"""Results and figures for experiments/: collected runs, learning curves, an attention map.

    python experiments/plot.py collect logs/train/multiruns/<date_time> experiments/cora_gcn
        copies each job's metrics.csv to experiments/cora_gcn/logs/seed<seed>.csv and
        prints every test metric per seed and as mean ± std (population std over seeds),
        per setting (overrides other than seed: different settings are never pooled, and
        land in logs/<setting>/); an existing file is never overwritten.

    python experiments/plot.py curves experiments/cora_gcn
        reads experiments/cora_gcn/logs/*.csv (Lightning CSVLogger ``metrics.csv`` files,
        one per seed) and writes experiments/cora_gcn/curves.png: train and validation
        loss, and the validation metric, per epoch and seed.

    python experiments/plot.py attention RUN/checkpoints/last.ckpt OUT.png
        rebuilds the graph Transformer of a graphformer-train checkpoint, generates one
        CLUSTER graph, and draws the per-edge attention of the first and last attention
        blocks over it (nodes grouped by cluster).

Needs matplotlib (``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli.plot import METRICS, default_metric, draw_curves, read_epochs
from graphformer.cli.resume import read_checkpoint, stored_config
from graphformer.data import pe_transform
from graphformer.data.datasets.sbm import cluster_graph
from graphformer.nn import GraphTransformer

import hydra
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.collections import LineCollection


def collect_groups(multirun: Path, folder: Path) -> dict[tuple[str, ...], dict[str, list[float]]]:
    """Copy every job's log of a Hydra multirun into ``folder/logs`` and return each test
    metric's values in seed order, per setting (the job's overrides other than ``seed``,
    as the sweep summary groups them; overrides common to all jobs are left out).

    With one setting the logs are ``logs/seed<seed>.csv``; with several,
    ``logs/<setting>/seed<seed>.csv``. An existing file is never overwritten.
    """
    from graphformer.cli.sweep import settings

    jobs = sorted(path for path in multirun.iterdir() if (path / ".hydra").is_dir())
    if not jobs:
        raise FileNotFoundError(f"{multirun} holds no Hydra jobs (folders with .hydra/)")
    found = []
    for job in jobs:
        overrides = [
            line[2:].strip()
            for line in (job / ".hydra" / "overrides.yaml").read_text().splitlines()
            if line.startswith("- ")
        ]
        seeds = [o.split("=", 1)[1] for o in overrides if o.startswith("seed=")]
        logs = sorted(job.glob("csv/version_*/metrics.csv"))
        if not seeds or not logs:
            raise FileNotFoundError(f"{job}: needs a seed=... override and logger=csv")
        found.append((settings(overrides), seeds[0], logs[-1]))
    common = set.intersection(*(set(setting) for setting, _, _ in found))
    results: dict[tuple[str, ...], dict[str, list[float]]] = {}
    targets = []
    for setting, seed, log in found:
        key = tuple(o for o in setting if o not in common)
        subfolder = "_".join(key).replace("/", "-") if len({s for s, _, _ in found}) > 1 else ""
        target = folder / "logs" / subfolder / f"seed{seed}.csv"
        if target.exists() or target in targets:
            raise FileExistsError(
                f"{target} exists (or two jobs have the same setting and seed): collect would "
                "overwrite it; collect into a new folder, or remove it first"
            )
        targets.append(target)
        results.setdefault(key, {})
        for name, values in read_epochs(log).items():
            if name.startswith("test/"):
                results[key].setdefault(name, []).append(values[max(values)])
    for (_, _, log), target in zip(found, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)
    return results


def collect(multirun: Path, folder: Path) -> dict[str, list[float]]:
    """:func:`collect_groups` of a multirun whose jobs differ only in ``seed``: each test
    metric's values in seed order. Jobs of different settings are refused, never pooled."""
    groups = collect_groups(multirun, folder) if _one_setting(multirun) else None
    if groups is None:
        raise ValueError(
            f"the jobs of {multirun} have different settings (overrides other than seed): "
            "their test metrics are not repeats of one run; use collect_groups (the command "
            "line prints one line per setting)"
        )
    (results,) = groups.values()
    return results


def _one_setting(multirun: Path) -> bool:
    from graphformer.cli.sweep import settings

    found = set()
    for job in multirun.iterdir():
        overrides = job / ".hydra" / "overrides.yaml"
        if overrides.is_file():
            lines = [line[2:].strip() for line in overrides.read_text().splitlines()]
            found.add(settings(lines))
    return len(found) <= 1


def curves(folder: Path, metric: str | None = None) -> Path:
    """Draw ``folder/curves.png`` from ``folder/logs/*.csv``; returns its path."""
    logs = sorted((folder / "logs").glob("*.csv"))
    if not logs:
        raise FileNotFoundError(
            f"no run logs in {folder / 'logs'}: copy each run's csv/version_0/metrics.csv "
            "there as seed<seed>.csv (train with logger=csv)"
        )
    runs = {path.stem: read_epochs(path) for path in logs}
    metric = metric or default_metric(runs, folder / "logs")
    return draw_curves(runs, metric, folder.name, folder / "curves.png")


def load_model(checkpoint: Path) -> tuple[GraphTransformer, dict]:
    """The trained model of a graphformer-train checkpoint, in eval mode, and its config."""
    saved = read_checkpoint(str(checkpoint))
    config = stored_config(saved, str(checkpoint))
    model = hydra.utils.instantiate(config.model)
    if not isinstance(model, GraphTransformer):
        raise ValueError(f"{checkpoint} holds a {type(model).__name__}, not a GraphTransformer")
    state = saved["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    return model.eval(), config


def cluster_layout(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Node positions: clusters on a circle, each cluster's nodes in a disc around it."""
    positions = np.zeros((len(labels), 2))
    classes = np.unique(labels)
    for index, label in enumerate(classes):
        members = np.flatnonzero(labels == label)
        angle = 2 * math.pi * index / len(classes)
        centre = np.array([math.cos(angle), math.sin(angle)])
        radius = 0.28 * np.sqrt(rng.random(len(members)))
        theta = 2 * math.pi * rng.random(len(members))
        positions[members] = centre + radius[:, None] * np.c_[np.cos(theta), np.sin(theta)]
    return positions


def attention_map(checkpoint: Path, out: Path, seed: int = 0) -> dict[str, float]:
    """Draw the attention of one CLUSTER graph; returns the attention share that stays
    inside clusters and the share paid to the nodes carrying a cluster id, per drawn block,
    next to the shares of edges that do."""
    model, config = load_model(checkpoint)
    graph = cluster_graph(np.random.default_rng(seed))
    graph = pe_transform(config.model.get("lap_pe_k") or 0, config.model.get("rwse_k") or 0)(graph)
    looped, weights = model.attention_weights(graph, graph.ndata["feat"])
    if not weights:
        raise ValueError(f"{checkpoint}: the model has no local attention block to draw")
    src, dst = (t.numpy() for t in looped.edges())
    labels = graph.ndata["label"].numpy()
    positions = cluster_layout(labels, np.random.default_rng(seed))
    edges = src != dst
    same = labels[src] == labels[dst]
    informative = graph.ndata["feat"].numpy() > 0  # the nodes that carry their cluster id
    to_informative = informative[src]  # weights on edge src -> dst: dst attending to src
    shown = {"first": 0, "last": len(weights) - 1} if len(weights) > 1 else {"only": 0}
    figure, axes = plt.subplots(1, len(shown), figsize=(6 * len(shown), 6), squeeze=False)
    shares = {
        "edges inside clusters": float(same[edges].mean()),
        "edges from id-carrying nodes": float(to_informative[edges].mean()),
    }
    for axis, (name, block) in zip(axes[0], shown.items(), strict=True):
        alpha = weights[block].mean(dim=1).numpy()
        inside = float(alpha[edges & same].sum() / alpha[edges].sum())
        shares[f"attention inside clusters, {name} block"] = inside
        paid = float(alpha[edges & to_informative].sum() / alpha[edges].sum())
        shares[f"attention to id-carrying nodes, {name} block"] = paid
        segments = np.stack([positions[src[edges]], positions[dst[edges]]], axis=1)
        strength = alpha[edges] / alpha[edges].max()
        colors = np.zeros((len(strength), 4))
        colors[:, 3] = 0.05 + 0.9 * strength
        axis.add_collection(LineCollection(segments, colors=colors, linewidths=0.4 + 2 * strength))
        axis.scatter(*positions.T, c=labels, cmap="tab10", vmin=0, vmax=9, s=25, zorder=2)
        axis.scatter(*positions[informative].T, s=120, facecolors="none", edgecolors="k")
        edge_share = shares["edges inside clusters"]
        axis.set_title(
            f"block {block + 1} of {len(model.blocks)}: {inside:.0%} of attention stays "
            f"in-cluster ({edge_share:.0%} of edges); {paid:.0%} goes to ringed nodes "
            f"({shares['edges from id-carrying nodes']:.0%} of edges)",
            fontsize=9,
        )
        axis.set_aspect("equal")
        axis.axis("off")
    figure.suptitle(
        f"Attention (mean over heads) on a CLUSTER graph of {graph.num_nodes()} nodes; colour: "
        "cluster, ring: node carrying its cluster id",
        fontsize=10,
    )
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return shares


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    curve = commands.add_parser("curves", help="learning curves of an experiment folder")
    curve.add_argument("folder", type=Path)
    curve.add_argument("--metric", default=None, help=f"default: the first of {METRICS}")
    attention = commands.add_parser("attention", help="attention map of a CLUSTER graph")
    attention.add_argument("checkpoint", type=Path)
    attention.add_argument("out", type=Path)
    attention.add_argument("--seed", type=int, default=0, help="which generated graph")
    gather = commands.add_parser("collect", help="copy a multirun's logs, print test metrics")
    gather.add_argument("multirun", type=Path)
    gather.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "collect":
        for setting, metrics in collect_groups(args.multirun, args.folder).items():
            if setting:
                print(" ".join(setting) + ":")
            for key, values in metrics.items():
                each = ", ".join(f"{v:.4f}" for v in values)
                mean, std = statistics.mean(values), statistics.pstdev(values)
                print(f"  {key}: {mean:.4f} ± {std:.4f} over {len(values)} runs ({each})")
    elif args.command == "curves":
        print(curves(args.folder, args.metric))
    else:
        for name, share in attention_map(args.checkpoint, args.out, args.seed).items():
            print(f"{name}: {share:.3f}")
        print(args.out)


if __name__ == "__main__":
    main()
