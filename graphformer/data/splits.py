"""The split names every dataset takes, shared by the datasets and the data module."""

from __future__ import annotations

#: The splits of every dataset, in the order the data module builds them.
SPLITS = ("train", "val", "test")


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`, else a ValueError listing them."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    return split
