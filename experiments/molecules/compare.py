"""graphformer's molecule recipes against PyG peers, side by side on the same data.

Both sides train on the same molecules (``graphformer.data.ZincLogPDataset`` or
``BBBPDataset``: OGB atom and bond codes from RDKit), the same split, the same batches in
the same order, the same seeds and the same number of epochs, with the settings of a
graphformer recipe (``conf/experiment/<recipe>.yaml``, Hydra overrides allowed):

- graphformer: ``graphformer.nn.GraphTransformer`` exactly as the recipe's ``model``
  config builds it (GINE blocks, or GPS blocks = GINE + full attention).
- the peer, written here with PyG layers: the same encoders (a sum of one embedding per
  atom / bond code column; RWSE by a linear map) and head (sum readout, MLP), and per layer
  either PyG ``GINEConv`` with GraphGPS's post-norm residual blocks (``BN(x + GINE(x))``
  then ``BN(h + FFN(h))``, FFN 2× wide with dropout after its activation; dropout on both
  branches' outputs) or PyG ``GPSConv(GINEConv)`` (``examples/graph_gps.py``'s
  model: local + global branches each with residual and BatchNorm, summed, then FFN).

Both use a plain loop (no Lightning): AdamW with the recipe's learning rate and weight decay
(graphformer's with the recipe's ``fused`` setting, on by default in
``conf/task/optimizer``; the peer's torch's default, a loop over the parameters on the CPU,
as in PyG's examples, unless ``--peer-fused``), a linear warm-up over ``--warmup`` epochs
then cosine decay to 0 at the last epoch (GraphGPS's schedule, compressed to the run's
epochs), gradient norm clipped at the recipe's value, L1 loss (zinc_logp) or cross-entropy
(bbbp). Metrics: MAE (torchmetrics ``MeanAbsoluteError``) or ROC-AUC (torchmetrics
``AUROC``, binary on P(BBB+)) on val and test after every epoch; a run reports the test
value at its best validation epoch (as graphformer-train tests its best checkpoint) and at
the last epoch. The two models take turns batch by batch (the order alternating), each
drawing its random numbers from its own saved RNG state, so load from other jobs falls on
both alike; wall and CPU seconds are summed per model over the timed loop (forward, loss,
backward, step).

Usage (the peer needs ``pip install torch_geometric``)::

    python experiments/molecules/compare.py --recipe zinc_logp_gine --epochs 10 \\
        --seeds 0,1,2 --train-graphs 2000 --tag zinc_gine
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import time
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.bench import environment
from graphformer.data.features.encodings import rwse_field
from graphformer.data.field_cache import WithFields, field_path, load_or_compute_field
from graphformer.data.molecules.features import ATOM_DIMS, BOND_DIMS
from graphformer.nn import BlockConfig, GraphTransformer

import dgl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import AUROC, MeanAbsoluteError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODELS = ("pyg", "graphformer")
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def require_pyg():
    """PyG's layers for the peer, or a SystemExit saying how to install them."""
    try:
        from torch_geometric.nn import GINEConv, GPSConv, global_add_pool
    except ImportError as error:
        raise SystemExit(
            f"the peer needs torch_geometric ({error}): `pip install torch_geometric`, or run "
            "only graphformer with --models graphformer"
        ) from error
    return GINEConv, GPSConv, global_add_pool


