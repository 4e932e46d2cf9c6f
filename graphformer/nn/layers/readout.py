"""Graph-level readout: a permutation-invariant reduce over each sample's nodes."""

from __future__ import annotations

from graphformer.nn.core.message_passing import needs_fallback, segment_readout

import dgl
import torch
from torch import nn

READOUTS = ("mean", "sum", "max")


class Readout(nn.Module):
    r"""Pool each sample's node features: :math:`h_G = \square_{i \in G} x_i`.

    □ is ``mean``, ``sum`` or ``max``, computed by ``dgl.readout_nodes`` over the batched
    graph's ``batch_num_nodes`` (or by the torch fallback when DGL could not place the
    graph on the features' device). Output (batch_size, dim). A sample without nodes reads
    out zeros with every op and engine (the empty sum; no NaN from an empty mean).

    >>> import dgl, torch
    >>> from graphformer.nn import Readout
    >>> graph = dgl.batch([dgl.graph(([0], [1])), dgl.graph(([0, 1], [1, 2]))])
    >>> Readout("sum")(graph, torch.ones(5, 4))  # one row per sample
    tensor([[2., 2., 2., 2.],
            [3., 3., 3., 3.]])
    """

    def __init__(self, op: str = "mean") -> None:
        super().__init__()
        if op not in READOUTS:
            raise ValueError(f"unknown readout {op!r}; choose one of {list(READOUTS)}")
        self.op = op

    def forward(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        if needs_fallback(graph, x):
            return segment_readout(x, graph.batch_num_nodes(), self.op)
        if x.shape[0] == 0:  # DGL's mean divides 0 by 0 when the whole batch is empty
            return x.new_zeros(graph.batch_size, *x.shape[1:])
        with graph.local_scope():
            graph.ndata["h"] = x
            return dgl.readout_nodes(graph, "h", op=self.op)
