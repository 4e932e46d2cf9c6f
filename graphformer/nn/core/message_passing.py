r"""The message-passing core: the primitives every layer writes φ and □ in, once per engine.

A layer computes per-edge messages :math:`m_{ij} = φ(x_i, x_j, e_{ij})` for each edge
:math:`j \to i` and reduces them at the destination, :math:`a_i = □_{j \in N(i)} m_{ij}`.
:class:`MessagePassing` offers the few primitives this takes, named as DGL names them
(``u`` = source node, ``v`` = destination node, ``e`` = edge):

- gather node data to edges: :meth:`~MessagePassing.copy_u`, :meth:`~MessagePassing.copy_v`;
- per-edge operations: :meth:`~MessagePassing.u_dot_v`, :meth:`~MessagePassing.e_dot_v`,
  :meth:`~MessagePassing.u_add_v`;
- :meth:`~MessagePassing.edge_softmax` over the in-edges of each destination;
- reduce edge data at destinations: :meth:`~MessagePassing.copy_e_reduce`;
- fused message + reduce (no (E, ...) message tensor is built):
  :meth:`~MessagePassing.copy_u_reduce`, :meth:`~MessagePassing.u_mul_e_reduce`.

Reductions (:data:`REDUCES`) are ``sum``, ``mean`` and ``max``; a node without in-edges
receives zeros. Engines (:data:`ENGINES`), one ``engine`` argument on every layer:

- ``dgl``: DGL's builtin kernels (``dgl.ops``: gSDDMM for edge operations, gSpMM for the
  fused forms, ``edge_softmax``), never Python UDFs;
- ``torch``: the same with ``index_select`` / ``index_add`` / ``scatter_reduce`` on edge
  indices, on the features' device. PyPI's DGL is CPU-only, so on a GPU the graph stays on
  the CPU (``graphformer.graphs.to_device``) and this engine runs the layer there;
- ``dense``: attention as padded SDPA per sample, the graph's adjacency as the mask
  (``graphformer.nn.core.dense``); only attention has it. Other layers given ``dense`` run as
  ``auto``; a block given ``dense`` runs its global attention dense and its local mixers
  on ``auto`` (:func:`local_engine`);
- ``auto`` (default): attention ``dense`` where the call allows it and it pays off
  (:func:`graphformer.nn.core.dense.dense_pays_off`); message passing on ``torch`` where DGL
  could not place the graph on the features' device, on ``dgl`` otherwise
  (:func:`resolve_engine`).
"""

from __future__ import annotations

from graphformer.nn.core.checks import check_kernel_dtype

import dgl
import dgl.ops
import torch

ENGINES = ("auto", "dgl", "dense", "torch")
REDUCES = ("sum", "mean", "max")


def check_engine(engine: str) -> str:
    """``engine`` if it names one of :data:`ENGINES`, else a ValueError listing them."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    return engine


def local_engine(engine: str) -> str:
    """The engine a block's local mixers run on: ``dense`` (global attention only) → ``auto``."""
    return "auto" if engine == "dense" else check_engine(engine)


def needs_fallback(graph: dgl.DGLGraph, x: torch.Tensor) -> bool:
    """True when the graph could not follow the features to their device."""
    return graph.device != x.device


def resolve_engine(engine: str, graph: dgl.DGLGraph, x: torch.Tensor) -> str:
    """The message-passing engine for this call: ``torch`` when asked, or (unless pinned
    to ``dgl``) when DGL could not follow the features' device; else ``dgl``. Attention
    decides first whether it runs dense instead (:mod:`graphformer.nn.core.dense`)."""
    if engine == "torch" or (engine != "dgl" and needs_fallback(graph, x)):
        return "torch"
    return "dgl"


