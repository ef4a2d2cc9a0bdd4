"""Faces that come from the user's photo: the document source and the paste-back compositor.

A :class:`PhotoSource` keeps everything needed to reopen and export an edited photo without a
new inversion: the original file's bytes (lossless, compact), the chosen face's landmarks and
FFHQ quad, the inverted W+ code and, when PTI was used, the generator weight deltas. All of it
is arrays, so projects store it as ``.npy`` members (no pickle).

Export pastes the rendered face back into the full-resolution photo (:func:`paste_back`): the
face is resampled through the inverse alignment, blended with a feathered mask built from the
landmarks (jaw line and a forehead above the brows), its low-frequency colour is pulled towards
the photo along the seam, and grain is added where the photo is noisier than the render. Pixels
whose mask is zero — everything away from the face — are copied from the photo unchanged.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from .document import (EditDocument, FrozenArrays, Source, as_int, as_mapping, as_text, at, check_latent, construct,
                       field_error, frozen_array, register_source, show)
from .export import COMPOSITORS
from .face.align import Alignment, align_face, check_photo_file, decode_photo, ffhq_quad
from ..errors import InputError

DELTA_PREFIX = "delta:"
from .progress import Progress  # noqa: E402  (the engine's one convention: (message, fraction 0..1 or < 0 busy))
MAX_COORDINATE = 1e6  #: landmarks and the crop quad lie within a photo of at most 100 megapixels
MAX_FACE_INDEX = 10_000


def _check_quad(quad: np.ndarray, where: str) -> None:
    """The FFHQ crop must be a real square-ish quad: paste-back inverts its 2x2 matrix."""
    tl, bl, _, tr = np.asarray(quad, np.float64)
    ex, ey = tr - tl, bl - tl
    lx, ly = float(np.hypot(*ex)), float(np.hypot(*ey))
    cross = abs(float(ex[0] * ey[1] - ex[1] * ey[0]))
    if lx < 1.0 or ly < 1.0 or cross < 0.5 * lx * ly:
        raise field_error(where, "the face's crop square is degenerate (its corners do not span a square)")


def _decoded_array(arrays: Mapping[str, np.ndarray], name: str, where: str, dtype: Any,
                   shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Array ``name`` as an immutable ``dtype`` copy (see ``frozen_array``), finite, of ``shape`` when given."""
    arr = np.asarray(arrays[name])
    if arr.dtype.kind not in "biuf" or arr.dtype.fields is not None:
        raise field_error(at(where, name), f"expected a numeric array, got dtype {arr.dtype}")
    if shape is not None and arr.shape != shape:
        raise field_error(at(where, name), f"has shape {arr.shape}, expected {shape}")
    if np.dtype(dtype).kind == "u" and arr.dtype != dtype:
        raise field_error(at(where, name), f"expected {np.dtype(dtype).name} bytes, got dtype {arr.dtype}")
    out = arr.astype(dtype, copy=False)  # native byte order; frozen_array makes the one copy
    if out.dtype.kind == "f" and (not np.isfinite(out).all() or (out.size and np.abs(out).max() > 1e30)):
        raise field_error(at(where, name), "holds NaN, infinite or absurdly large values")
    return frozen_array(out)


