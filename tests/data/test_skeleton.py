"""Skeleton graphs: topology, pose generator and camera, MPJPE, the Human3.6M loader, configs."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import graphformer  # noqa: F401  (before DGL)
from graphformer.cli.train import train
from graphformer.data import GraphDataModule, H36MDataset, SkeletonDataset, kinematics, load_h36m
from graphformer.data.datasets import skeleton as skeleton_module
from graphformer.data.datasets.h36m import H36M_KEPT_JOINTS
from graphformer.data.datasets.skeleton import generate_poses, sample_poses
from graphformer.data.kinematics import (
    BODY_TO_CAMERA,
    NUM_JOINTS,
    PARENTS,
    Camera,
    normalize_keypoints,
    project,
    skeleton_graph,
)
from graphformer.nn import GNN
from graphformer.nn.models.gnn import GNN_BLOCK
from graphformer.tasks import MPJPE, PoseLifting

import dgl
import numpy as np
import pytest
import torch
from training import compose_config


@pytest.fixture(autouse=True)
def dgl_home(tmp_path, monkeypatch):
    """Keep DGL's default download dir inside the test's tmp dir."""
    monkeypatch.setenv("DGL_DOWNLOAD_DIR", str(tmp_path / "dgl-home"))


# --- topology -------------------------------------------------------------------------------


def test_skeleton_is_a_connected_tree_with_bones_both_ways():
    graph = skeleton_graph()
    src, dst = (t.numpy() for t in graph.edges())
    assert graph.num_nodes() == NUM_JOINTS == 17
    assert graph.num_edges() == 32 and (src != dst).all()
    pairs = {(int(a), int(b)) for a, b in zip(src, dst, strict=True)}
    assert all((b, a) in pairs for a, b in pairs)
    undirected = {tuple(sorted(pair)) for pair in pairs}
    assert len(undirected) == 16 == NUM_JOINTS - 1
    assert undirected == {tuple(sorted((j, p))) for j, p in enumerate(PARENTS) if p >= 0}
    reached, frontier = {0}, [0]
    while frontier:
        node = frontier.pop()
        for a, b in pairs:
            if a == node and b not in reached:
                reached.add(b)
                frontier.append(b)
    assert reached == set(range(17))  # connected with n - 1 edges: a tree


# --- generator and camera -------------------------------------------------------------------


def test_generated_bones_have_the_chains_lengths_and_the_root_is_the_origin():
    poses = sample_poses(np.random.default_rng(0), 300)
    parent, child = kinematics.bones()
    bone = np.linalg.norm(poses.joints[:, child] - poses.joints[:, parent], axis=-1)
    np.testing.assert_allclose(bone, poses.lengths[:, child], rtol=1e-10)
    np.testing.assert_array_equal(poses.joints[:, 0], 0.0)
    reach = np.linalg.norm(poses.joints, axis=-1).max()
    assert 500 < reach < 1500  # mm: a human, not a giant
    assert np.isclose(np.linalg.det(BODY_TO_CAMERA), 1.0)  # a rotation: no mirror images


def test_projecting_the_targets_with_the_sampled_camera_gives_the_inputs():
    poses = generate_poses("val", 40, seed=5)
    np.testing.assert_allclose(project(poses.joints, poses.camera), poses.keypoints)
    c = poses.camera
    absolute = poses.joints[3, 7] + c.translation[3]
    u = c.focal[3] * absolute[:2] / absolute[2] + c.center[3]
    np.testing.assert_allclose(poses.keypoints[3, 7], u)
    assert ((poses.keypoints > 0) & (poses.keypoints < skeleton_module.IMAGE_SIZE)).all()
    expected = (poses.keypoints - poses.keypoints[:, :1]) / (skeleton_module.IMAGE_SIZE / 2)
    np.testing.assert_allclose(poses.feat, expected)

    graphs = kinematics.pose_graphs(poses.feat, poses.joints)
    assert torch.equal(graphs[3].ndata["feat"], torch.tensor(poses.feat[3], dtype=torch.float32))


def test_projection_rejects_points_behind_the_camera():
    camera = Camera(np.array([1000.0]), np.array([[500.0, 500.0]]), np.array([[0.0, 0.0, 10.0]]))
    with pytest.raises(ValueError, match="behind the camera"):
        project(np.array([[[0.0, 0.0, -20.0]]]), camera)


def test_generator_is_deterministic_per_seed_and_differs_across_seeds_and_splits():
    first, again = generate_poses("train", 50, 0), generate_poses("train", 50, 0)
    np.testing.assert_array_equal(first.joints, again.joints)
    np.testing.assert_array_equal(first.keypoints, again.keypoints)
    assert not np.allclose(first.joints, generate_poses("train", 50, 1).joints)
    assert not np.allclose(first.joints, generate_poses("val", 50, 0).joints)
    longer = generate_poses("train", skeleton_module.BLOCK + 10, 0)  # a longer split extends
    np.testing.assert_array_equal(longer.joints[:50], first.joints)


# --- the dataset ----------------------------------------------------------------------------


def test_dataset_items_and_cache_reuse(tmp_path, monkeypatch):
    dataset = SkeletonDataset("test", num_graphs=30, seed=2, root=tmp_path)
    assert len(dataset) == 30 and dataset.cache_path.is_file()
    graph = dataset[4]
    assert graph.num_nodes() == 17 and graph.num_edges() == 32
    assert graph.ndata["feat"].shape == (17, 2) and graph.ndata["feat"].dtype == torch.float32
    assert graph.ndata["label"].shape == (17, 3) and graph.ndata["label"].dtype == torch.float32
    np.testing.assert_allclose(
        graph.ndata["label"].numpy(), generate_poses("test", 30, 2).joints[4], rtol=1e-6
    )

    def fail(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(skeleton_module, "generate_poses", fail)
    cached = SkeletonDataset("test", num_graphs=30, seed=2, root=tmp_path)
    assert torch.equal(cached[4].ndata["feat"], graph.ndata["feat"])


def test_datamodule_accepts_the_declared_metadata(tmp_path):
    data = GraphDataModule(
        functools.partial(SkeletonDataset, root=tmp_path),
        batch_size=8,
        train_graphs=16,
        val_graphs=8,
        test_graphs=8,
        level="node",
        out_dim=3,
        in_dim=2,
        num_categories=None,
        edge_in_dim=None,
        edge_categories=None,
    )
    data.prepare_data()
    data.setup("fit")
    graph, labels = next(iter(data.train_dataloader()))
    assert graph.batch_size == 8 and labels.shape == (8 * 17, 3)
    with pytest.raises(ValueError, match="out_dim"):
        GraphDataModule(
            functools.partial(SkeletonDataset, root=tmp_path),
            out_dim=2,
            batch_size=8,
            train_graphs=16,
        ).split_dataset("train")


# --- MPJPE and the task ---------------------------------------------------------------------


def test_mpjpe_equals_a_hand_computed_value():
    preds = torch.tensor([[3.0, 4.0, 0.0], [1.0, 1.0, 3.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    metric = MPJPE()
    metric.update(preds[:2], target[:2])  # distances 5 and 2
    metric.update(preds[2:], target[2:])  # distance 0
    assert metric.compute().item() == pytest.approx(7.0 / 3.0)
    with pytest.raises(ValueError, match="same shape"):
        metric.update(preds, target[:2])


def test_pose_lifting_scales_outputs_and_uses_mpjpe(tmp_path):
    model = GNN(3, 2, GNN_BLOCK.replace(dim=8, dropout=0.0, attn_dropout=0.0), head_layers=1)
    task = PoseLifting(model, functools.partial(torch.optim.Adam), output_scale=1000.0)
    assert task.hparams.loss == "mpjpe" and set(task.metrics()) == {"mpjpe", "mae"}
    graph = dgl.batch(kinematics.pose_graphs(np.zeros((2, 17, 2)), np.ones((2, 17, 3))))
    out = task(graph)
    assert torch.allclose(out, 1000.0 * model(graph, graph.ndata["feat"]))
    target = graph.ndata["label"]
    expected = torch.linalg.vector_norm(out - target, dim=-1).mean()
    assert torch.allclose(task.loss(out, target), expected)
    with pytest.raises(ValueError, match="pose-lifting loss"):
        PoseLifting(model, functools.partial(torch.optim.Adam), loss="huber")


def test_gnn_head_layers_adds_an_mlp_head_at_node_level():
    graph = skeleton_graph()
    x = torch.randn(17, 2)
    plain = GNN(3, 2, GNN_BLOCK.replace(dim=8), num_layers=2)
    assert plain.head is None and plain.convs[-1].out_dim == 3
    headed = GNN(
        3, 2, GNN_BLOCK.replace(dim=8, dropout=0.0, attn_dropout=0.0), num_layers=2, head_layers=2
    )
    assert headed.convs[-1].out_dim == 8
    assert sum(isinstance(m, torch.nn.Linear) for m in headed.head) == 2
    assert headed(graph, x).shape == (17, 3)
    graph_level = GNN(3, 2, GNN_BLOCK.replace(dim=8), level="graph")
    assert isinstance(graph_level.head, torch.nn.Linear)  # unchanged default
    with pytest.raises(ValueError, match="head_layers"):
        GNN(3, 2, head_layers=-1)


# --- Human3.6M in VideoPose3D's layout ------------------------------------------------------


def fake_h36m(root: Path, frames: int = 10) -> dict:
    """Tiny files in VideoPose3D's layout; frame t of subject s is filled with known values."""
    rng = np.random.default_rng(0)
    positions_3d, positions_2d = {}, {}
    for subject in ("S1", "S5", "S6", "S7", "S8", "S9", "S11"):
        world = rng.normal(size=(frames, 32, 3))
        positions_3d[subject] = {"Walking": world}
        cameras = [rng.uniform(0, 1000, size=(frames, 17, 2)) for _ in range(4)]
        cameras[3] = cameras[3][:-1]  # one camera a frame short, as in the real files
        positions_2d[subject] = {"Walking": cameras}
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "data_3d_h36m.npz", positions_3d=positions_3d)
    np.savez(root / "data_2d_h36m_gt.npz", positions_2d=positions_2d)
    return {"3d": positions_3d, "2d": positions_2d}


