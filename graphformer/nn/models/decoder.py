"""A Transformer decoder as message passing: causal self-attention on the causal graph,
cross-attention on the complete bipartite graph from the encoder memory, then the FFN."""

from __future__ import annotations

from graphformer.graphs import Counts, causal_graph, complete_bipartite, sample_sizes
from graphformer.nn.block import feed_forward
from graphformer.nn.config import NORMS, BlockConfig, block_config
from graphformer.nn.core.checks import check_node_features, check_positive
from graphformer.nn.core.dropout import dropout_module
from graphformer.nn.core.message_passing import check_engine, decide_engine
from graphformer.nn.layers.attention import MultiHeadAttention

import dgl
import torch
from torch import nn


def check_sizes(name: str, sizes: Counts, num_rows: int) -> torch.Tensor:
    """Per-sample row counts (:func:`graphformer.graphs.sample_sizes`) that sum to ``num_rows``."""
    counts = sample_sizes(sizes, name)
    if int(counts.sum()) != num_rows:
        raise ValueError(
            f"{name} must count the rows sample by sample and sum to {num_rows}; got "
            f"{counts.tolist()} (sum {int(counts.sum())})"
        )
    return counts


class DecoderBlock(nn.Module):
    r"""One Transformer decoder layer: three mixers, each inside γ (residual + norm).

    Pre-norm (default), with :math:`m` the encoder memory:

    .. math::
        y \leftarrow y + \mathrm{drop}(\mathrm{Attn}_{\mathrm{causal}}(\mathrm{norm}_1 y)),
        \quad y \leftarrow y + \mathrm{drop}(\mathrm{Attn}_{m \to y}(\mathrm{norm}_2 y, m)),
        \quad y \leftarrow y + \mathrm{drop}(\mathrm{FFN}(\mathrm{norm}_3 y))

    Post-norm: :math:`y \leftarrow \mathrm{norm}_1(y + \mathrm{drop}(\mathrm{Attn}(y)))`,
    and so on. :math:`\mathrm{Attn}_{\mathrm{causal}}` is :class:`MultiHeadAttention` on
    :func:`~graphformer.graphs.causal_graph` (j → i for j ≤ i within a sample);
    :math:`\mathrm{Attn}_{m \to y}` is it on
    :func:`~graphformer.graphs.complete_bipartite` from the memory rows to the decoder
    rows of the same sample. With layer norm this is ``torch.nn.TransformerDecoderLayer``
    (``norm_first=prenorm``) with a causal target mask and key-padding masks.

    Parameters
    ----------
    block : the settings (:class:`~graphformer.nn.BlockConfig`): ``dim`` (decoder width),
        ``num_heads`` (both attentions), ``ffn_ratio``, ``activation``, ``norm``,
        ``prenorm``, ``dropout``, ``attn_dropout``, ``engine``; its mixer names are unused.
    memory_dim : width of the encoder memory; defaults to ``block.dim``.
    check_finite : raise on NaN/inf input features.

    ``block.engine``: ``auto`` (default) and ``dense``: padded SDPA per sample (``is_causal``, and a
        key-padding mask for the memory), no graph built; ``auto`` passes messages instead
        on graphs handed to :meth:`forward`. ``dgl``: DGL builtins on the causal and
        bipartite graphs (built when not given). ``torch``: the torch fallback on them.

    >>> import torch
    >>> from graphformer.nn import BlockConfig, DecoderBlock
    >>> block = DecoderBlock(BlockConfig(dim=8, num_heads=2), memory_dim=6)
    >>> y, memory = torch.randn(5, 8), torch.randn(4, 6)  # rows of two samples each
    >>> block(y, [3, 2], memory, [1, 3]).shape
    torch.Size([5, 8])
    """

    def __init__(
        self,
        block: BlockConfig | None = None,
        memory_dim: int | None = None,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        block = block_config(block)
        dim, num_heads, engine = block.dim, block.num_heads, block.engine
        self.config = block
        self.engine = check_engine(engine)
        self.dim, self.prenorm, self.check_finite = dim, block.prenorm, check_finite
        self.memory_dim = dim if memory_dim is None else memory_dim
        attn_dropout, fast = block.attn_dropout, block.fast_dropout
        settings = {"check_finite": False, "engine": engine, "fast_dropout": fast}
        self.self_attn = MultiHeadAttention(dim, num_heads, attn_dropout, **settings)
        self.cross_attn = MultiHeadAttention(
            dim, num_heads, attn_dropout, src_dim=memory_dim, **settings
        )
        self.norm1, self.norm2, self.norm3 = (NORMS[block.norm](dim) for _ in range(3))
        self.ffn = feed_forward(dim, block.ffn_ratio, block.activation, block.dropout, fast)
        self.dropout = dropout_module(block.dropout, fast)

    def passes_messages(self, graph: dgl.DGLGraph | None, like: torch.Tensor) -> bool:
        """Whether attention runs on graphs (else as padded SDPA from the sizes), as
        :func:`~graphformer.nn.core.message_passing.decide_engine` decides; ``graph``: one the
        caller gave (None: none given)."""
        return not decide_engine(self.engine, graph, like, attention=True, from_sizes=True).dense

    def forward(
        self,
        x: torch.Tensor,
        sizes: Counts,
        memory: torch.Tensor,
        memory_sizes: Counts,
        self_graph: dgl.DGLGraph | None = None,
        cross_graph: dgl.DGLGraph | None = None,
    ) -> torch.Tensor:
        """``x``: (N, dim) decoder rows, sample after sample, ``sizes`` (B,) per sample;
        ``memory``: (N_src, memory_dim) encoder rows, ``memory_sizes`` (B,). Returns (N, dim).

        ``self_graph`` / ``cross_graph``: the graphs to pass messages on (default
        ``causal_graph(sizes)`` and ``complete_bipartite(memory_sizes, sizes)``); pass them
        to share one pair across blocks, or to attend on other graphs (e.g. a window).
        """
        check_node_features("x", x, len(x), self.dim, self.check_finite)
        check_node_features("memory", memory, len(memory), self.memory_dim, self.check_finite)
        sizes = check_sizes("sizes", sizes, len(x))
        memory_sizes = check_sizes("memory_sizes", memory_sizes, len(memory))
        if len(sizes) != len(memory_sizes):
            raise ValueError(
                f"sizes and memory_sizes must describe the same samples; got {len(sizes)} and "
                f"{len(memory_sizes)} samples"
            )
        given = self_graph if self_graph is not None else cross_graph
        if self.passes_messages(given, x):
            self_graph = causal_graph(sizes) if self_graph is None else self_graph
            cross_graph = (
                complete_bipartite(memory_sizes, sizes) if cross_graph is None else cross_graph
            )

            def attend_self(y):
                return self.self_attn(self_graph, y)

            def attend_memory(y):
                return self.cross_attn(cross_graph, (memory, y))
        else:

            def attend_self(y):
                return self.self_attn.dense_causal(y, sizes)

            def attend_memory(y):
                return self.cross_attn.dense_cross(memory, memory_sizes, y, sizes)

        sublayers = ((attend_self, self.norm1), (attend_memory, self.norm2), (self.ffn, self.norm3))
        for mixer, norm in sublayers:
            if self.prenorm:
                x = x + self.dropout(mixer(norm(x)))
            else:
                x = norm(x + self.dropout(mixer(x)))
        return x


class TransformerDecoder(nn.Module):
    """``num_layers`` :class:`DecoderBlock` s and a final norm, as
    ``torch.nn.TransformerDecoder(..., norm=LayerNorm)``. The causal and bipartite graphs
    are built once per forward (message-passing engines) and shared by the blocks.

    Parameters: ``block`` (:class:`~graphformer.nn.BlockConfig`, shared by the blocks),
    ``num_layers`` (≥ 1), ``final_norm`` (default True, as ``nn.Transformer``), the rest as
    :class:`DecoderBlock`.

    >>> import torch
    >>> from graphformer.nn import BlockConfig, TransformerDecoder
    >>> decoder = TransformerDecoder(BlockConfig(dim=8, num_heads=2), num_layers=1)
    >>> y, memory = torch.randn(5, 8), torch.randn(4, 8)  # two samples each
    >>> decoder(y, [3, 2], memory, [1, 3]).shape
    torch.Size([5, 8])
    """

    def __init__(
        self,
        block: BlockConfig | None = None,
        num_layers: int = 2,
        memory_dim: int | None = None,
        final_norm: bool = True,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        block = block_config(block)
        check_positive(num_layers=num_layers)
        self.blocks = nn.ModuleList(
            DecoderBlock(block, memory_dim, check_finite=check_finite if index == 0 else False)
            for index in range(num_layers)
        )
        self.norm = NORMS[block.norm](block.dim) if final_norm else nn.Identity()

    def forward(
        self, x: torch.Tensor, sizes: Counts, memory: torch.Tensor, memory_sizes: Counts
    ) -> torch.Tensor:
        """(N, dim) decoder rows and (N_src, memory_dim) memory rows → (N, dim)."""
        self_graph = cross_graph = None
        if self.blocks[0].passes_messages(None, x):
            sizes = check_sizes("sizes", sizes, len(x))
            self_graph = causal_graph(sizes)
            cross_graph = complete_bipartite(
                check_sizes("memory_sizes", memory_sizes, len(memory)), sizes
            )
        for block in self.blocks:
            x = block(x, sizes, memory, memory_sizes, self_graph, cross_graph)
        return self.norm(x)
