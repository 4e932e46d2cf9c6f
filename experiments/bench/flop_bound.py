"""The default graph Transformer's CLUSTER epoch against its FLOP bound (issue 23).

bound = FLOPs as run ÷ this machine's GEMM rate; the row is measured epoch ÷ bound.

- **Epoch**: ``conf/model/graph_transformer.yaml``'s model (4 blocks of neighbourhood
  attention + self-loops, width 64, 4 heads, FFN 2×, GELU, pre-LayerNorm, LapPE 8, head
  of 2 layers) trained for one epoch with a plain loop (forward, cross-entropy, backward,
  AdamW step) over ``GraphDataModule``'s CLUSTER training loader (batch 32, LapPE computed
  and cached before timing; the loader's collation is inside the epoch as in training).
  Median of ``--rounds`` epochs, wall and process-CPU seconds.
- **FLOPs as run**: every batch of the epoch once through forward + backward under
  ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, SDPA, convolutions: what it
  counts), plus DGL's sparse kernels by hand from their shapes as the profiler records
  them (``GSpMM`` / ``GSDDMM``: 2·E·d for a multiply-accumulate form, E·d for a copy
  form; edge softmax ~5·E·H), plus the AdamW step (~12 FLOPs per parameter). Elementwise
  ops (GELU, LayerNorm, adds) are not counted: the bound is the GEMM-bound one.
- **GEMM rate**: the median rate of ``torch.mm`` on 2048 × 2048 float32 matrices with
  the same threads (the machine's best case), and, reported beside it, the rate of the
  model's own GEMM shape ((N, 64) @ (64, 192), N ≈ 3,700 nodes per batch).

``--profile`` adds a torch.profiler table of one epoch with each op's self time against
its own FLOP bound (its FLOPs ÷ the GEMM rate): the gap contributors.

    python experiments/bench/flop_bound.py --graphs 1000 --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
from collections import defaultdict

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import GraphDataModule, SBMDataset
from graphformer.nn import BlockConfig, GraphTransformer

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


def gemm_rate(m: int, k: int, n: int, repeats: int = 20) -> float:
    """FLOP/s of ``(m, k) @ (k, n)`` float32, median of ``repeats`` after warm-up."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * m * k * n / statistics.median(times)


def model() -> GraphTransformer:
    torch.manual_seed(0)
    block = BlockConfig()  # the defaults are conf/model/graph_transformer.yaml's block
    return GraphTransformer(6, block, 4, num_categories=7, lap_pe_k=8, head_layers=2)


def step(net, optimizer, graph, labels) -> None:
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(net(graph, graph.ndata["feat"]), labels).backward()
    optimizer.step()


def epoch(net, optimizer, loader) -> tuple[float, float]:
    net.train()
    wall, cpu = time.perf_counter(), time.process_time()
    for graph, labels in loader:
        step(net, optimizer, graph, labels)
    return time.perf_counter() - wall, time.process_time() - cpu


#: DGL kernels' FLOPs per (edge × feature) by the profiler's op name: multiply-accumulate
#: forms 2, copies 1 (a reduce of copied data still adds: 1).
SPARSE_OPS = ("GSpMM", "GSDDMM", "EdgeSoftmax")


