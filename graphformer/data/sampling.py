r"""Mini-batch training on one large graph: DGL samplers → node-induced subgraphs → the
models as they are, loss on the seed nodes only.

Design (why subgraphs, not message-flow blocks). DGL's ``NeighborSampler`` yields
bipartite *blocks*, one per layer, and a model must then be written layer by layer on
blocks (``conv(block, (h_src, h_dst))``). graphformer's models take one ``DGLGraph`` and
add self-loops, normalise degrees, keep edge state across blocks (GatedGCN), attend over
a sample (full attention) and encode positions; rewriting each for blocks would fork every
mixer. Instead a batch is a **node-induced subgraph** around the seeds, and every
registered mixer runs on it unchanged:

- ``sampler='neighbor'``: from the seed nodes, sample ``fanouts[k]`` in-neighbours per node
  per hop (``-1``: all), hop after hop (``dgl.dataloading.ShaDowKHopSampler``, i.e.
  ``NeighborSampler``'s frontiers), then take the subgraph *induced* by every node reached.
  The seeds are the subgraph's first nodes; ``ndata['train_mask']`` marks them, so
  :class:`~graphformer.tasks.GraphTask` computes loss and metrics on them alone.
- ``sampler='cluster'``: Cluster-GCN (Chiang et al., KDD 2019): METIS splits the graph into
  ``num_parts`` parts once (cached beside the dataset); a batch is the subgraph induced by
  ``batch_size`` random parts, and its training nodes are the seeds. This is the sampler for
  attention over a subgraph (full attention, ``transformer``/``gps`` mixers): the attended
  set is a dense cluster instead of a random neighbour sample.

**Exactness.** With ``fanouts`` all ``-1`` and ``len(fanouts) ≥ L + 1`` for an
``L``-layer model, a seed's output on its subgraph *equals* its output on the whole graph
(eval mode): every node within ``L - 1`` hops keeps all its in-edges (its in-neighbours are
within ``L`` hops), so each aggregation that reaches a seed is complete, edge states
included; the extra hop gives the nodes at distance ``L`` their full out-degree, which
GCN's :math:`1/\sqrt{d_j^{out} d_i^{in}}` reads (SAGE, GAT and attention, which read only
in-edges, need ``L`` hops). Mixers of global scope (full attention over the sample) are,
by design, attention over the sampled subgraph, not over the whole graph. BatchNorm uses
the batch's statistics in training, as with any mini-batch.

**Evaluation.** ``evaluation='full'`` (default): validation and test run the model on the whole
graph, once per epoch, in inference mode, and select ``val_mask``/``test_mask``: the result
is by construction the full-batch result. Without autograd the forward keeps one layer's
activations at a time (each layer's output replaces its input), but inside a layer all of
its per-edge tensors at once (messages, attention weights: E × heads × d).
``evaluation='layerwise'``: DGL's layer-wise inference. The task runs
:func:`graphformer.nn.layerwise.layerwise_inference` on the whole graph: each layer for all
nodes before the next, and each layer in chunks of ``eval_batch_size`` destination nodes,
every chunk on the in-subgraph of its destinations (DGL's ``in_subgraph`` + ``to_block``,
compacted), so a layer's peak is its (N, d) input and output plus one chunk's edges.
What needs whole-graph state gets it: GCN reads the whole graph's source out-degrees
(carried by each chunk graph), GatedGCN's edge state is kept for all edges between layers
(E × d), and SGFormer's and Polynormer's linear global attention accumulate their global
sums (:math:`K^\top V`, :math:`\sum_j k_j`, norms) over chunks, then apply them per chunk.
Equal to ``'full'`` (≤ 1e-5, ``tests/nn/test_layerwise.py``) for ``GNN``
(sage/gcn/gat/attention/gcn_degree), ``GraphTransformer`` with those or ``gatedgcn``
local mixers and ``sgformer``/``polynormer`` global ones, ``SGFormer`` and
``Polynormer``. Mixers declare whether and how (their ``layerwise`` trait,
:class:`graphformer.nn.mixers.Mixer`); the others (softmax attention over all nodes,
``performer``, ``exphormer``, ``graphormer``, ``nagphormer``, and ``gine`` until it
declares its trait) are refused at the first validation, named, pointing to ``'full'``
or ``'sampled'``. ``evaluation='sampled'``: chunks of
``eval_batch_size`` seeds, each on its ``eval_hops``-hop subgraph with *all* neighbours
(exact by the argument above, with ``eval_hops ≥ L + 1``): for graphs whose whole-graph
layer does not fit, at the price of recomputing shared neighbourhoods.

**DDP.** Under a process group (Lightning's DDP) the training loader is DGL's
``DataLoader(use_ddp=True)``: the seed ids (permuted once with ``seed``, identically on
every rank) are cut into one contiguous share per rank and each rank shuffles its share
every epoch, so ranks draw disjoint seeds. Sampling uses DGL's generator, seeded with
``seed + rank`` when the loader is made, in one OpenMP thread (DGL's per-thread generators
make multi-threaded draws depend on the schedule); shuffling uses NumPy's global generator
(seeded by ``seed_everything``). Each rank loads the graph from the dataset's disk cache (the data
module is pickled to spawned ranks without its graphs), so the graph is held once per
rank, never sent through a pipe. Evaluation is not split: each rank evaluates the whole
graph (identical metrics, averaged).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from graphformer.data.datamodule import UNSET, GraphDataModule, _Unset
from graphformer.data.field_cache import sample_graph
from graphformer.data.splits import SPLITS
from graphformer.data.validation import check_int
from graphformer.fields import Field

import dgl
import numpy as np
import torch
import torch.distributed as dist
from dgl.dataloading import ClusterGCNSampler, DataLoader, Sampler, ShaDowKHopSampler
from dgl.utils.internal import get_num_threads, set_num_threads

# DGL advises CPU affinity for worker processes on every iteration of its DataLoader; it
# does not apply to the main-process loading used by default here.
warnings.filterwarnings("ignore", message="Dataloader CPU affinity opt")

SAMPLERS = ("neighbor", "cluster")
EVALS = ("full", "sampled", "layerwise")
MASKS = tuple(f"{split}_mask" for split in SPLITS)


def check_fanouts(fanouts: Sequence[int], name: str = "fanouts") -> tuple[int, ...]:
    """``fanouts`` as a tuple of ints, each ≥ 1 or ``-1`` (all neighbours), at least one."""
    if isinstance(fanouts, (str, int)) or not isinstance(fanouts, Sequence) or not fanouts:
        raise ValueError(
            f"{name} must be a non-empty list of neighbours per hop (an int ≥ 1, or -1 for "
            f"all), e.g. [15, 10, 5]; got {fanouts!r}"
        )
    for fanout in fanouts:
        if isinstance(fanout, bool) or not isinstance(fanout, int) or (fanout < 1 and fanout != -1):
            raise ValueError(
                f"{name} entries must be ints ≥ 1, or -1 for all neighbours; got {list(fanouts)}"
            )
    return tuple(int(fanout) for fanout in fanouts)


def _batch(subgraph: dgl.DGLGraph, stage: str, seeds: torch.Tensor | None):
    """``(subgraph, labels)`` with ``<stage>_mask`` marking the seeds (the first
    ``len(seeds)`` nodes) and the other split masks removed; ``seeds=None`` keeps the
    subgraph's own ``<stage>_mask`` (cluster batches)."""
    if seeds is not None:
        mask = torch.zeros(subgraph.num_nodes(), dtype=torch.bool)
        mask[: len(seeds)] = True
        subgraph.ndata[f"{stage}_mask"] = mask
    for key in MASKS:
        if key != f"{stage}_mask" and key in subgraph.ndata:
            del subgraph.ndata[key]
    return subgraph, subgraph.ndata["label"]


