"""Datasets (generated CLUSTER/PATTERN, Planetoid citation graphs), cached positional
encodings, and the LightningDataModule that batches them as ``(graph, labels)``.

Importing ``graphformer.data`` imports ``graphformer`` first, which installs the DGL
compatibility hook before DGL loads.
"""

from graphformer.data.cache import CacheError, CacheWarning
from graphformer.data.citation import CitationDataset
from graphformer.data.datamodule import GraphDataModule, collate, seed_worker
from graphformer.data.encodings import (
    WithEncodings,
    compute_encodings,
    encodings_path,
    load_or_compute_encodings,
)
from graphformer.data.sbm import (
    BENCHMARK_SIZES,
    SBMDataset,
    cluster_graph,
    generate,
    pattern_graph,
    random_pattern,
)

__all__ = [
    "BENCHMARK_SIZES",
    "CacheError",
    "CacheWarning",
    "CitationDataset",
    "GraphDataModule",
    "SBMDataset",
    "WithEncodings",
    "cluster_graph",
    "collate",
    "compute_encodings",
    "encodings_path",
    "generate",
    "load_or_compute_encodings",
    "pattern_graph",
    "random_pattern",
    "seed_worker",
]
