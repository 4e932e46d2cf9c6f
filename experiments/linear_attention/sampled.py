"""graphformer's SGFormer and Polynormer against PyG's on sampled subgraphs of one CSBM graph.

For each model and seed, both sides (PyG's ``SGFormer`` / ``Polynormer``, graphformer's) are
built from the same settings (``compare.py``'s) and trained with Adam on the *same*
mini-batches: every epoch, the training seeds are shuffled and cut into batches, and each
batch is the node-induced subgraph of the nodes DGL's neighbour sampler reaches
(graphformer's ``SeedSubgraphSampler``, fan-outs ``--fanouts``, as
``SampledNodeDataModule`` trains), drawn once and given to both sides: graphformer takes
the ``DGLGraph``, PyG its ``edge_index`` (``pyg-lib``, which PyG's ``NeighborLoader``
needs, is not installable here, so both sides share DGL's draws). Loss on the batch's
seeds only. The two sides take turns batch by batch (order alternating by epoch), each
from its own saved torch RNG state. After every epoch both are evaluated on the whole
graph (eval mode); the test accuracy reported is the one at the epoch of best validation
accuracy. Timed: each training step (forward, loss, backward, Adam step), as CPU time of
the process (``time.process_time``; one thread each) and wall time; reported as ratios of
the interleaved sums per epoch.

Usage (needs ``pip install torch_geometric``)::

    OMP_NUM_THREADS=1 python experiments/linear_attention/sampled.py --nodes 100000 \\
        --seeds 0,1,2 --epochs 8 --out experiments/linear_attention --tag sampled_csbm100k
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.bench import environment
from graphformer.data import ContextualSBMDataset
from graphformer.data.field_cache import sample_graph
from graphformer.data.sampling import SeedSubgraphSampler

import dgl
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import POLYNORMER, SGFORMER, build, set_global

HERE = Path(__file__).resolve().parent


def batches(graph, seeds, batch_size, sampler, rng):
    """One epoch's batches: (subgraph, features, edge_index, zeros batch vector, labels,
    seed mask), the seeds shuffled by ``rng`` and each batch's subgraph drawn by ``sampler``."""
    order = seeds[torch.from_numpy(rng.permutation(len(seeds)))]
    out = []
    for start in range(0, len(order), batch_size):
        subgraph, labels = sampler.sample(graph, order[start : start + batch_size])
        src, dst = subgraph.edges()
        feats = subgraph.ndata["feat"]
        zeros = torch.zeros(subgraph.num_nodes(), dtype=torch.long)
        out.append(
            (subgraph, feats, torch.stack([src, dst]), zeros, labels, subgraph.ndata["train_mask"])
        )
    return out


class Side:
    """One side (PyG or graphformer) for one seed: model, optimiser, RNG state, times."""

    def __init__(self, model: str, variant: str, in_dim: int, classes: int, seed: int):
        torch.manual_seed(seed)
        self.net, self.forward, lr, wd = build(model, variant, in_dim, classes)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, weight_decay=wd)
        self.rng, self.variant = torch.get_rng_state(), variant
        self.cpu: list[float] = []
        self.wall: list[float] = []
        self.best = (-1.0, 0.0, 0)
        self.curve: list[dict] = []

    def step(self, batch) -> float:
        subgraph, x, ei, zeros, labels, mask = batch
        torch.set_rng_state(self.rng)
        self.net.train()
        cpu, wall = time.process_time(), time.perf_counter()
        self.optimizer.zero_grad()
        out = self.forward(subgraph, x, ei, zeros)
        loss = F.cross_entropy(out[mask], labels[mask])
        loss.backward()
        self.optimizer.step()
        self.cpu[-1] += time.process_time() - cpu
        self.wall[-1] += time.perf_counter() - wall
        self.rng = torch.get_rng_state()
        return loss.item()

    def evaluate(self, graph, x, ei, zeros, label, masks, epoch: int) -> None:
        self.net.eval()
        with torch.no_grad():
            pred = self.forward(graph, x, ei, zeros).argmax(-1)
        acc = {k: (pred[m] == label[m]).float().mean().item() for k, m in masks.items()}
        self.curve.append({"epoch": epoch, **acc})
        if acc["val"] > self.best[0]:
            self.best = (acc["val"], acc["test"], epoch)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="sgformer,polynormer")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--local-epochs", type=int, default=2, help="Polynormer: local only")
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--degree", type=float, default=10.0)
    parser.add_argument("--fanouts", default="5,5")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--train-fraction", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", default="/tmp/graphformer_sampled/csbm")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--tag", default="sampled_csbm")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start_all = time.time()
    dataset = ContextualSBMDataset(
        num_nodes=args.nodes,
        num_classes=5,
        avg_degree=args.degree,
        homophily=0.7,
        feat_dim=32,
        signal=1.0,
        train_fraction=args.train_fraction,
        val_fraction=0.1,
        root=args.root,
    )
    graph = sample_graph(dataset[0])
    x, label = graph.ndata["feat"], graph.ndata["label"]
    masks = {k: graph.ndata[f"{k}_mask"].bool() for k in ("train", "val", "test")}
    src, dst = graph.edges()
    ei, zeros = torch.stack([src, dst]), torch.zeros(graph.num_nodes(), dtype=torch.long)
    seeds = torch.nonzero(masks["train"], as_tuple=True)[0]
    fanouts = [int(f) for f in args.fanouts.split(",")]
    sampler = SeedSubgraphSampler(fanouts, "train")
    results = []
    for model in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            dgl.seed(seed)
            rng = np.random.default_rng(seed)
            sides = [Side(model, v, x.shape[1], 5, seed) for v in ("pyg", "graphformer")]
            for epoch in range(1, args.epochs + 1):
                for side in sides:
                    set_global(side.net, model != "polynormer" or epoch > args.local_epochs)
                    side.cpu.append(0.0)
                    side.wall.append(0.0)
                epoch_batches = batches(graph, seeds, args.batch_size, sampler, rng)
                for index, batch in enumerate(epoch_batches):
                    order = sides if (epoch + index) % 2 else sides[::-1]
                    for side in order:
                        side.step(batch)
                for side in sides:
                    side.evaluate(graph, x, ei, zeros, label, masks, epoch)
                print(
                    f"{model} seed {seed} epoch {epoch}: "
                    + ", ".join(
                        f"{s.variant} val {s.curve[-1]['val']:.4f} cpu {s.cpu[-1]:.2f} s"
                        for s in sides
                    ),
                    flush=True,
                )
            for side in sides:
                val, test, best_epoch = side.best
                results.append(
                    {
                        "model": model,
                        "variant": side.variant,
                        "seed": seed,
                        "best_val": val,
                        "test_at_best_val": test,
                        "best_epoch": best_epoch,
                        "epoch_cpu_s": side.cpu,
                        "epoch_wall_s": side.wall,
                        "curve": side.curve,
                        "parameters": sum(p.numel() for p in side.net.parameters()),
                    }
                )
            save(args, results, graph, fanouts, start_all)