# --- settings ---------------------------------------------------------------------------
def recipe_settings(recipe: str, extra: list[str]) -> dict:
    """Model, data and optimiser settings of ``conf/experiment/<recipe>.yaml``."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    overrides = [f"experiment={recipe}", *extra]
    with initialize_config_module("graphformer.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    optimizer = OmegaConf.to_container(cfg.task.optimizer, resolve=True)
    data = OmegaConf.to_container(cfg.data.dataset, resolve=False)
    return {
        "recipe": recipe,
        "overrides": overrides,
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "dataset": data["_target_"].rsplit(".", 1)[-1],
        "dataset_args": {k: v for k, v in data.items() if not k.startswith("_") and k != "root"},
        "batch_size": int(cfg.data.batch_size),
        "rwse_k": int(cfg.data.rwse_k),
        "lap_pe_k": int(cfg.data.lap_pe_k),
        "lr": float(optimizer["lr"]),
        "weight_decay": float(optimizer.get("weight_decay", 0.0)),
        "fused": bool(optimizer.get("fused", False)),
        "clip": float(cfg.trainer.get("gradient_clip_val") or 0.0),
        "task": cfg.task._target_.rsplit(".", 1)[-1],
        "standardize": bool(cfg.task.get("standardize", False)),
    }


# --- data -------------------------------------------------------------------------------
def load_split(settings: dict, split: str, count: int | None, root: Path):
    """(graphs with ndata['rwse'] when the recipe uses it, labels) of one split."""
    from graphformer import data as gdata

    dataset = getattr(gdata, settings["dataset"])(
        split=split, root=root, num_graphs=count, **settings["dataset_args"]
    )
    graphs = [dataset[i][0] for i in range(len(dataset))]
    labels = torch.stack([torch.as_tensor(dataset[i][1]) for i in range(len(dataset))])
    k = settings["rwse_k"]
    if k:
        field = rwse_field(k)
        path = None if dataset.cache_path is None else field_path(dataset.cache_path, field)
        attached = WithFields(graphs, {field.name: load_or_compute_field(field, graphs, path)})
        graphs = [attached[i] for i in range(len(graphs))]
    return graphs, labels, dataset.info


def make_batches(graphs, labels, batch_size: int, order: torch.Tensor) -> list[dict]:
    """Batches as both models take them: the DGL batch and PyG's edge_index / batch."""
    batches = []
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        graph = dgl.batch([graphs[i] for i in index.tolist()])
        src, dst = graph.edges()
        sizes = graph.batch_num_nodes()
        batches.append(
            {
                "graph": graph,
                "x": graph.ndata["feat"],
                "e": graph.edata["feat"],
                "rwse": graph.ndata.get("rwse"),
                "edge_index": torch.stack([src, dst]).long(),
                "batch": torch.repeat_interleave(torch.arange(len(sizes)), sizes),
                "num_graphs": len(sizes),
                "y": labels[index],
            }
        )
    return batches


# --- models -----------------------------------------------------------------------------
class Peer(nn.Module):
    """The PyG peer: code embeddings (+ RWSE) → layers of PyG ``GINEConv`` (GraphGPS's
    GINE block) or ``GPSConv(GINEConv)`` → sum pooling → MLP head."""

    def __init__(self, settings: dict, out_dim: int) -> None:
        super().__init__()
        GINEConv, GPSConv, self.pool = require_pyg()
        model, block = settings["model"], settings["model"]["block"]
        dim, act = block["dim"], block["activation"]
        if block["prenorm"] or block["norm"] != "batch":
            raise SystemExit("the peer is post-norm with BatchNorm; the recipe must be too")
        self.atoms = nn.Embedding(sum(ATOM_DIMS), dim)
        self.bonds = nn.Embedding(sum(BOND_DIMS), dim)
        self.rwse = nn.Linear(settings["rwse_k"], dim) if settings["rwse_k"] else None
        self.gps = block["mixer"] == "gps"
        hidden = int(block["ffn_ratio"] * dim)

        def gine():
            mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
            return GINEConv(mlp, train_eps=True)

        if self.gps:
            if hidden != 2 * dim:
                raise SystemExit("PyG GPSConv's FFN is 2 × wide; the recipe's ffn_ratio must be 2")
            self.layers = nn.ModuleList(
                GPSConv(
                    dim,
                    gine(),
                    heads=block["num_heads"],
                    dropout=block["dropout"],
                    act=act,
                    norm="batch_norm",
                    attn_type="multihead",
                    attn_kwargs={"dropout": block["attn_dropout"]},
                )
                for _ in range(model["num_layers"])
            )
        else:
            self.layers = nn.ModuleList(gine() for _ in range(model["num_layers"]))
            self.norms1 = nn.ModuleList(nn.BatchNorm1d(dim) for _ in self.layers)
            self.norms2 = nn.ModuleList(nn.BatchNorm1d(dim) for _ in self.layers)
            # Linear, act, dropout, Linear: graphformer's FFN and GraphGPS's (its block
            # dropout follows the FFN, below)
            self.ffns = nn.ModuleList(
                nn.Sequential(
                    nn.Linear(dim, hidden),
                    ACTIVATIONS[act](),
                    nn.Dropout(block["dropout"]),
                    nn.Linear(hidden, dim),
                )
                for _ in self.layers
            )
            self.drop = nn.Dropout(block["dropout"])
        head: list[nn.Module] = []
        for _ in range(model["head_layers"] - 1):
            head += [nn.Linear(dim, dim), ACTIVATIONS[act]()]
        self.head = nn.Sequential(*head, nn.Linear(dim, out_dim))

    def forward(self, b: dict) -> torch.Tensor:
        h = self.atoms(b["x"]).sum(1)
        if self.rwse is not None:
            h = h + self.rwse(b["rwse"])
        e = self.bonds(b["e"]).sum(1)
        for i, layer in enumerate(self.layers):
            if self.gps:
                h = layer(h, b["edge_index"], b["batch"], edge_attr=e)
            else:
                h = self.norms1[i](h + self.drop(layer(h, b["edge_index"], e)))
                h = self.norms2[i](h + self.drop(self.ffns[i](h)))
        return self.head(self.pool(h, b["batch"], size=b["num_graphs"]))


