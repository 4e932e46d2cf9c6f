"""GraphTask: the Lightning loop shared by every task (step, loss, metrics, optimizers)."""

from __future__ import annotations

from collections.abc import Callable

from graphformer.graphs import to_device
from graphformer.nn.layerwise import layerwise_inference

import dgl
import lightning as L
import torch
from torch import nn
from torchmetrics import MetricCollection

STAGES = ("train", "val", "test")
CONFIG_KEY = "graphformer_config"
#: Where a checkpoint keeps the validation metrics of the epoch it was saved at, so that the
#: best checkpoint's numbers can be reported with it (``graphformer.cli.results``).
VAL_METRICS_KEY = "graphformer_val_metrics"
Batch = tuple[dgl.DGLGraph, torch.Tensor]


def diagnose_inputs(graph: dgl.DGLGraph, labels: torch.Tensor) -> str:
    """For a non-finite loss: which inputs hold NaN/inf, or, when all are finite, their
    largest magnitude and what to try instead."""
    tensors = {"ndata['feat']": graph.ndata.get("feat"), "edata['feat']": graph.edata.get("feat")}
    tensors["the labels"] = labels
    tensors = {k: v for k, v in tensors.items() if v is not None and v.is_floating_point()}
    bad = [name for name, value in tensors.items() if not torch.isfinite(value).all()]
    if bad:
        return f"{' and '.join(bad)} hold NaN or inf: clean them"
    peak = max((float(v.abs().max()) for v in tensors.values() if v.numel()), default=0.0)
    return (
        f"The batch's inputs are finite (largest magnitude {peak:.3g}), so the model "
        "diverged or overflowed: lower the learning rate or rescale large inputs"
    )


