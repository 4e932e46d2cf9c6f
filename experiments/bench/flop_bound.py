"""The default graph Transformer's CLUSTER epoch against its FLOP bound (issue 23).

bound = FLOPs as run ÷ this machine's GEMM rate; the row is measured epoch ÷ bound.

- **Epoch**: ``conf/model/graph_transformer.yaml``'s model (4 blocks of neighbourhood
  attention + self-loops, width 64, 4 heads, FFN 2×, GELU, pre-LayerNorm, LapPE 8, head of 2
  layers) trained for one epoch with a plain loop (forward, cross-entropy, backward, AdamW
  step, fused as ``conf/task/optimizer/adamw.yaml`` runs it) over ``GraphDataModule``'s
  CLUSTER training loader (batch 32, LapPE computed and cached before timing; the loader's
  collation is inside the epoch as in training). Median of ``--rounds`` epochs, wall and
  process-CPU seconds.
- **FLOPs as run**: every batch of the epoch once through forward + backward under
  ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, SDPA, convolutions: what it
  counts), plus by hand from the shapes the profiler records: CPU flash attention (the
  dense engine's SDPA, which FlopCounterMode does not count on CPU: forward 4·B·H·L·S·D,
  backward 10·B·H·L·S·D with the recomputed scores, padded cells included), graphformer's
  fused kernel (``graphformer.nn.core.small_attention``, what the dense engine runs at head
  width 16 on the CPU: the same count over the cells it runs, n × ⌈n/16⌉·16 per sample and
  head, from the sizes it is called with), and DGL's
  sparse kernels (``GSpMM`` / ``GSDDMM`` 2·E·d, edge softmax 5·E·H) where they run; plus
  the AdamW step (~12 FLOPs per parameter). Elementwise
  ops (GELU, LayerNorm, adds) are not counted: the bound is the GEMM-bound one.
- **GEMM rate**: ``torch.mm`` on 2048 × 2048 float32 matrices with the same threads
  (the machine's best case), measured before every epoch round (interleaved: the load
  of a shared machine falls on both), per wall second and per process-CPU second; the
  ratio is taken per round in either clock, then the median. The rate of the model's own
  GEMM shape ((N, 64) @ (64, 192), N ≈ 3,700 nodes per batch) is reported beside it.

``--profile`` adds a torch.profiler table of one epoch with each op's self time against
its own FLOP bound (its FLOPs ÷ the GEMM rate): the gap contributors.

    python experiments/bench/flop_bound.py --graphs 1000 --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
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


#: DGL's kernels, counted by hand from their shapes.
SPARSE_OPS = ("GSpMM", "GSDDMM", "EdgeSoftmax")
#: CPU flash attention (what the dense engine runs), not counted by FlopCounterMode.
SDPA = "aten::_scaled_dot_product_flash_attention_for_cpu"
#: graphformer's fused attention kernel (graphformer.nn.core.small_attention), counted from
#: the sample sizes it is called with (:func:`counting_fused`).
FUSED = "graphformer_small_attention::forward"
FUSED_BACKWARD = "graphformer_small_attention::backward"


@contextlib.contextmanager
def counting_fused(flops: dict[str, float]):
    """Count the fused kernel's FLOPs as run into ``flops`` while inside: per head, a sample
    of n nodes runs its n query rows against ⌈n/16⌉·16 key columns (no padded rows; the
    columns to the next 16), so forward 4·H·D·Σ n·⌈n/16⌉·16 (QKᵀ and PV), backward 10·…
    (QKᵀ recomputed, dP, dQ, dK, dV), as flash attention's count is made."""
    try:
        from graphformer.nn.core import small_attention
    except ImportError:  # a tree from before the kernel (experiments/bench/on_tree.py)
        yield
        return
    forward, backward = small_attention.forward, small_attention.backward

    def cells(qkv: torch.Tensor, samples) -> int:
        columns = (samples.sizes + 15) // 16 * 16
        return qkv.shape[2] * qkv.shape[3] * int((samples.sizes * columns).sum())

    def counted_forward(out, qkv, samples, *rest):
        flops[FUSED] += 4 * cells(qkv, samples)
        return forward(out, qkv, samples, *rest)

    def counted_backward(grad_qkv, grad, qkv, samples, *rest):
        flops[FUSED_BACKWARD] += 10 * cells(qkv, samples)
        return backward(grad_qkv, grad, qkv, samples, *rest)

    small_attention.forward, small_attention.backward = counted_forward, counted_backward
    try:
        yield
    finally:
        small_attention.forward, small_attention.backward = forward, backward


