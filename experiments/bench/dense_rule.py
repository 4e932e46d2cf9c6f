"""Where padded masked SDPA beats message passing: the measurement behind ``dense_pays_off``.

For batches of random graphs with ``n`` nodes per sample and in-degree ``d`` (plus
self-loops), about 4,000 nodes per batch, this times ``MultiHeadAttention`` (width 64, 4
heads, forward + backward) on the ``dgl`` and the ``dense`` engine, both in this process,
and prints the time ratio against the padded score cells per edge, B·L²/E ≈ n / (d + 1).
The ``auto`` threshold ``graphformer.nn.core.dense.DENSE_CELLS_PER_EDGE`` is read off where
the ratio crosses 1.

    python experiments/bench/dense_rule.py --threads 2
"""

from __future__ import annotations

import argparse
import copy

import graphformer  # noqa: F401  (before DGL)
from graphformer.bench import forward_backward, median_seconds
from graphformer.graphs import add_self_loops
from graphformer.nn import MultiHeadAttention

import dgl
import torch


def batch(n: int, degree: int, nodes: int, seed: int) -> dgl.DGLGraph:
    """``nodes // n`` samples of ``n`` nodes, each node with ``degree`` random in-edges."""
    generator = torch.Generator().manual_seed(seed)
    samples = max(1, nodes // n)
    graphs = []
    for _ in range(samples):
        dst = torch.arange(n).repeat_interleave(degree)
        src = torch.randint(0, n, (n * degree,), generator=generator)
        graphs.append(dgl.graph((src, dst), num_nodes=n))
    return add_self_loops(dgl.batch(graphs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--nodes", type=int, default=4000, help="nodes per batch (4000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (5)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sparse = MultiHeadAttention(64, 4, engine="dgl")
    dense = copy.deepcopy(sparse)
    dense.engine = "dense"
    print(f"{'n':>5} {'deg':>4} {'cells/edge':>10} {'dgl s':>8} {'dense s':>8} {'dense/dgl':>9}")
    for n in (16, 64, 128, 256, 512):
        for degree in (2, 4, 8, 16, 32, 64):
            if degree >= n:
                continue
            graph = batch(n, degree, args.nodes, seed=n * 100 + degree)
            x = torch.randn(graph.num_nodes(), 64, requires_grad=True)
            cells = len(graph.batch_num_nodes()) * n * n / graph.num_edges()
            times = [
                median_seconds(forward_backward(layer, graph, x), args.repeats, 1, "cpu")
                for layer in (sparse, dense)
            ]
            print(
                f"{n:>5} {degree:>4} {cells:>10.1f} {times[0]:>8.4f} {times[1]:>8.4f} "
                f"{times[1] / times[0]:>9.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
