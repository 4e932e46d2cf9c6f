"""``graphformer-bench``: forward + backward times and peak memory of our layers against
their baselines.

Every case runs in this one process on one device, after warm-up, as the median of
``--repeats`` runs. Ratios are against the case's baseline (first row of its group).
Peak memory is the extra memory one forward + backward takes above what was allocated
before it: ``torch.cuda.max_memory_allocated`` on CUDA; on a Linux CPU, the resident-set
high-water mark (reset through ``/proc/self/clear_refs``, after ``malloc_trim``), which
also counts allocator slack, so compare it only between rows of one run.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import add_self_loops, complete_graph, to_device
from graphformer.nn import BlockConfig, GATConv, GCNConv, GraphTransformer, MultiHeadAttention

import dgl
import dgl.function as fn
import torch
import torch.nn.functional as F
from dgl.nn import GATConv as DGLGATConv
from dgl.nn import GraphConv
from dgl.nn.functional import edge_softmax


def git(repo: str | os.PathLike, *args: str) -> str:
    """``git <args>`` in ``repo``, stripped; ``'unknown'`` where git or the repository is
    missing."""
    try:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment(repo: str | os.PathLike) -> dict:
    """What a measurement ran on, for the logs of experiments/ scripts: library versions
    (torch_geometric None when absent), Python, CPU model and count, torch threads, the
    commit of the checkout ``repo`` and whether its ``graphformer/`` had uncommitted
    changes, and the load average when it started (the machines are shared)."""
    versions = {"torch": torch.__version__, "dgl": dgl.__version__}
    try:
        import torch_geometric

        versions["torch_geometric"] = torch_geometric.__version__
    except ImportError:
        versions["torch_geometric"] = None
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as file:
            names = [line.split(":", 1)[1].strip() for line in file if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        **versions,
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "commit": git(repo, "rev-parse", "HEAD"),
        "dirty": bool(git(repo, "status", "--porcelain", "--", "graphformer")),
        "loadavg_start": os.getloadavg(),
    }


def median_seconds(step: Callable[[], None], repeats: int, warmup: int, device: str) -> float:
    """Median wall time of ``step`` (synchronised on CUDA)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_extra_bytes(step: Callable[[], None], device: str) -> int | None:
    """Extra memory at the peak of one ``step`` (None where it cannot be measured)."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    if device != "cpu" or not sys.platform.startswith("linux"):
        return None
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back, so it is re-counted
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset the peak RSS (VmHWM) to the current RSS
        base = _status_bytes("VmRSS:")
        step()
        return _status_bytes("VmHWM:") - base
    except OSError:
        return None


def forward_backward(module: Callable, *inputs: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        module(*inputs).sum().backward()

    return step


class BuiltinsAttention(torch.nn.Module):
    """The minimal composition of DGL builtins our layer must not be slower than."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.qkv, self.out = (
            heads,
            torch.nn.Linear(dim, 3 * dim),
            torch.nn.Linear(dim, dim),
        )

    def forward(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).view(len(x), 3, self.heads, -1).unbind(1)
        with graph.local_scope():
            graph.ndata.update(q=q * q.shape[-1] ** -0.5, k=k, v=v)
            graph.apply_edges(fn.u_dot_v("k", "q", "s"))
            graph.edata["a"] = edge_softmax(graph, graph.edata["s"])
            graph.update_all(fn.u_mul_e("v", "a", "m"), fn.sum("m", "o"))
            return self.out(graph.ndata["o"].reshape(len(x), -1))


#: Case kinds: ``dgl`` needs DGL on the device; ``fallback`` forces the torch engine.
DGL, OURS, FALLBACK = "dgl", "ours", "fallback"


def sparse_cases(args, device: str, graph_device: str) -> list[dict]:
    dim = args.heads * args.head_dim
    graph = dgl.rand_graph(args.nodes, args.edges).to(graph_device)
    x = torch.randn(args.nodes, dim, device=device, requires_grad=True)
    cases = [
        (DGL, "DGL builtins composition", BuiltinsAttention(dim, args.heads)),
        (OURS, "graphformer MultiHeadAttention", MultiHeadAttention(dim, args.heads)),
        (
            FALLBACK,
            "graphformer, torch fallback engine",
            MultiHeadAttention(dim, args.heads, engine="torch"),
        ),
        (DGL, "DGL GATConv", DGLGATConv(dim, args.head_dim, args.heads, allow_zero_in_degree=True)),
        (OURS, "graphformer GATConv", GATConv(dim, dim, args.heads)),
    ]
    return [
        {
            "group": "sparse attention",
            "case": name,
            "kind": kind,
            "fn": forward_backward(m.to(device), graph, x),
        }
        for kind, name, m in cases
    ]


