"""GatedGCN (Bresson & Laurent, 2017) as benchmarking-gnns and GraphGPS use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphformer.nn.core.checks import check_edge_tensor, check_node_features, check_positive
from graphformer.nn.core.dropout import fast_dropout
from graphformer.nn.core.linear import add_linear
from graphformer.nn.core.message_passing import (
    MESSAGE_PASSING_ENGINES,
    MessagePassing,
    check_engine,
    local_engine,
)
from graphformer.nn.mixers import Mixer, Sizes, register

import dgl
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from graphformer.nn.config import BlockConfig


#: ``engine='auto'`` runs GatedGCN on the ``torch`` engine on CPU graphs of fewer edges
#: than this, on ``dgl`` above (``graphformer.nn.core.message_passing.torch_pays_off``).
#: Measured by ``experiments/molecules/engine_rule.py --layer gatedgcn`` (the layer with
#: edge state, forward + backward, width 64, batches of 23-atom molecules; table in
#: experiments/molecules/README.md): torch's CPU time / DGL's 0.66-0.69 at 400 edges, 0.77-
#: 0.78 at 1,600, 0.88-0.96 from 3,200 to 12,800 (1 and 2 threads); 1.45 (wall, 2 threads)
#: on a 16-graph CLUSTER batch of 64,000 edges. The rule switches at 8,192, inside the range
#: torch won in both.
GATEDGCN_TORCH_BELOW = 8192


@register("gatedgcn")
class GatedGCN(Mixer):
    r"""Residual gated graph convolution that updates node and edge features.

    For an edge :math:`j \to i` with node states :math:`h` and edge state :math:`e`:

    .. math::
        \hat e_{ij} = A h_i + B h_j + C e_{ij}, \qquad
        \eta_{ij} = \frac{\sigma(\hat e_{ij})}{\sum_{k \in N(i)} \sigma(\hat e_{ik}) + \varepsilon}

        h_i' = h_i + \mathrm{drop}\Big(\mathrm{ReLU}\big(\mathrm{BN}\big(U h_i +
            \textstyle\sum_{j \in N(i)} \eta_{ij} \odot V h_j\big)\big)\Big), \qquad
        e_{ij}' = e_{ij} + \mathrm{drop}\big(\mathrm{ReLU}(\mathrm{BN}(\hat e_{ij}))\big)

    with :math:`\sigma` the sigmoid, gates per channel, :math:`\varepsilon = 10^{-6}`.
    φ = ``u_add_v`` (:math:`A h_i + B h_j`) plus :math:`C e_{ij}`, then σ; □ = ``sum``
    twice (``u_mul_e`` for :math:`\sigma \odot V h_j`, ``copy_e`` for :math:`\sigma`).
    Without edge state (``edge_state=None``) :math:`e = 0`: the layer then creates the
    edge state the next layer reads (without building the zeros: :math:`C e = 0`). The
    four node projections run as one matmul (:meth:`node_projections`) and :math:`C e`
    adds onto :math:`A h_i + B h_j` in one GEMM with an add
    (:func:`graphformer.nn.core.linear.add_linear`: oneDNN on large CPU batches): two
    (E, dim) passes for :math:`\hat e` instead of four. A node without in-edges
    aggregates zeros. ``engine='auto'`` runs on the ``torch`` engine on CPU graphs of fewer
    than :data:`GATEDGCN_TORCH_BELOW` edges (molecule batches), else on ``dgl``.

    As the mixer ``gatedgcn`` (``graphformer.nn.mixers``) it owns its dropout and residuals
    (``owns_residual`` follows ``residual``), as in GraphGPS: a block only norms its output.

    Parameters
    ----------
    dim : node and edge state width.
    dropout : on the node and edge updates, before the residuals.
    batch_norm : BatchNorm on the node and edge updates (else none).
    residual : the residuals on nodes and edges.
    check_finite : raise on NaN/inf input features.
    engine : see ``graphformer.nn.core.message_passing``.
    fast_dropout : draw the dropout masks with :func:`graphformer.nn.core.dropout.fast_dropout`
        (16 random bits per element, the ReLU folded into the mask): a layer in 0.70× the
        time on CPU (CLUSTER), but other masks than ``nn.Dropout``'s for a seed, so off by
        default; ``block.fast_dropout`` (``BlockConfig``) for layers built from configs.

    >>> import dgl, torch
    >>> from graphformer.nn import GatedGCN
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> x, edge_state = GatedGCN(8)(graph, torch.randn(3, 8), torch.randn(3, 8))
    >>> x.shape, edge_state.shape
    (torch.Size([3, 8]), torch.Size([3, 8]))
    """

    reads_edges = True
    forward_is_mix = True
    layerwise = "in_edges"

    def __init__(
        self,
        dim: int,
        dropout: float = 0.0,
        batch_norm: bool = True,
        residual: bool = True,
        check_finite: bool = True,
        engine: str = "auto",
        fast_dropout: bool = False,
    ) -> None:
        super().__init__()
        check_positive(dim=dim)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.dim, self.residual, self.check_finite = dim, residual, check_finite
        self.engine = check_engine(engine, MESSAGE_PASSING_ENGINES, "GatedGCN")
        self.gate_dst, self.gate_src, self.gate_edge = (nn.Linear(dim, dim) for _ in range(3))
        self.root, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim)
        norm = nn.BatchNorm1d if batch_norm else lambda width: nn.Identity()
        self.norm_node, self.norm_edge = norm(dim), norm(dim)
        self.dropout = nn.Dropout(dropout)
        if not isinstance(fast_dropout, bool):
            raise ValueError(f"fast_dropout must be True or False; got {fast_dropout!r}")
        self.fast_dropout = fast_dropout
        self.eps = 1e-6
        self.owns_residual = residual

    @classmethod
    def build(cls, config: BlockConfig, sizes: Sizes) -> Mixer:
        """``config.dim`` wide; ``sizes`` unused."""
        return cls(
            config.dim,
            dropout=config.dropout,
            check_finite=False,
            engine=local_engine(config.engine),
            fast_dropout=config.fast_dropout,
        )

    def _check_batch_norm(self, graph: dgl.DGLGraph) -> None:
        """Its own BatchNorms (``batch_norm=True``, whatever the block's ``norm``) need more
        than one node and more than one edge per batch in training."""
        if not (self.training and isinstance(self.norm_node, nn.BatchNorm1d)):
            return
        nodes, edges = graph.num_nodes(), graph.num_edges()
        if nodes == 1 or edges == 1:
            raise ValueError(
                f"GatedGCN batch-normalises its node and edge updates (as in GraphGPS, "
                f"whatever the block's norm), which in training needs more than one node and "
                f"more than one edge per batch; this batch has {nodes} node(s) and {edges} "
                "edge(s). Use a larger batch_size or drop such tiny graphs (or, in code, "
                "GatedGCN(batch_norm=False))"
            )

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: (N, dim); ``edge_state``: (E, dim) or None. Returns both updated. In
        training with ``batch_norm`` a batch of 1 node or 1 edge is refused (ValueError)."""
        check_node_features("x", x, graph.num_nodes(), self.dim, self.check_finite)
        if edge_state is not None:
            check_edge_tensor("edge_state", edge_state, (graph.num_edges(), self.dim))
        self._check_batch_norm(graph)
        mp = MessagePassing(graph, self.engine, x, torch_below=GATEDGCN_TORCH_BELOW)
        src, dst, value, root = self.node_projections(x).unbind(1)
        if edge_state is None:  # C 0 = 0; C's weight still gets its (zero) gradient
            dst = dst + 0.0 * self.gate_edge.weight.sum()
        gates = mp.u_add_v(src, dst)  # C's bias is folded into dst's
        if edge_state is not None:
            gates = add_linear(gates, edge_state, self.gate_edge.weight)
        sigma = torch.sigmoid(gates)
        weighted, total = mp.gated_sum(value, sigma)
        h = root + weighted / (total + self.eps)
        if self.fast_dropout:  # the residuals added in the dropout's pass (addcmul)
            p, training = self.dropout.p, self.training
            skip_h, skip_e = (x, edge_state) if self.residual else (None, None)
            h = fast_dropout(self.norm_node(h), p, training, relu=True, residual=skip_h)
            e = fast_dropout(self.norm_edge(gates), p, training, relu=True, residual=skip_e)
            return h, e
        h = self.dropout(F.relu(self.norm_node(h)))
        e = self.dropout(F.relu(self.norm_edge(gates)))
        if self.residual:
            h, e = x + h, (e if edge_state is None else edge_state + e)
        return h, e

    def node_projections(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`B h, A h + c, V h, U h` in one matmul (as attention's packed QKV): (N, 4,
        dim), the source and destination gate terms, values and root term. The gates'
        edge bias :math:`c` (``gate_edge.bias``) is added per node here rather than per
        edge; the parameters stay five ``nn.Linear`` s (state dicts unchanged)."""
        linears = (self.gate_src, self.gate_dst, self.value, self.root)
        weight = torch.cat([linear.weight for linear in linears])
        bias = torch.cat(
            [
                self.gate_src.bias,
                self.gate_dst.bias + self.gate_edge.bias,
                self.value.bias,
                self.root.bias,
            ]
        )
        return F.linear(x, weight, bias).view(-1, 4, self.dim)
