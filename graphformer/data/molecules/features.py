"""SMILES (and optional 3D coordinates) → OGB-style categorical atom and bond codes.

The vocabularies are OGB's (``ogb.utils.features``), so a model trained here reads the same
codes as on ogbg-molhiv (:mod:`graphformer.data.datasets.molhiv`). Each column keeps its own
vocabulary and is then shifted into one shared one (column ``c`` adds the sum of the sizes
of the columns before it), so a :class:`~graphformer.nn.CategoricalEncoder` summing one
embedding per column is OGB's ``AtomEncoder`` / ``BondEncoder``.

Atom columns (size, values; the last entry of a column is its "other" index, taken by any
value outside the list):

===================  ====  ==============================================================
atomic number        119   1..118 (code Z − 1), other
chirality              5   unspecified, tetrahedral CW, tetrahedral CCW, other-chirality, other
degree                12   0..10 heavy-atom neighbours, other
formal charge         12   −5..+5, other
number of Hs          10   0..8 (implicit + explicit hydrogens), other
radical electrons      6   0..4, other
hybridisation          6   SP, SP2, SP3, SP3D, SP3D2, other (S, UNSPECIFIED, ... are other)
aromatic               2   no, yes
in a ring              2   no, yes
===================  ====  ==============================================================

Bond columns: type (5: single, double, triple, aromatic, other), stereo (6: none, Z, E,
cis, trans, any; RDKit has no other value, an unknown one would map to *any*), conjugated
(2: no, yes). Each bond gives two directed edges ``i → j`` and ``j → i`` with the same codes.

Hydrogens are implicit (counted in the "number of Hs" column) unless ``explicit_h=True``,
which adds them as atoms (RDKit ``AddHs``). RDKit is imported only when a function here
runs: ``graphformer.data`` imports without it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphformer.data.progress import progress

import numpy as np
import torch

log = logging.getLogger("graphformer.data")

#: Bumped when the codes change: part of every molecule cache's key.
FEATURISER_VERSION = 1
INSTALL = "pip install 'graphformer[molecules]'"

CHIRALITY = ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER")
HYBRIDISATION = ("SP", "SP2", "SP3", "SP3D", "SP3D2")
BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
BOND_STEREO = ("STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY")

#: Vocabulary size of each atom column (OGB ``get_atom_feature_dims``).
ATOM_DIMS = (119, 5, 12, 12, 10, 6, 6, 2, 2)
ATOM_COLUMNS = (
    "atomic_num",
    "chirality",
    "degree",
    "formal_charge",
    "num_hs",
    "radical_electrons",
    "hybridisation",
    "aromatic",
    "in_ring",
)
#: Vocabulary size of each bond column (OGB ``get_bond_feature_dims``).
BOND_DIMS = (5, 6, 2)
BOND_COLUMNS = ("bond_type", "stereo", "conjugated")
#: The shared vocabularies (``DatasetInfo.num_categories`` / ``edge_categories``).
NUM_ATOM_CATEGORIES = sum(ATOM_DIMS)
NUM_BOND_CATEGORIES = sum(BOND_DIMS)
ATOM_OFFSETS = np.concatenate([[0], np.cumsum(ATOM_DIMS)[:-1]]).astype(np.int64)
BOND_OFFSETS = np.concatenate([[0], np.cumsum(BOND_DIMS)[:-1]]).astype(np.int64)


def require_rdkit() -> Any:
    """``rdkit.Chem``, or an ImportError saying what to install."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError as error:
        raise ImportError(
            f"molecular graphs need RDKit, which is not importable here ({error}). Install "
            f"it with `{INSTALL}` (or `pip install rdkit`)."
        ) from error
    RDLogger.DisableLog("rdApp.*")  # parse failures are counted and reported by us
    return Chem


def _code(value: int, low: int, size: int) -> int:
    """``value - low`` when it lies in the column's list, else the column's "other" index."""
    index = value - low
    return index if 0 <= index < size - 1 else size - 1


_ENUMS: dict[str, dict[Any, int]] = {}


def _enum_codes() -> dict[str, dict[Any, int]]:
    """RDKit enum value → code, for chirality, hybridisation, bond type and stereo (built
    once: dictionary look-ups instead of string conversions per atom)."""
    if not _ENUMS:
        chem = require_rdkit()
        for key, enum, names in (
            ("chirality", chem.ChiralType, CHIRALITY),
            ("hybridisation", chem.HybridizationType, HYBRIDISATION),
            ("bond_type", chem.BondType, BOND_TYPES),
            ("stereo", chem.BondStereo, BOND_STEREO),
        ):
            _ENUMS[key] = {
                enum.values[v]: names.index(str(enum.values[v]))
                for v in enum.values
                if str(enum.values[v]) in names
            }
    return _ENUMS


