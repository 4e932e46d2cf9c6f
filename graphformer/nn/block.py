"""The update γ: residual + norm + feed-forward MLP around any message-passing mixer."""

from __future__ import annotations

from graphformer.graphs import add_self_loops_with_features, complete_graph
from graphformer.nn.attention import MultiHeadAttention
from graphformer.nn.checks import check_node_features, check_positive
from graphformer.nn.conv import GCNConv, SAGEConv
from graphformer.nn.message_passing import check_engine, local_engine

import dgl
import torch
from torch import nn

LOCAL_MIXERS = ("gcn", "sage", "attention")
MIXERS = (*LOCAL_MIXERS, "full", "gps")
EDGE_MIXERS = ("attention",)
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}
NORMS = {"layer": nn.LayerNorm, "batch": nn.BatchNorm1d, "none": lambda dim: nn.Identity()}


def choose(kind: str, value: str, options) -> str:
    """Return ``value`` if it is one of ``options``, else raise a ValueError listing them."""
    if value not in options:
        raise ValueError(f"unknown {kind} {value!r}; choose one of {sorted(options)}")
    return value


class GraphTransformerBlock(nn.Module):
    r"""One Transformer layer whose token mixers are message passing on a graph.

    Each mixer :math:`m_b` (a local one, a global one, or both, as in GraphGPS) is a
    branch with its own dropout, residual and norm; the branches are summed, then the FFN.
    Post-norm (GraphGPS, Rampášek et al. 2022; PyG ``GPSConv``):

    .. math::
        h = \sum_b \mathrm{norm}_b\big(x + \mathrm{drop}(m_b(x))\big), \qquad
        x' = \mathrm{norm}_{ffn}\big(h + \mathrm{drop}(\mathrm{FFN}(h))\big)

    Pre-norm (default): :math:`h = x + \sum_b \mathrm{drop}(m_b(\mathrm{norm}_b(x)))`,
    :math:`x' = h + \mathrm{drop}(\mathrm{FFN}(\mathrm{norm}_{ffn}(h)))`. With one mixer
    both are the usual Transformer layer. :math:`\mathrm{FFN}(x) = W_2\,\sigma(W_1 x)`
    with hidden width ``ffn_ratio * dim``.

    Mixers:

    - ``gcn`` / ``sage`` / ``attention``: on the input graph (``attention`` with self-loops
      is GAT-style neighbourhood attention; edge features enter it as Shaw terms);
    - ``full``: attention on the complete graph of each sample (a plain Transformer);
    - ``gps``: ``local_mixer`` and ``full``, each its own branch, as in GraphGPS.

    Parameters
    ----------
    dim : node feature width (input and output).
    mixer : one of ``gcn``, ``sage``, ``attention``, ``full``, ``gps``.
    num_heads : attention heads (``attention``, ``full``, ``gps``).
    local_mixer : the local half of ``gps``.
    ffn_ratio : FFN hidden width / ``dim``.
    activation : ``relu``, ``gelu``, ``silu`` or ``elu``.
    norm : ``layer``, ``batch`` or ``none``.
    prenorm : pre-norm (True) or post-norm (False).
    dropout : dropout on the mixer and FFN outputs (and inside the FFN).
    attn_dropout : dropout on attention weights.
    edge_dim : edge feature width, for attention mixers.
    self_loops : add self-loops to the input graph for local mixers. Turn off when the
        caller passes a graph that already has them (``GraphTransformer`` does this once
        per batch instead of once per block).
    check_finite : raise on NaN/inf input features.
    engine : how message passing runs (see :class:`MultiHeadAttention`). ``auto``: the
        ``full`` attention as padded SDPA per sample (the complete graph is never built),
        local mixers on DGL builtins, or on the torch fallback where DGL could not place
        the graph on the features' device. ``dense``: the same. ``dgl``: DGL builtins
        everywhere, the complete graph included. ``torch``: torch index/scatter
        operations everywhere.
    """

    def __init__(
        self,
        dim: int,
        mixer: str = "attention",
        num_heads: int = 4,
        local_mixer: str = "gcn",
        ffn_ratio: float = 2.0,
        activation: str = "gelu",
        norm: str = "layer",
        prenorm: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        edge_dim: int | None = None,
        self_loops: bool = True,
        check_finite: bool = True,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        check_positive(dim=dim)
        self.mixer_name = choose("mixer", mixer, MIXERS)
        local_name = choose("local_mixer", local_mixer, LOCAL_MIXERS)
        choose("activation", activation, ACTIVATIONS)
        choose("norm", norm, NORMS)
        if ffn_ratio <= 0:
            raise ValueError(f"ffn_ratio must be positive; got {ffn_ratio}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.dim, self.prenorm, self.self_loops = dim, prenorm, self_loops
        self.check_finite = check_finite
        local = local_name if mixer == "gps" else mixer
        self.uses_edges = edge_dim is not None
        if self.uses_edges and local not in EDGE_MIXERS:
            raise ValueError(
                f"edge features (edge_dim={edge_dim}) are used only by the mixers "
                f"{EDGE_MIXERS} (or gps with local_mixer='attention'); got mixer={mixer!r}"
                + (f", local_mixer={local_mixer!r}" if mixer == "gps" else "")
            )

        sparse = local_engine(check_engine(engine))

        def attention(edges: bool, engine: str = sparse) -> MultiHeadAttention:
            return MultiHeadAttention(
                dim,
                num_heads,
                dropout=attn_dropout,
                edge_dim=edge_dim if edges else None,
                check_finite=False,
                engine=engine,
            )

        build_local = {
            "gcn": lambda: GCNConv(dim, dim, self_loops=False, check_finite=False, engine=sparse),
            "sage": lambda: SAGEConv(dim, dim, check_finite=False, engine=sparse),
            "attention": lambda: attention(edges=True),
        }
        self.local = build_local[local]() if mixer != "full" else None
        self.full = attention(edges=False, engine=engine) if mixer in ("full", "gps") else None
        self.norm_local = NORMS[norm](dim) if self.local is not None else None
        self.norm_full = NORMS[norm](dim) if self.full is not None else None
        self.norm_ffn = NORMS[norm](dim)
        hidden = max(1, round(ffn_ratio * dim))
        self.ffn = nn.Sequential(
            nn.Linear(dim, hidden),
            ACTIVATIONS[activation](),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
        )
        self.dropout = nn.Dropout(dropout)

    def mix_local(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_feat: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The local mixer alone, on ``graph`` as given."""
        if isinstance(self.local, MultiHeadAttention):
            return self.local(graph, x, edge_feat=edge_feat)
        return self.local(graph, x)

    def mix_full(
        self, graph: dgl.DGLGraph, x: torch.Tensor, full_graph: dgl.DGLGraph | None = None
    ) -> torch.Tensor:
        """The global mixer alone: attention among the nodes of each sample."""
        if full_graph is None and self.full.engine in ("auto", "dense"):
            return self.full.full_attention(x, graph.batch_num_nodes())
        full_graph = complete_graph(graph) if full_graph is None else full_graph
        return self.full(full_graph, x)

    def forward(
        self,
        graph: dgl.DGLGraph,
        x: torch.Tensor,
        edge_feat: torch.Tensor | None = None,
        full_graph: dgl.DGLGraph | None = None,
    ) -> torch.Tensor:
        """``x``: (N, dim). ``edge_feat``: (E, edge_dim) for edge-aware attention.

        ``full_graph`` is the complete graph of each sample, used by the DGL engine (built
        from ``graph`` when not given); pass it to share one across blocks.
        """
        check_node_features("x", x, graph.num_nodes(), self.dim, self.check_finite)
        if edge_feat is not None and not self.uses_edges:
            raise ValueError(
                "edge_feat was given but the block was built without edge_dim; pass "
                "edge_dim=<edge feature width> (with an attention mixer)"
            )
        if self.self_loops and self.local is not None:
            graph, edge_feat = add_self_loops_with_features(graph, edge_feat)
        branches = []
        if self.local is not None:
            branches.append((self.norm_local, lambda h: self.mix_local(graph, h, edge_feat)))
        if self.full is not None:
            branches.append((self.norm_full, lambda h: self.mix_full(graph, h, full_graph)))
        if self.prenorm:
            h = x + sum(self.dropout(mixer(norm(x))) for norm, mixer in branches)
            return h + self.dropout(self.ffn(self.norm_ffn(h)))
        h = sum(norm(x + self.dropout(mixer(x))) for norm, mixer in branches)
        return self.norm_ffn(h + self.dropout(self.ffn(h)))
