"""graphformer's public blocks. Imports only torch and DGL, so they drop into any model."""

from graphformer.nn.attention import MultiHeadAttention
from graphformer.nn.block import MIXERS, GraphTransformerBlock
from graphformer.nn.conv import GCNConv, SAGEConv
from graphformer.nn.decoder import DecoderBlock, TransformerDecoder
from graphformer.nn.encoders import (
    CategoricalEncoder,
    LapPEEncoder,
    LinearEncoder,
    RWSEEncoder,
    pe_transform,
)
from graphformer.nn.exphormer import ExphormerAttention
from graphformer.nn.gat import GATConv
from graphformer.nn.gatedgcn import GatedGCN
from graphformer.nn.gine import GINE
from graphformer.nn.gnn import GNN
from graphformer.nn.graphormer import CentralityEncoding, GraphormerAttention, SpatialBias
from graphformer.nn.models import GraphTransformer
from graphformer.nn.performer import PerformerAttention, PerformerMixer
from graphformer.nn.readout import Readout
from graphformer.nn.seq2seq import Seq2SeqTransformer, TransformerEncoder

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
