"""RDKit computations the molecule datasets need: penalised logP (ZINC's "constrained
solubility") and Bemis–Murcko scaffold splits.

**Penalised logP** (Gómez-Bombarelli et al. 2018; the ZINC target of Benchmarking GNNs,
from JT-VAE's preprocessing):

    y = logP − SA − cycle,   cycle = max(0, size of the largest ring − 6)

with logP Crippen's (RDKit ``Descriptors.MolLogP``), SA the synthetic-accessibility score
of Ertl & Schuffenhauer (2009) from RDKit's ``Contrib/SA_Score/sascorer.py`` (shipped in
the rdkit wheel with its fragment table ``fpscores.pkl.gz``), rings RDKit's SSSR. No
term is standardised (JT-VAE's optimisation code standardises each; the benchmark's
targets are the raw sum).

**Scaffold split** (MoleculeNet / OGB): molecules are grouped by their Bemis–Murcko
scaffold SMILES (``MurckoScaffold.MurckoScaffoldSmiles``, without chirality); groups are
sorted by size (largest first, ties by first occurrence); each group goes to train if
train stays within ``fractions[0]`` of the molecules, else to val if train + val stay
within ``fractions[0] + fractions[1]``, else to test (DeepChem's ``ScaffoldSplitter``, as
OGB made its splits). Deterministic, no seed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any

from graphformer.data.molecules.features import require_rdkit

_SASCORER: Any = None


def sascorer() -> Any:
    """RDKit's Contrib ``sascorer`` module (loaded once from the rdkit installation)."""
    global _SASCORER
    if _SASCORER is None:
        require_rdkit()
        from rdkit.Chem import RDConfig

        path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
        if not os.path.isfile(path):
            raise ImportError(
                f"RDKit's SA_Score contribution is missing ({path}); reinstall rdkit from "
                "PyPI (`pip install 'graphformer[molecules]'`), whose wheel ships it"
            )
        spec = importlib.util.spec_from_file_location("graphformer_sascorer", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.readFragmentScores()
        _SASCORER = module
    return _SASCORER


def penalised_logp(mol: Any) -> float:
    """logP − SA − max(0, largest ring − 6) of an RDKit molecule (see the module docstring)."""
    from rdkit.Chem import Descriptors

    rings = mol.GetRingInfo().AtomRings()
    largest = max((len(ring) for ring in rings), default=0)
    cycle = max(largest - 6, 0)
    return Descriptors.MolLogP(mol) - sascorer().calculateScore(mol) - cycle


def scaffold(mol: Any) -> str:
    """The Bemis–Murcko scaffold SMILES of an RDKit molecule ('' for acyclic ones)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def scaffold_split(
    scaffolds: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> list[int]:
    """Split of each molecule (0 train, 1 val, 2 test) by scaffold groups (module docstring)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"fractions must be three non-negative numbers summing to 1; got {fractions}"
        )
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(scaffolds):
        groups.setdefault(key, []).append(index)
    ordered = sorted(groups.values(), key=lambda members: (-len(members), members[0]))
    count = len(scaffolds)
    train_cut, val_cut = fractions[0] * count, (fractions[0] + fractions[1]) * count
    result, sizes = [2] * count, [0, 0, 0]
    for members in ordered:
        if sizes[0] + len(members) <= train_cut:
            split = 0
        elif sizes[0] + sizes[1] + len(members) <= val_cut:
            split = 1
        else:
            split = 2
        for index in members:
            result[index] = split
        sizes[split] += len(members)
    return result
