r"""A degree-scaled GCN: the graph convolution, amplified by each node's log-degree.

The worked example of a mixer that reads a node field the data computes: the field is
registered here, next to the layer (:func:`graphformer.fields.register_field`), and the
layer lists it in ``needs``; the data module then computes, caches and batches it when the
model asks for it, with no change in ``graphformer.data``, ``graphformer.cli`` or the models.
"""

from __future__ import annotations

from graphformer.fields import Field, register_field
from graphformer.nn.core.checks import check_node_features
from graphformer.nn.layers.conv import GCNConv
from graphformer.nn.mixers import register

import dgl
import torch
from torch import nn


def log_in_degree(graph: dgl.DGLGraph) -> torch.Tensor:
    """:math:`\\log(1 + d_i^{in})` of each node of one sample, (n,) float32."""
    return torch.log1p(graph.in_degrees().to(torch.float32))


#: ``ndata['log_degree']``: the log in-degree of each node in the input graph (before the
#: block's self-loops), computed once per dataset by the data module.
LOG_DEGREE = register_field(
    Field("log_degree", log_in_degree, description="log(1 + in-degree)")
).name


@register("gcn_degree")
class DegreeScaledGCN(GCNConv):
    r""":class:`GCNConv` whose output is amplified per channel by the node's log-degree,
    PNA's amplification scaler (Corso et al., 2020) made learnable:

    .. math::
        x_i' = \big(1 + \gamma \, s_i\big) \odot \mathrm{GCN}(x)_i, \qquad
        s_i = \log(1 + d_i^{in}),

    with :math:`\gamma` (``out_dim``,) learned, initially 0 (so it starts as a GCN), and
    :math:`d_i^{in}` the in-degree in the input graph, read from ``ndata['log_degree']``
    (:data:`LOG_DEGREE`, in ``needs``). A plain GCN's symmetric normalisation averages away
    how many neighbours a node has; the scaler gives it back. Parameters as
    :class:`GCNConv`.

    >>> import dgl, torch
    >>> from graphformer.nn import DegreeScaledGCN
    >>> from graphformer.nn.layers.degree_gcn import log_in_degree
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> graph.ndata["log_degree"] = log_in_degree(graph)  # what the data module provides
    >>> DegreeScaledGCN(4, 8)(graph, torch.randn(3, 4)).shape
    torch.Size([3, 8])
    """

    needs = (LOG_DEGREE,)

    def __init__(self, in_dim: int, out_dim: int, **kwargs) -> None:
        super().__init__(in_dim, out_dim, **kwargs)
        self.gamma = nn.Parameter(torch.zeros(out_dim))

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x``: (N, in_dim) → (N, out_dim); ``graph.ndata['log_degree']``: (N,)."""
        if LOG_DEGREE not in graph.ndata:
            raise ValueError(
                f"DegreeScaledGCN reads graph.ndata[{LOG_DEGREE!r}], which the graph lacks "
                f"(ndata keys {sorted(graph.ndata)}); GraphDataModule(fields=[{LOG_DEGREE!r}]) "
                "computes it (graphformer-train asks for it by itself), or set it with "
                "graphformer.nn.layers.degree_gcn.log_in_degree"
            )
        scale = graph.ndata[LOG_DEGREE].to(x.device, x.dtype).unsqueeze(-1)
        check_node_features(LOG_DEGREE, scale, graph.num_nodes(), 1, self.check_finite)
        return (1 + self.gamma * scale) * super().forward(graph, x, edge_weight)
