"""The record recipes (issue 23) against their peers: training steps and collation,
interleaved rounds in one process, medians and ratios; or a torch.profiler table of one row.

Rows (each graphformer beside its peer, same data, same batches, same threads):

- ``cluster_gps``: 16 × GPS(GatedGCN + full attention), width 48, 8 heads, post-norm
  BatchNorm, LapPE 10, CLUSTER batches of 16 (node classification). Peer: PyG ``GPSConv``
  hosting :class:`PygGatedGCN` (GatedGCN written as a PyG ``MessagePassing`` here, the
  edge state carried from layer to layer as graphformer carries it).
- ``zinc_gps``: 10 × GPS(GINE + full), width 64, 4 heads, RWSE 20, molecule-like graphs
  (15–31 atoms, tree + ring closures, 28 atom and 4 bond codes), batches of 32, sum
  readout (graph regression). Peer: PyG ``GPSConv(GINEConv)``.
- ``gatedgcn``: 16 × GatedGCN width 70 on CLUSTER batches of 16. Peer: ``dgl.nn.GatedGCNConv``.
- ``collate_cluster`` / ``collate_mol``: one loader pass over the same samples, no model:
  ``graphformer.data.datamodule.collate`` against PyG's ``Batch.from_data_list`` (what its
  ``DataLoader`` calls per batch).
- ``loader_cluster`` / ``loader_mol``: one full pass of a training loader, no model:
  ``GraphDataModule(...).train_dataloader()`` (dataset access, encodings attached by
  ``WithFields``, shuffling, ``collate``; LapPE 10 on CLUSTER, RWSE 20 on molecules,
  computed and cached before the timed loop) against PyG's ``DataLoader`` over ``Data``
  objects holding the same fields; same samples, batch size, shuffling, no workers.

A training step is forward, loss, backward and an AdamW step (torch's default on both
sides; with ``--fused`` graphformer's fused, as its recipes run it, the peer's default as
PyG's examples; with ``--compile`` graphformer's graph-free parts compiled, as
``model.compile=true``); batches are built before the timed loop (the collation rows time that
part). Each round runs every row's two sides one after the other, the order alternating
between rounds, so load from other jobs falls on both alike; only the ratios mean anything
on a shared machine. Wall and process CPU seconds are both recorded: under heavy load from
other jobs the CPU seconds (time-slicing adds wall time, not CPU time) give the steadier
ratios.

Usage::

    python experiments/bench/recipes.py --rounds 3 --json experiments/bench/recipes.json
    python experiments/bench/recipes.py --profile cluster_gps --side graphformer
    python experiments/bench/recipes.py --profile zinc_gps --by-caller --fast-dropout
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import SBMDataset
from graphformer.data.datamodule import collate
from graphformer.data.features.encodings import lap_pe_field
from graphformer.data.field_cache import WithFields, compute_field
from graphformer.nn import BlockConfig, GatedGCN, GraphTransformer
from graphformer.nn.compile import compile_model

import dgl
import torch
import torch.nn.functional as F
from torch import nn

ROWS = (
    "cluster_gps",
    "zinc_gps",
    "gatedgcn",
    "collate_cluster",
    "collate_mol",
    "loader_cluster",
    "loader_mol",
)
PEERS = {
    "cluster_gps": "PyG GPSConv(GatedGCN MessagePassing)",
    "zinc_gps": "PyG GPSConv(GINEConv)",
    "gatedgcn": "DGL GatedGCNConv stack",
    "collate_cluster": "PyG Batch.from_data_list",
    "collate_mol": "PyG Batch.from_data_list",
    "loader_cluster": "PyG DataLoader",
    "loader_mol": "PyG DataLoader",
}


# --- data -------------------------------------------------------------------------------
def cluster_graphs(count: int, root: str) -> tuple[list[dgl.DGLGraph], int, int]:
    """``count`` CLUSTER training graphs with ``ndata['lap_pe']`` (k = 10)."""
    dataset = SBMDataset(name="CLUSTER", split="train", num_graphs=count, seed=0, root=root)
    graphs = [dataset[i] for i in range(len(dataset))]
    field = lap_pe_field(10)
    attached = WithFields(graphs, {field.name: compute_field(field, graphs)})
    graphs = [attached[i] for i in range(len(graphs))]
    return graphs, dataset.info.num_classes, dataset.info.num_categories


def molecule_graphs(count: int, seed: int = 0) -> list[tuple[dgl.DGLGraph, torch.Tensor]]:
    """``count`` molecule-like graphs: 15–31 atoms, a random tree plus ~10 % ring
    closures, both edge directions, atom codes < 28, bond codes < 4, RWSE (20 steps)."""
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(count):
        n = int(torch.randint(15, 32, (1,), generator=gen))
        parent = [int(torch.randint(0, i, (1,), generator=gen)) for i in range(1, n)]
        src, dst = list(range(1, n)), parent
        for _ in range(max(1, n // 10)):
            a, b = (int(v) for v in torch.randint(0, n, (2,), generator=gen))
            if a != b:
                src.append(a), dst.append(b)
        bonds = torch.randint(0, 4, (len(src),), generator=gen)
        graph = dgl.graph((torch.tensor(src + dst), torch.tensor(dst + src)), num_nodes=n)
        graph.ndata["feat"] = torch.randint(0, 28, (n,), generator=gen)
        graph.edata["feat"] = torch.cat([bonds, bonds])
        graph.ndata["rwse"] = dgl.random_walk_pe(graph, 20)
        samples.append((graph, torch.randn(1, generator=gen)))
    return samples


def batches_of(samples: list, size: int) -> list[list]:
    return [samples[i : i + size] for i in range(0, len(samples), size)]


def prepared(samples: list) -> dict:
    """One batch as both sides take it: the DGL batch and PyG's edge_index / batch."""
    graph, labels = collate(samples)
    src, dst = graph.edges()
    sizes = graph.batch_num_nodes()
    return {
        "graph": graph,
        "labels": labels,
        "edge_index": torch.stack([src, dst]).long(),
        "batch": torch.repeat_interleave(torch.arange(len(sizes)), sizes),
        "sizes": sizes,
        "num_graphs": len(sizes),
    }


