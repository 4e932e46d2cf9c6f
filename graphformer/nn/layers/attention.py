"""Multi-head attention as message passing: the graph decides which attention it is."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from graphformer.graphs import complete_graph_of
from graphformer.nn.core.checks import (
    check_divisible,
    check_edge_tensor,
    check_node_features,
    check_positive,
)
from graphformer.nn.core.dense import (
    AttentionLayout,
    Padding,
    dense_attention,
    full_padding,
    padded_attention,
)
from graphformer.nn.core.dropout import dropout_module
from graphformer.nn.core.message_passing import (
    MessagePassing,
    check_engine,
    decide_engine,
)
from graphformer.nn.mixers import Mixer, Sizes, register

import dgl
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from graphformer.nn.config import BlockConfig


@register("attention")
class MultiHeadAttention(Mixer):
    r"""Multi-head scaled dot-product attention over the in-edges of each node.

    For an edge :math:`j \to i` (source :math:`j` is a key/value, destination :math:`i`
    the query) and head :math:`h` of width :math:`d`:

    .. math::
        s_{ij} = \frac{q_i \cdot (k_j + a^K_{ij})}{\sqrt{d}} + b_{ij}, \qquad
        \alpha_{ij} = \operatorname{softmax}_{j \in N(i)} s_{ij}, \qquad
        o_i = W_O \big\Vert_h \sum_{j \in N(i)} \alpha_{ij} (v_j + a^V_{ij})

    with :math:`q = W_Q x_{dst}`, :math:`k = W_K x_{src}`, :math:`v = W_V x_{src}`.
    The optional :math:`a^K_{ij} = W_{EK} e_{ij}` and :math:`a^V_{ij} = W_{EV} e_{ij}` are
    Shaw et al. (2018) relative-position terms from edge features; :math:`b_{ij}` is an
    optional additive per-head bias (Graphormer style). φ = ``u_dot_v`` then
    ``edge_softmax``, then ``u_mul_e``; □ = ``sum`` (``graphformer.nn.core.message_passing``).

    On ``graphformer.graphs.complete_graph`` this is exactly Transformer self-attention;
    on ``complete_bipartite`` it is cross-attention; on the input graph plus self-loops it
    is GAT-style neighbourhood attention. A node with no in-edges outputs
    ``out_proj.bias`` (zeros before the projection), never NaN.

    As the mixer ``attention`` (``graphformer.nn.mixers``) it attends over each node's
    in-edges and itself (``self_loops``), the edge state as its Shaw terms; with
    ``record_attention`` set, :meth:`mix` keeps its last weights in ``weights``
    ((E, num_heads), before dropout). :class:`FullAttention` (``full``) is the same layer
    attending among all nodes of each sample (:meth:`sample_attention`).

    Parameters
    ----------
    dim : width of queries and of the output; split over ``num_heads``
        (``torch.nn.MultiheadAttention``'s ``embed_dim``; :attr:`embed_dim` reads it too).
    num_heads : number of heads; must divide ``dim``.
    attn_dropout : dropout on the attention weights :math:`\alpha` (``dropout`` of
        ``torch.nn.MultiheadAttention``).
    bias : biases on the four projections.
    src_dim : width of the source (key/value) features for cross-attention; defaults
        to ``dim`` (``kdim``/``vdim`` of ``torch.nn.MultiheadAttention``).
    edge_dim : width of edge features; enables the Shaw terms ``edge_key`` and
        ``edge_value``.
    edge_value : with ``edge_dim``, also the value term :math:`a^V_{ij}` (default); False
        keeps only the key term, so edge features only reweigh the edges (Exphormer's
        edge-kind embeddings do this), and the dense engine can run the call.
    check_finite : raise on NaN/inf input features.
    engine : see ``graphformer.nn.core.message_passing``; each call asks
        :func:`~graphformer.nn.core.message_passing.decide_engine` once. ``dense`` runs the call
        as padded SDPA per sample (``graphformer.nn.core.dense``): on a graph from
        ``graphformer.graphs.complete_graph`` with a key-padding mask only, on any other
        graph whose edges stay within samples with the adjacency (and the bias and Shaw key
        terms) as the mask; it raises on calls it cannot run (cross-attention, Shaw value
        terms, returned weights, edges between samples). ``auto`` runs a complete graph
        dense, another graph dense where ``graphformer.nn.core.dense.dense_pays_off`` (small,
        dense samples), everything else as message passing: DGL's, or the torch engine's
        where DGL could not place the graph on the features' device.
    fast_dropout : draw the dropout masks on :math:`\alpha` with
        :func:`graphformer.nn.core.dropout.fast_dropout` (16 random bits per weight, 1 at
        p = 0.5) instead of SDPA's / ``nn.Dropout``'s ``bernoulli_`` (one double per weight,
        serial on the CPU): the dense engine then writes the attention out
        (:func:`~graphformer.nn.core.dense.padded_attention`). Other masks for a seed, so off
        by default; ``block.fast_dropout`` (``BlockConfig``) for layers built from configs.
        The causal decoder path keeps SDPA's dropout.

    The projections ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj`` map one-to-one
    onto ``torch.nn.MultiheadAttention``'s ``in_proj_weight`` chunks and ``out_proj``.

    >>> import dgl, torch
    >>> from graphformer.graphs import complete_graph
    >>> from graphformer.nn import MultiHeadAttention
    >>> attention = MultiHeadAttention(8, num_heads=2)
    >>> x = torch.randn(5, 8)  # two samples: 2 and 3 nodes
    >>> attention(complete_graph([2, 3]), x).shape  # Transformer self-attention per sample
    torch.Size([5, 8])
    >>> attention.mix(dgl.graph(([0, 1], [1, 2]), num_nodes=5), x)[0].shape  # on a sparse graph
    torch.Size([5, 8])
    """

    self_loops = True
    resizes = True
    #: The class can read edge state (Shaw terms); an instance does when built with edge_dim.
    reads_edges = True
    #: Over the graph's edges, a node attends over its in-edges only (``full``: no).
    layerwise = "in_edges"
    #: Set by ``GraphTransformer.attention_weights``: :meth:`mix` keeps ``weights``.
    record_attention = False
    weights: torch.Tensor | None = None

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attn_dropout: float = 0.0,
        bias: bool = True,
        src_dim: int | None = None,
        edge_dim: int | None = None,
        edge_value: bool = True,
        check_finite: bool = True,
        engine: str = "auto",
        fast_dropout: bool = False,
    ) -> None:
        super().__init__()
        check_divisible(dim, num_heads)
        self.engine = check_engine(engine)
        src_dim = dim if src_dim is None else src_dim
        check_positive(src_dim=src_dim)
        if edge_dim is not None:
            check_positive(edge_dim=edge_dim)
        if not 0.0 <= attn_dropout < 1.0:
            raise ValueError(f"attn_dropout must be in [0, 1); got {attn_dropout}")
        self.dim, self.num_heads, self.src_dim = dim, num_heads, src_dim
        self.head_dim = dim // num_heads
        self.edge_dim, self.check_finite = edge_dim, check_finite
        self.reads_edges = edge_dim is not None
        self.q_proj = nn.Linear(dim, dim, bias=bias)
        self.k_proj = nn.Linear(src_dim, dim, bias=bias)
        self.v_proj = nn.Linear(src_dim, dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        if edge_dim is not None:
            self.edge_key = nn.Linear(edge_dim, dim, bias=False)
            self.edge_value = nn.Linear(edge_dim, dim, bias=False) if edge_value else None
        if not isinstance(fast_dropout, bool):
            raise ValueError(f"fast_dropout must be True or False; got {fast_dropout!r}")
        self.fast_dropout = fast_dropout
        self.attn_dropout = dropout_module(attn_dropout, fast_dropout)  # message passing's
        self.reset_parameters()

    @property
    def embed_dim(self) -> int:
        """``dim`` under ``torch.nn.MultiheadAttention``'s name."""
        return self.dim

    @classmethod
    def build(cls, config: BlockConfig, sizes: Sizes) -> Mixer:
        """``attention`` in a block: on the local engine, Shaw terms when ``edge_dim``; as a
        GNN convolution ``in_dim → out_dim``: :class:`ProjectedAttention`, one head where
        ``num_heads`` does not divide ``out_dim``."""
        if not sizes.in_block:
            heads = config.num_heads if sizes.out_dim % config.num_heads == 0 else 1
            return ProjectedAttention(
                sizes.in_dim,
                sizes.out_dim,
                heads,
                config.attn_dropout,
                engine=config.engine,
                fast_dropout=config.fast_dropout,
            )
        return cls(
            config.dim,
            config.num_heads,
            attn_dropout=config.attn_dropout,
            edge_dim=sizes.edge_dim,
            check_finite=False,
            engine=sizes.engine(config),
            fast_dropout=config.fast_dropout,
        )

    def mix(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attention over in-edges, ``edge_state`` as the Shaw terms (passed on unchanged)."""
        if not self.record_attention:
            return self(graph, x, edge_feat=edge_state), edge_state
        out, self.weights = self(graph, x, edge_state, return_attention=True)
        return out, edge_state

    def reset_parameters(self) -> None:
        r"""Initialise as ``torch.nn.MultiheadAttention._reset_parameters`` does.

        Self-attention: the three projections are chunks of one (3·E, E) in-projection drawn
        Xavier-uniform as a whole (bound :math:`\sqrt{6 / 4E}`, not :math:`\sqrt{6 / 2E}`
        per chunk); cross-attention: each drawn Xavier-uniform on its own. ``out_proj``
        keeps ``nn.Linear``'s default (bound :math:`1/\sqrt{E}`); all biases are zero.
        Deep post-norm GPS stacks stay at chance with per-chunk Xavier projections
        (√2 larger, so scores twice as large) and a Xavier ``out_proj`` (√3 larger).
        """
        projections = (self.q_proj, self.k_proj, self.v_proj)
        with torch.no_grad():
            if self.src_dim == self.embed_dim:
                in_proj = torch.empty(3 * self.embed_dim, self.embed_dim)
                nn.init.xavier_uniform_(in_proj)
                for linear, chunk in zip(projections, in_proj.chunk(3), strict=True):
                    linear.weight.copy_(chunk)
            else:
                for linear in projections:
                    nn.init.xavier_uniform_(linear.weight)
            self.out_proj.reset_parameters()
            for linear in (*projections, self.out_proj):
                if linear.bias is not None:
                    nn.init.zeros_(linear.bias)
        if self.edge_dim is not None:
            nn.init.xavier_uniform_(self.edge_key.weight)
            if self.edge_value is not None:
                nn.init.xavier_uniform_(self.edge_value.weight)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(-1, self.num_heads, self.head_dim)

    def packed_projections(self, x: torch.Tensor) -> torch.Tensor:
        """Queries, keys and values of self-attention in one matmul: (N, 3, H, D), unscaled."""
        projections = (self.q_proj, self.k_proj, self.v_proj)
        weight = torch.cat([linear.weight for linear in projections])
        bias = None if self.q_proj.bias is None else torch.cat([p.bias for p in projections])
        return F.linear(x, weight, bias).view(-1, 3, self.num_heads, self.head_dim)

    def projections(
        self, x_src: torch.Tensor, x_dst: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries :math:`q / \\sqrt d` of ``x_dst``, keys and values of ``x_src``, each
        (N, H, D): the projections of cross-attention (and of message passing)."""
        q = self._heads(self.q_proj(x_dst)) / math.sqrt(self.head_dim)
        return q, self._heads(self.k_proj(x_src)), self._heads(self.v_proj(x_src))

    def _dropout(self) -> float:
        """The dropout probability on the attention weights for this call (SDPA's)."""
        return self.attn_dropout.p if self.training else 0.0

    def _fast(self) -> dict[str, bool]:
        """``fast_dropout=...`` for the dense engine's calls."""
        return {"fast_dropout": self.fast_dropout}

    def _output(self, out: torch.Tensor) -> torch.Tensor:
        """(N, H, D) heads → (N, embed_dim) through ``out_proj``."""
        return self.out_proj(out.reshape(-1, self.embed_dim))

    def full_attention(
        self, x: torch.Tensor, sizes: torch.Tensor, graph: dgl.DGLGraph | None = None
    ) -> torch.Tensor:
        """Self-attention among the nodes of each sample (the dense engine, no graph).

        ``x``: (N, embed_dim), nodes ordered sample by sample; ``sizes``: (B,) per-sample
        node counts (``graph.batch_num_nodes()``). Equals ``forward`` on
        ``complete_graph(sizes)``. With the batch ``graph`` whose sizes these are, the
        padding is built once per graph and shared by all layers (``full_padding``).
        """
        padding = full_padding(graph, x.device) if graph is not None else None
        qkv = self.packed_projections(x)
        out = dense_attention(qkv, sizes, self._dropout(), padding=padding, **self._fast())
        return self._output(out)

    def sample_attention(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        """Attention among all nodes of each sample of ``graph`` (a plain Transformer):
        padded SDPA where :func:`~graphformer.nn.core.message_passing.decide_engine` runs it
        dense (``auto``, ``dense``), else message passing on the complete graph (built
        once per batch graph, ``graphformer.graphs.complete_graph_of``)."""
        if decide_engine(self.engine, None, x, attention=True, from_sizes=True).dense:
            return self.full_attention(x, graph.batch_num_nodes(), graph)
        return self(complete_graph_of(graph), x)

    def dense_causal(self, x: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        r"""Masked self-attention :math:`o_i = W_O \sum_{j \le i} \mathrm{softmax}_j(q_i
        \cdot k_j / \sqrt d)\, v_j` within each sample as padded SDPA: this layer on
        ``causal_graph(sizes)``. ``x``: (N, embed_dim), rows sample after sample; ``sizes``:
        (B,). Samples are right-padded, so a valid query's causal window never reaches
        padding and ``is_causal`` alone is the whole mask."""
        if x.shape[0] == 0:
            return self.out_proj(x)
        padding = Padding(sizes, x.device, max_groups=1)
        (block,) = padding.pad(self.packed_projections(x))
        q, k, v = block.transpose(1, 3).unbind(2)  # (B, H, L, D) each
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self._dropout(), is_causal=True)
        return self._output(padding.unpad([out.transpose(1, 2)]))

    def dense_cross(
        self,
        memory: torch.Tensor,
        memory_sizes: torch.Tensor,
        x: torch.Tensor,
        sizes: torch.Tensor,
    ) -> torch.Tensor:
        r"""Cross-attention :math:`o_i = W_O \sum_{j \in M(i)} \mathrm{softmax}_j(q_i
        \cdot k_j / \sqrt d)\, v_j` over the memory rows :math:`M(i)` of query i's sample
        as padded SDPA: this layer on ``complete_bipartite(memory_sizes, sizes)`` with inputs
        ``(memory, x)``. ``memory``: (N_src, src_dim); ``x``: (N_dst, embed_dim)."""
        if x.shape[0] == 0 or memory.shape[0] == 0:  # no queries, or no keys anywhere
            return self.out_proj(x.new_zeros(x.shape))
        queries = Padding(sizes, x.device, max_groups=1)
        keys = Padding(memory_sizes, x.device, max_groups=1)
        q, k, v = self.projections(memory, x)
        (q,), (k,), (v,) = queries.pad(q), keys.pad(k), keys.pad(v)  # (B, L, H, D)
        (mask,) = keys.key_masks()
        q, k, v = (part.transpose(1, 2) for part in (q, k, v))
        out = padded_attention(q, k, v, mask, self._dropout(), 1.0, self.fast_dropout)
        return self._output(queries.unpad([out.transpose(1, 2)]))

    def forward(
        self,
        graph: dgl.DGLGraph,
        x: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
        edge_feat: torch.Tensor | None = None,
        edge_bias: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend over in-edges.

        ``x`` is (N, embed_dim) for self-attention, or ``(x_src, x_dst)`` of shapes
        (N_src, src_dim) and (N_dst, embed_dim) on a bipartite graph. ``edge_feat`` is
        (E, edge_dim); ``edge_bias`` is (E, num_heads). Returns (N_dst, embed_dim), and
        with ``return_attention`` also the (E, num_heads) weights :math:`\\alpha` before
        dropout.
        """
        x_src, x_dst = x if isinstance(x, tuple) else (x, x)
        name_src, name_dst = ("x_src", "x_dst") if isinstance(x, tuple) else ("x", "x")
        dtype = self.q_proj.weight.dtype
        check_node_features(
            name_dst, x_dst, graph.num_dst_nodes(), self.embed_dim, self.check_finite, dtype
        )
        if x_src is not x_dst:
            check_node_features(
                name_src, x_src, graph.num_src_nodes(), self.src_dim, self.check_finite, dtype
            )
        num_edges = graph.num_edges()
        if edge_feat is not None:
            if self.edge_dim is None:
                raise ValueError(
                    "edge_feat was given but the layer was built without edge_dim; pass "
                    "edge_dim=<edge feature width> to MultiHeadAttention"
                )
            shape = (num_edges, self.edge_dim)
            check_edge_tensor("edge_feat", edge_feat, shape, self.check_finite, dtype=dtype)
        if edge_bias is not None:
            shape = (num_edges, self.num_heads)
            check_edge_tensor("edge_bias", edge_bias, shape, self.check_finite, dtype=dtype)

        cross = isinstance(x, tuple)
        value_terms = edge_feat is not None and self.edge_value is not None
        plan = decide_engine(
            self.engine,
            graph,
            x_dst,
            attention=True,
            cross=cross,
            edge_terms=edge_feat is not None or edge_bias is not None,
            value_terms=value_terms,
            weights=return_attention,
        )
        if plan.dense and plan.layout is None:  # a complete graph: no mask to build
            return self.full_attention(x_dst, graph.batch_num_nodes(), graph)
        if plan.dense:
            return self._dense_on_layout(plan.layout, x_dst, edge_feat, edge_bias)
        q, k, v = self.projections(x_src, x_dst)
        ek = self._heads(self.edge_key(edge_feat)) if edge_feat is not None else None
        ev = self._heads(self.edge_value(edge_feat)) if value_terms else None
        mp = MessagePassing(graph, plan.engine, x_dst)
        score = mp.u_dot_v(k, q)  # (E, H, 1)
        if ek is not None:
            score = score + mp.e_dot_v(ek, q)
        if edge_bias is not None:
            score = score + edge_bias.unsqueeze(-1)
        attention = mp.edge_softmax(score)
        weights = self.attn_dropout(attention)
        out = mp.u_mul_e_reduce(v, weights, "sum")
        if ev is not None:
            out = out + mp.copy_e_reduce(ev * weights, "sum")
        out = self._output(out)
        return (out, attention.squeeze(-1)) if return_attention else out

    def _dense_on_layout(
        self,
        layout: AttentionLayout,
        x: torch.Tensor,
        edge_feat: torch.Tensor | None,
        edge_bias: torch.Tensor | None,
    ) -> torch.Tensor:
        """Self-attention on ``layout``'s graph as masked SDPA; the bias and the Shaw key
        terms :math:`q_i \\cdot a^K_{ij} / \\sqrt d` enter the mask."""
        qkv = self.packed_projections(x)
        terms = edge_bias
        if edge_feat is not None:  # q_i · a^K_ij / √d, (E, H)
            q = qkv[:, 0].index_select(0, layout.dst) / math.sqrt(self.head_dim)
            key_terms = (q * self._heads(self.edge_key(edge_feat))).sum(-1)
            terms = key_terms if terms is None else terms + key_terms
        return self._output(layout.attend(qkv, terms, self._dropout(), **self._fast()))


def global_attention_build(
    cls: type[Mixer], config: BlockConfig, sizes: Sizes, **settings: object
) -> Mixer:
    """The ``build`` of every global attention mixer (``full``, ``exphormer``,
    ``graphormer``, ``distance_bias``): ``cls(dim, num_heads, attn_dropout=...,
    check_finite=False, engine=..., fast_dropout=..., **settings)``, ``settings`` being
    ``config.global_kwargs`` (the class's ``settings``)."""
    return cls(
        config.dim,
        config.num_heads,
        attn_dropout=config.attn_dropout,
        check_finite=False,
        engine=config.engine,
        fast_dropout=config.fast_dropout,
        **settings,
    )


@register("full")
class FullAttention(MultiHeadAttention):
    """:class:`MultiHeadAttention` as the global mixer ``full``: attention among all nodes of
    each sample (a plain Transformer), :meth:`~MultiHeadAttention.sample_attention`. The
    same layer and weights; only the scope and :meth:`mix` differ.

    >>> import dgl, torch
    >>> from graphformer.nn import FullAttention
    >>> graph = dgl.batch([dgl.graph(([0], [1])), dgl.graph(([0, 1], [1, 2]))])
    >>> out, _ = FullAttention(8, 2).mix(graph, torch.randn(5, 8))  # the edges are unused
    >>> out.shape
    torch.Size([5, 8])
    """

    scope = "global"
    self_loops = False
    reads_edges = False
    resizes = False
    #: Softmax over all nodes of the sample: not a sum that chunks can accumulate.
    layerwise = None

    build = classmethod(global_attention_build)

    def mix(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.sample_attention(graph, x), edge_state


class ProjectedAttention(MultiHeadAttention):
    r""":class:`MultiHeadAttention` after a linear map ``in_dim → out_dim``:
    :math:`\mathrm{Attn}(W x + b)`, the ``attention`` convolution of a
    :class:`~graphformer.nn.GNN` (its layers change width; attention keeps it). As GAT's
    :math:`W`, the map is part of the layer; ``project`` holds it.

    >>> import dgl, torch
    >>> from graphformer.nn import ProjectedAttention
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> ProjectedAttention(4, 8, num_heads=2)(graph, torch.randn(3, 4)).shape
    torch.Size([3, 8])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_heads: int,
        attn_dropout: float = 0.0,
        check_finite: bool = False,
        engine: str = "auto",
        fast_dropout: bool = False,
    ) -> None:
        project = nn.Linear(in_dim, out_dim)  # drawn first: the RNG order of earlier releases
        super().__init__(
            out_dim,
            num_heads,
            attn_dropout,
            check_finite=check_finite,
            engine=engine,
            fast_dropout=fast_dropout,
        )
        self.in_dim, self.project = in_dim, project

    def forward(self, graph: dgl.DGLGraph, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """``x``: (N, in_dim) → (N, out_dim); ``kwargs`` as :meth:`MultiHeadAttention.forward`."""
        return super().forward(graph, self.project(x), **kwargs)
