r"""Synthetic 2D → 3D pose-lifting samples on the 17-joint skeleton
(:mod:`graphformer.data.kinematics`).

**Synthetic poses** (:func:`sample_poses`): a kinematic chain. Bone lengths are
Human3.6M-like means (mm) times a per-sample scale in [0.85, 1.15] and a per-bone jitter in
[0.96, 1.04]. Every joint with children gets a local rotation
:math:`R_x(a) R_y(b) R_z(c)` with angles uniform in per-joint ranges (knees and elbows
bend one way only); the root gets a global rotation: a uniform yaw about the vertical and
a mild tilt (±12° forward, ±8° sideways). Forward kinematics,

.. math::
    G_j = G_{p(j)} R_j, \qquad P_j = P_{p(j)} + G_{p(j)}\, \ell_j\, d_j,

with rest directions :math:`d_j` and :math:`P_{\mathrm{root}} = 0`, gives root-relative
joints; a fixed change of axes puts them in the camera frame (x right, y down, z forward).
A random pinhole camera then projects them,

.. math::
    u_j = f\, \frac{X_j + t_x}{Z_j + t_z} + c_x, \qquad
    v_j = f\, \frac{Y_j + t_y}{Z_j + t_z} + c_y,

with focal length f ∈ [1100, 1200] px, the root t = (t_x, t_y, t_z) at t_z ∈ [3.5, 6.5] m in
front of the camera and up to 0.4 m off-axis, and the principal point within 15 px of the
centre of a 1000 × 1000 image. Sample i of a split comes from the NumPy generator of its
block of :data:`BLOCK` samples, seeded by (seed, split, block): a pure function of
(seed, split, i), and a larger split extends a smaller one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from graphformer.data.datasets.generated import GeneratedDataset
from graphformer.data.kinematics import (
    BODY_TO_CAMERA,
    BONE_LENGTHS,
    NUM_JOINTS,
    POSE_INFO,
    Camera,
    axis_rotation,
    euler_rotation,
    forward_kinematics,
    normalize_keypoints,
    pose_graphs,
    project,
)
from graphformer.data.splits import SPLITS, check_split
from graphformer.data.validation import check_int

import dgl
import numpy as np

#: Bump when the generator changes: caches of another version are rebuilt.
GENERATOR_VERSION = 1
#: Samples per generator block (see the module docstring).
BLOCK = 1024
#: Width and height of the synthetic camera's image in pixels.
IMAGE_SIZE = 1000

#: Local rotation ranges in degrees, (min, max) about x (flexion), y (abduction), z (twist),
#: for each joint that has children; the others (and the root) have none.
ANGLE_RANGES = {
    1: ((-25, 95), (-40, 10), (-30, 30)),  # right hip
    2: ((-140, 0), (0, 0), (0, 0)),  # right knee: bends backwards only
    4: ((-25, 95), (-10, 40), (-30, 30)),  # left hip
    5: ((-140, 0), (0, 0), (0, 0)),  # left knee
    7: ((-45, 15), (-20, 20), (-35, 35)),  # spine: bends forward more than back
    8: ((-15, 10), (-10, 10), (-20, 20)),  # thorax
    9: ((-30, 20), (-20, 20), (-45, 45)),  # neck: nods and turns the head
    11: ((-45, 150), (-20, 100), (-60, 60)),  # left shoulder
    12: ((0, 145), (0, 0), (0, 0)),  # left elbow: bends forwards only
    14: ((-45, 150), (-100, 20), (-60, 60)),  # right shoulder
    15: ((0, 145), (0, 0), (0, 0)),  # right elbow
}
#: Body (x right, y forward, z up) → camera (x right, y down, z forward): a proper rotation,
#: so no sample is a mirror image. At yaw 0 the subject faces away from the camera; the
#: sampled yaw covers every view.


@dataclass(frozen=True)
class Poses:
    """A batch of synthetic samples.

    ``joints`` (B, 17, 3): root-relative camera-frame 3D joints in mm (the targets);
    ``keypoints`` (B, 17, 2): their projections in pixels; ``lengths`` (B, 17): the bone
    lengths the chain used (to each joint from its parent; 0 for the root); ``camera``.
    """

    joints: np.ndarray
    keypoints: np.ndarray
    lengths: np.ndarray
    camera: Camera

    @property
    def feat(self) -> np.ndarray:
        """The normalised 2D inputs (B, 17, 2); see :func:`normalize_keypoints`."""
        return normalize_keypoints(self.keypoints, IMAGE_SIZE)

    def __len__(self) -> int:
        return len(self.joints)


def sample_poses(rng: np.random.Generator, count: int) -> Poses:
    """``count`` random poses and cameras drawn from ``rng`` (see the module docstring)."""
    scale = rng.uniform(0.85, 1.15, size=(count, 1))
    lengths = BONE_LENGTHS * scale * rng.uniform(0.96, 1.04, size=(count, NUM_JOINTS))
    angles = np.zeros((count, NUM_JOINTS, 3))
    for joint, ranges in ANGLE_RANGES.items():
        low, high = np.deg2rad(np.array(ranges, dtype=float)).T
        angles[:, joint] = rng.uniform(low, high, size=(count, 3))
    local = euler_rotation(angles)
    yaw = rng.uniform(0.0, 2 * np.pi, size=count)
    tilt = np.deg2rad(rng.uniform((-12.0, -8.0), (12.0, 8.0), size=(count, 2)))
    orientation = (
        axis_rotation(2, yaw) @ axis_rotation(0, tilt[:, 0]) @ axis_rotation(1, tilt[:, 1])
    )
    joints = forward_kinematics(lengths, local, orientation) @ BODY_TO_CAMERA.T
    camera = Camera(
        focal=rng.uniform(1100.0, 1200.0, size=count),
        center=IMAGE_SIZE / 2 + rng.uniform(-15.0, 15.0, size=(count, 2)),
        translation=np.column_stack(
            [
                rng.uniform(-400.0, 400.0, size=count),
                rng.uniform(-200.0, 400.0, size=count),
                rng.uniform(3500.0, 6500.0, size=count),
            ]
        ),
    )
    return Poses(joints, project(joints, camera), lengths, camera)


def generate_poses(split: str, num_graphs: int, seed: int = 0) -> Poses:
    """The first ``num_graphs`` samples of ``split`` for ``seed``, drawn in blocks of
    :data:`BLOCK`, block b from ``np.random.default_rng([seed, split index, b])``."""
    split = check_split(split)
    blocks = [
        sample_poses(np.random.default_rng([seed, SPLITS.index(split), block]), BLOCK)
        for block in range(-(-num_graphs // BLOCK))
    ]

    def take(*arrays: np.ndarray) -> np.ndarray:
        return np.concatenate(arrays)[:num_graphs]

    return Poses(
        joints=take(*(b.joints for b in blocks)),
        keypoints=take(*(b.keypoints for b in blocks)),
        lengths=take(*(b.lengths for b in blocks)),
        camera=Camera(
            focal=take(*(b.camera.focal for b in blocks)),
            center=take(*(b.camera.center for b in blocks)),
            translation=take(*(b.camera.translation for b in blocks)),
        ),
    )


class SkeletonDataset(GeneratedDataset):
    """One split of synthetic 2D → 3D pose-lifting samples, generated once, cached in ``root``.

    ``dataset[i]`` is a 17-node skeleton graph with ``ndata['feat']`` (17, 2) float32
    (normalised 2D joints) and ``ndata['label']`` (17, 3) float32 (root-relative 3D joints
    in mm, camera frame). See the module docstring for the generator.

    Parameters
    ----------
    split : ``'train'``, ``'val'`` or ``'test'``.
    num_graphs : samples in the split.
    seed : non-negative base seed; sample i is a pure function of (seed, split, i).
    root : cache directory (default: DGL's download dir, ``$DGL_DOWNLOAD_DIR`` or ``~/.dgl``).
        The cache file is :attr:`cache_path`; an unreadable or inconsistent one is rebuilt
        with a :class:`~graphformer.data.cache.CacheWarning`.
    """

    info = POSE_INFO

    def __init__(
        self,
        split: str = "train",
        num_graphs: int = 10_000,
        seed: int = 0,
        root: str | os.PathLike | None = None,
        verbose: bool = False,
    ) -> None:
        self.split = check_split(split)
        self.num_graphs = check_int("num_graphs", num_graphs, 1)
        self.seed = check_int("seed", seed, 0)
        super().__init__("skeleton", root, verbose)

    def generator_version(self) -> int:
        return GENERATOR_VERSION

    def generate(self) -> list[dgl.DGLGraph]:
        poses = generate_poses(self.split, self.num_graphs, self.seed)
        return pose_graphs(poses.feat, poses.joints)
