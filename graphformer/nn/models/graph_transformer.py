"""GraphTransformer: encoders → N message-passing blocks → optional readout → MLP head."""

from __future__ import annotations

from graphformer.fields import FIELDS
from graphformer.graphs import add_self_loops, add_self_loops_with_features
from graphformer.nn.block import GraphTransformerBlock
from graphformer.nn.compile import compile_model
from graphformer.nn.config import ACTIVATIONS, NORMS, BlockConfig, block_config, choose
from graphformer.nn.core.checks import check_edge_tensor, check_positive
from graphformer.nn.layers.attention import MultiHeadAttention
from graphformer.nn.layers.encoders import (
    LAP_PE,
    RWSE,
    CategoricalEncoder,
    LapPEEncoder,
    LinearEncoder,
    RWSEEncoder,
)
from graphformer.nn.layers.graphormer import SPD, CentralityEncoding, missing_distances
from graphformer.nn.layers.readout import Readout
from graphformer.nn.layerwise import block_layer, check_layerwise, map_nodes

import dgl
import torch
from torch import nn

LEVELS = ("node", "graph")


def feature_encoder(
    dim: int, in_dim: int | None, num_categories: int | None, what: str, check_finite: bool
) -> nn.Module | None:
    """A LinearEncoder for ``in_dim`` continuous features or a CategoricalEncoder for codes."""
    if in_dim is not None and num_categories is not None:
        raise ValueError(
            f"give {what} either in_dim (continuous) or num_categories (integer codes), "
            f"not both; got in_dim={in_dim}, num_categories={num_categories}"
        )
    if num_categories is not None:
        return CategoricalEncoder(num_categories, dim)
    return LinearEncoder(in_dim, dim, check_finite) if in_dim is not None else None


