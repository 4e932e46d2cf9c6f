"""Interatomic distances as an attention bias (graphformer/nn/layers/distance_bias.py): the
Gaussian RBF bias, the ``graphormer_3d`` mixer against a dense per-sample reference,
invariance under rigid motions, the data handshake for a field the dataset provides, and
a model trained a few steps on generated 3D samples.

The registry-driven tests (tests/nn/test_config_mixers.py, test_engines.py,
test_block_model.py) run the engine, equivariance, gradient and empty-sample checks on
``graphformer_3d`` too, with stand-in coordinates from ``helpers.with_needs``.
"""

from __future__ import annotations

import copy
import math

import graphformer  # noqa: F401  (before DGL)
from graphformer.data import GraphDataModule
from graphformer.data.field_cache import check_provided
from graphformer.data.info import DatasetInfo
from graphformer.fields import FIELDS, POSITION, VIRTUAL, get_field
from graphformer.graphs import add_virtual_nodes
from graphformer.nn import (
    BlockConfig,
    GaussianDistanceBias,
    Graphormer3DAttention,
    GraphTransformer,
)
from graphformer.nn.layers.distance_bias import SIGMA_EPS, edge_distances
from graphformer.nn.mixers import REGISTRY, build

import dgl
import pytest
import torch
from helpers import (
    assert_close,
    dense_edge_tensor,
    dense_sample_attention,
    offsets,
    random_graph,
    randomize_biases,
    within_sample_permutation,
)
from omegaconf import OmegaConf

SIZES = [5, 1, 7, 3]
EMBED, HEADS = 8, 2


def molecule_batch(sizes=SIZES, seed: int = 0) -> dgl.DGLGraph:
    """Random bonds and random coordinates (Å, spread ~1.5) per sample."""
    graph = random_graph(sizes, p=0.4, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    graph.ndata[POSITION] = 1.5 * torch.randn(graph.num_nodes(), 3, generator=gen)
    return graph


def mixer_3d(engine: str = "auto", seed: int = 0, **kwargs) -> Graphormer3DAttention:
    """A graphormer_3d mixer with random biases, its distance MLP large enough to matter."""
    torch.manual_seed(seed)
    mixer = randomize_biases(Graphormer3DAttention(EMBED, HEADS, engine=engine, **kwargs))
    with torch.no_grad():
        for layer in (mixer.distance_bias.mlp[0], mixer.distance_bias.mlp[2]):
            layer.weight.mul_(4.0)
    return mixer.eval()


def dense_rbf_bias(module: GaussianDistanceBias, positions: torch.Tensor) -> torch.Tensor:
    """(n, n, H) from one sample's coordinates, plain torch: cdist, Gaussians, MLP."""
    distance = torch.cdist(positions.double(), positions.double()).to(positions.dtype)
    width = module.widths.abs() + SIGMA_EPS
    rbf = torch.exp(-0.5 * ((distance[..., None] - module.centres) / width) ** 2)
    first, second = module.mlp[0], module.mlp[2]
    hidden = torch.nn.functional.gelu(rbf @ first.weight.T + first.bias)
    return hidden @ second.weight.T + second.bias


def dense_reference(mixer: Graphormer3DAttention, x, positions, sizes) -> torch.Tensor:
    """Per sample: softmax(Q Kᵀ/√d + B(cdist(P, P))) V, then the output projection."""
    layer = mixer.attention
    shape = (-1, layer.num_heads, layer.head_dim)
    q = layer.q_proj(x).view(shape) / math.sqrt(layer.head_dim)
    k, v = layer.k_proj(x).view(shape), layer.v_proj(x).view(shape)
    n = len(x)
    bias = x.new_zeros(n, n, layer.num_heads)
    for start, size in zip(offsets(sizes).tolist(), sizes, strict=True):
        rows = slice(start, start + size)
        bias[rows, rows] = dense_rbf_bias(mixer.distance_bias, positions[rows])
    out = dense_sample_attention(q, k, v, sizes, bias)
    return layer.out_proj(out.reshape(n, -1))


# --- the Gaussian bias ------------------------------------------------------------------------


def test_gaussian_bias_equals_its_formula_and_has_the_documented_start():
    module = GaussianDistanceBias(num_heads=3, num_kernels=5, cutoff=4.0)
    assert torch.allclose(module.centres, torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]))
    assert torch.allclose(module.widths, torch.full((5,), 1.0))
    distance = torch.tensor([0.0, 1.0, 2.5, 9.0])
    rbf = module.expand(distance)
    assert rbf.shape == (4, 5)
    assert rbf[1, 1] == 1.0 and rbf[0, 0] == 1.0, "a centre's own distance gives exp(0)"
    expected = math.exp(-0.5 * (1.5 / (1.0 + SIGMA_EPS)) ** 2)
    assert rbf[2, 1].item() == pytest.approx(expected, rel=1e-6)
    positions = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 2.5, 0], [9.0, 0, 0]])
    reference = dense_rbf_bias(module, positions)[0]  # distances from atom 0
    assert_close("gaussian bias vs dense formula", module(distance), reference, atol=1e-6)
    assert {n for n, _ in module.named_parameters()} >= {"centres", "widths"}


