r"""The 17-joint Human3.6M skeleton: topology, forward kinematics, camera projection, the
input normalisation, and skeleton graphs from poses; shared by the synthetic
(:mod:`graphformer.data.datasets.skeleton`) and the real (:mod:`graphformer.data.datasets.h36m`)
pose-lifting datasets.

Skeleton graphs: 2D → 3D human pose lifting on the 17-joint Human3.6M skeleton.

Each sample is one 17-node graph whose edges are the bones (both directions, no
self-loops). ``ndata['feat']`` (17, 2) holds the 2D joints, ``ndata['label']`` (17, 3) the
root-relative 3D joints in millimetres in the camera frame.

**Input normalisation.** With pixel coordinates :math:`u_j` in an image of width
:math:`w`, the feature of joint j is

.. math::
    \mathrm{feat}_j = \frac{u_j - u_{\mathrm{root}}}{w / 2},

VideoPose3D's screen normalisation (:math:`2u/w - 1`) made root-relative. Centring makes
every node know its position relative to the pelvis (local message passing cannot find
the root by itself); dividing by a fixed image size rather than by the pose's own size
keeps the apparent size, a depth cue. The real-data loader uses the same formula.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphformer.data.info import DatasetInfo

import dgl
import numpy as np
import torch

JOINTS = (
    "hip",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "thorax",
    "neck",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)
#: Parent of each joint (-1 for the root); a parent always precedes its children.
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
NUM_JOINTS = len(JOINTS)
ROOT = 0

# Body frame (right-handed): x to the subject's right, y forward, z up. Bone p(j) → j at
# rest points along REST_DIRECTIONS[j] and is BONE_LENGTHS[j] mm long (close to Human3.6M's
# mean bone lengths).
_LEFT, _RIGHT, _UP, _DOWN = (-1.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, -1.0)
REST_DIRECTIONS = np.array(
    [
        (0.0, 0.0, 0.0),  # hip (root)
        _RIGHT,
        _DOWN,
        _DOWN,
        _LEFT,
        _DOWN,
        _DOWN,
        _UP,
        _UP,
        (0.0, 0.2 / np.hypot(1.0, 0.2), 1.0 / np.hypot(1.0, 0.2)),  # neck/nose, a bit forward
        _UP,
        _LEFT,
        _DOWN,
        _DOWN,
        _RIGHT,
        _DOWN,
        _DOWN,
    ]
)
BONE_LENGTHS = np.array(
    [0.0, 133.0, 443.0, 454.0, 133.0, 443.0, 454.0, 233.0, 257.0, 121.0, 115.0]  # legs, torso
    + [151.0, 279.0, 252.0] * 2  # shoulder, upper arm, forearm (left, right)
)
BODY_TO_CAMERA = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

#: The facts of a pose-lifting dataset: 2 continuous features and 3 regression targets per
#: node, no edge features.
POSE_INFO = DatasetInfo(level="node", task="regression", out_dim=3, in_dim=2)


# --- topology -------------------------------------------------------------------------------


def bones() -> tuple[np.ndarray, np.ndarray]:
    """The 16 bones as (parent, child) index arrays."""
    child = np.array([j for j, p in enumerate(PARENTS) if p >= 0])
    return np.array(PARENTS)[child], child


def skeleton_graph() -> dgl.DGLGraph:
    """The skeleton as a DGL graph: 17 nodes, the 16 bones in both directions (32 edges)."""
    parent, child = bones()
    src, dst = np.concatenate([parent, child]), np.concatenate([child, parent])
    return dgl.graph((torch.from_numpy(src), torch.from_numpy(dst)), num_nodes=NUM_JOINTS)


# --- geometry -------------------------------------------------------------------------------


def axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotations by ``angle`` (radians, any shape S) about axis 0 (x), 1 (y) or 2 (z): S × 3 × 3."""
    cos, sin = np.cos(angle), np.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    rotation = np.zeros((*np.shape(angle), 3, 3))
    rotation[..., axis, axis] = 1.0
    rotation[..., i, i], rotation[..., j, j] = cos, cos
    rotation[..., i, j], rotation[..., j, i] = -sin, sin
    return rotation


