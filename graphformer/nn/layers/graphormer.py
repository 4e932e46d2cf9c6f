r"""Graphormer's structural encodings (Ying et al., 2021), as a bias and an embedding.

Graphormer is Transformer attention plus two encodings of the graph's structure:

- **spatial encoding**: a learned per-head scalar for each shortest-path distance, added
  to the attention score, :math:`s^h_{ij} = q^h_i \cdot k^h_j / \sqrt{d} + b^h_{\phi(j, i)}`
  (:class:`SpatialBias`);
- **centrality encoding**: learned embeddings of each node's in- and out-degree, added to
  its input features, :math:`h_i = x_i + z^-_{\deg^-(i)} + z^+_{\deg^+(i)}`
  (:class:`CentralityEncoding`).

Here the spatial encoding is no new layer: it is the additive ``edge_bias`` of
:class:`graphformer.nn.MultiHeadAttention` on ``graphformer.graphs.complete_graph`` of
each sample (or on any attention graph on the input graph's nodes whose edges stay within
samples, e.g. input ∪ expander; virtual nodes have no distances).
Distances come from ``graphformer.data.features.distances`` (``dgl.shortest_dist``, cached per
dataset) as ``ndata['spd']``: row :math:`j` holds node :math:`j`'s distances to the nodes of its
sample, ``-1`` where unreachable, padded with ``-1`` to a common width.

:class:`GraphormerAttention` is the global mixer ``graphormer`` of
``graphformer.nn.mixers``: that attention with that bias on the complete graph of each
sample. The centrality encoding enters ``GraphTransformer`` (``centrality_max_degree``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphformer.fields import SPD, VIRTUAL
from graphformer.graphs import complete_graph_of
from graphformer.nn.core.checks import check_positive
from graphformer.nn.layers.attention import MultiHeadAttention, global_attention_build
from graphformer.nn.mixers import Mixer, register

import dgl
import torch
from torch import nn

if TYPE_CHECKING:
    pass


def _init_embedding(embedding: nn.Embedding) -> None:
    """Graphormer's initialisation of its encoding tables: normal, standard deviation 0.02."""
    nn.init.normal_(embedding.weight, std=0.02)


class SpatialBias(nn.Module):
    r"""Graphormer's spatial encoding: a per-head bias for each edge of an attention graph.

    For the attention edge :math:`j \to i` (query :math:`i`, key :math:`j`) and head
    :math:`h`,

    .. math::
        b^h_{ij} = W_{\phi(j, i),\,h}, \qquad
        \phi(j, i) = \begin{cases} \min(D_{ji}, \text{max\_distance}) & D_{ji} \ge 0 \\
        \text{max\_distance} + 1 & \text{unreachable} \end{cases}

    where :math:`D_{ji}` is the number of edges on a shortest directed path from :math:`j`
    to :math:`i` in the input graph: the hops :math:`j`'s features need to reach :math:`i`
    by message passing (Graphormer's graphs are undirected, where :math:`D` is symmetric).
    Distances beyond ``max_distance`` share one weight; unreachable pairs have their own.
    :math:`W` is an ``nn.Embedding(max_distance + 2, num_heads)``.

    Pass the result as ``edge_bias`` to :class:`graphformer.nn.MultiHeadAttention` on the
    same attention graph. Cost: one gather per edge, :math:`\sum_b n_b^2` on the complete
    graph.

    >>> import dgl, torch
    >>> from graphformer.graphs import complete_graph_of
    >>> from graphformer.nn import SpatialBias
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> SpatialBias(num_heads=2)(complete_graph_of(graph), dgl.shortest_dist(graph)).shape
    torch.Size([9, 2])
    """

    def __init__(self, num_heads: int, max_distance: int = 20) -> None:
        super().__init__()
        check_positive(num_heads=num_heads, max_distance=max_distance)
        self.num_heads, self.max_distance = num_heads, max_distance
        self.embedding = nn.Embedding(max_distance + 2, num_heads)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_embedding(self.embedding)

    def distance_index(self, distance: torch.Tensor) -> torch.Tensor:
        """Row of the embedding for each distance: clipped at ``max_distance``; -1 (or any
        negative value: unreachable) maps to ``max_distance + 1``."""
        distance = distance.long()
        return torch.where(
            distance < 0, self.max_distance + 1, distance.clamp(max=self.max_distance)
        )

    def forward(self, graph: dgl.DGLGraph, distances: torch.Tensor) -> torch.Tensor:
        """``graph``: the attention graph, its nodes laid out as the input graph's (e.g.
        ``complete_graph(input_graph)``), every edge within one sample. ``distances``: the
        input graph's ``ndata['spd']``, (N, width) integers, row :math:`j` the distances
        from node :math:`j` to the nodes of its sample in order. Returns (E, num_heads).
        """
        if VIRTUAL in graph.ndata and graph.ndata[VIRTUAL].any():
            raise ValueError(
                "SpatialBias got an attention graph with virtual nodes (add_virtual_nodes), "
                "which have no shortest-path distances; bias the graph without them"
            )
        check_distances(graph, distances)
        device = distances.device
        sizes = graph.batch_num_nodes().to(device)
        sample = torch.repeat_interleave(torch.arange(len(sizes), device=device), sizes)
        start = torch.cumsum(sizes, 0) - sizes
        src, dst = (ends.to(device) for ends in graph.edges())
        if not torch.equal(sample[src], sample[dst]):
            raise ValueError(
                "SpatialBias needs an attention graph whose edges stay within samples (the "
                "distances are per sample); an edge joins two samples"
            )
        distance = distances[src, dst - start[sample[dst]]]
        return self.embedding(self.distance_index(distance))


