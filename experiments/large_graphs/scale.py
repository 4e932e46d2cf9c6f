"""Epoch time and peak memory of the sampled node-level path at growing graph sizes.

One run = one fresh process (so its peak RSS is its own): load (or generate once) a CSBM
graph of N nodes (mean degree 20, 64 features, 5 classes, 10 % train / 10 % val), train
one epoch of a 2-layer GNN (SAGE or GCN, width 128), or of SGFormer (its 2-layer GCN branch
beside one layer of linear global attention over the batch's subgraph) or Polynormer (2
local + 1 global layers), width 128, on node-induced subgraphs (fanouts [10, 5], 1024 seeds
per batch) through Lightning, then one whole-graph validation pass.
Prints one CSV row: model, nodes, edges, train seeds, batches, train-epoch wall and CPU s
(process time: less sensitive to other jobs on a shared machine), validation wall and CPU s,
peak RSS (GB, ru_maxrss of the process), val acc.

    python experiments/large_graphs/scale.py run --nodes 100000 --model sage
    python experiments/large_graphs/scale.py all > experiments/large_graphs/scale.csv
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import subprocess
import sys
import time

SIZES = (100_000, 300_000, 1_000_000)
MODELS = ("sage", "gcn", "sgformer", "polynormer")
HEADER = (
    "model,nodes,edges,train_seeds,batches,train_epoch_s,train_epoch_cpu_s,val_s,val_cpu_s,"
    "peak_rss_gb,val_acc"
)


def run(nodes: int, model_name: str, root: str, threads: int) -> str:
    import torch

    torch.set_num_threads(threads)
    import graphformer  # noqa: F401  (before DGL)
    from graphformer.data import ContextualSBMDataset, SampledNodeDataModule
    from graphformer.nn import GNN, BlockConfig, Polynormer, SGFormer
    from graphformer.tasks import NodeClassification

    import lightning as L

    factory = functools.partial(
        ContextualSBMDataset,
        num_nodes=nodes,
        avg_degree=20.0,
        feat_dim=64,
        homophily=0.7,
        train_fraction=0.1,
        val_fraction=0.1,
        root=root,
    )
    data = SampledNodeDataModule(factory, fanouts=[10, 5], batch_size=1024, seed=0)
    data.prepare_data()
    if model_name == "sgformer":
        block = BlockConfig(dim=128, num_heads=1, dropout=0.5)
        model = SGFormer(5, 64, block, num_layers=1, gnn_layers=2, graph_weight=0.8)
    elif model_name == "polynormer":
        block = BlockConfig(dim=128, num_heads=1, dropout=0.5)
        model = Polynormer(5, 64, block, num_layers=2, global_layers=1)
    else:
        model = GNN(5, 64, BlockConfig(dim=128, mixer=model_name, dropout=0.5), num_layers=2)
    task = NodeClassification(
        model, optimizer=functools.partial(torch.optim.Adam, lr=0.003), num_classes=5
    )
    times: dict[str, float] = {}

    class Timer(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            times["train"], times["train_cpu"] = time.perf_counter(), time.process_time()

        def on_train_epoch_end(self, trainer, module):
            times["train"] = time.perf_counter() - times["train"]
            times["train_cpu"] = time.process_time() - times["train_cpu"]

        def on_validation_epoch_start(self, trainer, module):
            times["val"], times["val_cpu"] = time.perf_counter(), time.process_time()

        def on_validation_epoch_end(self, trainer, module):
            times["val"] = time.perf_counter() - times["val"]
            times["val_cpu"] = time.process_time() - times["val_cpu"]

    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[Timer()],
    )
    trainer.fit(task, data)
    graph = data.graph
    seeds = int(graph.ndata["train_mask"].sum())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    acc = float(trainer.callback_metrics["val/acc"])
    batches = -(-seeds // 1024)
    return (
        f"{model_name},{nodes},{graph.num_edges()},{seeds},{batches},{times['train']:.2f},"
        f"{times['train_cpu']:.2f},{times['val']:.2f},{times['val_cpu']:.2f},{peak:.2f},{acc:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("run", "all"))
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--model", choices=MODELS, default="sage")
    parser.add_argument("--root", default=os.environ.get("CSBM_ROOT", "data/csbm"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args()
    if args.what == "run":
        print(run(args.nodes, args.model, args.root, args.threads), flush=True)
        return
    print(HEADER, flush=True)
    for nodes in SIZES:
        for model in args.models:
            command = [sys.executable, __file__, "run", "--nodes", str(nodes), "--model", model]
            command += ["--root", args.root, "--threads", str(args.threads)]
            result = subprocess.run(command, capture_output=True, text=True)
            rows = [line for line in result.stdout.splitlines() if line.startswith(model)]
            if result.returncode or not rows:
                print(
                    f"# {model} {nodes}: failed ({result.returncode}): "
                    f"{result.stderr.strip().splitlines()[-1:]}",
                    flush=True,
                )
            else:
                print(rows[-1], flush=True)


if __name__ == "__main__":
    main()
