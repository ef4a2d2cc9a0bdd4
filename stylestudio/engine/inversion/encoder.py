"""A small trained encoder: aligned photo → a first ``w``, in one VGG pass instead of a search.

The inversion's estimate stage used to score random faces and optimise from the best one; a
linear map from frozen perceptual features to W lands much closer for the cost of one forward
pass. Features are the LPIPS network's VGG16 taps (already shipped, already loaded for the
losses), pooled into a fixed-length vector (see :class:`FeatureSpec`); a ridge regression fitted
on generated faces (scripts/train_encoder.py) maps the standardised vector onto the top PCA
components of the mapping's W. Everything is plain arrays: ``<name>.json`` (format, model,
feature spec, training and validation figures) beside ``<name>.npz`` read with
``allow_pickle=False``; nothing in the files is executed.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import InputError
from ..perceptual import LPIPS, load_lpips

if TYPE_CHECKING:
    from .net_encoder import NetEncoder

ENCODER_FORMAT = "stylestudio-encoder"
ENCODER_VERSION = 1
TRAINING_SIZE = 256  #: training faces are full renders downsampled to this side and stored as uint8
ARRAYS = ("x_mean", "x_scale", "coef", "intercept", "w_mean", "w_basis")
HEADER_KEYS = ("format", "format_version", "model", "w_dim", "features", "components", "feature_dim", "arrays")


@dataclass(frozen=True)
class FeatureSpec:
    """How VGG features are pooled into one vector (the encoder's input).

    ``size``: the side VGG sees (128 px costs a quarter of 256 px; on the default model 256 px
    lowered the latent error by only ~1.5%). ``stats``: LPIPS taps (0…4) pooled to per-channel mean
    and std — texture and colour, independent of where things are. ``grid_layer``/``grid``: one
    tap average-pooled to a ``grid``×``grid`` map — where things are (pose, face shape, hair
    outline). ``pixels``: a ``pixels``×``pixels`` RGB thumbnail, because LPIPS features are
    normalised over channels and keep little absolute colour.
    """

    size: int = 128
    stats: tuple[int, ...] = (0, 1, 2, 3, 4)
    grid_layer: int = 2
    grid: int = 4
    pixels: int = 8

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureSpec":
        try:
            spec = cls(int(d["size"]), tuple(int(i) for i in d["stats"]), int(d["grid_layer"]), int(d["grid"]),
                       int(d["pixels"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"bad encoder feature spec ({exc})") from exc
        if not (16 <= spec.size <= 1024 and all(0 <= i <= 4 for i in spec.stats) and 0 <= spec.grid_layer <= 4
                and 0 <= spec.grid <= 32 and 0 <= spec.pixels <= 64):
            raise InputError(f"bad encoder feature spec {d}")
        return spec


def downsample(image: Tensor, size: int) -> Tensor:
    """Antialiased bilinear resize, as the inversion's losses do (training and use must agree)."""
    if image.shape[-1] == size and image.shape[-2] == size:
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=image.shape[-1] > size)


@torch.no_grad()
def pooled_features(lpips: LPIPS, images: Tensor, spec: FeatureSpec) -> Tensor:
    """[N, 3, H, W] in [-1, 1] → [N, D] pooled features (float32, on the images' device).

    Larger images go through :data:`TRAINING_SIZE` first, as the training faces did, so a 1024-px
    photo and a training face are blurred the same way.
    """
    if lpips.size is not None and lpips.size != spec.size:
        raise ValueError("pooled_features needs an LPIPS module that does not resize (size=None)")
    x = downsample(downsample(images, TRAINING_SIZE) if images.shape[-1] > TRAINING_SIZE else images, spec.size)
    return pool_features(lpips.features(x), x, spec)


def pool_features(feats: list[Tensor], x: Tensor, spec: FeatureSpec) -> Tensor:
    """The pooling of :func:`pooled_features`, for a caller that needs the VGG maps too."""
    parts = []
    for i in spec.stats:
        f = feats[i].flatten(2)
        parts += [f.mean(2), f.std(2)]
    if spec.grid:
        parts.append(F.adaptive_avg_pool2d(feats[spec.grid_layer], spec.grid).flatten(1))
    if spec.pixels:
        parts.append(F.adaptive_avg_pool2d(x, spec.pixels).flatten(1))
    return torch.cat(parts, 1).float()


