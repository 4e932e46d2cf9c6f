r"""The message-passing core: one engine decision per call, and the primitives every layer
writes φ and □ in, behind one interface.

A layer computes per-edge messages :math:`m_{ij} = φ(x_i, x_j, e_{ij})` for each edge
:math:`j \to i` and reduces them at the destination, :math:`a_i = □_{j \in N(i)} m_{ij}`.
:class:`MessagePassing` offers the few primitives this takes, named as DGL names them
(``u`` = source node, ``v`` = destination node, ``e`` = edge):

- gather node data to edges: :meth:`~MessagePassing.copy_u`, :meth:`~MessagePassing.copy_v`;
- per-edge operations: :meth:`~MessagePassing.u_dot_v`, :meth:`~MessagePassing.e_dot_v`,
  :meth:`~MessagePassing.u_add_v`, :meth:`~MessagePassing.u_add_e`;
- :meth:`~MessagePassing.edge_softmax` over the in-edges of each destination;
- reduce edge data at destinations: :meth:`~MessagePassing.copy_e_reduce`, and onto a
  base without a zero buffer: :meth:`~MessagePassing.add_copy_e_sum`;
- fused message + reduce (no (E, ...) message tensor is built):
  :meth:`~MessagePassing.copy_u_reduce`, :meth:`~MessagePassing.u_mul_e_reduce`, and
  the gated pair :meth:`~MessagePassing.gated_sum` (GatedGCN's two sums, with one backward
  pass over the edges on DGL: ``graphformer.nn.core.gated_sum``);
- :meth:`~MessagePassing.degrees`.

Two classes implement them, one per message-passing engine, and no method branches on
the engine: :class:`DGLPrimitives` (DGL's builtin kernels, ``dgl.ops``: gSDDMM for edge
operations, gSpMM for the fused forms, ``edge_softmax``; never Python UDFs) and
:class:`TorchPrimitives` (``index_select`` / ``index_add`` / ``scatter_reduce`` on edge
indices, on the features' device: PyPI's DGL is CPU-only, so on a GPU the graph stays on
the CPU, ``graphformer.graphs.to_device``, and this engine runs the layer there).
``MessagePassing(graph, engine, like)`` returns the right one.

Reductions (:data:`REDUCES`) are ``sum``, ``mean`` and ``max``; a node without in-edges
receives zeros.

Engines (:data:`ENGINES`), one ``engine`` argument on every layer, decided once per call
by :func:`decide_engine`, the only place that chooses:

- ``dgl`` / ``torch``: message passing with :class:`DGLPrimitives` / :class:`TorchPrimitives`;
- ``dense``: attention as padded SDPA per sample (``graphformer.nn.core.dense``), the graph's
  adjacency as the mask, or no graph at all on a complete graph (and on a decoder's causal
  and cross-attention, fixed by the sample sizes). Only attention layers have it
  (:data:`ATTENTION_ENGINES`); a layer without a dense path (``GCNConv``, ``SAGEConv``,
  ``GATConv``, ``GatedGCN``, ``GINE``, ``GNN``) refuses it (:func:`check_engine` with
  :data:`MESSAGE_PASSING_ENGINES`) and names ``auto`` instead. Pinned ``dense`` raises
  on a call it cannot run (cross-attention on a graph, Shaw value terms, returned
  weights, edges between samples, a decoder given graphs);
- ``auto`` (default): attention ``dense`` on a complete graph, and on another graph where
  the call allows it and it pays off (:func:`graphformer.nn.core.dense.dense_pays_off`);
  message passing on ``torch`` where DGL could not place the graph on the features'
  device, on ``dgl`` otherwise (:func:`resolve_engine`).

Blocks: a block's ``engine`` is handed to its mixers by scope. Its global mixer (``full``,
``exphormer``, ``graphormer``) gets it as is, so ``dense`` pins the global attention to
the dense engine; its local mixers pass messages on the input graph and get
:func:`local_engine` (``dense`` → ``auto``, which still runs local attention dense where
it pays off). ``performer``, ``sgformer`` and ``polynormer`` (linear attention) have a
single path (no message passing), so no engine applies to them. A block none of whose
mixers takes ``dense`` (local mixers only, or a linear-attention global mixer) refuses it
(:func:`check_dense_taken`) rather than running ``auto``.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphformer.graphs import derived, is_complete
from graphformer.nn.core.checks import check_kernel_dtype
from graphformer.nn.core.dense import AttentionLayout, attention_layout, dense_pays_off
from graphformer.nn.core.gated_sum import gated_sum

import dgl
import dgl.ops
import torch

ENGINES = ("auto", "dgl", "dense", "torch")
#: The engines of a layer with a dense path (attention).
ATTENTION_ENGINES = ENGINES
#: The engines of a layer that only passes messages.
MESSAGE_PASSING_ENGINES = ("auto", "dgl", "torch")
REDUCES = ("sum", "mean", "max")


def check_engine(engine: str, supported: tuple[str, ...] = ENGINES, layer: str = "") -> str:
    """``engine`` if it names one of :data:`ENGINES` that ``layer`` supports (``supported``),
    else a ValueError: an unknown value lists :data:`ENGINES`; a known one the layer cannot
    honour names the layer, the value and what to use."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    if engine not in supported:
        who = layer or "this layer"
        raise ValueError(
            f"{who} has no {engine!r} engine (only attention layers run dense); it takes "
            f"{supported}: use engine='auto' (the default), which picks dgl or torch per call"
        )
    return engine


