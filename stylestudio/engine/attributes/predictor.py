"""All attributes of a batch of faces at once: the labeller behind the direction builder.

``AttributePredictor.measure(images)`` finds each face's 68 landmarks, then runs the learned
predictors (age, gender, expression) on their own chips and measures geometry and colour.
Every attribute is returned on a scale where a linear boundary in W makes sense: logits for
probabilities (saturated probabilities would hide how far a face is from the boundary),
degrees for pose, ratios for openness, CIE L* for colour.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from . import colour, geometry
from .networks import EMOTIONS, AgeGender, Emotion, Identity

Landmarker = Callable[[np.ndarray], "np.ndarray | None"]  # HxWx3 uint8 → [68, 2] or None


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    label: str
    unit: str
    positive: str  #: what a positive slider step does


ATTRIBUTES: dict[str, AttributeSpec] = {a.name: a for a in (
    AttributeSpec("age", "Age", "years", "older"),
    AttributeSpec("gender", "Gender", "logit P(female)", "more female"),
    AttributeSpec("smile", "Smile", "logit P(happy)", "happier"),
    AttributeSpec("yaw", "Head yaw", "degrees", "turns to the image's right"),
    AttributeSpec("pitch", "Head pitch", "degrees", "tilts up"),
    AttributeSpec("mouth_open", "Mouth open", "lip gap / mouth width", "opens the mouth"),
    AttributeSpec("eyes_open", "Eyes open", "eye aspect ratio", "opens the eyes"),
    AttributeSpec("hair_lightness", "Hair lightness", "CIE L*", "lighter hair"),
    AttributeSpec("skin_tone", "Skin tone", "CIE L*", "lighter skin"),
    AttributeSpec("lighting", "Lighting", "L* right − left", "light from the image's right"),
)}

LOGIT_CLIP = 9.0  #: |logit| cap: beyond it a classifier is only certain, not more informative


def _logit(p: Tensor) -> np.ndarray:
    p = p.double().clamp(1e-12, 1 - 1e-12)
    return torch.log(p / (1 - p)).clamp(-LOGIT_CLIP, LOGIT_CLIP).float().numpy()


def default_landmarker() -> Landmarker:
    """The app's face finder (dlib HOG + 68 points): the largest face, or None."""
    from ..face.landmarks import detect_faces

    def find(image: np.ndarray) -> np.ndarray | None:
        faces = detect_faces(image)
        return faces[0].landmarks if faces else None

    return find


def to_uint8(images: Tensor) -> np.ndarray:
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


class AttributePredictor:
    """Measures :data:`ATTRIBUTES` (and optionally an identity embedding) on generated faces."""

    def __init__(self, landmarker: Landmarker | None = None, progress=None, identity: bool = False) -> None:
        self.landmarker = landmarker or default_landmarker()
        self.age_gender = AgeGender.load(progress)
        self.emotion = Emotion.load(progress)
        self.identity = Identity.load(progress) if identity else None
        self.names = list(ATTRIBUTES)

    def landmarks(self, images: Tensor) -> np.ndarray:
        """[N, 68, 2] in the images' pixel frame; NaN rows where no face was found."""
        out = np.full((images.shape[0], 68, 2), np.nan, np.float32)
        for i, img in enumerate(to_uint8(images)):
            lm = self.landmarker(np.ascontiguousarray(img))
            if lm is not None:
                out[i] = lm
        return out

    @torch.no_grad()
    def measure(self, images: Tensor, landmarks: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Attribute name → [N] values (NaN where no face was found); also ``"landmarks"``."""
        images = images.detach().float().cpu()
        lm = self.landmarks(images) if landmarks is None else np.asarray(landmarks, np.float32)
        ok = ~np.isnan(lm).any(axis=(1, 2))
        n = images.shape[0]
        out = {name: np.full(n, np.nan, np.float32) for name in self.names}
        out["landmarks"] = lm
        if not ok.any():
            return out
        x, l = images[ok], torch.from_numpy(lm[ok])
        ag = self.age_gender(x, l)
        emo = self.emotion(x, l)
        vals = {
            "age": ag["age"].numpy(),
            "gender": _logit(ag["female"]),
            "smile": _logit(emo[:, EMOTIONS.index("happy")]),
            **{k: v.astype(np.float32) for k, v in geometry.measure(lm[ok]).items()},
            **colour.measure(x, l),
        }
        for k, v in vals.items():
            out[k][ok] = v
        return out

    @torch.no_grad()
    def embed(self, images: Tensor, landmarks: np.ndarray) -> np.ndarray:
        """Raw identity embeddings [N, 192] (NaN where no landmarks); compare with :func:`identity_distance`."""
        if self.identity is None:
            self.identity = Identity.load()
        lm = np.asarray(landmarks, np.float32)
        ok = ~np.isnan(lm).any(axis=(1, 2))
        out = np.full((images.shape[0], 192), np.nan, np.float32)
        if ok.any():
            out[ok] = self.identity.raw(images.detach().float().cpu()[ok], torch.from_numpy(lm[ok])).numpy()
        return out


def identity_distance(a: np.ndarray, b: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """1 − cosine of two embeddings after removing the population mean ``centre``.

    MobileFaceNet's raw embeddings share a large common component (every face's unit
    embedding has cosine ≈ 1 with every other's); identity lives in what is left.
    """
    a, b = a - centre, b - centre
    cos = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return 1 - cos
