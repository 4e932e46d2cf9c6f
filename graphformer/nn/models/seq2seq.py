"""An encoder–decoder Transformer from graphformer blocks, and greedy generation.

Every attention is :class:`~graphformer.nn.MultiHeadAttention` on a graph: the encoder's on
the complete graph of each source sequence, the decoder's on the causal graph of each
target sequence and on the complete bipartite graph from source to target. Sequences are
rows laid out sample after sample with per-sample lengths, as nodes of a batched graph.
"""

from __future__ import annotations

from graphformer.graphs import Counts
from graphformer.nn.block import GraphTransformerBlock
from graphformer.nn.config import NORMS, BlockConfig, block_config
from graphformer.nn.core.checks import check_positive
from graphformer.nn.core.dense import padding_index
from graphformer.nn.models.decoder import TransformerDecoder, check_sizes

import dgl
import torch
from torch import nn


def sizes_graph(sizes: torch.Tensor) -> dgl.DGLGraph:
    """A graph without edges whose ``batch_num_nodes`` are ``sizes``: all that a ``full``
    block reads on the dense engine (its complete graph is never built)."""
    graph = dgl.graph(([], []), num_nodes=int(sizes.sum()))
    graph.set_batch_num_nodes(sizes)
    graph.set_batch_num_edges(torch.zeros_like(sizes))
    return graph


#: Seq2SeqTransformer's default settings (ReLU, as ``torch.nn.Transformer``).
SEQ2SEQ_BLOCK = BlockConfig(dim=64, num_heads=4, activation="relu")


