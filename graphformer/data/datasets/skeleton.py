r"""Skeleton graphs: 2D → 3D human pose lifting on the 17-joint Human3.6M skeleton.

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

**Real data** (:class:`H36MDataset`): Human3.6M preprocessed in VideoPose3D's layout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from graphformer.data.datasets.generated import GeneratedDataset
from graphformer.data.info import DatasetInfo
from graphformer.data.splits import SPLITS, check_split
from graphformer.data.validation import check_int

import dgl
import numpy as np
import torch

#: The 17 Human3.6M joints in the usual (VideoPose3D) order.
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
#: Bump when the generator changes: caches of another version are rebuilt.
GENERATOR_VERSION = 1
#: Samples per generator block (see the module docstring).
BLOCK = 1024
#: Width and height of the synthetic camera's image in pixels.
IMAGE_SIZE = 1000

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
BODY_TO_CAMERA = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

#: VideoPose3D keeps these 17 of the 32 Human3.6M motion-capture joints (in JOINTS order).
H36M_KEPT_JOINTS = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
H36M_FILES = ("data_3d_h36m.npz", "data_2d_h36m_gt.npz")
H36M_SPLITS = {"train": ("S1", "S5", "S6", "S7"), "val": ("S8",), "test": ("S9", "S11")}
#: Width of the four Human3.6M cameras' images (1000 × 1002 pixels).
H36M_IMAGE_WIDTH = 1000


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


# --- the synthetic dataset ------------------------------------------------------------------


class _PoseMetadata:
    """The facts of a pose-lifting dataset: 2 continuous features and 3 regression targets
    per node, no edge features."""

    info = DatasetInfo(level="node", task="regression", out_dim=3, in_dim=2)


class SkeletonDataset(_PoseMetadata, GeneratedDataset):
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


# --- Human3.6M in VideoPose3D's layout ------------------------------------------------------


def _missing_files_error(root: Path, missing: list[str]) -> FileNotFoundError:
    return FileNotFoundError(
        f"Human3.6M files not found: {', '.join(missing)} in {root}. graphformer never "
        "downloads Human3.6M (its licence requires registration at "
        "http://vision.imar.ro/human3.6m). From your own copy, build "
        f"{' and '.join(H36M_FILES)} with VideoPose3D's data/prepare_data_h36m.py (see "
        "https://github.com/facebookresearch/VideoPose3D/blob/main/DATASET.md) and put them in "
        f"{root}, or pass root= the directory that holds them."
    )


def quaternion_to_matrix(quaternion: Sequence[float]) -> np.ndarray:
    """The 3 × 3 rotation of a quaternion (w, x, y, z); normalised first."""
    w, x, y, z = np.asarray(quaternion, dtype=float) / np.linalg.norm(quaternion)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def load_h36m_cameras(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """World → camera rotations from a JSON file: ``{subject: [camera, ...]}``, 4 cameras
    per subject in the order of ``positions_2d``, each camera either
    ``{"orientation": [w, x, y, z]}`` (the camera → world quaternion, as VideoPose3D's
    ``h36m_cameras_extrinsic_params`` stores it) or ``{"rotation": 3 × 3}`` (world →
    camera, as in the original Human3.6M metadata). Translations are not needed: targets
    are root-relative."""
    with open(path) as file:
        stored = json.load(file)
    cameras = {}
    for subject, entries in stored.items():
        rotations = []
        for index, entry in enumerate(entries):
            if "rotation" in entry:
                rotations.append(np.asarray(entry["rotation"], dtype=float).reshape(3, 3))
            elif "orientation" in entry:
                rotations.append(quaternion_to_matrix(entry["orientation"]).T)
            else:
                raise ValueError(
                    f"camera {index} of {subject} in {path} has keys {sorted(entry)}; expected "
                    "'orientation' (quaternion w, x, y, z, camera → world) or 'rotation' "
                    "(3 × 3, world → camera)"
                )
        cameras[subject] = rotations
    return cameras


def _load_npz_dict(path: Path, key: str) -> dict:
    with np.load(path, allow_pickle=True) as stored:  # VideoPose3D pickles a dict
        if key not in stored:
            raise KeyError(
                f"{path} has no {key!r} (keys: {sorted(stored)}); expected VideoPose3D's layout"
            )
        return stored[key].item()


def load_h36m(
    root: str | os.PathLike,
    subjects: Sequence[str],
    cameras: str | os.PathLike | None = None,
    frame_step: int = 1,
    image_width: float = H36M_IMAGE_WIDTH,
) -> tuple[np.ndarray, np.ndarray]:
    """``(feat, label)`` of ``subjects``: (N, 17, 2) normalised 2D and (N, 17, 3) 3D in mm.

    Reads ``data_3d_h36m.npz`` (``positions_3d[subject][action]``: (T, 32, 3) world
    coordinates in metres) and ``data_2d_h36m_gt.npz`` (``positions_2d[subject][action]``:
    one (T, 17, 2) pixel array per camera) from ``root``; keeps the 17 joints
    :data:`H36M_KEPT_JOINTS`, every ``frame_step``-th frame, and pairs each camera's 2D
    with the 3D of the same frame (the shorter length of the two wins). Targets are the
    joints minus the hip, ×1000: **in the world frame** unless ``cameras`` (a JSON file, see
    :func:`load_h36m_cameras`) gives each camera's rotation, in which case they are rotated
    into that camera's frame. World-frame targets do not depend on the view, so lifting them
    from one camera's 2D is ill posed in the yaw: pass cameras for the standard protocol.
    """
    root = Path(root)
    missing = [name for name in H36M_FILES if not (root / name).is_file()]
    if missing:
        raise _missing_files_error(root, missing)
    step = check_int("frame_step", frame_step, 1)
    positions_3d = _load_npz_dict(root / H36M_FILES[0], "positions_3d")
    positions_2d = _load_npz_dict(root / H36M_FILES[1], "positions_2d")
    rotations = load_h36m_cameras(cameras) if cameras is not None else None
    feats, labels = [], []
    for subject in subjects:
        if subject not in positions_3d or subject not in positions_2d:
            raise KeyError(
                f"subject {subject!r} is not in both files under {root} (3D has "
                f"{sorted(positions_3d)}, 2D has {sorted(positions_2d)}); choose subjects "
                "present in both"
            )
        if rotations is not None and subject not in rotations:
            raise KeyError(f"the cameras file {cameras} has no rotations for {subject!r}")
        for action, world in sorted(positions_3d[subject].items()):
            world = np.asarray(world, dtype=np.float64)[:, H36M_KEPT_JOINTS] * 1000.0
            relative = world - world[:, ROOT : ROOT + 1]
            if action not in positions_2d[subject]:
                raise KeyError(
                    f"{subject} {action!r} is in {H36M_FILES[0]} but not in {H36M_FILES[1]} "
                    f"under {root}; regenerate both files from the same Human3.6M copy"
                )
            for camera, keypoints in enumerate(positions_2d[subject][action]):
                length = min(len(relative), len(keypoints))
                target = relative[:length:step]
                if rotations is not None:
                    target = target @ rotations[subject][camera].T
                points = np.asarray(keypoints, dtype=np.float64)[:length:step]
                feats.append(normalize_keypoints(points, image_width))
                labels.append(target)
    if not feats:
        raise ValueError(f"no frames for subjects {list(subjects)} in {root}")
    return (
        np.concatenate(feats).astype(np.float32),
        np.concatenate(labels).astype(np.float32),
    )


class H36MDataset(_PoseMetadata):
    """One split of Human3.6M for 2D → 3D lifting, from VideoPose3D's preprocessed files.

    Items are skeleton graphs like :class:`SkeletonDataset`'s, built on access from the
    arrays of :func:`load_h36m` (ground-truth 2D inputs). Nothing is downloaded or cached:
    ``root`` must hold ``data_3d_h36m.npz`` and ``data_2d_h36m_gt.npz``, else a
    FileNotFoundError says how to make them. **Targets are root-relative world-frame joints
    unless ``cameras`` is given** (see :func:`load_h36m`).

    Parameters
    ----------
    split : ``'train'`` (S1, S5, S6, S7), ``'val'`` (S8) or ``'test'`` (S9, S11), or see
        ``subjects``.
    root : the directory with the two ``.npz`` files.
    cameras : optional JSON file of camera rotations (see :func:`load_h36m_cameras`).
    frame_step : keep every ``frame_step``-th frame (Human3.6M is 50 fps).
    num_graphs : keep only the first ``num_graphs`` samples (``None``: all).
    subjects : overrides the split's subjects, e.g. ``{'train': ['S1', 'S5', 'S6', 'S7',
        'S8'], 'val': ['S8'], 'test': ['S9', 'S11']}`` for the protocol's full training set.
    """

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike = "data/h36m",
        cameras: str | os.PathLike | None = None,
        frame_step: int = 1,
        num_graphs: int | None = None,
        subjects: dict[str, Sequence[str]] | None = None,
        image_width: float = H36M_IMAGE_WIDTH,
    ) -> None:
        self.split = check_split(split)
        self.name = "Human3.6M"
        chosen = (subjects or H36M_SPLITS).get(split)
        if not chosen:
            raise ValueError(f"no subjects for split {split!r} in subjects={subjects!r}")
        self.subjects = tuple(chosen)
        feat, label = load_h36m(root, self.subjects, cameras, frame_step, image_width)
        if num_graphs is not None:
            feat, label = feat[: check_int("num_graphs", num_graphs, 1)], label[:num_graphs]
        self.feat, self.label = torch.from_numpy(feat), torch.from_numpy(label)
        self._graph = skeleton_graph()

    def __getitem__(self, index: int) -> dgl.DGLGraph:
        graph = dgl.graph(self._graph.edges(), num_nodes=NUM_JOINTS)
        graph.ndata["feat"], graph.ndata["label"] = self.feat[index], self.label[index]
        return graph

    def __len__(self) -> int:
        return len(self.feat)