@contextlib.contextmanager
def one_sampling_thread():
    """Run DGL's sampling in one OpenMP thread, then restore DGL's and torch's counts.

    DGL's ``sample_neighbors`` draws from one generator per OpenMP thread, and which thread
    serves which seed depends on the schedule: with several threads the same ``dgl.seed``
    draws different neighbours from run to run (measured here: 1 batch in 6 differs).
    Sampling is a small share of a step, so determinism costs little.
    """
    dgl_threads, torch_threads = get_num_threads(), torch.get_num_threads()
    set_num_threads(1)
    try:
        yield
    finally:
        set_num_threads(dgl_threads)
        torch.set_num_threads(torch_threads)


class SeedSubgraphSampler(Sampler):
    """Node-induced ``len(fanouts)``-hop subgraph around the seeds (DGL's
    ``ShaDowKHopSampler``), returned as a graphformer batch ``(subgraph, labels)`` whose
    ``<stage>_mask`` marks the seeds (its first nodes). ``deterministic``: sample in one
    thread (:func:`one_sampling_thread`), so that ``dgl.seed`` fixes the draws."""

    def __init__(
        self, fanouts: Sequence[int], stage: str = "train", deterministic: bool = True
    ) -> None:
        super().__init__()
        self.fanouts, self.stage = check_fanouts(fanouts), stage
        self.deterministic = deterministic
        self.sampler = ShaDowKHopSampler(list(self.fanouts))

    def sample(self, g: dgl.DGLGraph, seeds: torch.Tensor):
        exact = all(fanout == -1 for fanout in self.fanouts)  # nothing random to fix
        with one_sampling_thread() if self.deterministic and not exact else nullcontext():
            _, output_nodes, subgraph = self.sampler.sample(g, seeds)
        return _batch(subgraph, self.stage, output_nodes)