def local_engine(engine: str) -> str:
    """The engine a block's local mixers run on: a block's ``dense`` (its global attention)
    → ``auto``; the others unchanged."""
    return "auto" if engine == "dense" else check_engine(engine)


def check_dense_taken(engine: str, module: torch.nn.Module, who: str) -> None:
    """Refuse a block's ``engine='dense'`` that none of its (sub)modules took: a block
    hands ``dense`` to its global attention only (:func:`local_engine`), so a block without
    one (local mixers only, or ``performer``) would silently run ``auto``."""
    if engine == "dense" and not any(
        getattr(sub, "engine", None) == "dense" for sub in module.modules() if sub is not module
    ):
        raise ValueError(
            f"{who}(engine='dense') pins its global attention to the dense engine, but none "
            "of its mixers has a dense path (local mixers run on 'auto'; the linear attentions "
            "performer, sgformer and polynormer have no "
            "engine): use engine='auto', which runs attention dense where it pays off"
        )


def needs_fallback(graph: dgl.DGLGraph, x: torch.Tensor) -> bool:
    """True when the graph could not follow the features to their device."""
    return graph.device != x.device


def torch_pays_off(graph: dgl.DGLGraph, x: torch.Tensor, torch_below: int) -> bool:
    """True for a CPU call on a graph of fewer than ``torch_below`` edges: there DGL's fixed
    cost per kernel call (format checks, the C API, its autograd wrappers) outweighs the
    work, and torch's index operations run the same primitives faster. ``torch_below`` is
    the layer's measured crossover (0, the default, never: the rule is opt-in per layer;
    ``graphformer.nn.layers.gine`` documents how its value was measured)."""
    return torch_below > 0 and x.device.type == "cpu" and graph.num_edges() < torch_below


def resolve_engine(engine: str, graph: dgl.DGLGraph, x: torch.Tensor, torch_below: int = 0) -> str:
    """The message-passing half of :func:`decide_engine`: ``torch`` when asked, or (unless
    pinned to ``dgl``) when DGL could not follow the features' device or, given a layer's
    ``torch_below``, where torch pays off (:func:`torch_pays_off`); else ``dgl``."""
    if engine == "torch" or (
        engine != "dgl" and (needs_fallback(graph, x) or torch_pays_off(graph, x, torch_below))
    ):
        return "torch"
    return "dgl"


@dataclass(frozen=True)
class Plan:
    """How one call runs: ``engine`` is ``dense``, ``dgl`` or ``torch``. A dense call on a
    graph carries its ``layout``; a dense call without one runs per-sample full attention
    (a complete graph) or a decoder's attention from the sizes."""

    engine: str
    layout: AttentionLayout | None = None

    @property
    def dense(self) -> bool:
        return self.engine == "dense"


