"""GraphDataModule: datasets → cached node fields (positional encodings, shortest-path
distances, ...) → batches of ``(graph, labels)``.

A batch is ``(graph, labels)``: ``graph`` is the ``dgl.batch`` of the samples, carrying
their ``ndata['feat']`` (and ``edata['feat']``, positional encodings, ``<split>_mask``
when present); ``labels`` is ``graph.ndata['label']`` for node-level datasets (samples
are graphs) or the stacked per-graph labels for graph-level ones (samples are
``(graph, label)`` pairs, as DGL's graph-classification datasets return them).

Why DGL's ``GraphDataLoader`` with our own collate function: under DDP Lightning
re-instantiates the loader with a ``DistributedSampler`` (it rebuilds DataLoader
subclasses from their saved constructor arguments). ``GraphDataLoader`` survives this, as
it takes ``sampler`` and the other DataLoader arguments through ``**kwargs`` (checked in
the tests); we leave its ``use_ddp`` off so that Lightning alone owns sharding. Its default
collator returns the batched graph without the node labels, so :func:`collate` replaces it.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterable
from typing import Any

from graphformer.data.features.encodings import lap_pe_field, rwse_field
from graphformer.data.field_cache import (
    FieldBatch,
    WithFields,
    check_provided,
    field_path,
    load_or_compute_field,
    pad_pairwise,
    sample_graph,
)
from graphformer.data.info import DatasetInfo, dataset_info
from graphformer.data.splits import SPLITS
from graphformer.data.validation import check_dataset, check_int
from graphformer.fields import LEVELS, SPD, Field, get_field

import dgl
import lightning as L
import numpy as np
import torch
from dgl.dataloading import GraphDataLoader

#: The DatasetInfo facts a data config states so that model and task configs can
#: interpolate them (``${data.out_dim}``): conf/train.yaml reads them from the dataset class
#: (``${graphformer.data_info:KEY}``), once for every data config. A stated value that
#: differs from the dataset's own (a hand override) is refused when the dataset is built.
DECLARED = ("level", "out_dim", "in_dim", "num_categories", "edge_in_dim", "edge_categories")


class _Unset:
    """Default of the stated facts: not stated, so not checked."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()
STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}


def collate(samples: list[Any]) -> tuple[dgl.DGLGraph, torch.Tensor]:
    """``(dgl.batch(graphs), labels)``: node labels for graph samples, stacked labels for
    ``(graph, label)`` samples. The samples of a :class:`~graphformer.data.field_cache.
    WithFields` dataset as its loader fetches them (a ``FieldBatch``) are batched from the
    wrapped dataset's graphs with the fields attached per batch, not per sample (same
    result, less time)."""
    if isinstance(samples, FieldBatch):
        sources = samples.sources()
        graph, labels = collate(sources)
        return samples.attach(graph, sources), labels
    if isinstance(samples[0], dgl.DGLGraph):
        graph = dgl.batch(pad_pairwise(samples))
        if "label" not in graph.ndata:
            raise KeyError(
                "node-level samples need ndata['label']; the graphs have ndata keys "
                f"{sorted(graph.ndata)}. Graph-level datasets must yield (graph, label) pairs."
            )
        return graph, graph.ndata["label"]
    graphs = [sample_graph(sample) for sample in samples]
    labels = torch.stack([torch.as_tensor(sample[1]) for sample in samples])
    return dgl.batch(pad_pairwise(graphs)), labels


