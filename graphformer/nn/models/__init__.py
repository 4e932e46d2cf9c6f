"""Whole models built from blocks: GraphTransformer, GNN, the encoder–decoder."""
