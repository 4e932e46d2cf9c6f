"""The progress bar: Lightning's ``RichProgressBar``, showing only the metrics named."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """A ``RichProgressBar`` that shows only ``metrics`` (e.g. ``train/loss``, ``val/loss``
    and the optimized metric) and no ``v_num`` (the logger's version, shown as ``0.000``
    for the CSV logger). Lightning's bar shows every metric logged with ``prog_bar=True``;
    on an 80-column terminal that wrapped in the middle of a metric.

    Parameters
    ----------
    metrics : the names to show, in this order; ``None`` shows all (without ``v_num``).
    **kwargs : passed to ``RichProgressBar`` (``refresh_rate``, ``leave``, ``theme`` ...).
    """

    def __init__(self, metrics: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if metrics is not None and not all(isinstance(name, str) for name in metrics):
            raise ValueError(f"metrics must be a list of metric names; got {metrics!r}")
        self.shown = list(metrics) if metrics is not None else None

    def get_metrics(self, trainer, pl_module) -> dict:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        if self.shown is None:
            return items
        return {name: items[name] for name in self.shown if name in items}
