"""graphformer's GPS model against PyG's ``GPSConv`` stack, side by side on the same data.

Both models are trained on the same generated CLUSTER or PATTERN graphs
(``graphformer.data.SBMDataset``), with the same inputs (an embedding of the integer node
codes plus a linear map of the Laplacian PE, with per-graph random sign flips in
training), the same settings (read from a graphformer recipe, ``cluster_gps`` by default),
the same batches in the same order, the same seed and the same number of epochs. Each
model draws its random numbers (initialisation, dropout, sign flips) from its own saved
torch RNG state, so a model's numbers do not depend on whether the other one runs.

Both use a plain training loop (no Lightning), AdamW at a constant learning rate, the
Benchmarking-GNNs class-weighted cross-entropy when the recipe asks for it (per batch,
class c weighs (V - n_c) / V, as ``graphformer.tasks.Classification``), and
``graphformer.tasks.BenchmarkAccuracy`` (per-batch class-averaged recall) for train and
validation. The batches of an epoch, and PyG's ``edge_index`` / ``batch`` vectors, are
built before the epoch's timed loop; the timed loop is forward, loss, backward and
optimiser step. The two models take turns batch by batch (the order alternating), so load
from other jobs on a shared machine falls on both alike; wall and CPU seconds are
recorded per model and epoch.

The peer (``--models pyg``) needs torch_geometric: ``pip install torch_geometric`` (or
``pip install -e '.[experiments]'``).

Usage::

    python experiments/gps_vs_pyg/compare.py --dataset cluster --graphs 500 --epochs 5 \\
        --models pyg,graphformer --local gcn --tag after
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.bench import environment
from graphformer.data import SBMDataset
from graphformer.data.features.encodings import lap_pe_field
from graphformer.data.field_cache import WithFields, field_path, load_or_compute_field
from graphformer.nn import BlockConfig, GraphTransformer
from graphformer.tasks.metrics import BenchmarkAccuracy

import dgl
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODELS = ("pyg", "graphformer")
LABELS = {"pyg": "PyG GPSConv", "graphformer": "graphformer GPS"}


def require_pyg():
    """PyG's modules for the peer, or a SystemExit that says how to install it."""
    try:
        from torch_geometric.nn import GCNConv, GPSConv
    except ImportError as error:
        raise SystemExit(
            "the peer model needs torch_geometric, which is not installed here "
            f"({error}). Install it with `pip install torch_geometric` (or "
            "`pip install -e '.[experiments]'`), or run only graphformer: --models graphformer"
        ) from error
    return GCNConv, GPSConv


# --- settings ---------------------------------------------------------------------------
def recipe_settings(recipe: str, local: str | None, extra: tuple[str, ...] = ()) -> dict:
    """The model, data and optimiser settings of graphformer's recipe ``recipe``, with
    Hydra overrides ``extra`` (e.g. ``model.num_layers=4``)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    overrides = [f"experiment={recipe}"] + ([f"model.block.local_mixer={local}"] if local else [])
    overrides += list(extra)
    with initialize_config_module("graphformer.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    optimizer = OmegaConf.to_container(cfg.task.optimizer, resolve=True)
    return {
        "recipe": recipe,
        "overrides": overrides,
        "model": model,
        "batch_size": int(cfg.data.batch_size),
        "lap_pe_k": int(cfg.data.lap_pe_k),
        "optimizer": optimizer["_target_"].rsplit(".", 1)[-1],
        "lr": float(optimizer["lr"]),
        "weight_decay": float(optimizer.get("weight_decay", 0.0)),
        "class_weighting": bool(cfg.task.get("class_weighting", False)),
        "scheduler": "constant learning rate (the recipe's scheduler is not used)",
        "recipe_scheduler": _scheduler_settings(cfg),
        "recipe_gradient_clip_val": cfg.trainer.get("gradient_clip_val"),
        "gradient_clip_val": None,
    }


def _scheduler_settings(cfg) -> dict | None:
    """The recipe's ``warmup_cosine`` settings (warm-up epochs, start factor), if it has it."""
    scheduler = cfg.task.get("scheduler")
    if scheduler is None or not str(scheduler.get("_target_", "")).endswith("warmup_cosine"):
        return None
    return {
        "warmup_epochs": int(scheduler.warmup_epochs),
        "start_factor": float(scheduler.get("start_factor", 0.01)),
    }