@register_source
@dataclass(frozen=True, eq=False)
class PhotoSource(Source):
    """A face found in a photo and inverted into the model."""

    kind: ClassVar[str] = "photo"
    array_fields: ClassVar[tuple[str, ...]] = ("photo_bytes", "landmarks", "quad", "wplus")
    photo_bytes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))  #: the file as read
    name: str = "photo"
    face_index: int = 0
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((68, 2), np.float32))  #: photo pixels
    quad: np.ndarray = field(default_factory=lambda: np.zeros((4, 2), np.float64))  #: the FFHQ crop (see Alignment)
    wplus: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))  #: [num_ws, w_dim]; empty: not inverted
    weight_deltas: Mapping[str, np.ndarray] | None = None  #: PTI: parameter → (tuned − stored)
    inversion: Mapping[str, Any] = field(default_factory=dict)  #: settings and final loss, for the record

    def __post_init__(self) -> None:
        # a document is a value: its arrays can never change, so the cached digest never goes stale
        for name in self.array_fields:
            object.__setattr__(self, name, frozen_array(getattr(self, name)))
        if self.weight_deltas is not None:
            object.__setattr__(self, "weight_deltas", FrozenArrays(self.weight_deltas))

    # ---- serialisation: the deltas are a dict of arrays --------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "face_index": self.face_index,
                "inversion": dict(self.inversion),
                "weight_deltas": sorted(self.weight_deltas) if self.weight_deltas else []}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {n: np.asarray(getattr(self, n)) for n in self.array_fields}
        for name, d in (self.weight_deltas or {}).items():
            out[DELTA_PREFIX + name] = np.asarray(d, np.float32)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str = "") -> "PhotoSource":
        """Decode and check a photo entry: finite alignment and latent, a usable crop quad."""
        data = as_mapping(data, where)
        missing = [n for n in cls.array_fields if n not in arrays]
        if missing:
            raise field_error(where, f"photo entry lacks {', '.join(missing)}")
        names = _delta_names(data.get("weight_deltas") or [], at(where, "weight_deltas"))
        lost = [n for n in names if DELTA_PREFIX + n not in arrays]
        if lost:
            raise field_error(where, f"photo entry lacks the fine-tuned weights {lost[0]!r}")
        deltas = {n: _decoded_array(arrays, DELTA_PREFIX + n, where, np.float32) for n in names} or None
        landmarks = _decoded_array(arrays, "landmarks", where, np.float32)
        quad = _decoded_array(arrays, "quad", where, np.float64)
        if landmarks.shape != (68, 2) or quad.shape != (4, 2):
            raise field_error(where, f"photo alignment has shapes {landmarks.shape}, {quad.shape}; "
                                     "expected (68, 2) landmarks and a (4, 2) quad")
        for arr, name in ((landmarks, "landmarks"), (quad, "quad")):
            if np.abs(arr).max() > MAX_COORDINATE:
                raise field_error(at(where, name), "lies far outside any photo")
        _check_quad(quad, at(where, "quad"))
        wplus = check_latent(_decoded_array(arrays, "wplus", where, np.float32), at(where, "wplus"))
        if wplus.size and wplus.ndim != 2:
            raise field_error(at(where, "wplus"), f"has shape {wplus.shape}, expected [num_ws, w_dim]")
        inversion = as_mapping(data.get("inversion") or {}, at(where, "inversion"))
        for k, v in inversion.items():
            if not isinstance(v, (str, int, float, bool, type(None))) or (isinstance(v, str) and len(v) > 1000):
                raise field_error(at(where, f"inversion.{k}"), f"expected a plain value, got {show(v)}")
        photo_bytes = _decoded_array(arrays, "photo_bytes", where, np.uint8)
        check_photo_file(io.BytesIO(photo_bytes.tobytes()), at(where, "photo_bytes"))  # the header only
        return construct(cls, dict(
            photo_bytes=photo_bytes.ravel(), name=as_text(data.get("name", "photo"), at(where, "name")),
            face_index=as_int(data.get("face_index", 0), at(where, "face_index"), 0, MAX_FACE_INDEX),
            landmarks=landmarks, quad=quad, wplus=wplus, weight_deltas=deltas, inversion=dict(inversion)), where)

    # ---- identity and derived data ------------------------------------------------------------
    @cached_property
    def digest(self) -> str:
        h = hashlib.sha256()
        for arr in (self.photo_bytes, self.landmarks, self.quad, self.wplus):
            h.update(np.ascontiguousarray(arr).tobytes())
        for name in sorted(self.weight_deltas or {}):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.weight_deltas[name]).tobytes())  # type: ignore[index]
        return h.hexdigest()

    def key(self) -> tuple:
        return (self.kind, self.digest)

    def label(self) -> str:
        return self.name

    @cached_property
    def photo(self) -> np.ndarray:
        """The photo, decoded (EXIF orientation applied), HxWx3 uint8."""
        return decode_photo(self.photo_bytes.tobytes(), f"the photo {self.name!r}")

    def alignment(self, size: int) -> Alignment:
        return Alignment(quad=self.quad, size=size)

    def aligned(self, size: int) -> np.ndarray:
        """The FFHQ crop of the face at ``size`` pixels (what the model was inverted against)."""
        return align_face(self.photo, self.landmarks, size, quad=self.quad)[0]

    @property
    def inverted(self) -> bool:
        return self.wplus.size > 0

    def with_inversion(self, result: Any, settings: Any = None) -> "PhotoSource":
        """This photo with an :class:`~stylestudio.engine.inversion.InversionResult` attached."""
        import dataclasses

        record: dict[str, Any] = {"seconds": round(float(result.seconds), 1)}
        if result.history:
            record["lpips"] = round(float(result.history[-1]["lpips"]), 4)
        if settings is not None:
            tuned = result.weight_deltas is not None  # asked for, or called in by a face far from the model
            record.update(estimate=settings.estimate, steps=settings.steps if settings.optimise else 0, pti=tuned,
                          pti_steps=sum(1 for h in result.history if h.get("stage") == "pti") if tuned else 0)
        if getattr(result, "origin", ""):
            record["start"] = result.origin
        return dataclasses.replace(self, wplus=np.asarray(result.wplus, np.float32),
                                   weight_deltas=result.weight_deltas, inversion=record)

    def latent(self, generator: Any) -> Tensor:
        """The inverted W+ (inverting now, without fine-tuning, if the photo was never inverted)."""
        return self.latent_with(generator)

    def latent_with(self, generator: Any, resources: Any = None) -> Tensor:
        """As :meth:`latent`; a photo inverted now starts from the model's encoder in ``resources``."""
        import torch

        wp = np.asarray(self.wplus, np.float32)
        if wp.size == 0:
            from .inversion import InversionSettings, invert, model_encoder

            encoder = model_encoder(resources) if resources is not None else None
            wp = invert(generator, self.aligned(generator.resolution), InversionSettings(pti=False),
                        encoder=encoder).wplus
        if wp.shape != (generator.num_ws, generator.w_dim):
            raise InputError(f"the photo was inverted into a model with W+ {wp.shape}; this model needs "
                             f"({generator.num_ws}, {generator.w_dim})")
        return torch.tensor(wp)[None].to(generator.device)  # a copy: decoded arrays are read-only


