"""A layer's message passing on the ``dgl`` vs the ``torch`` engine by batch size: the
measurement behind ``GINE_TORCH_BELOW`` (``graphformer/nn/layers/gine.py``) and the other
layers' ``torch_below`` rules.

For batches of molecule-shaped graphs (23 atoms, a chain with ring closures: ~2.2 directed
edges per atom, as in zinc_logp) it times, forward and backward, width 64, on each engine
(interleaved rounds, median CPU time per call, one thread by default): ``--layer gine``
GINE's φ and □, ``ReLU(x_j + e_ij)`` summed per destination; the other layers (``gatedgcn``
with edge state, ``gat`` with 4 heads, ``gcn``, ``sage``) the whole layer::

    python experiments/molecules/engine_rule.py --graphs 8,32,128,256,512,1024,2048
    python experiments/molecules/engine_rule.py --layer gatedgcn --graphs 8,32,64,128,256
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import graphformer  # noqa: F401  (before DGL)
from graphformer.nn import GATConv, GatedGCN, GCNConv, SAGEConv
from graphformer.nn.core.message_passing import MessagePassing

import dgl
import torch


def molecule_batch(num_graphs: int, atoms: int = 23) -> dgl.DGLGraph:
    """``num_graphs`` chains of ``atoms`` atoms with a ring closure every 6 atoms, both
    directions, batched."""
    src = list(range(atoms - 1)) + list(range(0, atoms - 6, 6))
    dst = list(range(1, atoms)) + [k + 5 for k in range(0, atoms - 6, 6)]
    one = dgl.graph((torch.tensor(src + dst), torch.tensor(dst + src)), num_nodes=atoms)
    return dgl.batch([one] * num_graphs)


def gine_messages(graph: dgl.DGLGraph, engine: str, x: torch.Tensor, e: torch.Tensor):
    """GINE's φ and □ as ``GINE.forward`` runs them."""
    mp = MessagePassing(graph, engine, x)
    return mp.copy_e_reduce(torch.relu_(mp.u_add_e(x, e)), "sum")


#: The whole layers ``--layer`` can time, built at width ``dim``.
LAYERS = {
    "gatedgcn": lambda dim: GatedGCN(dim),
    "gat": lambda dim: GATConv(dim, dim // 4, 4),
    "gcn": lambda dim: GCNConv(dim, dim),
    "sage": lambda dim: SAGEConv(dim, dim),
}


def step_function(layer: str, dim: int):
    """``run(graph, engine, x, e)``: one forward's output to backpropagate, on ``engine``."""
    if layer == "gine":
        return gine_messages
    torch.manual_seed(0)
    built = LAYERS[layer](dim)
    twins = {}
    for engine in ("dgl", "torch"):
        twins[engine] = copy.deepcopy(built)
        twins[engine].engine = engine

    def run(graph, engine, x, e):
        if layer == "gatedgcn":
            return sum(out.sum() for out in twins[engine](graph, x, e))
        return twins[engine](graph, x)

    return run


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", default="8,32,128,256,512,1024,2048")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layer", default="gine", choices=("gine", *LAYERS))
    args = parser.parse_args(argv)
    run = step_function(args.layer, args.dim)
    torch.set_num_threads(args.threads)
    rows = []
    for count in (int(v) for v in args.graphs.split(",")):
        graph = molecule_batch(count)
        x = torch.randn(graph.num_nodes(), args.dim, requires_grad=True)
        e = torch.randn(graph.num_edges(), args.dim, requires_grad=True)
        reps = max(3, 20000 // count)
        times: dict[str, list[float]] = {"dgl": [], "torch": []}
        for r in range(args.rounds):
            for engine in ("dgl", "torch") if r % 2 == 0 else ("torch", "dgl"):
                run(graph, engine, x, e).sum().backward()  # formats, caches
                start = time.process_time()
                for _ in range(reps):
                    run(graph, engine, x, e).sum().backward()
                times[engine].append((time.process_time() - start) / reps * 1e3)
        ratios = [t / d for t, d in zip(times["torch"], times["dgl"], strict=True)]
        row = {
            "graphs": count,
            "edges": graph.num_edges(),
            "dgl_ms": statistics.median(times["dgl"]),
            "torch_ms": statistics.median(times["torch"]),
            "torch_over_dgl": statistics.median(ratios),
            "range": (min(ratios), max(ratios)),
        }
        rows.append(row)
        print(
            f"| {count} | {row['edges']:,} | {row['dgl_ms']:.3f} | {row['torch_ms']:.3f} | "
            f"{row['torch_over_dgl']:.2f} ({row['range'][0]:.2f}–{row['range'][1]:.2f}) |",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    main()
