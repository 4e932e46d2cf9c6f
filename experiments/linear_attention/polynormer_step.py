"""Polynormer's training step on Cora: PyG's, graphformer's before and after fusing the local
layer's three projections of x (gate, linear path, GAT's W) into one matmul, interleaved.

Before = the same model with :class:`~graphformer.nn.PolynormerLocal`'s previous forward
(three separate projections), patched onto its instances; after = the package as it is.
Both start from the same weights, so their outputs agree (checked). One step = forward,
loss, backward, Adam step, global stage on, as ``compare.py`` trains; CPU time of the
process (``time.process_time``), one thread, the three variants taking turns (order
rotating). With ``--profile``: torch.profiler's top operators of each, five steps.

    OMP_NUM_THREADS=1 python experiments/linear_attention/polynormer_step.py --steps 40
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import REPO, build, load_cora, set_global


def unfused_forward(self, graph, x):
    """PolynormerLocal.forward before the fusion (commit e72b172)."""
    h = F.relu(self.gate(x))
    y = self.conv(graph, x) + self.linear(x)
    if self.batch_norm is not None:
        y = self.batch_norm(y)
    y = self.dropout(F.relu(y))
    return (1 - self.beta) * self.norm(h * y) + self.beta * y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--data-root", type=Path, default=Path("/tmp/graphformer_linear/dgl"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    graph = load_cora(args.data_root, REPO.parent / "shared" / "data" / "dgl")
    x, y = graph.ndata["feat"], graph.ndata["label"]
    mask = graph.ndata["train_mask"].bool()
    src, dst = graph.edges()
    edge_index, batch = torch.stack([src, dst]), torch.zeros(graph.num_nodes(), dtype=torch.long)
    variants = {}
    for name in ("pyg", "before", "after"):
        torch.manual_seed(0)
        net, forward, lr, wd = build(
            "polynormer", "pyg" if name == "pyg" else "graphformer", x.shape[1], 7
        )
        set_global(net, True)
        if name == "before":
            for layer in net.local:
                layer.forward = types.MethodType(unfused_forward, layer)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=wd)
        variants[name] = (net, forward, optimizer)
    before, after = variants["before"][0].eval(), variants["after"][0].eval()
    with torch.no_grad():
        difference = (before(graph, x) - after(graph, x)).abs().max().item()
    print(f"max |before - after| output, same weights: {difference:.2e}")

    def step(name: str) -> None:
        net, forward, optimizer = variants[name]
        net.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(forward(graph, x, edge_index, batch)[mask], y[mask])
        loss.backward()
        optimizer.step()

    for name in variants:  # warm-up
        step(name)
    times = {name: [] for name in variants}
    names = list(variants)
    for index in range(args.steps):
        for name in names[index % 3 :] + names[: index % 3]:
            start = time.process_time()
            step(name)
            times[name].append(time.process_time() - start)
    pyg = statistics.median(times["pyg"])
    for name in names:
        median = statistics.median(times[name])
        print(f"{name}: median step {median * 1e3:.1f} ms CPU, / PyG's {median / pyg:.3f}")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for name in names:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(5):
                    step(name)
            print(f"===== {name}")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