def test_fixed_centres_are_buffers_not_parameters():
    module = GaussianDistanceBias(num_heads=2, num_kernels=4, learn_centres=False)
    names = {n for n, _ in module.named_parameters()}
    assert "centres" not in names and "widths" not in names
    assert "centres" in dict(module.named_buffers())


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"num_kernels": 0}, r"num_kernels must be a positive int; got 0"),
        ({"cutoff": 0.0}, r"cutoff must be a positive distance in Å; got 0.0"),
        ({"cutoff": "8"}, r"cutoff must be a positive distance in Å; got '8'"),
        ({"learn_centres": "yes"}, r"learn_centres must be True or False; got 'yes'"),
    ],
)
def test_gaussian_bias_refuses_bad_settings(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        GaussianDistanceBias(num_heads=2, **kwargs)


def test_edge_distances_use_every_edge_of_the_graph():
    graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    positions = torch.tensor([[0.0, 0, 0], [3.0, 4, 0], [3.0, 4, 12]])
    assert edge_distances(graph, positions).tolist() == [5.0, 12.0, 13.0]


# --- the mixer against a dense reference --------------------------------------------------------


@pytest.mark.parametrize("engine", ["auto", "dgl", "dense", "torch"])
def test_graphormer_3d_equals_a_dense_per_sample_reference(engine):
    """softmax(q kᵀ/√d + MLP(RBF(‖p_i − p_j‖))) v per sample, then out_proj; samples of 5,
    1, 7 and 3 atoms, every engine."""
    batch = molecule_batch()
    mixer = mixer_3d(engine)
    x = torch.randn(batch.num_nodes(), EMBED)
    state = torch.randn(batch.num_edges(), 4)

    out, edge_state = mixer(batch, x, state)

    reference = dense_reference(mixer, x, batch.ndata[POSITION], SIZES)
    assert_close(f"graphormer_3d ({engine}) vs dense reference", out, reference, atol=2e-6)
    assert edge_state is state, "edge state passes through"
    no_bias = dense_sample_attention(
        *(
            proj(x).view(-1, HEADS, EMBED // HEADS) / (math.sqrt(EMBED // HEADS) if i == 0 else 1)
            for i, proj in enumerate(
                (mixer.attention.q_proj, mixer.attention.k_proj, mixer.attention.v_proj)
            )
        ),
        SIZES,
    )
    plain = mixer.attention.out_proj(no_bias.reshape(len(x), -1))
    assert not torch.allclose(out, plain, atol=1e-3), "the distance bias had no effect"


def test_the_bias_on_the_complete_graph_equals_the_dense_matrix():
    batch = molecule_batch()
    mixer = mixer_3d()
    from graphformer.graphs import complete_graph

    full = complete_graph(batch)
    bias = mixer.distance_bias(edge_distances(full, batch.ndata[POSITION]))
    dense = dense_edge_tensor(full, bias)
    for start, size in zip(offsets(SIZES).tolist(), SIZES, strict=True):
        rows = slice(start, start + size)
        expected = dense_rbf_bias(mixer.distance_bias, batch.ndata[POSITION][rows])
        assert_close("3D bias vs cdist reference", dense[rows, rows], expected, atol=1e-5)


def test_gradcheck_graphormer_3d_float64_through_features_and_positions():
    batch = molecule_batch(sizes=[4, 1, 3])
    mixer = mixer_3d("dgl").double()
    x = torch.randn(batch.num_nodes(), EMBED, dtype=torch.float64, requires_grad=True)
    positions = batch.ndata[POSITION].double().requires_grad_()

    def run(x, positions):
        graph = batch.local_var()
        graph.ndata[POSITION] = positions
        return mixer(graph, x)[0]

    assert torch.autograd.gradcheck(run, (x, positions))
    out = run(x, positions)
    out.sum().backward()
    assert mixer.distance_bias.centres.grad.abs().sum() > 0, "the centres learn"
    assert mixer.distance_bias.widths.grad.abs().sum() > 0, "the widths learn"


# --- invariance: the 3D idea -------------------------------------------------------------------


def random_rotation(seed: int) -> torch.Tensor:
    """A random 3 × 3 orthogonal matrix with determinant +1."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed)))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


@pytest.mark.parametrize("engine", ["dgl", "dense"])
def test_outputs_are_invariant_under_rotations_translations_and_reflections(engine):
    """Each sample moved by its own rigid motion: the outputs do not change."""
    batch = molecule_batch()
    mixer = mixer_3d(engine)
    x = torch.randn(batch.num_nodes(), EMBED)
    out = mixer(batch, x)[0]
    moved = batch.local_var()
    positions = batch.ndata[POSITION].clone()
    for i, (start, size) in enumerate(zip(offsets(SIZES).tolist(), SIZES, strict=True)):
        rotation = random_rotation(i)
        if i == 2:
            rotation = rotation * torch.tensor([1.0, 1.0, -1.0])  # a reflection too
        shift = torch.randn(3, generator=torch.Generator().manual_seed(10 + i)) * 5
        positions[start : start + size] = positions[start : start + size] @ rotation.T + shift
    moved.ndata[POSITION] = positions
    assert_close(f"graphormer_3d ({engine}) after rigid motions", mixer(moved, x)[0], out, 2e-5)
    # ... but not under a deformation: the coordinates matter.
    stretched = batch.local_var()
    stretched.ndata[POSITION] = batch.ndata[POSITION] * torch.tensor([2.0, 1.0, 1.0])
    assert not torch.allclose(mixer(stretched, x)[0], out, atol=1e-3)


def test_relabelling_atoms_relabels_outputs():
    batch = molecule_batch()
    mixer = mixer_3d()
    x = torch.randn(batch.num_nodes(), EMBED)
    perm = within_sample_permutation(SIZES, seed=3)
    src, dst = batch.edges()
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    permuted = dgl.graph((inverse[src], inverse[dst]), num_nodes=batch.num_nodes())
    permuted.set_batch_num_nodes(batch.batch_num_nodes())
    permuted.ndata[POSITION] = batch.ndata[POSITION][perm]
    assert_close("graphormer_3d permuted", mixer(permuted, x[perm])[0], mixer(batch, x)[0][perm])


def test_samples_do_not_see_each_other():
    """Moving one sample's atoms leaves the other samples' outputs unchanged."""
    batch = molecule_batch()
    mixer = mixer_3d()
    x = torch.randn(batch.num_nodes(), EMBED)
    out = mixer(batch, x)[0]
    other = batch.local_var()
    positions = batch.ndata[POSITION].clone()
    positions[:5] = torch.randn(5, 3) * 3  # sample 0
    other.ndata[POSITION] = positions
    out_other = mixer(other, x)[0]
    assert torch.equal(out_other[5:], out[5:])
    assert not torch.allclose(out_other[:5], out[:5], atol=1e-3)


# --- errors ----------------------------------------------------------------------------------


def test_missing_positions_name_the_field_and_the_data_that_provides_them():
    graph = random_graph([3, 2], seed=0)
    with pytest.raises(ValueError, match=r"graph.ndata\['pos'\] \(3D atom coordinates in Å\).*"):
        mixer_3d()(graph, torch.randn(5, EMBED))
    with pytest.raises(ValueError, match=r"has only ndata keys \[\].*data=qm9"):
        mixer_3d()(graph, torch.randn(5, EMBED))


@pytest.mark.parametrize(
    ("positions", "pattern"),
    [
        (torch.zeros(5, 2), r"must have shape \(5, 3\) = \(number of nodes, xyz\); got \(5, 2\)"),
        (torch.zeros(5, 3, dtype=torch.long), r"must hold floating 3D coordinates.*torch.int64"),
        (torch.tensor([[0.0, 0, 0]] * 3 + [[float("nan"), 0, 0]] * 2), r"NaN/inf.*\[3, 4\]"),
    ],
)
def test_bad_positions_are_refused(positions, pattern):
    graph = random_graph([3, 2], seed=0)
    graph.ndata[POSITION] = positions
    with pytest.raises(ValueError, match=pattern):
        mixer_3d()(graph, torch.randn(5, EMBED))


def test_virtual_nodes_are_refused():
    graph = molecule_batch([3, 2])
    with_virtual = add_virtual_nodes(graph, 1)
    assert VIRTUAL in with_virtual.ndata
    with pytest.raises(ValueError, match=r"virtual nodes .* no 3D coordinates"):
        mixer_3d()(with_virtual, torch.randn(with_virtual.num_nodes(), EMBED))


# --- the data handshake: a field the dataset provides ---------------------------------------


def test_positions_are_a_provided_field():
    field = get_field(POSITION)
    assert FIELDS[POSITION] is field and field.provided and not field.pairwise
    assert "data=qm9" in field.provided_by
    assert Graphormer3DAttention.needs == (POSITION,)
    graph = molecule_batch([3])
    assert torch.equal(field(graph), graph.ndata[POSITION])


class Tiny3DDataset:
    """Generated 'molecules': random bonds, random coordinates, a graph-level target that
    depends on the geometry only (the mean interatomic distance)."""

    info = DatasetInfo(level="graph", task="regression", out_dim=1, num_categories=4)

    def __init__(self, split: str, num_graphs: int = 24, with_positions: bool = True, root=None):
        seed = {"train": 0, "val": 1, "test": 2}[split]
        if root is not None:  # where the data module caches encodings and fields
            self.cache_path = root / f"tiny3d_{split}.bin"
        gen = torch.Generator().manual_seed(seed)
        self.samples = []
        for i in range(num_graphs):
            n = 3 + i % 5
            graph = dgl.to_bidirected(dgl.graph((torch.arange(n - 1), torch.arange(1, n))))
            graph.ndata["feat"] = torch.randint(0, 4, (n,), generator=gen)
            positions = torch.randn(n, 3, generator=gen) * (1 + i % 3)
            if with_positions:
                graph.ndata[POSITION] = positions
            target = torch.cdist(positions, positions).mean().view(1)
            self.samples.append((graph, target))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        return self.samples[index]


def test_the_data_module_checks_provided_positions_and_does_not_cache_them(tmp_path):
    def factory(split, **kwargs):
        return Tiny3DDataset(split, root=tmp_path, **kwargs)

    data = GraphDataModule(factory, batch_size=8, fields=(POSITION,), name="tiny3d")
    data.setup("fit")
    graph, _ = next(iter(data.val_dataloader()))  # in order
    assert graph.ndata[POSITION].shape == (graph.num_nodes(), 3)
    expected = torch.cat([g.ndata[POSITION] for g, _ in Tiny3DDataset("val").samples[:8]])
    assert torch.equal(graph.ndata[POSITION], expected), "the dataset's own coordinates"
    assert not list(tmp_path.iterdir()), "provided fields are not cached"
    data = GraphDataModule(factory, batch_size=8, fields=("spd", POSITION), name="tiny3d")
    data.setup("fit")
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert cached == ["tiny3d_train.spd.bin", "tiny3d_val.spd.bin"], "computed ones are"

    def without(split, **kwargs):
        return Tiny3DDataset(split, with_positions=False, **kwargs)

    data = GraphDataModule(without, batch_size=8, fields=(POSITION,), name="tiny3d")
    with pytest.raises(
        ValueError, match=r"graph.ndata\['pos'\].*graph 0 of tiny3d \(train\).*data=qm9 stores"
    ):
        data.setup("fit")


def test_check_provided_names_the_first_graph_without_the_field():
    graphs = [molecule_batch([3]), random_graph([2], seed=1)]
    with pytest.raises(ValueError, match=r"graph 1 of my data has only ndata keys \[\]"):
        check_provided(POSITION, graphs, "my data")


# --- a model with it, trained a few steps ------------------------------------------------------


def test_a_3d_model_from_its_config_trains_on_generated_3d_samples():
    """model=transformer_3d (conf/model/transformer_3d.yaml) composed as graphformer-train
    does, then the datamodule built with the model's needs, a few optimiser steps on a
    geometry-only target: the loss falls and the rotated copy of a batch gives the same
    predictions."""
    from graphformer.cli import build as cli_build

    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module("graphformer.conf", version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "model=transformer_3d",
                "model.num_layers=2",
                "model.block.dim=16",
                "model.block.num_heads=2",
                "model.lap_pe_k=0",
                "model.rwse_k=0",
                "model.level=graph",
                "model.out_dim=1",
                "model.num_categories=4",
                "model.in_dim=null",
            ],
        )
    assert cfg.model.block.mixer == "graphormer_3d"
    torch.manual_seed(0)
    model = cli_build.model(cfg)
    assert model.needs == (POSITION,)
    data = GraphDataModule(
        lambda split, **kw: Tiny3DDataset(split, **kw), batch_size=8, fields=model.needs
    )
    data.setup("fit")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    model.train()
    for _ in range(6):
        for graph, target in data.train_dataloader():
            loss = torch.nn.functional.mse_loss(model(graph, graph.ndata["feat"]), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert losses[-3:] and sum(losses[-3:]) < sum(losses[:3]), losses
    model.eval()
    graph, _ = next(iter(data.val_dataloader()))
    rotated = graph.local_var()
    rotated.ndata[POSITION] = graph.ndata[POSITION] @ random_rotation(0).T + 3.0
    with torch.no_grad():
        assert_close(
            "3D model under a rotation",
            model(rotated, graph.ndata["feat"]),
            model(graph, graph.ndata["feat"]),
            atol=1e-4,
        )


def test_the_model_config_and_registry_entry():
    conf = OmegaConf.load("conf/model/transformer_3d.yaml")
    assert conf.block.mixer == "graphormer_3d"
    assert REGISTRY["graphormer_3d"] is Graphormer3DAttention
    config = BlockConfig(
        dim=8, num_heads=2, mixer="graphormer_3d", global_kwargs={"num_kernels": 6}
    )
    mixer = build("graphormer_3d", config)
    assert mixer.distance_bias.num_kernels == 6
    with pytest.raises(ValueError, match=r"\['sigma'\] are not settings of 'graphormer_3d'"):
        BlockConfig(mixer="graphormer_3d", global_kwargs={"sigma": 1.0})
    model = GraphTransformer(3, BlockConfig(dim=8, num_heads=2, mixer="graphormer_3d"), 1, in_dim=4)
    assert model.needs == (POSITION,)
    with pytest.raises(ValueError, match=r"ndata\['pos'\].*model's input graph.*data=qm9"):
        model(random_graph([3]), torch.randn(3, 4))
    copy.deepcopy(model)  # picklable parts, no graph caches held


def test_a_gps_block_takes_it_as_its_global_mixer():
    """GCN locally (the model adds self-loops, which keep ndata['pos']) + graphormer_3d
    globally: still invariant under a rigid motion of the coordinates."""
    torch.manual_seed(0)
    config = BlockConfig(
        dim=8, num_heads=2, mixer="gps", local_mixer="gcn", global_mixer="graphormer_3d"
    )
    model = GraphTransformer(2, config, 2, in_dim=4, level="graph").eval()
    assert model.needs == (POSITION,)
    graph = molecule_batch()
    x = torch.randn(graph.num_nodes(), 4)
    moved = graph.local_var()
    moved.ndata[POSITION] = graph.ndata[POSITION] @ random_rotation(3).T - 2.0
    with torch.no_grad():
        assert_close("gps + graphormer_3d under a rotation", model(moved, x), model(graph, x))
