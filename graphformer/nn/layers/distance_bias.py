r"""Interatomic distances as an attention bias (Graphormer-3D, Transformer-M): 3D where the
data has it.

Shi et al. ("Benchmarking Graphormer on Large-Scale Molecular Modeling", 2022) and Luo et
al. ("One Transformer Can Understand Both 2D & 3D Molecular Data", ICLR 2023) give full
attention among the atoms of a molecule a per-head bias computed from each pair's
Euclidean distance, expanded in Gaussian radial basis functions:

.. math::
    d_{ij} = \lVert p_i - p_j \rVert_2, \qquad
    \psi_k(d) = \exp\!\Big(-\frac{1}{2}\Big(\frac{d - \mu_k}{|\sigma_k| + \epsilon}\Big)^2\Big),
    \quad k = 1, \dots, K,

    b^h_{ij} = \Big(W_2\, \mathrm{GELU}\big(W_1\, \psi(d_{ij}) + c_1\big) + c_2\Big)_h .

The package's thesis once more: this is no new attention layer. It is
:class:`graphformer.nn.MultiHeadAttention` on ``complete_graph_of(graph)`` with
``edge_bias`` = :class:`GaussianDistanceBias` of the complete graph's edges, the
distances taken edge by edge with DGL's builtin ``fn.u_sub_v`` on ``ndata['pos']``
(:data:`graphformer.fields.POSITION`, 3D coordinates in Å, which the dataset provides).
The dense engine (padded per-sample SDPA) takes the same per-edge bias, so both engines
compute the same function. Only distances enter, so the output is invariant under
rotations, reflections and translations of each sample's coordinates.

Differences from Graphormer-3D: no per-atom-pair-type affine map of the distance before
the expansion (its ``mul``/``bias`` embeddings), the RBF not divided by
:math:`\sqrt{2\pi}\,\sigma_k`, centres initialised evenly on :math:`[0, \text{cutoff}]`
rather than uniformly at random, each layer with its own bias (Graphormer-3D shares one).
"""

from __future__ import annotations

from graphformer.fields import POSITION, VIRTUAL, Field, register_field
from graphformer.graphs import complete_graph_of
from graphformer.nn.core.checks import check_positive
from graphformer.nn.layers.attention import MultiHeadAttention, global_attention_build
from graphformer.nn.mixers import Mixer, register

import dgl
import dgl.function as fn
import torch
from torch import nn

#: The σ floor of the Gaussian basis (Å), so that a width learned towards 0 cannot divide
#: by zero.
SIGMA_EPS = 1e-3


def dataset_positions(graph: dgl.DGLGraph) -> torch.Tensor:
    """``graph.ndata['pos']`` as the dataset wrote it (this field is read, never computed);
    a ValueError naming the field and the data that provides it when it is missing."""
    if POSITION not in graph.ndata:
        raise ValueError(POSITIONS.missing(graph))
    return graph.ndata[POSITION]


#: 3D coordinates are a field the dataset provides (``Field.provided_by``): the data module
#: checks that every sample carries them rather than computing them.
POSITIONS = register_field(
    Field(
        POSITION,
        dataset_positions,
        description="3D atom coordinates in Å",
        provided_by="a dataset with 3D coordinates (data=qm9 stores them from its atoms' xyz)",
    )
)


def check_positions(graph: dgl.DGLGraph, positions: object) -> torch.Tensor:
    """``positions`` if it is a finite floating (N, 3) tensor for the N nodes of ``graph``;
    a ValueError saying what was expected otherwise."""
    if not isinstance(positions, torch.Tensor) or not positions.is_floating_point():
        got = positions.dtype if isinstance(positions, torch.Tensor) else type(positions).__name__
        raise ValueError(
            f"ndata[{POSITION!r}] must hold floating 3D coordinates in Å, shape (N, 3); got {got}"
        )
    if positions.shape != (graph.num_nodes(), 3):
        raise ValueError(
            f"ndata[{POSITION!r}] must have shape ({graph.num_nodes()}, 3) = (number of "
            f"nodes, xyz); got {tuple(positions.shape)}"
        )
    if not torch.isfinite(positions).all():
        rows = (~torch.isfinite(positions)).any(-1).nonzero().flatten()[:5].tolist()
        raise ValueError(
            f"ndata[{POSITION!r}] has NaN/inf coordinates (first nodes {rows}); check the "
            "dataset's geometry"
        )
    return positions