def _delta_names(value: Any, where: str) -> list[str]:
    """The names of a PTI fine-tune's parameters (one per synthesis parameter: hundreds)."""
    if not isinstance(value, list) or len(value) > 10_000:
        raise field_error(where, "expected a list of at most 10000 parameter names")
    return [as_text(v, f"{where}[{i}]", 200) for i, v in enumerate(value)]


def photo_source_from_file(path: Path, landmarks: np.ndarray, face_index: int = 0) -> PhotoSource:
    data = Path(path).read_bytes()
    return PhotoSource(photo_bytes=np.frombuffer(data, np.uint8).copy(), name=Path(path).stem,
                       face_index=face_index, landmarks=np.asarray(landmarks, np.float32),
                       quad=ffhq_quad(landmarks))


# ---------------------------------------------------------------------------------------------
# paste-back


def gaussian_blur(arr: np.ndarray, sigma: float) -> np.ndarray:
    """Approximate Gaussian blur of an HxW or HxWxC float array (three box passes, any sigma).

    O(pixels) whatever the radius, with finite support (≈3·radius): values far from any
    non-zero input stay exactly zero, which the compositor relies on.
    """
    if sigma <= 0:
        return arr.astype(np.float32)
    out = arr.astype(np.float64)
    r = max(1, int(round((np.sqrt(12 * sigma * sigma / 3 + 1) - 1) / 2)))
    for axis in (0, 1):
        for _ in range(3):
            pad = [(0, 0)] * out.ndim
            pad[axis] = (r + 1, r)
            c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
            n = out.shape[axis]
            hi = np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
            lo = np.take(c, np.arange(0, n), axis=axis)
            out = (hi - lo) / (2 * r + 1)
    out[np.abs(out) < 1e-9] = 0.0
    return out.astype(np.float32)


def face_outline(landmarks: np.ndarray) -> np.ndarray:
    """Polygon around the face: the jaw line and the brows lifted onto the forehead."""
    lm = np.asarray(landmarks, np.float64)
    eyes = lm[36:48].mean(0)
    mouth = lm[48:60].mean(0)
    up = eyes - mouth
    lift = up * 0.55  # brows → mid-forehead, in eye-to-mouth units
    brows = lm[26:16:-1] + lift  # right brow end … left brow end, going back towards the jaw start
    return np.concatenate([lm[0:17], brows])


