"""Colour attributes measured in regions placed by the landmarks: hair, skin, lighting.

There is no hair or skin classifier in any registry, so these are measurements, not guesses:
CIE L*a*b* statistics of pixels in regions defined relative to the eyes and mouth, which in
aligned portraits land on the hair above the forehead, the cheeks, and the two halves of the face.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from . import align


def srgb_to_lab(rgb: Tensor) -> Tensor:
    """[N, 3, H, W] sRGB in [0, 1] → CIE L*a*b* (D65)."""
    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = torch.tensor([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]],
                     dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("ij,njhw->nihw", m, lin)
    xyz = xyz / torch.tensor([0.95047, 1.0, 1.08883], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


#: The canonical face frame: 68-point positions are mapped by a similarity onto a frame where the
#: eye centres sit at (±0.5, 0) and units are the eye distance. Regions are boxes in this frame.
REGIONS = {
    "hair": (-0.8, -1.95, 0.8, -1.35),  # above the hairline of most faces
    "cheek_l": (-0.75, 0.4, -0.3, 0.9),
    "cheek_r": (0.3, 0.4, 0.75, 0.9),
    "nose": (-0.15, 0.1, 0.15, 0.6),
    "face_l": (-0.85, -0.3, -0.1, 1.1),
    "face_r": (0.1, -0.3, 0.85, 1.1),
}
FRAME = (-1.7, -2.0, 1.7, 1.4)  #: x0, y0, x1, y1 of the (square) frame chip in face units


def face_frame(images: Tensor, lm68: Tensor, size: int = 96) -> tuple[Tensor, tuple[float, float, float, float]]:
    """Resample each face into the canonical frame (eyes level, fixed scale): [N, 3, s, s]."""
    x0, y0, x1, y1 = FRAME
    eyes = torch.stack([lm68[:, 36:42].mean(1), lm68[:, 42:48].mean(1)], 1)
    unit = torch.tensor([[-0.5, 0.0], [0.5, 0.0]], dtype=torch.float64)
    span = max(x1 - x0, y1 - y0)
    # chip pixel p ↦ face unit (x0 + p·span/size) ↦ image via the eye similarity
    to_img = align.similarity(unit[None].expand(lm68.shape[0], -1, -1), eyes)  # face units → image
    step = span / size
    chip_to_unit = torch.tensor([[step, 0, x0 + step / 2], [0, step, y0 + step / 2], [0, 0, 1]], dtype=torch.float32)
    a = to_img @ chip_to_unit
    return align.warp(images, a, size), (x0, y0, step, span)


def _region_mean(lab: Tensor, frame: tuple[float, float, float, float], box: tuple[float, float, float, float],
                 stat: str = "median") -> Tensor:
    x0, y0, step, _ = frame
    bx0, by0, bx1, by1 = box
    c0, c1 = int(round((bx0 - x0) / step)), int(round((bx1 - x0) / step))
    r0, r1 = int(round((by0 - y0) / step)), int(round((by1 - y0) / step))
    patch = lab[:, :, max(r0, 0):r1, max(c0, 0):c1].flatten(2)
    return patch.median(2).values if stat == "median" else patch.mean(2)


@torch.no_grad()
def measure(images: Tensor, lm68: Tensor) -> dict[str, np.ndarray]:
    """``hair_lightness`` (median L* of the hair region), ``skin_tone`` (median L* of cheeks and
    nose: larger = lighter skin; the ITA angle was tried and is unstable where b* is small),
    ``lighting`` (mean L* of the right half − the left half of the face: > 0 lit from the
    image's right)."""
    chip, frame = face_frame(images, lm68)
    lab = srgb_to_lab(((chip.clamp(-1, 1) + 1) / 2).double())
    hair = _region_mean(lab, frame, REGIONS["hair"])
    skin = (_region_mean(lab, frame, REGIONS["cheek_l"]) + _region_mean(lab, frame, REGIONS["cheek_r"])
            + _region_mean(lab, frame, REGIONS["nose"])) / 3
    left = _region_mean(lab, frame, REGIONS["face_l"], "mean")
    right = _region_mean(lab, frame, REGIONS["face_r"], "mean")
    return {"hair_lightness": hair[:, 0].float().numpy(), "skin_tone": skin[:, 0].float().numpy(),
            "lighting": (right[:, 0] - left[:, 0]).float().numpy()}
