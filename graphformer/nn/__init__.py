"""graphformer's public blocks. Imports only torch and DGL, so they drop into any model."""

from graphformer.nn.attention import MultiHeadAttention
from graphformer.nn.block import MIXERS, GraphTransformerBlock
from graphformer.nn.conv import GCNConv, SAGEConv
from graphformer.nn.encoders import (
    CategoricalEncoder,
    LapPEEncoder,
    LinearEncoder,
    RWSEEncoder,
    pe_transform,
)
from graphformer.nn.gat import GATConv
from graphformer.nn.gatedgcn import GatedGCN
from graphformer.nn.gine import GINE
from graphformer.nn.gnn import GNN
from graphformer.nn.models import GraphTransformer
from graphformer.nn.readout import Readout

__all__ = [
    "GINE",
    "GNN",
    "MIXERS",
    "CategoricalEncoder",
    "GATConv",
    "GCNConv",
    "GatedGCN",
    "GraphTransformer",
    "GraphTransformerBlock",
    "LapPEEncoder",
    "LinearEncoder",
    "MultiHeadAttention",
    "RWSEEncoder",
    "Readout",
    "SAGEConv",
    "pe_transform",
]
