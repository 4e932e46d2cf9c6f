"""Greedy test sequence accuracy of a digits_reverse checkpoint, on all test sequences and
on those that never occur in the training split.

    python experiments/digits_reverse/unseen.py RUN/checkpoints/epoch_XXX.ckpt
"""

from __future__ import annotations

import sys

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli import build, resume
from graphformer.data.datasets.sequences import PAD

import dgl
import torch


def main(checkpoint: str) -> None:
    saved = resume.read_checkpoint(checkpoint)
    cfg = resume.stored_config(saved, checkpoint)
    model = build.model(cfg)
    data = build.datamodule(cfg, model)
    task = build.task(cfg, data, model)
    task.load_state_dict(saved["state_dict"])
    task.eval()
    train, test = data.split_dataset("train"), data.split_dataset("test")
    seen = {tuple(train[i][0].ndata["feat"].tolist()) for i in range(len(train))}
    graphs, targets = zip(*(test[i] for i in range(len(test))), strict=True)
    batch, targets = dgl.batch(list(graphs)), torch.stack(targets)
    tokens = task(batch, targets.shape[1])
    right = ((tokens == targets) | (targets == PAD)).all(dim=1)
    unseen = torch.tensor([tuple(g.ndata["feat"].tolist()) not in seen for g in graphs])
    print(
        f"test seq_acc {right.float().mean():.4f} on {len(right)} sequences; "
        f"{right[unseen].float().mean():.4f} on the {int(unseen.sum())} not in train"
    )


if __name__ == "__main__":
    main(sys.argv[1])