def save(args, results, graph, fanouts, start_all) -> None:
    rows = []
    for model in dict.fromkeys(r["model"] for r in results):
        pyg = {r["seed"]: r for r in results if r["model"] == model and r["variant"] == "pyg"}
        for variant in ("pyg", "graphformer"):
            mine = [r for r in results if r["model"] == model and r["variant"] == variant]
            tests = [100 * r["test_at_best_val"] for r in mine]
            cpu = [
                a / b
                for r in mine
                for a, b in zip(r["epoch_cpu_s"], pyg[r["seed"]]["epoch_cpu_s"], strict=True)
            ]
            wall = [
                a / b
                for r in mine
                for a, b in zip(r["epoch_wall_s"], pyg[r["seed"]]["epoch_wall_s"], strict=True)
            ]
            rows.append(
                {
                    "model": model,
                    "variant": variant,
                    "seeds": len(mine),
                    "test_mean": statistics.mean(tests),
                    "test_std": statistics.pstdev(tests),
                    "tests": tests,
                    "cpu_ratio_median": statistics.median(cpu),
                    "wall_ratio_median": statistics.median(wall),
                    "pyg_epoch_cpu_median": statistics.median(
                        t for r in pyg.values() for t in r["epoch_cpu_s"]
                    ),
                    "parameters": mine[0]["parameters"],
                }
            )
    meta = {
        "command": "python experiments/linear_attention/sampled.py " + " ".join(sys.argv[1:]),
        "graph": {"nodes": graph.num_nodes(), "edges": graph.num_edges()},
        "fanouts": fanouts,
        "settings": {"sgformer": SGFORMER, "polynormer": POLYNORMER, **vars(args)},
        "wall_s": time.time() - start_all,
        "environment": environment(HERE.parents[1]),
    }
    meta = json.loads(json.dumps(meta, default=str))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.tag}.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "runs": results}, indent=1)
    )
    lines = [
        "| model | variant | test acc (mean ± std, %) | per seed | epoch CPU time / PyG's "
        "(median) | epoch wall / PyG's (median) | parameters |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_seed = ", ".join(f"{t:.2f}" for t in r["tests"])
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['test_mean']:.2f} ± {r['test_std']:.2f} | "
            f"{per_seed} | {r['cpu_ratio_median']:.2f} | {r['wall_ratio_median']:.2f} | "
            f"{r['parameters']} |"
        )
    lines += [
        "",
        f"Graph: {graph.num_nodes()} nodes, {graph.num_edges()} directed edges; fan-outs "
        f"{fanouts}, {args.batch_size} seeds per batch; {args.epochs} epochs; "
        f"{args.threads} thread(s); wall {meta['wall_s']:.0f} s.  ",
        f"Command: `{meta['command']}`",
    ]
    (args.out / f"{args.tag}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