class GraphTask(L.LightningModule):
    """Trains any ``graphformer.nn``-style model, ``model(graph, x, edge_feat)``.

    Batches are ``(graph, labels)``: ``x = graph.ndata['feat']``, ``edge_feat =
    graph.edata['feat']`` when present. On node-level tasks over one big graph, the nodes
    of stage ``s`` are ``graph.ndata['<s>_mask']``; without masks every node counts.
    Subclasses set :attr:`level` and supply :meth:`loss`, :meth:`metrics` and
    :meth:`metric_inputs`.

    Parameters
    ----------
    model : the network.
    optimizer : ``params -> Optimizer`` (a Hydra ``_partial_``).
    scheduler : ``optimizer -> LRScheduler`` (a Hydra ``_partial_``), optional.
    scheduler_monitor : metric a ``ReduceLROnPlateau`` scheduler watches.
    on_nonfinite : ``'raise'`` stops with the step and batch named when the loss is NaN/inf;
        ``'skip'`` drops that batch (no optimizer step) and counts it in
        ``train/skipped_batches``.
    """

    level: str = "node"
    #: The resolved run configuration; stored in every checkpoint under ``CONFIG_KEY`` so
    #: ``graphformer-eval`` can rebuild the exact data, model and task.
    run_config: dict | None = None

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., object] | None = None,
        scheduler_monitor: str = "val/loss",
        on_nonfinite: str = "raise",
    ) -> None:
        super().__init__()
        if on_nonfinite not in ("raise", "skip"):
            raise ValueError(f"on_nonfinite must be 'raise' or 'skip'; got {on_nonfinite!r}")
        # Plain values only, so checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters(ignore=["model", "optimizer", "scheduler"], logger=False)
        self.model = model
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_monitor, self.on_nonfinite = scheduler_monitor, on_nonfinite
        self.stage_metrics = nn.ModuleDict(
            {f"{stage}_metrics": self.metrics().clone(prefix=f"{stage}/") for stage in STAGES}
        )
        self.skipped_batches = 0

    # --- what subclasses define -------------------------------------------------------
    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self) -> MetricCollection:
        raise NotImplementedError

    def metric_inputs(self, out: torch.Tensor, target: torch.Tensor):
        """What the metrics see: (probabilities, classes) or (values, values)."""
        return out, target

    def outputs(self, graph: dgl.DGLGraph, labels: torch.Tensor, stage: str) -> torch.Tensor:
        """The model's outputs on a batch; a task may read the labels (teacher forcing).
        In validation and test, when the data module asks for layer-wise inference (its
        ``layerwise_chunk_size``, e.g. ``SampledNodeDataModule(evaluation='layerwise')``),
        :func:`graphformer.nn.layerwise.layerwise_inference` in chunks of that size."""
        chunk_size = self.layerwise_chunk_size() if stage != "train" else None
        if chunk_size is not None:
            x = graph.ndata["feat"].to(self.device)
            edge_feat = graph.edata.get("feat")
            edge_feat = edge_feat.to(self.device) if edge_feat is not None else None
            return layerwise_inference(self.model, graph, x, edge_feat, chunk_size)
        return self(graph)

    def layerwise_chunk_size(self) -> int | None:
        """The trainer's data module's ``layerwise_chunk_size`` (None: not layer-wise)."""
        data = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        return getattr(data, "layerwise_chunk_size", None)

    def data_name(self) -> str:
        """`` in data <name>`` for messages about labels, when the trainer's data module has a
        name (``GraphDataModule(name=...)``, the data config's ``name``), else ``''``."""
        data = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        name = getattr(data, "name", None)
        return f" in data {name}" if name else ""

    # --- the loop ---------------------------------------------------------------------
    def forward(self, graph: dgl.DGLGraph) -> torch.Tensor:
        x = graph.ndata["feat"].to(self.device)
        edge_feat = graph.edata.get("feat")
        edge_feat = edge_feat.to(self.device) if edge_feat is not None else None
        return self.model(graph, x, edge_feat)

    def setup(self, stage: str) -> None:
        """Before fitting, give Lightning's model summary one real batch (the data module's
        ``example_batch()``, when it has one) as ``example_input_array``, so its FLOPs column
        counts the forward pass instead of showing 0. torch's FLOP counter sees torch ops
        (linear layers, dense attention); DGL's sparse kernels (``update_all``,
        ``apply_edges``) run outside it and are not counted."""
        if stage != "fit" or self.example_input_array is not None:
            return
        data = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        example = getattr(data, "example_batch", None)
        if callable(example):
            self.example_input_array = self.example_input(*example())

    def example_input(self, graph: dgl.DGLGraph, labels: torch.Tensor) -> tuple:
        """The arguments of :meth:`forward` for a batch (the summary's example input)."""
        return (graph,)

    def transfer_batch_to_device(self, batch: tuple, device: torch.device, dataloader_idx: int):
        """Batches ``(graph, labels)``, and example inputs ``(graph, ...)``, onto ``device``."""
        return tuple(
            to_device(item, device)
            if isinstance(item, dgl.DGLGraph)
            else item.to(device)
            if isinstance(item, torch.Tensor)
            else item
            for item in batch
        )

    def select(self, graph: dgl.DGLGraph, out: torch.Tensor, labels: torch.Tensor, stage: str):
        """Outputs and labels of the nodes (or graphs) that count for ``stage``."""
        mask = graph.ndata.get(f"{stage}_mask") if self.level == "node" else None
        if mask is None:
            return out, labels
        mask = mask.to(out.device).bool()
        return out[mask], labels[mask]

    def step(self, batch: Batch, stage: str, batch_idx: int) -> torch.Tensor | None:
        graph, labels = batch
        out, target = self.select(graph, self.outputs(graph, labels, stage), labels, stage)
        loss = self.loss(out, target)
        if not torch.isfinite(loss):
            if stage == "train" and self.on_nonfinite == "skip":
                self.skipped_batches += 1
                self.log("train/skipped_batches", float(self.skipped_batches), reduce_fx="max")
                return None
            raise FloatingPointError(
                f"non-finite {stage} loss {loss.item()} at global step {self.global_step}, "
                f"epoch {self.current_epoch}, batch {batch_idx} ({graph.batch_size} graphs, "
                f"{graph.num_nodes()} nodes). {diagnose_inputs(graph, target)}, or set "
                "task.on_nonfinite=skip to drop such batches."
            )
        size = len(target)
        self.log(
            f"{stage}/loss",
            loss,
            on_step=False,
            on_epoch=True,
            batch_size=size,
            sync_dist=stage != "train",
            prog_bar=stage != "test",
        )
        metrics = self.stage_metrics[f"{stage}_metrics"]
        metrics.update(*self.metric_inputs(out.detach(), target))
        self.log_dict(
            metrics, on_step=False, on_epoch=True, batch_size=size, prog_bar=stage == "val"
        )
        return loss

    def training_step(self, batch: Batch, batch_idx: int):
        return self.step(batch, "train", batch_idx)

    def validation_step(self, batch: Batch, batch_idx: int):
        self.step(batch, "val", batch_idx)

    def test_step(self, batch: Batch, batch_idx: int):
        self.step(batch, "test", batch_idx)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        config = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = self.scheduler_monitor
        return {"optimizer": optimizer, "lr_scheduler": config}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store the run config (:data:`CONFIG_KEY`) and this epoch's validation metrics
        (:data:`VAL_METRICS_KEY`, plain floats) in the checkpoint."""
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        if self._trainer is not None:
            checkpoint[VAL_METRICS_KEY] = {
                key: float(value)
                for key, value in self.trainer.callback_metrics.items()
                if key.startswith("val/")
            }

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
