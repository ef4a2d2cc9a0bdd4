"""Is the reconstruction still the person? Cosine similarity of face embeddings.

LPIPS says how alike two pictures look, not whether they show the same person: the astronaut's
reconstruction at LPIPS 0.18 is visibly someone younger. This measure uses the face-embedding
network the project already converts (MobileFaceNet, :class:`~..attributes.networks.Identity`):
each image's own 68 landmarks give its ArcFace chip, and the similarity is the cosine of the two
embeddings after removing the population's mean embedding (raw embeddings share a component
every face has, so their plain cosine is near 1 for anyone). The mean and the "same person"
threshold come from generated faces (``resources/identity/mobilefacenet.json``, made by
``scripts/identity_calibration.py``; docs/photos.md says how).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ...errors import InputError

CALIBRATION_FILE = ("identity", "mobilefacenet.json")
#: a face rendered smaller than this has no identity to measure (the test models' 32-px faces)
MIN_IDENTITY_SIDE = 64
CALIBRATION_FORMAT = "stylestudio-identity-calibration"
EMBEDDING_DIM = 192


@dataclass(frozen=True)
class IdentityCalibration:
    """The population's mean embedding and the similarity above which two faces count as one person."""

    centre: np.ndarray  #: [192] mean raw embedding of generated faces
    threshold: float  #: "same person" at this similarity or more
    meta: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        return {"format": CALIBRATION_FORMAT, "format_version": 1, "threshold": float(self.threshold),
                "centre": [float(v) for v in self.centre], **self.meta}

    @classmethod
    def load(cls, path: Path | None = None) -> "IdentityCalibration":
        from ... import paths

        path = Path(path) if path is not None else Path(paths.resources_dir()).joinpath(*CALIBRATION_FILE)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if d.get("format") != CALIBRATION_FORMAT:
                raise ValueError("not an identity calibration")
            centre = np.asarray(d["centre"], np.float32)
            threshold = float(d["threshold"])
            if centre.shape != (EMBEDDING_DIM,) or not np.isfinite(centre).all() or not -1 <= threshold <= 1:
                raise ValueError("centre or threshold out of shape or range")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: not a usable identity calibration ({exc})") from exc
        meta = {k: v for k, v in d.items() if k not in ("format", "format_version", "threshold", "centre")}
        return cls(centre, threshold, meta)


def centred_cosine(a: np.ndarray, b: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Cosine of two (batches of) raw embeddings after removing ``centre``."""
    a, b = np.asarray(a, np.float64) - centre, np.asarray(b, np.float64) - centre
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)


class IdentityMeter:
    """The embedding network, a landmark finder and the calibration, loaded once."""

    def __init__(self, calibration: IdentityCalibration | None = None,
                 landmarker: Callable[[np.ndarray], np.ndarray | None] | None = None, progress: Any = None) -> None:
        from ..attributes.networks import Identity
        from ..attributes.predictor import default_landmarker

        self.calibration = calibration or IdentityCalibration.load()
        self.landmarker = landmarker or default_landmarker()
        self.network = Identity.load(progress)

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        return self.landmarker(np.ascontiguousarray(image))

    @torch.no_grad()
    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Raw embedding [192] of an HxWx3 uint8 face with its 68 landmarks."""
        x = torch.from_numpy(np.asarray(image, np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        lm = torch.from_numpy(np.asarray(landmarks, np.float32))[None]
        return self.network.raw(x, lm)[0].numpy()

    def similarity(self, photo: np.ndarray, reconstruction: np.ndarray,
                   photo_landmarks: np.ndarray | None = None) -> float:
        """Centred cosine similarity of the two faces (1: identical embeddings). Each face is
        chipped by its own landmarks; where none are found on one, the other's are used (both are
        aligned the same way). NaN when neither has a face."""
        la = photo_landmarks if photo_landmarks is not None else self.landmarks(photo)
        lb = self.landmarks(reconstruction)
        la = lb if la is None else la
        lb = la if lb is None else lb
        if la is None:
            return math.nan
        ea, eb = self.embed(photo, la), self.embed(reconstruction, lb)
        return float(centred_cosine(ea, eb, self.calibration.centre))

    def same_person(self, similarity: float) -> bool:
        return bool(similarity >= self.threshold)


_METER: IdentityMeter | None = None


def identity_meter() -> IdentityMeter:
    """One shared meter per process (the network and landmarker load in a second or two)."""
    global _METER
    if _METER is None:
        _METER = IdentityMeter()
    return _METER


def identity_similarity(photo: np.ndarray, reconstruction: np.ndarray, meter: IdentityMeter | None = None) -> float:
    """Cosine similarity of the face embeddings of ``photo`` (the aligned crop) and ``reconstruction``."""
    return (meter or identity_meter()).similarity(photo, reconstruction)


def reconstruction_identity(aligned: np.ndarray, reconstruction: np.ndarray, landmarks: np.ndarray | None = None,
                            meter: IdentityMeter | None = None) -> dict[str, float] | None:
    """``{"identity": similarity, "identity_threshold": T}`` of an inverted photo: its aligned crop
    against the reconstruction (``landmarks``: the photo's, already in the crop's frame). None for
    faces under :data:`MIN_IDENTITY_SIDE` px or when no face is found."""
    if min(aligned.shape[:2]) < MIN_IDENTITY_SIDE:
        return None
    meter = meter or identity_meter()
    sim = meter.similarity(aligned, reconstruction, landmarks)
    if not math.isfinite(sim):
        return None
    return {"identity": round(sim, 4), "identity_threshold": round(meter.threshold, 4)}


def identity_line(similarity: float, threshold: float) -> str:
    """``"identity 0.71 (same person ≥ 0.40)"``: the CLI's and the app's wording."""
    if not math.isfinite(similarity):
        return "identity n/a (no face found in the reconstruction)"
    return f"identity {similarity:.2f} (same person ≥ {threshold:.2f})"
