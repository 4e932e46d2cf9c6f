"""Seeding every random number generator a run uses."""

from __future__ import annotations


def seed_everything(seed: int | None) -> None:
    """Seed Python, NumPy, torch (and dataloader workers) through Lightning, and DGL."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an int in [0, 2**31) (DGL's limit) or null; got {seed!r}")
    import graphformer  # noqa: F401  (before DGL)

    import dgl
    import lightning as L

    L.seed_everything(seed, workers=True)
    dgl.seed(seed)
