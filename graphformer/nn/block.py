"""The update γ: residual + norm + feed-forward MLP around any message-passing mixer."""

from __future__ import annotations

from typing import Any

from graphformer.graphs import add_self_loops_with_features
from graphformer.nn.checks import check_batch_norm, check_node_features, check_positive
from graphformer.nn.message_passing import check_dense_taken, check_engine
from graphformer.nn.mixers import MixerOptions, build_mixer, names

import dgl
import torch
from torch import nn

LOCAL_MIXERS = names("local")
GLOBAL_MIXERS = names("global")
#: The block's mixer names: every registered mixer, and ``gps`` (local + full).
MIXERS = (*LOCAL_MIXERS, *GLOBAL_MIXERS, "gps")
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}
NORMS = {"layer": nn.LayerNorm, "batch": nn.BatchNorm1d, "none": lambda dim: nn.Identity()}


def choose(kind: str, value: str, options) -> str:
    """Return ``value`` if it is one of ``options``, else raise a ValueError listing them."""
    if value not in options:
        raise ValueError(f"unknown {kind} {value!r}; choose one of {sorted(options)}")
    return value


def split_mixer(
    mixer: str, local_mixer: str, global_attention: str = "full"
) -> tuple[str | None, str | None]:
    """(local name, global name) that a block's ``mixer``, ``local_mixer`` and
    ``global_attention`` select."""
    choose("mixer", mixer, MIXERS)
    if mixer == "gps":
        local = choose("local_mixer", local_mixer, LOCAL_MIXERS)
        return local, choose("global_attention", global_attention, GLOBAL_MIXERS)
    return (mixer, None) if mixer in LOCAL_MIXERS else (None, mixer)


