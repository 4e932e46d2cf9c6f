"""Datasets of one graph (node classification on a citation or a large graph): every split
is the same graph, told apart by its ``train_mask``/``val_mask``/``test_mask``."""

from __future__ import annotations

import dgl


class OneGraph:
    """``len`` 1 and ``[0]`` (or ``[-1]``) the dataset's ``graph``; a subclass sets ``graph``
    and ``name`` (named when another index is asked for)."""

    graph: dgl.DGLGraph
    name: str

    def __getitem__(self, index: int) -> dgl.DGLGraph:
        if index not in (0, -1):
            raise IndexError(f"{self.name} holds one graph; got index {index}")
        return self.graph

    def __len__(self) -> int:
        return 1
