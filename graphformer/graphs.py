"""Attention graphs: which graph a layer passes messages on decides what attention it is.

- :func:`complete_graph` of each sample: Transformer self-attention.
- :func:`causal_graph` of each sample (j → i for j ≤ i): masked (decoder) self-attention.
- :func:`complete_bipartite` from keys/values to queries: cross-attention, e.g. from an
  encoder's tokens to a decoder's, each pair of its own lengths.
- :func:`add_self_loops` on the input graph: GAT-style neighbourhood attention.
- :func:`khop_graph`: attention over each node's k-hop neighbourhood.
- Exphormer's graph: :func:`union_graphs` of the input graph and an
  :func:`expander_graph`, then :func:`add_virtual_nodes`; edges tagged by kind.

Graphs derived from a batch (its self-loop graph in :func:`add_self_loops`, its complete
graph in :func:`complete_graph_of`) are built once per graph object and reused by every
layer and block that asks (:func:`derived`), so no layer rebuilds them per call.

Every builder is vectorised (no Python loop over edges or samples) and returns a graph
whose ``batch_num_nodes`` / ``batch_num_edges`` describe its samples, so DGL readouts and
``dgl.unbatch`` keep working.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Callable, Sequence
from typing import TypeVar

from graphformer.fields import EDGE_KIND, HOPS, VIRTUAL

import dgl
import torch

Counts = int | Sequence[int] | torch.Tensor | dgl.DGLGraph
T = TypeVar("T")

SRC, DST = "src", "dst"
#: Graphs built by complete_graph(self_loops=True), attention on which may run densely: each
#: maps to (its structure object, its per-sample node counts) as built. DGL's in-place edits
#: (add_edges, remove_edges, add_nodes, ...) replace the structure object, so a graph edited
#: since is no longer complete for is_complete; set_batch_num_nodes changes the counts.
_COMPLETE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
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


def _counts_on_device(num_nodes: Counts, device: torch.device | str | None) -> torch.Tensor:
    """:func:`sample_sizes` on ``device``; by default a graph's own device."""
    counts = sample_sizes(num_nodes)
    if device is None and isinstance(num_nodes, dgl.DGLGraph):
        device = num_nodes.device
    return counts.to(device) if device is not None else counts


def _batched_graph(
    src: torch.Tensor, dst: torch.Tensor, counts: torch.Tensor, num_edges: torch.Tensor
) -> dgl.DGLGraph:
    graph = dgl.graph((src, dst), num_nodes=int(counts.sum()), device=counts.device)
    graph.set_batch_num_nodes(counts)
    graph.set_batch_num_edges(num_edges)
    return graph


def complete_graph(
    num_nodes: Counts, self_loops: bool = True, device: torch.device | str | None = None
) -> dgl.DGLGraph:
    """The batched complete graph: every node of a sample receives from every node of it.

    With ``self_loops=True`` this is exactly the graph of Transformer self-attention.
    Nothing crosses samples. Edges of each sample are ordered by (source, destination).
    """
    counts = _counts_on_device(num_nodes, device)
    src, dst, num_edges = _pairs(counts, counts)
    if not self_loops:
        keep = src != dst
        src, dst, num_edges = src[keep], dst[keep], num_edges - counts
    graph = _batched_graph(src, dst, counts, num_edges)
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
    counts = _counts_on_device(num_nodes, device)
    src, dst, _ = _pairs(counts, counts)
    keep = src <= dst if self_loops else src < dst
    pairs = counts * (counts + 1) // 2 if self_loops else counts * (counts - 1) // 2
    return _batched_graph(src[keep], dst[keep], counts, pairs)


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
    sample_of_node = _sample_of(num_nodes)
    # Each sample's new loops go after its edges: positions by per-sample offsets, no sort.
    loops = torch.bincount(sample_of_node[missing], minlength=len(num_nodes))
    loops_before = torch.cumsum(loops, 0) - loops
    old_position = torch.arange(len(src), device=graph.device) + loops_before[_sample_of(num_edges)]
    loop_sample = sample_of_node[missing]  # missing is sorted, hence grouped by sample
    rank = torch.arange(len(missing), device=graph.device) - loops_before[loop_sample]
    loop_position = (torch.cumsum(num_edges, 0) + loops_before)[loop_sample] + rank
    order = torch.empty(len(src) + len(missing), dtype=torch.int64, device=graph.device)
    order[torch.cat([old_position, loop_position])] = torch.arange(len(order), device=graph.device)
    looped = dgl.graph(
        (torch.cat([src, missing])[order], torch.cat([dst, missing])[order]),
        num_nodes=graph.num_nodes(),
        device=graph.device,
    )
    looped.set_batch_num_nodes(num_nodes)
    looped.set_batch_num_edges(num_edges + loops)
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