def feed_forward(dim: int, ffn_ratio: float, activation: str, dropout: float) -> nn.Sequential:
    r""":math:`\mathrm{FFN}(x) = W_2\,\mathrm{drop}(\sigma(W_1 x))`, hidden width
    ``ffn_ratio * dim``; the FFN of every block, encoder and decoder alike."""
    if ffn_ratio <= 0:
        raise ValueError(f"ffn_ratio must be positive; got {ffn_ratio}")
    hidden = max(1, round(ffn_ratio * dim))
    return nn.Sequential(
        nn.Linear(dim, hidden),
        ACTIVATIONS[choose("activation", activation, ACTIVATIONS)](),
        nn.Dropout(dropout),
        nn.Linear(hidden, dim),
    )


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

    Mixers are modules called as ``mixer(graph, x, edge_state) -> (x, edge_state)``
    (``graphformer.nn.mixers``), chosen by name from the registry or injected as modules,
    like PyG's ``GPSConv(conv=...)``. The local mixer's edge state is returned with
    ``return_edges=True``, so a stack can pass it on to the next block. Names:

    - local (on the input graph): ``gcn``, ``sage``, ``attention`` (with self-loops:
      GAT-style neighbourhood attention, edge features as Shaw terms), and every other
      ``local`` entry of ``graphformer.nn.mixers.REGISTRY``;
    - global: ``full``, attention among all nodes of each sample (a plain Transformer);
      ``graphormer``, the same with Graphormer's shortest-path bias (reads ``ndata['spd']``);
    - ``gps``: ``local_mixer`` and ``global_attention`` (default ``full``), each its own
      branch, as in GraphGPS.

    Parameters
    ----------
    dim : node feature width (input and output).
    mixer : a registered mixer name or ``gps``; ignored when modules are injected.
    num_heads : attention heads (``attention``, ``full``, ``gps``).
    local_mixer : the local half of ``gps``.
    global_attention : the global half of ``gps``: a ``global`` registry name.
    global_kwargs : settings of the global mixer (its registry entry lists them).
    ffn_ratio : FFN hidden width / ``dim``.
    activation : ``relu``, ``gelu``, ``silu`` or ``elu``.
    norm : ``layer``, ``batch`` or ``none``.
    prenorm : pre-norm (True) or post-norm (False).
    dropout : dropout on the mixer and FFN outputs (and inside the FFN and the mixers
        that own their residual).
    attn_dropout : dropout on attention weights.
    edge_dim : edge feature width, for mixers that read edge features.
    self_loops : add self-loops to the input graph for local mixers that run on them
        (built once per graph object and reused). ``GraphTransformer`` passes the looped
        graph itself, so edge state keeps one layout across blocks.
    check_finite : raise on NaN/inf input features.
    engine : ``graphformer.nn.message_passing``; a block's ``dense`` runs its global
        attention as padded SDPA and its local mixers on ``auto``; refused without one.
    local, global_mixer : mixer modules to use instead of the named ones (either or both).
    """

    def __init__(
        self,
        dim: int,
        mixer: str = "attention",
        num_heads: int = 4,
        local_mixer: str = "gcn",
        global_attention: str = "full",
        global_kwargs: dict[str, Any] | None = None,
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
        local: nn.Module | None = None,
        global_mixer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        check_positive(dim=dim)
        choose("activation", activation, ACTIVATIONS)
        choose("norm", norm, NORMS)
        check_engine(engine)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.dim, self.prenorm, self.self_loops = dim, prenorm, self_loops
        self.check_finite = check_finite
        if local is None and global_mixer is None:
            options = MixerOptions(
                dim, num_heads, dropout, attn_dropout, edge_dim, engine, dict(global_kwargs or {})
            )
            local_name, global_name = split_mixer(mixer, local_mixer, global_attention)
            local = build_mixer(local_name, options, "local") if local_name else None
            if global_name:
                global_mixer = build_mixer(global_name, options, "global")
        self.reads_edges = getattr(local, "reads_edges", False)
        if edge_dim is not None and not self.reads_edges:
            raise ValueError(
                f"edge features (edge_dim={edge_dim}) need a local mixer that reads them "
                f"(attention, gatedgcn, gine, ...); got mixer={mixer!r}"
                + (f", local_mixer={local_mixer!r}" if mixer == "gps" else "")
            )
        self.local, self.full = local, global_mixer
        check_dense_taken(engine, self, "GraphTransformerBlock")  # message_passing: the rule
        #: ``graph.ndata`` fields its mixers read besides ``x`` (``graphformer.nn.mixers``).
        self.needs = tuple(
            sorted({key for m in (local, global_mixer) for key in getattr(m, "needs", ())})
        )
        self.norm_local = NORMS[norm](dim) if local is not None else None
        self.norm_full = NORMS[norm](dim) if global_mixer is not None else None
        self.norm_ffn = NORMS[norm](dim)
        self.ffn = feed_forward(dim, ffn_ratio, activation, dropout)
        self.dropout = nn.Dropout(dropout)

    def _branch(
        self,
        mixer: nn.Module,
        norm: nn.Module,
        graph: dgl.DGLGraph,
        x: torch.Tensor,
        edge_state: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One branch: pre-norm ``drop(m(norm(x)))``, post-norm ``norm(x + drop(m(x)))``
        (``norm(m(x))`` for a mixer that owns its residual)."""
        owns_residual = getattr(mixer, "owns_residual", False)
        if self.prenorm:
            h = norm(x)
            out, edge_state = mixer(graph, h, edge_state)
            return (out - h if owns_residual else self.dropout(out)), edge_state
        out, edge_state = mixer(graph, x, edge_state)
        return norm(out if owns_residual else x + self.dropout(out)), edge_state

    def forward(
        self,
        graph: dgl.DGLGraph,
        x: torch.Tensor,
        edge_feat: torch.Tensor | None = None,
        return_edges: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """``x``: (N, dim). ``edge_feat``: (E, edge_dim), the edge state of ``graph``.

        Returns (N, dim), and with ``return_edges`` also the edge state after the local
        mixer, laid out on the edges of the graph it ran on (``graph`` plus self-loops
        for mixers that add them, unless ``self_loops=False``).
        """
        dtype = self.ffn[0].weight.dtype
        check_node_features("x", x, graph.num_nodes(), self.dim, self.check_finite, dtype)
        check_batch_norm(self.norm_ffn, x)
        if edge_feat is not None and not self.reads_edges:
            raise ValueError(
                "edge_feat was given but the block was built without edge_dim; pass "
                "edge_dim=<edge feature width> (with a mixer that reads edge features)"
            )
        edge_state, branches = edge_feat, []
        if self.local is not None:
            local_graph = graph
            if self.self_loops and getattr(self.local, "self_loops", False):
                local_graph, edge_state = add_self_loops_with_features(graph, edge_state)
            out, edge_state = self._branch(self.local, self.norm_local, local_graph, x, edge_state)
            branches.append(out)
        if self.full is not None:
            branches.append(self._branch(self.full, self.norm_full, graph, x, None)[0])
        if self.prenorm:
            h = x + sum(branches)
            x = h + self.dropout(self.ffn(self.norm_ffn(h)))
        else:
            h = sum(branches)
            x = self.norm_ffn(h + self.dropout(self.ffn(h)))
        return (x, edge_state) if return_edges else x
