"""Batches of samples as one graph: per-sample sizes, graphs built or cached per batch,
graphs moved to a device."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TypeVar

import dgl
import torch

Counts = int | Sequence[int] | torch.Tensor | dgl.DGLGraph
T = TypeVar("T")

#: Graphs derived from a graph (its self-loop structure, its complete graph), per graph object.
_DERIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def sample_sizes(num_nodes: Counts, name: str = "num_nodes") -> torch.Tensor:
    """Per-sample node counts as a 1-D int64 tensor.

    Accepts an int (one sample), a list or tensor of counts, or a (batched) DGLGraph.
    """
    if isinstance(num_nodes, dgl.DGLGraph):
        return num_nodes.batch_num_nodes()
    if isinstance(num_nodes, (bool, str, bytes)) or not isinstance(
        num_nodes, (int, Sequence, torch.Tensor)
    ):
        raise TypeError(
            f"{name} must be an int, a sequence or tensor of per-sample counts, or a DGLGraph; "
            f"got {type(num_nodes).__name__}"
        )
    counts = torch.as_tensor([num_nodes] if isinstance(num_nodes, int) else num_nodes)
    if counts.dim() != 1 or counts.is_floating_point() or counts.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer per-sample counts in one dimension; got dtype "
            f"{counts.dtype} and shape {tuple(counts.shape)}"
        )
    if (counts < 0).any():
        raise ValueError(f"{name} must be non-negative; got {counts.tolist()}")
    return counts.long()


def sample_pairs(rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """All (row, col) pairs of each sample, as global indices, in one vectorised pass.

    Sample b contributes ``rows[b] * cols[b]`` pairs, row-major. Returns the global row
    index, the global column index and the number of pairs per sample.
    """
    pairs = rows * cols
    sample = torch.repeat_interleave(torch.arange(len(pairs), device=pairs.device), pairs)
    local = torch.arange(int(pairs.sum()), device=pairs.device) - (
        torch.cumsum(pairs, 0) - pairs
    ).repeat_interleave(pairs)
    ncols = cols[sample]
    row = local // ncols + (torch.cumsum(rows, 0) - rows)[sample]
    col = local % ncols + (torch.cumsum(cols, 0) - cols)[sample]
    return row, col, pairs


def counts_on_device(num_nodes: Counts, device: torch.device | str | None) -> torch.Tensor:
    """:func:`sample_sizes` on ``device``; by default a graph's own device."""
    counts = sample_sizes(num_nodes)
    if device is None and isinstance(num_nodes, dgl.DGLGraph):
        device = num_nodes.device
    return counts.to(device) if device is not None else counts


def batched_graph(
    src: torch.Tensor, dst: torch.Tensor, counts: torch.Tensor, num_edges: torch.Tensor
) -> dgl.DGLGraph:
    graph = dgl.graph((src, dst), num_nodes=int(counts.sum()), device=counts.device)
    graph.set_batch_num_nodes(counts)
    graph.set_batch_num_edges(num_edges)
    return graph


def derived(graph: dgl.DGLGraph, name: str, build: Callable[[dgl.DGLGraph], T]) -> T:
    """``build(graph)``, made once per graph object and reused (rebuilt after an in-place
    edit of the graph's structure), so layers and blocks called many times on one batch derive its
    graphs once. Kept only as long as ``graph`` lives."""
    entries = _DERIVED.setdefault(graph, {})
    cached = entries.get(name)
    # DGL's in-place edits (add_edges, remove_edges, ...) replace the structure object.
    if cached is None or cached[0]() is not graph._graph:
        cached = entries[name] = (weakref.ref(graph._graph), build(graph))
    return cached[1]


def to_device(graph: dgl.DGLGraph, device: torch.device | str) -> dgl.DGLGraph:
    """``graph.to(device)``, or ``graph`` unchanged where the installed DGL cannot go there.

    PyPI's DGL is a CPU-only build: it cannot place a graph on a GPU. The graph then stays
    on the CPU and the layers run on the features' device through the torch fallback
    engine (they move the edge indices they need).
    """
    try:
        return graph.to(device)
    except (dgl.DGLError, RuntimeError):  # DGL built without support for that device
        return graph


def sample_of(counts: torch.Tensor) -> torch.Tensor:
    """For rows laid out sample after sample (``counts[b]`` rows of sample b): each row's sample."""
    return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


def regrouped_graph(
    parts: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], counts: torch.Tensor
) -> tuple[dgl.DGLGraph, torch.Tensor]:
    """The graph of the edges of ``parts`` regrouped sample by sample, ``counts[b]`` nodes
    in sample b: sample b's edges of ``parts[0]``, then of ``parts[1]``, ...

    Each part is ``(src, dst, edges per sample)`` with its edges grouped by sample. Also
    returns, for each edge of the result, its index in the concatenation of the parts (to
    lay out edge features). O(E): positions from per-sample offsets, no sort.
    """
    per_part = torch.stack([per_sample for _, _, per_sample in parts])  # (P, B)
    blocks = per_part.T.reshape(-1)  # (sample, part) blocks in the result's order
    block_start = (torch.cumsum(blocks, 0) - blocks).view(per_part.shape[1], -1).T
    positions = []
    for part, per_sample in enumerate(per_part):  # a handful of parts, never samples
        sample = sample_of(per_sample)
        local = (
            torch.arange(len(sample), device=counts.device)
            - (torch.cumsum(per_sample, 0) - per_sample)[sample]
        )
        positions.append(block_start[part][sample] + local)
    position = torch.cat(positions)
    order = torch.empty_like(position)
    order[position] = torch.arange(len(position), device=counts.device)
    src = torch.cat([src for src, _, _ in parts])[order]
    dst = torch.cat([dst for _, dst, _ in parts])[order]
    graph = dgl.graph((src, dst), num_nodes=int(counts.sum()), device=counts.device)
    graph.set_batch_num_nodes(counts)
    graph.set_batch_num_edges(per_part.sum(0))
    return graph, order


def check_homogeneous(graph: dgl.DGLGraph, what: str) -> None:
    """Raise ValueError unless ``graph`` is a homogeneous DGLGraph (``what`` needs one)."""
    if not isinstance(graph, dgl.DGLGraph) or not graph.is_homogeneous:
        got = (
            f"node types {graph.ntypes} and edge types {graph.canonical_etypes}"
            if isinstance(graph, dgl.DGLGraph)
            else type(graph).__name__
        )
        raise ValueError(f"{what} needs homogeneous DGLGraphs; got {got}")


def check_within_samples(graph: dgl.DGLGraph, what: str) -> None:
    """Raise ValueError if an edge of the batched ``graph`` joins two samples (by
    ``batch_num_nodes``): ``what`` works per sample and would count such an edge in the
    wrong sample. Names the first such edge and what to do."""
    counts = graph.batch_num_nodes()
    if graph.num_edges() == 0 or len(counts) < 2:
        return
    sample = sample_of(counts)
    src, dst = graph.edges()
    cross = torch.nonzero(sample[src] != sample[dst]).flatten()
    if len(cross):
        e = int(cross[0])
        u, v = int(src[e]), int(dst[e])
        raise ValueError(
            f"{what} works per sample, but edge {e} ({u} → {v}) joins sample "
            f"{int(sample[u])} and sample {int(sample[v])} ({len(cross)} such edges; samples "
            f"by batch_num_nodes {counts.tolist()}): batch samples with dgl.batch, or set "
            "batch_num_nodes/batch_num_edges so that every edge stays in its sample"
        )
