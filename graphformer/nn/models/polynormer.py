r"""Polynormer (Deng et al., ICLR 2024): a stack of gated local attention layers, then gated
linear global attention, for node classification on large graphs."""

from __future__ import annotations

from graphformer.nn.config import BlockConfig, block_config, choose
from graphformer.nn.core.checks import check_node_features, check_positive
from graphformer.nn.core.message_passing import MESSAGE_PASSING_ENGINES, check_engine
from graphformer.nn.layers.polynormer import LOCAL_CONVS, PolynormerAttention, PolynormerLocal
from graphformer.nn.layerwise import global_layer, local_layer, map_nodes
from graphformer.nn.models.sgformer import check_rate

import dgl
import torch
import torch.nn.functional as F
from torch import nn

#: Polynormer's block settings by default: width 64, one head, dropout 0.5.
POLYNORMER_BLOCK = BlockConfig(dim=64, num_heads=1, dropout=0.5)


class Polynormer(nn.Module):
    r"""Polynormer: local stage, then global stage.

    .. math::
        x^{(0)} &= \mathrm{drop}_{in}(x), \qquad
        x^{(l)} = \mathrm{Local}_l(x^{(l-1)}), \qquad
        s = \textstyle\sum_{l=1}^{L} x^{(l)}, \\
        y &= W_g\, \mathrm{Global}_{G} \circ \dots \circ \mathrm{Global}_1(\mathrm{LN}(s))
        \quad\text{(global stage)}, \qquad y = W_\ell\, s \quad\text{(local only)},

    with :math:`\mathrm{Local}_l` :class:`~graphformer.nn.PolynormerLocal` (gated GAT or
    GCN, with post-BN) and :math:`\mathrm{Global}` :class:`~graphformer.nn.PolynormerAttention`
    (gated linear attention over all nodes of each sample, :math:`O(N d^2)`). The first
    local layer maps ``in_dim`` to ``dim`` (its gate, linear path and convolution take the
    input width). The architecture of PyG's ``torch_geometric.nn.models.Polynormer``
    (equal outputs given the same weights, one head:
    ``tests/test_pyg_linear_attention.py``). The authors train the local stage alone
    first, then the whole model; ``global_stage`` switches between the two (set it, or
    :meth:`use_global`, between runs; the recipes train with it on from the start).
    Outputs logits (PyG returns their log-softmax).

    Parameters
    ----------
    out_dim, in_dim : classes and input feature width.
    block : :class:`~graphformer.nn.BlockConfig`; read are ``dim`` (the hidden width,
        ``hidden_channels``; heads concatenated, each ``dim / num_heads`` wide),
        ``num_heads`` (of the local and global attention), ``dropout`` (in the local layers)
        and ``engine`` (the local convolutions'). Default: :data:`POLYNORMER_BLOCK`.
    num_layers, global_layers : layers of the local and of the global stage
        (``local_layers``, ``global_layers``).
    beta : the gates' mixing weight.
    in_dropout, global_dropout : on the input, on the global layers' outputs.
    local_conv : ``gat`` (the paper's local attention) or ``gcn``.
    qk_shared : the global attention shares one query/key projection.
    global_stage : whether the global stage runs (else the local head classifies).
    level : ``node`` only.
    check_finite : raise on NaN/inf input features.

    >>> import dgl, torch
    >>> from graphformer.nn import BlockConfig, Polynormer
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> model = Polynormer(3, in_dim=5, block=BlockConfig(dim=8), num_layers=2)
    >>> model(graph, torch.randn(3, 5)).shape
    torch.Size([3, 3])
    """

    def __init__(
        self,
        out_dim: int,
        in_dim: int,
        block: BlockConfig | None = None,
        num_layers: int = 7,
        global_layers: int = 2,
        beta: float = 0.9,
        in_dropout: float = 0.15,
        global_dropout: float = 0.5,
        local_conv: str = "gat",
        qk_shared: bool = False,
        global_stage: bool = True,
        level: str = "node",
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        block = block_config(block, POLYNORMER_BLOCK)
        dim, num_heads, dropout = block.dim, block.num_heads, block.dropout
        check_positive(out_dim=out_dim, in_dim=in_dim, num_layers=num_layers)
        if (
            isinstance(global_layers, bool)
            or not isinstance(global_layers, int)
            or global_layers < 0
        ):
            raise ValueError(f"global_layers must be an int ≥ 0; got {global_layers!r}")
        self.level = choose("level", level, ("node",))
        choose("local_conv", local_conv, LOCAL_CONVS)
        engine = check_engine(block.engine, MESSAGE_PASSING_ENGINES, "Polynormer")
        self.in_dim, self.check_finite = in_dim, check_finite
        self.in_dropout = check_rate("in_dropout", in_dropout)
        check_rate("global_dropout", global_dropout)
        if not isinstance(global_stage, bool):
            raise ValueError(f"global_stage must be True or False; got {global_stage!r}")
        self.global_stage = global_stage and global_layers > 0
        #: ``graph.ndata`` fields it reads besides the features: none.
        self.needs: tuple[str, ...] = ()
        self.local = nn.ModuleList()
        for index in range(num_layers):
            layer = PolynormerLocal(
                dim,
                num_heads,
                beta,
                local_conv,
                batch_norm=True,
                dropout=dropout,
                check_finite=False,
                engine=engine,
                in_dim=in_dim if index == 0 else None,
            )
            self.local.append(layer)
        self.norm = nn.LayerNorm(dim)
        self.globals = nn.ModuleList(
            PolynormerAttention(
                dim, num_heads, beta, qk_shared, dropout=global_dropout, check_finite=False
            )
            for _ in range(global_layers)
        )
        self.local_head = nn.Linear(dim, out_dim)
        self.global_head = nn.Linear(dim, out_dim)

    def use_global(self, on: bool = True) -> Polynormer:
        """Run the global stage (``on``) or classify from the local stage alone; ``self``."""
        self.global_stage = bool(on) and len(self.globals) > 0
        return self

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_feat: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x``: (N, in_dim) → logits (N, out_dim). ``edge_feat`` must be None."""
        if edge_feat is not None:
            raise ValueError("Polynormer does not read edge features; drop them (edge_feat=None)")
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite)
        h = F.dropout(x, self.in_dropout, self.training)
        summed = 0
        for layer in self.local:
            h = layer(graph, h)
            summed = summed + h
        if not self.global_stage:
            return self.local_head(summed)
        h = self.norm(summed)
        for layer in self.globals:
            h = layer(graph, h)
        return self.global_head(h)

    def layerwise(
        self,
        graph: dgl.DGLGraph,
        x: torch.Tensor,
        edge_feat: torch.Tensor | None = None,
        chunk_size: int = 4096,
    ) -> torch.Tensor:
        """:meth:`forward` in eval mode, layer by layer over all nodes in chunks of
        ``chunk_size`` (:mod:`graphformer.nn.layerwise`): each local layer on the chunks'
        in-subgraphs, each global layer from its sums (:math:`\\sum_j k_j v_j^\\top`,
        :math:`\\sum_j k_j`) accumulated over chunks. One graph (not a batch of several)."""
        if edge_feat is not None:
            raise ValueError("Polynormer does not read edge features; drop them (edge_feat=None)")
        check_node_features("x", x, graph.num_nodes(), self.in_dim, self.check_finite)
        h, summed = x, None
        for layer in self.local:
            h = local_layer(layer, graph, h, chunk_size)
            summed = h.clone() if summed is None else summed.add_(h)
        if not self.global_stage:
            return map_nodes(self.local_head, summed, chunk_size)
        h = map_nodes(self.norm, summed, chunk_size)
        del summed
        for layer in self.globals:
            h = global_layer(layer, graph, h, chunk_size)
        return map_nodes(self.global_head, h, chunk_size)