def check_distances(graph: dgl.DGLGraph, distances: torch.Tensor) -> None:
    """Raise ValueError unless ``distances`` is an integer (N, width) tensor whose width
    covers the largest sample of ``graph``."""
    sizes = graph.batch_num_nodes()
    largest = int(sizes.max()) if len(sizes) else 0
    if not isinstance(distances, torch.Tensor) or distances.is_floating_point():
        got = distances.dtype if isinstance(distances, torch.Tensor) else type(distances).__name__
        raise ValueError(
            "distances must be an integer tensor (ndata['spd'] from "
            f"graphformer.data.features.distances); got {got}"
        )
    if distances.dim() != 2 or distances.shape[0] != graph.num_nodes():
        raise ValueError(
            f"distances must have shape ({graph.num_nodes()}, width) = (number of nodes, "
            f"width ≥ the largest sample); got {tuple(distances.shape)}"
        )
    if distances.shape[1] < largest:
        raise ValueError(
            f"distances have width {distances.shape[1]}, narrower than the largest sample "
            f"({largest} nodes); were they computed for another dataset?"
        )


class CentralityEncoding(nn.Module):
    r"""Graphormer's centrality encoding: embeddings of each node's in- and out-degree.

    .. math::
        c_i = z^-_{\min(\deg^-(i),\ \text{max\_degree})}
            + z^+_{\min(\deg^+(i),\ \text{max\_degree})}

    with :math:`\deg^-` the number of in-edges and :math:`\deg^+` of out-edges of node
    :math:`i` in ``graph`` (count them on the input graph, before self-loops or virtual
    nodes are added), and :math:`z^\pm` two ``nn.Embedding(max_degree + 1, dim)`` tables.
    Degrees above ``max_degree`` share its embedding. Add the output to the node
    embeddings: :math:`h_i = x_i + c_i`. On an undirected graph both degrees are equal and
    the two tables act as one.

    >>> import dgl
    >>> from graphformer.nn import CentralityEncoding
    >>> CentralityEncoding(8, max_degree=4)(dgl.graph(([0, 1, 2], [1, 2, 0]))).shape
    torch.Size([3, 8])
    """

    def __init__(self, dim: int, max_degree: int = 64) -> None:
        super().__init__()
        check_positive(dim=dim, max_degree=max_degree)
        self.dim, self.max_degree = dim, max_degree
        self.in_degree = nn.Embedding(max_degree + 1, dim)
        self.out_degree = nn.Embedding(max_degree + 1, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_embedding(self.in_degree)
        _init_embedding(self.out_degree)

    def forward(self, graph: dgl.DGLGraph) -> torch.Tensor:
        """(N, dim) degree embeddings of the nodes of the homogeneous ``graph``."""
        if not graph.is_homogeneous:
            raise ValueError(
                f"CentralityEncoding needs a homogeneous graph; got edge types "
                f"{graph.canonical_etypes}"
            )
        device = self.in_degree.weight.device
        in_degree = graph.in_degrees().to(device).clamp(max=self.max_degree)
        out_degree = graph.out_degrees().to(device).clamp(max=self.max_degree)
        return self.in_degree(in_degree) + self.out_degree(out_degree)


@register("graphormer")
class GraphormerAttention(Mixer):
    r"""Graphormer's self-attention (Ying et al., 2021): full attention within each sample,
    its scores biased by the spatial encoding.

    For query :math:`i`, key :math:`j` of the same sample and head :math:`h`,

    .. math::
        \alpha^h_{ij} = \operatorname{softmax}_j\Big(\frac{q^h_i \cdot k^h_j}{\sqrt{d}}
            + b^h_{\phi(j, i)}\Big), \qquad
        o_i = W_O \big\Vert_h \sum_j \alpha^h_{ij} v^h_j

    with :math:`b` a :class:`SpatialBias`. This is :class:`MultiHeadAttention` on
    ``complete_graph_of(graph)`` with ``edge_bias = SpatialBias(complete, ndata['spd'])``:
    no new attention layer. A mixer of ``graphformer.nn.mixers`` (``graphormer``):
    ``mixer(graph, x, edge_state) -> (x, edge_state)``, edge state passing through.

    ``graph`` must carry ``ndata['spd']`` (:attr:`needs`), e.g. from
    ``GraphDataModule(distances=True)``. It may be the input graph or the input graph plus
    self-loops (``GraphTransformer`` adds them once for local mixers): both have the input
    graph's nodes, in its order, and the complete graph depends only on those.

    Differences from the paper: each layer has its own bias table (Graphormer shares one
    across layers); no edge encoding along shortest paths and no virtual-node distance
    (use ``graphformer.nn.SpatialBias`` on another attention graph for those variants).

    Parameters
    ----------
    dim : node feature width; divisible by ``num_heads``.
    num_heads : attention heads (one bias per head and distance).
    max_distance : distances beyond it share one bias; unreachable pairs have their own.
    attn_dropout : dropout on the attention weights.
    check_finite : raise on NaN/inf input features.
    engine : ``graphformer.nn.core.message_passing``; ``dense`` runs the biased attention only
        where :class:`MultiHeadAttention`'s dense engine supports an ``edge_bias``.
    fast_dropout : :class:`MultiHeadAttention`'s (cheaper dropout masks; off by default).

    >>> import dgl, torch
    >>> from graphformer.nn import GraphormerAttention
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> graph.ndata["spd"] = dgl.shortest_dist(graph)  # as graphformer's data provides
    >>> x, _ = GraphormerAttention(8, 2)(graph, torch.randn(3, 8))
    >>> x.shape
    torch.Size([3, 8])
    """

    scope = "global"
    #: ``ndata`` fields the mixer reads (GraphTransformer and the tests check this).
    needs = (SPD,)
    settings = ("max_distance",)
    forward_is_mix = True

    def __init__(
        self,
        dim: int,
        num_heads: int,
        max_distance: int = 20,
        attn_dropout: float = 0.0,
        check_finite: bool = True,
        engine: str = "auto",
        fast_dropout: bool = False,
    ) -> None:
        super().__init__()
        kwargs = {"check_finite": check_finite, "engine": engine, "fast_dropout": fast_dropout}
        self.attention = MultiHeadAttention(dim, num_heads, attn_dropout, **kwargs)
        self.spatial = SpatialBias(num_heads, max_distance)

    build = classmethod(global_attention_build)

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x``: (N, dim) on the nodes of ``graph``. Returns (N, dim) and ``edge_state``."""
        if SPD not in graph.ndata:
            raise ValueError(missing_distances("the graphormer mixer", graph))
        complete = complete_graph_of(graph)
        bias = self.spatial(complete, graph.ndata[SPD].to(x.device))
        return self.attention(complete, x, edge_bias=bias.to(x.dtype)), edge_state


def missing_distances(who: str, graph: dgl.DGLGraph) -> str:
    """The error message for a graph without ``ndata['spd']``: what reads it, what to do."""
    return (
        f"{who} reads shortest-path distances from graph.ndata[{SPD!r}], but the graph has "
        f"only ndata keys {sorted(graph.ndata)}. Turn them on in the data: "
        f"GraphDataModule(distances=True) (config: data.distances=true), or wrap a dataset "
        "in graphformer.data.features.distances.WithDistances(dataset, "
        "load_or_compute_distances(graphs, path))"
    )
