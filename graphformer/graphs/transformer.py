"""The graphs of Transformer attention: complete (self-attention), causal (decoder
self-attention), complete bipartite (cross-attention), and the input graph plus self-loops
(GAT-style neighbourhood attention)."""

from __future__ import annotations

import weakref

from graphformer.graphs.batch import (
    Counts,
    batched_graph,
    counts_on_device,
    derived,
    sample_of,
    sample_pairs,
    sample_sizes,
)

import dgl
import torch

SRC, DST = "src", "dst"
#: Graphs built by complete_graph(self_loops=True), attention on which may run densely: each
#: maps to (its structure object, its per-sample node counts) as built. DGL's in-place edits
#: (add_edges, remove_edges, add_nodes, ...) replace the structure object, so a graph edited
#: since is no longer complete for is_complete; set_batch_num_nodes changes the counts.
_COMPLETE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
BIPARTITE_ETYPE = (SRC, "attends", DST)


def complete_graph(
    num_nodes: Counts, self_loops: bool = True, device: torch.device | str | None = None
) -> dgl.DGLGraph:
    """The batched complete graph: every node of a sample receives from every node of it.

    With ``self_loops=True`` this is exactly the graph of Transformer self-attention.
    Nothing crosses samples. Edges of each sample are ordered by (source, destination).
    """
    counts = counts_on_device(num_nodes, device)
    src, dst, num_edges = sample_pairs(counts, counts)
    if not self_loops:
        keep = src != dst
        src, dst, num_edges = src[keep], dst[keep], num_edges - counts
    graph = batched_graph(src, dst, counts, num_edges)
    if self_loops:
        _COMPLETE[graph] = (weakref.ref(graph._graph), counts.clone())
    return graph


def causal_graph(
    num_nodes: Counts, self_loops: bool = True, device: torch.device | str | None = None
) -> dgl.DGLGraph:
    r"""The batched causal graph: node i of a sample receives from nodes j ≤ i of it.

    Positions are the node order within each sample. With ``self_loops=True`` a sample of
    n nodes has :math:`n(n+1)/2` edges and attention on it is exactly a Transformer
    decoder's masked self-attention (``is_causal``, GPT-style); without, j < i (the first
    node then receives nothing). Nothing crosses samples. Edges of each sample are ordered
    by (source, destination).
    """
    counts = counts_on_device(num_nodes, device)
    src, dst, _ = sample_pairs(counts, counts)
    keep = src <= dst if self_loops else src < dst
    pairs = counts * (counts + 1) // 2 if self_loops else counts * (counts - 1) // 2
    return batched_graph(src[keep], dst[keep], counts, pairs)


def complete_graph_of(graph: dgl.DGLGraph) -> dgl.DGLGraph:
    """``complete_graph(graph)``, built once per ``graph`` and shared: set data on it only
    inside ``local_scope``."""
    return derived(graph, "complete", complete_graph)


def is_complete(graph: dgl.DGLGraph) -> bool:
    """True for a graph built by :func:`complete_graph` with self-loops and not since
    copied, moved, or edited in place (edges or nodes added or removed, batch sizes
    reset): attention on it is per-sample full attention. One comparison of the per-sample
    node counts: ~6 µs for 64 samples (was ~0.4 µs as a set lookup alone)."""
    built = _COMPLETE.get(graph)
    if built is None or built[0]() is not graph._graph:
        return False
    sizes = graph.batch_num_nodes()
    return sizes.shape == built[1].shape and bool(torch.equal(sizes, built[1].to(sizes.device)))


def complete_bipartite(
    num_src: Counts, num_dst: Counts, device: torch.device | str | None = None
) -> dgl.DGLGraph:
    """The batched complete bipartite graph from keys/values (``src``) to queries (``dst``).

    One edge type, ``('src', 'attends', 'dst')``: within each sample, every source node
    sends to every destination node. This is cross-attention's graph: with an encoder's
    per-sample lengths as ``num_src`` and a decoder's as ``num_dst`` (each pair of its own
    lengths), attention on it is a Transformer decoder's attention to the encoder memory.
    Counts may be given as graphs (their ``batch_num_nodes``); the graph then goes to the
    device of ``num_src``'s graph unless ``device`` says otherwise.
    """
    if device is None and isinstance(num_src, dgl.DGLGraph):
        device = num_src.device
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
    src, dst, num_edges = sample_pairs(src_counts, dst_counts)
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
        return torch.cat([value, fill]).index_select(0, order.to(value.device))

    for key, value in graph.edata.items():
        looped.edata[key] = extend(value)
    return looped, extend(edge_feat) if edge_feat is not None else None


def _loop_graph(graph: dgl.DGLGraph) -> tuple[dgl.DGLGraph | None, torch.Tensor | None]:
    """The looped graph (without data) and, for each of its edges, the index into
    ``old edges ++ new loops``; ``(None, None)`` when every node has a loop. Built once per
    batch: its edge-long gathers and scatter are ``index_select`` / ``index_copy_``, 2-3x
    faster on the CPU than advanced indexing at CLUSTER's 140k edges."""
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
    sample_of_node = sample_of(num_nodes)
    # Each sample's new loops go after its edges: positions by per-sample offsets, no sort.
    loops = torch.bincount(sample_of_node[missing], minlength=len(num_nodes))
    loops_before = torch.cumsum(loops, 0) - loops
    old_position = torch.arange(len(src), device=graph.device) + loops_before.index_select(
        0, sample_of(num_edges)
    )
    loop_sample = sample_of_node[missing]  # missing is sorted, hence grouped by sample
    rank = torch.arange(len(missing), device=graph.device) - loops_before[loop_sample]
    loop_position = (torch.cumsum(num_edges, 0) + loops_before)[loop_sample] + rank
    order = torch.empty(len(src) + len(missing), dtype=torch.int64, device=graph.device)
    order.index_copy_(
        0,
        torch.cat([old_position, loop_position]),
        torch.arange(len(order), device=graph.device),
    )
    looped = dgl.graph(
        (
            torch.cat([src, missing]).index_select(0, order),
            torch.cat([dst, missing]).index_select(0, order),
        ),
        num_nodes=graph.num_nodes(),
        device=graph.device,
    )
    looped.set_batch_num_nodes(num_nodes)
    looped.set_batch_num_edges(num_edges + loops)
    return looped, order