def use_recipe_schedule(settings: dict, epochs: int) -> None:
    """Switch ``settings`` to the recipe's schedule: its warm-up + cosine decay, stepped per
    epoch and ending at ``epochs`` (as ``trainer.max_epochs`` would), and its gradient-norm
    clipping (Lightning's ``gradient_clip_val``: ``clip_grad_norm_`` before each step)."""
    scheduler = settings["recipe_scheduler"]
    if scheduler is None:
        raise SystemExit(f"recipe {settings['recipe']} has no warmup_cosine scheduler")
    if epochs <= scheduler["warmup_epochs"]:
        raise SystemExit(
            f"--recipe-schedule needs --epochs > the warm-up ({scheduler['warmup_epochs']})"
        )
    settings["scheduler"] = {**scheduler, "max_epochs": epochs, "interval": "epoch"}
    settings["gradient_clip_val"] = settings["recipe_gradient_clip_val"]


# --- data -------------------------------------------------------------------------------
def load_split(name: str, split: str, num_graphs: int, lap_k: int, root: Path) -> list:
    """The graphs of a split with ``ndata['lap_pe']``, as GraphDataModule caches them."""
    dataset = SBMDataset(name=name, split=split, num_graphs=num_graphs, seed=0, root=root)
    graphs = [dataset[i] for i in range(len(dataset))]
    field = lap_pe_field(lap_k)
    values = load_or_compute_field(field, graphs, field_path(dataset.cache_path, field))
    attached = WithFields(graphs, {field.name: values})
    result = [attached[i] for i in range(len(graphs))]
    return result, dataset.info.num_classes, dataset.info.num_categories


def make_batches(graphs: list, batch_size: int, order: torch.Tensor | None) -> list[dict]:
    """Batches as both models take them: the DGL batch and PyG's edge_index / batch."""
    order = torch.arange(len(graphs)) if order is None else order
    batches = []
    for start in range(0, len(graphs), batch_size):
        graph = dgl.batch([graphs[i] for i in order[start : start + batch_size].tolist()])
        src, dst = graph.edges()
        sizes = graph.batch_num_nodes()
        batches.append(
            {
                "graph": graph,
                "codes": graph.ndata["feat"],
                "lap_pe": graph.ndata["lap_pe"],
                "labels": graph.ndata["label"],
                "edge_index": torch.stack([src, dst]).long(),
                "batch": torch.repeat_interleave(torch.arange(len(sizes)), sizes),
                "sizes": sizes,
            }
        )
    return batches


# --- models -----------------------------------------------------------------------------
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}


def mlp_head(dim: int, out_dim: int, layers: int, activation: str) -> nn.Sequential:
    """graphformer's head: (layers - 1) × [Linear, activation], then Linear."""
    parts: list[nn.Module] = []
    for _ in range(layers - 1):
        parts += [nn.Linear(dim, dim), ACTIVATIONS[activation]()]
    return nn.Sequential(*parts, nn.Linear(dim, out_dim))


class PeerGPS(nn.Module):
    """PyG's ``GPSConv`` stack with graphformer's encoders and head around it.

    h = Embedding(codes) + Linear(s ⊙ LapPE) (random sign s per graph and eigenvector in
    training, as ``graphformer.nn.LapPEEncoder``), then ``num_layers`` ×
    ``GPSConv(GCNConv)`` (post-norm BatchNorm, multi-head attention over each graph), then
    the MLP head.
    """

    def __init__(self, settings: dict, num_categories: int, out_dim: int) -> None:
        super().__init__()
        GCNConv, GPSConv = require_pyg()
        model = settings["model"]
        block = model["block"]
        dim, k = block["dim"], settings["lap_pe_k"]
        if block["local_mixer"] != "gcn":
            raise SystemExit(f"the peer is built with GCN only; got --local {block['local_mixer']}")
        if block["prenorm"] or block["norm"] != "batch":
            raise SystemExit("the peer (PyG GPSConv) is post-norm; the recipe must be too")
        if block["ffn_ratio"] != 2.0:
            raise SystemExit("PyG GPSConv's MLP is 2 × wide; the recipe's ffn_ratio must be 2")
        self.k = k
        self.embedding = nn.Embedding(num_categories, dim)
        self.lap_pe = nn.Linear(k, dim)
        self.layers = nn.ModuleList(
            GPSConv(
                dim,
                GCNConv(dim, dim),
                heads=block["num_heads"],
                dropout=block["dropout"],
                act=block["activation"],
                norm="batch_norm",
                attn_type="multihead",
                attn_kwargs={"dropout": block["attn_dropout"]},
            )
            for _ in range(model["num_layers"])
        )
        self.head = mlp_head(dim, out_dim, model["head_layers"], block["activation"])

    def forward(self, batch: dict) -> torch.Tensor:
        pe = batch["lap_pe"]
        if self.training:
            signs = torch.randint(0, 2, (len(batch["sizes"]), self.k)) * 2 - 1
            pe = pe * signs.to(pe.dtype).repeat_interleave(batch["sizes"], dim=0)
        h = self.embedding(batch["codes"]) + self.lap_pe(pe)
        for layer in self.layers:
            h = layer(h, batch["edge_index"], batch["batch"])
        return self.head(h)


