r"""Exphormer (Shirzad et al., ICML 2023) as configuration: attention on a sparser graph.

Exphormer is graphformer's :class:`~graphformer.nn.MultiHeadAttention` on one particular
attention graph per sample (``graphformer.graphs``): the input edges, a random
``degree``-regular expander (:func:`~graphformer.graphs.expander_graph`) and
``virtual_nodes`` virtual nodes linked both ways to every node
(:func:`~graphformer.graphs.add_virtual_nodes`). Its cost is linear in nodes and edges,
:math:`O((|E| + (d + 2k)\,n)\,D)` per layer, yet every node reaches every other node of
its sample in :math:`O(\log n)` expander hops or two virtual-node hops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from graphformer.fields import EDGE_KIND, VIRTUAL
from graphformer.graphs import (
    EdgeKind,
    add_virtual_nodes,
    check_homogeneous,
    derived,
    expander_graph,
)
from graphformer.graphs.expander import (
    check_seed,
    union_graphs,
)
from graphformer.nn.core.checks import check_node_features
from graphformer.nn.core.message_passing import segment_readout
from graphformer.nn.layers.attention import MultiHeadAttention, global_attention_build
from graphformer.nn.mixers import Mixer, register

import dgl
import torch
from torch import nn

if TYPE_CHECKING:
    pass


@dataclass
class ExphormerGraph:
    """The attention graph of one batch and the indices that lay features out on it.

    ``graph``: input ∪ expander ∪ virtual nodes (``edata['kind']``, ``ndata['virtual']``).
    ``kind``: (E',) each edge's :class:`~graphformer.graphs.EdgeKind`. ``real``: (N,) the
    attention graph's row of each input node. ``gather``: (N + B·k,) for each row of the
    attention graph, its row in ``cat([x, virtual states of every sample])``.
    """

    graph: dgl.DGLGraph
    kind: torch.Tensor
    real: torch.Tensor
    gather: torch.Tensor
    #: The index tensors copied to the features' device (PyPI's DGL keeps graphs on the
    #: CPU), once per device.
    _moved: dict = field(default_factory=dict, repr=False)

    def indices(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(kind, real, gather) on ``device``."""
        if device not in self._moved:
            self._moved[device] = tuple(t.to(device) for t in (self.kind, self.real, self.gather))
        return self._moved[device]


def _check_setting(name: str, value: object, ok: bool, want: str, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not ok:
        raise ValueError(f"{name} must be {want}; got {value!r}. {hint}")


def check_exphormer_settings(degree: int, virtual_nodes: int, seed: int) -> None:
    """Raise ValueError naming the bad Exphormer setting and what to pass instead."""
    _check_setting(
        "degree",
        degree,
        isinstance(degree, int) and degree > 0 and degree % 2 == 0,
        "a positive even int (the expander links each node both ways to degree/2 random "
        "permutations of its sample)",
        "Exphormer's exp_deg=k is degree=2·k (CLUSTER: 6, PATTERN: 14).",
    )
    _check_setting(
        "virtual_nodes",
        virtual_nodes,
        isinstance(virtual_nodes, int) and virtual_nodes >= 0,
        "a non-negative int (virtual nodes per sample)",
        "Pass 0 for none (Exphormer's num_virt_node).",
    )
    check_seed(seed)  # an int torch's generator takes


def _check_batched(graph: dgl.DGLGraph) -> None:
    """Raise ValueError unless ``graph`` is homogeneous and its edges stay in its samples."""
    check_homogeneous(graph, "ExphormerAttention")
    nodes, edges = graph.batch_num_nodes(), graph.batch_num_edges()
    samples = torch.arange(len(nodes), device=nodes.device)
    sample_of_node = torch.repeat_interleave(samples, nodes)
    if int(edges.sum()) != graph.num_edges() or int(nodes.sum()) != graph.num_nodes():
        crossing = True
    else:
        sample_of_edge = torch.repeat_interleave(samples, edges)
        src, dst = graph.edges()
        crossing = bool(
            ((sample_of_node[src] != sample_of_edge) | (sample_of_node[dst] != sample_of_edge))
            .any()
            .item()
        )
    if crossing:
        raise ValueError(
            "ExphormerAttention needs the graph's batch information to describe its samples: "
            f"batch_num_nodes {nodes.tolist()[:8]} and batch_num_edges {edges.tolist()[:8]} "
            f"(first 8) do not hold its {graph.num_nodes()} nodes and {graph.num_edges()} "
            "edges sample by sample, each edge inside one sample. Batch samples with "
            "dgl.batch, or call set_batch_num_nodes / set_batch_num_edges to match."
        )


def build_exphormer_graph(
    graph: dgl.DGLGraph, degree: int = 6, virtual_nodes: int = 1, seed: int = 0
) -> ExphormerGraph:
    """``add_virtual_nodes(union_graphs(graph, expander_graph(graph, degree, seed)),
    virtual_nodes)`` with the indices :class:`ExphormerAttention` needs, built anew.

    Only ``graph``'s structure and batch information are read (none of its features).
    """
    check_exphormer_settings(degree, virtual_nodes, seed)
    _check_batched(graph)
    bare = dgl.graph(graph.edges(), num_nodes=graph.num_nodes(), device=graph.device)
    bare.set_batch_num_nodes(graph.batch_num_nodes())
    bare.set_batch_num_edges(graph.batch_num_edges())
    attention = add_virtual_nodes(
        union_graphs(bare, expander_graph(bare, degree, seed)), virtual_nodes
    )
    virtual = attention.ndata[VIRTUAL]
    real = torch.nonzero(~virtual).squeeze(1)
    gather = torch.empty(attention.num_nodes(), dtype=torch.int64, device=attention.device)
    gather[real] = torch.arange(len(real), device=attention.device)
    # The virtual rows, sample after sample, j = 0..k-1 within each (add_virtual_nodes).
    gather[torch.nonzero(virtual).squeeze(1)] = len(real) + torch.arange(
        attention.num_nodes() - len(real), device=attention.device
    )
    return ExphormerGraph(attention, attention.edata[EDGE_KIND], real, gather)


def exphormer_graph(
    graph: dgl.DGLGraph, degree: int = 6, virtual_nodes: int = 1, seed: int = 0
) -> ExphormerGraph:
    """:func:`build_exphormer_graph`, built once per ``graph`` object and settings and shared
    (``graphformer.graphs.derived``): every layer of a stack attends on the same graph."""
    key = f"exphormer(degree={degree}, virtual_nodes={virtual_nodes}, seed={seed})"
    return derived(graph, key, lambda g: build_exphormer_graph(g, degree, virtual_nodes, seed))


@register("exphormer")
class ExphormerAttention(Mixer):
    r"""Exphormer's global mixer: multi-head attention on input ∪ expander ∪ virtual nodes.

    For each sample, the attention graph :math:`G^*` has the input edges :math:`E`
    (kind ``INPUT``), a random ``degree``-regular expander :math:`E_X` (``EXPANDER``;
    Exphormer's ``Random-d``, :func:`~graphformer.graphs.expander_graph`) and :math:`k` =
    ``virtual_nodes`` virtual nodes :math:`u_1, \dots, u_k`, each receiving from
    (``TO_VIRTUAL``) and sending to (``FROM_VIRTUAL``) every node. It is a multigraph; an
    edge that is both an input and an expander edge appears once per kind. With the
    virtual rows :math:`x_{u_j} = c^{(\ell)}_j + \frac{1}{n}\sum_{i} x_i` (a learned vector
    per layer and virtual node plus the mean of the sample's nodes), for every destination
    :math:`i` and head of width :math:`d`:

    .. math::
        s_{ij} = \frac{q_i \cdot (k_j + W_{EK}\, t_{\kappa(ij)})}{\sqrt{d}}, \qquad
        \alpha_{ij} = \frac{\exp s_{ij}}{\sum_{(j' \to i) \in G^*} \exp s_{ij'}}, \qquad
        o_i = W_O \big\Vert_h \sum_{(j \to i) \in G^*} \alpha_{ij} v_j

    where :math:`t_\kappa` is a learned embedding of the edge's kind :math:`\kappa \in`
    :class:`~graphformer.graphs.EdgeKind`, sums run over the edge multiset (a repeated edge
    counts as often as it appears) and :math:`q, k, v` are
    :class:`~graphformer.nn.MultiHeadAttention`'s projections (``edge_value=False``: the kind
    enters the score only, as a Shaw et al. key term). Only the rows of the real nodes are
    returned, so norms, readouts and heads never see a virtual node; ``edge_state`` passes
    through unchanged.

    Relation to Exphormer's own layer (``graphgps/layer/Exphormer.py``): there the edge
    embedding :math:`e_{ij}` gates the score per channel, :math:`s_{ij} = \sum_c q_{ic}
    k_{jc} (W_E e_{ij})_c / \sqrt{d}`, clamped to :math:`[-5, 5]` before :math:`\exp`, with
    no biases and no output projection. Here the kind adds a query-dependent term
    :math:`q_i \cdot a_\kappa` (additive, not multiplicative: a kind can raise or lower a
    whole group of edges for a query, but cannot reweigh channels of :math:`q_i \odot k_j`),
    the softmax is unclamped, and :math:`W_O` and biases are kept, which lets the dense
    engine run the same call as one masked SDPA.

    Choices (and Exphormer's):

    - **The expander** is drawn per batch from ``seed`` and the batch's per-sample sizes
      (a function of both, so deterministic in eval for a fixed batch composition);
      Exphormer draws one per dataset graph in preprocessing and keeps it. Hence the
      mixer is not equivariant to relabelling the nodes of a sample (the expander is
      drawn over node positions); it is equivariant when the expander is relabelled with
      them, and invariant to the order of the input edges.
    - **Virtual-node states**: each layer writes :math:`c^{(\ell)}_j` (``virtual``, an
      ``nn.Embedding(k, dim)``) plus the mean of its sample's input rows at the virtual
      rows, so a real node reads a summary of its whole sample through a virtual node in
      one hop; the virtual rows' outputs are dropped. Exphormer instead carries each
      layer's virtual-node attention output on to the next layer's input (the virtual
      nodes gather the sample by attention); a mixer here carries node and edge state
      only, so the summary is re-read each layer as a mean, and the ``TO_VIRTUAL`` edges
      change nothing that is returned.
    - **Edge kinds**: one embedding per :class:`~graphformer.graphs.EdgeKind` (Exphormer:
      the dataset's edge encoding on input edges, one embedding for expander edges, and
      an in and an out embedding per virtual node).
    - The graph a :class:`~graphformer.nn.GraphTransformerBlock` hands its global mixer is
      the input graph, or the input graph plus self-loops when the stack's local mixer
      runs on them (``GraphTransformer`` adds them once); the loops then count as input
      edges, which only adds each node to its own neighbourhood.

    The attention graph is built once per batch graph object and these settings
    (:func:`exphormer_graph`, ``graphformer.graphs.derived``) and shared by every layer.

    Parameters
    ----------
    dim : node feature width (input and output); split over ``num_heads``.
    num_heads : attention heads; must divide ``dim``.
    degree : the expander's degree, a positive even int (Exphormer's ``exp_deg`` × 2).
    virtual_nodes : virtual nodes per sample, ≥ 0 (Exphormer's ``num_virt_node``).
    attn_dropout : dropout on the attention weights.
    seed : seeds the expander's permutations.
    check_finite : raise on NaN/inf input features.
    engine : :class:`~graphformer.nn.MultiHeadAttention`'s ``engine`` (``dgl``, ``torch``, or
        ``auto``; ``dense`` only where its dense engine accepts this graph and edge terms).
    fast_dropout : :class:`~graphformer.nn.MultiHeadAttention`'s (cheaper dropout masks; off
        by default).

    >>> import dgl, torch
    >>> from graphformer.nn import ExphormerAttention
    >>> graph = dgl.batch([dgl.graph(([0, 1], [1, 2])), dgl.graph(([0, 1, 2], [1, 2, 3]))])
    >>> x, _ = ExphormerAttention(8, 2, degree=2)(graph, torch.randn(7, 8))
    >>> x.shape  # the virtual nodes' rows are dropped
    torch.Size([7, 8])
    """

    scope = "global"
    permutation_equivariant = False  # see "The expander" above
    settings = ("degree", "virtual_nodes", "seed")
    forward_is_mix = True

    def __init__(
        self,
        dim: int,
        num_heads: int,
        degree: int = 6,
        virtual_nodes: int = 1,
        attn_dropout: float = 0.0,
        seed: int = 0,
        check_finite: bool = True,
        engine: str = "auto",
        fast_dropout: bool = False,
    ) -> None:
        super().__init__()
        check_exphormer_settings(degree, virtual_nodes, seed)
        self.dim, self.degree, self.virtual_nodes, self.seed = dim, degree, virtual_nodes, seed
        self.check_finite = check_finite
        self.attention = MultiHeadAttention(
            dim,
            num_heads,
            attn_dropout=attn_dropout,
            edge_dim=dim,
            edge_value=False,
            check_finite=False,
            engine=engine,
            fast_dropout=fast_dropout,
        )
        self.engine = self.attention.engine
        self.kind = nn.Embedding(len(EdgeKind), dim)
        self.virtual = nn.Embedding(virtual_nodes, dim) if virtual_nodes else None
        self.reset_parameters()

    build = classmethod(global_attention_build)

    def reset_parameters(self) -> None:
        """The attention as :meth:`MultiHeadAttention.reset_parameters`; the kind and
        virtual-node embeddings :math:`\\mathcal{N}(0, 1)`, the scale of normed features."""
        self.attention.reset_parameters()
        nn.init.normal_(self.kind.weight)
        if self.virtual is not None:
            nn.init.normal_(self.virtual.weight)

    def attention_graph(self, graph: dgl.DGLGraph) -> ExphormerGraph:
        """The attention graph this mixer runs on for ``graph`` (shared, built once)."""
        return exphormer_graph(graph, self.degree, self.virtual_nodes, self.seed)

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x``: (N, dim) on ``graph``'s nodes. Returns (N, dim) and ``edge_state``."""
        dtype = self.kind.weight.dtype
        check_node_features("x", x, graph.num_nodes(), self.dim, self.check_finite, dtype)
        built = self.attention_graph(graph)
        kind, real, gather = built.indices(x.device)
        if self.virtual is not None:
            sizes = graph.batch_num_nodes()
            summary = segment_readout(x, sizes, "mean")  # (B, dim): each sample's mean
            states = (summary.unsqueeze(1) + self.virtual.weight).reshape(-1, self.dim)
            x = torch.cat([x, states]).index_select(0, gather)
        out = self.attention(built.graph, x, edge_feat=self.kind(kind))
        if self.virtual is not None:
            out = out.index_select(0, real)
        return out, edge_state
