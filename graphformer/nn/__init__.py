"""graphformer's public blocks. Imports only torch and DGL, so they drop into any model."""

from graphformer.nn.block import MIXERS, GraphTransformerBlock
from graphformer.nn.layers.attention import MultiHeadAttention
from graphformer.nn.layers.conv import GCNConv, SAGEConv
from graphformer.nn.layers.encoders import (
    CategoricalEncoder,
    LapPEEncoder,
    LinearEncoder,
    RWSEEncoder,
    pe_transform,
)
from graphformer.nn.layers.exphormer import ExphormerAttention
from graphformer.nn.layers.gat import GATConv
from graphformer.nn.layers.gatedgcn import GatedGCN
from graphformer.nn.layers.gine import GINE
from graphformer.nn.layers.graphormer import CentralityEncoding, GraphormerAttention, SpatialBias
from graphformer.nn.layers.performer import PerformerAttention, PerformerMixer
from graphformer.nn.layers.readout import Readout
from graphformer.nn.models.decoder import DecoderBlock, TransformerDecoder
from graphformer.nn.models.gnn import GNN
from graphformer.nn.models.graph_transformer import GraphTransformer
from graphformer.nn.models.seq2seq import Seq2SeqTransformer, TransformerEncoder

__all__ = [
    "GINE",
    "GNN",
    "MIXERS",
    "CategoricalEncoder",
    "CentralityEncoding",
    "DecoderBlock",
    "ExphormerAttention",
    "GATConv",
    "GCNConv",
    "GatedGCN",
    "GraphTransformer",
    "GraphTransformerBlock",
    "GraphormerAttention",
    "LapPEEncoder",
    "LinearEncoder",
    "MultiHeadAttention",
    "PerformerAttention",
    "PerformerMixer",
    "RWSEEncoder",
    "Readout",
    "SAGEConv",
    "Seq2SeqTransformer",
    "SpatialBias",
    "TransformerDecoder",
    "TransformerEncoder",
    "pe_transform",
]