class GraphformerGPS(nn.Module):
    """graphformer's ``GraphTransformer`` as the recipe's ``model`` config builds it."""

    def __init__(self, settings: dict, num_categories: int, out_dim: int) -> None:
        super().__init__()
        kwargs = {key: v for key, v in settings["model"].items() if key != "_target_"}
        block = {key: v for key, v in kwargs.pop("block").items() if key != "_target_"}
        kwargs.update(
            block=BlockConfig(**block),
            out_dim=out_dim,
            num_categories=num_categories,
            in_dim=None,
            lap_pe_k=settings["lap_pe_k"],
            rwse_k=0,
            level="node",
        )
        self.model = GraphTransformer(**kwargs)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(batch["graph"], batch["codes"])


BUILD = {"pyg": PeerGPS, "graphformer": GraphformerGPS}


# --- same function given the same weights -----------------------------------------------
def peer_to_graphformer(tensors: dict[str, torch.Tensor], targets) -> dict[str, torch.Tensor]:
    """PyG ``PeerGPS`` tensors (parameters, buffers or gradients) under graphformer's names.

    GPSConv's ``conv`` is graphformer's local mixer (PyG stores the GCN weight as
    (out, in), graphformer as (in, out)), ``attn`` its global one (the (3E, E)
    in-projection split into q, k, v), ``mlp`` its ``ffn`` and ``norm1/2/3`` its
    ``norm_local/norm_global/norm_ffn`` (the mixers sit at ``local.`` / ``global_mixer.``).
    ``targets``: graphformer's state-dict keys (unused since the Mixer base class: one layout).
    """
    out = {}
    for name, value in tensors.items():
        parts = name.split(".")
        if parts[0] == "embedding":
            out["model.node_encoder.embedding." + parts[-1]] = value
        elif parts[0] == "lap_pe":
            out["model.lap_pe.linear." + parts[-1]] = value
        elif parts[0] == "head":
            out["model." + name] = value
        elif parts[0] == "layers":
            block, rest = f"model.blocks.{parts[1]}.", parts[2:]
            local = block + "local."
            full = block + "global_mixer."
            if rest == ["conv", "lin", "weight"]:
                out[local + "weight"] = value.t()
            elif rest == ["conv", "bias"]:
                out[local + "bias"] = value
            elif rest[:2] == ["attn", "out_proj"]:
                out[full + "out_proj." + rest[2]] = value
            elif rest[0] == "attn":
                kind = "weight" if rest[1] == "in_proj_weight" else "bias"
                for proj, chunk in zip("qkv", value.chunk(3), strict=True):
                    out[full + f"{proj}_proj.{kind}"] = chunk
            elif rest[0] == "mlp":
                out[block + "ffn." + ".".join(rest[1:])] = value
            elif rest[0] in ("norm1", "norm2", "norm3"):
                norm = {"norm1": "norm_local", "norm2": "norm_global", "norm3": "norm_ffn"}[rest[0]]
                out[block + norm + "." + rest[-1]] = value
            else:
                raise KeyError(f"no graphformer counterpart for the peer's {name}")
        else:
            raise KeyError(f"no graphformer counterpart for the peer's {name}")
    return out


def relative(value: torch.Tensor, reference: torch.Tensor) -> float:
    """‖value − reference‖ / ‖reference‖."""
    return float((value - reference).norm() / reference.norm().clamp(min=1e-30))