# --- Exphormer's attention graph: input edges ∪ a random expander ∪ virtual nodes --------


class EdgeKind(enum.IntEnum):
    """The edge kinds of Exphormer's attention graph, as ``edata['kind']`` (int64) stores them.

    ``union_graphs(graph, expander_graph(graph, d))`` numbers its arguments' edges 0, 1
    (``INPUT``, ``EXPANDER``); :func:`add_virtual_nodes` then adds ``TO_VIRTUAL`` (node →
    virtual node) and ``FROM_VIRTUAL`` (virtual node → node) edges. An attention layer
    tells them apart by embedding the kind (Exphormer learns one edge embedding per kind).
    """

    INPUT = 0
    EXPANDER = 1
    TO_VIRTUAL = 2
    FROM_VIRTUAL = 3


def _sample_of(counts: torch.Tensor) -> torch.Tensor:
    """For rows laid out sample after sample (``counts[b]`` rows of sample b): each row's sample."""
    return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


def _regrouped_graph(
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
        sample = _sample_of(per_sample)
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


def expander_graph(
    num_nodes: Counts, degree: int, seed: int = 0, device: torch.device | str | None = None
) -> dgl.DGLGraph:
    r"""A random ``degree``-regular expander on the nodes of each sample.

    The construction is Exphormer's default, ``Random-d`` (Shirzad et al., 2023): draw
    :math:`d/2` independent uniformly random permutations :math:`\sigma_1, \dots,
    \sigma_{d/2}` of each sample's nodes and link every node :math:`i` both ways to each
    :math:`\sigma_k(i)`:

    .. math::
        E = \{\, i \to \sigma_k(i),\ \sigma_k(i) \to i \;:\; i \in V,\ k = 1, \dots, d/2 \,\}

    Every node then has exactly ``degree`` in-edges and ``degree`` out-edges, and the graph
    is symmetric. It is a multigraph: a self-loop where :math:`\sigma_k(i) = i` and a
    repeated edge where two permutations meet are kept (Exphormer keeps them too), so the
    degree is exact and attention weighs a repeated neighbour by its multiplicity. For
    fixed ``degree`` and large samples the second-largest eigenvalue modulus of the
    normalised adjacency :math:`A/d` is at most :math:`2\sqrt{d-1}/d + \varepsilon` with
    high probability (Friedman, 2008; Alon–Boppana makes that the best possible), e.g.
    0.75 for ``degree=6``: information spreads over a sample in :math:`O(\log n)` hops.

    Exphormer's ``exp_deg`` counts permutations: its ``exp_deg: 3`` (CLUSTER) is
    ``degree=6`` here, ``exp_deg: 7`` (PATTERN) is ``degree=14``. Unlike Exphormer's
    preprocessing, this builder neither redraws a graph until its spectral gap meets the
    Ramanujan bound (up to 100 eigensolves per graph) nor swaps samples of ≤ 10 nodes for
    their complete graph; small samples keep their (multi-)edges, a 1-node sample
    ``degree`` self-loops.

    Vectorised: all permutations of all samples come from two sorts (by key, then stably
    by sample) of uniform keys drawn from ``torch.Generator().manual_seed(seed)``, so the
    graph is a function of (sizes, degree, seed). To give each dataset graph one fixed expander,
    build it per graph (``expander_graph(g.num_nodes(), d, seed=index)``) and batch those.
    Edges of each sample are contiguous: per node :math:`i`, its :math:`d/2` out-edges to
    :math:`\sigma_k(i)`, then its :math:`d/2` in-edges from them.
    """
    if isinstance(degree, bool) or not isinstance(degree, int) or degree <= 0 or degree % 2:
        raise ValueError(
            f"degree must be a positive even int (degree/2 random permutations, each linked "
            f"both ways); got {degree!r}. Exphormer's exp_deg=k is degree=2·k."
        )
    counts = sample_sizes(num_nodes)
    if device is None and isinstance(num_nodes, dgl.DGLGraph):
        device = num_nodes.device
    counts = counts.to(device) if device is not None else counts
    total = int(counts.sum())
    generator = torch.Generator().manual_seed(seed)
    keys = torch.rand(degree // 2, total, generator=generator).to(counts.device)
    # Sort the keys, then stably by sample: row k lists each sample's nodes in a uniformly
    # random order, in the sample's own block of positions, i.e. sigma_k(i) = order[k, i].
    order = torch.argsort(keys, dim=1)
    sample = _sample_of(counts)
    order = order.gather(1, torch.argsort(sample[order], dim=1, stable=True))
    sigma = order.T  # (N, degree / 2)
    node = torch.arange(total, device=counts.device).unsqueeze(1).expand_as(sigma)
    src = torch.cat([node, sigma], dim=1).reshape(-1)
    dst = torch.cat([sigma, node], dim=1).reshape(-1)
    graph = dgl.graph((src, dst), num_nodes=total, device=counts.device)
    graph.set_batch_num_nodes(counts)
    graph.set_batch_num_edges(counts * degree)
    return graph


def khop_graph(graph: dgl.DGLGraph, k: int, self_loops: bool = True) -> dgl.DGLGraph:
    r"""Every pair within ``k`` hops: an edge :math:`j \to i` wherever a directed path of
    at most ``k`` edges leads from :math:`j` to :math:`i` in ``graph`` (within its sample,
    since samples share no edges), with ``edata['hops']`` its length :math:`d(j, i)`.

    .. math::
        E_k = \{\, j \to i \;:\; d(j, i) \le k \,\}

    ``self_loops`` keeps the pairs :math:`i \to i` (hops 0; False drops them, loops of
    ``graph`` included), so attention on it sees each node itself, as on
    ``add_self_loops(graph)``; ``k=1`` then gives exactly the input edges plus self-loops,
    one edge per pair (multi-edges collapse). Unlike
    ``dgl.khop_graph`` (edges of :math:`A^k`: walks of exactly ``k`` steps, counted with
    multiplicity), each reachable pair appears once. Vectorised: ``k`` sparse
    frontier expansions over all samples at once; each sample's edges are contiguous,
    sorted by (destination, source). No node or edge features are copied.
    """
    check_homogeneous(graph, "khop_graph")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (hops) must be an int ≥ 1; got {k!r}")
    num_nodes = graph.num_nodes()
    src, dst = graph.edges()
    # reached[i, j]: j reaches i; keys i · N + j, sorted and unique; hops by frontier.
    keys = torch.arange(num_nodes, device=graph.device) * (num_nodes + 1)
    hops = torch.zeros(num_nodes, dtype=torch.int64, device=graph.device)
    frontier = keys
    order = torch.argsort(src)  # edges by source, to find each node's out-edges
    edge_src, edge_dst = src[order], dst[order]
    for step in range(1, k + 1):
        # Extend every frontier path j ⇝ u by an edge u → i: pairs (i, j).
        f_dst, f_src = frontier // num_nodes, frontier % num_nodes
        first = torch.searchsorted(edge_src, f_dst)
        count = torch.searchsorted(edge_src, f_dst, right=True) - first
        path = torch.repeat_interleave(torch.arange(len(frontier), device=graph.device), count)
        offset = (
            torch.arange(len(path), device=graph.device) - (torch.cumsum(count, 0) - count)[path]
        )
        candidate = edge_dst[first[path] + offset] * num_nodes + f_src[path]
        candidate = torch.unique(candidate)
        new = candidate[~torch.isin(candidate, keys)]
        if len(new) == 0:
            break
        keys = torch.cat([keys, new])
        hops = torch.cat([hops, torch.full_like(new, step)])
        frontier = new
    if not self_loops:
        keep = hops > 0
        keys, hops = keys[keep], hops[keep]
    order = torch.argsort(keys)
    keys, hops = keys[order], hops[order]
    khop = dgl.graph(
        (keys % num_nodes, keys // num_nodes), num_nodes=num_nodes, device=graph.device
    )
    counts = graph.batch_num_nodes()
    khop.set_batch_num_nodes(counts)
    khop.set_batch_num_edges(
        torch.bincount(_sample_of(counts)[keys // num_nodes], minlength=len(counts))
    )
    khop.edata[HOPS] = hops
    return khop


def check_homogeneous(graph: dgl.DGLGraph, what: str) -> None:
    """Raise ValueError unless ``graph`` is a homogeneous DGLGraph (``what`` needs one)."""
    if not isinstance(graph, dgl.DGLGraph) or not graph.is_homogeneous:
        got = (
            f"node types {graph.ntypes} and edge types {graph.canonical_etypes}"
            if isinstance(graph, dgl.DGLGraph)
            else type(graph).__name__
        )
        raise ValueError(f"{what} needs homogeneous DGLGraphs; got {got}")


def union_graphs(*graphs: dgl.DGLGraph, kinds: Sequence[int] | None = None) -> dgl.DGLGraph:
    """The union of the edge sets of graphs on the same nodes, each edge tagged with its kind.

    ``graphs`` must share their nodes and samples (equal ``batch_num_nodes``). Edges of
    ``graphs[g]`` get ``edata['kind'] = kinds[g]`` (int64; by default ``g``, so
    ``union_graphs(graph, expander)`` numbers them :class:`EdgeKind` ``INPUT`` and
    ``EXPANDER``); a ``kind`` field the graphs already carry is replaced. Each sample's
    edges are contiguous: those of ``graphs[0]``, then of ``graphs[1]``, ..., each in its
    graph's order. An edge in two graphs appears twice, once per kind.

    Every other ``edata`` field of any of the graphs is carried over, with zeros on the
    edges of the graphs that lack it (as ``dgl.merge`` does); a field must have the same
    dtype and trailing shape wherever it appears. Node features come from ``graphs[0]``.
    """
    if not graphs:
        raise ValueError("union_graphs needs at least one graph")
    for graph in graphs:
        check_homogeneous(graph, "union_graphs")
    kinds = list(range(len(graphs))) if kinds is None else list(kinds)
    if len(kinds) != len(graphs) or any(
        isinstance(kind, bool) or not isinstance(kind, int) or kind < 0 for kind in kinds
    ):
        raise ValueError(
            f"kinds must hold one non-negative int per graph ({len(graphs)}); got {kinds}"
        )
    first = graphs[0]
    counts = first.batch_num_nodes()
    for index, graph in enumerate(graphs[1:], 1):
        if graph.device != first.device or not torch.equal(graph.batch_num_nodes(), counts):
            raise ValueError(
                f"union_graphs needs graphs on the same nodes and samples; graphs[{index}] has "
                f"per-sample node counts {graph.batch_num_nodes().tolist()} on {graph.device}, "
                f"graphs[0] {counts.tolist()} on {first.device}"
            )
    union, order = _regrouped_graph(
        [(*graph.edges(), graph.batch_num_edges()) for graph in graphs], counts
    )
    union.ndata.update(first.ndata)
    for key in {key for graph in graphs for key in graph.edata} - {EDGE_KIND}:
        union.edata[key] = torch.cat(_aligned_edge_field(graphs, key))[order]
    kind = torch.cat(
        [
            torch.full((graph.num_edges(),), kind, dtype=torch.int64, device=first.device)
            for graph, kind in zip(graphs, kinds, strict=True)
        ]
    )
    union.edata[EDGE_KIND] = kind[order]
    return union


def _aligned_edge_field(graphs: Sequence[dgl.DGLGraph], key: str) -> list[torch.Tensor]:
    """``edata[key]`` of each graph, zeros where a graph lacks it; checks dtype and shape."""
    present = [graph.edata[key] for graph in graphs if key in graph.edata]
    like = present[0]
    for value in present[1:]:
        if value.dtype != like.dtype or value.shape[1:] != like.shape[1:]:
            raise ValueError(
                f"edata[{key!r}] must have one dtype and trailing shape in every graph; got "
                f"{like.dtype} {tuple(like.shape[1:])} and {value.dtype} {tuple(value.shape[1:])}"
            )
    return [
        graph.edata[key]
        if key in graph.edata
        else like.new_zeros((graph.num_edges(), *like.shape[1:]))
        for graph in graphs
    ]


def add_virtual_nodes(graph: dgl.DGLGraph, k: int) -> dgl.DGLGraph:
    r"""``graph`` plus ``k`` virtual (global) nodes per sample, each linked both ways to
    every node of its sample.

    Layout (readout-compatible): the virtual nodes of a sample follow its own nodes, so
    sample :math:`b` with :math:`n_b` nodes becomes :math:`n_b + k` contiguous nodes, its
    :math:`j`-th virtual node at position :math:`n_b + j`, and ``batch_num_nodes`` grows
    by ``k``. ``ndata['virtual']`` (bool) is True at the virtual nodes: ``h[~virtual]``
    gives the real nodes in their original order, so a readout on the original ``graph``
    of ``h[~virtual]`` (``graphformer.nn.Readout``, ``dgl.readout_nodes``) excludes the
    virtual nodes.

    Edges: each sample's edges of ``graph``, then node → virtual edges (``edata['kind']``
    :attr:`EdgeKind.TO_VIRTUAL`), then virtual → node edges (:attr:`EdgeKind.FROM_VIRTUAL`);
    for each virtual node :math:`j`, the real nodes in order. Virtual nodes are not linked
    to each other (as in Exphormer). Edges of ``graph`` keep their ``kind``, or get
    :attr:`EdgeKind.INPUT` when ``graph`` has none.

    Features: existing ``ndata`` fields are zero on the virtual nodes and existing
    ``edata`` fields are zero on the new edges. A caller that wants learned virtual-node
    states (Exphormer learns one embedding per virtual node) writes them in place:
    ``x[virtual] = embedding.weight.repeat(batch_size, 1)`` for an ``nn.Embedding(k, dim)``,
    since the virtual nodes of every sample appear in order :math:`j = 0, \dots, k-1`.
    ``k=0`` gives ``graph``'s layout with the ``virtual`` and ``kind`` fields added.
    """
    check_homogeneous(graph, "add_virtual_nodes")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k (virtual nodes per sample) must be a non-negative int; got {k!r}")
    device = graph.device
    counts = graph.batch_num_nodes()
    new_counts = counts + k
    sample = _sample_of(counts)
    # A real node moves past the k virtual nodes of every sample before its own.
    new_id = torch.arange(graph.num_nodes(), device=device) + k * sample
    virtual_id = (torch.cumsum(new_counts, 0) - k).unsqueeze(1) + torch.arange(k, device=device)
    # Every (virtual node j, real node i) pair of each sample, j-major within the sample.
    virtual, real, pairs = _pairs(torch.full_like(counts, k), counts)
    virtual, real = virtual_id.reshape(-1)[virtual], new_id[real]
    src, dst = graph.edges()
    virtualised, order = _regrouped_graph(
        [
            (new_id[src], new_id[dst], graph.batch_num_edges()),
            (real, virtual, pairs),
            (virtual, real, pairs),
        ],
        new_counts,
    )
    is_virtual = torch.ones(virtualised.num_nodes(), dtype=torch.bool, device=device)
    is_virtual[new_id] = False
    for key, value in graph.ndata.items():
        padded = value.new_zeros((virtualised.num_nodes(), *value.shape[1:]))
        padded[new_id] = value
        virtualised.ndata[key] = padded
    virtualised.ndata[VIRTUAL] = is_virtual
    num_new = 2 * len(real)
    for key, value in graph.edata.items():
        fill = value.new_zeros((num_new, *value.shape[1:]))
        virtualised.edata[key] = torch.cat([value, fill])[order]
    old_kind = graph.edata.get(EDGE_KIND)
    if old_kind is None:
        old_kind = torch.full((graph.num_edges(),), EdgeKind.INPUT, device=device)
    new_kind = torch.tensor([EdgeKind.TO_VIRTUAL, EdgeKind.FROM_VIRTUAL], device=device)
    kind = torch.cat([old_kind.long(), new_kind.repeat_interleave(len(real))])
    virtualised.edata[EDGE_KIND] = kind[order]
    return virtualised