class ClusterSubgraphSampler(Sampler):
    """Cluster-GCN batches: the subgraph induced by the METIS parts given as seeds, whose
    ``<stage>_mask`` nodes are the ones that count (DGL's ``ClusterGCNSampler``)."""

    def __init__(self, g: dgl.DGLGraph, num_parts: int, cache_path: str, stage: str = "train"):
        super().__init__()
        self.stage = stage
        self.sampler = ClusterGCNSampler(g, num_parts, cache_path=cache_path)

    def sample(self, g: dgl.DGLGraph, parts: torch.Tensor):
        return _batch(self.sampler.sample(g, parts), self.stage, None)


def _whole_graph(samples: list) -> tuple[dgl.DGLGraph, torch.Tensor]:
    graph = samples[0]
    return graph, graph.ndata["label"]


def _rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class SampledNodeDataModule(GraphDataModule):
    """Mini-batches of sampled subgraphs of one large graph for node-level tasks (see the
    module docstring for the design, exactness and DDP).

    Parameters
    ----------
    dataset : a single-graph, node-level dataset factory, as for
        :class:`~graphformer.data.GraphDataModule` (e.g. ``ContextualSBMDataset``,
        ``OGBNodeDataset``); the graph carries ``train_mask``/``val_mask``/``test_mask``.
    sampler : ``'neighbor'`` (node-induced k-hop subgraphs, ``fanouts``) or ``'cluster'``
        (Cluster-GCN parts, ``num_parts``).
    fanouts : neighbours sampled per node per hop, seeds' hop first (``-1``: all);
        ``len(fanouts)`` hops. ``[-1] * (L + 1)`` gives exact full-graph outputs.
    batch_size : seed nodes per batch (``'neighbor'``), parts per batch (``'cluster'``).
    num_parts : METIS parts (``'cluster'``); cached at ``<dataset cache stem>.metis<k>.pkl``.
    evaluation : ``'full'`` (whole graph, inference mode), ``'layerwise'`` (whole graph,
        one layer at a time in chunks of ``eval_batch_size`` destination nodes:
        :mod:`graphformer.nn.layerwise`; models with mixers it cannot run exactly are
        refused, named) or ``'sampled'`` (chunks of ``eval_batch_size`` seeds on
        ``eval_hops``-hop subgraphs with all neighbours; default ``len(fanouts) + 1`` hops).
    use_ddp : DGL's ``use_ddp`` for the training loader; ``None``: on when a
        ``torch.distributed`` process group with more than one rank is running.
    drop_last : drop the last incomplete training batch.
    The rest (``num_workers``, ``lap_pe_k``, ``rwse_k``, ``fields``, ``seed``, ``name``,
    ``validate``, the declared facts) as for :class:`GraphDataModule`; fields must be per
    node (pairwise ones, such as ``spd``, are refused).
    """

    def __init__(
        self,
        dataset: Any,
        sampler: str = "neighbor",
        fanouts: Sequence[int] = (10, 10),
        batch_size: int = 1024,
        num_parts: int = 100,
        evaluation: str = "full",
        eval_batch_size: int = 4096,
        eval_hops: int | None = None,
        use_ddp: bool | None = None,
        drop_last: bool = False,
        num_workers: int = 0,
        lap_pe_k: int = 0,
        rwse_k: int = 0,
        distances: bool | None = None,
        fields: Iterable[str | Field] = (),
        pin_memory: bool = False,
        seed: int | None = 0,
        name: str | None = None,
        validate: bool = True,
        level: str | _Unset = UNSET,
        out_dim: int | _Unset | None = UNSET,
        in_dim: int | _Unset | None = UNSET,
        num_categories: int | _Unset | None = UNSET,
        edge_in_dim: int | _Unset | None = UNSET,
        edge_categories: int | _Unset | None = UNSET,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            num_workers=num_workers,
            lap_pe_k=lap_pe_k,
            rwse_k=rwse_k,
            distances=distances,
            fields=fields,
            pin_memory=pin_memory,
            seed=seed,
            name=name,
            validate=validate,
            level=level,
            out_dim=out_dim,
            in_dim=in_dim,
            num_categories=num_categories,
            edge_in_dim=edge_in_dim,
            edge_categories=edge_categories,
        )
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")
        if evaluation not in EVALS:
            raise ValueError(f"evaluation must be one of {EVALS}; got {evaluation!r}")
        self.sampler, self.fanouts = sampler, check_fanouts(list(fanouts))
        self.num_parts = check_int("num_parts", num_parts, 2)
        self.eval_mode = evaluation
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size, 1)
        self.eval_hops = check_int("eval_hops", eval_hops, 1, allow_none=True)
        if use_ddp is not None and not isinstance(use_ddp, bool):
            raise ValueError(f"use_ddp must be true, false or null (auto); got {use_ddp!r}")
        self.use_ddp, self.drop_last = use_ddp, bool(drop_last)
        pairwise = [field.name for field in self.fields if field.pairwise]
        if pairwise:
            raise ValueError(
                f"SampledNodeDataModule attaches per-node fields only; {pairwise} are "
                "pairwise (n × n per sample) and have no meaning on a sampled subgraph of "
                "one large graph: choose a model that does not read them"
            )

    # --- the one graph ----------------------------------------------------------------------
    def split_dataset(self, split: str) -> Any:
        """The dataset, built (and checked, encoded) once and shared by every split."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
        if "train" not in self._splits:
            dataset = super().split_dataset("train")
            if len(dataset) != 1:
                raise ValueError(
                    f"SampledNodeDataModule samples one large graph; the dataset "
                    f"{self._describe(dataset)} holds {len(dataset)} graphs. Use "
                    "graphformer.data.GraphDataModule for datasets of many graphs"
                )
            for other in SPLITS:
                self._splits[other] = dataset
        return self._splits[split]

    @property
    def graph(self) -> dgl.DGLGraph:
        """The whole graph, with its fields and masks (loaded once per process)."""
        if getattr(self, "_graph", None) is None:
            graph = sample_graph(self.split_dataset("train")[0])
            missing = [key for key in (*MASKS, "label") if key not in graph.ndata]
            if missing:
                raise KeyError(
                    f"{self._describe(self.split_dataset('train'))} lacks ndata {missing}; "
                    "a sampled node-level dataset needs labels and train/val/test masks"
                )
            self._graph = graph
        return self._graph

    def seeds(self, split: str) -> torch.Tensor:
        """Ids of the nodes of ``split`` (its mask's nonzeros)."""
        return torch.nonzero(self.graph.ndata[f"{split}_mask"], as_tuple=True)[0]

    def setup(self, stage: str | None = None) -> None:
        graph = self.graph
        for split in SPLITS:
            if not bool(graph.ndata[f"{split}_mask"].any()):
                name = self._describe(self.split_dataset(split))
                raise ValueError(f"the {split} split of {name} has no nodes (its {split}_mask)")

    def _cluster_cache(self) -> str:
        cache = getattr(self.split_dataset("train"), "cache_path", None)
        if cache is None:
            raise ValueError(
                "sampler='cluster' caches its METIS parts beside the dataset, but the "
                "dataset has no cache_path (root=None); give the dataset a root folder"
            )
        path = Path(cache)
        return os.fspath(path.with_name(f"{path.stem}.metis{self.num_parts}.pkl"))

    # --- loaders (GraphDataModule's hooks call _loader(split)) ------------------------------
    def _loader(self, split: str) -> Any:
        return self._train_loader() if split == "train" else self._eval_loader(split)

    def _train_loader(self) -> DataLoader:
        rank, world = _rank()
        use_ddp = world > 1 if self.use_ddp is None else self.use_ddp
        if use_ddp and not (dist.is_available() and dist.is_initialized()):
            raise ValueError(
                "use_ddp=true needs a torch.distributed process group (Lightning's DDP "
                "strategy starts one, e.g. trainer=ddp_sim); none is running: set "
                "data.use_ddp=null (on under DDP only) or false"
            )
        if self.seed is not None:
            dgl.seed(self.seed + rank)
        if self.sampler == "neighbor":
            seeds = self.seeds("train")
            if self.seed is not None:  # the same permutation on every rank: random shares
                order = np.random.default_rng(self.seed).permutation(len(seeds))
                seeds = seeds[torch.from_numpy(order)]
            sampler: Sampler = SeedSubgraphSampler(
                self.fanouts, "train", deterministic=self.seed is not None
            )
        else:
            seeds = torch.arange(self.num_parts)
            sampler = ClusterSubgraphSampler(self.graph, self.num_parts, self._cluster_cache())
        return DataLoader(
            self.graph,
            seeds,
            sampler,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=self.drop_last,
            use_ddp=use_ddp,
            ddp_seed=self.seed or 0,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    @property
    def layerwise_chunk_size(self) -> int | None:
        """With ``evaluation='layerwise'``, ``eval_batch_size``: the destination nodes per
        chunk of :func:`graphformer.nn.layerwise.layerwise_inference`, which the task runs on
        the whole graph in validation and test; else None."""
        return self.eval_batch_size if self.eval_mode == "layerwise" else None

    def _eval_loader(self, split: str) -> Any:
        if self.eval_mode in ("full", "layerwise"):
            return torch.utils.data.DataLoader([self.graph], batch_size=1, collate_fn=_whole_graph)
        hops = self.eval_hops or len(self.fanouts) + 1
        return DataLoader(
            self.graph,
            self.seeds(split),
            SeedSubgraphSampler([-1] * hops, split),
            batch_size=self.eval_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
        )

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_graph"] = None
        return state
