r"""Layer-wise inference: a model's outputs on a whole graph, one layer at a time, each
layer in chunks of destination nodes (as DGL's examples evaluate large graphs).

A full-graph forward keeps every layer's (N, d) output and, inside a layer, every edge's
messages and attention weights (E × heads × d). Layer-wise inference computes layer
:math:`l` for all nodes before layer :math:`l + 1`, and each layer chunk by chunk: for
destination nodes :math:`D` (``chunk_size`` consecutive ids), the chunk graph holds
:math:`D`, their in-neighbours and the in-edges of :math:`D` (DGL's
``MultiLayerFullNeighborSampler(1)``: ``dgl.in_subgraph`` + ``dgl.to_block``, compacted
into one graph whose first nodes are :math:`D`; :class:`Chunk`). Peak memory is then the
previous and the next layer's (N, d) plus one chunk's edges. The outputs equal the
full-graph forward in eval mode (``tests/nn/test_layerwise.py``, ≤ 1e-5).

Which mixers can run this way is their trait ``layerwise``
(:class:`graphformer.nn.mixers.Mixer`), one of :data:`LAYERWISE` or None:

- ``in_edges``: a node's output reads only its own row, its in-edges (and their edge state)
  and its in-neighbours' rows, so the chunk graph gives :math:`D`'s rows exactly (SAGE,
  GAT, sparse attention, GatedGCN, Polynormer's local layer). GCN's
  :math:`1/\sqrt{d^{out}_j d^{in}_i}` also reads its sources' out-degrees in the whole
  graph: every chunk graph carries them as ``ndata[SOURCE_OUT_DEGREES]``, which
  :class:`~graphformer.nn.GCNConv` reads in place of the chunk graph's own. Edge state
  (GatedGCN) is kept for the whole graph between layers, (E, d): each edge is an in-edge of
  exactly one chunk.
- ``global_sums``: linear global attention (SGFormer, Polynormer): its global sums over all
  nodes (:math:`K^\top V`, :math:`\sum_j k_j`, the Frobenius norms) are accumulated chunk by
  chunk (``mixer.layerwise_sums``), then applied to each chunk of queries
  (``mixer.layerwise_apply``). Exact, over one sample (one large graph).
- None: refused with a :class:`LayerwiseError` naming the mixer (softmax attention over all
  nodes, hop tokens recomputed over K hops, expander graphs, shortest-path biases): use
  ``evaluation='full'`` or ``'sampled'``.

Models answer ``model.layerwise(graph, x, edge_feat, chunk_size)`` (GNN, GraphTransformer,
SGFormer, Polynormer); :func:`layerwise_inference` calls it, in eval mode and without
autograd.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import dgl
import torch
from torch import nn

#: The kinds of layer-wise execution a mixer may declare (its ``layerwise`` trait).
LAYERWISE = ("in_edges", "global_sums")
#: ``ndata`` key of a chunk graph: each node's out-degree in the whole graph the chunk was
#: cut from (GCN's normalisation reads it instead of the chunk graph's own out-degrees).
SOURCE_OUT_DEGREES = "_layerwise_out_degree"
#: The same in the whole graph plus a self-loop at every node that lacks one (for a GCN that
#: adds self-loops itself: the chunk graph cannot tell which of its sources had one).
SOURCE_LOOPED_OUT_DEGREES = "_layerwise_looped_out_degree"
#: What to use instead when a model or mixer cannot run layer-wise.
ALTERNATIVES = (
    "use evaluation='full' (the whole graph per layer) or evaluation='sampled' "
    "(exact k-hop subgraphs per chunk of seeds)"
)


class LayerwiseError(ValueError):
    """A model or mixer that layer-wise inference cannot run exactly."""


@dataclass(frozen=True)
class Chunk:
    """One chunk of destination nodes and the graph their layer output is computed on.

    graph : nodes ``nodes`` (destinations first), edges the destinations' in-edges, with
        ``ndata[SOURCE_OUT_DEGREES]``, ``ndata[SOURCE_LOOPED_OUT_DEGREES]`` and the
        requested node fields of the whole graph.
    nodes : whole-graph ids of ``graph``'s nodes; the first ``num_dst`` are the destinations,
        the whole graph's nodes ``start, ..., start + num_dst - 1``.
    edges : whole-graph ids of ``graph``'s edges (to gather and scatter edge state).
    """

    graph: dgl.DGLGraph
    nodes: torch.Tensor
    edges: torch.Tensor
    start: int
    num_dst: int

    @property
    def stop(self) -> int:
        """One past the last destination's whole-graph id."""
        return self.start + self.num_dst