class GraphTransformer(nn.Module):
    """A graph Transformer for node-level or graph-level prediction.

    ``h = enc(x) [+ LapPE] [+ RWSE] [+ centrality]``, then ``num_layers``
    :class:`GraphTransformerBlock` s, a final norm (pre-norm stacks), a :class:`Readout`
    when ``level='graph'``, and an MLP head of ``head_layers`` layers. The self-loop graph
    and the complete graph are built once per batch and shared by all blocks; edge state
    flows from block to block (encoded edge features in, each block's local mixer updating
    it, e.g. GatedGCN).

    Parameters
    ----------
    out_dim : output width (classes or regression targets).
    block : the settings of every block (:class:`~graphformer.nn.BlockConfig`; its ``dim``
        is the model's width, its ``activation`` also the head's, its ``norm`` also the
        final norm's); default ``BlockConfig()``.
    num_layers : number of blocks.
    in_dim / num_categories : node inputs are ``in_dim`` continuous features, or integer
        codes below ``num_categories``. Exactly one is required.
    edge_in_dim / edge_categories : the same for edge features (for local mixers that read
        edge state: ``graphformer.nn.block.edge_readers()``).
    lap_pe_k, rwse_k : widths of the LapPE / RWSE read from ``graph.ndata['lap_pe']`` /
        ``['rwse']`` (made by ``graphformer.data.pe_transform``); 0 disables. The encoders
        list them in :attr:`needs` (``"lap_pe_k8"``), so the data computes what the model
        reads.
    centrality_max_degree : Graphormer's centrality encoding
        (:class:`~graphformer.nn.CentralityEncoding`): learned embeddings of each node's
        in- and out-degree in the input graph (before self-loops), degrees clipped at this
        value, added to the node embeddings; 0 disables.
    level : ``node`` (one output per node) or ``graph`` (one per sample).
    readout : ``mean``, ``sum`` or ``max`` for ``level='graph'``.
    head_layers : layers in the MLP head (≥ 1).
    check_finite : raise on NaN/inf inputs (checked once, at the model's input).
    compile : ``torch.compile`` the graph-free parts (each block's FFN, mixers' MLPs, the
        head) in place, with dynamic shapes (:func:`graphformer.nn.compile.compile_model`,
        which says why the DGL parts stay eager); ``model.compile=true`` from the CLI.

    :attr:`needs` lists the fields the encoders and mixers read besides the features
    (``('lap_pe_k8', 'spd')`` for ``graphormer`` with LapPE of width 8: names of
    :mod:`graphformer.fields`), for the data to compute; :meth:`encode` raises a ValueError
    naming what to do when one is missing.

    >>> import dgl, torch
    >>> from graphformer.nn import BlockConfig, GraphTransformer
    >>> graph = dgl.graph(([0, 1, 2, 3], [1, 2, 3, 0]))
    >>> model = GraphTransformer(3, BlockConfig(dim=8, num_heads=2), num_layers=2, in_dim=5)
    >>> model(graph, torch.randn(4, 5)).shape
    torch.Size([4, 3])
    """

    def __init__(
        self,
        out_dim: int,
        block: BlockConfig | None = None,
        num_layers: int = 4,
        in_dim: int | None = None,
        num_categories: int | None = None,
        edge_in_dim: int | None = None,
        edge_categories: int | None = None,
        lap_pe_k: int = 0,
        rwse_k: int = 0,
        centrality_max_degree: int = 0,
        level: str = "node",
        readout: str = "mean",
        head_layers: int = 2,
        check_finite: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__()
        block = block_config(block)
        if not isinstance(compile, bool):
            raise ValueError(f"compile must be true or false; got {compile!r}")
        check_positive(out_dim=out_dim, num_layers=num_layers)
        check_positive(head_layers=head_layers)
        self.config, dim = block, block.dim
        self.level = choose("level", level, LEVELS)
        self.node_encoder = feature_encoder(
            dim, in_dim, num_categories, "node features", check_finite
        )
        if self.node_encoder is None:
            raise ValueError(
                "GraphTransformer needs in_dim (continuous node features) or num_categories "
                "(integer node codes); got neither"
            )
        # Edge features are checked (as edge_feat) in _check_edge_feat, not again here.
        self.edge_setting = (
            f"edge_in_dim={edge_in_dim}"
            if edge_in_dim is not None
            else f"edge_categories={edge_categories}"
        )
        self.edge_encoder = feature_encoder(
            dim, edge_in_dim, edge_categories, "edge features", check_finite=False
        )
        self.check_finite = check_finite
        self.lap_pe = LapPEEncoder(lap_pe_k, dim, check_finite) if lap_pe_k else None
        self.rwse = RWSEEncoder(rwse_k, dim, check_finite) if rwse_k else None
        if (
            isinstance(centrality_max_degree, bool)
            or not isinstance(centrality_max_degree, int)
            or centrality_max_degree < 0
        ):
            raise ValueError(
                f"centrality_max_degree must be an int ≥ 0 (0: no centrality encoding); got "
                f"{centrality_max_degree!r}"
            )
        self.centrality = (
            CentralityEncoding(dim, centrality_max_degree) if centrality_max_degree else None
        )
        self.blocks = nn.ModuleList(
            GraphTransformerBlock(
                block,
                edge_dim=dim if self.edge_encoder is not None else None,
                self_loops=False,
                check_finite=False,
            )
            for _ in range(num_layers)
        )
        self.mixer_needs = tuple(sorted({key for layer in self.blocks for key in layer.needs}))
        encoders = [encoder for encoder in (self.lap_pe, self.rwse) if encoder is not None]
        self.needs = tuple(sorted({*self.mixer_needs, *(n for e in encoders for n in e.needs)}))
        self.final_norm = NORMS[block.norm](dim) if block.prenorm else nn.Identity()
        self.readout = Readout(readout)
        if level != "graph":
            self.readout = None  # built above only to validate the name
        head: list[nn.Module] = []
        for _ in range(head_layers - 1):
            head += [nn.Linear(dim, dim), ACTIVATIONS[block.activation]()]
        self.head = nn.Sequential(*head, nn.Linear(dim, out_dim))
        #: The submodules compiled with ``compile=True`` (else empty).
        self.compiled = compile_model(self) if compile else []

    def _check_edge_feat(self, graph: dgl.DGLGraph, edge_feat: torch.Tensor) -> None:
        if self.edge_encoder is None:
            raise ValueError(
                "edge_feat was given but the model was built without edge_in_dim or edge_categories"
            )
        if isinstance(self.edge_encoder, LinearEncoder):
            width = self.edge_encoder.in_dim
            check_edge_tensor(
                "edge_feat",
                edge_feat.reshape(len(edge_feat), -1),
                (graph.num_edges(), width),
                self.check_finite,
                dtype=self.edge_encoder.linear.weight.dtype,
            )
        elif edge_feat.shape[0] != graph.num_edges():
            raise ValueError(
                f"edge_feat must have one row per edge: {graph.num_edges()} rows; got "
                f"{edge_feat.shape[0]}"
            )

    def encode(
        self,
        graph: dgl.DGLGraph,
        x: torch.Tensor,
        edge_feat: torch.Tensor | None = None,
        attention: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Node embeddings after the last block and final norm: (N, dim).

        ``attention``: a list to which each block with a local attention mixer appends its
        per-edge weights (E + added self-loops, num_heads); see :meth:`attention_weights`.
        """
        graph, h, edge_state = self.embed(graph, x, edge_feat)
        recorders = [
            block.local for block in self.blocks if isinstance(block.local, MultiHeadAttention)
        ]
        for recorder in recorders:
            recorder.record_attention = attention is not None
        try:
            for block in self.blocks:
                h, edge_state = block(graph, h, edge_state, return_edges=True)
        finally:
            for recorder in recorders:
                recorder.record_attention = False
        if attention is not None:
            attention.extend(recorder.weights for recorder in recorders)
        return self.final_norm(h)

    def embed(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_feat: torch.Tensor | None = None
    ) -> tuple[dgl.DGLGraph, torch.Tensor, torch.Tensor | None]:
        """The blocks' inputs: the graph they run on (plus self-loops when the local
        mixer adds them), the node embeddings (N, dim) and the edge state (or None)."""
        if x.shape[0] != graph.num_nodes():
            raise ValueError(
                f"x must have one row per node: {graph.num_nodes()} rows; got {x.shape[0]}"
            )
        for key in self.mixer_needs:  # the encoders check their own
            if key == SPD and key not in graph.ndata:
                raise ValueError(missing_distances("the model's global mixer", graph))
            if key not in graph.ndata and key in FIELDS and FIELDS[key].provided:
                raise ValueError(FIELDS[key].missing(graph, "the model's input graph"))
            if key not in graph.ndata:
                raise ValueError(
                    f"the model's mixers read graph.ndata[{key!r}], which the graph lacks "
                    f"(ndata keys {sorted(graph.ndata)}); add it to the data"
                )
        h = self.node_encoder(x)
        for name, encoder in ((LAP_PE, self.lap_pe), (RWSE, self.rwse)):
            if encoder is not None:
                if name not in graph.ndata:
                    raise ValueError(
                        f"the model uses {name} but graph.ndata has no {name!r}; apply "
                        f"graphformer.data.pe_transform(lap_k=..., rwse_k=...) to the dataset"
                    )
                h = h + encoder(graph, graph.ndata[name].to(h.device))
        if self.centrality is not None:  # degrees of the input graph: before self-loops
            h = h + self.centrality(graph).to(h.dtype)
        if edge_feat is not None:
            self._check_edge_feat(graph, edge_feat)
        edge_state = None
        if self.edge_encoder is not None:
            if edge_feat is None:
                raise ValueError(
                    f"the model was built for edge features; pass edge_feat ({self.edge_setting}"
                    f"): none was given and the graph has no edata['feat'] (edata keys "
                    f"{sorted(graph.edata)}), so the dataset has no edge features. From the "
                    "CLI: set model.edge_in_dim=null and model.edge_categories=null (a local "
                    "mixer then creates its edge state), or choose a dataset with edge features"
                )
            edge_state = self.edge_encoder(edge_feat)
        local = self.blocks[0].local
        if local is not None and local.self_loops:
            graph, edge_state = add_self_loops_with_features(graph, edge_state)
        return graph, h, edge_state

    def layerwise(
        self,
        graph: dgl.DGLGraph,
        x: torch.Tensor,
        edge_feat: torch.Tensor | None = None,
        chunk_size: int = 4096,
    ) -> torch.Tensor:
        """:meth:`forward` in eval mode, one block at a time over all nodes, each in chunks
        of ``chunk_size`` destination nodes (:func:`graphformer.nn.layerwise.block_layer`;
        call it through :func:`~graphformer.nn.layerwise.layerwise_inference`). The
        embeddings are computed on the whole graph (per node); edge state is kept for the
        whole graph between blocks. Mixers that cannot run layer-wise are refused, named."""
        for block in self.blocks:
            if block.local is not None:
                check_layerwise(block.local, ("in_edges",))
            if block.global_mixer is not None:
                check_layerwise(block.global_mixer, ("global_sums",))
        graph, h, edge_state = self.embed(graph, x, edge_feat)
        for block in self.blocks:
            h, edge_state = block_layer(block, graph, h, edge_state, chunk_size)
        h = map_nodes(self.final_norm, h, chunk_size)
        if self.readout is not None:
            h = self.readout(graph, h)
        return map_nodes(self.head, h, chunk_size)

    @torch.no_grad()
    def attention_weights(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_feat: torch.Tensor | None = None
    ) -> tuple[dgl.DGLGraph, list[torch.Tensor]]:
        """The attention graph (``graph`` plus self-loops) and, for each block with a local
        attention mixer, its weights per edge of that graph: (E', num_heads), summing to 1
        over each node's in-edges. Call in eval mode (train mode would update BatchNorm
        statistics and drop weights)."""
        if self.training:
            raise RuntimeError("attention_weights reads a trained model: call model.eval() first")
        weights: list[torch.Tensor] = []
        self.encode(graph, x, edge_feat, attention=weights)
        return add_self_loops(graph), weights

    def forward(
        self, graph: dgl.DGLGraph, x: torch.Tensor, edge_feat: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N, out_dim) for ``level='node'``; (batch_size, out_dim) for ``level='graph'``."""
        h = self.encode(graph, x, edge_feat)
        if self.readout is not None:
            h = self.readout(graph, h)
        return self.head(h)