def image_tensor(image: np.ndarray) -> Tensor:
    """HxWx3 uint8 → [1, 3, H, W] in [-1, 1]."""
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
        raise InputError("the encoder needs an HxWx3 uint8 RGB image")
    return torch.from_numpy(np.array(image, np.uint8, copy=True)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def check_header(path: Path, header: Any, fmt: str, version: int, what: str) -> None:
    """One line naming ``path`` when ``header`` is not a ``fmt`` file this version can read."""
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise InputError(f"{path}: not {what}")
    if not isinstance(header.get("format_version"), int) or header["format_version"] > version:
        raise InputError(f"{path}: encoder format version {header.get('format_version')!r} is not supported "
                         f"(made by a newer StyleStudio?)")


@dataclass
class FeatureEncoder:
    """Pooled VGG features → standardise → linear map → W (through a PCA basis of W).

    ``w = w_mean + (((f − x_mean) / x_scale) · coefᵀ + intercept) · w_basis``
    """

    model: str
    spec: FeatureSpec
    x_mean: np.ndarray  #: [D]
    x_scale: np.ndarray  #: [D]
    coef: np.ndarray  #: [K, D]
    intercept: np.ndarray  #: [K]
    w_mean: np.ndarray  #: [w_dim]
    w_basis: np.ndarray  #: [K, w_dim] orthonormal rows
    meta: dict[str, Any] = field(default_factory=dict)  #: training set, validation figures

    @property
    def w_dim(self) -> int:
        return int(self.w_mean.shape[0])

    def _check(self, where: str) -> None:
        d, k = self.x_mean.shape[0], self.intercept.shape[0]
        shapes = {"x_mean": (d,), "x_scale": (d,), "coef": (k, d), "intercept": (k,),
                  "w_mean": (self.w_dim,), "w_basis": (k, self.w_dim)}
        for name, shape in shapes.items():
            arr = getattr(self, name)
            if arr.shape != shape or not np.all(np.isfinite(arr)):
                raise InputError(f"{where}: encoder array {name} is {arr.shape}, expected {shape} of finite numbers")
        if np.any(self.x_scale <= 0):
            raise InputError(f"{where}: encoder feature scales must be positive")

    # -- use -----------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_features(self, feats: Tensor | np.ndarray) -> np.ndarray:
        """Pooled features [N, D] → w [N, w_dim] (float32)."""
        f = np.asarray(feats.cpu() if isinstance(feats, Tensor) else feats, np.float32)
        if f.ndim != 2 or f.shape[1] != self.x_mean.shape[0]:
            raise InputError(f"expected features [N, {self.x_mean.shape[0]}], got {f.shape}")
        c = ((f - self.x_mean) / self.x_scale) @ self.coef.T + self.intercept
        return (self.w_mean + c @ self.w_basis).astype(np.float32)

    def predict_images(self, images: Tensor, lpips: LPIPS | None = None) -> np.ndarray:
        """[N, 3, H, W] in [-1, 1] (an aligned face at any size) → w [N, w_dim]."""
        if lpips is None or lpips.size is not None:
            lpips = load_lpips(images.device, size=None)
        return self.predict_features(pooled_features(lpips, images, self.spec))

    def predict(self, image: np.ndarray, lpips: LPIPS | None = None) -> np.ndarray:
        """An aligned face (HxWx3 uint8, any size) → its estimated ``w`` [w_dim]."""
        lpips = lpips or load_lpips("cpu", size=None)
        dev = next(lpips.parameters()).device
        return self.predict_images(image_tensor(image).to(dev), lpips)[0]

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """``path`` (.json) and the arrays beside it (.npz); both written atomically."""
        path = Path(path)
        self._check(str(path))
        header = {"format": ENCODER_FORMAT, "format_version": ENCODER_VERSION, "model": self.model,
                  "w_dim": self.w_dim, "features": asdict(self.spec), "components": int(self.coef.shape[0]),
                  "feature_dim": int(self.x_mean.shape[0]), "arrays": path.with_suffix(".npz").name}
        header.update({k: v for k, v in self.meta.items() if k not in HEADER_KEYS})
        arrays = {"x_mean": self.x_mean.astype(np.float32), "x_scale": self.x_scale.astype(np.float32),
                  "coef": self.coef.astype(np.float16), "intercept": self.intercept.astype(np.float32),
                  "w_mean": self.w_mean.astype(np.float32), "w_basis": self.w_basis.astype(np.float16)}
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic(path.with_suffix(".npz"), lambda f: np.savez_compressed(f, **arrays))
        _atomic(path, lambda f: f.write(json.dumps(header, indent=1).encode()))

    @classmethod
    def load(cls, path: Path) -> "FeatureEncoder":
        """Read an encoder; anything that is not one (or is damaged) raises :class:`InputError`."""
        path = Path(path)
        try:
            header = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"{path}: not a readable encoder file ({exc})") from exc
        check_header(path, header, ENCODER_FORMAT, ENCODER_VERSION, "a StyleStudio encoder")
        arrays_name = header.get("arrays")
        if not isinstance(arrays_name, str) or Path(arrays_name).name != arrays_name:
            raise InputError(f"{path}: bad arrays file name {arrays_name!r}")
        npz = path.parent / arrays_name
        try:
            with np.load(npz, allow_pickle=False) as f:
                arrays = {k: np.asarray(f[k]) for k in ARRAYS}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{npz}: damaged encoder arrays ({exc})") from exc
        for k, a in arrays.items():
            if a.dtype.kind != "f":
                raise InputError(f"{npz}: encoder array {k} holds {a.dtype}, not floats")
        meta = {k: v for k, v in header.items() if k not in HEADER_KEYS}
        enc = cls(str(header.get("model", "")), FeatureSpec.from_dict(header.get("features") or {}),
                  arrays["x_mean"].astype(np.float32), arrays["x_scale"].astype(np.float32),
                  arrays["coef"].astype(np.float32), arrays["intercept"].astype(np.float32),
                  arrays["w_mean"].astype(np.float32), arrays["w_basis"].astype(np.float32), meta)
        enc._check(str(path))
        if header.get("w_dim") != enc.w_dim:
            raise InputError(f"{path}: header says w_dim {header.get('w_dim')!r}, arrays have {enc.w_dim}")
        if enc.feature_dim != expected_feature_dim(enc.spec):
            raise InputError(f"{path}: {enc.feature_dim} features do not match the feature spec "
                             f"({expected_feature_dim(enc.spec)})")
        return enc

    @property
    def feature_dim(self) -> int:
        return int(self.x_mean.shape[0])


