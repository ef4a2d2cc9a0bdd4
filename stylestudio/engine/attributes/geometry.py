"""Head pose and facial geometry from dlib's 68 landmarks (numpy, [..., 68, 2] arrays).

No pose network ships in any registry, but pose and openness are geometry: ratios of landmark
distances that do not depend on the face's size or position. Signs follow the image: ``yaw`` > 0
when the face turns towards the image's right, ``pitch`` > 0 when the face tilts up.
"""
from __future__ import annotations

import numpy as np

JAW, BROWS, NOSE, EYES, MOUTH = slice(0, 17), slice(17, 27), slice(27, 36), slice(36, 48), slice(48, 68)


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def _eye_line(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre between the eyes, unit vector along the eye line and unit normal (pointing down)."""
    left, right = lm[..., 36:42, :].mean(-2), lm[..., 42:48, :].mean(-2)
    centre = (left + right) / 2
    u = right - left
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    n = np.stack([-u[..., 1], u[..., 0]], -1)  # image y points down, so this is "down the face"
    return centre, u, n


def yaw(lm: np.ndarray) -> np.ndarray:
    """Head yaw in degrees from the nose tip's place between the jaw ends.

    The nose tip (30) sits mid-way between the jaw's ends (0, 16) in a frontal face and moves
    towards the side the head turns to; for a head of radius r, the offset is r·sin(yaw).
    """
    _, u, _ = _eye_line(lm)
    a = ((lm[..., 0, :] - lm[..., 30, :]) * u).sum(-1)
    b = ((lm[..., 16, :] - lm[..., 30, :]) * u).sum(-1)
    s = np.clip(-(a + b) / np.maximum(b - a, 1e-6), -1, 1)
    return np.degrees(np.arcsin(s))


#: nose-tip height between eye line and chin: the median over 1250 faces of the default model
PITCH_NEUTRAL = 0.30


def pitch(lm: np.ndarray) -> np.ndarray:
    """Head pitch in degrees from how high the nose tip sits between the eye line and the chin.

    Tilting the head up shortens the eye→nose-tip projection relative to the nose→chin one.
    """
    c, _, n = _eye_line(lm)
    nose = ((lm[..., 30, :] - c) * n).sum(-1)
    chin = ((lm[..., 8, :] - c) * n).sum(-1)
    r = nose / np.maximum(chin, 1e-6)
    return np.degrees(np.arcsin(np.clip((PITCH_NEUTRAL - r) / 0.5, -1, 1)))


def mouth_open(lm: np.ndarray) -> np.ndarray:
    """Gap between the inner lips (61–67, 62–66, 63–65) over the mouth's width (48–54)."""
    gap = (_dist(lm[..., 61, :], lm[..., 67, :]) + _dist(lm[..., 62, :], lm[..., 66, :])
           + _dist(lm[..., 63, :], lm[..., 65, :])) / 3
    return gap / np.maximum(_dist(lm[..., 48, :], lm[..., 54, :]), 1e-6)


def eyes_open(lm: np.ndarray) -> np.ndarray:
    """Eye aspect ratio (Soukupová & Čech 2016), the mean of both eyes."""
    def ear(e: np.ndarray) -> np.ndarray:
        return (_dist(e[..., 1, :], e[..., 5, :]) + _dist(e[..., 2, :], e[..., 4, :])) / (
            2 * np.maximum(_dist(e[..., 0, :], e[..., 3, :]), 1e-6))
    return (ear(lm[..., 36:42, :]) + ear(lm[..., 42:48, :])) / 2


def face_scale(lm: np.ndarray) -> np.ndarray:
    """Eye-centre to mouth-centre distance in pixels (the scale regions are measured in)."""
    return _dist(lm[..., 36:48, :].mean(-2), lm[..., 48:68, :].mean(-2))


def measure(lm: np.ndarray) -> dict[str, np.ndarray]:
    lm = np.asarray(lm, np.float64)
    return {"yaw": yaw(lm), "pitch": pitch(lm), "mouth_open": mouth_open(lm), "eyes_open": eyes_open(lm)}
