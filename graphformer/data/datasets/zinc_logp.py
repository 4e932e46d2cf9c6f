"""ZINC-style constrained solubility (penalised logP) on MOSES molecules from ``molsets``.

The ZINC benchmark (Benchmarking GNNs' ZINC-12k, GraphGPS's ZINC) regresses penalised
logP (logP − SA − max(0, largest ring − 6), see
:mod:`graphformer.data.molecules.chemistry`) on ZINC molecules. The exact ZINC-12k subset
is in no PyPI package; MOSES (Polykovskiy et al. 2020; the ``molsets`` 0.3.1 wheel, MIT)
ships 1,584,663 training SMILES from ZINC Clean Leads in
``moses/dataset/data/train.csv.gz``. This dataset samples molecules from that file with a
fixed seed and computes the same target with RDKit: the same task, units and scale, not the
same molecules, so not comparable digit for digit with published tables.

``molsets`` declares ``pomegranate==0.12.0``, which has no wheel for Python 3.11: install it
with ``pip install --no-deps molsets``. Only its data file is read, located without
importing ``moses`` (:mod:`graphformer.data.molecules.packages`).

**Sizes** (``subset``): ``'12k'`` = 10,000 / 1,000 / 1,000 (the ZINC-12k protocol), or
``'250k'`` = 220,011 / 24,445 / 5,000 (ZINC-full's sizes). ``seed`` (default 0) draws the
molecules (``torch.randperm`` over the file's rows: the first 12,000 or 249,456 of the
permutation, in that order train, val, test). **Normalisation**: none (GraphGPS trains
ZINC on raw targets); MAE in logP units. Graphs: heavy atoms with OGB codes.
"""

from __future__ import annotations

import os
from typing import Any

from graphformer.data.info import DatasetInfo
from graphformer.data.molecules.chemistry import penalised_logp
from graphformer.data.molecules.dataset import MoleculeDataset, pack
from graphformer.data.molecules.features import (
    NUM_ATOM_CATEGORIES,
    NUM_BOND_CATEGORIES,
    featurise,
    require_rdkit,
)
from graphformer.data.molecules.packages import MOLSETS
from graphformer.data.progress import progress

import torch

SOURCE_FILE = "dataset/data/train.csv.gz"
#: Split sizes (train, val, test) of each subset.
SUBSETS: dict[str, tuple[int, int, int]] = {
    "12k": (10_000, 1_000, 1_000),
    "250k": (220_011, 24_445, 5_000),
}


def read_moses_smiles(limit: int | None = None) -> list[str]:
    """The 1,584,663 SMILES of MOSES' training file, in file order (``limit``: the first)."""
    import pandas as pd

    path = MOLSETS.file(SOURCE_FILE)
    return pd.read_csv(path, compression="gzip", nrows=limit)["SMILES"].tolist()


class ZincLogPDataset(MoleculeDataset):
    """One split of penalised logP on sampled MOSES molecules: ``(graph, target)`` with a
    float32 target of shape (1,).

    Parameters
    ----------
    split, root, num_graphs, skip_invalid : as :class:`MoleculeDataset`.
    subset : ``'12k'`` (default) or ``'250k'`` (:data:`SUBSETS`).
    seed : draws the molecules from MOSES' training file.
    """

    name = "zinc_logp"
    info = DatasetInfo(
        level="graph",
        task="regression",
        out_dim=1,
        num_categories=NUM_ATOM_CATEGORIES,
        edge_categories=NUM_BOND_CATEGORIES,
    )

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike | None = None,
        subset: str = "12k",
        seed: int = 0,
        num_graphs: int | None = None,
        skip_invalid: bool = False,
    ) -> None:
        if subset not in SUBSETS:
            raise ValueError(f"zinc_logp subset must be one of {list(SUBSETS)}; got {subset!r}")
        self.subset, self.seed = subset, int(seed)
        super().__init__(split, root, num_graphs, skip_invalid)

    def content_key(self) -> dict[str, Any]:
        return {
            "source": f"molsets-{MOLSETS.version()}",
            "subset": self.subset,
            "seed": self.seed,
            "skip_invalid": self.skip_invalid,
            "target": "logP-SA-cycle v1",
        }

    def compute(self) -> dict[str, torch.Tensor]:
        chem = require_rdkit()
        smiles = read_moses_smiles()
        sizes = SUBSETS[self.subset]
        order = torch.randperm(len(smiles), generator=torch.Generator().manual_seed(self.seed))
        chosen = order[: sum(sizes)].tolist()
        picked = [smiles[i] for i in chosen]
        molecules = featurise(picked, skip_invalid=self.skip_invalid, what="zinc_logp")
        kept = molecules.rows.tolist()
        targets = [
            penalised_logp(chem.MolFromSmiles(picked[row]))
            for row in progress(kept, len(kept), "penalised logP of zinc_logp")
        ]
        split = torch.zeros(len(picked), dtype=torch.int8)
        split[sizes[0] : sizes[0] + sizes[1]] = 1
        split[sizes[0] + sizes[1] :] = 2
        return pack(
            molecules,
            targets=torch.tensor(targets, dtype=torch.float32).reshape(-1, 1),
            split=split[molecules.rows],
            source_rows=torch.tensor(chosen, dtype=torch.int64)[molecules.rows],
        )

    def split_of(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        index = ("train", "val", "test").index(self.split)
        return torch.nonzero(tensors["split"] == index).flatten()

    def labels(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        return tensors["targets"]
