"""The "import our blocks" use case: a user's own LightningModule built from graphformer.nn."""

from __future__ import annotations

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import to_device
from graphformer.nn import GCNConv, GraphTransformerBlock, Readout

import dgl
import lightning as L
import torch
from dgl.dataloading import GraphDataLoader
from torch import nn


class MyGraphRegressor(L.LightningModule):
    """What a researcher writes: our blocks, their loop."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.embed = nn.Linear(1, dim)
        self.conv = GCNConv(dim, dim)
        self.block = GraphTransformerBlock(dim, mixer="gps", num_heads=4)
        self.readout = Readout("mean")
        self.head = nn.Linear(dim, 1)

    def forward(self, graph):
        h = self.embed(graph.in_degrees().float().unsqueeze(1))
        h = self.block(graph, torch.relu(self.conv(graph, h)))
        return self.head(self.readout(graph, h)).squeeze(1)

    def training_step(self, batch, batch_idx):
        graph, target = batch
        loss = nn.functional.mse_loss(self(graph), target)
        self.log("loss", loss)
        return loss

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        graph, target = batch
        return to_device(graph, device), target.to(device)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def test_user_lightning_module_trains_with_graphformer_blocks(tmp_path):
    torch.manual_seed(0)
    graphs = [dgl.rand_graph(n, 3 * n) for n in torch.randint(5, 15, (64,)).tolist()]
    data = [(g, torch.tensor(g.num_edges() / g.num_nodes())) for g in graphs]
    loader = GraphDataLoader(data, batch_size=16, shuffle=True)
    module = MyGraphRegressor()
    before = [p.detach().clone() for p in module.parameters()]
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, loader)
    assert trainer.global_step == 12
    assert torch.isfinite(trainer.callback_metrics["loss"])
    changed = [not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True)]
    assert all(changed)
