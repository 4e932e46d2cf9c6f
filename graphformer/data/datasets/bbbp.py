"""Blood–brain-barrier permeability (B3DB classification) from the ``qc-b3db`` package.

B3DB (Meng et al., Scientific Data 2021; ``qc-b3db`` 1.1.1, CC0) labels 7,807 molecules
BBB+ (crosses the barrier) or BBB−, in ``B3DB/B3DB_classification.tsv`` inside the wheel,
read without importing ``B3DB`` (which loads all its tables, ≈ 80 MB, at import).

Labels: 1 = BBB+, 0 = BBB−. **Split**: Bemis–Murcko scaffold split 80 / 10 / 10 %
(:func:`graphformer.data.molecules.chemistry.scaffold_split`, deterministic), as
MoleculeNet's BBBP. **Metric**: ROC-AUC (``val/auroc``, torchmetrics ``AUROC`` over the
two classes' probabilities; with two classes it equals the binary ROC-AUC). Graphs: heavy
atoms with OGB codes.
"""

from __future__ import annotations

from typing import Any

from graphformer.data.info import DatasetInfo
from graphformer.data.molecules.chemistry import scaffold, scaffold_split
from graphformer.data.molecules.dataset import MoleculeDataset, pack
from graphformer.data.molecules.features import (
    NUM_ATOM_CATEGORIES,
    NUM_BOND_CATEGORIES,
    featurise,
    require_rdkit,
)
from graphformer.data.molecules.packages import B3DB

import torch

SOURCE_FILE = "B3DB_classification.tsv"
LABELS = {"BBB-": 0, "BBB+": 1}
FRACTIONS = (0.8, 0.1, 0.1)


def read_b3db() -> Any:
    """B3DB's classification table (pandas): SMILES and the BBB+/BBB- column."""
    import pandas as pd

    return pd.read_csv(B3DB.file(SOURCE_FILE), sep="\t", usecols=["SMILES", "BBB+/BBB-"])


class BBBPDataset(MoleculeDataset):
    """One split of B3DB classification: ``(graph, label)`` with an int64 label in {0, 1}.

    Parameters
    ----------
    split, root, num_graphs, skip_invalid : as :class:`MoleculeDataset`.
    """

    name = "bbbp"
    info = DatasetInfo(
        level="graph",
        task="classification",
        out_dim=2,
        num_categories=NUM_ATOM_CATEGORIES,
        edge_categories=NUM_BOND_CATEGORIES,
    )

    def content_key(self) -> dict[str, Any]:
        return {
            "source": f"qc-b3db-{B3DB.version()}",
            "skip_invalid": self.skip_invalid,
            "split": f"scaffold {FRACTIONS}",
        }

    def compute(self) -> dict[str, torch.Tensor]:
        chem = require_rdkit()
        table = read_b3db()
        unknown = sorted(set(table["BBB+/BBB-"]) - set(LABELS))
        if unknown:
            raise ValueError(f"B3DB labels must be {list(LABELS)}; found also {unknown}")
        smiles = table["SMILES"].tolist()
        molecules = featurise(smiles, skip_invalid=self.skip_invalid, what="B3DB")
        kept = molecules.rows.tolist()
        scaffolds = [scaffold(chem.MolFromSmiles(smiles[row])) for row in kept]
        labels = torch.tensor([LABELS[table["BBB+/BBB-"][row]] for row in kept])
        split = torch.tensor(scaffold_split(scaffolds, FRACTIONS), dtype=torch.int8)
        return pack(molecules, targets=labels.long(), split=split)

    def split_of(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        index = ("train", "val", "test").index(self.split)
        return torch.nonzero(tensors["split"] == index).flatten()

    def labels(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        return tensors["targets"]
