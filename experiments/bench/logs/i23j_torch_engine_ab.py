"""Issue 23, eighth pass: the torch engine's primitives of a base commit (gathers by
advanced indexing, ``u[src]``) against this tree's (``index_select``), in one process,
interleaved: five layers with ``engine="torch"``, forward + backward, on a 16-graph CLUSTER
batch and a 32-molecule batch, width 64, 2 threads; also checks the outputs are identical.

    git show f1a718b:graphformer/nn/core/message_passing.py > /tmp/mp_base.py
    python experiments/bench/logs/i23j_torch_engine_ab.py /tmp/mp_base.py
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from pathlib import Path

import graphformer.nn.core.message_passing as mp_new
from graphformer.nn import GATConv, GatedGCN, GCNConv, MultiHeadAttention, SAGEConv

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import recipes  # experiments/bench

METHODS = (
    "copy_u",
    "copy_v",
    "u_dot_v",
    "e_dot_v",
    "u_add_v",
    "u_add_e",
    "copy_u_reduce",
    "u_mul_e_reduce",
    "edge_softmax",
)


def load_base(path: str):
    spec = importlib.util.spec_from_file_location("mp_base", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["mp_base"] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def use(methods: dict) -> None:
    for name, method in methods.items():
        setattr(mp_new.TorchPrimitives, name, method)


def layers(dim: int) -> dict[str, torch.nn.Module]:
    return {
        "GATConv(4 heads)": GATConv(dim, dim // 4, 4, engine="torch"),
        "GatedGCN": GatedGCN(dim, engine="torch"),
        "GCNConv": GCNConv(dim, dim, engine="torch"),
        "SAGEConv(mean)": SAGEConv(dim, dim, engine="torch"),
        "MultiHeadAttention(sparse)": MultiHeadAttention(dim, 4, engine="torch"),
    }


def output(layer, graph, x) -> torch.Tensor:
    out = layer(graph, x)
    return out[0] if isinstance(out, tuple) else out


def main() -> None:
    torch.set_num_threads(2)
    base = load_base(sys.argv[1])
    # the base methods call the base module's segment_softmax / scatter (its gathers)
    sides = {
        "old": {name: getattr(base.TorchPrimitives, name) for name in METHODS},
        "new": {name: getattr(mp_new.TorchPrimitives, name) for name in METHODS},
    }
    cluster, _, _ = recipes.cluster_graphs(32, "/tmp/gf_bench")
    molecules = recipes.molecule_graphs(64)
    graphs = {
        "CLUSTER 16 graphs": (recipes.prepared(cluster[:16])["graph"], 3),
        "molecules 32": (recipes.prepared(molecules[:32])["graph"], 20),
    }
    for graph_name, (graph, reps) in graphs.items():
        torch.manual_seed(0)
        x = torch.randn(graph.num_nodes(), 64, requires_grad=True)
        for layer_name, layer in layers(64).items():
            outs = []
            for side in ("old", "new"):
                use(sides[side])
                torch.manual_seed(1)
                outs.append(output(layer, graph, x))
            diff = (outs[0] - outs[1]).abs().max().item()
            times: dict[str, list[float]] = {"old": [], "new": []}
            for r in range(8):
                for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    use(sides[side])
                    output(layer, graph, x).square().mean().backward()
                    start = time.perf_counter()
                    for _ in range(reps):
                        output(layer, graph, x).square().mean().backward()
                    times[side].append((time.perf_counter() - start) / reps)
            ratios = [n / o for n, o in zip(times["new"], times["old"], strict=True)]
            old, new = (statistics.median(times[s]) * 1e3 for s in ("old", "new"))
            print(
                f"{graph_name:18s} {layer_name:28s} old {old:8.2f} ms  new {new:8.2f} ms  "
                f"new/old {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
                f"  max|diff| {diff:.1e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