def atom_codes(atom: Any) -> list[int]:
    """The nine per-column codes of an RDKit atom (before the shared-vocabulary shift)."""
    enums = _enum_codes()
    return [
        _code(atom.GetAtomicNum(), 1, ATOM_DIMS[0]),
        enums["chirality"].get(atom.GetChiralTag(), len(CHIRALITY)),
        _code(atom.GetDegree(), 0, ATOM_DIMS[2]),
        _code(atom.GetFormalCharge(), -5, ATOM_DIMS[3]),
        _code(atom.GetTotalNumHs(), 0, ATOM_DIMS[4]),
        _code(atom.GetNumRadicalElectrons(), 0, ATOM_DIMS[5]),
        enums["hybridisation"].get(atom.GetHybridization(), len(HYBRIDISATION)),
        int(atom.GetIsAromatic()),
        int(atom.IsInRing()),
    ]


def bond_codes(bond: Any) -> list[int]:
    """The three per-column codes of an RDKit bond (before the shared-vocabulary shift)."""
    enums = _enum_codes()
    return [
        enums["bond_type"].get(bond.GetBondType(), len(BOND_TYPES)),
        enums["stereo"].get(bond.GetStereo(), BOND_STEREO.index("STEREOANY")),
        int(bond.GetIsConjugated()),
    ]


class InvalidSmilesError(ValueError):
    """Some SMILES could not be parsed (the message names the first few, with their rows)."""