def test_h36m_loader_selects_joints_subjects_and_frames(tmp_path):
    fake = fake_h36m(tmp_path)
    feat, label = load_h36m(tmp_path, ["S9"])
    assert feat.shape == (10 + 10 + 10 + 9, 17, 2) and label.shape == (39, 17, 3)
    world = fake["3d"]["S9"]["Walking"][:, list(H36M_KEPT_JOINTS)]
    np.testing.assert_allclose(label[:10], (world - world[:, :1]) * 1000.0, rtol=1e-5)
    keypoints = fake["2d"]["S9"]["Walking"][1]
    np.testing.assert_allclose(feat[10:20], normalize_keypoints(keypoints, 1000), rtol=1e-5)
    removed = (4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31)  # VideoPose3D's list
    assert set(H36M_KEPT_JOINTS) == set(range(32)) - set(removed)

    sizes = {split: len(H36MDataset(split, root=tmp_path)) for split in ("train", "val", "test")}
    assert sizes == {"train": 4 * 39, "val": 39, "test": 2 * 39}
    sub = H36MDataset("val", root=tmp_path, frame_step=2)
    assert len(sub) == 5 + 5 + 5 + 5
    graph = sub[0]
    assert graph.num_nodes() == 17 and graph.ndata["label"].shape == (17, 3)
    data = GraphDataModule(
        functools.partial(H36MDataset, root=tmp_path),
        batch_size=4,
        level="node",
        out_dim=3,
        in_dim=2,
        num_categories=None,
        edge_in_dim=None,
        edge_categories=None,
    )
    data.prepare_data()
    graphs, labels = next(iter(data.test_dataloader()))
    assert graphs.batch_size == 4 and labels.shape == (4 * 17, 3)

    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    cameras = tmp_path / "cameras.json"
    cameras.write_text(json.dumps({"S9": [{"rotation": rotation.tolist()}] * 4}))
    _, rotated = load_h36m(tmp_path, ["S9"], cameras=cameras)
    np.testing.assert_allclose(rotated, label @ rotation.T.astype(np.float32), atol=1e-3)


def test_h36m_missing_files_fail_at_once_with_instructions(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        H36MDataset("train", root=tmp_path / "nowhere")
    message = str(error.value)
    assert "data_3d_h36m.npz" in message and "data_2d_h36m_gt.npz" in message
    assert str(tmp_path / "nowhere") in message and "VideoPose3D" in message


# --- experiment configs ---------------------------------------------------------------------


@pytest.mark.parametrize("experiment", ["skeleton_gcn", "skeleton_gt"])
def test_experiment_runs_a_fast_dev_run(experiment, tmp_path):
    overrides = [
        f"experiment={experiment}",
        "debug=fast_dev_run",
        "data.train_graphs=32",
        "data.val_graphs=16",
        "data.test_graphs=16",
        "data.batch_size=16",
        "callbacks.rich_progress_bar=null",
        "callbacks.model_summary=null",
    ]
    cfg = compose_config(overrides, tmp_path / "run", tmp_path / "data")
    assert cfg.optimized_metric == "val/mpjpe" and cfg.task._target_.endswith("PoseLifting")
    train(cfg)
