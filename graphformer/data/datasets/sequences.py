"""Digit sequences to transform (reverse or sort): a seeded sequence-to-sequence dataset.

A sample is ``(graph, target)``. The graph is the source sequence as a path: one node per
digit, ``ndata['feat']`` the digit (0..9), an edge i → i+1 for the order (the models put
their own attention graphs on the nodes). The target is the transformed digits, then
``EOS``, right-padded with ``PAD`` to ``max_len + 1`` so targets stack into a batch.

Sequence ``i`` of a split has a length uniform in ``[min_len, max_len]`` and uniform
digits, drawn from a NumPy generator seeded by ``(seed, rule, split, i)``; the sources are
cached like the SBM datasets (:class:`~graphformer.data.datasets.generated.GeneratedDataset`); the
target is a function of the source and is computed on access.
"""

from __future__ import annotations

import os

from graphformer.data.datasets.generated import GeneratedDataset
from graphformer.data.info import DatasetInfo
from graphformer.data.splits import SPLITS, check_split
from graphformer.data.validation import check_int

import dgl
import numpy as np
import torch

DIGITS = 10
#: Target vocabulary: the digits, then the padding, start and end tokens.
PAD, BOS, EOS = DIGITS, DIGITS + 1, DIGITS + 2
VOCAB = DIGITS + 3
RULES = {
    "reverse": lambda digits: digits.flip(0),
    "sort": lambda digits: digits.sort().values,
}
#: Graphs per split when ``num_graphs`` is not given.
DEFAULT_SIZES = {"train": 4000, "val": 500, "test": 500}
GENERATOR_VERSION = 1


def sequence_graph(digits: torch.Tensor) -> dgl.DGLGraph:
    """A sequence as a path graph: node i holds ``digits[i]``, edges i → i+1."""
    nodes = torch.arange(len(digits))
    graph = dgl.graph((nodes[:-1], nodes[1:]), num_nodes=len(digits))
    graph.ndata["feat"] = digits.long()
    return graph


class DigitSequenceDataset(GeneratedDataset):
    """One split of digit sequences and their ``rule`` transform (``reverse`` or ``sort``).

    Its ``info``: ``level='graph'`` (one target sequence per sample), ``num_categories=10``
    source digits, ``out_dim=13`` target tokens (digits, ``PAD``, ``BOS``, ``EOS``).

    Parameters
    ----------
    rule : ``reverse`` or ``sort``.
    split : ``train``, ``val`` or ``test``.
    num_graphs : sequences in the split (default 4,000 / 500 / 500).
    seed : seeds the generator (each split and sequence draws its own stream).
    min_len, max_len : length range of the source sequences (1 ≤ min_len ≤ max_len;
        one-digit sequences are path graphs without edges, which validation warns about).
    root : cache folder; ``None`` uses DGL's default.
    """

    info = DatasetInfo(level="graph", task="classification", out_dim=VOCAB, num_categories=DIGITS)

    def __init__(
        self,
        rule: str = "reverse",
        split: str = "train",
        num_graphs: int | None = None,
        seed: int = 0,
        min_len: int = 2,
        max_len: int = 8,
        root: str | os.PathLike | None = None,
        verbose: bool = False,
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; choose one of {sorted(RULES)}")
        check_split(split)
        check_int("min_len", min_len, 1)
        check_int("max_len", max_len, min_len)
        check_int("seed", seed, 0)
        self.rule, self.split, self.seed = rule, split, seed
        self.num_graphs = check_int("num_graphs", num_graphs, 1, allow_none=True)
        if self.num_graphs is None:
            self.num_graphs = DEFAULT_SIZES[split]
        self.min_len, self.max_len = min_len, max_len
        super().__init__(f"digits_{rule}_len{min_len}-{max_len}", root, verbose)

    def generator_version(self) -> int:
        return GENERATOR_VERSION

    def generate(self) -> list[dgl.DGLGraph]:
        stream = sorted(RULES).index(self.rule)
        graphs = []
        for index in range(self.num_graphs):
            rng = np.random.default_rng([self.seed, stream, SPLITS.index(self.split), index])
            length = rng.integers(self.min_len, self.max_len + 1)
            graphs.append(sequence_graph(torch.from_numpy(rng.integers(0, DIGITS, length))))
        return graphs

    def target(self, digits: torch.Tensor) -> torch.Tensor:
        """``rule(digits)``, ``EOS``, then ``PAD`` up to ``max_len + 1`` tokens."""
        target = torch.full((self.max_len + 1,), PAD, dtype=torch.long)
        target[: len(digits)] = RULES[self.rule](digits)
        target[len(digits)] = EOS
        return target

    def __getitem__(self, index: int) -> tuple[dgl.DGLGraph, torch.Tensor]:
        graph = self.graphs[index]
        return graph, self.target(graph.ndata["feat"])