@dataclass
class Molecules:
    """Featurised molecules, concatenated: molecule ``m`` owns atoms
    ``atom_offsets[m]:atom_offsets[m+1]`` and directed edges likewise.

    Attributes
    ----------
    atom_feat : (ΣN, 9) int64 codes in the shared vocabulary (below ``NUM_ATOM_CATEGORIES``).
    bond_feat : (ΣE, 3) int64 codes in the shared vocabulary (below ``NUM_BOND_CATEGORIES``).
    edges : (ΣE, 2) int64 ``(src, dst)``, local to each molecule; both directions per bond.
    num_atoms, num_edges : (M,) int64.
    rows : (M,) int64, the input row of each molecule kept.
    positions : (ΣN, 3) float32 coordinates (Å) or ``None``.
    invalid : rows that were skipped (``skip_invalid=True``).
    """

    atom_feat: torch.Tensor
    bond_feat: torch.Tensor
    edges: torch.Tensor
    num_atoms: torch.Tensor
    num_edges: torch.Tensor
    rows: torch.Tensor
    positions: torch.Tensor | None = None
    invalid: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.num_atoms)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The arrays as a dict (for :func:`graphformer.data.cache.load_or_compute_tensors`)."""
        result = {
            "atom_feat": self.atom_feat,
            "bond_feat": self.bond_feat,
            "edges": self.edges,
            "num_atoms": self.num_atoms,
            "num_edges": self.num_edges,
            "rows": self.rows,
            "invalid": torch.tensor(self.invalid, dtype=torch.int64),
        }
        if self.positions is not None:
            result["positions"] = self.positions
        return result

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Molecules:
        return cls(
            atom_feat=tensors["atom_feat"],
            bond_feat=tensors["bond_feat"],
            edges=tensors["edges"],
            num_atoms=tensors["num_atoms"],
            num_edges=tensors["num_edges"],
            rows=tensors["rows"],
            positions=tensors.get("positions"),
            invalid=tuple(int(i) for i in tensors.get("invalid", torch.zeros(0)).tolist()),
        )


def describe_invalid(rows: Sequence[int], smiles: Sequence[str], what: str, shown: int = 5) -> str:
    """ "N of M SMILES of <what> could not be parsed: row r 'S', ..." (the first ``shown``)."""
    listed = ", ".join(f"row {row} {smiles[row]!r}" for row in rows[:shown])
    more = f" and {len(rows) - shown} more" if len(rows) > shown else ""
    return (
        f"{len(rows)} of {len(smiles)} SMILES of {what} could not be parsed by RDKit (or have "
        f"no atoms): {listed}{more}"
    )


def featurise(
    smiles: Sequence[str],
    positions: Sequence[np.ndarray | None] | None = None,
    explicit_h: bool = False,
    skip_invalid: bool = False,
    what: str = "the input",
) -> Molecules:
    """Parse and featurise ``smiles``; see the module docstring for the codes.

    Parameters
    ----------
    smiles : one SMILES per molecule.
    positions : per molecule, an (n, 3) array of coordinates (Å) of its atoms in RDKit's
        atom order (heavy atoms only unless ``explicit_h``), or ``None`` to store none. A
        count that differs from the molecule's atoms is refused.
    explicit_h : add hydrogens as atoms (default: implicit, counted per heavy atom).
    skip_invalid : drop unparsable SMILES with a warning naming them; default ``False``
        raises :class:`InvalidSmilesError` naming them (count, first rows and strings).
    what : the data's name, for messages and progress lines.
    """
    chem = require_rdkit()
    if positions is not None and len(positions) != len(smiles):
        raise ValueError(
            f"positions must give one entry per SMILES ({len(smiles)}); got {len(positions)}"
        )
    atoms: list[list[int]] = []
    bonds: list[list[int]] = []
    edges: list[tuple[int, int]] = []
    num_atoms, num_edges, rows, invalid = [], [], [], []
    coords: list[np.ndarray] = []
    for row, text in progress(enumerate(smiles), len(smiles), f"featurising {what}"):
        mol = chem.MolFromSmiles(text) if isinstance(text, str) else None
        if mol is not None and explicit_h:
            mol = chem.AddHs(mol)
        if mol is None or mol.GetNumAtoms() == 0:
            invalid.append(row)
            continue
        n = mol.GetNumAtoms()
        if positions is not None:
            xyz = np.asarray(positions[row], dtype=np.float32)
            if xyz.shape != (n, 3):
                raise ValueError(
                    f"row {row} ({text!r}) has {n} atoms but its coordinates have shape "
                    f"{xyz.shape}; expected ({n}, 3) in RDKit's atom order"
                )
            coords.append(xyz)
        atoms.extend(atom_codes(atom) for atom in mol.GetAtoms())
        for bond in mol.GetBonds():
            i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            codes = bond_codes(bond)
            edges.extend(((i, j), (j, i)))
            bonds.extend((codes, codes))
        num_atoms.append(n)
        num_edges.append(2 * mol.GetNumBonds())
        rows.append(row)
    if invalid:
        message = describe_invalid(invalid, smiles, what)
        if not skip_invalid:
            raise InvalidSmilesError(
                f"{message}. Fix or remove them, or pass skip_invalid=True "
                "(data.dataset.skip_invalid=true) to drop them with a warning."
            )
        log.warning("%s; skipped (skip_invalid=True)", message)
    atom_feat = np.asarray(atoms, dtype=np.int64).reshape(-1, len(ATOM_DIMS)) + ATOM_OFFSETS
    bond_feat = np.asarray(bonds, dtype=np.int64).reshape(-1, len(BOND_DIMS)) + BOND_OFFSETS
    return Molecules(
        atom_feat=torch.from_numpy(atom_feat),
        bond_feat=torch.from_numpy(bond_feat),
        edges=torch.tensor(edges, dtype=torch.int64).reshape(-1, 2),
        num_atoms=torch.tensor(num_atoms, dtype=torch.int64),
        num_edges=torch.tensor(num_edges, dtype=torch.int64),
        rows=torch.tensor(rows, dtype=torch.int64),
        positions=torch.from_numpy(np.concatenate(coords)).float()
        if positions is not None and coords
        else (torch.zeros(0, 3) if positions is not None else None),
        invalid=tuple(invalid),
    )


def to_graphs(
    molecules: Molecules, indices: Sequence[int] | None = None, bond_features: bool = True
) -> list:
    """One DGL graph per molecule (``indices``: which ones, default all), with
    ``ndata['feat']`` (N, 9), ``edata['feat']`` (E, 3) unless ``bond_features=False``
    (for models that read no edge features) and, when stored, ``ndata['pos']`` (N, 3)
    float32 (:data:`graphformer.fields.POSITION`)."""
    from graphformer.fields import EDGE_FEAT, FEAT, POSITION

    import dgl

    atom_start = torch.cat([torch.zeros(1, dtype=torch.int64), molecules.num_atoms.cumsum(0)])
    edge_start = torch.cat([torch.zeros(1, dtype=torch.int64), molecules.num_edges.cumsum(0)])
    indices = range(len(molecules)) if indices is None else indices
    graphs = []
    for m in indices:
        a0, a1 = int(atom_start[m]), int(atom_start[m + 1])
        e0, e1 = int(edge_start[m]), int(edge_start[m + 1])
        edges = molecules.edges[e0:e1]
        graph = dgl.graph((edges[:, 0], edges[:, 1]), num_nodes=a1 - a0)
        graph.ndata[FEAT] = molecules.atom_feat[a0:a1]
        if bond_features:
            graph.edata[EDGE_FEAT] = molecules.bond_feat[e0:e1]
        if molecules.positions is not None:
            graph.ndata[POSITION] = molecules.positions[a0:a1]
        graphs.append(graph)
    return graphs


def smiles_to_graph(smiles: str, positions: np.ndarray | None = None, explicit_h: bool = False):
    """One SMILES → one DGL graph (see :func:`featurise`); an unparsable one raises
    :class:`InvalidSmilesError`."""
    molecules = featurise(
        [smiles], None if positions is None else [positions], explicit_h, what="the SMILES"
    )
    return to_graphs(molecules)[0]