def check_chunk_size(chunk_size: int) -> int:
    """``chunk_size`` if it is an int ≥ 1, else a ValueError naming it."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(
            f"chunk_size (destination nodes per chunk) must be an int ≥ 1; got {chunk_size!r}"
        )
    return chunk_size


def chunks(graph: dgl.DGLGraph, chunk_size: int, fields: Iterable[str] = ()) -> Iterator[Chunk]:
    """The :class:`Chunk` s of ``graph``: ``chunk_size`` consecutive destination nodes each,
    with their in-edges and in-neighbours, compacted into one homogeneous graph whose first
    nodes are the destinations; ``fields``: ``ndata`` keys copied to it.

    The graph that DGL's ``in_subgraph`` + ``to_block`` give
    (``MultiLayerFullNeighborSampler(1)``; the same nodes and edges:
    ``tests/nn/test_layerwise.py``), read as a slice of DGL's CSC
    (``graph.adj_tensors('csc')``): consecutive destinations' in-edges are consecutive
    there, so a chunk costs O(its edges), where ``in_subgraph`` costs O(N) per chunk
    (measured: ~30 ms per chunk on a 20k-node graph)."""
    check_chunk_size(chunk_size)
    num_nodes, device = graph.num_nodes(), graph.device
    indptr, indices, edge_ids = graph.adj_tensors("csc")
    out_degrees = graph.out_degrees()
    in_degrees = indptr[1:] - indptr[:-1]
    ids = torch.arange(num_nodes, device=device)
    has_loop = graph.has_edges_between(ids, ids)  # no E-sized temporary
    looped_degrees = out_degrees + (~has_loop).to(out_degrees.dtype)  # add_self_loops' graph
    seen = torch.zeros(num_nodes, dtype=torch.bool, device=device)  # marks, reset per chunk
    position = torch.empty(num_nodes, dtype=torch.int64, device=device)  # id → chunk position
    for start in range(0, max(num_nodes, 1), chunk_size):  # an empty graph: one empty chunk
        stop = min(start + chunk_size, num_nodes)
        low, high = int(indptr[start]), int(indptr[stop])
        src, edges = indices[low:high], edge_ids[low:high]
        dst_local = torch.repeat_interleave(
            torch.arange(stop - start, device=device), in_degrees[start:stop]
        )
        seen[src] = True
        seen[start:stop] = False
        others = torch.nonzero(seen).squeeze(1)  # the in-neighbours outside the chunk, sorted
        seen[others] = False
        nodes = torch.cat([torch.arange(start, stop, device=device), others])
        position[nodes] = torch.arange(len(nodes), device=device)
        sub = dgl.graph((position[src], dst_local), num_nodes=len(nodes))
        sub.ndata[SOURCE_OUT_DEGREES] = out_degrees[nodes]
        sub.ndata[SOURCE_LOOPED_OUT_DEGREES] = looped_degrees[nodes]
        for key in fields:
            sub.ndata[key] = graph.ndata[key][nodes]
        yield Chunk(sub, nodes, edges, start, stop - start)


def check_layerwise(mixer: nn.Module, kinds: tuple[str, ...] = LAYERWISE) -> str:
    """The mixer's ``layerwise`` trait if it is one of ``kinds``, else a
    :class:`LayerwiseError` naming the mixer and the alternatives."""
    kind = getattr(mixer, "layerwise", None)
    if kind not in kinds:
        how = (
            f"its layerwise trait is {kind!r}" if kind is not None else "it has no layerwise trait"
        )
        raise LayerwiseError(
            f"{type(mixer).__name__} cannot run in layer-wise inference ({how}; supported: "
            f"{list(kinds)}): its output at a node is not a function of the node's in-edges "
            f"or of global sums over nodes. For a model with this mixer, {ALTERNATIVES}"
        )
    return kind


def check_one_sample(graph: dgl.DGLGraph, who: str) -> None:
    """Global sums run over one sample: refuse a batch of several graphs."""
    if graph.batch_size != 1:
        raise LayerwiseError(
            f"{who} sums over all nodes of a sample, and layer-wise inference sums over the "
            f"whole graph, but the graph is a batch of {graph.batch_size} samples; run it on "
            f"one graph, or {ALTERNATIVES}"
        )


def map_nodes(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk_size: int
) -> torch.Tensor:
    """``fn`` (a per-node map) on the rows of ``x``, ``chunk_size`` rows at a time."""
    if len(x) <= chunk_size:
        return fn(x)
    parts = [fn(x[start : start + chunk_size]) for start in range(0, len(x), chunk_size)]
    return torch.cat(parts)


Step = Callable[
    [Chunk, torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor | None]
]


def over_chunks(
    graph: dgl.DGLGraph,
    x: torch.Tensor,
    edge_state: torch.Tensor | None,
    chunk_size: int,
    step: Step,
    fields: Iterable[str] = (),
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One layer over all nodes: ``step(chunk, x[chunk.nodes], edge_state[chunk.edges])``
    returns the destinations' rows (num_dst, ...) and the chunk's edge state (or None),
    written into whole-graph tensors (N, ...) and (E, ...)."""
    out = edges = None
    fields = tuple(fields)
    for chunk in chunks(graph, chunk_size, fields):
        state = edge_state[chunk.edges] if edge_state is not None else None
        h, state = step(chunk, x[chunk.nodes], state)
        if out is None:
            out = h.new_empty(graph.num_nodes(), *h.shape[1:])
        out[chunk.start : chunk.stop] = h
        if state is not None:
            if edges is None:
                edges = state.new_empty(graph.num_edges(), *state.shape[1:])
            edges[chunk.edges] = state
    return out, edges