def _inside_itself(event) -> bool:
    """Whether a profiler event runs inside an event of the same name."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name == event.name:
            return True
        parent = parent.cpu_parent
    return False


def hand_counted_flops(events) -> dict[str, float]:
    """FLOPs FlopCounterMode does not see, from the profiler's recorded input shapes.

    - DGL ``GSpMM`` / ``GSDDMM``: 2 × the largest input's elements (E·d: a multiply and
      an add per element of the edge tensor); ``EdgeSoftmax``: 5 × (max, sub, exp, sum,
      div).
    - CPU flash attention: forward 4·B·H·L·S·D (QKᵀ and PV); backward 10·B·H·L·S·D (QKᵀ
      recomputed, then dV, dP, dQ, dK): the FLOPs as run, padded cells included.
      (graphformer's fused kernel is counted from its calls' sample sizes instead:
      :func:`counting_fused`.)

    Under ``FlopCounterMode`` (a dispatch mode) the profiler records each op twice, the
    redispatched call inside the first (``PythonDispatchMode``); only the outer one is
    counted. Until 2026-12-03 both were, which doubled the attention's FLOPs and with them
    the bound (the ratios of issue 23's second and third passes were 1.39× too low).
    """
    flops: dict[str, float] = defaultdict(float)
    for event in events:
        name, shapes = event.name, event.input_shapes
        if _inside_itself(event):
            continue
        if name == SDPA:
            (b, h, rows, d), s = shapes[0], shapes[1][2]
            flops[name] += 4 * b * h * rows * s * d
        elif name == SDPA + "_backward":
            (b, h, rows, d), s = shapes[1], shapes[2][2]
            flops[name] += 10 * b * h * rows * s * d
        elif any(op in name for op in SPARSE_OPS):
            largest = max((torch.Size(x).numel() for x in shapes if x), default=0)
            flops[name] += (5 if "EdgeSoftmax" in name else 2) * largest
    return dict(flops)


def rates(repeats: int = 10) -> tuple[float, float]:
    """(wall, CPU) FLOP rate of 2048³ float32 GEMMs: FLOPs per wall second and per
    process-CPU second (all threads together)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        a @ b
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    flops = 2 * 2048**3 * repeats
    return flops / wall, flops / cpu


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
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)  # as task/optimizer
    batches = list(loader)  # the FLOP count's batches (same shapes as the epoch's)
    step(net, optimizer, *batches[0])  # warm-up

    # FLOPs as run: matmuls counted by torch, SDPA and DGL kernels from the shapes
    counter = FlopCounterMode(display=False)
    from torch.profiler import ProfilerActivity, profile

    fused: dict[str, float] = defaultdict(float)
    with (
        profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof,
        counter,
        counting_fused(fused),
    ):
        for graph, labels in batches:
            step(net, optimizer, graph, labels)
    dense = {
        "aten::" + str(op).split(".")[1]: count
        for op, count in counter.get_flop_counts()["Global"].items()
    }
    by_hand = {**hand_counted_flops(prof.events()), **fused}
    params = sum(p.numel() for p in net.parameters())
    adamw = 12 * params * len(batches)
    total = sum(dense.values()) + sum(by_hand.values()) + adamw
    nodes = int(statistics.median(g.num_nodes() for g, _ in batches))
    model_rate = gemm_rate(nodes, 64, 192, 50)

    # Rounds: the GEMM rate, then an epoch, each round (interleaved, so load falls on both)
    rounds = []
    for round_ in range(args.rounds):
        wall_rate, cpu_rate = rates()
        wall, cpu = epoch(net, optimizer, loader)
        rounds.append(
            {
                "gemm_wall_flops": wall_rate,
                "gemm_cpu_flops": cpu_rate,
                "epoch_wall_s": wall,
                "epoch_cpu_s": cpu,
                "ratio_wall": wall / (total / wall_rate),
                "ratio_cpu": cpu / (total / cpu_rate),
            }
        )
        print(
            f"round {round_ + 1}: GEMM {wall_rate / 1e9:.1f} GFLOP/s, epoch {wall:.3f} s → "
            f"{rounds[-1]['ratio_wall']:.2f}× bound (CPU clock {rounds[-1]['ratio_cpu']:.2f}×), "
            f"load {os.getloadavg()[0]:.1f}"
        )
    rate = statistics.median(r["gemm_wall_flops"] for r in rounds)
    result = {
        "graphs": args.graphs,
        "batches": len(batches),
        "threads": args.threads,
        "flops": {"counted": dense, "by_hand": by_hand, "adamw": adamw, "total": total},
        "gemm_rate_model_shape": model_rate,
        "rounds": rounds,
        "ratio_wall": statistics.median(r["ratio_wall"] for r in rounds),
        "ratio_cpu": statistics.median(r["ratio_cpu"] for r in rounds),
        "load": os.getloadavg(),
    }
    print(
        f"FLOPs per epoch: {total / 1e9:.2f} G (FlopCounterMode {sum(dense.values()) / 1e9:.2f}, "
        f"by hand {sum(by_hand.values()) / 1e9:.2f}, AdamW {adamw / 1e9:.3f})"
    )
    for op, count in sorted({**dense, **by_hand}.items(), key=lambda item: -item[1]):
        print(f"  {op:60s} {count / 1e9:8.3f} G")
    print(
        f"GEMM rate (median of rounds) {rate / 1e9:.1f} GFLOP/s; the model's shape "
        f"(({nodes}, 64) @ (64, 192)) {model_rate / 1e9:.1f} GFLOP/s; bound {total / rate:.3f} s"
    )
    print(
        f"epoch ÷ bound, median of {args.rounds} rounds: wall {result['ratio_wall']:.2f}×, "
        f"CPU clock {result['ratio_cpu']:.2f}×"
    )

    if args.profile:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            epoch(net, optimizer, loader)
        events = prof.key_averages()
        per_op = defaultdict(float)
        for op, count in {**dense, **by_hand}.items():
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
            f"{'op':50s} {'calls':>6s} {'self s':>8s} {'bound s':>8s} {'gap s':>8s} {'share':>6s}"
        )
        for gap, own, op_bound, key, count in rows[:15]:
            print(
                f"{key[-50:]:50s} {count:6d} {own:8.3f} {op_bound:8.3f} {gap:8.3f} "
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
