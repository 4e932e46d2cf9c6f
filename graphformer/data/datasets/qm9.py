"""QM9 from the ``qm9pack`` package (130,831 molecules with DFT properties and 3D geometry).

Source: ``qm9pack`` 1.0.3 (MIT; ``pip install 'graphformer[molecules]'``), three CSVs
inside the wheel with the GDB-9 SMILES, every atom's coordinates (Å, B3LYP/6-31G(2df,p))
and the properties of Ramakrishnan et al. (2014) in atomic units. Read without importing
``qm9pack`` (:mod:`graphformer.data.molecules.packages`).

**Targets** (:data:`TARGETS`, the 12 of MoleculeNet / PyG's ``QM9``), chosen by name with
``targets=`` (one name or a list; default ``gap``). Energies are converted from hartree
to eV (× :data:`HARTREE_TO_EV` = 27.211386246, CODATA 2018); the others keep their
units:

==========  =================================  ==========  ===========================
name        property                           unit        source column (unit)
==========  =================================  ==========  ===========================
``mu``      dipole moment                      D           Dipole_debye
``alpha``   isotropic polarisability           bohr³       Polarizability_bohr3
``homo``    HOMO energy                        eV          HOMO_au (hartree)
``lumo``    LUMO energy                        eV          LUMO_au (hartree)
``gap``     HOMO–LUMO gap                      eV          HOMO_LUMO_gap_au (hartree)
``r2``      electronic spatial extent ⟨R²⟩     bohr²       R2_bohr2
``zpve``    zero-point vibrational energy      eV          ZPVE_au (hartree)
``u0``      internal energy at 0 K             eV          InternalEnergy_0K_au
``u298``    internal energy at 298.15 K        eV          InternalEnergy_298K_au
``h298``    enthalpy at 298.15 K               eV          Enthalphy_298K_au
``g298``    free energy at 298.15 K            eV          GibbsFreeEnergy_298K_au
``cv``      heat capacity at 298.15 K          cal/mol/K   Heatcapacity_Cv_cal_mol_K
==========  =================================  ==========  ===========================

``u0`` ... ``g298`` are total energies (not atomisation energies, which subtract the
atoms' reference energies): their spread is large, so standardise them
(``task.standardize=true``, which all QM9 recipes set).

**Split**: a random permutation of the 130,831 molecules (``seed``, default 0) cut into
110,000 train / 10,000 val / the rest (10,831) test, the usual protocol (e.g. DimeNet,
SchNet's 110k). **Normalisation**: none in the data; the labels are in the units above.
``task.standardize=true`` (:class:`graphformer.tasks.Regression`) standardises them with
the train split's mean and std inside the loss and de-standardises predictions, so MAE is
reported in these units.

**Graphs**: heavy atoms (hydrogens implicit) with OGB codes, and
``ndata['pos']`` (:data:`graphformer.fields.POSITION`): each heavy atom's coordinates (Å,
float32), matched to RDKit's atom order (:func:`heavy_positions`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from graphformer.data.info import DatasetInfo
from graphformer.data.molecules.dataset import MoleculeDataset, pack, random_split
from graphformer.data.molecules.features import (
    NUM_ATOM_CATEGORIES,
    NUM_BOND_CATEGORIES,
    featurise,
    require_rdkit,
)
from graphformer.data.molecules.packages import QM9PACK

import numpy as np
import torch

HARTREE_TO_EV = 27.211386246
PARTS = ("data/qm9_part1.csv", "data/qm9_part2.csv", "data/qm9_part3.csv")
#: name → (source column, factor to the reported unit, unit)
TARGETS: dict[str, tuple[str, float, str]] = {
    "mu": ("Dipole_debye", 1.0, "D"),
    "alpha": ("Polarizability_bohr3", 1.0, "bohr³"),
    "homo": ("HOMO_au", HARTREE_TO_EV, "eV"),
    "lumo": ("LUMO_au", HARTREE_TO_EV, "eV"),
    "gap": ("HOMO_LUMO_gap_au", HARTREE_TO_EV, "eV"),
    "r2": ("R2_bohr2", 1.0, "bohr²"),
    "zpve": ("ZPVE_au", HARTREE_TO_EV, "eV"),
    "u0": ("InternalEnergy_0K_au", HARTREE_TO_EV, "eV"),
    "u298": ("InternalEnergy_298K_au", HARTREE_TO_EV, "eV"),
    "h298": ("Enthalphy_298K_au", HARTREE_TO_EV, "eV"),
    "g298": ("GibbsFreeEnergy_298K_au", HARTREE_TO_EV, "eV"),
    "cv": ("Heatcapacity_Cv_cal_mol_K", 1.0, "cal/mol/K"),
}
SIZES = (110_000, 10_000, None)


def check_targets(targets: str | Sequence[str]) -> tuple[str, ...]:
    """The target names as a tuple, each one of :data:`TARGETS` (else a ValueError)."""
    names = (targets,) if isinstance(targets, str) else tuple(targets)
    unknown = [name for name in names if name not in TARGETS]
    if not names or unknown:
        raise ValueError(
            f"QM9 targets must be one or more of {list(TARGETS)}; got {targets!r}"
            + (f" ({unknown} unknown)" if unknown else "")
        )
    if len(set(names)) != len(names):
        raise ValueError(f"QM9 targets must not repeat; got {list(names)}")
    return names


def parse_atoms(elements: str, xyz: str) -> tuple[list[str], np.ndarray]:
    """Every atom's symbol and (n, 3) float64 coordinates of one row of qm9pack's CSV
    (``Elements`` "['C','H',...]", ``XYZ_Ang`` "[[x,y,z],...]", numbers such as "0." or
    Mathematica's "1.2*^-6" included)."""
    symbols = [s.strip().strip("'\"") for s in elements.strip("[]").split(",")]
    numbers = xyz.replace("[", "").replace("]", "").replace("*^", "e").split(",")
    coords = np.asarray([n for n in numbers if n.strip()], dtype=np.float64).reshape(-1, 3)
    if len(coords) != len(symbols):
        raise ValueError(f"{len(symbols)} elements but {len(coords)} coordinates")
    return symbols, coords


def heavy_positions(mol: Any, symbols: list[str], coords: np.ndarray) -> np.ndarray | None:
    """(n, 3) coordinates of the heavy atoms of ``mol`` (parsed from the SMILES), in its
    atom order; ``None`` when they cannot be matched.

    QM9 lists the heavy atoms in SMILES order for all but 4 of its molecules; for those,
    the bonds are perceived from the geometry (RDKit ``DetermineConnectivity``) and the
    SMILES' heavy-atom graph (bond orders ignored) is matched onto it.
    """
    heavy = [i for i, symbol in enumerate(symbols) if symbol != "H"]
    ours = [atom.GetSymbol() for atom in mol.GetAtoms()]
    if ours == [symbols[i] for i in heavy]:
        return coords[heavy].astype(np.float32)
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    lines = (
        f"{s} {x:.10f} {y:.10f} {z:.10f}" for s, (x, y, z) in zip(symbols, coords, strict=True)
    )
    raw = Chem.MolFromXYZBlock(f"{len(symbols)}\n\n" + "\n".join(lines))
    if raw is None:
        return None
    rdDetermineBonds.DetermineConnectivity(raw)
    target = Chem.RWMol(raw)
    for index in sorted(set(range(len(symbols))) - set(heavy), reverse=True):
        target.RemoveAtom(index)
    target = target.GetMol()
    target.UpdatePropertyCache(strict=False)
    pattern = Chem.RWMol(mol)
    for bond in pattern.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
    for atom in pattern.GetAtoms():
        atom.SetIsAromatic(False)
    pattern = pattern.GetMol()
    pattern.UpdatePropertyCache(strict=False)
    match = target.GetSubstructMatch(pattern)
    if len(match) != mol.GetNumAtoms():
        return None
    return coords[[heavy[i] for i in match]].astype(np.float32)


def read_qm9(limit: int | None = None) -> Any:
    """qm9pack's table (pandas): SMILES, Elements, XYZ_Ang and the 12 target columns, the
    three parts in order (``limit``: only the first rows of part 1, for tests)."""
    import pandas as pd

    columns = ["SMILES", "Elements", "XYZ_Ang", *(column for column, _, _ in TARGETS.values())]
    parts = PARTS[:1] if limit is not None else PARTS
    frames = [pd.read_csv(QM9PACK.file(part), usecols=columns, nrows=limit) for part in parts]
    return pd.concat(frames, ignore_index=True)


class QM9Dataset(MoleculeDataset):
    """One split of QM9 (see the module docstring): ``(graph, target)`` with a float32
    target of shape ``(len(targets),)`` in the units of :data:`TARGETS`.

    Parameters
    ----------
    split, root, num_graphs, skip_invalid : as :class:`MoleculeDataset`.
    targets : a name of :data:`TARGETS` or a list of them (default ``'gap'``, eV).
    seed : of the random 110k / 10k / rest split.
    limit : read only the first ``limit`` molecules (tests, quick looks); the split then
        takes 80 / 10 / 10 % of them. ``None`` (default): all 130,831.
    bond_features : give the graphs ``edata['feat']`` (default); ``False`` for models
        whose mixers read no edge features (``qm9_graphormer``).
    """

    name = "qm9"

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike | None = None,
        targets: str | Sequence[str] = "gap",
        seed: int = 0,
        num_graphs: int | None = None,
        skip_invalid: bool = False,
        limit: int | None = None,
        bond_features: bool = True,
    ) -> None:
        self.target_names = check_targets(targets)
        self.seed, self.limit, self.bond_features = int(seed), limit, bool(bond_features)
        self.info = self.describe(targets=targets, bond_features=bond_features)
        super().__init__(split, root, num_graphs, skip_invalid)

    @classmethod
    def describe(
        cls, targets: str | Sequence[str] = "gap", bond_features: bool = True, **_: Any
    ) -> DatasetInfo:
        """Graph regression of ``len(targets)`` values on OGB atom (and bond) codes."""
        return DatasetInfo(
            level="graph",
            task="regression",
            out_dim=len(check_targets(targets)),
            num_categories=NUM_ATOM_CATEGORIES,
            edge_categories=NUM_BOND_CATEGORIES if bond_features else None,
        )

    @property
    def units(self) -> tuple[str, ...]:
        """The unit of each target."""
        return tuple(TARGETS[name][2] for name in self.target_names)

    def content_key(self) -> dict[str, Any]:
        return {
            "source": f"qm9pack-{QM9PACK.version()}",
            "skip_invalid": self.skip_invalid,
            "limit": self.limit,
        }

    def compute(self) -> dict[str, torch.Tensor]:
        chem = require_rdkit()
        table = read_qm9(self.limit)
        smiles = table["SMILES"].tolist()
        positions: list[np.ndarray | None] = []
        for row, (text, elements, xyz) in enumerate(
            zip(smiles, table["Elements"], table["XYZ_Ang"], strict=True)
        ):
            mol = chem.MolFromSmiles(text)
            if mol is None:  # counted and reported by featurise
                positions.append(None)
                continue
            symbols, coords = parse_atoms(elements, xyz)
            matched = heavy_positions(mol, symbols, coords)
            if matched is None:
                raise ValueError(
                    f"QM9 row {row} ({text!r}): its heavy atoms cannot be matched to the "
                    f"coordinates of {symbols}"
                )
            positions.append(matched)
        molecules = featurise(smiles, positions, skip_invalid=self.skip_invalid, what="QM9")
        values = np.stack(
            [table[column].to_numpy(np.float64) * factor for column, factor, _ in TARGETS.values()],
            axis=1,
        )
        targets = torch.from_numpy(values[molecules.rows.numpy()]).float()
        return pack(molecules, targets=targets)

    def split_of(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        count = len(tensors["num_atoms"])
        sizes = SIZES if self.limit is None else (int(0.8 * count), int(0.1 * count), None)
        if self.limit is None and count < sum(s for s in SIZES if s is not None):
            sizes = (int(0.8 * count), int(0.1 * count), None)
        return random_split(count, sizes, self.seed)[self.split]

    def labels(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        columns = [list(TARGETS).index(name) for name in self.target_names]
        return tensors["targets"][:, columns]