def same_function(settings: dict, batch: dict, categories: int, classes: int) -> dict:
    """Whether the two models compute the same function given the same weights.

    Builds both without dropout, loads the peer's weights into graphformer, then compares
    the outputs in eval mode and, in train mode (batch statistics, the same LapPE sign
    draws), the outputs and every parameter's gradient of the weighted loss.
    """
    model = settings["model"]
    block = {**model["block"], "dropout": 0.0, "attn_dropout": 0.0}
    settings = {**settings, "model": {**model, "block": block}}
    torch.manual_seed(0)
    peer = PeerGPS(settings, categories, classes)
    ours = GraphformerGPS(settings, categories, classes)
    try:
        keys = ours.state_dict().keys()
        mapped = peer_to_graphformer(peer.state_dict(), keys)
        ours.load_state_dict(mapped, strict=True)
    except (KeyError, RuntimeError) as error:
        return {"comparable": False, "why": str(error).splitlines()[0]}
    result: dict = {"comparable": True}
    with torch.no_grad():
        # In eval mode before training the norms hold their initial statistics, so each
        # block about doubles the scale (two branches of x plus a residual): 16 blocks
        # amplify float32 rounding, hence float64 here.
        graph = batch["graph"].local_var()
        graph.ndata["lap_pe"] = graph.ndata["lap_pe"].double()
        double = {**batch, "graph": graph, "lap_pe": graph.ndata["lap_pe"]}
        peer64, ours64 = copy.deepcopy(peer).double().eval(), copy.deepcopy(ours).double().eval()
        result["eval_rel_diff_float64"] = relative(ours64(double), peer64(double))
    peer.train(), ours.train()
    outputs = []
    for model in (peer, ours):
        torch.manual_seed(1)  # the same LapPE sign flips on both sides
        out = model(batch)
        loss_fn(out, batch["labels"], classes, settings["class_weighting"]).backward()
        outputs.append(out.detach())
    result["train_rel_diff"] = relative(outputs[1], outputs[0])
    # The BatchNorm running statistics that train-mode forward passes leave behind (what
    # eval mode then reads): the same update on both sides?
    buffers = peer_to_graphformer({n: b for n, b in peer.named_buffers() if "running" in n}, keys)
    ours_buffers = dict(ours.named_buffers())
    result["running_stats_rel_diff"] = max(relative(ours_buffers[n], b) for n, b in buffers.items())
    grads = peer_to_graphformer({n: p.grad for n, p in peer.named_parameters()}, keys)
    names = [n for n, _ in ours.named_parameters()]
    flat = torch.cat([grads[n].flatten() for n in names])
    ours_flat = torch.cat([p.grad.flatten() for _, p in ours.named_parameters()])
    result["grad_rel_diff"] = relative(ours_flat, flat)
    # Per tensor, skipping those whose gradient is zero in exact arithmetic (the key
    # bias: softmax ignores a shift shared by all keys), which hold rounding noise only.
    scale = max(float(grads[n].norm()) for n in names)
    per_tensor = {
        n: relative(p.grad, grads[n])
        for n, p in ours.named_parameters()
        if float(grads[n].norm()) > 1e-6 * scale
    }
    worst = max(per_tensor, key=per_tensor.get)
    result["grad_worst_tensor"] = [worst, per_tensor[worst]]
    return result


# --- training ---------------------------------------------------------------------------
def loss_fn(out: torch.Tensor, target: torch.Tensor, classes: int, weighted: bool):
    """Cross-entropy; with ``weighted``, Benchmarking-GNNs' per-batch class weights."""
    weight = None
    if weighted:
        counts = torch.bincount(target, minlength=classes).to(out.dtype)
        weight = (len(target) - counts) / max(len(target), 1)
    return F.cross_entropy(out, target, weight=weight)