def model_encoder(resources: Any, name: str = "default") -> "FeatureEncoder | NetEncoder | None":
    """The encoder shipped (or trained by the user) for ``resources``' model; None when there is none.

    The network encoder (``<name>.pt``, :mod:`.net_encoder`) comes first; when its file is
    damaged or made for another model, one warning line says so and the ridge encoder
    (``<name>.json``) is used instead, because inverting still works from its weaker estimate.
    A damaged ridge file raises :class:`InputError` rather than silently inverting without it.
    """
    from . import net_encoder  # noqa: F401  (registers the "net-encoder" loader)

    if resources.find_file("encoder", f"{name}.pt") is not None:
        try:
            net = resources.get("net-encoder", name)
        except InputError as exc:
            logging.getLogger(__name__).warning("%s; using the ridge encoder instead", exc)
            net = None
            resources.put("net-encoder", name, None)  # warn once, not on every photo
        if net is not None:
            return net
    if resources.find_file("encoder", f"{name}.json") is None:
        return None
    return resources.get("encoder", name)


LPIPS_CHANNELS = (64, 128, 256, 512, 512)


def expected_feature_dim(spec: FeatureSpec) -> int:
    """Length of :func:`pooled_features`' vector for ``spec`` (checked on load)."""
    return (sum(2 * LPIPS_CHANNELS[i] for i in spec.stats) + LPIPS_CHANNELS[spec.grid_layer] * spec.grid ** 2
            + 3 * spec.pixels ** 2)


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; this is shareable data
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