def edge_index(graph: dgl.DGLGraph, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(src, dst) of every edge, on ``device``."""
    src, dst = graph.edges()
    return src.to(device), dst.to(device)


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
    exp = (scores - maximum.detach().gather(0, index)).exp()
    return exp / scatter(exp, dst, num_dst, "sum").gather(0, index)


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
    """The primitives on one graph under one engine, chosen once by :func:`resolve_engine`.

    Build one per forward: ``mp = MessagePassing(graph, self.engine, x)``. Node tensors
    are (N_src or N_dst, ...), edge tensors (E, ...), in the graph's edge order; trailing
    dimensions broadcast as in DGL (e.g. (N, H, D) node data with (E, H, 1) edge weights).
    """

    def __init__(self, graph: dgl.DGLGraph, engine: str, like: torch.Tensor) -> None:
        self.graph = graph
        self.engine = resolve_engine(engine, graph, like)
        if self.engine == "dgl":
            check_kernel_dtype("x", like, graph)
        self.num_dst = graph.num_dst_nodes()
        if self.engine == "torch":
            self.src, self.dst = edge_index(graph, like.device)

    # gather node data to edges
    def copy_u(self, u: torch.Tensor) -> torch.Tensor:
        """Source node data on each edge: (E, ...)."""
        return u[self.src] if self.engine == "torch" else dgl.ops.copy_u(self.graph, u)

    def copy_v(self, v: torch.Tensor) -> torch.Tensor:
        """Destination node data on each edge: (E, ...)."""
        return v[self.dst] if self.engine == "torch" else dgl.ops.copy_v(self.graph, v)

    # per-edge operations
    def u_dot_v(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """:math:`u_j \\cdot v_i` over the last dimension, kept: (E, ..., 1)."""
        if self.engine == "torch":
            return (u[self.src] * v[self.dst]).sum(-1, keepdim=True)
        return dgl.ops.u_dot_v(self.graph, u, v)

    def e_dot_v(self, e: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """:math:`e_{ij} \\cdot v_i` over the last dimension, kept: (E, ..., 1)."""
        if self.engine == "torch":
            return (e * v[self.dst]).sum(-1, keepdim=True)
        return dgl.ops.e_dot_v(self.graph, e, v)

    def u_add_v(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """:math:`u_j + v_i`: (E, ...)."""
        if self.engine == "torch":
            return u[self.src] + v[self.dst]
        return dgl.ops.u_add_v(self.graph, u, v)

    def edge_softmax(self, scores: torch.Tensor) -> torch.Tensor:
        """Softmax of (E, ...) scores over the in-edges of each destination."""
        if self.engine == "torch":
            return segment_softmax(scores, self.dst, self.num_dst)
        return dgl.ops.edge_softmax(self.graph, scores)

    # reduce at destinations
    def copy_e_reduce(self, e: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """:math:`□_{j \\in N(i)} e_{ij}`: (N_dst, ...)."""
        _check_reduce(op)
        if self.engine == "torch":
            return scatter(e, self.dst, self.num_dst, op)
        return self._dgl_reduce(f"copy_e_{op}", e)

    def copy_u_reduce(self, u: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Fused :math:`□_{j \\in N(i)} u_j`: (N_dst, ...)."""
        _check_reduce(op)
        if self.engine == "torch":
            return scatter(u[self.src], self.dst, self.num_dst, op)
        return self._dgl_reduce(f"copy_u_{op}", u)

    def u_mul_e_reduce(self, u: torch.Tensor, e: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Fused :math:`□_{j \\in N(i)} u_j e_{ij}`: (N_dst, ...)."""
        _check_reduce(op)
        if self.engine == "torch":
            return scatter(u[self.src] * e, self.dst, self.num_dst, op)
        return self._dgl_reduce(f"u_mul_e_{op}", u, e)

    def _dgl_reduce(self, name: str, *tensors: torch.Tensor) -> torch.Tensor:
        """``dgl.ops.<name>``; its max leaves -inf at nodes without in-edges: zeros there."""
        out = getattr(dgl.ops, name)(self.graph, *tensors)
        if name.endswith("_max"):
            empty = (self.graph.in_degrees() == 0).to(out.device)
            out = out.masked_fill(empty.view(-1, *([1] * (out.dim() - 1))), 0.0)
        return out

    def degrees(
        self, like: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(out-degree of each source, in-degree of each destination) as ``like``'s dtype,
        summing ``weight`` (E,) per edge when given."""
        if weight is None:
            return self.graph.out_degrees().to(like), self.graph.in_degrees().to(like)
        src, dst = (self.src, self.dst) if self.engine == "torch" else self.graph.edges()
        num_src = self.graph.num_src_nodes()
        return (
            scatter(weight, src, num_src, "sum").to(like),
            scatter(weight, dst, self.num_dst, "sum").to(like),
        )
