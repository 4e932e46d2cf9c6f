r"""Human3.6M in VideoPose3D's layout, for 2D → 3D pose lifting on the 17-joint skeleton
(:mod:`graphformer.data.kinematics`). graphformer never downloads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from graphformer.data.kinematics import (
    NUM_JOINTS,
    POSE_INFO,
    ROOT,
    normalize_keypoints,
    skeleton_graph,
)
from graphformer.data.splits import check_split
from graphformer.data.validation import check_int

import dgl
import numpy as np
import torch

#: VideoPose3D keeps these 17 of the 32 Human3.6M motion-capture joints (in JOINTS order).
H36M_KEPT_JOINTS = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
H36M_FILES = ("data_3d_h36m.npz", "data_2d_h36m_gt.npz")
H36M_SPLITS = {"train": ("S1", "S5", "S6", "S7"), "val": ("S8",), "test": ("S9", "S11")}
#: Width of the four Human3.6M cameras' images (1000 × 1002 pixels).
H36M_IMAGE_WIDTH = 1000


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


class H36MDataset:
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

    info = POSE_INFO

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
