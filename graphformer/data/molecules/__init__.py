"""Molecules as graphs: SMILES (and coordinates) → DGL graphs with OGB's categorical atom
and bond codes (:mod:`~graphformer.data.molecules.features`), the package data they are
read from (:mod:`~graphformer.data.molecules.packages`), the cached per-split dataset base
(:mod:`~graphformer.data.molecules.dataset`), scaffold splits and the penalised logP
(:mod:`~graphformer.data.molecules.chemistry`). RDKit is imported only when used:
``pip install 'graphformer[molecules]'``.
"""

from graphformer.data.molecules.features import (
    ATOM_COLUMNS,
    ATOM_DIMS,
    BOND_COLUMNS,
    BOND_DIMS,
    NUM_ATOM_CATEGORIES,
    NUM_BOND_CATEGORIES,
    InvalidSmilesError,
    Molecules,
    featurise,
    smiles_to_graph,
    to_graphs,
)

__all__ = [
    "ATOM_COLUMNS",
    "ATOM_DIMS",
    "BOND_COLUMNS",
    "BOND_DIMS",
    "NUM_ATOM_CATEGORIES",
    "NUM_BOND_CATEGORIES",
    "InvalidSmilesError",
    "Molecules",
    "featurise",
    "smiles_to_graph",
    "to_graphs",
]