# --- peers ------------------------------------------------------------------------------
def pyg():
    try:
        import torch_geometric.nn as pyg_nn
    except ImportError as error:
        raise SystemExit(
            f"the peers need torch_geometric: pip install torch_geometric ({error})"
        ) from error
    return pyg_nn


def make_pyg_gatedgcn():
    from torch_geometric.nn import MessagePassing

    class PygGatedGCN(MessagePassing):
        """GatedGCN (graphformer.nn.GatedGCN's equations) as a PyG ``MessagePassing``:
        returns ReLU(BN(U h_i + Σ η_ij V h_j)) (``GPSConv`` adds dropout and the residual);
        the updated edge state e + drop(ReLU(BN(ê))) is left in ``self.edge_out``."""

        def __init__(self, dim: int, dropout: float) -> None:
            super().__init__(aggr="add")
            self.A, self.B, self.C, self.U, self.V = (nn.Linear(dim, dim) for _ in range(5))
            self.bn_node, self.bn_edge = nn.BatchNorm1d(dim), nn.BatchNorm1d(dim)
            self.dropout = dropout
            self.edge_out = None

        def forward(self, x, edge_index, edge_attr):
            src, dst = edge_index
            gates = self.A(x)[dst] + self.B(x)[src] + self.C(edge_attr)
            sigma = torch.sigmoid(gates)
            both = self.propagate(edge_index, v=self.V(x), sigma=sigma)
            num, den = both.chunk(2, dim=-1)
            h = F.relu(self.bn_node(self.U(x) + num / (den + 1e-6)))
            e = F.dropout(F.relu(self.bn_edge(gates)), self.dropout, self.training)
            self.edge_out = edge_attr + e
            return h

        def message(self, v_j, sigma):
            return torch.cat([sigma * v_j, sigma], dim=-1)

    return PygGatedGCN


