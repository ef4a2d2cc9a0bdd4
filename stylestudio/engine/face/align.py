"""FFHQ alignment: the crop the face generators were trained on, and its inverse for paste-back.

Karras et al. aligned FFHQ from dlib's 68 landmarks: an oriented square centred a little below
the eyes, turned so the eyes are level, sized by the larger of twice the eye distance and 1.8×
the eye-to-mouth distance; areas outside the photo are filled by reflection, blurred towards the
edge. Inverting a face cropped any other way lands far from the model's distribution, so we
follow that recipe, keeping the quad (in photo pixels) so the edited face can be put back.

Photos are read through :func:`stylestudio.engine.imageio.load_rgb` (EXIF orientation applied)
after checking their declared size: anything above :data:`MAX_PHOTO_PIXELS` is refused before
decoding, so a hostile or enormous file cannot exhaust memory.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ...errors import InputError
from ..imageio import decode_rgb, image_size, load_rgb
from ..limits import MAX_IMAGE_PIXELS

MAX_PHOTO_PIXELS = MAX_IMAGE_PIXELS  #: photos above 100 megapixels are refused (≈300 MB decoded)
SUPERSAMPLE = 2  #: the quad is resampled at this multiple of the output size, then downscaled


@dataclass(frozen=True)
class Alignment:
    """Where the aligned square sits in the photo.

    ``quad`` lists the crop's corners in photo pixels (continuous coordinates, pixel centres at
    +0.5) in the order top-left, bottom-left, bottom-right, top-right of the aligned image.
    """

    quad: np.ndarray  #: [4, 2] float64
    size: int  #: side of the aligned image (the model's resolution)

    def to_photo(self) -> np.ndarray:
        """2x3 matrix taking aligned-image coordinates (u, v) to photo coordinates (x, y)."""
        tl, bl, _, tr = self.quad
        ex = (tr - tl) / self.size
        ey = (bl - tl) / self.size
        return np.array([[ex[0], ey[0], tl[0]], [ex[1], ey[1], tl[1]]], np.float64)

    def to_aligned(self) -> np.ndarray:
        """2x3 matrix taking photo coordinates to aligned-image coordinates."""
        m = self.to_photo()
        a = np.linalg.inv(m[:, :2])
        return np.concatenate([a, -(a @ m[:, 2:])], axis=1)

    @property
    def scale(self) -> float:
        """Photo pixels per aligned pixel."""
        return float(np.hypot(*(self.quad[3] - self.quad[0])) / self.size)


def check_photo_file(path: Path | io.BytesIO, label: str | None = None) -> tuple[int, int]:
    """Read only the header: (width, height); refuses files too large to edit safely."""
    if isinstance(path, io.BytesIO):
        return image_size(path.getvalue(), label or "the photo", MAX_PHOTO_PIXELS)
    return image_size(Path(path), label or str(path), MAX_PHOTO_PIXELS)


def check_pixel_count(w: int, h: int, what: str = "the photo") -> None:
    if w * h > MAX_PHOTO_PIXELS:
        raise InputError(
            f"{what} is {w}×{h} = {w * h / 1e6:.0f} megapixels; StyleStudio opens photos up to "
            f"{MAX_PHOTO_PIXELS / 1e6:.0f} megapixels — scale it down first"
        )


def load_photo(path: Path) -> np.ndarray:
    """A photo as HxWx3 uint8, upright (EXIF orientation applied), size-checked before decoding."""
    return load_rgb(Path(path), MAX_PHOTO_PIXELS)


def decode_photo(data: bytes, label: str = "the project's photo") -> np.ndarray:
    """Like :func:`load_photo` for the bytes of an image file (as kept in a project)."""
    return decode_rgb(data, label, MAX_PHOTO_PIXELS)


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square for dlib 68-point landmarks, corners as in :class:`Alignment`."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise InputError("alignment needs 68 finite (x, y) landmarks")
    eye_left = lm[36:42].mean(0)
    eye_right = lm[42:48].mean(0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    norm = np.hypot(*x)
    if norm < 1e-6:
        raise InputError("degenerate landmarks: eyes and mouth coincide")
    x /= norm
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    # + 0.5: landmarks are pixel indices, the quad lives in continuous coordinates
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y]) + 0.5


def align_face(photo: np.ndarray, landmarks: np.ndarray, size: int, quad: np.ndarray | None = None
               ) -> tuple[np.ndarray, Alignment]:
    """Crop the FFHQ square for ``landmarks`` out of ``photo``: (size×size×3 uint8, alignment).

    ``quad`` overrides the square computed from the landmarks (a project's stored alignment).
    Follows the FFHQ script: shrink big faces first (antialiasing), crop to the quad with a
    border, reflect-pad where the quad leaves the photo and blur the padding towards its edge,
    then resample the quad (at :data:`SUPERSAMPLE`× the output, then Lanczos down).
    """
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise InputError("expected an HxWx3 uint8 RGB photo")
    if not 4 <= size <= 4096:
        raise InputError(f"aligned size must be between 4 and 4096, got {size}")
    quad0 = ffhq_quad(landmarks) if quad is None else np.asarray(quad, np.float64).reshape(4, 2)
    quad = quad0.copy()
    qsize = np.hypot(*(quad[3] - quad[0]))
    img = Image.fromarray(photo)

    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        rsize = (int(np.rint(img.size[0] / shrink)), int(np.rint(img.size[1] / shrink)))
        img = img.resize(rsize, Image.LANCZOS)
        quad /= np.array([photo.shape[1] / rsize[0], photo.shape[0] / rsize[1]])
        qsize = np.hypot(*(quad[3] - quad[0]))

    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
            int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())))
    crop = (max(crop[0] - border, 0), max(crop[1] - border, 0),
            min(crop[2] + border, img.size[0]), min(crop[3] + border, img.size[1]))
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad -= crop[0:2]

    pad = (int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
           int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())))
    pad = (max(-pad[0] + border, 0), max(-pad[1] + border, 0),
           max(pad[2] - img.size[0] + border, 0), max(pad[3] - img.size[1] + border, 0))
    if max(pad) > border - 4:
        pad = tuple(int(p) for p in np.maximum(pad, int(np.rint(qsize * 0.3))))
        arr = np.asarray(img, np.float32)


        arr = np.pad(arr, ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        h, w = arr.shape[:2]
        yy, xx = np.ogrid[:h, :w]
        mask = np.maximum(
            1.0 - np.minimum(np.float32(xx) / max(pad[0], 1), np.float32(w - 1 - xx) / max(pad[2], 1)),
            1.0 - np.minimum(np.float32(yy) / max(pad[1], 1), np.float32(h - 1 - yy) / max(pad[3], 1)),
        )[..., None]
        blur = float(qsize * 0.02)
        blurred = np.asarray(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(blur)), np.float32)
        arr += (blurred - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)))
        quad += pad[:2]

    big = size * SUPERSAMPLE
    # PIL's QUAD takes the source corners for the output's (ul, ll, lr, ur) in continuous coords
    out = img.transform((big, big), Image.QUAD, tuple(quad.flatten()), Image.BILINEAR)
    out = out.resize((size, size), Image.LANCZOS)
    return np.asarray(out), Alignment(quad=quad0, size=size)


def warp_to_photo(face: np.ndarray, alignment: Alignment, box: tuple[int, int, int, int]) -> np.ndarray:
    """The aligned ``face`` (HxWxC float or uint8) resampled into photo pixels ``box`` = (x0, y0, x1, y1).

    Returns a float32 [y1-y0, x1-x0, C] array; photo pixels whose centre falls outside the
    aligned square get NaN (they have no face pixel). The face is first brought near the
    photo's scale with Lanczos (no aliasing when a 1024-px face covers 200 photo pixels), then
    sampled bilinearly at each photo pixel centre.
    """
    x0, y0, x1, y1 = box
    face = np.asarray(face, np.float32)
    if face.ndim == 2:
        face = face[..., None]
    s = face.shape[0]
    if face.shape[1] != s or s != alignment.size:
        raise ValueError(f"face is {face.shape[:2]}, alignment expects {alignment.size}")
    target = max(8, int(np.ceil(alignment.size * alignment.scale)))
    if target < s:
        chans = [np.asarray(Image.fromarray(np.ascontiguousarray(face[..., c])).resize((target, target), Image.LANCZOS))
                 for c in range(face.shape[2])]
        face = np.stack(chans, -1)
    n = face.shape[0]
    xs = np.arange(x0, x1, dtype=np.float64) + 0.5
    ys = np.arange(y0, y1, dtype=np.float64) + 0.5
    gx, gy = np.meshgrid(xs, ys)
    m = alignment.to_aligned()
    u = (m[0, 0] * gx + m[0, 1] * gy + m[0, 2]) * (n / s) - 0.5
    v = (m[1, 0] * gx + m[1, 1] * gy + m[1, 2]) * (n / s) - 0.5
    inside = (u >= -0.5) & (u <= n - 0.5) & (v >= -0.5) & (v <= n - 0.5)
    u = np.clip(u, 0, n - 1)
    v = np.clip(v, 0, n - 1)
    u0 = np.floor(u).astype(np.int64)
    v0 = np.floor(v).astype(np.int64)
    u1 = np.minimum(u0 + 1, n - 1)
    v1 = np.minimum(v0 + 1, n - 1)
    fu = (u - u0)[..., None].astype(np.float32)
    fv = (v - v0)[..., None].astype(np.float32)
    out = (face[v0, u0] * (1 - fu) * (1 - fv) + face[v0, u1] * fu * (1 - fv)
           + face[v1, u0] * (1 - fu) * fv + face[v1, u1] * fu * fv)
    out[~inside] = np.nan
    return out.astype(np.float32)
