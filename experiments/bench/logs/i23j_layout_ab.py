"""Issue 23, eighth pass: building a CLUSTER batch's self-loop graph and dense attention
layout (what the default GT does once per batch) with a base commit's code against this
tree's, in one process, interleaved, 10 rounds over 10 batches of 32 graphs (2 threads);
checks first that both give identical graphs, cells and masks.

    git show 66be040:graphformer/nn/core/dense.py > /tmp/dense_base.py
    git show 66be040:graphformer/graphs/transformer.py > /tmp/transformer_base.py
    python experiments/bench/logs/i23j_layout_ab.py /tmp/dense_base.py /tmp/transformer_base.py
"""

from __future__ import annotations

import functools
import importlib.util
import statistics
import sys
import time

import graphformer.graphs.transformer as transformer_new
import graphformer.nn.core.dense as dense_new
from graphformer.data import GraphDataModule, SBMDataset

import torch


def load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def cluster_module() -> GraphDataModule:
    """320 generated CLUSTER training graphs in batches of 32, LapPE 8, set up for fit."""
    data = GraphDataModule(
        functools.partial(SBMDataset, name="CLUSTER", seed=0, root="/tmp/gf_bench"),
        batch_size=32,
        lap_pe_k=8,
        train_graphs=320,
        val_graphs=32,
        test_graphs=32,
        seed=0,
    )
    data.setup("fit")
    return data


def main() -> None:
    torch.set_num_threads(2)
    dense_old = load("dense_base", sys.argv[1])
    transformer_old = load("transformer_base", sys.argv[2])
    data = cluster_module()
    graphs = [graph for graph, _ in data.train_dataloader()]
    cpu = torch.device("cpu")
    for graph in graphs:
        old_graph, old_order = transformer_old._loop_graph(graph)
        new_graph, new_order = transformer_new._loop_graph(graph)
        assert torch.equal(old_order, new_order)
        assert all(map(torch.equal, old_graph.edges(), new_graph.edges()))
        old = dense_old.AttentionLayout(old_graph, cpu)
        new = dense_new.AttentionLayout(new_graph, cpu)
        assert old.multi_edges == new.multi_edges and torch.equal(old.cell, new.cell)
        assert all(map(torch.equal, old.mask, new.mask))
        assert all(map(torch.equal, old.empty, new.empty))
    print(f"identical on {len(graphs)} batches ({graphs[0].num_edges()} edges in the first)")
    sides = {"old": (dense_old, transformer_old), "new": (dense_new, transformer_new)}
    times: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(10):
        for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
            dense, transformer = sides[side]
            start = time.perf_counter()
            for graph in graphs:
                dense.AttentionLayout(transformer._loop_graph(graph)[0], cpu)
            times[side].append((time.perf_counter() - start) / len(graphs))
    ratios = [n / o for n, o in zip(times["new"], times["old"], strict=True)]
    old, new = (statistics.median(times[s]) * 1e3 for s in ("old", "new"))
    print(
        f"per batch: old {old:.2f} ms, new {new:.2f} ms, new/old {statistics.median(ratios):.2f}"
        f" ({min(ratios):.2f}-{max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
