"""graphformer's SGFormer and Polynormer against PyG's, full batch on one graph, side by side.

For each dataset, model and seed, every variant (PyG's module, graphformer's) is built from
the same settings, trained with Adam on the same graph for the same number of epochs, and
evaluated after every epoch; the test accuracy reported is the one at the epoch of best
validation accuracy. The variants take turns epoch by epoch (the order alternating), each
from its own saved torch RNG state, so load from other jobs falls on all alike and a
variant's numbers do not depend on the others. The timed part of an epoch is forward, loss,
backward and optimiser step (not evaluation). Speed is reported only as ratios of these
interleaved times.

Datasets: ``cora`` (Planetoid split, from DGL's cache layout under ``--data-root``; the
folder ``cora_v2_d697a464`` is copied there from ``--shared`` when missing) and ``csbm``: a
contextual SBM made here (``--nodes`` nodes in ``--classes`` classes, average degree
``--degree`` with ``--homophily`` of the edges inside a class, class-mean features plus
Gaussian noise; 20 % / 20 % / 60 % random train/val/test nodes), symmetric, like Cora.

Variants: ``pyg``, ``graphformer`` (the paper's attention; for SGFormer Frobenius-normalised
Q/K), and for SGFormer ``graphformer-row`` (PyG's per-row normalisation, i.e. PyG's function).

Usage (needs ``pip install torch_geometric``)::

    python experiments/linear_attention/compare.py --datasets cora,csbm --seeds 0,1,2 \\
        --epochs 200 --threads 1 --out experiments/linear_attention
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import BlockConfig, Polynormer, SGFormer

import dgl
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CORA = "cora_v2_d697a464"

# The settings both sides get (PyG's argument names on the left where they differ).
SGFORMER = dict(dim=64, num_layers=1, num_heads=1, dropout=0.5, gnn_layers=2, gnn_dropout=0.5)
SGFORMER |= dict(graph_weight=0.8, lr=0.01, weight_decay=5e-4)
POLYNORMER = dict(dim=64, local_layers=3, global_layers=2, num_heads=1, beta=0.9)
POLYNORMER |= dict(in_dropout=0.15, dropout=0.5, global_dropout=0.5, lr=0.005, weight_decay=5e-4)


def require_pyg():
    try:
        import torch_geometric.nn.models as models
    except ImportError as error:
        raise SystemExit(
            "this comparison needs PyG: pip install torch_geometric (an optional peer, never a "
            f"dependency of graphformer); import failed: {error}"
        ) from error
    return models


def load_cora(data_root: Path, shared: Path) -> dgl.DGLGraph:
    from graphformer.data import CitationDataset

    if not (data_root / CORA).is_dir():
        if not (shared / CORA).is_dir():
            raise SystemExit(f"Cora not found in {data_root} nor in {shared}")
        data_root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(shared / CORA, data_root / CORA)
    return CitationDataset("Cora", root=data_root)[0]


def make_csbm(nodes: int, classes: int, degree: float, homophily: float, seed: int = 0):
    """A symmetric contextual SBM: features = class mean (unit Gaussian) + N(0, 2²) noise."""
    gen = torch.Generator().manual_seed(seed)
    label = torch.randint(0, classes, (nodes,), generator=gen)
    edges = int(nodes * degree / 2)
    src = torch.randint(0, nodes, (edges,), generator=gen)
    same = torch.rand(edges, generator=gen) < homophily
    by_class = [torch.nonzero(label == c).squeeze(1) for c in range(classes)]
    sizes = torch.tensor([len(members) for members in by_class])
    offsets = torch.cumsum(sizes, 0) - sizes
    order = torch.cat(by_class)
    pick = (torch.rand(edges, generator=gen) * sizes[label[src]]).long()
    dst = torch.where(
        same,
        order[offsets[label[src]] + pick],
        torch.randint(0, nodes, (edges,), generator=gen),
    )
    graph = dgl.to_bidirected(dgl.graph((src, dst), num_nodes=nodes))
    means = torch.randn(classes, 32, generator=gen)
    graph.ndata["feat"] = means[label] + 2.0 * torch.randn(nodes, 32, generator=gen)
    graph.ndata["label"] = label
    split = torch.rand(nodes, generator=gen)
    graph.ndata["train_mask"] = split < 0.2
    graph.ndata["val_mask"] = (split >= 0.2) & (split < 0.4)
    graph.ndata["test_mask"] = split >= 0.4
    return graph


def build(model: str, variant: str, in_dim: int, classes: int):
    """(module, forward(graph, x, edge_index) -> logits, lr, weight decay)."""
    models = require_pyg()
    if model == "sgformer":
        s = SGFORMER
        if variant == "pyg":
            net = models.SGFormer(
                in_dim,
                s["dim"],
                classes,
                trans_num_layers=s["num_layers"],
                trans_num_heads=s["num_heads"],
                trans_dropout=s["dropout"],
                gnn_num_layers=s["gnn_layers"],
                gnn_dropout=s["gnn_dropout"],
                graph_weight=s["graph_weight"],
            )
            return net, lambda g, x, ei, batch: net(x, ei, batch), s["lr"], s["weight_decay"]
        norm = "row" if variant == "graphformer-row" else "frobenius"
        block = BlockConfig(dim=s["dim"], num_heads=s["num_heads"], dropout=s["dropout"])
        net = SGFormer(
            classes,
            in_dim,
            block,
            num_layers=s["num_layers"],
            gnn_layers=s["gnn_layers"],
            gnn_dropout=s["gnn_dropout"],
            graph_weight=s["graph_weight"],
            attention_norm=norm,
            check_finite=False,
        )
        return net, lambda g, x, ei, batch: net(g, x), s["lr"], s["weight_decay"]
    s = POLYNORMER
    if variant == "pyg":
        net = models.Polynormer(
            in_dim,
            s["dim"],
            classes,
            local_layers=s["local_layers"],
            global_layers=s["global_layers"],
            in_dropout=s["in_dropout"],
            dropout=s["dropout"],
            global_dropout=s["global_dropout"],
            heads=s["num_heads"],
            beta=s["beta"],
            local_attn=True,
        )
        return net, lambda g, x, ei, batch: net(x, ei, batch), s["lr"], s["weight_decay"]
    block = BlockConfig(dim=s["dim"], num_heads=s["num_heads"], dropout=s["dropout"])
    net = Polynormer(
        classes,
        in_dim,
        block,
        num_layers=s["local_layers"],
        global_layers=s["global_layers"],
        beta=s["beta"],
        in_dropout=s["in_dropout"],
        global_dropout=s["global_dropout"],
        local_conv="gat",
        check_finite=False,
    )
    return net, lambda g, x, ei, batch: net(g, x), s["lr"], s["weight_decay"]


def set_global(net, on: bool) -> None:
    if isinstance(net, Polynormer):
        net.use_global(on)
    elif hasattr(net, "_global"):
        net._global = on


class Run:
    """One variant on one dataset and seed: its model, optimiser and RNG state."""

    def __init__(self, model, variant, graph, seed):
        torch.manual_seed(seed)
        x = graph.ndata["feat"]
        classes = int(graph.ndata["label"].max()) + 1
        self.net, self.forward, lr, wd = build(model, variant, x.shape[1], classes)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, weight_decay=wd)
        self.rng = torch.get_rng_state()
        self.variant, self.best = variant, (-1.0, 0.0, 0)
        self.times: list[float] = []
        self.curve: list[dict] = []

    def epoch(self, graph, x, ei, batch, label, masks, number: int) -> None:
        torch.set_rng_state(self.rng)
        self.net.train()
        start = time.perf_counter()
        self.optimizer.zero_grad()
        out = self.forward(graph, x, ei, batch)
        loss = F.cross_entropy(out[masks["train"]], label[masks["train"]])
        loss.backward()
        self.optimizer.step()
        self.times.append(time.perf_counter() - start)
        self.rng = torch.get_rng_state()
        self.net.eval()
        with torch.no_grad():
            pred = self.forward(graph, x, ei, batch).argmax(-1)
        acc = {k: (pred[m] == label[m]).float().mean().item() for k, m in masks.items()}
        self.curve.append({"epoch": number, "loss": loss.item(), **acc})
        if acc["val"] > self.best[0]:
            self.best = (acc["val"], acc["test"], number)


def compare(name, graph, model, seeds, epochs, local_epochs, variants):
    x, label = graph.ndata["feat"], graph.ndata["label"]
    masks = {k: graph.ndata[f"{k}_mask"].bool() for k in ("train", "val", "test")}
    src, dst = graph.edges()
    ei, batch = torch.stack([src, dst]), torch.zeros(graph.num_nodes(), dtype=torch.long)
    results = []
    for seed in seeds:
        runs = [Run(model, variant, graph, seed) for variant in variants]
        for number in range(1, epochs + 1):
            for run in runs:
                set_global(run.net, model != "polynormer" or number > local_epochs)
            order = runs if number % 2 else runs[::-1]
            for run in order:
                run.epoch(graph, x, ei, batch, label, masks, number)
        for run in runs:
            val, test, best_epoch = run.best
            results.append(
                {
                    "dataset": name,
                    "model": model,
                    "variant": run.variant,
                    "seed": seed,
                    "best_val": val,
                    "test_at_best_val": test,
                    "best_epoch": best_epoch,
                    "final_train": run.curve[-1]["train"],
                    "epoch_times": run.times,
                    "parameters": sum(p.numel() for p in run.net.parameters()),
                }
            )
            print(
                f"{name} {model} {run.variant} seed {seed}: test {test:.4f} at val {val:.4f} "
                f"(epoch {best_epoch}), median epoch {statistics.median(run.times):.4f} s",
                flush=True,
            )
    return results


def summarise(results) -> list[dict]:
    rows = []
    keys = sorted({(r["dataset"], r["model"]) for r in results})
    for dataset, model in keys:
        group = [r for r in results if (r["dataset"], r["model"]) == (dataset, model)]
        pyg = {r["seed"]: r for r in group if r["variant"] == "pyg"}
        for variant in dict.fromkeys(r["variant"] for r in group):
            mine = [r for r in group if r["variant"] == variant]
            tests = [100 * r["test_at_best_val"] for r in mine]
            ratios = []
            for r in mine:  # per epoch: this variant's time / PyG's, same seed and epoch
                theirs = pyg[r["seed"]]["epoch_times"]
                ratios += [a / b for a, b in zip(r["epoch_times"], theirs, strict=True)]
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "variant": variant,
                    "seeds": len(mine),
                    "test_mean": statistics.mean(tests),
                    "test_std": statistics.pstdev(tests),
                    "tests": tests,
                    "time_ratio_median": statistics.median(ratios),
                    "parameters": mine[0]["parameters"],
                }
            )
    return rows


def markdown(rows, meta) -> str:
    lines = [
        "| dataset | model | variant | test acc (mean ± std, %) | per seed | epoch time / PyG's "
        "(median) | parameters |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        seeds = ", ".join(f"{t:.1f}" for t in r["tests"])
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['variant']} | {r['test_mean']:.2f} ± "
            f"{r['test_std']:.2f} | {seeds} | {r['time_ratio_median']:.2f} | {r['parameters']} |"
        )
    lines.append("")
    lines.append(f"Command: `{meta['command']}`  ")
    lines.append(
        f"Machine: {meta['machine']}; torch {meta['torch']}, DGL {meta['dgl']}, PyG "
        f"{meta['pyg']}; {meta['threads']} thread(s); wall time {meta['wall_s']:.0f} s."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="cora,csbm")
    parser.add_argument("--models", default="sgformer,polynormer")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--local-epochs", type=int, default=50, help="Polynormer: local only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=20000)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--degree", type=float, default=10.0)
    parser.add_argument("--homophily", type=float, default=0.7)
    parser.add_argument("--data-root", type=Path, default=Path("/tmp/graphformer_linear/dgl"))
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data" / "dgl")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--tag", default="results")
    args = parser.parse_args(argv)
    models = require_pyg()
    torch.set_num_threads(args.threads)
    start = time.time()
    results = []

    def save() -> tuple[dict, list[dict]]:  # after every (dataset, model): nothing lost
        meta = {
            "command": "python experiments/linear_attention/compare.py " + " ".join(sys.argv[1:]),
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
            "torch": torch.__version__,
            "dgl": dgl.__version__,
            "pyg": sys.modules[models.__name__.split(".")[0]].__version__,
            "threads": args.threads,
            "wall_s": time.time() - start,
            "git": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
            ).stdout.strip(),
            "settings": {"sgformer": SGFORMER, "polynormer": POLYNORMER, **vars(args)},
        }
        meta["settings"] = json.loads(json.dumps(meta["settings"], default=str))
        rows = summarise(results)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.tag}.json").write_text(
            json.dumps({"meta": meta, "rows": rows, "runs": results}, indent=1)
        )
        (args.out / f"{args.tag}.md").write_text(markdown(rows, meta))
        return meta, rows

    for dataset in args.datasets.split(","):
        if dataset == "cora":
            graph = load_cora(args.data_root, args.shared)
        elif dataset == "csbm":
            graph = make_csbm(args.nodes, args.classes, args.degree, args.homophily)
        else:
            raise SystemExit(f"unknown dataset {dataset!r}; choose cora or csbm")
        for model in args.models.split(","):
            variants = ["pyg", "graphformer"] + (["graphformer-row"] if model == "sgformer" else [])
            seeds = [int(s) for s in args.seeds.split(",")]
            results += compare(
                dataset, graph, model, seeds, args.epochs, args.local_epochs, variants
            )
            save()
    meta, rows = save()
    print(markdown(rows, meta))
    return {"meta": meta, "rows": rows}


if __name__ == "__main__":
    main()