def sparse_flops(events) -> dict[str, float]:
    """FLOPs of DGL's kernels from the profiler's recorded input shapes: the largest
    input's element count (E·d or N·d) × 2 for GSpMM / GSDDMM (a multiply and an add per
    element of the edge tensor), × 5 for EdgeSoftmax (max, sub, exp, sum, div)."""
    flops: dict[str, float] = defaultdict(float)
    for event in events:
        name = event.name
        if not any(op in name for op in SPARSE_OPS):
            continue
        sizes = [s for s in event.input_shapes if s]
        largest = max((torch.Size(s).numel() for s in sizes), default=0)
        flops[name] += (5 if "EdgeSoftmax" in name else 2) * largest
    return dict(flops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=1000, help="CLUSTER training graphs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--root", default=os.environ.get("GRAPHFORMER_BENCH_ROOT", "/tmp/gf_bench"))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = GraphDataModule(
        functools.partial(SBMDataset, name="CLUSTER", seed=0, root=args.root),
        batch_size=32,
        lap_pe_k=8,
        train_graphs=args.graphs,
        val_graphs=32,
        test_graphs=32,
        seed=0,
    )
    data.setup("fit")
    loader = data.train_dataloader()
    net = model()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    batches = list(loader)  # the FLOP count's batches (same shapes as the epoch's)
    step(net, optimizer, *batches[0])  # warm-up

    # FLOPs as run: dense ones counted by torch, sparse ones from the profiler's shapes
    counter = FlopCounterMode(display=False)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof, counter:
        for graph, labels in batches:
            step(net, optimizer, graph, labels)
    dense = {str(op): count for op, count in counter.get_flop_counts()["Global"].items()}
    sparse = sparse_flops(prof.events())
    params = sum(p.numel() for p in net.parameters())
    adamw = 12 * params * len(batches)
    total = sum(dense.values()) + sum(sparse.values()) + adamw

    rate = statistics.median(gemm_rate(2048, 2048, 2048, 10) for _ in range(3))
    nodes = int(statistics.median(g.num_nodes() for g, _ in batches))
    model_rate = gemm_rate(nodes, 64, 192, 50)
    bound = total / rate

    walls, cpus = [], []
    for round_ in range(args.rounds):
        wall, cpu = epoch(net, optimizer, loader)
        walls.append(wall), cpus.append(cpu)
        print(
            f"round {round_ + 1}: wall {wall:.3f} s, cpu {cpu:.3f} s, load {os.getloadavg()[0]:.1f}"
        )
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    # CPU seconds of 2 threads fully busy are 2 × wall: the comparable clock is cpu / threads
    cpu_per_thread = cpu / args.threads
    result = {
        "graphs": args.graphs,
        "batches": len(batches),
        "threads": args.threads,
        "flops": {"dense": dense, "sparse": sparse, "adamw": adamw, "total": total},
        "gemm_rate_2048": rate,
        "gemm_rate_model_shape": model_rate,
        "bound_s": bound,
        "epoch_wall_s": walls,
        "epoch_cpu_s": cpus,
        "ratio_wall": wall / bound,
        "ratio_cpu_per_thread": cpu_per_thread / bound,
        "ratio_wall_model_shape_rate": wall / (total / model_rate),
        "load": os.getloadavg(),
    }
    print(
        f"FLOPs per epoch: {total / 1e9:.2f} G (dense {sum(dense.values()) / 1e9:.2f}, "
        f"sparse {sum(sparse.values()) / 1e9:.3f}, AdamW {adamw / 1e9:.3f})"
    )
    for op, count in sorted(dense.items(), key=lambda item: -item[1]):
        print(f"  {op:50s} {count / 1e9:8.3f} G")
    for op, count in sorted(sparse.items(), key=lambda item: -item[1]):
        print(f"  {op:50s} {count / 1e9:8.3f} G")
    print(
        f"GEMM rate: {rate / 1e9:.1f} GFLOP/s (2048³), {model_rate / 1e9:.1f} GFLOP/s "
        f"(({nodes}, 64) @ (64, 192)); bound {bound:.3f} s"
    )
    print(
        f"epoch: wall {wall:.3f} s → {wall / bound:.2f}× bound; CPU/thread "
        f"{cpu_per_thread:.3f} s → {cpu_per_thread / bound:.2f}× bound"
    )

    if args.profile:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            epoch(net, optimizer, loader)
        events = prof.key_averages()
        per_op = defaultdict(float)
        for op, count in dense.items():
            per_op["aten::" + op.split(".")[1]] += count
        for op, count in sparse.items():
            per_op[op] += count
        total_self = sum(e.self_cpu_time_total for e in events) / 1e6
        rows = []
        for e in events:
            own = e.self_cpu_time_total / 1e6
            flops = per_op.get(e.key, 0.0) / len(batches) * len(list(loader))
            rows.append((own - flops / rate, own, flops / rate, e.key, e.count))
        rows.sort(reverse=True)
        print(f"self CPU total {total_self:.3f} s; top gap contributors (self time − own bound):")
        print(
            f"{'op':40s} {'calls':>6s} {'self s':>8s} {'bound s':>8s} {'gap s':>8s} {'share':>6s}"
        )
        for gap, own, op_bound, key, count in rows[:15]:
            print(
                f"{key[:40]:40s} {count:6d} {own:8.3f} {op_bound:8.3f} {gap:8.3f} "
                f"{own / total_self:6.1%}"
            )
        result["profile"] = [
            {"op": key, "calls": count, "self_s": own, "bound_s": b}
            for _, own, b, key, count in rows[:25]
        ]
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=1)


if __name__ == "__main__":
    main()
