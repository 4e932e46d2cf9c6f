"""GINE (Hu et al., 2020): the graph isomorphism network with edge features."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphformer.nn.core.checks import check_edge_tensor, check_node_features, check_positive
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

#: ``engine='auto'`` runs GINE on the ``torch`` engine for CPU graphs of fewer edges than
#: this, on ``dgl`` above (``graphformer.nn.core.message_passing.torch_pays_off``).
#: Measured by ``experiments/molecules/engine_rule.py`` (φ and □ forward + backward, width
#: 64, batches of 23-atom molecules, 1 thread; table in experiments/molecules/README.md):
#: torch's CPU time / DGL's was 0.37 at 400 edges (8 molecules), 0.56 at 1,600 (a zinc_logp
#: batch of 32), 0.78-0.82 from 6,400 to 25,600, 0.95 at 51,200 and 1.05 at 102,400 with
#: DGL on one OpenMP thread; with DGL's default two threads 0.42, 0.52, 0.83-0.86 to
#: 12,800, 1.04 at 25,600. The rule switches at 16,384, inside the range where torch won
#: in both settings.
GINE_TORCH_BELOW = 16384


@register("gine")
class GINE(Mixer):
    r"""GIN aggregation with edge features, then an MLP:

    .. math::
        x_i' = \mathrm{MLP}\Big((1 + \epsilon)\, x_i
            + \sum_{j \in N(i)} \mathrm{ReLU}(x_j + e_{ij})\Big),
        \qquad \mathrm{MLP}(h) = W_2\, \mathrm{ReLU}(W_1 h + b_1) + b_2

    φ = ReLU(``u_add_e``) (one pass for :math:`x_j + e_{ij}`, ReLU in place), □ = ``sum``;
    without edge state (``edge_state=None``)
    :math:`e = 0` and φ, □ fuse into one ``copy_u`` sum. ``engine='auto'`` runs on the
    ``torch`` engine on CPU graphs of fewer than :data:`GINE_TORCH_BELOW` edges (molecule
    batches: DGL's fixed cost per kernel call dominates there), else on ``dgl``.
    :math:`\epsilon` is learned (``learn_eps``, initially 0). Edge state passes through
    unchanged. A node without in-edges aggregates zeros. As GraphGPS's GINE mixer, it runs
    on the input graph (no self-loops: the :math:`(1 + \epsilon) x_i` term is the node's own share).

    Parameters
    ----------
    dim : node and edge feature width.
    learn_eps : learn :math:`\epsilon` (else fixed at 0).
    check_finite : raise on NaN/inf input features.
    engine : see ``graphformer.nn.core.message_passing``.

    >>> import dgl, torch
    >>> from graphformer.nn import GINE
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> x, edge_state = GINE(8)(graph, torch.randn(3, 8), torch.randn(3, 8))
    >>> x.shape
    torch.Size([3, 8])
    """

    reads_edges = True
    forward_is_mix = True

    def __init__(
        self, dim: int, learn_eps: bool = True, check_finite: bool = True, engine: str = "auto"
    ) -> None:
        super().__init__()
        check_positive(dim=dim)
        self.dim, self.check_finite = dim, check_finite
        self.engine = check_engine(engine, MESSAGE_PASSING_ENGINES, "GINE")
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        eps = torch.zeros(1)
        if learn_eps:
            self.eps = nn.Parameter(eps)
        else:
            self.register_buffer("eps", eps)

    @classmethod
    def build(cls, config: BlockConfig, sizes: Sizes) -> Mixer:
        """``config.dim`` wide; ``sizes`` unused."""
        return cls(config.dim, check_finite=False, engine=local_engine(config.engine))

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x``: (N, dim); ``edge_state``: (E, dim) or None. Returns (N, dim), edge state."""
        check_node_features("x", x, graph.num_nodes(), self.dim, self.check_finite)
        mp = MessagePassing(graph, self.engine, x, torch_below=GINE_TORCH_BELOW)
        if edge_state is None:
            neighbours = mp.copy_u_reduce(F.relu(x), "sum")
        else:
            check_edge_tensor(
                "edge_state", edge_state, (graph.num_edges(), self.dim), self.check_finite
            )
            # x_j + e_ij in one pass, ReLU in place on that fresh (E, dim) tensor, summed
            # onto the node's own share
            messages = torch.relu_(mp.u_add_e(x, edge_state))
            return self.mlp(mp.add_copy_e_sum((1 + self.eps) * x, messages)), edge_state
        return self.mlp((1 + self.eps) * x + neighbours), edge_state
