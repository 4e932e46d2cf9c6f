"""Attention graphs: which graph a layer passes messages on decides what attention it is.

- :func:`complete_graph` of each sample: Transformer self-attention.
- :func:`complete_bipartite` from keys/values to queries: cross-attention.
- :func:`add_self_loops` on the input graph: GAT-style neighbourhood attention.

Graphs derived from a batch (its self-loop graph in :func:`add_self_loops`, its complete
graph in :func:`complete_graph_of`) are built once per graph object and reused by every
layer and block that asks (:func:`derived`), so no layer rebuilds them per call.

Every builder is vectorised (no Python loop over edges or samples) and returns a graph
whose ``batch_num_nodes`` / ``batch_num_edges`` describe its samples, so DGL readouts and
``dgl.unbatch`` keep working.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TypeVar

import dgl
import torch

Counts = int | Sequence[int] | torch.Tensor | dgl.DGLGraph
T = TypeVar("T")

SRC, DST = "src", "dst"
#: Graphs built by complete_graph(self_loops=True): attention on them may run densely.
_COMPLETE: weakref.WeakSet = weakref.WeakSet()
#: Graphs derived from a graph (its self-loop structure, its complete graph), per graph object.
_DERIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
BIPARTITE_ETYPE = (SRC, "attends", DST)


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


def _pairs(rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, ...]:
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


def complete_graph(
    num_nodes: Counts, self_loops: bool = True, device: torch.device | str | None = None
) -> dgl.DGLGraph:
    """The batched complete graph: every node of a sample receives from every node of it.

    With ``self_loops=True`` this is exactly the graph of Transformer self-attention.
    Nothing crosses samples. Edges of each sample are ordered by (source, destination).
    """
    counts = sample_sizes(num_nodes)
    if device is None and isinstance(num_nodes, dgl.DGLGraph):
        device = num_nodes.device
    counts = counts.to(device) if device is not None else counts
    src, dst, num_edges = _pairs(counts, counts)
    if not self_loops:
        keep = src != dst
        src, dst, num_edges = src[keep], dst[keep], num_edges - counts
    graph = dgl.graph((src, dst), num_nodes=int(counts.sum()), device=counts.device)
    graph.set_batch_num_nodes(counts)
    graph.set_batch_num_edges(num_edges)
    if self_loops:
        _COMPLETE.add(graph)
    return graph


def derived(graph: dgl.DGLGraph, name: str, build: Callable[[dgl.DGLGraph], T]) -> T:
    """``build(graph)``, made once per graph object and reused (rebuilt if the graph's node
    or edge count changed), so layers and blocks called many times on one batch derive its
    graphs once. Kept only as long as ``graph`` lives."""
    entries = _DERIVED.setdefault(graph, {})
    size = (graph.num_nodes(), graph.num_edges())
    cached = entries.get(name)
    if cached is None or cached[0] != size:
        cached = entries[name] = (size, build(graph))
    return cached[1]


def complete_graph_of(graph: dgl.DGLGraph) -> dgl.DGLGraph:
    """``complete_graph(graph)``, built once per ``graph`` and shared: set data on it only
    inside ``local_scope``."""
    return derived(graph, "complete", complete_graph)


def is_complete(graph: dgl.DGLGraph) -> bool:
    """True for a graph built by :func:`complete_graph` with self-loops (and not since
    copied or moved): attention on it is per-sample full attention."""
    return graph in _COMPLETE


def complete_bipartite(
    num_src: Counts, num_dst: Counts, device: torch.device | str | None = None
) -> dgl.DGLGraph:
    """The batched complete bipartite graph from keys/values (``src``) to queries (``dst``).

    One edge type, ``('src', 'attends', 'dst')``: within each sample, every source node
    sends to every destination node. This is cross-attention's graph.
    """
    src_counts = sample_sizes(num_src, "num_src")
    dst_counts = sample_sizes(num_dst, "num_dst")
    if len(src_counts) != len(dst_counts):
        raise ValueError(
            f"num_src and num_dst must describe the same number of samples; got "
            f"{len(src_counts)} and {len(dst_counts)}"
        )
    if device is not None:
        src_counts, dst_counts = src_counts.to(device), dst_counts.to(device)
    dst_counts = dst_counts.to(src_counts.device)
    src, dst, num_edges = _pairs(src_counts, dst_counts)
    graph = dgl.heterograph(
        {BIPARTITE_ETYPE: (src, dst)},
        num_nodes_dict={SRC: int(src_counts.sum()), DST: int(dst_counts.sum())},
        device=src_counts.device,
    )
    graph.set_batch_num_nodes({SRC: src_counts, DST: dst_counts})
    graph.set_batch_num_edges({BIPARTITE_ETYPE: num_edges})
    return graph


def add_self_loops(graph: dgl.DGLGraph, fill_value: float = 0.0) -> dgl.DGLGraph:
    """``graph`` plus a self-loop at every node that has none; existing loops are kept once.

    Unlike ``dgl.add_self_loop``, this keeps the batch structure and never duplicates a
    loop. Each sample's new loops follow its existing edges, so every sample's edges stay
    contiguous (as ``dgl.unbatch`` requires) and keep their relative order. Node features
    are kept; edge features of the new loops are filled with ``fill_value``.
    """
    return add_self_loops_with_features(graph, None, fill_value)[0]


def add_self_loops_with_features(
    graph: dgl.DGLGraph, edge_feat: torch.Tensor | None = None, fill_value: float = 0.0
) -> tuple[dgl.DGLGraph, torch.Tensor | None]:
    """:func:`add_self_loops`, also laying out the per-edge tensor ``edge_feat`` (E, ...)
    for the new graph. ``edge_feat`` may live on another device than the graph (a GPU,
    with PyPI's CPU-only DGL); it stays there.
    """
    structure, order = derived(graph, "self_loops", _loop_graph)
    if structure is None:
        return graph, edge_feat
    looped = structure.local_var()  # shares the structure and DGL's formats, not the data
    looped.ndata.update(graph.ndata)

    def extend(value: torch.Tensor) -> torch.Tensor:
        fill = value.new_full((len(order) - len(value), *value.shape[1:]), fill_value)
        return torch.cat([value, fill])[order.to(value.device)]

    for key, value in graph.edata.items():
        looped.edata[key] = extend(value)
    return looped, extend(edge_feat) if edge_feat is not None else None


def _loop_graph(graph: dgl.DGLGraph) -> tuple[dgl.DGLGraph | None, torch.Tensor | None]:
    """The looped graph (without data) and, for each of its edges, the index into
    ``old edges ++ new loops``; ``(None, None)`` when every node has a loop."""
    if not graph.is_homogeneous:
        raise ValueError(
            f"add_self_loops needs a homogeneous graph; got node types {graph.ntypes} and "
            f"edge types {graph.canonical_etypes}"
        )
    src, dst = graph.edges()
    has_loop = torch.zeros(graph.num_nodes(), dtype=torch.bool, device=graph.device)
    has_loop[src[src == dst]] = True
    missing = torch.nonzero(~has_loop).squeeze(1)
    if len(missing) == 0:
        return None, None
    num_nodes, num_edges = graph.batch_num_nodes(), graph.batch_num_edges()
    samples = torch.arange(len(num_nodes), device=graph.device)
    sample_of_node = torch.repeat_interleave(samples, num_nodes)
    sample_of_edge = torch.cat(
        [torch.repeat_interleave(samples, num_edges), sample_of_node[missing]]
    )
    order = torch.argsort(sample_of_edge, stable=True)
    looped = dgl.graph(
        (torch.cat([src, missing])[order], torch.cat([dst, missing])[order]),
        num_nodes=graph.num_nodes(),
        device=graph.device,
    )
    looped.set_batch_num_nodes(num_nodes)
    looped.set_batch_num_edges(
        num_edges + torch.bincount(sample_of_node[missing], minlength=len(num_nodes))
    )
    return looped, order


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