def euler_rotation(angles: np.ndarray) -> np.ndarray:
    r""":math:`R_x(a) R_y(b) R_z(c)` for ``angles`` (..., 3) = (a, b, c) in radians."""
    return (
        axis_rotation(0, angles[..., 0])
        @ axis_rotation(1, angles[..., 1])
        @ axis_rotation(2, angles[..., 2])
    )


def forward_kinematics(
    lengths: np.ndarray, local: np.ndarray, orientation: np.ndarray
) -> np.ndarray:
    r"""Joint positions (B, 17, 3) with the root at the origin.

    :math:`G_j = G_{p(j)} R_j`, :math:`P_j = P_{p(j)} + G_{p(j)} \ell_j d_j`, where
    ``lengths`` (B, 17) are the bone lengths :math:`\ell_j` (to each joint from its parent),
    ``local`` (B, 17, 3, 3) the local rotations :math:`R_j`, ``orientation`` (B, 3, 3) the
    root's global rotation :math:`G_{\mathrm{root}}` and :data:`REST_DIRECTIONS` the
    :math:`d_j`.
    """
    count = len(lengths)
    position = np.zeros((count, NUM_JOINTS, 3))
    frame = np.zeros((count, NUM_JOINTS, 3, 3))
    frame[:, ROOT] = orientation
    for joint, parent in enumerate(PARENTS):
        if parent < 0:
            continue
        offset = lengths[:, joint, None] * REST_DIRECTIONS[joint]
        position[:, joint] = position[:, parent] + np.einsum("bij,bj->bi", frame[:, parent], offset)
        frame[:, joint] = frame[:, parent] @ local[:, joint]
    return position


@dataclass(frozen=True)
class Camera:
    """Pinhole cameras, one per sample: ``focal`` (B,) px, ``center`` (B, 2) px principal
    point, ``translation`` (B, 3) mm, the root's position in the camera frame."""

    focal: np.ndarray
    center: np.ndarray
    translation: np.ndarray


def project(points: np.ndarray, camera: Camera) -> np.ndarray:
    r"""Pixels (B, J, 2) of root-relative camera-frame ``points`` (B, J, 3) in mm:
    :math:`u = f (X + t_x) / (Z + t_z) + c_x`, :math:`v = f (Y + t_y) / (Z + t_z) + c_y`."""
    absolute = points + camera.translation[:, None, :]
    if (absolute[..., 2] <= 0).any():
        raise ValueError(
            "a joint is at or behind the camera (depth Z + t_z ≤ 0); expected every joint in "
            "front of it: check the translation's depth against the pose's size"
        )
    return (
        camera.focal[:, None, None] * absolute[..., :2] / absolute[..., 2:]
        + camera.center[:, None, :]
    )


def normalize_keypoints(keypoints: np.ndarray, image_width: float) -> np.ndarray:
    r"""Input features from pixels (..., J, 2): :math:`(u_j - u_{\mathrm{root}}) / (w / 2)`."""
    return (keypoints - keypoints[..., ROOT : ROOT + 1, :]) / (image_width / 2)


def pose_graphs(
    feat: np.ndarray | torch.Tensor, label: np.ndarray | torch.Tensor
) -> list[dgl.DGLGraph]:
    """One skeleton graph per sample, with ``ndata['feat']`` (17, 2) and ``['label']``
    (17, 3) float32, from ``feat`` (B, 17, 2) and ``label`` (B, 17, 3)."""
    feat = torch.as_tensor(np.asarray(feat), dtype=torch.float32)
    label = torch.as_tensor(np.asarray(label), dtype=torch.float32)
    expected = ((len(feat), NUM_JOINTS, 2), (len(feat), NUM_JOINTS, 3))
    if (tuple(feat.shape), tuple(label.shape)) != expected:
        raise ValueError(
            f"feat and label must have shapes (B, {NUM_JOINTS}, 2) and (B, {NUM_JOINTS}, 3) "
            f"for B samples; got {tuple(feat.shape)} and {tuple(label.shape)}"
        )
    graphs = []
    for sample_feat, sample_label in zip(feat, label, strict=True):
        graph = skeleton_graph()
        graph.ndata["feat"], graph.ndata["label"] = sample_feat, sample_label
        graphs.append(graph)
    return graphs