def decide_engine(
    engine: str,
    graph: dgl.DGLGraph | None,
    like: torch.Tensor,
    *,
    attention: bool = False,
    cross: bool = False,
    edge_terms: bool = False,
    value_terms: bool = False,
    weights: bool = False,
    from_sizes: bool = False,
    torch_below: int = 0,
) -> Plan:
    """The one engine decision: how this call runs (module docstring).

    ``engine``: the layer's setting; ``graph``/``like``: the call's graph and features.
    What the call needs: ``attention`` (it has a dense path), ``cross`` (bipartite
    queries ← keys), ``edge_terms`` (a bias or Shaw terms), ``value_terms`` (Shaw value
    terms), ``weights`` (returned attention weights), ``from_sizes`` (a decoder's causal or
    cross-attention, defined by the sample sizes: ``graph`` is the one the caller was
    given, or None). ``torch_below``: a message-passing layer's measured size below which
    ``auto`` runs on ``torch`` (:func:`torch_pays_off`). Raises where a pinned ``dense``
    cannot run the call.
    """
    if from_sizes:
        if graph is None:
            return Plan("dense" if engine in ("auto", "dense") else engine)
        if engine == "dense":
            raise ValueError(
                "engine='dense' computes causal and cross-attention from the sizes and cannot "
                "honour a given self_graph/cross_graph; drop them, or use engine='auto' or "
                "'dgl' to pass messages on them"
            )
        return Plan(resolve_engine(engine, graph, like))
    if engine in ("dgl", "torch") or (engine == "auto" and not attention):
        return Plan(resolve_engine(engine, graph, like, torch_below))
    if not attention:
        check_engine(engine, MESSAGE_PASSING_ENGINES)
    if not (edge_terms or cross or weights) and is_complete(graph):
        return Plan("dense")
    blockers = [
        name
        for name, used in (
            ("cross-attention", cross),
            ("Shaw value terms (edge_value)", value_terms),
            ("return_attention", weights),
        )
        if used
    ]
    pinned = engine == "dense"
    if not blockers and (pinned or dense_pays_off(graph)):
        layout = attention_layout(graph, like.device)
        if layout.within_samples:
            return Plan("dense", layout)
        blockers.append("an edge between two samples")
    if pinned:
        raise ValueError(
            "engine='dense' runs self-attention whose edges stay within samples, without "
            f"Shaw value terms or returned weights; got {', '.join(blockers)}. Use "
            "engine='auto' to fall back to message passing where the dense engine cannot run."
        )
    return Plan(resolve_engine(engine, graph, like))


def _edges(graph: dgl.DGLGraph) -> tuple[torch.Tensor, torch.Tensor]:
    # int64 whatever the graph's idtype: with int32 indices torch's scatter_reduce gives
    # NaN or wrong gradients for amax (torch 2.13), silently
    src, dst = graph.edges()
    return src.long(), dst.long()


def _check_reduce(op: str) -> None:
    if op not in REDUCES:
        raise ValueError(f"unknown reduce {op!r}; choose one of {REDUCES}")