def gcn_cases(args, device: str, graph_device: str) -> list[dict]:
    graph = add_self_loops(dgl.rand_graph(args.nodes, args.edges)).to(graph_device)
    x = torch.randn(args.nodes, args.gcn_dim, device=device, requires_grad=True)
    width = args.gcn_dim
    cases = [
        (DGL, "DGL GraphConv", GraphConv(width, width, allow_zero_in_degree=True)),
        (OURS, "graphformer GCNConv", GCNConv(width, width, add_self_loops=False)),
        (
            FALLBACK,
            "graphformer GCNConv, torch fallback",
            GCNConv(width, width, add_self_loops=False, engine="torch"),
        ),
    ]
    return [
        {"group": "GCN", "case": name, "kind": kind, "fn": forward_backward(m.to(device), graph, x)}
        for kind, name, m in cases
    ]


def complete_cases(
    args, device: str, graph_device: str, sizes: list[int], label: str
) -> list[dict]:
    dim, heads = args.heads * args.head_dim, args.heads
    attention = MultiHeadAttention(dim, heads).to(device)
    dgl_attention = MultiHeadAttention(dim, heads, engine="dgl").to(device)
    graph = complete_graph(sizes, device=graph_device)
    x = torch.randn(sum(sizes), dim, device=device, requires_grad=True)
    padded = torch.randn(len(sizes), max(sizes), dim, device=device, requires_grad=True)
    qkv, out = torch.nn.Linear(dim, 3 * dim).to(device), torch.nn.Linear(dim, dim).to(device)

    def raw_sdpa() -> None:
        """The same four projections around SDPA on already-padded tensors, no key mask."""
        q, k, v = qkv(padded).view(len(sizes), -1, 3, heads, args.head_dim).unbind(2)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        out(o.transpose(1, 2).reshape(len(sizes), -1, dim)).sum().backward()

    group = f"complete graph {label}"
    cases = [
        (OURS, "raw SDPA on padded tensors", raw_sdpa),
        (OURS, "graphformer, dense engine", forward_backward(attention, graph, x)),
        (DGL, "graphformer, DGL engine", forward_backward(dgl_attention, graph, x)),
    ]
    return [{"group": group, "case": name, "kind": kind, "fn": fn} for kind, name, fn in cases]


def cluster_batch(batch_size: int, seed: int = 0) -> dgl.DGLGraph:
    """A batch of generated CLUSTER graphs (dense SBM samples, ~37 in-edges per node)."""
    from graphformer.data.datasets.sbm import cluster_graph

    import numpy as np

    rng = np.random.default_rng(seed)
    return dgl.batch([cluster_graph(rng) for _ in range(batch_size)])


def masked_cases(args, device: str, graph_device: str) -> list[dict]:
    """Neighbourhood attention (+ self-loops) on a CLUSTER batch: DGL message passing
    against the dense engine (padded SDPA, adjacency as mask), plain and with a bias."""
    dim, heads = args.heads * args.head_dim, args.heads
    graph = add_self_loops(cluster_batch(args.batch_size)).to(graph_device)
    x = torch.randn(graph.num_nodes(), dim, device=device, requires_grad=True)
    bias = torch.randn(graph.num_edges(), heads, device=device, requires_grad=True)
    layers = {
        engine: MultiHeadAttention(dim, heads, engine=engine).to(device)
        for engine in ("dgl", "dense")
    }
    group = f"neighbourhood attention, CLUSTER × {args.batch_size}"
    return [
        {
            "group": group,
            "case": f"graphformer, {engine} engine{', with edge_bias' if biased else ''}",
            "kind": DGL if engine == "dgl" else OURS,
            "fn": forward_backward(
                lambda g, h, b=biased, m=layer: m(g, h, edge_bias=bias if b else None), graph, x
            ),
        }
        for biased in (False, True)
        for engine, layer in layers.items()
    ]


def dgl_runs_on(device: str) -> bool:
    """Whether the installed DGL can place a graph on ``device`` (PyPI's is CPU-only)."""
    return to_device(dgl.graph(([0], [0])), device).device == torch.device(device)


