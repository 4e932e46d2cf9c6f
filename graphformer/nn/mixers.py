"""Token mixers: the :class:`Mixer` base class and the one registry of mixer names.

A mixer is a message-passing layer that a :class:`~graphformer.nn.GraphTransformerBlock`
(or a :class:`~graphformer.nn.GNN`) can stack. What a block needs to know about it is
declared once, as class attributes of :class:`Mixer` (an instance may set its own where a
constructor argument changes one, e.g. ``MultiHeadAttention.reads_edges`` follows
``edge_dim``):

- ``scope``: ``"local"`` (messages along the input graph's edges) or ``"global"``
  (among all nodes of each sample);
- ``reads_edges`` (False): it takes edge state; a mixer without it gets None;
- ``self_loops`` (False): it runs on the graph plus a self-loop at every node (new loops
  get zero edge state);
- ``owns_residual`` (False): its output already includes dropout and the residual
  (GatedGCN, as in GraphGPS); the block then only norms that branch;
- ``needs`` (``()``): the ``graph.ndata`` fields it reads besides ``x``, names from
  :mod:`graphformer.fields` (e.g. ``("spd",)``: shortest-path distances);
- ``permutation_equivariant`` (True): False where relabelling a sample's nodes changes more
  than the order of the output rows (exphormer's expander is drawn over node positions);
- ``settings`` (``()``): the keyword arguments a global mixer takes from
  ``BlockConfig.global_kwargs`` (e.g. exphormer's ``degree``);
- ``resizes`` (False): its builder maps ``in_dim → out_dim`` (a GNN convolution), not
  only ``dim → dim``;
- ``layerwise`` (None): how layer-wise inference (:mod:`graphformer.nn.layerwise`: all
  nodes one layer at a time, in chunks of destination nodes) runs it: ``"in_edges"`` (a
  node's output reads only its in-edges and in-neighbours: exact on each chunk's in-subgraph),
  ``"global_sums"`` (global sums over all nodes, accumulated over chunks:
  :meth:`Mixer.layerwise_sums`, then :meth:`Mixer.layerwise_apply` per chunk), or None
  (refused, naming the mixer).

**One mixing signature.** A block calls ``mixer.mix(graph, x, edge_state) -> (x,
edge_state)``: node features (N, dim) in and out, edge state (E, ...) or None in and out.
Design decision: the layers keep the call their users know from PyG and DGL — a GCN is
``conv(graph, x) -> x`` — and the base class's :meth:`Mixer.mix` adapts that for the block
(edge state passes through). Layers whose ``forward`` already has the block's signature
(GatedGCN, GINE, Exphormer, Graphormer) set ``forward_is_mix``; attention with Shaw terms
overrides ``mix``. Changing every
layer's ``forward`` to return a tuple would make a standalone GCN awkward to use; wrapping
each layer in an adapter module (as before) put a second call signature and a second name
on every layer, and an extra level in its state-dict keys.

**One registry.** :data:`REGISTRY` maps each config name to its class; a class joins it with
the :func:`register` decorator in its own file, and builds itself from a
:class:`~graphformer.nn.BlockConfig` with its ``build`` classmethod. Blocks, models and
``GNN`` all build through :func:`build`; tests iterate :data:`REGISTRY`. The names, in
registry order: :func:`names` (``names("local")``, ``names("global")``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

from graphformer.nn.core.message_passing import local_engine

import dgl
import torch
from torch import nn

if TYPE_CHECKING:
    from graphformer.nn.config import BlockConfig

SCOPES = ("local", "global")
#: The traits a mixer declares (class attributes of :class:`Mixer`).
TRAITS = (
    "scope",
    "reads_edges",
    "self_loops",
    "owns_residual",
    "needs",
    "permutation_equivariant",
    "settings",
    "resizes",
    "layerwise",
)


class Mixer(nn.Module):
    """Base class of every token mixer: its traits and the block's call, :meth:`mix`.

    Subclass it, set the traits that differ from the defaults below, and give the class a
    ``build`` classmethod and a :func:`register` entry to make it selectable by name.

    >>> import dgl, torch
    >>> from graphformer.nn import BlockConfig
    >>> from graphformer.nn.mixers import REGISTRY, build, names
    >>> "gcn" in names("local") and "full" in names("global")
    True
    >>> conv = build("gcn", BlockConfig(dim=8))
    >>> isinstance(conv, REGISTRY["gcn"]), conv.scope, conv.self_loops
    (True, 'local', True)
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> x, edge_state = conv.mix(graph, torch.randn(3, 8), None)
    >>> x.shape, edge_state
    (torch.Size([3, 8]), None)
    """

    scope: ClassVar[str] = "local"
    reads_edges: bool = False
    self_loops: bool = False
    owns_residual: bool = False
    needs: tuple[str, ...] = ()
    permutation_equivariant: bool = True
    settings: ClassVar[tuple[str, ...]] = ()
    resizes: ClassVar[bool] = False
    #: The layer's ``forward`` already is the block's call, ``forward(graph, x, edge_state)
    #: -> (x, edge_state)`` (GatedGCN, GINE, Exphormer, Graphormer): :meth:`mix` calls it.
    forward_is_mix: ClassVar[bool] = False
    #: How layer-wise inference runs it (:data:`graphformer.nn.layerwise.LAYERWISE`), or
    #: None: not exactly, so it is refused. Declared per class; none by default, so a new
    #: mixer is refused until it says how.
    layerwise: ClassVar[str | None] = None

    def mix(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block's call: ``(x, edge_state) -> (x', edge_state')``. By default the
        layer's own ``forward(graph, x)``, the edge state passing through unchanged; with
        :attr:`forward_is_mix`, ``forward(graph, x, edge_state)``."""
        if self.forward_is_mix:
            return self(graph, x, edge_state)
        return self(graph, x), edge_state

    def layerwise_sums(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For ``layerwise = "global_sums"``: this chunk of rows' share of the global sums
        (tensors that add up over chunks, e.g. the sum over rows of k_j v_j^T)."""
        raise NotImplementedError(f"{type(self).__name__} has no global sums (layerwise)")

    def layerwise_apply(self, x: torch.Tensor, sums: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """For ``layerwise = "global_sums"``: the output rows of the chunk ``x`` given the
        sums over all nodes (:meth:`layerwise_sums` added over every chunk)."""
        raise NotImplementedError(f"{type(self).__name__} has no global sums (layerwise)")

    def with_traits(self, **traits: object) -> Mixer:
        """Set instance traits (``reads_edges``, ``self_loops``, ``owns_residual``, ``needs``,
        ``permutation_equivariant``) and return ``self``; for a builder whose setting
        changes one."""
        fixed = {"scope", "settings", "resizes", "layerwise"}
        unknown = sorted(set(traits) - (set(TRAITS) - fixed))
        if unknown:
            raise ValueError(
                f"{unknown} are not instance traits of a mixer; choose from "
                f"{sorted(set(TRAITS) - fixed)} (scope, settings, resizes and layerwise are "
                "per class)"
            )
        for name, value in traits.items():
            setattr(self, name, value)
        return self

    @classmethod
    def build(cls, config: BlockConfig, sizes: Sizes, **settings: object) -> Mixer:
        """This mixer for ``config``: ``config.dim`` wide in a block, ``sizes.in_dim →
        sizes.out_dim`` as a GNN convolution (when :attr:`resizes`); ``settings`` are
        ``config.global_kwargs`` (global mixers only)."""
        raise NotImplementedError(f"{cls.__name__} has no registry builder")


@dataclass(frozen=True)
class Sizes:
    """What the host of a mixer tells its builder besides the block config.

    edge_dim : width of the edge state the block passes (None: the data has no edge features).
    in_dim, out_dim : for a GNN convolution, its input and output widths; None in a block,
        where every mixer is ``config.dim → config.dim``.
    """

    edge_dim: int | None = None
    in_dim: int | None = None
    out_dim: int | None = None

    @property
    def in_block(self) -> bool:
        """Whether the mixer is built for a block (not as a GNN convolution)."""
        return self.in_dim is None

    def widths(self, config: BlockConfig) -> tuple[int, int]:
        """``(config.dim, config.dim)`` in a block, ``(in_dim, out_dim)`` in a GNN."""
        return (config.dim, config.dim) if self.in_block else (self.in_dim, self.out_dim)

    def engine(self, config: BlockConfig) -> str:
        """``config.engine``; in a block the local engine (a block's ``dense`` is its global
        attention's: :func:`graphformer.nn.core.local_engine`)."""
        return local_engine(config.engine) if self.in_block else config.engine


#: Config name → mixer class, in registration order (import order of ``graphformer.nn``).
REGISTRY: dict[str, type[Mixer]] = {}

M = TypeVar("M", bound=type[Mixer])


def register(name: str) -> Callable[[M], M]:
    """Class decorator: make the :class:`Mixer` subclass selectable as ``name``."""

    def add(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, Mixer)):
            raise TypeError(f"register({name!r}) takes a Mixer subclass; got {cls!r}")
        if cls.scope not in SCOPES:
            raise ValueError(f"{cls.__name__}.scope must be one of {SCOPES}; got {cls.scope!r}")
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"mixer name {name!r} is taken by {REGISTRY[name].__name__}")
        REGISTRY[name] = cls
        return cls

    return add