def head(dim: int, out: int, layers: int = 3) -> nn.Sequential:
    parts: list[nn.Module] = []
    for _ in range(layers - 1):
        parts += [nn.Linear(dim, dim), nn.ReLU()]
    return nn.Sequential(*parts, nn.Linear(dim, out))


class PeerClusterGPS(nn.Module):
    def __init__(self, categories: int, classes: int, dim: int = 48, layers: int = 16) -> None:
        super().__init__()
        pyg_nn, gated = pyg(), make_pyg_gatedgcn()
        self.embedding, self.lap_pe = nn.Embedding(categories, dim), nn.Linear(10, dim)
        self.dim = dim
        self.layers = nn.ModuleList(
            pyg_nn.GPSConv(
                dim,
                gated(dim, 0.1),
                heads=8,
                dropout=0.1,
                norm="batch_norm",
                attn_kwargs={"dropout": 0.5},
            )
            for _ in range(layers)
        )
        self.head = head(dim, classes)

    def forward(self, b: dict) -> torch.Tensor:
        g = b["graph"]
        pe = g.ndata["lap_pe"]
        signs = torch.randint(0, 2, (b["num_graphs"], 10)) * 2 - 1
        pe = pe * signs.to(pe.dtype).repeat_interleave(b["sizes"], dim=0)
        h = self.embedding(g.ndata["feat"]) + self.lap_pe(pe)
        e = h.new_zeros(len(b["edge_index"][0]), self.dim)
        for layer in self.layers:
            h = layer(h, b["edge_index"], b["batch"], edge_attr=e)
            e = layer.conv.edge_out
        return self.head(h)


class PeerZincGPS(nn.Module):
    def __init__(self, dim: int = 64, layers: int = 10) -> None:
        super().__init__()
        pyg_nn = pyg()
        self.atom, self.bond = nn.Embedding(28, dim), nn.Embedding(4, dim)
        self.rwse = nn.Linear(20, dim)
        self.layers = nn.ModuleList(
            pyg_nn.GPSConv(
                dim,
                pyg_nn.GINEConv(
                    nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim)),
                    train_eps=True,
                ),
                heads=4,
                dropout=0.0,
                norm="batch_norm",
                attn_kwargs={"dropout": 0.5},
            )
            for _ in range(layers)
        )
        self.head = head(dim, 1)

    def forward(self, b: dict) -> torch.Tensor:
        g = b["graph"]
        h = self.atom(g.ndata["feat"]) + self.rwse(g.ndata["rwse"])
        e = self.bond(g.edata["feat"])
        for layer in self.layers:
            h = layer(h, b["edge_index"], b["batch"], edge_attr=e)
        return self.head(pyg().global_add_pool(h, b["batch"], size=b["num_graphs"]))


