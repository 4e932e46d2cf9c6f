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
Distances come from ``graphformer.data.spd`` (``dgl.shortest_dist``, cached per dataset)
as ``ndata['spd']``: row :math:`j` holds node :math:`j`'s distances to the nodes of its
sample, ``-1`` where unreachable, padded with ``-1`` to a common width.
"""

from __future__ import annotations

from graphformer.graphs import VIRTUAL
from graphformer.nn.checks import check_positive

import dgl
import torch
from torch import nn


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
            f"distances must be an integer tensor (ndata['spd'] from graphformer.data.spd); "
            f"got {got}"
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
