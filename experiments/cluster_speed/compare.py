"""One CLUSTER epoch of the default model: this commit, an older commit and PyG, side by side.

The driver generates the data once (``graphformer.data.datasets.sbm.generate``, 1,000 CLUSTER
training graphs, LapPE k = 8 from ``graphformer.data.features.encodings.lap_pe_field``) and
saves it; every model then trains on exactly those graphs, in the same batches (32
graphs, one fixed shuffled order), in its own subprocess, one epoch per run:

- ``head``: graphformer's default model (``conf/model/graph_transformer.yaml``: 4 blocks
  of sparse attention over neighbours + self-loops, width 64, 4 heads, pre-norm
  LayerNorm, FFN ×2 GELU, LapPE) from this checkout, ``engine=auto``;
- ``head-dgl``: the same, pinned to ``engine=dgl`` (what ``auto`` picked before the dense
  engine ran sparse attention);
- ``base``: the same model from ``--base`` (a commit, exported with ``git archive``);
- ``pyg``: the equivalent PyG model: the same embeddings, blocks of ``TransformerConv``
  (4 heads × 16, no root weight, self-loops added) + an output projection, the same norms,
  FFN and head.

Each run is a plain loop (forward, cross-entropy, backward, AdamW step) on 2 CPU threads,
timed over the whole epoch after one warm-up batch. Models take turns round by round, so
load from other jobs falls on all alike; the table gives each model's median over rounds
and its ratio to ``head``.

    python experiments/cluster_speed/compare.py --base f05950f --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODELS = ("head", "head-dgl", "base", "pyg")


def make_data(path: Path, graphs: int) -> None:
    import graphformer  # noqa: F401  (before DGL)
    from graphformer.data.datasets.sbm import generate
    from graphformer.data.features.encodings import lap_pe_field
    from graphformer.data.field_cache import compute_field

    import dgl

    data = generate("CLUSTER", "train", graphs, seed=0)
    pe = compute_field(lap_pe_field(8), data)["lap_pe_k8"].split([g.num_nodes() for g in data])
    for graph, rows in zip(data, pe, strict=True):
        graph.ndata["lap_pe"] = rows
    dgl.save_graphs(str(path), data)


def graphformer_model(engine: str):
    from graphformer.nn import BlockConfig, GraphTransformer

    settings = {"num_layers": 4, "num_categories": 7, "lap_pe_k": 8}
    return GraphTransformer(6, BlockConfig(dim=64, engine=engine), **settings)


def pyg_model():
    """The default model with PyG's TransformerConv as the attention."""
    import torch
    from torch import nn
    from torch_geometric.nn import TransformerConv

    class Block(nn.Module):
        def __init__(self, dim: int = 64, heads: int = 4) -> None:
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.attention = TransformerConv(dim, dim // heads, heads=heads, root_weight=False)
            self.out = nn.Linear(dim, dim)
            self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

        def forward(self, x, edge_index):
            x = x + self.out(self.attention(self.norm1(x), edge_index))
            return x + self.ffn(self.norm2(x))

    class Model(nn.Module):
        def __init__(self, dim: int = 64) -> None:
            super().__init__()
            self.embed, self.pe = nn.Embedding(7, dim), nn.Linear(8, dim)
            self.blocks = nn.ModuleList(Block(dim) for _ in range(4))
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 6))

        def forward(self, feat, lap_pe, edge_index):
            x = self.embed(feat) + self.pe(lap_pe)
            for block in self.blocks:
                x = block(x, edge_index)
            return self.head(self.norm(x))

    torch.manual_seed(0)
    return Model()


def train_epoch(model_name: str, data: Path, batch_size: int, threads: int) -> dict:
    import graphformer  # noqa: F401  (before DGL)

    import dgl
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    graphs, _ = dgl.load_graphs(str(data))
    order = torch.randperm(len(graphs), generator=torch.Generator().manual_seed(0)).tolist()
    batches = [
        dgl.batch([graphs[i] for i in order[start : start + batch_size]])
        for start in range(0, len(graphs), batch_size)
    ]
    torch.manual_seed(0)
    if model_name == "pyg":
        model = pyg_model()
        inputs = []
        for batch in batches:
            looped = dgl.add_self_loop(dgl.remove_self_loop(batch))
            edge_index = torch.stack(looped.edges())
            inputs.append((batch.ndata["feat"], batch.ndata["lap_pe"], edge_index))
        call = lambda index: model(*inputs[index])  # noqa: E731
    else:
        model = graphformer_model("dgl" if model_name == "head-dgl" else "auto")
        call = lambda index: model(batches[index], batches[index].ndata["feat"])  # noqa: E731
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(index: int) -> float:
        loss = F.cross_entropy(call(index), batches[index].ndata["label"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    step(0)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    losses = [step(index) for index in range(len(batches))]
    seconds = time.perf_counter() - start
    return {
        "model": model_name,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "graphs_per_second": len(graphs) / seconds,
        "last_loss": losses[-1],
    }


def run_worker(model: str, data: Path, source: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, __file__, "--worker", model, "--data", str(data)]
    command += ["--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=source)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="f05950f", help="older commit to compare (f05950f)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"subset of {MODELS}")
    parser.add_argument("--rounds", type=int, default=3, help="runs per model (3)")
    parser.add_argument("--graphs", type=int, default=1000, help="training graphs (1000)")
    parser.add_argument("--batch-size", type=int, default=32, help="graphs per batch (32)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(train_epoch(args.worker, args.data, args.batch_size, args.threads)))
        return
    models = args.models.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "cluster.bin"
        make_data(data, args.graphs)
        base = Path(tmp) / "base"
        if "base" in models:
            base.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", args.base], check=True, capture_output=True
            )
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        runs: dict[str, list[dict]] = {model: [] for model in models}
        for round_index in range(args.rounds):
            turn = models if round_index % 2 == 0 else models[::-1]
            for model in turn:
                source = base if model == "base" else REPO
                result = run_worker(model, data, source, args)
                runs[model].append(result)
                print(f"round {round_index}: {model:9s} {result['seconds']:7.2f} s", flush=True)
    head = (
        statistics.median(run["seconds"] for run in runs.get("head", []))
        if "head" in runs
        else None
    )
    print(f"\n{'model':10s} {'median s':>9s} {'graphs/s':>9s} {'× head':>7s}  runs (s)")
    for model, results in runs.items():
        median = statistics.median(run["seconds"] for run in results)
        ratio = f"{median / head:7.2f}" if head else "      -"
        times = ", ".join(f"{run['seconds']:.2f}" for run in results)
        print(f"{model:10s} {median:9.2f} {args.graphs / median:9.1f} {ratio}  {times}")
    if args.out:
        args.out.write_text(
            json.dumps({"args": {**vars(args), "out": str(args.out)}, "runs": runs}, indent=1)
        )


if __name__ == "__main__":
    main()