class OursGatedGCNStack(nn.Module):
    def __init__(
        self, categories: int, classes: int, dim: int = 70, layers: int = 16, fast: bool = False
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(categories, dim)
        self.layers = nn.ModuleList(
            GatedGCN(dim, dropout=0.1, fast_dropout=fast) for _ in range(layers)
        )
        self.out = nn.Linear(dim, classes)

    def forward(self, b: dict) -> torch.Tensor:
        g = b["graph"]
        h, e = self.embedding(g.ndata["feat"]), None
        for layer in self.layers:
            h, e = layer(g, h, e)
        return self.out(h)


class PeerGatedGCNStack(nn.Module):
    def __init__(self, categories: int, classes: int, dim: int = 70, layers: int = 16) -> None:
        super().__init__()
        from dgl.nn import GatedGCNConv

        self.dim = dim
        self.embedding = nn.Embedding(categories, dim)
        self.layers = nn.ModuleList(
            GatedGCNConv(dim, dim, dim, dropout=0.1, residual=True) for _ in range(layers)
        )
        self.out = nn.Linear(dim, classes)

    def forward(self, b: dict) -> torch.Tensor:
        g = b["graph"]
        h = self.embedding(g.ndata["feat"])
        e = h.new_zeros(g.num_edges(), self.dim)
        for layer in self.layers:
            h, e = layer(g, h, e)
        return self.out(h)


class Ours(nn.Module):
    """graphformer's ``GraphTransformer`` fed from a prepared batch."""

    def __init__(self, model: GraphTransformer, edges: bool = False) -> None:
        super().__init__()
        self.model, self.edges = model, edges

    def forward(self, b: dict) -> torch.Tensor:
        g = b["graph"]
        return self.model(g, g.ndata["feat"], g.edata["feat"] if self.edges else None)


def build(
    row: str,
    side: str,
    categories: int,
    classes: int,
    fast_dropout: bool = False,
) -> nn.Module:
    torch.manual_seed(0)
    if row == "cluster_gps":
        if side == "peer":
            return PeerClusterGPS(categories, classes)
        block = BlockConfig(
            dim=48,
            mixer="gps",
            local_mixer="gatedgcn",
            global_mixer="full",
            num_heads=8,
            norm="batch",
            prenorm=False,
            activation="relu",
            dropout=0.1,
            attn_dropout=0.5,
            fast_dropout=fast_dropout,
        )
        model = GraphTransformer(
            classes, block, 16, num_categories=categories, lap_pe_k=10, head_layers=3
        )
        return Ours(model)
    if row == "zinc_gps":
        if side == "peer":
            return PeerZincGPS()
        block = BlockConfig(
            dim=64,
            mixer="gps",
            local_mixer="gine",
            global_mixer="full",
            num_heads=4,
            norm="batch",
            prenorm=False,
            activation="relu",
            dropout=0.0,
            attn_dropout=0.5,
            fast_dropout=fast_dropout,
        )
        model = GraphTransformer(
            1,
            block,
            10,
            num_categories=28,
            edge_categories=4,
            rwse_k=20,
            level="graph",
            readout="sum",
            head_layers=3,
        )
        return Ours(model, edges=True)
    if row == "gatedgcn":
        if side == "peer":
            return PeerGatedGCNStack(categories, classes)
        return OursGatedGCNStack(categories, classes, fast=fast_dropout)
    raise ValueError(row)


def loss_of(row: str, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if row == "zinc_gps":
        return F.l1_loss(out.squeeze(-1), labels.squeeze(-1))
    return F.cross_entropy(out, labels)


def train_pass(row: str, model: nn.Module, opt, batches: list[dict]) -> float:
    model.train()
    start = time.perf_counter()
    for b in batches:
        opt.zero_grad(set_to_none=True)
        loss_of(row, model(b), b["labels"]).backward()
        opt.step()
    return time.perf_counter() - start


def timed(function, *args) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``function(*args)``. On a machine shared
    with other jobs the CPU seconds are steadier: time-slicing adds wall time, not CPU."""
    cpu = time.process_time()
    wall = function(*args)
    return wall, time.process_time() - cpu


def collate_pass(side: str, batches: list[list]) -> float:
    start = time.perf_counter()
    if side == "peer":
        from torch_geometric.data import Batch

        for batch in batches:
            Batch.from_data_list(batch)
    else:
        for batch in batches:
            collate(batch)
    return time.perf_counter() - start


def to_pyg(samples: list) -> list:
    from torch_geometric.data import Data

    out = []
    for sample in samples:
        graph, label = (sample, None) if isinstance(sample, dgl.DGLGraph) else sample
        src, dst = graph.edges()
        fields = {k: v for k, v in graph.ndata.items() if k != "feat"}
        if "feat" in graph.edata:
            fields["edge_attr"] = graph.edata["feat"]
        if label is not None:
            fields["y"] = label
        out.append(Data(x=graph.ndata["feat"], edge_index=torch.stack([src, dst]), **fields))
    return out


class Samples(torch.utils.data.Dataset):
    """A list of samples as a dataset for :class:`GraphDataModule` (every split the same)."""

    def __init__(self, samples: list, split: str = "train") -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        return self.samples[index]


def loader_setup(row: str, samples: list, size: int) -> dict:
    """Both sides' training loaders over the same samples: graphformer's data module (its
    encodings computed here, before any timing) and PyG's ``DataLoader``."""
    import functools

    from graphformer.data import GraphDataModule

    from torch_geometric.loader import DataLoader as PygDataLoader

    encoding = "lap_pe" if row == "loader_cluster" else "rwse"
    bare = []
    for sample in samples:  # the data module attaches the encoding itself
        graph = sample if isinstance(sample, dgl.DGLGraph) else sample[0]
        graph = graph.local_var()
        graph.ndata.pop(encoding)
        bare.append(graph if isinstance(sample, dgl.DGLGraph) else (graph, sample[1]))
    k = {"lap_pe_k": 10} if encoding == "lap_pe" else {"rwse_k": 20}
    module = GraphDataModule(
        functools.partial(Samples, bare), batch_size=size, validate=False, seed=0, **k
    )
    module.setup("fit")
    pyg_samples = to_pyg(samples)
    generator = torch.Generator().manual_seed(0)
    peer = PygDataLoader(pyg_samples, batch_size=size, shuffle=True, generator=generator)
    return {"graphformer": module.train_dataloader(), "peer": peer}


def loader_pass(loader) -> float:
    start = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - start


def by_caller(model: nn.Module, batches: list[dict], rows: int = 30) -> str:
    """A table of the forward passes' top-level ops (those not called by another op),
    grouped by (op, the innermost graphformer or ``torch.nn`` source line above it): CPU
    milliseconds and calls per step, most expensive first. The backward pass has no Python
    frames, so only the forward is attributed."""
    from collections import defaultdict

    from torch.profiler import ProfilerActivity, profile

    model.train()
    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        for b in batches:
            model(b)
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for event in prof.events():
        parent = event.cpu_parent
        if not event.name.startswith("aten::") or (parent and parent.name.startswith("aten::")):
            continue
        caller = "?"
        while parent is not None:
            if "graphformer/" in parent.name or "torch/nn/" in parent.name:
                caller = parent.name.split("site-packages/")[-1].split("/work/main/")[-1]
                break
            parent = parent.cpu_parent
        total = totals[(event.name, caller)]
        total[0] += event.cpu_time_total / 1e3 / len(batches)
        total[1] += 1 / len(batches)
    lines = [f"{'ms/step':>8} {'calls':>6}  {'op':<28} caller"]
    for (name, caller), (ms, calls) in sorted(totals.items(), key=lambda kv: -kv[1][0])[:rows]:
        lines.append(f"{ms:8.2f} {calls:6.1f}  {name:<28} {caller}")
    forward = sum(ms for ms, _ in totals.values())
    lines.append(f"top-level op time per forward: {forward:.2f} ms")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cluster-graphs", type=int, default=96)
    parser.add_argument("--mol-graphs", type=int, default=384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--root", default=os.environ.get("GRAPHFORMER_BENCH_ROOT", "/tmp/gf_bench"))
    parser.add_argument("--profile", choices=ROWS[:3], help="profile one row instead")
    parser.add_argument("--side", default="graphformer", choices=("graphformer", "peer"))
    parser.add_argument("--steps", type=int, default=6, help="profiled steps")
    parser.add_argument(
        "--by-caller",
        action="store_true",
        help="with --profile: the forward passes' top-level ops by the graphformer (or "
        "torch.nn) source line that called them, instead of the op table",
    )
    parser.add_argument("--json")
    parser.add_argument(
        "--fast-dropout",
        action="store_true",
        help="graphformer's opt-in fast dropout masks (GatedGCN, attention), as its recipes",
    )
    parser.add_argument(
        "--fused",
        action="store_true",
        help="graphformer's AdamW fused, as its recipes (conf/task/optimizer); the peer's not",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="graphformer's graph-free parts compiled (model.compile=true: "
        "graphformer.nn.compile.compile_model); the warm-up pass compiles",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [args.profile] if args.profile else args.rows.split(",")
    need_cluster = {"cluster_gps", "gatedgcn", "collate_cluster", "loader_cluster"} & set(rows)
    need_mol = {"zinc_gps", "collate_mol", "loader_mol"} & set(rows)
    cluster, classes, categories = (
        cluster_graphs(args.cluster_graphs, args.root) if need_cluster else ([], 0, 0)
    )
    mols = molecule_graphs(args.mol_graphs) if need_mol else []
    data = {
        "cluster_gps": (cluster, 16),
        "gatedgcn": (cluster, 16),
        "zinc_gps": (mols, 32),
        "collate_cluster": (cluster, 16),
        "collate_mol": (mols, 32),
        "loader_cluster": (cluster, 16),
        "loader_mol": (mols, 32),
    }
    setups = {}
    for row in rows:
        samples, size = data[row]
        if row.startswith("loader"):
            setups[row] = loader_setup(row, samples, size)
            continue
        if row.startswith("collate"):
            setups[row] = {
                "graphformer": batches_of(samples, size),
                "peer": batches_of(to_pyg(samples), size),
            }
            continue
        batches = [prepared(chunk) for chunk in batches_of(samples, size)]
        sides = {}
        for side in ("graphformer", "peer"):
            model = build(row, side, categories, classes, fast_dropout=args.fast_dropout)
            if args.compile and side == "graphformer":
                compile_model(model)
            fused = args.fused and side == "graphformer"
            opt = torch.optim.AdamW(
                model.parameters(), lr=1e-3, weight_decay=1e-5, fused=fused or None
            )
            train_pass(row, model, opt, batches[:2])  # warm-up
            sides[side] = (model, opt)
        setups[row] = {"batches": batches, "sides": sides}

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        row, setup = args.profile, setups[args.profile]
        model, opt = setup["sides"][args.side]
        steps = setup["batches"][: args.steps]
        if args.by_caller:
            print(by_caller(model, steps))
            return
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            wall = train_pass(row, model, opt, steps)
        events = prof.key_averages()
        top_level = sum(e.self_cpu_time_total for e in events) / 1e6
        print(f"{row} / {args.side}: {len(steps)} steps, wall {wall:.3f} s under the profiler")
        print(f"time inside profiled ops (self CPU): {top_level:.3f} s = {top_level / wall:.0%}")
        print(events.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=40))
        return

    clocks = ("wall", "cpu")
    times = {r: {c: {"graphformer": [], "peer": []} for c in clocks} for r in rows}
    for round_ in range(args.rounds):
        order = ("graphformer", "peer") if round_ % 2 == 0 else ("peer", "graphformer")
        for row in rows:
            for side in order:
                if row.startswith("loader"):
                    wall, cpu = timed(loader_pass, setups[row][side])
                elif row.startswith("collate"):
                    wall, cpu = timed(collate_pass, side, setups[row][side])
                else:
                    model, opt = setups[row]["sides"][side]
                    wall, cpu = timed(train_pass, row, model, opt, setups[row]["batches"])
                times[row]["wall"][side].append(wall)
                times[row]["cpu"][side].append(cpu)
        print(f"round {round_ + 1} done, load average {os.getloadavg()[0]:.1f}", flush=True)
    result = {"args": vars(args), "load": os.getloadavg(), "rows": {}}
    header = f"{'row':16s} {'clock':5s} {'peer':38s} {'ours s':>8s} {'peer s':>8s}"
    print(f"{header} {'ratio':>6s}  per round")
    for row in rows:
        result["rows"][row] = {}
        for clock in clocks:
            ours, peer = times[row][clock]["graphformer"], times[row][clock]["peer"]
            ratio = statistics.median(ours) / statistics.median(peer)
            per_round = [a / b for a, b in zip(ours, peer, strict=True)]
            result["rows"][row][clock] = {
                "ours": ours,
                "peer": peer,
                "ratio": ratio,
                "per_round": per_round,
            }
            print(
                f"{row:16s} {clock:5s} {PEERS[row]:38s} {statistics.median(ours):8.3f} "
                f"{statistics.median(peer):8.3f} {ratio:6.2f}  "
                + " ".join(f"{r:.2f}" for r in per_round)
            )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=1)


if __name__ == "__main__":
    main()