def training_throughput(args, device: str) -> dict:
    """Graphs per second of optimizer steps of the default model on CLUSTER-like batches."""
    batches = [to_device(cluster_batch(args.batch_size, seed), device) for seed in range(4)]
    model = GraphTransformer(6, BlockConfig(dim=64), num_layers=4, num_categories=7).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    index = iter(range(10**9))

    def step() -> None:
        batch = batches[next(index) % len(batches)]
        feat, label = batch.ndata["feat"].to(device), batch.ndata["label"].to(device)
        loss = F.cross_entropy(model(batch, feat), label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    seconds = median_seconds(step, args.repeats * 2, args.warmup, device)
    return {
        "group": "end to end",
        "case": f"GraphTransformer train step (CLUSTER, {args.batch_size} graphs)",
        "seconds": seconds,
        "peak_bytes": peak_extra_bytes(step, device),
        "graphs_per_second": args.batch_size / seconds,
    }


def run(args) -> list[dict]:
    """Every case's median time and peak memory. Where DGL cannot run on the device, its
    rows are left out and graphformer runs on the torch fallback (``auto``)."""
    device = args.device
    on_device = dgl_runs_on(device)
    graph_device = device if on_device else "cpu"
    cases = sparse_cases(args, device, graph_device) + gcn_cases(args, device, graph_device)
    n, b = args.complete_nodes, args.graphs
    cases += complete_cases(args, device, graph_device, [n] * b, f"{b} × {n}")
    mixed = torch.randint(n // 2, n, (b,), generator=torch.Generator().manual_seed(0))
    label = f"{b} × ({n // 2}–{n - 1})"
    cases += complete_cases(args, device, graph_device, mixed.tolist(), label)
    cases += masked_cases(args, device, graph_device)
    wanted = {OURS} | ({DGL} if on_device else set()) | ({FALLBACK} if args.fallback else set())
    if not on_device:
        print(f"DGL cannot run on {device}: its rows are left out; graphformer uses the torch "
              "fallback engine there", file=sys.stderr)  # fmt: skip
    results, baseline = [], {}
    for case in (case for case in cases if case.pop("kind") in wanted):
        step = case.pop("fn")
        seconds = median_seconds(step, args.repeats, args.warmup, device)
        peak = peak_extra_bytes(step, device)
        first = baseline.setdefault(case["group"], (seconds, peak))
        memory_ratio = peak / first[1] if peak and first[1] else None
        results.append(
            {
                **case,
                "seconds": seconds,
                "ratio": seconds / first[0],
                "peak_bytes": peak,
                "memory_ratio": memory_ratio,
            }
        )
    results.append(training_throughput(args, device))
    return results


def table(results: list[dict]) -> str:
    header = f"{'group':<28} {'case':<48} {'median s':>9} {'× time':>9} {'peak MB':>8} {'× mem':>6}"
    lines = [header]
    for row in results:
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else f"{row['graphs_per_second']:.0f} g/s"
        peak = f"{row['peak_bytes'] / 2**20:.0f}" if row["peak_bytes"] is not None else "n/a"
        memory = f"{row['memory_ratio']:.2f}" if row.get("memory_ratio") is not None else ""
        lines.append(
            f"{row['group']:<28} {row['case']:<48} {row['seconds']:>9.4f} {ratio:>9} "
            f"{peak:>8} {memory:>6}"
        )
    lines.append(
        "(forward + backward; median times; peak = extra memory of one step; ratios "
        "against the first row of each group)"
    )
    return "\n".join(lines)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each option's default in ``--help``, and the description as written."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="graphformer-bench", description=__doc__, formatter_class=_HelpFormatter
    )
    option = parser.add_argument
    option("--device", default="cpu", help="where to run: cpu, cuda, cuda:1 ...")
    option("--threads", type=int, default=None, help="torch.set_num_threads; None: torch's choice")
    option("--nodes", type=int, default=100_000, help="nodes of the random sparse graph")
    option("--edges", type=int, default=1_000_000, help="edges of the random sparse graph")
    option("--heads", type=int, default=8, help="attention heads")
    option("--head-dim", type=int, default=16, help="width of each head")
    option("--gcn-dim", type=int, default=128, help="feature width of the GCN cases")
    option("--graphs", type=int, default=64, help="graphs of the complete-graph cases")
    option("--complete-nodes", type=int, default=128, help="nodes per complete graph")
    option("--batch-size", type=int, default=32, help="graphs per step of the training case")
    option("--repeats", type=int, default=5, help="timed runs per case (the median is shown)")
    option("--warmup", type=int, default=1, help="untimed runs per case before timing")
    option(
        "--fallback",
        action="store_true",
        help="also time the torch fallback engine where DGL runs (slow on CPU: +60 s)",
    )
    option("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = run(args)
    print(json.dumps(results, indent=2) if args.json else table(results))


if __name__ == "__main__":
    main()