def local_layer(
    conv: nn.Module,
    graph: dgl.DGLGraph,
    x: torch.Tensor,
    chunk_size: int,
    then: Callable[[torch.Tensor, Chunk], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``conv(graph, x)`` (an ``in_edges`` mixer, called as a convolution) layer-wise;
    ``then(h_dst, chunk)``: a per-node map of the destinations' rows (activation, norm)."""
    check_layerwise(conv, ("in_edges",))

    def step(chunk: Chunk, x_src: torch.Tensor, _: torch.Tensor | None):
        h = conv(chunk.graph, x_src)[: chunk.num_dst]
        return (h if then is None else then(h, chunk)), None

    return over_chunks(graph, x, None, chunk_size, step, getattr(conv, "needs", ()))[0]


def global_sums(
    mixer: nn.Module,
    x: torch.Tensor,
    chunk_size: int,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, ...]:
    """A ``global_sums`` mixer's sums over all rows of ``x`` (``prepare``, a per-node map,
    applied to each chunk first), accumulated ``chunk_size`` rows at a time."""
    check_layerwise(mixer, ("global_sums",))
    total: tuple[torch.Tensor, ...] | None = None
    for start in range(0, max(len(x), 1), chunk_size):
        rows = x[start : start + chunk_size]
        part = mixer.layerwise_sums(prepare(rows) if prepare is not None else rows)
        total = part if total is None else tuple(a + b for a, b in zip(total, part, strict=True))
    return total


def global_layer(
    mixer: nn.Module,
    graph: dgl.DGLGraph,
    x: torch.Tensor,
    chunk_size: int,
    then: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``mixer(graph, x)`` for a ``global_sums`` mixer on one sample, layer-wise: sums over
    all nodes, then each chunk of rows; ``then(out, x_rows)`` a per-node map after it."""
    check_layerwise(mixer, ("global_sums",))
    check_one_sample(graph, type(mixer).__name__)
    sums = global_sums(mixer, x, chunk_size)

    def apply(rows: torch.Tensor) -> torch.Tensor:
        out = mixer.layerwise_apply(rows, sums)
        return out if then is None else then(out, rows)

    return map_nodes(apply, x, chunk_size)


def layerwise_inference(
    model: nn.Module,
    graph: dgl.DGLGraph,
    x: torch.Tensor,
    edge_feat: torch.Tensor | None = None,
    chunk_size: int = 4096,
) -> torch.Tensor:
    """``model(graph, x, edge_feat)`` computed layer-wise (``model.layerwise``), in chunks of
    ``chunk_size`` destination nodes, without autograd. The model must be in eval mode
    (dropout off, BatchNorm's running statistics): layer-wise inference is evaluation.
    A model without ``layerwise`` or with a mixer that cannot run layer-wise raises a
    :class:`LayerwiseError` naming it."""
    check_chunk_size(chunk_size)
    if model.training:
        raise RuntimeError(
            "layer-wise inference evaluates a model: call model.eval() first (in training, "
            "dropout and batch statistics make a node's output depend on the whole batch)"
        )
    layerwise = getattr(model, "layerwise", None)
    if not callable(layerwise):
        raise LayerwiseError(
            f"{type(model).__name__} has no layerwise(graph, x, edge_feat, chunk_size) "
            f"method (graphformer's GNN, GraphTransformer, SGFormer and Polynormer have one); "
            f"{ALTERNATIVES}"
        )
    with torch.no_grad():
        return layerwise(graph, x, edge_feat, chunk_size)


def block_layer(
    block: nn.Module,
    graph: dgl.DGLGraph,
    x: torch.Tensor,
    edge_state: torch.Tensor | None,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``block(graph, x, edge_state, return_edges=True)`` (a
    :class:`~graphformer.nn.GraphTransformerBlock`) layer-wise: the local branch on each
    chunk's in-subgraph (edge state gathered and scattered by edge id), the global branch
    from global sums, the FFN on the chunk's destinations; the block's own modules, in eval
    mode (dropout is the identity)."""
    from graphformer.graphs import add_self_loops_with_features

    local, global_mixer = block.local, block.global_mixer
    if local is not None:
        check_layerwise(local, ("in_edges",))
        if block.self_loops and local.self_loops:
            graph, edge_state = add_self_loops_with_features(graph, edge_state)
    sums = None
    if global_mixer is not None:
        check_layerwise(global_mixer, ("global_sums",))
        check_one_sample(graph, type(global_mixer).__name__)
        sums = global_sums(
            global_mixer, x, chunk_size, block.norm_global if block.prenorm else None
        )

    def step(chunk: Chunk, x_src: torch.Tensor, state: torch.Tensor | None):
        x_dst, branches = x_src[: chunk.num_dst], []
        if local is not None:
            out, state = block._branch(local, block.norm_local, chunk.graph, x_src, state)
            branches.append(out[: chunk.num_dst])
        if global_mixer is not None:
            owns_residual = getattr(global_mixer, "owns_residual", False)
            if block.prenorm:
                h = block.norm_global(x_dst)
                out = global_mixer.layerwise_apply(h, sums)
                branches.append(out - h if owns_residual else block.dropout(out))
            else:
                out = global_mixer.layerwise_apply(x_dst, sums)
                residual = out if owns_residual else x_dst + block.dropout(out)
                branches.append(block.norm_global(residual))
        if block.prenorm:
            h = x_dst + sum(branches)
            return h + block.dropout(block.ffn(block.norm_ffn(h))), state
        h = sum(branches)
        return block.norm_ffn(h + block.dropout(block.ffn(h))), state

    fields = getattr(local, "needs", ()) if local is not None else ()
    return over_chunks(graph, x, edge_state, chunk_size, step, fields)
