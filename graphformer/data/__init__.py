"""Datasets, cached positional encodings, validation, and the LightningDataModule that
batches them as ``(graph, labels)``.

Generated here: CLUSTER/PATTERN (:class:`SBMDataset`), skeleton poses
(:class:`SkeletonDataset`) and digit sequences to reverse or sort
(:class:`DigitSequenceDataset`). Read from DGL's (or OGB's) cache layout, failing fast when
absent: Planetoid citation graphs, ZINC-12k, DGL's official PATTERN/CLUSTER, ogbg-molhiv,
ogbn-arxiv/products (:class:`OGBNodeDataset`) and the preprocessed Human3.6M files
(:class:`H36MDataset`). One large graph: contextual SBM graphs (:class:`ContextualSBMDataset`)
trained in sampled mini-batches (:class:`SampledNodeDataModule`). Molecules from PyPI packages
(featurised with RDKit, :mod:`graphformer.data.molecules`; the ``molecules`` extra): QM9
(:class:`QM9Dataset`), penalised logP on MOSES/ZINC molecules (:class:`ZincLogPDataset`)
and B3DB blood–brain-barrier permeability (:class:`BBBPDataset`).

Importing ``graphformer.data`` imports ``graphformer`` first, which installs the DGL
compatibility hook before DGL loads.
"""

from graphformer.data.cache import CacheError, CacheWarning
from graphformer.data.datamodule import GraphDataModule, collate, seed_worker
from graphformer.data.datasets.bbbp import BBBPDataset
from graphformer.data.datasets.citation import CitationDataset
from graphformer.data.datasets.csbm import ContextualSBMDataset, contextual_sbm
from graphformer.data.datasets.h36m import H36MDataset, load_h36m
from graphformer.data.datasets.molhiv import MolHIVDataset
from graphformer.data.datasets.ogbn import OGBNodeDataset
from graphformer.data.datasets.qm9 import QM9Dataset
from graphformer.data.datasets.sbm import (
    BENCHMARK_SIZES,
    SBMDataset,
    cluster_graph,
    generate,
    pattern_graph,
    random_pattern,
)
from graphformer.data.datasets.sbm_official import OfficialSBMDataset
from graphformer.data.datasets.sequences import DigitSequenceDataset
from graphformer.data.datasets.skeleton import SkeletonDataset, generate_poses
from graphformer.data.datasets.zinc import ZINC12kDataset
from graphformer.data.datasets.zinc_logp import ZincLogPDataset
from graphformer.data.features.encodings import lap_pe_field, pe_transform, rwse_field
from graphformer.data.field_cache import WithFields, field_path, load_or_compute_field
from graphformer.data.info import DatasetInfo
from graphformer.data.sampling import SampledNodeDataModule
from graphformer.data.splits import SPLITS, check_split
from graphformer.data.validation import DataError, DataWarning

__all__ = [
    "BENCHMARK_SIZES",
    "SPLITS",
    "BBBPDataset",
    "CacheError",
    "CacheWarning",
    "CitationDataset",
    "ContextualSBMDataset",
    "DataError",
    "DataWarning",
    "DatasetInfo",
    "DigitSequenceDataset",
    "GraphDataModule",
    "H36MDataset",
    "MolHIVDataset",
    "OGBNodeDataset",
    "OfficialSBMDataset",
    "QM9Dataset",
    "SBMDataset",
    "SampledNodeDataModule",
    "SkeletonDataset",
    "WithFields",
    "ZINC12kDataset",
    "ZincLogPDataset",
    "check_split",
    "cluster_graph",
    "collate",
    "contextual_sbm",
    "field_path",
    "generate",
    "generate_poses",
    "lap_pe_field",
    "load_h36m",
    "load_or_compute_field",
    "pattern_graph",
    "pe_transform",
    "random_pattern",
    "rwse_field",
    "seed_worker",
]
