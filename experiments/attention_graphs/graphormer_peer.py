"""graphformer's Graphormer against DGL's own Graphormer modules, same CLUSTER data and loop.

The peer is DGL's ``GraphormerLayer`` stack with ``SpatialEncoder`` (shortest-path bias)
and ``DegreeEncoder`` (in + out degree embeddings) on padded batches; ours is
``GraphTransformer(BlockConfig(mixer="graphormer"), centrality_max_degree=...)``. Both take the
``model=graphormer`` settings (width 80, 8 heads, FFN 80, dropout 0.1, attention dropout
0.1, pre-norm, distances clipped at 20, degrees at 128), the same batches in the same
order, AdamW at a constant learning rate, class-weighted cross-entropy, and report the
validation Benchmarking-GNNs accuracy after each epoch.

    python experiments/attention_graphs/graphormer_peer.py --layers 12 --epochs 4 --lr 1e-3
"""

from __future__ import annotations

import argparse

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import SBMDataset
from graphformer.data.features.distances import WithDistances, compute_distances
from graphformer.nn import BlockConfig, GraphTransformer
from graphformer.tasks.metrics import BenchmarkAccuracy

import dgl
import torch
import torch.nn.functional as F
from dgl.nn import DegreeEncoder, GraphormerLayer, SpatialEncoder
from torch import nn


class DGLGraphormer(nn.Module):
    """Embedding + degrees → GraphormerLayer × L (spatial bias each layer) → norm → head."""

    def __init__(self, layers: int, dim: int = 80, heads: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, dim)
        self.degree = DegreeEncoder(128, dim)
        self.spatial = nn.ModuleList(SpatialEncoder(20, heads) for _ in range(layers))
        self.layers = nn.ModuleList(
            GraphormerLayer(dim, dim, heads, norm_first=True, activation=nn.GELU())
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 6))

    def forward(self, feat, degrees, distances, mask):
        h = self.embed(feat) + self.degree(degrees)
        for spatial, layer in zip(self.spatial, self.layers, strict=True):
            h = layer(h, attn_bias=spatial(distances), attn_mask=mask)
        return self.head(self.norm(h))


def padded(batch: list[dgl.DGLGraph], distances: list[torch.Tensor]) -> dict:
    """Per-sample tensors padded to the longest sample (DGL's gt modules take these)."""
    longest = max(g.num_nodes() for g in batch)
    size = (len(batch), longest)
    feat = torch.zeros(size, dtype=torch.long)
    degrees = torch.zeros((2, *size), dtype=torch.long)
    dist = torch.full((*size, longest), -1, dtype=torch.long)
    valid = torch.zeros(size, dtype=torch.bool)
    for b, (graph, d) in enumerate(zip(batch, distances, strict=True)):
        n = graph.num_nodes()
        feat[b, :n], valid[b, :n] = graph.ndata["feat"], True
        degrees[0, b, :n], degrees[1, b, :n] = graph.in_degrees(), graph.out_degrees()
        dist[b, :n, :n] = d[:n, :n]
    mask = ~(valid[:, :, None] & valid[:, None, :])  # True = not allowed
    mask &= ~(torch.eye(longest, dtype=torch.bool)[None] & ~valid[:, :, None])  # finite rows
    return {"feat": feat, "degrees": degrees, "distances": dist, "mask": mask, "valid": valid}


def weighted_loss(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    counts = torch.bincount(label, minlength=6).float()
    weight = (len(label) - counts) / len(label) * (counts > 0)
    return F.cross_entropy(logits, label, weight=weight)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train", type=int, default=256)
    parser.add_argument("--val", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data", default="data/sbm", help="where SBMDataset caches graphs")
    args = parser.parse_args()
    torch.set_num_threads(2)
    splits = {}
    for split, count in (("train", args.train), ("val", args.val)):
        dataset = SBMDataset(name="CLUSTER", split=split, num_graphs=count, seed=0, root=args.data)
        graphs = [dataset[i] for i in range(len(dataset))]
        with_spd = WithDistances(graphs, compute_distances(graphs))
        graphs = [with_spd[i] for i in range(len(graphs))]
        batches = [graphs[i : i + args.batch_size] for i in range(0, len(graphs), args.batch_size)]
        splits[split] = [(dgl.batch(b), padded(b, [g.ndata["spd"] for g in b])) for b in batches]
    torch.manual_seed(0)
    block = BlockConfig(
        dim=80, mixer="graphormer", num_heads=8, ffn_ratio=1.0, dropout=0.1, attn_dropout=0.1,
        global_kwargs={"max_distance": 20},
    )  # fmt: skip
    ours = GraphTransformer(
        6, block, num_layers=args.layers, num_categories=7, centrality_max_degree=128
    )
    torch.manual_seed(0)
    peer = DGLGraphormer(args.layers)
    models = {"graphformer": ours, "dgl": peer}
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=args.lr) for name, m in models.items()}

    def logits(name: str, graph: dgl.DGLGraph, dense: dict) -> torch.Tensor:
        if name == "graphformer":
            return ours(graph, graph.ndata["feat"])
        out = peer(dense["feat"], dense["degrees"], dense["distances"], dense["mask"])
        return out[dense["valid"]]

    for epoch in range(args.epochs):
        for graph, dense in splits["train"]:
            for name, model in models.items():
                model.train()
                loss = weighted_loss(logits(name, graph, dense), graph.ndata["label"])
                optimizers[name].zero_grad()
                loss.backward()
                optimizers[name].step()
        line = [f"epoch {epoch}"]
        for name, model in models.items():
            model.eval()
            metric = BenchmarkAccuracy(6)
            with torch.no_grad():
                for graph, dense in splits["val"]:
                    metric.update(logits(name, graph, dense).argmax(-1), graph.ndata["label"])
            line.append(f"{name} val bench_acc {100 * float(metric.compute()):.1f} %")
        print(", ".join(line), flush=True)


if __name__ == "__main__":
    main()