def seed_worker(worker_id: int) -> None:
    """Seed Python, NumPy and DGL in a loader worker from its torch seed (which torch
    derives from the loader's generator and the worker id)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    dgl.seed(seed % 2**31)  # DGL takes a C int


class GraphDataModule(L.LightningDataModule):
    """Train/val/test loaders over a dataset factory, with cached node fields (positional
    encodings, distances, ...).

    Parameters
    ----------
    dataset : ``split -> dataset`` (called as ``dataset(split=...)``), e.g.
        ``functools.partial(SBMDataset, name='CLUSTER', root=...)`` or a Hydra node with
        ``_partial_: true``. Single-graph datasets (:class:`CitationDataset`) return the
        same graph for every split; the task then selects nodes by ``<split>_mask``.
        Datasets declare their facts as ``info`` (:class:`~graphformer.data.DatasetInfo`;
        see README "Add a dataset"), and ``cache_path`` to have their encodings and fields
        cached next to them.
    batch_size : graphs per batch, at most the size of every split.
    num_workers : loader worker processes (persistent when > 0, seeded by
        :func:`seed_worker`).
    lap_pe_k, rwse_k : widths of ``ndata['lap_pe']`` / ``ndata['rwse']`` to attach besides
        what ``fields`` asks for: shorthand for the fields ``lap_pe_k<k>`` / ``rwse_k<k>``
        (:mod:`graphformer.data.features.encodings`); 0: none. A graphformer model asks for
        its encoders' widths itself (``model.needs``), so these serve models of your own
        that read the encodings; the two ways asking for different widths of one encoding
        are refused.
    fields : names of registered node fields (:func:`graphformer.fields.register_field`)
        to attach to every graph, e.g. ``("spd",)``: each is computed once per split with
        its :class:`~graphformer.fields.Field`'s ``compute`` and cached at
        ``<dataset cache stem>.<name>.bin`` (:mod:`graphformer.data.field_cache`);
        pairwise ones are padded to the batch's widest sample. ``graphformer-train`` passes
        the model's ``needs`` here when it builds the data (``graphformer.cli.build``).
        A field the dataset itself writes (``Field.provided_by``, e.g. ``pos``, 3D
        coordinates) is not computed: every sample is checked to carry it, and a sample
        without it is refused naming the field and the data that provides it.
    distances : shorthand for the ``spd`` field (shortest-path distances, for Graphormer's
        spatial bias): ``True`` adds it to ``fields``; ``None`` (the default) leaves
        ``fields`` as given; ``False`` refuses ``fields`` that contain it, so a data
        config saying ``distances: false`` is not silently overruled by the model.
    pin_memory : passed to the loaders.
    seed : seeds the loaders' shuffling and worker seeds; ``None`` leaves them to torch's
        global generator (as seeded by Lightning's ``seed_everything``). The cached
        encodings never depend on it (their random sign flip happens in training, in
        :class:`graphformer.nn.LapPEEncoder`), so runs of every seed share one cache.
    train_graphs, val_graphs, test_graphs : passed to the factory as ``num_graphs`` for
        that split when given (multi-graph datasets only).
    name : display name for messages.
    validate : check every sample once when its split is built
        (:func:`graphformer.data.validation.check_dataset`): errors for graphs without
        nodes, missing features or labels, NaN/inf features and labels out of range;
        warnings for graphs without edges and duplicate edges.
    level, out_dim, in_dim, num_categories, edge_in_dim, edge_categories : the facts of
        the dataset's ``info`` as the config states them, so that configs can interpolate
        them (``${data.out_dim}``); conf/train.yaml fills them from the dataset class with
        ``${graphformer.data_info:KEY}``. Each one given (``None`` included: "this dataset
        has none") is checked against the dataset's ``info`` when the dataset is built;
        leave them out in Python (the properties of the same names read ``info``).
    """

    def __init__(
        self,
        dataset: Callable[..., Any],
        batch_size: int = 128,
        num_workers: int = 0,
        lap_pe_k: int = 0,
        rwse_k: int = 0,
        distances: bool | None = None,
        fields: Iterable[str | Field] = (),
        pin_memory: bool = False,
        seed: int | None = 0,
        train_graphs: int | None = None,
        val_graphs: int | None = None,
        test_graphs: int | None = None,
        name: str | None = None,
        validate: bool = True,
        level: str | _Unset = UNSET,
        out_dim: int | _Unset | None = UNSET,
        in_dim: int | _Unset | None = UNSET,
        num_categories: int | _Unset | None = UNSET,
        edge_in_dim: int | _Unset | None = UNSET,
        edge_categories: int | _Unset | None = UNSET,
    ) -> None:
        super().__init__()
        if not callable(dataset):
            raise TypeError(
                f"dataset must be a callable split -> dataset (e.g. functools.partial of "
                f"SBMDataset, or a Hydra node with `_partial_: true`); got "
                f"{type(dataset).__name__}"
            )
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0)
        check_int("lap_pe_k", lap_pe_k, 0)
        check_int("rwse_k", rwse_k, 0)
        if distances is not None and not isinstance(distances, bool):
            raise TypeError(
                f"distances must be true, false or null (null: as the model needs); got "
                f"{distances!r}"
            )
        check_int("seed", seed, 0, allow_none=True)
        counts = {"train": train_graphs, "val": val_graphs, "test": test_graphs}
        for split, count in counts.items():
            check_int(f"{split}_graphs", count, 1, allow_none=True)
        if any(count is not None for count in counts.values()) and not _accepts(
            dataset, "num_graphs"
        ):
            raise ValueError(
                f"train_graphs/val_graphs/test_graphs were given ({counts}) but the dataset "
                f"factory {dataset!r} takes no num_graphs argument (single-graph datasets "
                "have a fixed size); remove them from the data config"
            )
        if level is not UNSET and level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
        self.dataset_factory = dataset
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.seed = seed
        self.distances = distances
        encodings = [make(k) for make, k in ((lap_pe_field, lap_pe_k), (rwse_field, rwse_k)) if k]
        self.fields = _resolve_fields([*encodings, *_as_tuple(fields)], distances)
        self.num_graphs = counts
        self.name, self.validate = name, validate
        self.declared = {
            "level": level,
            "out_dim": out_dim,
            "in_dim": in_dim,
            "num_categories": num_categories,
            "edge_in_dim": edge_in_dim,
            "edge_categories": edge_categories,
        }
        self._splits: dict[str, Any] = {}

    # --- datasets -------------------------------------------------------------------------
    def split_dataset(self, split: str) -> Any:
        """The dataset of ``split`` with its encodings attached (built once, then reused)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
        if split not in self._splits:
            kwargs = {"split": split}
            if self.num_graphs[split] is not None:
                kwargs["num_graphs"] = self.num_graphs[split]
            dataset = self.dataset_factory(**kwargs)
            if len(dataset) == 0:
                raise ValueError(
                    f"the {split} split of {self._describe(dataset)} is empty; "
                    f"check the dataset's files or {split}_graphs"
                )
            self._check_declared(dataset)
            if self.validate:
                check_dataset(dataset, split, self._describe(dataset))
            cache = getattr(dataset, "cache_path", None)
            if self.fields:
                graphs = [sample_graph(dataset[i]) for i in range(len(dataset))]
            for field in self.fields:  # written by the dataset: only checked
                if field.provided:
                    check_provided(field, graphs, f"{self._describe(dataset)} ({split})")
            computed = [field for field in self.fields if not field.provided]
            if computed:
                values = {
                    field.name: load_or_compute_field(
                        field, graphs, None if cache is None else field_path(cache, field)
                    )
                    for field in computed
                }
                dataset = WithFields(dataset, values)
            self._splits[split] = dataset
        return self._splits[split]

    def _describe(self, dataset: Any) -> str:
        return self.name or str(getattr(dataset, "name", type(dataset).__name__))

    def _dataset_value(self, dataset: Any, key: str) -> tuple[bool, Any]:
        """(whether the dataset states ``key``, its value): from its :class:`DatasetInfo`;
        for a dataset without one, the level from its samples and other facts from
        attributes of the same name (``out_dim`` falling back to ``num_classes``)."""
        info = dataset_info(dataset)
        if info is not None:
            return True, getattr(info, key)
        if key == "level":
            level = getattr(dataset, "level", None)
            if level is None:
                level = "node" if isinstance(dataset[0], dgl.DGLGraph) else "graph"
            return True, level
        if key == "out_dim" and not hasattr(dataset, "out_dim"):
            key = "num_classes"
        return hasattr(dataset, key), getattr(dataset, key, None)

    def _check_declared(self, dataset: Any) -> None:
        for key, declared in self.declared.items():
            known, actual = self._dataset_value(dataset, key)
            if declared is not UNSET and known and declared != actual:
                raise ValueError(
                    f"the data config declares {key}={declared!r} but the dataset "
                    f"{self._describe(dataset)} has {key}={actual!r}; the configs read it from "
                    f"the dataset's DatasetInfo (${{graphformer.data_info:{key}}}): remove the "
                    f"override, or set {key}: {actual!r}"
                )

    def _metadata(self, key: str) -> Any:
        if self.declared[key] is not UNSET:
            return self.declared[key]
        return self._dataset_value(self.split_dataset("train"), key)[1]

    @property
    def info(self) -> DatasetInfo | None:
        """The train split's :class:`~graphformer.data.DatasetInfo` (``None`` if it has none)."""
        return dataset_info(self.split_dataset("train"))

    @property
    def level(self) -> str:
        """``'node'`` or ``'graph'``: what the labels describe."""
        return self._metadata("level")

    @property
    def out_dim(self) -> int | None:
        return self._metadata("out_dim")

    @property
    def num_classes(self) -> int | None:
        """``out_dim`` for classification datasets, ``None`` for regression ones."""
        info = self.info
        if info is not None:
            return info.num_classes
        return getattr(self.split_dataset("train"), "num_classes", None)

    @property
    def in_dim(self) -> int | None:
        """Width of continuous node features (``None`` for integer codes)."""
        return self._metadata("in_dim")

    @property
    def num_categories(self) -> int | None:
        """Vocabulary of integer node features (``None`` for continuous ones)."""
        return self._metadata("num_categories")

    @property
    def edge_in_dim(self) -> int | None:
        return self._metadata("edge_in_dim")

    @property
    def edge_categories(self) -> int | None:
        return self._metadata("edge_categories")

    # --- Lightning hooks ------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Generate or load every split and its encodings once (rank 0), filling the caches."""
        for split in SPLITS:
            self.split_dataset(split)

    def setup(self, stage: str | None = None) -> None:
        for split in STAGE_SPLITS.get(stage, SPLITS) if stage else SPLITS:
            self._check_batch_size(split, self.split_dataset(split))

    def _check_batch_size(self, split: str, dataset: Any) -> None:
        if self.batch_size > len(dataset):
            raise ValueError(
                f"batch_size={self.batch_size} is larger than the {split} split of "
                f"{self._describe(dataset)} ({len(dataset)} graph(s)); set batch_size ≤ "
                f"{len(dataset)}" + ("" if len(dataset) == 1 else f" or raise {split}_graphs")
            )

    def _loader(self, split: str) -> GraphDataLoader:
        dataset = self.split_dataset(split)
        self._check_batch_size(split, dataset)
        generator = None
        if self.seed is not None:
            generator = torch.Generator().manual_seed(self.seed + SPLITS.index(split))
        return GraphDataLoader(
            dataset,
            collate_fn=collate,
            batch_size=self.batch_size,
            shuffle=split == "train",
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            worker_init_fn=seed_worker,
            generator=generator,
        )

    def example_batch(self) -> tuple[dgl.DGLGraph, torch.Tensor]:
        """The first ``batch_size`` training samples, collated as the loader collates them:
        the input the model summary runs once to count FLOPs (:meth:`GraphTask.setup`)."""
        dataset = self.split_dataset("train")
        return collate([dataset[i] for i in range(min(self.batch_size, len(dataset)))])

    def train_dataloader(self) -> GraphDataLoader:
        return self._loader("train")

    def val_dataloader(self) -> GraphDataLoader:
        return self._loader("val")

    def test_dataloader(self) -> GraphDataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> GraphDataLoader:
        return self._loader("test")

    def __getstate__(self) -> dict[str, Any]:
        # Spawned processes (ddp_spawn, spawn workers) reload the splits from the disk
        # caches instead of receiving every graph through a pipe.
        state = self.__dict__.copy()
        state["_splits"] = {}
        return state


def _as_tuple(fields: Iterable[str | Field] | str | Field) -> tuple[str | Field, ...]:
    return (fields,) if isinstance(fields, (str, Field)) else tuple(fields)


def _resolve_fields(fields: Iterable[str | Field], distances: bool | None) -> tuple[Field, ...]:
    """The registered :class:`Field` of each entry of ``fields`` (once each, in order), with
    ``spd`` added by ``distances=True`` and refused with ``distances=False``; two fields
    stored under one ``ndata`` key (LapPE of two widths) are refused."""
    resolved = [get_field(field) for field in _as_tuple(fields)]
    if distances is True and SPD not in [field.name for field in resolved]:
        resolved.append(get_field(SPD))
    if distances is False and SPD in [field.name for field in resolved]:
        raise ValueError(
            f"the model reads shortest-path distances (ndata[{SPD!r}], e.g. model.block.mixer="
            "graphormer) but data.distances=false; set data.distances=true (or null: on when "
            "the model needs them)"
        )
    unique = {field.name: field for field in resolved}
    keys: dict[str, Field] = {}
    for field in unique.values():
        other = keys.setdefault(field.key, field)
        if other is not field:
            raise ValueError(
                f"fields {other.name!r} and {field.name!r} are both stored as ndata"
                f"[{field.key!r}]; ask for one. The data's own encodings (data.lap_pe_k, "
                "data.rwse_k) must equal the model's (model.lap_pe_k, model.rwse_k) or be 0: "
                "the model's encoders ask the data for the width they read"
            )
    return tuple(unique.values())


def _accepts(factory: Callable[..., Any], argument: str) -> bool:
    """Whether ``factory`` takes ``argument`` (or ``**kwargs``); True when unknowable."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == argument or p.kind is p.VAR_KEYWORD for p in parameters)
