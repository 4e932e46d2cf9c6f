"""The model summary printed before training: Lightning's rich table, with FLOPs counted."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichModelSummary

#: Columns Lightning adds when the model has an ``example_input_array``: a DGL graph's size
#: prints as ``?``, so they would only widen the table.
SIZE_COLUMNS = ("In sizes", "Out sizes")


class ModelSummary(RichModelSummary):
    """Lightning's :class:`~lightning.pytorch.callbacks.RichModelSummary`, with FLOPs from one
    forward pass of the first training batch (:meth:`graphformer.tasks.GraphTask.setup` gives
    it as the example input) and a line that says what they count: torch's FLOP counter sees
    torch ops (linear layers, dense attention), not DGL's sparse kernels."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], *args: Any, **kwargs: Any) -> None:
        columns = [column for column in summary_data if column[0] not in SIZE_COLUMNS]
        RichModelSummary.summarize(columns, *args, **kwargs)
        from rich import get_console

        get_console().print(
            "FLOPs: one forward pass of the first training batch, torch ops only (DGL's "
            "sparse message-passing kernels are not counted)"
        )