def names(scope: str | None = None, resizes: bool | None = None) -> tuple[str, ...]:
    """Registered mixer names (of ``scope``, ``local`` or ``global``; with ``resizes``, only
    those that can or cannot map ``in_dim → out_dim``), in registry order."""
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES} or None; got {scope!r}")
    return tuple(
        name
        for name, cls in REGISTRY.items()
        if (scope is None or cls.scope == scope) and (resizes is None or cls.resizes == resizes)
    )


def check_name(name: str, scope: str | None = None, what: str | None = None) -> str:
    """``name`` if it is a registered mixer (of ``scope``), else a ValueError listing them."""
    choices = names(scope)
    if name not in choices:
        what = what or (f"{scope} mixer" if scope else "mixer")
        raise ValueError(f"unknown {what} {name!r}; choose one of {sorted(choices)}")
    return name


def check_settings(name: str, settings: dict) -> None:
    """Refuse ``global_kwargs`` keys that the mixer ``name`` does not take, naming them."""
    unknown = sorted(set(settings) - set(REGISTRY[name].settings))
    if unknown:
        raise ValueError(
            f"global_kwargs {unknown} are not settings of {name!r}; it takes "
            f"{sorted(REGISTRY[name].settings) or 'none'}"
        )


def build(
    name: str,
    config: BlockConfig,
    scope: str | None = None,
    *,
    edge_dim: int | None = None,
    in_dim: int | None = None,
    out_dim: int | None = None,
) -> Mixer:
    """The mixer registered as ``name`` (of ``scope`` if given), built for ``config``.

    A global mixer gets ``config.global_kwargs`` (keys it does not take are refused, named).
    With ``in_dim``/``out_dim`` it is a GNN convolution ``in_dim → out_dim``, which only
    mixers with ``resizes`` can be.
    """
    cls = REGISTRY[check_name(name, scope)]
    settings: dict = {}
    if cls.scope == "global":
        settings = dict(config.global_kwargs)
        check_settings(name, settings)
    if in_dim is not None and not cls.resizes:
        raise ValueError(
            f"mixer {name!r} keeps its width (dim → dim) and cannot be a convolution "
            f"{in_dim} → {out_dim}; choose one of {sorted(names(resizes=True))}"
        )
    return cls.build(config, Sizes(edge_dim, in_dim, out_dim), **settings)
