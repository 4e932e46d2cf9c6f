"""graphformer's public blocks. Imports only torch and DGL, so they drop into any model.

Glossary (one name per thing, across ``graphformer.nn``):

- ``dim``: the width of a block or model (every block of a stack, the hidden width);
  ``BlockConfig.dim``. Other widths are ``<tensor>_dim``: ``in_dim`` / ``out_dim`` (a
  layer's or model's input and output), ``edge_dim`` (edge state), ``edge_in_dim`` (raw edge
  features), ``src_dim`` (keys/values of cross-attention), ``memory_dim`` (a decoder's
  encoder memory). ``MultiHeadAttention(dim)`` is ``torch.nn.MultiheadAttention``'s
  ``embed_dim`` (its ``embed_dim`` attribute reads it too), ``src_dim`` its ``kdim``/``vdim``,
  ``attn_dropout`` its ``dropout``.
- ``edge_feat``: edge features given to a layer or model as input (a model encodes them);
  ``edge_state``: the (E, dim) edge tensor that flows from block to block, which a mixer's
  ``mix`` takes and returns (GatedGCN updates it); ``edge_weight``: GCN's scalar (E,)
  weights; ``edge_bias``: attention's (E, num_heads) additive score terms.
- ``mixer``: a token mixer (:class:`~graphformer.nn.mixers.Mixer`); ``local_mixer`` /
  ``global_mixer``: the two halves of a ``gps`` block, names in :class:`BlockConfig` and the
  modules ``block.local`` / ``block.global_mixer``.
- ``dropout``: on mixer, FFN and layer outputs; ``attn_dropout``: on attention weights.
- ``engine``: ``graphformer.nn.core.message_passing.ENGINES``.
"""

from graphformer.nn.block import GraphTransformerBlock
from graphformer.nn.config import BlockConfig
from graphformer.nn.layers.attention import FullAttention, MultiHeadAttention, ProjectedAttention
from graphformer.nn.layers.conv import GCNConv, SAGEConv
from graphformer.nn.layers.degree_gcn import DegreeScaledGCN
from graphformer.nn.layers.distance_bias import GaussianDistanceBias, Graphormer3DAttention
from graphformer.nn.layers.encoders import (
    CategoricalEncoder,
    LapPEEncoder,
    LinearEncoder,
    NodeEncodingProjection,
    RWSEEncoder,
)
from graphformer.nn.layers.exphormer import ExphormerAttention
from graphformer.nn.layers.gat import GATConv
from graphformer.nn.layers.gatedgcn import GatedGCN
from graphformer.nn.layers.gine import GINE
from graphformer.nn.layers.graphormer import CentralityEncoding, GraphormerAttention, SpatialBias
from graphformer.nn.layers.nagphormer import NAGphormerMixer
from graphformer.nn.layers.performer import PerformerAttention
from graphformer.nn.layers.polynormer import PolynormerAttention, PolynormerLocal
from graphformer.nn.layers.readout import Readout
from graphformer.nn.layers.sgformer import SGFormerAttention
from graphformer.nn.mixers import Mixer
from graphformer.nn.models.decoder import DecoderBlock, TransformerDecoder
from graphformer.nn.models.gnn import GNN
from graphformer.nn.models.graph_transformer import GraphTransformer
from graphformer.nn.models.nagphormer import NAGphormer
from graphformer.nn.models.polynormer import Polynormer
from graphformer.nn.models.seq2seq import Seq2SeqTransformer, TransformerEncoder
from graphformer.nn.models.sgformer import SGFormer

__all__ = [
    "GINE",
    "GNN",
    "BlockConfig",
    "CategoricalEncoder",
    "CentralityEncoding",
    "DecoderBlock",
    "DegreeScaledGCN",
    "ExphormerAttention",
    "FullAttention",
    "GATConv",
    "GCNConv",
    "GatedGCN",
    "GaussianDistanceBias",
    "GraphTransformer",
    "GraphTransformerBlock",
    "Graphormer3DAttention",
    "GraphormerAttention",
    "LapPEEncoder",
    "LinearEncoder",
    "Mixer",
    "MultiHeadAttention",
    "NAGphormer",
    "NAGphormerMixer",
    "NodeEncodingProjection",
    "PerformerAttention",
    "Polynormer",
    "PolynormerAttention",
    "PolynormerLocal",
    "ProjectedAttention",
    "RWSEEncoder",
    "Readout",
    "SAGEConv",
    "SGFormer",
    "SGFormerAttention",
    "Seq2SeqTransformer",
    "SpatialBias",
    "TransformerDecoder",
    "TransformerEncoder",
]
