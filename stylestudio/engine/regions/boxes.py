"""Face-part boxes of the FFHQ-aligned layout: a locality measure the project's cluster maps do not decide.

``locality.measure`` judges a transfer on the target's own cluster map, which is the same map the
queries are built from, so a query could look local by that map's own standard. Here the parts
are fixed boxes placed from the *standard FFHQ alignment landmarks* (the 5-point template that
FFHQ-aligned crops are warped onto; at 512 px: eyes (192.98, 239.95) and (318.90, 240.19), nose
tip (256.63, 314.02), mouth corners (201.26, 371.41) and (313.09, 371.15), as used by
facexlib/GFPGAN/CodeFormer). Every generated face of an FFHQ model is aligned this way, so the
same box holds the same part on every face.

Each box is built from those landmarks and the interocular distance ``d`` (0.246 of the side):

* **eyes**: both eye centres ± 0.3 d across, ± 0.2 d up and down (the eyebrows stay outside);
* **nose**: nose tip ± 0.3 d across, from 0.3 d below the eyes to 0.15 d below the tip;
* **mouth**: the mouth corners ± 0.2 d across, the corners' height ± 0.25 d;
* **hair**: the crown above the forehead, 1 d beyond either eye across, from the top down to
  1 d above the eyes (on a bald face, the scalp).

A fixed **inner face** box (1/2 d beyond either eye across, from 0.6 d above the eyes, over the
eyebrows, to 0.6 d below the mouth, about the chin) says how much of the leak lands on the face
itself: for hair, whose box holds only the crown, hair hanging down the sides is outside the box
and counts as leak there, while a change of the face is a leak by any standard.

The measure is the mean absolute change (RGB mean, 0–255) outside the box divided by the mean
change inside it; a band of ``margin`` (a share of the side, default 0.03 as the cluster measure)
around the box counts for neither, since a part's look fades out across its edge.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .masks import dilate

#: the FFHQ 5-point alignment template, relative to the side: left eye, right eye, nose tip,
#: left mouth corner, right mouth corner (x, y; "left" = left in the picture)
FFHQ_LANDMARKS = np.array([[192.98138, 239.94708], [318.90277, 240.19360], [256.63416, 314.01935],
                           [201.26117, 371.41043], [313.08905, 371.15118]]) / 512.0


def _boxes() -> dict[str, tuple[float, float, float, float]]:
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = FFHQ_LANDMARKS
    d = rx - lx
    eye_y, mouth_y = (ly + ry) / 2, (mly + mry) / 2
    return {
        "eyes": (lx - 0.3 * d, eye_y - 0.2 * d, rx + 0.3 * d, eye_y + 0.2 * d),
        "nose": (nx - 0.3 * d, eye_y + 0.3 * d, nx + 0.3 * d, ny + 0.15 * d),
        "mouth": (mlx - 0.2 * d, mouth_y - 0.25 * d, mrx + 0.2 * d, mouth_y + 0.25 * d),
        "hair": (lx - 1.0 * d, 0.0, rx + 1.0 * d, eye_y - 1.0 * d),
    }


def _inner_face() -> tuple[float, float, float, float]:
    (lx, ly), (rx, ry), _, (_, mly), (_, mry) = FFHQ_LANDMARKS
    d = rx - lx
    return (lx - 0.5 * d, (ly + ry) / 2 - 0.6 * d, rx + 0.5 * d, (mly + mry) / 2 + 0.6 * d)


#: part → (x0, y0, x1, y1) as shares of the picture's side (x to the right, y down)
FACE_BOXES: Mapping[str, tuple[float, float, float, float]] = _boxes()
#: the inner face (eyebrows to chin), where a leak of any part's transfer matters most
INNER_FACE: tuple[float, float, float, float] = _inner_face()


def _in_box(box: tuple[float, float, float, float], size: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    c = (np.arange(size) + 0.5) / size
    return ((c[:, None] >= y0) & (c[:, None] < y1)) & ((c[None, :] >= x0) & (c[None, :] < x1))


def box_mask(part: str, size: int) -> np.ndarray:
    """Bool [size, size]: the pixels whose centres lie in ``part``'s box."""
    if part not in FACE_BOXES:
        raise KeyError(f"no face-part box {part!r} (known: {', '.join(FACE_BOXES)})")
    return _in_box(FACE_BOXES[part], size)


def inner_face_mask(size: int) -> np.ndarray:
    """Bool [size, size]: the inner face box (:data:`INNER_FACE`)."""
    return _in_box(INNER_FACE, size)


def box_change(before: np.ndarray, after: np.ndarray, part: str, margin: float = 0.03,
               face_only: bool = False) -> tuple[float, float]:
    """Mean |after − before| (RGB mean) inside ``part``'s box and outside it (beyond a band of
    ``margin`` of the side; with ``face_only``, only where the outside is on the inner face).
    Images: [H, W, 3] (or [H, W]), square, any one scale."""
    d = np.abs(np.asarray(after, np.float64) - np.asarray(before, np.float64))
    if d.ndim == 3:
        d = d.mean(-1)
    if d.shape[0] != d.shape[1]:
        raise ValueError(f"box_change needs square images, got {d.shape[1]}×{d.shape[0]}")
    inside = box_mask(part, d.shape[0])
    outside = ~dilate(inside, max(1, round(margin * d.shape[0]))) if margin > 0 else ~inside
    if face_only:
        outside &= inner_face_mask(d.shape[0])
    return float(d[inside].mean()), float(d[outside].mean())


def box_ratio(before: np.ndarray, after: np.ndarray, part: str, margin: float = 0.03) -> float:
    """Outside ÷ inside change of ``part``'s box (0: only the box changed; inf: nothing inside)."""
    cin, cout = box_change(before, after, part, margin)
    return cout / cin if cin > 0 else float("inf")
