"""Face chips: crop a face out of an image by a similarity transform fitted to its landmarks.

Every predictor was trained on faces cut out in its own way (dlib's 5-point chips with 20 %
padding for the age/gender networks, an ArcFace-style 112-px crop for the identity network, a
loose square box for the emotion network). Reproducing each cut, instead of feeding the whole
image, is what makes their outputs trustworthy on our faces. All of it runs batched in PyTorch.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: dlib's 5-point chip template (``get_face_chip_details``), x/y in [0, 1] before padding, in the
#: order of dlib's 5-point model: right-of-image eye outer/inner corner, left eye outer/inner, nose.
DLIB5_TEMPLATE = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
])
#: the 68-point indices that correspond to the 5 points above
DLIB5_FROM68 = [45, 42, 36, 39, 33]

#: ArcFace/InsightFace 112×112 template: eye centres, nose tip, mouth corners
ARCFACE_TEMPLATE = np.array([
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041],
]) / 112.0


def arcface_points(lm68: Tensor) -> Tensor:
    """The five ArcFace points from 68 landmarks: eye centres, nose tip, mouth corners."""
    return torch.stack([lm68[:, 36:42].mean(1), lm68[:, 42:48].mean(1), lm68[:, 30], lm68[:, 48], lm68[:, 54]], 1)


def dlib5_points(lm68: Tensor) -> Tensor:
    return lm68[:, DLIB5_FROM68]


def similarity(src: Tensor, dst: Tensor) -> Tensor:
    """Least-squares similarity (rotation, uniform scale, shift) mapping ``src`` → ``dst``.

    src, dst: [N, K, 2]. Returns [N, 2, 3] affine matrices ``A`` with ``dst ≈ A @ [src, 1]``.
    """
    src = src.double()
    dst = dst.double()
    ms, md = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    s, d = src - ms, dst - md
    # Complex-number form of the 2-D Procrustes fit: a + ib = Σ conj(s)·d / Σ |s|².
    den = (s ** 2).sum((1, 2))
    a = (s[..., 0] * d[..., 0] + s[..., 1] * d[..., 1]).sum(1) / den
    b = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(1) / den
    rot = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], 1)  # [N, 2, 2]
    t = md[:, 0] - (rot @ ms[:, 0, :, None])[..., 0]
    return torch.cat([rot, t[..., None]], 2).float()


def warp(images: Tensor, chip_to_image: Tensor, size: int) -> Tensor:
    """Sample ``size``² chips: chip pixel (x, y) shows image point ``chip_to_image @ [x, y, 1]``.

    Pixel coordinates are pixel centres (dlib's convention). Shrinking by 2× or more first
    box-averages the image by the integer part of the scale (as dlib's extract_image_chip walks an
    image pyramid first), so chips do not alias and look like the chips the networks saw.
    """
    n, _, h, w = images.shape
    scale = float(torch.linalg.det(chip_to_image[:, :, :2]).abs().sqrt().max())
    f = int(max(1, np.floor(scale + 1e-6)))
    if f > 1:
        images = F.avg_pool2d(images, f, f, ceil_mode=True)
        chip_to_image = chip_to_image.clone()
        # centre of the averaged pixel j is at original coordinate f*j + (f-1)/2
        chip_to_image = chip_to_image / f
        chip_to_image[:, :, 2] -= (f - 1) / (2 * f)
        h, w = images.shape[2:]
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3).to(images.device)
    pts = grid @ chip_to_image.to(images.device).transpose(1, 2)  # [N, size², 2] image pixel coords
    gx = (pts[..., 0] + 0.5) / w * 2 - 1
    gy = (pts[..., 1] + 0.5) / h * 2 - 1
    g = torch.stack([gx, gy], -1).reshape(n, size, size, 2)
    return F.grid_sample(images, g.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def template_chip(images: Tensor, points: Tensor, template: np.ndarray, size: int, padding: float = 0.0) -> Tensor:
    """Chips aligning ``points`` [N, K, 2] to ``template`` (unit square, optional dlib-style padding)."""
    tpl = (torch.as_tensor(template, dtype=torch.float64) + padding) / (2 * padding + 1) * size
    tpl = tpl[None].expand(points.shape[0], -1, -1)
    return warp(images, similarity(tpl, points), size)


def box_chip(images: Tensor, lm68: Tensor, size: int, scale: float = 1.0, shift_y: float = 0.0) -> Tensor:
    """An axis-aligned square around the landmarks' bounding box (``scale`` × its larger side)."""
    lo, hi = lm68.min(1).values, lm68.max(1).values
    side = (hi - lo).max(1).values * scale
    cx = (lo[:, 0] + hi[:, 0]) / 2
    cy = (lo[:, 1] + hi[:, 1]) / 2 + shift_y * side
    step = side / size
    n = lm68.shape[0]
    a = torch.zeros(n, 2, 3)
    a[:, 0, 0] = step
    a[:, 1, 1] = step
    a[:, 0, 2] = cx - side / 2 + step / 2
    a[:, 1, 2] = cy - side / 2 + step / 2
    return warp(images, a, size)