class Runner:
    """One model with its optimiser, its own RNG stream and its per-epoch records."""

    def __init__(self, name, settings, num_categories, classes, seed):
        torch.manual_seed(seed)
        self.name, self.classes = name, classes
        self.weighted = settings["class_weighting"]
        self.model = BUILD[name](settings, num_categories, classes)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"]
        )
        self.scheduler = None
        if isinstance(settings["scheduler"], dict):
            from graphformer.tasks.schedules import warmup_cosine

            schedule = settings["scheduler"]
            self.scheduler = warmup_cosine(
                self.optimizer,
                schedule["warmup_epochs"],
                schedule["max_epochs"],
                schedule["start_factor"],
            )
        self.clip = settings["gradient_clip_val"]
        self.rng = torch.get_rng_state()
        self.params = sum(p.numel() for p in self.model.parameters())
        self.history: list[dict] = []

    def state(self) -> dict:
        """Everything needed to resume: weights, optimiser, scheduler, RNG, history."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "rng": self.rng,
            "history": self.history,
        }

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.rng, self.history = state["rng"], state["history"]

    def start_epoch(self):
        self.model.train()
        self.wall = self.cpu = self.loss_sum = 0.0
        self.nodes = 0
        self.metric = BenchmarkAccuracy(self.classes)
        self.preds: list[tuple[torch.Tensor, torch.Tensor]] = []

    def train_step(self, batch: dict) -> None:
        torch.set_rng_state(self.rng)
        wall, cpu = time.perf_counter(), time.process_time()
        self.optimizer.zero_grad(set_to_none=True)
        out = self.model(batch)
        loss = loss_fn(out, batch["labels"], self.classes, self.weighted)
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        self.rng = torch.get_rng_state()
        nodes = len(batch["labels"])
        self.loss_sum += loss.item() * nodes
        self.nodes += nodes
        self.preds.append((out.detach().argmax(-1), batch["labels"]))

    @torch.no_grad()
    def evaluate(self, batches: list[dict]) -> tuple[float, float, float]:
        self.model.eval()
        metric, loss_sum, nodes = BenchmarkAccuracy(self.classes), 0.0, 0
        wall = time.perf_counter()
        for batch in batches:
            out = self.model(batch)
            loss_sum += float(loss_fn(out, batch["labels"], self.classes, self.weighted)) * len(
                batch["labels"]
            )
            nodes += len(batch["labels"])
            metric.update(out, batch["labels"])
        return loss_sum / nodes, float(metric.compute()), time.perf_counter() - wall

    def end_epoch(
        self,
        epoch: int,
        val_batches: list[dict],
        test_batches: list[dict] | None = None,
        last: bool = False,
    ) -> dict:
        """The epoch's row; the test split is evaluated at a new best validation accuracy
        and at the ``last`` epoch only (what the summary reports), to save time."""
        for preds, target in self.preds:
            self.metric.update(preds, target)
        val_loss, val_acc, val_wall = self.evaluate(val_batches)
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()  # per epoch, as Lightning with interval "epoch"
        row = {
            "epoch": epoch,
            "model": self.name,
            "train_loss": self.loss_sum / self.nodes,
            "train_bench_acc": float(self.metric.compute()),
            "val_loss": val_loss,
            "val_bench_acc": val_acc,
            "train_wall_s": self.wall,
            "train_cpu_s": self.cpu,
            "val_wall_s": val_wall,
            "lr": lr,
        }
        best = max((r["val_bench_acc"] for r in self.history), default=-1.0)
        if test_batches and (val_acc > best or last):
            row["test_loss"], row["test_bench_acc"], _ = self.evaluate(test_batches)
        self.history.append(row)
        return row


def graphformer_to_peer(ours: dict[str, torch.Tensor], peer_template: dict) -> dict:
    """graphformer ``GraphformerGPS`` tensors under the peer's names: the inverse of
    :func:`peer_to_graphformer`, read off it key by key (``peer_template``: the peer's
    state dict, for its names)."""
    out = {}
    for name, value in peer_template.items():
        mapped = peer_to_graphformer({name: value}, ())
        parts = [ours[key] for key in mapped]
        if name.endswith("conv.lin.weight"):
            out[name] = parts[0].t()
        elif len(parts) == 3:  # q, k, v chunks of the in-projection
            out[name] = torch.cat(parts)
        else:
            out[name] = parts[0]
    return out


def swap_trained(
    checkpoint: Path, settings: dict, val: list[dict], categories: int, classes: int
) -> dict:
    """Both models as trained in ``checkpoint``, each also loaded into the other model's
    code, evaluated on ``val`` in eval mode: does a set of trained weights (BatchNorm running
    statistics included) give the same outputs and validation accuracy in either
    implementation? Separates "the weights differ" from "the eval-mode code differs"."""
    saved = torch.load(checkpoint, weights_only=False)
    if saved["settings"] != settings:
        raise SystemExit(f"{checkpoint} was written with other settings; pass the same flags")
    peer = PeerGPS(settings, categories, classes)
    ours = GraphformerGPS(settings, categories, classes)
    trained = {name: saved["runners"][name]["model"] for name in MODELS}
    result: dict = {"checkpoint": str(checkpoint), "epoch": saved["epoch"]}
    for owner in MODELS:
        if owner == "pyg":
            peer.load_state_dict(trained["pyg"])
            ours.load_state_dict(peer_to_graphformer(trained["pyg"], ()))
        else:
            ours.load_state_dict(trained["graphformer"])
            peer.load_state_dict(graphformer_to_peer(trained["graphformer"], peer.state_dict()))
        peer.eval(), ours.eval()
        metrics, diffs = [BenchmarkAccuracy(classes), BenchmarkAccuracy(classes)], []
        with torch.no_grad():
            for batch in val:
                a, b = peer(batch), ours(batch)
                diffs.append(relative(b, a))
                metrics[0].update(a, batch["labels"])
                metrics[1].update(b, batch["labels"])
        result[f"{owner}_weights"] = {
            "val_rel_diff_max": max(diffs),
            "val_bench_acc_in_peer_code": float(metrics[0].compute()),
            "val_bench_acc_in_graphformer_code": float(metrics[1].compute()),
        }
    return result


def same_after_training(
    settings: dict, train: list[dict], val: list[dict], categories: int, classes: int
) -> dict:
    """Train the peer on ``train`` (its dropout on), load its weights and BatchNorm
    statistics into graphformer, and compare the two in eval mode on ``val``: does
    validation differ between the models for any reason but their weights?"""
    torch.manual_seed(0)
    peer = PeerGPS(settings, categories, classes)
    ours = GraphformerGPS(settings, categories, classes)
    optimizer = torch.optim.AdamW(peer.parameters(), lr=settings["lr"])
    peer.train()
    for batch in train:
        optimizer.zero_grad()
        loss_fn(peer(batch), batch["labels"], classes, settings["class_weighting"]).backward()
        optimizer.step()
    ours.load_state_dict(peer_to_graphformer(peer.state_dict(), ours.state_dict().keys()))
    peer.eval(), ours.eval()
    metrics = [BenchmarkAccuracy(classes), BenchmarkAccuracy(classes)]
    diffs = []
    with torch.no_grad():
        for batch in val:
            a, b = peer(batch), ours(batch)
            diffs.append(relative(b, a))
            metrics[0].update(a, batch["labels"])
            metrics[1].update(b, batch["labels"])
    return {
        "steps": len(train),
        "val_rel_diff_max": max(diffs),
        "val_bench_acc_peer": float(metrics[0].compute()),
        "val_bench_acc_graphformer": float(metrics[1].compute()),
    }


def markdown(log: dict) -> str:
    """The per-epoch table and the time ratios of a run."""
    rows = log["epochs"]
    models = log["models"]
    lines = [
        f"REDUCED: {log['dataset']}, {log['graphs']} train / {log['val_graphs']} val graphs, "
        f"recipe `{log['settings']['recipe']}`, seed {log['seed']}, tag `{log['tag']}`, "
        f"graphformer commit `{log['environment']['commit'][:10]}`, "
        f"{log.get('epochs_done', 0)} of {log.get('epochs_planned', '?')} epochs",
        "",
        "| epoch | model | train loss | train bal. acc | val loss | val bal. acc "
        "| test bal. acc | lr | train s (wall) | train s (CPU) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        test = f"{100 * row['test_bench_acc']:.1f} %" if "test_bench_acc" in row else "–"
        lines.append(
            f"| {row['epoch']} | {LABELS[row['model']]} | {row['train_loss']:.4f} "
            f"| {100 * row['train_bench_acc']:.1f} % | {row['val_loss']:.4f} "
            f"| {100 * row['val_bench_acc']:.1f} % | {test} | {row.get('lr', float('nan')):.2e} "
            f"| {row['train_wall_s']:.1f} | {row['train_cpu_s']:.1f} |"
        )
    lines.append("")
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        if not mine:
            continue
        best = max(mine, key=lambda r: r["val_bench_acc"])
        last = mine[-1]
        test = (
            f"; test at that epoch {100 * best['test_bench_acc']:.1f} %"
            if "test_bench_acc" in best
            else ""
        )
        if "test_bench_acc" in last and last is not best:
            test += f", final test {100 * last['test_bench_acc']:.1f} %"
        lines.append(
            f"{LABELS[model]}: final val {100 * last['val_bench_acc']:.1f} % (epoch "
            f"{last['epoch']}), best val {100 * best['val_bench_acc']:.1f} % (epoch "
            f"{best['epoch']}){test}."
        )
    lines.append("")
    params = ", ".join(f"{LABELS[m]} {log['parameters'][m]:,}" for m in models)
    lines.append(f"Parameters: {params}.")
    check = log.get("same_function")
    if check and check.get("comparable"):
        lines.append(
            "Same weights, same function (peer's weights loaded into graphformer, dropout "
            f"off): outputs differ by {check['eval_rel_diff_float64']:.1e} (eval, float64) "
            f"and {check['train_rel_diff']:.1e} (train mode, float32), gradients by "
            f"{check['grad_rel_diff']:.1e} (relative norms)."
        )
    elif check:
        lines.append(f"Same weights, same function: not comparable ({check['why']}).")
    if len(models) == 2:
        for key, what in (("train_wall_s", "wall"), ("train_cpu_s", "CPU")):
            ratios = [
                a[key] / b[key]
                for a, b in zip(
                    [r for r in rows if r["model"] == "graphformer"],
                    [r for r in rows if r["model"] == "pyg"],
                    strict=True,
                )
            ]
            ratios.sort()
            median = ratios[len(ratios) // 2]
            lines.append(
                f"Train time per epoch, graphformer / PyG ({what}): median {median:.2f} "
                f"(range {ratios[0]:.2f}–{ratios[-1]:.2f})."
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("cluster", "pattern"), default="cluster")
    parser.add_argument("--graphs", type=int, default=500, help="training graphs")
    parser.add_argument("--val-graphs", type=int, default=None, help="default: graphs / 5")
    parser.add_argument(
        "--test-graphs",
        type=int,
        default=0,
        help="also evaluate this many test graphs (at each new best validation and at the end)",
    )
    parser.add_argument(
        "--recipe-schedule",
        action="store_true",
        help="the recipe's warm-up + cosine schedule ending at --epochs and its gradient "
        "clipping (default: constant lr, no clipping, as the first runs)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="save both models' state here after every epoch and resume from it if present",
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--models", default="pyg,graphformer", help="comma-separated: pyg, graphformer"
    )
    parser.add_argument("--recipe", default="cluster_gps", help="graphformer experiment config")
    parser.add_argument(
        "--local", default="gcn", help="graphformer's local mixer (the peer is built with GCN)"
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="Hydra override of the recipe, repeatable (e.g. model.num_layers=4)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--check-trained",
        type=int,
        default=0,
        metavar="STEPS",
        help="only train the peer STEPS batches, copy it into graphformer, compare validation",
    )
    parser.add_argument(
        "--swap-trained",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help="only load both trained models of a --checkpoint file (same flags otherwise), "
        "each also into the other's code, and compare them on validation in eval mode",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", type=Path, default=REPO / "data" / "sbm")
    parser.add_argument("--out", type=Path, default=HERE / "logs")
    parser.add_argument("--tag", default="run", help="names the output files")
    args = parser.parse_args(argv)

    if args.epochs < 1 or args.graphs < 1:
        parser.error("--epochs and --graphs must be at least 1")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown or not models:
        parser.error(f"--models takes {', '.join(MODELS)}; got {args.models!r}")
    if "pyg" in models:
        require_pyg()
    torch.set_num_threads(args.threads)
    val_graphs = args.val_graphs or max(1, args.graphs // 5)
    settings = recipe_settings(args.recipe, args.local, tuple(args.override))
    if args.recipe_schedule:
        use_recipe_schedule(settings, args.epochs)
    name = args.dataset.upper()
    train_graphs, classes, categories = load_split(
        name, "train", args.graphs, settings["lap_pe_k"], args.data_root
    )
    val, _, _ = load_split(name, "val", val_graphs, settings["lap_pe_k"], args.data_root)
    val_batches = make_batches(val, settings["batch_size"], None)
    test_batches = None
    if args.test_graphs:
        test, _, _ = load_split(
            name, "test", args.test_graphs, settings["lap_pe_k"], args.data_root
        )
        test_batches = make_batches(test, settings["batch_size"], None)
    settings["model"].update(out_dim=classes, num_categories=categories)  # as built

    if args.swap_trained:
        require_pyg()
        result = swap_trained(args.swap_trained, settings, val_batches, categories, classes)
        print(f"trained weights in either code: {result}", flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"{args.dataset}_{args.tag}_swap_check.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        return result
    if args.check_trained:
        require_pyg()
        order = torch.randperm(len(train_graphs), generator=torch.Generator().manual_seed(0))
        batches = make_batches(train_graphs, settings["batch_size"], order)
        result = same_after_training(
            settings, batches[: args.check_trained], val_batches, categories, classes
        )
        print(f"trained peer copied into graphformer: {result}", flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"{args.dataset}_{args.tag}_trained_check.json"
        path.write_text(json.dumps({"settings": settings, **result}, indent=1) + "\n")
        return result
    check = None
    if set(models) == set(MODELS):
        check = same_function(settings, val_batches[0], categories, classes)
        print(f"same weights, same function? {check}", flush=True)
    runners = [Runner(m, settings, categories, classes, args.seed) for m in models]
    log = {
        "dataset": name,
        "graphs": args.graphs,
        "val_graphs": val_graphs,
        "test_graphs": args.test_graphs,
        "epochs_planned": args.epochs,
        "epochs": [],
        "models": models,
        "seed": args.seed,
        "tag": args.tag,
        "settings": settings,
        "parameters": {r.name: r.params for r in runners},
        "same_function": check,
        "environment": environment(REPO),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
    }
    for runner in runners:
        print(f"{LABELS[runner.name]}: {runner.params:,} parameters", flush=True)
    shuffle = torch.Generator().manual_seed(args.seed)
    first = 1
    if args.checkpoint is not None and args.checkpoint.exists():
        saved = torch.load(args.checkpoint, weights_only=False)
        if saved["models"] != models or saved["settings"] != settings:
            raise SystemExit(
                f"{args.checkpoint} was written by another run (models or settings differ); "
                "pass another --checkpoint or delete it"
            )
        for runner in runners:
            runner.load(saved["runners"][runner.name])
        shuffle.set_state(saved["shuffle"])
        log["epochs"], log["environment"]["resumed_at"] = saved["epochs"], saved["epoch"] + 1
        first = saved["epoch"] + 1
        print(f"resumed from {args.checkpoint} after epoch {saved['epoch']}", flush=True)
    table = ""
    for epoch in range(first, args.epochs + 1):
        batches = make_batches(
            train_graphs,
            settings["batch_size"],
            torch.randperm(len(train_graphs), generator=shuffle),
        )
        for runner in runners:
            runner.start_epoch()
        for step, batch in enumerate(batches):
            turn = runners if (step + epoch) % 2 == 0 else runners[::-1]
            for runner in turn:
                runner.train_step(batch)
        for runner in runners:
            row = runner.end_epoch(epoch, val_batches, test_batches, epoch == args.epochs)
            log["epochs"].append(row)
            print(
                f"epoch {epoch} {runner.name:>11}: train loss {row['train_loss']:.4f} "
                f"acc {100 * row['train_bench_acc']:.1f} % | val loss {row['val_loss']:.4f} "
                f"acc {100 * row['val_bench_acc']:.1f} % | "
                + (
                    f"test acc {100 * row['test_bench_acc']:.1f} % | "
                    if "test_bench_acc" in row
                    else ""
                )
                + f"lr {row['lr']:.2e} | {row['train_wall_s']:.1f} s wall, "
                f"{row['train_cpu_s']:.1f} s CPU",
                flush=True,
            )
            if not math.isfinite(row["train_loss"]):
                raise SystemExit(f"{runner.name}: the loss is not finite")
        log["environment"]["loadavg_end"] = os.getloadavg()
        log["epochs_done"] = epoch
        table = save(log, args.out / f"{args.dataset}_{args.tag}")  # after every epoch
        if args.checkpoint is not None:
            args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            partial = args.checkpoint.with_name(args.checkpoint.name + ".partial")
            torch.save(
                {
                    "epoch": epoch,
                    "models": models,
                    "settings": settings,
                    "runners": {r.name: r.state() for r in runners},
                    "shuffle": shuffle.get_state(),
                    "epochs": log["epochs"],
                },
                partial,
            )
            partial.replace(args.checkpoint)
    print(table)
    return log


def save(log: dict, stem: Path) -> str:
    """Write ``<stem>.json`` and ``<stem>.md``; return the markdown."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(log, indent=1) + "\n")
    table = markdown(log)
    stem.with_suffix(".md").write_text(table)
    return table


if __name__ == "__main__":
    main()
