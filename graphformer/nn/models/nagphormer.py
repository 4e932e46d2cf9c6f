r"""NAGphormer (Chen et al., ICLR 2023): node classification from precomputed hop tokens,
one Transformer sequence per node, so nodes batch independently of the graph."""

from __future__ import annotations

from graphformer.nn.config import BlockConfig, block_config, choose
from graphformer.nn.core.checks import check_positive
from graphformer.nn.layers.nagphormer import HopTransformer, check_hops, hop_field

import dgl
import torch
import torch.nn.functional as F
from torch import nn

#: NAGphormer's block settings by default: width 512, 8 heads, dropout 0.1 (the paper's).
NAGPHORMER_BLOCK = BlockConfig(dim=512, num_heads=8, dropout=0.1, attn_dropout=0.1)


class NAGphormer(nn.Module):
    r"""NAGphormer: hop tokens → linear map → Transformer over each node's tokens →
    attention readout → 2-layer head.

    .. math::
        T_i = W_{in} [x_i, (\hat A X)_i, \dots, (\hat A^K X)_i] + b, \qquad
        z_i = \mathrm{Readout}(\mathrm{LN}(\mathrm{Transformer}(T_i))), \qquad
        y_i = W_2\, \mathrm{ReLU}(W_1 z_i),

    with :math:`\hat A = \tilde D^{-1/2}(A + I)\tilde D^{-1/2}` (in- and out-degrees on
    directed graphs), the tokens read from the node field :func:`hop_field` ``(hops)``
    (listed in :attr:`needs`: ``graphformer-train`` has the data module compute and cache
    them once, ``GraphDataModule(fields=[...])``), the Transformer and readout
    :class:`~graphformer.nn.layers.nagphormer.HopTransformer`. A node's output depends on
    its own tokens only: once they are computed, any set of nodes is a batch (no
    neighbourhood sampling), and the cost per node is :math:`O(K^2 d + K d^2)` whatever the
    graph's size. Differences from the paper: no Laplacian eigenvector features are
    concatenated to the input (add them to ``feat`` to have them); the hop aggregates use
    GCN's self-looped normalisation.

    Parameters
    ----------
    out_dim, in_dim : classes and input feature width.
    block : :class:`~graphformer.nn.BlockConfig`; read are ``dim``, ``num_heads``,
        ``dropout``, ``attn_dropout`` and ``ffn_ratio``. Default :data:`NAGPHORMER_BLOCK`.
    num_layers : Transformer layers.
    hops : :math:`K`.
    level : ``node`` only.

    >>> import dgl, torch
    >>> from graphformer.nn import BlockConfig, NAGphormer
    >>> from graphformer.nn.layers.nagphormer import hop_field
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> graph.ndata["feat"] = torch.randn(3, 5)
    >>> model = NAGphormer(3, in_dim=5, block=BlockConfig(dim=8, num_heads=2), hops=2)
    >>> model.needs
    ('hop_feat_2',)
    >>> graph.ndata["hop_feat_2"] = hop_field(2)(graph)  # what the data module provides
    >>> model(graph, graph.ndata["feat"]).shape
    torch.Size([3, 3])
    """

    def __init__(
        self,
        out_dim: int,
        in_dim: int,
        block: BlockConfig | None = None,
        num_layers: int = 1,
        hops: int = 3,
        level: str = "node",
    ) -> None:
        super().__init__()
        block = block_config(block, NAGPHORMER_BLOCK)
        check_positive(out_dim=out_dim, in_dim=in_dim, num_layers=num_layers)
        self.level = choose("level", level, ("node",))
        self.in_dim, self.hops = in_dim, check_hops(hops)
        self.field = hop_field(hops).name
        #: ``graph.ndata`` fields it reads: the hop tokens of the input features.
        self.needs: tuple[str, ...] = (self.field,)
        dim = block.dim
        self.embed = nn.Linear(in_dim, dim)
        self.transformer = HopTransformer(
            dim, block.num_heads, num_layers, block.dropout, block.attn_dropout, block.ffn_ratio
        )
        self.hidden = nn.Linear(dim, dim // 2 or 1)
        self.head = nn.Linear(dim // 2 or 1, out_dim)

    def __setstate__(self, state: dict) -> None:
        """Unpickled (a spawned DDP or loader process): register its field there too, so
        the data module of that process finds it by name."""
        super().__setstate__(state)
        hop_field(self.hops)

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_feat: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (N, out_dim) from ``graph.ndata[self.field]`` (N, hops + 1, in_dim); ``x``
        (the features, whose hop-0 token is the field's first) is unused; ``edge_feat``
        must be None."""
        if edge_feat is not None:
            raise ValueError("NAGphormer does not read edge features; drop them (edge_feat=None)")
        if self.field not in graph.ndata:
            raise ValueError(
                f"NAGphormer reads its hop tokens from graph.ndata[{self.field!r}], which the "
                f"graph lacks (ndata keys {sorted(graph.ndata)}); GraphDataModule(fields="
                f"[{self.field!r}]) computes and caches them (graphformer-train asks for them "
                f"by itself), or set them with graphformer.nn.layers.nagphormer.hop_field"
                f"({self.hops})(graph)"
            )
        tokens = graph.ndata[self.field].to(self.embed.weight)
        if tokens.dim() != 3 or tokens.shape[1:] != (self.hops + 1, self.in_dim):
            raise ValueError(
                f"graph.ndata[{self.field!r}] must be (N, {self.hops + 1}, {self.in_dim}) = "
                f"(nodes, hops + 1, in_dim); got {tuple(tokens.shape)}: were the tokens made "
                "of other features?"
            )
        z = self.transformer(self.embed(tokens))
        return self.head(F.relu(self.hidden(z)))
