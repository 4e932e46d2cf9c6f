"""Issue 23, eighth pass: the default GT's CLUSTER epoch (``flop_bound.py``'s model, loop and
loader, 320 graphs) with a base commit's per-batch self-loop graph and dense layout against
this tree's, in one process: the two swapped between interleaved epochs (2 threads).

    git show 66be040:graphformer/nn/core/dense.py > /tmp/dense_base.py
    git show 66be040:graphformer/graphs/transformer.py > /tmp/transformer_base.py
    python experiments/bench/logs/i23j_gt_layout_ab.py /tmp/dense_base.py /tmp/transformer_base.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import graphformer.graphs.transformer as transformer_new
import graphformer.nn.core.dense as dense_new

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import flop_bound  # experiments/bench

sys.path.insert(0, str(Path(__file__).resolve().parent))
from i23j_layout_ab import cluster_module, load


def main() -> None:
    torch.set_num_threads(2)
    sides = {
        "old": (
            load("dense_base", sys.argv[1]).AttentionLayout,
            load("tb", sys.argv[2])._loop_graph,
        ),
        "new": (dense_new.AttentionLayout, transformer_new._loop_graph),
    }
    data = cluster_module()
    loader = data.train_dataloader()
    net = flop_bound.model()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)
    flop_bound.epoch(net, optimizer, loader)  # warm-up
    times: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(12):
        for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
            dense_new.AttentionLayout, transformer_new._loop_graph = sides[side]
            times[side].append(flop_bound.epoch(net, optimizer, loader)[0])
    ratios = [n / o for n, o in zip(times["new"], times["old"], strict=True)]
    old, new = (statistics.median(times[s]) for s in ("old", "new"))
    print(
        f"epoch (320 graphs): old {old:.3f} s, new {new:.3f} s, new/old "
        f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f}), 12 rounds"
    )


if __name__ == "__main__":
    main()