class TransformerEncoder(nn.Module):
    """``num_layers`` :class:`~graphformer.nn.GraphTransformerBlock` s with the ``full``
    mixer (self-attention on the complete graph of each sample) and a final norm, as
    ``torch.nn.TransformerEncoder(..., norm=LayerNorm)`` with a key-padding mask.

    Parameters as :class:`~graphformer.nn.models.decoder.TransformerDecoder`: ``block``
    (:class:`~graphformer.nn.BlockConfig`; its ``mixer`` is replaced by ``full``),
    ``num_layers``, ``final_norm``, ``check_finite``. ``block.engine`` as
    :class:`~graphformer.nn.GraphTransformerBlock` (``dgl``/``torch``: message passing on
    the complete graph, built once per forward).

    >>> import torch
    >>> from graphformer.nn import BlockConfig, TransformerEncoder
    >>> encoder = TransformerEncoder(BlockConfig(dim=8, num_heads=2), num_layers=1)
    >>> encoder(torch.randn(5, 8), [2, 3]).shape
    torch.Size([5, 8])
    """

    def __init__(
        self,
        block: BlockConfig | None = None,
        num_layers: int = 2,
        final_norm: bool = True,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        block = block_config(block).replace(mixer="full")
        check_positive(num_layers=num_layers)
        self.config, self.engine = block, block.engine
        self.blocks = nn.ModuleList(
            GraphTransformerBlock(block, check_finite=check_finite if index == 0 else False)
            for index in range(num_layers)
        )
        self.norm = NORMS[block.norm](block.dim) if final_norm else nn.Identity()

    def forward(self, x: torch.Tensor, sizes: Counts) -> torch.Tensor:
        """``x``: (N, dim) rows sample after sample, ``sizes``: (B,) per sample → (N, dim)."""
        sizes = check_sizes("sizes", sizes, len(x))
        graph = sizes_graph(sizes)  # the blocks' full attention derives its complete graph
        for block in self.blocks:
            x = block(graph, x)
        return self.norm(x)


class TokenEmbedding(nn.Module):
    """Token embedding plus a learned absolute position embedding (position within the
    sample), for sequences laid out as rows sample after sample."""

    def __init__(self, vocab_size: int, dim: int, max_len: int) -> None:
        super().__init__()
        check_positive(vocab_size=vocab_size, dim=dim, max_len=max_len)
        self.vocab_size, self.max_len = vocab_size, max_len
        self.token = nn.Embedding(vocab_size, dim)
        self.position = nn.Embedding(max_len, dim)

    def forward(self, tokens: torch.Tensor, sizes: torch.Tensor, name: str) -> torch.Tensor:
        if tokens.dim() != 1 or tokens.is_floating_point() or tokens.dtype == torch.bool:
            raise ValueError(
                f"{name} must be a 1-D tensor of integer token ids, one per row; got dtype "
                f"{tokens.dtype} and shape {tuple(tokens.shape)}"
            )
        if len(tokens) and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(
                f"{name} ids must lie in [0, {self.vocab_size}); got values in "
                f"[{int(tokens.min())}, {int(tokens.max())}]. Raise the vocabulary size."
            )
        if len(sizes) and int(sizes.max()) > self.max_len:
            raise ValueError(
                f"a sequence of {name} has {int(sizes.max())} tokens but the model was built "
                f"with max_len={self.max_len}; raise max_len or shorten the sequences"
            )
        position = padding_index(sizes)[1].to(tokens.device)
        return self.token(tokens) + self.position(position)


class Seq2SeqTransformer(nn.Module):
    r"""An encoder–decoder Transformer (Vaswani et al., 2017) from graphformer blocks.

    .. math::
        m = \mathrm{Enc}(E_s[x] + P), \qquad
        \mathrm{logits} = W\, \mathrm{Dec}(E_t[y] + P,\ m)

    :class:`TransformerEncoder` (attention on the complete graph of each source) and
    :class:`~graphformer.nn.models.decoder.TransformerDecoder` (causal graph of each target,
    complete bipartite graph source → target); with layer norm and the same weights the
    stacks equal ``torch.nn.Transformer(batch_first=True)`` with a causal target mask and
    key-padding masks (``tests/nn/test_seq2seq.py``). Tokens are 1-D tensors of ids laid out
    sample after sample, with per-sample lengths; :meth:`generate` decodes greedily.

    Parameters
    ----------
    src_vocab, tgt_vocab : source and target vocabulary sizes (the output has ``tgt_vocab``
        logits).
    block : the settings of both stacks (:class:`~graphformer.nn.BlockConfig`: ``dim``,
        ``num_heads``, ``ffn_ratio``, ``activation``, ``norm``, ``prenorm``, ``dropout``,
        ``attn_dropout``, ``engine``); default :data:`SEQ2SEQ_BLOCK`.
    num_layers : encoder layers; ``decoder_layers`` : decoder layers (default the same).
    max_len : longest source or target sequence (positions are learned).

    >>> import torch
    >>> from graphformer.nn import BlockConfig, Seq2SeqTransformer
    >>> model = Seq2SeqTransformer(7, 5, BlockConfig(dim=8, num_heads=2), max_len=4)
    >>> src, tgt = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([0, 1, 0])
    >>> model(src, [2, 3], tgt, [1, 2]).shape
    torch.Size([3, 5])
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        block: BlockConfig | None = None,
        num_layers: int = 2,
        decoder_layers: int | None = None,
        max_len: int = 64,
    ) -> None:
        super().__init__()
        block = block_config(block, SEQ2SEQ_BLOCK)
        self.config, dim = block, block.dim
        self.src_embed = TokenEmbedding(src_vocab, dim, max_len)
        self.tgt_embed = TokenEmbedding(tgt_vocab, dim, max_len)
        self.encoder = TransformerEncoder(block, num_layers, check_finite=False)
        layers = num_layers if decoder_layers is None else decoder_layers
        self.decoder = TransformerDecoder(block, layers, check_finite=False)
        self.head = nn.Linear(dim, tgt_vocab)
        self.dropout = nn.Dropout(block.dropout)

    def encode(self, src: torch.Tensor, src_sizes: Counts) -> torch.Tensor:
        """Source ids (N_src,) → memory (N_src, dim)."""
        src_sizes = check_sizes("src_sizes", src_sizes, len(src))
        return self.encoder(self.dropout(self.src_embed(src, src_sizes, "src")), src_sizes)

    def decode(
        self, tgt: torch.Tensor, tgt_sizes: Counts, memory: torch.Tensor, src_sizes: Counts
    ) -> torch.Tensor:
        """Target ids (N_tgt,) (shifted right: they start with the start token) and the
        memory → logits (N_tgt, tgt_vocab) of each next token."""
        tgt_sizes = check_sizes("tgt_sizes", tgt_sizes, len(tgt))
        y = self.dropout(self.tgt_embed(tgt, tgt_sizes, "tgt"))
        return self.head(self.decoder(y, tgt_sizes, memory, src_sizes))

    def forward(
        self, src: torch.Tensor, src_sizes: Counts, tgt: torch.Tensor, tgt_sizes: Counts
    ) -> torch.Tensor:
        """Teacher forcing: logits (N_tgt, tgt_vocab) for every target row."""
        return self.decode(tgt, tgt_sizes, self.encode(src, src_sizes), src_sizes)

    @torch.no_grad()
    def generate(
        self,
        src: torch.Tensor,
        src_sizes: Counts,
        max_len: int,
        bos: int,
        eos: int | None = None,
        pad: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding: start each target with ``bos``, append the argmax token, repeat.

        Runs ``max_len`` steps, or fewer once every sample has produced ``eos`` (when
        given). Returns the tokens (B, T) without ``bos`` and the logits (B, T, tgt_vocab)
        they were chosen from; with ``pad`` (and ``eos``), tokens after each sample's first
        ``eos`` are set to ``pad``. ``bos``, ``eos`` and ``pad`` must be ids in
        ``[0, tgt_vocab)``, and ``pad`` needs ``eos`` (ValueError otherwise). Call in eval
        mode for deterministic output.
        """
        check_positive(max_len=max_len)
        vocab = self.head.out_features
        for name, value in (("bos", bos), ("eos", eos), ("pad", pad)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab
            ):
                raise ValueError(
                    f"{name}={value!r} must be a target token id in [0, {vocab}) (tgt_vocab="
                    f"{vocab}): pass the id your target vocabulary gives it, or build the "
                    "model with a larger tgt_vocab"
                )
        if pad is not None and eos is None:
            raise ValueError(
                f"pad={pad} is used only with eos (tokens after each sample's first eos become "
                "pad); pass eos=<end token id>, or drop pad"
            )
        src_sizes = check_sizes("src_sizes", src_sizes, len(src))
        memory = self.encode(src, src_sizes)
        batch = len(src_sizes)
        tokens = torch.full((batch, 1), bos, dtype=torch.long, device=src.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
        steps = []
        for length in range(1, max_len + 1):
            sizes = torch.full((batch,), length, dtype=torch.long)
            logits = self.decode(tokens.reshape(-1), sizes, memory, src_sizes)
            last = logits.view(batch, length, -1)[:, -1]
            steps.append(last)
            tokens = torch.cat([tokens, last.argmax(-1, keepdim=True)], dim=1)
            if eos is not None:
                finished |= tokens[:, -1] == eos
                if finished.all():
                    break
        tokens = tokens[:, 1:]
        if eos is not None and pad is not None:
            after_eos = (torch.cumsum(tokens == eos, dim=1) - (tokens == eos).long()) > 0
            tokens = tokens.masked_fill(after_eos, pad)
        return tokens, torch.stack(steps, dim=1)