def face_mask(landmarks: np.ndarray, shape: tuple[int, int], feather: float | None = None
              ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Soft face mask (float32 in [0, 1]) over a box of the photo: (mask, (x0, y0, x1, y1)).

    The hard outline is blurred by ``feather`` (default: 12% of the eye-to-mouth distance × 4) so
    the seam is gradual; outside the box the mask is zero.
    """
    h, w = shape
    poly = face_outline(landmarks)
    scale = float(np.hypot(*(np.asarray(landmarks)[36:48].mean(0) - np.asarray(landmarks)[48:60].mean(0))))
    sigma = feather if feather is not None else max(1.0, 0.12 * scale)
    margin = int(np.ceil(4 * sigma)) + 2
    x0 = max(0, int(np.floor(poly[:, 0].min())) - margin)
    y0 = max(0, int(np.floor(poly[:, 1].min())) - margin)
    x1 = min(w, int(np.ceil(poly[:, 0].max())) + margin + 1)
    y1 = min(h, int(np.ceil(poly[:, 1].max())) + margin + 1)
    if x1 <= x0 or y1 <= y0:
        raise InputError("the face lies outside the photo")
    # shrink the outline by ~sigma so the blurred mask reaches 1 inside the face, ~0 at the outline
    centre = poly.mean(0)
    inner = centre + (poly - centre) * (1.0 - min(0.3, sigma / max(scale * 3, 1e-6)))
    img = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(img).polygon([(float(x - x0), float(y - y0)) for x, y in inner], fill=255)
    mask = gaussian_blur(np.asarray(img, np.float32) / 255.0, sigma)
    mask[mask < 1e-3] = 0.0  # too small to change an 8-bit pixel anyway: make it exactly zero
    return np.clip(mask, 0.0, 1.0), (x0, y0, x1, y1)


def match_colour(face: np.ndarray, photo: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Shift the face's low frequencies towards the photo's, measured along the seam.

    The seam band (0 < mask < 1) sees both the photo and the pasted face; the smoothed
    difference there (normalised convolution) corrects lighting and white-balance drift of the
    reconstruction without touching its detail. The correction is full in the outer half of the
    seam and fades out towards the face's interior (mask → 1), so an edit that changes colours
    (skin tone, make-up) survives where it matters and only the transition is matched.
    """
    band = (mask * (1.0 - mask) * 4.0).astype(np.float32)
    if band.sum() < 1.0:
        return face
    diff = (photo - face) * band[..., None]
    num = gaussian_blur(diff, sigma)
    den = gaussian_blur(band, sigma)[..., None]
    global_off = diff.reshape(-1, 3).sum(0) / band.sum()
    weight = np.clip(den / (den.max() * 0.05 + 1e-12), 0.0, 1.0)
    local = np.where(den > 1e-6, num / np.maximum(den, 1e-6), global_off)
    offset = weight * local + (1.0 - weight) * global_off
    fade = np.clip(2.0 * (1.0 - mask), 0.0, 1.0)[..., None]
    return face + fade * offset


def _grain(img: np.ndarray) -> np.ndarray:
    return img - gaussian_blur(img, 1.0)


def match_grain(face: np.ndarray, photo: np.ndarray, mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """Add Gaussian grain where the photo's fine-scale noise exceeds the render's (same seed, same result)."""
    sel = mask > 0.05
    if sel.sum() < 16:
        return face
    # median absolute deviation: edges (eyes, hair) inflate a plain std, noise dominates the median
    s_photo = 1.4826 * np.median(np.abs(_grain(photo)[sel]), axis=0)
    s_face = 1.4826 * np.median(np.abs(_grain(face)[sel]), axis=0)
    extra = np.sqrt(np.maximum(s_photo ** 2 - s_face ** 2, 0.0))
    if not np.any(extra > 0.5):
        return face
    noise = np.random.default_rng(seed).standard_normal(face.shape[:2]).astype(np.float32)
    kept = 1.4826 * np.median(np.abs(_grain(noise)[sel]))  # what the measure above sees of unit noise
    # luminance-like grain (one field for all channels), matched per channel; ×0.75 because white
    # noise looks harsher than a photo's spatially correlated grain at the same deviation
    return face + noise[..., None] * (0.75 * extra / max(kept, 1e-6))[None, None, :]


def paste_back(photo: np.ndarray, face: np.ndarray, landmarks: np.ndarray, quad: np.ndarray | None = None,
               seed: int = 0, colour: bool = True, grain: bool = True) -> np.ndarray:
    """``face`` (the aligned square for ``quad``, default: the landmarks' FFHQ quad) blended into ``photo``."""
    if face.ndim != 3 or face.shape[0] != face.shape[1]:
        raise InputError("the face must be a square HxWx3 image")
    alignment = Alignment(quad=ffhq_quad(landmarks) if quad is None else np.asarray(quad, np.float64),
                          size=face.shape[0])
    from .face.align import warp_to_photo

    mask, (x0, y0, x1, y1) = face_mask(landmarks, photo.shape[:2])
    warped = warp_to_photo(face, alignment, (x0, y0, x1, y1))
    region = photo[y0:y1, x0:x1].astype(np.float32)
    valid = ~np.isnan(warped[..., 0])
    mask = mask * valid
    warped = np.where(valid[..., None], warped, region)
    scale = float(np.hypot(*(landmarks[36:48].mean(0) - landmarks[48:60].mean(0))))
    if colour:
        warped = match_colour(warped, region, mask, sigma=max(2.0, 0.5 * scale))
    if grain:
        warped = match_grain(warped, region, mask, seed)
    m = mask[..., None]
    blended = np.clip(np.rint(region * (1.0 - m) + warped * m), 0, 255).astype(np.uint8)
    out = photo.copy()
    sel = mask > 0
    out[y0:y1, x0:x1][sel] = blended[sel]
    return out


def composite_photo(doc: EditDocument, face: np.ndarray) -> np.ndarray:
    """The export compositor for photo documents: the whole photo with the edited face in it."""
    src = doc.source
    if not isinstance(src, PhotoSource):
        raise InputError("the document's face does not come from a photo")
    return paste_back(src.photo, face, src.landmarks, src.quad)


COMPOSITORS["photo"] = composite_photo