class Ours(nn.Module):
    """graphformer's ``GraphTransformer`` as the recipe's ``model`` config builds it."""

    def __init__(self, settings: dict, out_dim: int) -> None:
        super().__init__()
        kwargs = {k: v for k, v in settings["model"].items() if k != "_target_"}
        block = {k: v for k, v in kwargs.pop("block").items() if k != "_target_"}
        kwargs.update(block=BlockConfig(**block), out_dim=out_dim)
        self.model = GraphTransformer(**kwargs)

    def forward(self, b: dict) -> torch.Tensor:
        return self.model(b["graph"], b["x"], b["e"])


BUILD = {"pyg": Peer, "graphformer": Ours}


# --- training ---------------------------------------------------------------------------
def schedule(epochs: int, warmup: int):
    """Per-epoch LR factor: linear warm-up over ``warmup`` epochs, then cosine to 0."""

    def factor(epoch: int) -> float:
        if epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        progress = (epoch - warmup) / max(1, epochs - warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class Runner:
    """One model with its optimiser, its own RNG stream and its per-epoch records."""

    def __init__(
        self, name: str, settings: dict, out_dim: int, seed: int, args, scale=(0.0, 1.0)
    ) -> None:
        torch.manual_seed(seed)
        # standardised targets (task.standardize, QM9): loss on (y - mean) / std, metrics
        # on out * std + mean, in the targets' units (as graphformer.tasks.Regression)
        self.mean, self.std = scale
        self.name, self.regression = name, settings["task"] == "GraphRegression"
        self.model = BUILD[name](settings, out_dim)
        fused = settings.get("fused", False) and (name == "graphformer" or args.peer_fused)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=settings["lr"],
            weight_decay=settings["weight_decay"],
            fused=fused or None,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, schedule(args.epochs, args.warmup)
        )
        self.clip = settings["clip"]
        self.rng = torch.get_rng_state()
        self.params = sum(p.numel() for p in self.model.parameters())
        self.history: list[dict] = []

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.regression:
            return F.l1_loss(out, (y.reshape(out.shape) - self.mean) / self.std)
        return F.cross_entropy(out, y)

    def start_epoch(self) -> None:
        self.model.train()
        self.wall = self.cpu = self.loss_sum = 0.0
        self.count = 0

    def train_step(self, b: dict) -> None:
        torch.set_rng_state(self.rng)
        wall, cpu = time.perf_counter(), time.process_time()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model(b), b["y"])
        loss.backward()
        if self.clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        self.rng = torch.get_rng_state()
        self.loss_sum += loss.item() * b["num_graphs"]
        self.count += b["num_graphs"]

    @torch.no_grad()
    def evaluate(self, batches: list[dict]) -> float:
        self.model.eval()
        metric = MeanAbsoluteError() if self.regression else AUROC(task="binary")
        for b in batches:
            out = self.model(b)
            if self.regression:
                out = out.reshape(b["y"].shape) * self.std + self.mean
                metric.update(out.reshape(-1), b["y"].reshape(-1))
            else:
                metric.update(out.softmax(-1)[:, 1], b["y"])
        return float(metric.compute())

    def end_epoch(self, epoch: int, val: list[dict], test: list[dict]) -> dict:
        self.scheduler.step()
        row = {
            "epoch": epoch,
            "model": self.name,
            "train_loss": self.loss_sum / self.count,
            "val": self.evaluate(val),
            "test": self.evaluate(test),
            "train_wall_s": self.wall,
            "train_cpu_s": self.cpu,
        }
        self.history.append(row)
        return row


def best(history: list[dict], regression: bool) -> dict:
    """The row of the best validation value (first one on ties)."""
    key = (lambda r: r["val"]) if regression else (lambda r: -r["val"])
    return min(history, key=key)


# --- reporting --------------------------------------------------------------------------
def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.pstdev(values):.4f}"