def edge_distances(graph: dgl.DGLGraph, positions: torch.Tensor) -> torch.Tensor:
    r"""(E,) Euclidean length :math:`\lVert p_{u} - p_{v} \rVert` of every edge
    :math:`u \to v` of ``graph``, ``positions`` (N, 3) on its nodes (DGL's ``u_sub_v``)."""
    with graph.local_scope():
        graph.ndata["_pos"] = positions
        graph.apply_edges(fn.u_sub_v("_pos", "_pos", "_delta"))
        return torch.linalg.vector_norm(graph.edata["_delta"], dim=-1)


class GaussianDistanceBias(nn.Module):
    r"""A per-head attention bias from a distance: Gaussian RBF expansion, then an MLP.

    .. math::
        \psi_k(d) = \exp\!\Big(-\frac{1}{2}\Big(\frac{d - \mu_k}{|\sigma_k| + \epsilon}
        \Big)^2\Big), \qquad
        b(d) = W_2\, \mathrm{GELU}(W_1 \psi(d) + c_1) + c_2 \in \mathbb{R}^{H}

    with :math:`K` = ``num_kernels`` centres :math:`\mu_k`, initialised evenly on
    :math:`[0, \text{cutoff}]` (Å), and widths :math:`\sigma_k`, initialised to the
    spacing of the centres; both learned unless ``learn_centres=False``;
    :math:`\epsilon` = :data:`SIGMA_EPS`. Distances beyond the cutoff still get a
    bias (the basis decays smoothly there); there is no hard cut.

    >>> import torch
    >>> from graphformer.nn import GaussianDistanceBias
    >>> GaussianDistanceBias(num_heads=4, num_kernels=8)(torch.tensor([0.0, 1.1, 2.5])).shape
    torch.Size([3, 4])
    """

    def __init__(
        self,
        num_heads: int,
        num_kernels: int = 32,
        cutoff: float = 10.0,
        learn_centres: bool = True,
    ) -> None:
        super().__init__()
        check_positive(num_heads=num_heads, num_kernels=num_kernels)
        if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not cutoff > 0:
            raise ValueError(f"cutoff must be a positive distance in Å; got {cutoff!r}")
        if not isinstance(learn_centres, bool):
            raise ValueError(f"learn_centres must be True or False; got {learn_centres!r}")
        self.num_heads, self.num_kernels, self.cutoff = num_heads, num_kernels, float(cutoff)
        centres = torch.linspace(0.0, self.cutoff, num_kernels)
        widths = torch.full((num_kernels,), self.cutoff / max(num_kernels - 1, 1))
        if learn_centres:
            self.centres, self.widths = nn.Parameter(centres), nn.Parameter(widths)
        else:
            self.register_buffer("centres", centres)
            self.register_buffer("widths", widths)
        self.mlp = nn.Sequential(
            nn.Linear(num_kernels, num_kernels), nn.GELU(), nn.Linear(num_kernels, num_heads)
        )

    def expand(self, distance: torch.Tensor) -> torch.Tensor:
        r"""(..., K): :math:`\psi_k(d)` of each distance."""
        z = (distance.unsqueeze(-1) - self.centres) / (self.widths.abs() + SIGMA_EPS)
        return torch.exp(-0.5 * z.square())

    def forward(self, distance: torch.Tensor) -> torch.Tensor:
        """``distance``: (...) in Å. Returns (..., num_heads)."""
        return self.mlp(self.expand(distance.to(self.centres.dtype)))


