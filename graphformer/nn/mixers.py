"""The mixer registry: the one place where config strings name token mixers.

A mixer is an ``nn.Module`` called as ``mixer(graph, x, edge_state) -> (x, edge_state)``:
node features (N, dim) in and out; ``edge_state`` (E, ...) or None, returned updated by
mixers that update edge features (GatedGCN) and unchanged by the others. Optional
attributes tell :class:`~graphformer.nn.GraphTransformerBlock` how to call it:

- ``reads_edges`` (default False): it takes edge state (others must get None);
- ``self_loops`` (default False): it runs on the graph plus a self-loop at every node
  (new loops get zero edge state);
- ``owns_residual`` (default False): its output already includes dropout and the
  residual (GatedGCN, as in GraphGPS); the block then only norms that branch;
- ``permutation_equivariant`` (default True): False where relabelling a sample's nodes
  changes more than the order of the output rows (exphormer's expander is drawn over
  node positions); tests then check that property on the mixer's own terms.
- ``needs`` (default ``()``): the ``graph.ndata`` fields it reads besides ``x`` (e.g.
  ``("spd",)``: shortest-path distances); ``GraphTransformer`` checks them up front.

A ``local`` mixer passes messages on the input graph; a ``global`` one among all nodes
of each sample. Add a mixer with its own file and one :data:`REGISTRY` entry; the engine
and validation tests pick every entry up from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphformer.nn.attention import MultiHeadAttention
from graphformer.nn.conv import GCNConv, SAGEConv
from graphformer.nn.exphormer import ExphormerAttention
from graphformer.nn.gatedgcn import GatedGCN
from graphformer.nn.gine import GINE
from graphformer.nn.graphormer import GraphormerAttention
from graphformer.nn.message_passing import local_engine
from graphformer.nn.performer import PerformerMixer

import dgl
import torch
from torch import nn


@dataclass(frozen=True)
class MixerOptions:
    """What a block knows when it builds its mixers (each takes what it needs)."""

    dim: int
    num_heads: int = 4
    dropout: float = 0.0
    attn_dropout: float = 0.0
    edge_dim: int | None = None
    engine: str = "auto"
    #: Keyword arguments for a global mixer's own settings (e.g. exphormer's expander
    #: degree); local mixers ignore them.
    global_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mixer:
    """A registry entry: how to build the mixer and where it mixes."""

    build: Callable[[MixerOptions], nn.Module]
    scope: str  # "local" or "global"
    #: The ``global_kwargs`` keys a global mixer takes (its constructor's settings).
    settings: tuple[str, ...] = ()


class NodeConv(nn.Module):
    """A convolution ``conv(graph, x) -> x`` as a mixer (edge state passes through)."""

    self_loops = True

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.conv(graph, x), edge_state


class LocalAttention(nn.Module):
    """:class:`MultiHeadAttention` over each node's in-edges and itself, edge state as its
    Shaw terms. With ``record_attention`` set it keeps its last weights in ``weights``
    ((E, num_heads), before dropout)."""

    self_loops = True

    def __init__(self, attention: MultiHeadAttention) -> None:
        super().__init__()
        self.attention = attention
        self.reads_edges = attention.edge_dim is not None
        self.record_attention = False
        self.weights: torch.Tensor | None = None

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.record_attention:
            return self.attention(graph, x, edge_feat=edge_state), edge_state
        out, self.weights = self.attention(graph, x, edge_state, return_attention=True)
        return out, edge_state


class FullAttention(nn.Module):
    """:class:`MultiHeadAttention` among all nodes of each sample (a plain Transformer):
    padded SDPA on the ``auto``/``dense`` engines, else message passing on the complete
    graph (built once per batch graph, ``graphformer.graphs.complete_graph_of``)."""

    def __init__(self, attention: MultiHeadAttention) -> None:
        super().__init__()
        self.attention = attention

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.attention.sample_attention(graph, x), edge_state


def _attention(options: MixerOptions, edges: bool, engine: str) -> MultiHeadAttention:
    return MultiHeadAttention(
        options.dim,
        options.num_heads,
        dropout=options.attn_dropout,
        edge_dim=options.edge_dim if edges else None,
        check_finite=False,
        engine=engine,
    )


def attention_builder(cls: type[nn.Module]) -> Callable[[MixerOptions], nn.Module]:
    """The builder of an attention mixer ``cls(dim, num_heads, attn_dropout=...,
    check_finite=..., engine=..., **global_kwargs)``."""

    def build(o: MixerOptions) -> nn.Module:
        return cls(
            o.dim,
            o.num_heads,
            attn_dropout=o.attn_dropout,
            check_finite=False,
            engine=o.engine,
            **o.global_kwargs,
        )

    return build


REGISTRY: dict[str, Mixer] = {
    "gcn": Mixer(
        lambda o: NodeConv(
            GCNConv(o.dim, o.dim, self_loops=False, check_finite=False, engine=o.engine)
        ),
        "local",
    ),
    "sage": Mixer(
        lambda o: NodeConv(SAGEConv(o.dim, o.dim, check_finite=False, engine=o.engine)), "local"
    ),
    "attention": Mixer(
        lambda o: LocalAttention(_attention(o, True, local_engine(o.engine))), "local"
    ),
    "gatedgcn": Mixer(
        lambda o: GatedGCN(o.dim, dropout=o.dropout, check_finite=False, engine=o.engine), "local"
    ),
    "gine": Mixer(lambda o: GINE(o.dim, check_finite=False, engine=o.engine), "local"),
    "full": Mixer(lambda o: FullAttention(_attention(o, False, o.engine)), "global"),
    "performer": Mixer(lambda o: PerformerMixer(o.dim, o.num_heads, check_finite=False), "global"),
    "exphormer": Mixer(
        attention_builder(ExphormerAttention), "global", ("degree", "virtual_nodes", "seed")
    ),
    "graphormer": Mixer(attention_builder(GraphormerAttention), "global", ("max_distance",)),
}


def names(scope: str) -> tuple[str, ...]:
    """Registered mixer names of ``scope`` (``local`` or ``global``), in registry order."""
    return tuple(name for name, mixer in REGISTRY.items() if mixer.scope == scope)


def build_mixer(name: str, options: MixerOptions, scope: str | None = None) -> nn.Module:
    """The mixer registered as ``name`` (of ``scope`` if given), built for ``options``.

    A global mixer that takes no settings refuses ``options.global_kwargs``, and one that
    takes settings refuses keys it does not know, naming them.
    """
    choices = names(scope) if scope else tuple(REGISTRY)
    if name not in choices:
        what = f"{scope} mixer" if scope else "mixer"
        raise ValueError(f"unknown {what} {name!r}; choose one of {sorted(choices)}")
    entry = REGISTRY[name]
    if entry.scope == "global":
        unknown = sorted(set(options.global_kwargs) - set(entry.settings))
        if unknown:
            raise ValueError(
                f"global_kwargs {unknown} are not settings of {name!r}; it takes "
                f"{sorted(entry.settings) or 'none'}"
            )
    local = dataclasses.replace(options, engine=local_engine(options.engine))  # (message_passing)
    return entry.build(local if entry.scope == "local" else options)