def summary(log: dict) -> str:
    """Markdown: per seed and model the best-val epoch's val/test and the last epoch's, then
    mean ± std (population std) over seeds, and the time ratio."""
    metric = "MAE" if log["regression"] else "ROC-AUC"
    lines = [
        f"### {log['tag']}: {log['settings']['recipe']} ({metric}; REDUCED)",
        "",
        f"Command: `{log['command']}`  ",
        f"Data: {log['sizes']} graphs (train/val/test), {log['epochs']} epochs, seeds "
        f"{log['seeds']}, {log['environment']['threads']} thread(s), wall time "
        f"{log['wall_s'] / 60:.1f} min, load average at start "
        f"{log['environment']['loadavg_start'][0]:.1f}.",
        "",
        "| model | params | seed | best epoch | val | test (at best val) | last val | last test |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in log["runs"]:
        for name in log["models"]:
            history = [r for r in run["history"] if r["model"] == name]
            top, last = best(history, log["regression"]), history[-1]
            lines.append(
                f"| {name} | {run['params'][name]:,} | {run['seed']} | {top['epoch']} | "
                f"{top['val']:.4f} | {top['test']:.4f} | {last['val']:.4f} | {last['test']:.4f} |"
            )
    lines += ["", "| model | val (best) | test (at best val) | last test | train s/epoch |"]
    lines += ["|---|---|---|---|---|"]
    for name in log["models"]:
        tops, lasts, walls = [], [], []
        for run in log["runs"]:
            history = [r for r in run["history"] if r["model"] == name]
            tops.append(best(history, log["regression"]))
            lasts.append(history[-1])
            walls += [r["train_wall_s"] for r in history]
        lines.append(
            f"| {name} | {mean_std([t['val'] for t in tops])} | "
            f"{mean_std([t['test'] for t in tops])} | {mean_std([r['test'] for r in lasts])} | "
            f"{statistics.mean(walls):.1f} |"
        )
    if len(log["models"]) == 2:
        ratios, cpu = [], []
        for run in log["runs"]:
            for epoch in range(log["epochs"]):
                rows = {r["model"]: r for r in run["history"] if r["epoch"] == epoch}
                ratios.append(rows["graphformer"]["train_wall_s"] / rows["pyg"]["train_wall_s"])
                cpu.append(rows["graphformer"]["train_cpu_s"] / rows["pyg"]["train_cpu_s"])
        lines += [
            "",
            f"graphformer / PyG time per training epoch (interleaved, same batches): wall "
            f"median {statistics.median(ratios):.2f}× (range {min(ratios):.2f}–"
            f"{max(ratios):.2f}), CPU median {statistics.median(cpu):.2f}× (range "
            f"{min(cpu):.2f}–{max(cpu):.2f}), over {len(ratios)} epochs.",
        ]
    return "\n".join(lines) + "\n"


def complete_runs(log: dict) -> dict:
    """``log`` restricted to the seeds that ran every epoch with every model (a run cut
    short keeps its finished seeds); the others are listed under ``incomplete``."""
    done, cut = [], []
    for run in log["runs"]:
        epochs = {r["epoch"] for r in run["history"] if r["model"] == log["models"][-1]}
        (done if len(epochs) == log["epochs"] else cut).append(run)
    return {**log, "runs": done, "incomplete": [(r["seed"], len(r["history"])) for r in cut]}


def draw_curves(log: dict, path: Path) -> None:
    """``path`` (PNG): per epoch, the training loss and the validation and test metric of
    each model, mean over the seeds with a band of ± one (population) std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "MAE" if log["regression"] else "ROC-AUC"
    panels = (("train_loss", "train loss"), ("val", f"val {metric}"), ("test", f"test {metric}"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, colour in zip(log["models"], ("tab:orange", "tab:blue"), strict=False):
        for ax, (key, label) in zip(axes, panels, strict=True):
            curves = [
                [
                    r[key]
                    for r in sorted(run["history"], key=lambda r: r["epoch"])
                    if r["model"] == name
                ]
                for run in log["runs"]
            ]
            values = torch.tensor(curves, dtype=torch.float64)  # (seeds, epochs)
            mean, std = values.mean(0), values.std(0, unbiased=False)
            epochs = range(values.shape[1])
            ax.plot(epochs, mean, color=colour, label=f"{name} ({len(curves)} seeds)")
            ax.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.2)
            ax.set_xlabel("epoch")
            ax.set_title(label)
    axes[0].legend()
    fig.suptitle(f"{log['tag']}: {log['sizes']} graphs (train/val/test), REDUCED")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarize(path: Path) -> str:
    """Markdown of a saved JSON log (its complete seeds), written beside it as ``.md``,
    and its curves as ``.png``."""
    log = complete_runs(json.loads(path.read_text()))
    if log["runs"]:
        draw_curves(log, path.with_suffix(".png"))
    text = summary(log)
    if log["incomplete"]:
        text += (
            f"\nNot included (cut short when the time ran out): seed, rows logged = "
            f"{log['incomplete']}.\n"
        )
    path.with_suffix(".md").write_text(text)
    return text


def finished_runs(path: Path, log: dict, epochs: int) -> dict[int, dict]:
    """The seeds of an earlier log at ``path`` that ran all ``epochs`` for every model, by
    seed; refused when that log was made with other settings, models or data sizes."""
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    for key in ("settings", "models", "epochs", "sizes"):
        if earlier.get(key) != log.get(key):
            raise SystemExit(
                f"--resume: {path} was made with other {key} ({earlier.get(key)!r}, now "
                f"{log.get(key)!r}); use another --tag, or drop --resume to start over"
            )
    rows = epochs * len(log["models"])
    return {run["seed"]: run for run in earlier["runs"] if len(run["history"]) == rows}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="zinc_logp_gine")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up epochs")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train-graphs", type=int, default=None, help="first N train graphs")
    parser.add_argument("--eval-graphs", type=int, default=None, help="first N val/test graphs")
    parser.add_argument("--models", default="pyg,graphformer")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--peer-fused",
        action="store_true",
        help="the peer's AdamW fused too, as graphformer's recipe (isolates the layers)",
    )
    parser.add_argument("--root", default=os.environ.get("GRAPHFORMER_DATA_DIR", "data"))
    parser.add_argument("--tag", default=None)
    parser.add_argument("--override", action="append", default=[], help="Hydra override")
    parser.add_argument("--summarize", default=None, help="re-render a saved JSON log")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the finished seeds of results/<tag>.json (same command) and run the rest",
    )
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize(Path(args.summarize)))
        return {}
    torch.set_num_threads(args.threads)
    models = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = recipe_settings(args.recipe, args.override)
    root = Path(args.root) / "molecules"
    train_g, train_y, info = load_split(settings, "train", args.train_graphs, root)
    val_g, val_y, _ = load_split(settings, "val", args.eval_graphs, root)
    test_g, test_y, _ = load_split(settings, "test", args.eval_graphs, root)
    bs = settings["batch_size"]
    val = make_batches(val_g, val_y, bs, torch.arange(len(val_g)))
    test = make_batches(test_g, test_y, bs, torch.arange(len(test_g)))
    tag = args.tag or args.recipe
    log = {
        "tag": tag,
        "command": "python experiments/molecules/compare.py "
        + " ".join(argv if argv is not None else os.sys.argv[1:]),
        "settings": settings,
        "models": models,
        "seeds": seeds,
        "epochs": args.epochs,
        "sizes": [len(train_g), len(val_g), len(test_g)],
        "regression": info.task == "regression",
        "environment": environment(REPO),
        "runs": [],
    }
    start = time.perf_counter()
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    scale = (0.0, 1.0)
    if settings["standardize"]:  # the training split's mean and population std per target
        targets = train_y.reshape(len(train_y), -1).float()
        std = targets.std(dim=0, unbiased=False)
        scale = (targets.mean(dim=0), torch.where(std > 0, std, torch.ones_like(std)))
    done = finished_runs(out / f"{tag}.json", log, args.epochs) if args.resume else {}
    for seed in seeds:
        if seed in done:  # --resume: this seed finished in an earlier run of the command
            log["runs"].append(done[seed])
            print(f"seed {seed}: kept from the earlier run", flush=True)
            continue
        runners = {name: Runner(name, settings, info.out_dim, seed, args, scale) for name in models}
        run = {"seed": seed, "params": {n: r.params for n, r in runners.items()}, "history": []}
        log["runs"].append(run)
        shuffle = torch.Generator().manual_seed(seed)
        for epoch in range(args.epochs):
            batches = make_batches(
                train_g, train_y, bs, torch.randperm(len(train_g), generator=shuffle)
            )
            for runner in runners.values():
                runner.start_epoch()
            for i, b in enumerate(batches):
                order = models if i % 2 == 0 else models[::-1]
                for name in order:
                    runners[name].train_step(b)
            for name in models:
                row = runners[name].end_epoch(epoch, val, test)
                row["seed"] = seed
                run["history"].append(row)
                print(json.dumps(row), flush=True)
            log["wall_s"] = time.perf_counter() - start
            (out / f"{tag}.json").write_text(json.dumps(log, indent=1))
    log["wall_s"] = time.perf_counter() - start
    (out / f"{tag}.json").write_text(json.dumps(log, indent=1))
    with open(out / f"{tag}.csv", "w", newline="") as file:
        rows = [r for run in log["runs"] for r in run["history"]]
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = summary(log)
    (out / f"{tag}.md").write_text(text)
    draw_curves(log, out / f"{tag}.png")
    print(text)
    return log


if __name__ == "__main__":
    main()
