"""Exphormer's attention graph: input edges ∪ a random expander ∪ virtual nodes, and the
k-hop graph; edges tagged by kind (``edata['kind']``) or hop count (``edata['hops']``)."""

from __future__ import annotations

import enum
from collections.abc import Sequence

from graphformer.fields import EDGE_KIND, HOPS, VIRTUAL
from graphformer.graphs.batch import (
    Counts,
    check_homogeneous,
    check_within_samples,
    regrouped_graph,
    sample_of,
    sample_pairs,
    sample_sizes,
)

import dgl
import torch


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


#: The seeds ``torch.Generator.manual_seed`` takes: ints in [-2**63, 2**64).
SEED_RANGE = (-(2**63), 2**64)


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` if it is an int in :data:`SEED_RANGE` (what ``torch.Generator.manual_seed``
    takes), else a ValueError naming the value and the range."""
    low, high = SEED_RANGE
    if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed < high:
        raise ValueError(
            f"{name} must be an int; got {seed!r}. It must lie in [-2**63, 2**64) (the seeds "
            f"torch's generator takes): pass e.g. {name}=0, or a large seed modulo 2**64."
        )
    return seed


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
    by sample) of uniform keys drawn from
    ``torch.Generator().manual_seed(seed)`` (``seed``: an int in :data:`SEED_RANGE`, else
    ValueError), so the graph is a function of (sizes, degree, seed). To give each dataset
    graph one fixed expander, build it per graph
    (``expander_graph(g.num_nodes(), d, seed=index)``) and batch those. Edges
    of each sample are contiguous: per node :math:`i`, its :math:`d/2` out-edges to
    :math:`\sigma_k(i)`, then its :math:`d/2` in-edges from them.
    """
    if isinstance(degree, bool) or not isinstance(degree, int) or degree <= 0 or degree % 2:
        raise ValueError(
            f"degree must be a positive even int (degree/2 random permutations, each linked "
            f"both ways); got {degree!r}. Exphormer's exp_deg=k is degree=2·k."
        )
    check_seed(seed)
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
    sample = sample_of(counts)
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
    sorted by (destination, source). No node or edge features are copied. An edge between
    two samples is refused (ValueError).
    """
    check_homogeneous(graph, "khop_graph")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (hops) must be an int ≥ 1; got {k!r}")
    check_within_samples(graph, "khop_graph")
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
        torch.bincount(sample_of(counts)[keys // num_nodes], minlength=len(counts))
    )
    khop.edata[HOPS] = hops
    return khop


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
    union, order = regrouped_graph(
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
    sample = sample_of(counts)
    # A real node moves past the k virtual nodes of every sample before its own.
    new_id = torch.arange(graph.num_nodes(), device=device) + k * sample
    virtual_id = (torch.cumsum(new_counts, 0) - k).unsqueeze(1) + torch.arange(k, device=device)
    # Every (virtual node j, real node i) pair of each sample, j-major within the sample.
    virtual, real, pairs = sample_pairs(torch.full_like(counts, k), counts)
    virtual, real = virtual_id.reshape(-1)[virtual], new_id[real]
    src, dst = graph.edges()
    virtualised, order = regrouped_graph(
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