@register("graphormer_3d")
class Graphormer3DAttention(Mixer):
    r"""Full attention within each sample, its scores biased per head by the 3D distance
    between the two atoms (Graphormer-3D / Transformer-M).

    For query :math:`i`, key :math:`j` of the same sample and head :math:`h`,

    .. math::
        \alpha^h_{ij} = \operatorname{softmax}_j\Big(\frac{q^h_i \cdot k^h_j}{\sqrt{d}}
            + b^h(\lVert p_i - p_j \rVert)\Big), \qquad
        o_i = W_O \big\Vert_h \sum_j \alpha^h_{ij} v^h_j

    with :math:`b` a :class:`GaussianDistanceBias` and :math:`p` the coordinates in
    ``graph.ndata['pos']`` (:data:`graphformer.fields.POSITION`, Å). It is
    :class:`MultiHeadAttention` on ``complete_graph_of(graph)`` with that ``edge_bias``.
    A mixer of ``graphformer.nn.mixers`` (``graphormer_3d``): ``mix(graph, x, edge_state)
    -> (x, edge_state)``, edge state passing through. Invariant under rotations,
    reflections and translations of each sample's coordinates; equivariant under
    relabelling its nodes.

    ``needs = ("pos",)``: unlike shortest-path distances the data cannot compute
    coordinates from the graph; the dataset provides them (``data=qm9``), and
    ``graphformer-train`` checks that every sample has them before training.

    Parameters
    ----------
    dim : node feature width; divisible by ``num_heads``.
    num_heads : attention heads (one bias per head and pair).
    num_kernels : Gaussian basis functions :math:`K`.
    cutoff : the last centre, in Å (centres evenly on [0, cutoff]).
    learn_centres : learn the centres and widths (else fixed).
    attn_dropout : dropout on the attention weights.
    check_finite : raise on NaN/inf input features.
    engine : ``graphformer.nn.core.message_passing`` (``dense``: padded SDPA, same bias).
    fast_dropout : :class:`MultiHeadAttention`'s (cheaper dropout masks; off by default).

    >>> import dgl, torch
    >>> from graphformer.nn import Graphormer3DAttention
    >>> graph = dgl.graph(([0, 1], [1, 2]))
    >>> graph.ndata["pos"] = torch.tensor([[0.0, 0, 0], [1.1, 0, 0], [1.6, 0.9, 0]])
    >>> x, _ = Graphormer3DAttention(8, 2)(graph, torch.randn(3, 8))
    >>> x.shape
    torch.Size([3, 8])
    """

    scope = "global"
    #: ``ndata`` fields the mixer reads: 3D coordinates, which the dataset provides.
    needs = (POSITION,)
    settings = ("num_kernels", "cutoff", "learn_centres")
    forward_is_mix = True

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_kernels: int = 32,
        cutoff: float = 10.0,
        learn_centres: bool = True,
        attn_dropout: float = 0.0,
        check_finite: bool = True,
        engine: str = "auto",
        fast_dropout: bool = False,
    ) -> None:
        super().__init__()
        kwargs = {"check_finite": check_finite, "engine": engine, "fast_dropout": fast_dropout}
        self.attention = MultiHeadAttention(dim, num_heads, attn_dropout, **kwargs)
        self.distance_bias = GaussianDistanceBias(num_heads, num_kernels, cutoff, learn_centres)

    build = classmethod(global_attention_build)

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x``: (N, dim) on the nodes of ``graph``, which carries ``ndata['pos']``
        (N, 3). Returns (N, dim) and ``edge_state``."""
        if POSITION not in graph.ndata:
            raise ValueError(POSITIONS.missing(graph, "the graph given to graphormer_3d"))
        if VIRTUAL in graph.ndata and graph.ndata[VIRTUAL].any():
            raise ValueError(
                "graphormer_3d got a graph with virtual nodes (add_virtual_nodes), which have "
                "no 3D coordinates; use it on the molecule's atoms only"
            )
        positions = check_positions(graph, graph.ndata[POSITION])
        complete = complete_graph_of(graph)
        distance = edge_distances(complete, positions.to(x.device, self._dtype()))
        bias = self.distance_bias(distance)
        return self.attention(complete, x, edge_bias=bias.to(x.dtype)), edge_state

    def _dtype(self) -> torch.dtype:
        return self.distance_bias.mlp[0].weight.dtype
