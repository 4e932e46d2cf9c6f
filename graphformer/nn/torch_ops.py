"""The torch fallback engine: message-passing primitives on edge-index tensors.

PyPI's DGL is a CPU-only build, so on a GPU the graph stays on the CPU
(``graphformer.graphs.to_device``) while features live on the GPU. These primitives do
what the DGL builtins do, with ``index_select`` / ``index_add`` / ``scatter_reduce`` on
the features' device. The DGL engine stays the default wherever DGL can run.
"""

from __future__ import annotations

import dgl
import torch


def edge_index(graph: dgl.DGLGraph, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(src, dst) of every edge, on ``device``."""
    src, dst = graph.edges()
    return src.to(device), dst.to(device)


def segment_softmax(scores: torch.Tensor, dst: torch.Tensor, num_dst: int) -> torch.Tensor:
    r"""Softmax of per-edge ``scores`` (E, ...) over the in-edges of each destination,
    stabilised by subtracting each destination's maximum (like ``edge_softmax``)."""
    shape = (num_dst, *scores.shape[1:])
    index = dst.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    maximum = scores.new_full(shape, float("-inf")).scatter_reduce(
        0, index, scores, reduce="amax", include_self=True
    )
    exp = (scores - maximum.detach().gather(0, index)).exp()
    total = scores.new_zeros(shape).index_add_(0, dst, exp)
    return exp / total.gather(0, index)


def scatter_sum(messages: torch.Tensor, dst: torch.Tensor, num_dst: int) -> torch.Tensor:
    """Sum of per-edge ``messages`` into their destinations (nodes without in-edges: 0)."""
    return messages.new_zeros(num_dst, *messages.shape[1:]).index_add_(0, dst, messages)


def scatter_mean(messages: torch.Tensor, dst: torch.Tensor, num_dst: int) -> torch.Tensor:
    """Mean of per-edge ``messages`` per destination (nodes without in-edges: 0)."""
    count = torch.bincount(dst, minlength=num_dst).clamp(min=1).to(messages.dtype)
    return scatter_sum(messages, dst, num_dst) / count.view(-1, *([1] * (messages.dim() - 1)))


def segment_readout(x: torch.Tensor, sizes: torch.Tensor, op: str) -> torch.Tensor:
    """``op`` (sum, mean or max) over consecutive segments of ``sizes`` rows of ``x``;
    an empty segment gives zeros, as ``dgl.readout_nodes`` does."""
    sizes = sizes.to(x.device)
    samples = torch.arange(len(sizes), device=x.device)
    segment = torch.repeat_interleave(samples, sizes, output_size=len(x))
    if op == "max":
        index = segment.view(-1, *([1] * (x.dim() - 1))).expand_as(x)
        shape = (len(sizes), *x.shape[1:])
        return x.new_zeros(shape).scatter_reduce(0, index, x, reduce="amax", include_self=False)
    total = scatter_sum(x, segment, len(sizes))
    if op == "sum":
        return total
    return total / sizes.clamp(min=1).to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


SPARSE_ENGINES = ("auto", "dgl", "torch")


def needs_fallback(graph: dgl.DGLGraph, x: torch.Tensor) -> bool:
    """True when the graph could not follow the features to their device."""
    return graph.device != x.device


def check_engine(engine: str) -> str:
    """``engine`` if it names a sparse engine, else a ValueError listing them."""
    if engine not in SPARSE_ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {SPARSE_ENGINES}")
    return engine


def use_torch_engine(engine: str, graph: dgl.DGLGraph, x: torch.Tensor) -> bool:
    """Whether a layer with this ``engine`` setting runs on the torch fallback now: when
    forced (``torch``), or unless pinned to DGL, when DGL could not follow the features."""
    return engine == "torch" or (engine != "dgl" and needs_fallback(graph, x))