def _broadcast(index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return index.view(-1, *([1] * (like.dim() - 1))).expand_as(like)


def scatter(messages: torch.Tensor, dst: torch.Tensor, num_dst: int, op: str) -> torch.Tensor:
    """``op`` (sum, mean or max) of per-edge ``messages`` (E, ...) per destination; a
    destination without in-edges gets zeros (as DGL's reducers)."""
    shape = (num_dst, *messages.shape[1:])
    if op == "max":
        index = _broadcast(dst, messages)
        return messages.new_zeros(shape).scatter_reduce(
            0, index, messages, reduce="amax", include_self=False
        )
    total = messages.new_zeros(shape).index_add_(0, dst, messages)
    if op == "sum":
        return total
    ones = messages.new_ones(len(dst))
    count = messages.new_zeros(num_dst).index_add_(0, dst, ones).clamp(min=1)
    return total / count.view(-1, *([1] * (messages.dim() - 1)))


def segment_softmax(scores: torch.Tensor, dst: torch.Tensor, num_dst: int) -> torch.Tensor:
    """Softmax of per-edge ``scores`` (E, ...) over the in-edges of each destination,
    stabilised by subtracting each destination's maximum (like DGL's ``edge_softmax``)."""
    index = _broadcast(dst, scores)
    maximum = scores.new_full((num_dst, *scores.shape[1:]), float("-inf")).scatter_reduce(
        0, index, scores, reduce="amax", include_self=True
    )
    exp = (scores - maximum.detach().index_select(0, dst)).exp()
    return exp / scatter(exp, dst, num_dst, "sum").index_select(0, dst)


def segment_readout(x: torch.Tensor, sizes: torch.Tensor, op: str) -> torch.Tensor:
    """``op`` (sum, mean or max) over consecutive segments of ``sizes`` rows of ``x``;
    an empty segment gives zeros, as ``dgl.readout_nodes`` does."""
    sizes = sizes.to(x.device)
    samples = torch.arange(len(sizes), device=x.device)
    segment = torch.repeat_interleave(samples, sizes, output_size=len(x))
    if op != "mean":
        return scatter(x, segment, len(sizes), op)
    count = sizes.clamp(min=1).to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
    return scatter(x, segment, len(sizes), "sum") / count


class MessagePassing:
    """The primitives on one graph under one message-passing engine.

    Build one per forward: ``mp = MessagePassing(graph, self.engine, x)`` returns a
    :class:`DGLPrimitives` or a :class:`TorchPrimitives`, as :func:`decide_engine` decides
    for a message-passing call (``engine`` ``auto``, ``dgl`` or ``torch``; attention hands
    its plan's ``dgl`` / ``torch``); a layer's ``torch_below`` (:func:`torch_pays_off`)
    lets ``auto`` pick ``torch`` on small CPU graphs. Node tensors are (N_src or N_dst,
    ...), edge tensors (E, ...), in the graph's edge order; trailing dimensions broadcast
    as in DGL (e.g. (N, H, D) node data with (E, H, 1) edge weights).
    """

    #: ``dgl`` or ``torch``: the engine these primitives run on.
    engine: str

    def __new__(
        cls, graph: dgl.DGLGraph, engine: str, like: torch.Tensor, torch_below: int = 0
    ) -> MessagePassing:
        if cls is MessagePassing:
            plan = decide_engine(engine, graph, like, torch_below=torch_below)
            cls = PRIMITIVES[plan.engine]
        return super().__new__(cls)

    def __init__(
        self, graph: dgl.DGLGraph, engine: str, like: torch.Tensor, torch_below: int = 0
    ) -> None:
        self.graph = graph
        self.num_dst = graph.num_dst_nodes()

    # gather node data to edges
    def copy_u(self, u: torch.Tensor) -> torch.Tensor:
        """Source node data on each edge: (E, ...)."""
        raise NotImplementedError

    def copy_v(self, v: torch.Tensor) -> torch.Tensor:
        """Destination node data on each edge: (E, ...)."""
        raise NotImplementedError

    # per-edge operations
    def u_dot_v(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """:math:`u_j \\cdot v_i` over the last dimension, kept: (E, ..., 1)."""
        raise NotImplementedError

    def e_dot_v(self, e: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """:math:`e_{ij} \\cdot v_i` over the last dimension, kept: (E, ..., 1)."""
        raise NotImplementedError

    def u_add_v(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """:math:`u_j + v_i`: (E, ...)."""
        raise NotImplementedError

    def u_add_e(self, u: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """:math:`u_j + e_{ij}`: (E, ...), one pass (no gathered copy of ``u`` first)."""
        raise NotImplementedError

    def edge_softmax(self, scores: torch.Tensor) -> torch.Tensor:
        """Softmax of (E, ...) scores over the in-edges of each destination."""
        raise NotImplementedError

    # reduce at destinations
    def copy_e_reduce(self, e: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """:math:`□_{j \\in N(i)} e_{ij}`: (N_dst, ...)."""
        raise NotImplementedError

    def copy_u_reduce(self, u: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Fused :math:`□_{j \\in N(i)} u_j`: (N_dst, ...)."""
        raise NotImplementedError

    def add_copy_e_sum(self, base: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """:math:`b_i + \\sum_{j \\in N(i)} e_{ij}`: (N_dst, ...), ``base`` (N_dst, ...)
        plus the sum of each destination's in-edge data, without a zero-filled (N_dst, ...)
        buffer where the engine can add onto ``base`` directly."""
        return base + self.copy_e_reduce(e, "sum")

    def u_mul_e_reduce(self, u: torch.Tensor, e: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Fused :math:`□_{j \\in N(i)} u_j e_{ij}`: (N_dst, ...)."""
        raise NotImplementedError

    def gated_sum(
        self, value: torch.Tensor, sigma: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""(:math:`\sum_{j \in N(i)} \sigma_{ij} v_j`, :math:`\sum_{j \in N(i)}
        \sigma_{ij}`): ``value`` (N, d), ``sigma`` (E, d); each (N_dst, d)."""
        return self.u_mul_e_reduce(value, sigma, "sum"), self.copy_e_reduce(sigma, "sum")

    def _edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def degrees(
        self, like: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(out-degree of each source, in-degree of each destination) as ``like``'s dtype,
        summing ``weight`` (E,) per edge when given."""
        if weight is None:
            return self.graph.out_degrees().to(like), self.graph.in_degrees().to(like)
        src, dst = self._edges()
        num_src = self.graph.num_src_nodes()
        return (
            scatter(weight, src, num_src, "sum").to(like),
            scatter(weight, dst, self.num_dst, "sum").to(like),
        )


class DGLPrimitives(MessagePassing):
    """The primitives as DGL's builtin kernels (``dgl.ops``)."""

    engine = "dgl"

    def __init__(
        self, graph: dgl.DGLGraph, engine: str, like: torch.Tensor, torch_below: int = 0
    ) -> None:
        super().__init__(graph, engine, like)
        check_kernel_dtype("x", like, graph)

    def copy_u(self, u: torch.Tensor) -> torch.Tensor:
        return dgl.ops.copy_u(self.graph, u)

    def copy_v(self, v: torch.Tensor) -> torch.Tensor:
        return dgl.ops.copy_v(self.graph, v)

    def u_dot_v(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return dgl.ops.u_dot_v(self.graph, u, v)

    def e_dot_v(self, e: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return dgl.ops.e_dot_v(self.graph, e, v)

    def u_add_v(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return dgl.ops.u_add_v(self.graph, u, v)

    def u_add_e(self, u: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return dgl.ops.u_add_e(self.graph, u, e)

    def edge_softmax(self, scores: torch.Tensor) -> torch.Tensor:
        return dgl.ops.edge_softmax(self.graph, scores)

    def copy_e_reduce(self, e: torch.Tensor, op: str = "sum") -> torch.Tensor:
        return self._reduce("copy_e", op, e)

    def copy_u_reduce(self, u: torch.Tensor, op: str = "sum") -> torch.Tensor:
        return self._reduce("copy_u", op, u)

    def u_mul_e_reduce(self, u: torch.Tensor, e: torch.Tensor, op: str = "sum") -> torch.Tensor:
        return self._reduce("u_mul_e", op, u, e)

    def gated_sum(
        self, value: torch.Tensor, sigma: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The same two sums (same kernels, same outputs), with one gSDDMM for the gates'
        gradient instead of two plus an add (``graphformer.nn.core.gated_sum``)."""
        return gated_sum(self.graph, value, sigma)

    def _reduce(self, message: str, op: str, *tensors: torch.Tensor) -> torch.Tensor:
        """``dgl.ops.<message>_<op>``; its max leaves -inf at nodes without in-edges:
        zeros there."""
        _check_reduce(op)
        out = getattr(dgl.ops, f"{message}_{op}")(self.graph, *tensors)
        if op == "max":
            empty = (self.graph.in_degrees() == 0).to(out.device)
            out = out.masked_fill(empty.view(-1, *([1] * (out.dim() - 1))), 0.0)
        return out

    def _edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.graph.edges()


class TorchPrimitives(MessagePassing):
    """The primitives as torch index operations on the edge indices, on ``like``'s device.

    Node data reach the edges by ``index_select`` (:meth:`copy_u`, :meth:`copy_v`), not
    advanced indexing ``u[src]``: on the CPU its forward + backward (an ``index_add``
    rather than an accumulating ``index_put_``) took 0.2–0.7× the time, and layers on this
    engine 0.48–0.96× (CLUSTER batches) and 0.74–0.99× (molecule batches) over three
    in-process runs, same values (experiments/bench/README.md, issue 23's eighth pass)."""

    engine = "torch"

    def __init__(
        self, graph: dgl.DGLGraph, engine: str, like: torch.Tensor, torch_below: int = 0
    ) -> None:
        super().__init__(graph, engine, like)
        # read once per graph object (a DGL call each, ~40 µs): every layer of a stack reuses it
        src, dst = derived(graph, "edge_index", _edges)
        self.src, self.dst = src.to(like.device), dst.to(like.device)

    def copy_u(self, u: torch.Tensor) -> torch.Tensor:
        return u.index_select(0, self.src)

    def copy_v(self, v: torch.Tensor) -> torch.Tensor:
        return v.index_select(0, self.dst)

    def u_dot_v(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (self.copy_u(u) * self.copy_v(v)).sum(-1, keepdim=True)

    def e_dot_v(self, e: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (e * self.copy_v(v)).sum(-1, keepdim=True)

    def u_add_v(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.copy_u(u) + self.copy_v(v)

    def u_add_e(self, u: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.copy_u(u) + e

    def edge_softmax(self, scores: torch.Tensor) -> torch.Tensor:
        return segment_softmax(scores, self.dst, self.num_dst)

    def copy_e_reduce(self, e: torch.Tensor, op: str = "sum") -> torch.Tensor:
        _check_reduce(op)
        return scatter(e, self.dst, self.num_dst, op)

    def copy_u_reduce(self, u: torch.Tensor, op: str = "sum") -> torch.Tensor:
        _check_reduce(op)
        return scatter(self.copy_u(u), self.dst, self.num_dst, op)

    def add_copy_e_sum(self, base: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return torch.index_add(base, 0, self.dst, e)

    def u_mul_e_reduce(self, u: torch.Tensor, e: torch.Tensor, op: str = "sum") -> torch.Tensor:
        _check_reduce(op)
        return scatter(self.copy_u(u) * e, self.dst, self.num_dst, op)

    def _edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.src, self.dst


#: The primitives of each message-passing engine.
PRIMITIVES: dict[str, type[MessagePassing]] = {"dgl": DGLPrimitives, "torch": TorchPrimitives}
