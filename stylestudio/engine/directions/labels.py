"""Labelled generated faces: the data every attribute direction is fitted on.

Faces are rendered at a reduced size (the predictors need ~64–112 px chips, so a 256-px preview
is plenty and costs a fraction of a full render), measured by the attribute predictors, and
stored with their W latents. Long runs report progress and can be cancelled between faces.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import Cancelled, InputError

from ..progress import CancelCheck, Progress  # noqa: E402  (the engine's one convention)


@dataclass
class LabelSet:
    """W latents [N, w_dim] and attribute values (name → [N], NaN where unmeasured)."""

    w: np.ndarray
    attrs: dict[str, np.ndarray]
    psi: float = 1.0
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.w.shape[0])

    def valid(self, names: list[str] | None = None) -> np.ndarray:
        names = names or list(self.attrs)
        return np.all([np.isfinite(self.attrs[n]) for n in names], axis=0)

    def subset(self, mask: np.ndarray) -> "LabelSet":
        return LabelSet(self.w[mask], {k: v[mask] for k, v in self.attrs.items()}, self.psi, dict(self.meta))

    def concat(self, other: "LabelSet") -> "LabelSet":
        names = [n for n in self.attrs if n in other.attrs]
        return LabelSet(np.concatenate([self.w, other.w]), {n: np.concatenate([self.attrs[n], other.attrs[n]])
                                                            for n in names}, self.psi, dict(self.meta))

    def save(self, path: Path) -> None:
        np.savez_compressed(path, w=self.w, psi=np.float32(self.psi),
                            **{f"attr.{k}": v for k, v in self.attrs.items()})

    @classmethod
    def load(cls, path: Path) -> "LabelSet":
        with np.load(path, allow_pickle=False) as f:
            attrs = {k[5:]: f[k] for k in f.files if k.startswith("attr.")}
            return cls(f["w"], attrs, float(f["psi"]))


def preview_stop(generator, min_px: int = 256) -> int | None:
    """The cheapest ``stop_resolution`` whose image is at least ``min_px`` wide (None: full)."""
    z = torch.zeros(1, generator.z_dim, device=generator.device)
    styles = generator.styles(generator.mapping(z))
    for res in sorted({l.resolution for l in generator.style_layout}):
        with torch.no_grad():
            img = generator.synthesize(styles, stop_resolution=res).image
        if img.shape[-1] >= min_px:
            return res if img.shape[-1] < generator.resolution else None
    return None


@torch.no_grad()
def render_small(generator, ws: Tensor, stop: int | None, size: int = 256) -> Tensor:
    """W or W+ → images [N, 3, size, size] in [-1, 1], rendered at a preview resolution."""
    img = generator.synthesize(generator.styles(generator.broadcast_w(ws)), stop_resolution=stop).image
    if img.shape[-1] != size:
        img = F.interpolate(img, size=(size, size), mode="area" if img.shape[-1] > size else "bilinear")
    return img


def sample_w(generator, n: int, seed: int, psi: float) -> np.ndarray:
    """``n`` W latents from a fixed seed, truncated by ``psi`` towards ``w_avg``."""
    rng = np.random.RandomState(seed)
    z = torch.from_numpy(rng.randn(n, generator.z_dim).astype(np.float32)).to(generator.device)
    out = []
    with torch.no_grad():
        for i in range(0, n, 64):
            w = generator.map_z(z[i:i + 64])
            out.append(generator.w_avg.lerp(w, psi).cpu())
    return torch.cat(out).numpy()


def label_w(generator, predictor, w: np.ndarray, *, stop: int | None = None, size: int = 256,
            progress: Progress | None = None, cancelled: CancelCheck | None = None,
            what: str = "labelling faces", start_fraction: float = 0.0, end_fraction: float = 1.0,
            wplus: bool = False) -> dict[str, np.ndarray]:
    """Measure every attribute on the faces of ``w`` ([N, w_dim], or W+ with ``wplus``)."""
    n = w.shape[0]
    names = predictor.names
    attrs = {k: np.full(n, np.nan, np.float32) for k in names}
    t0 = time.time()
    for i in range(n):
        if cancelled is not None and cancelled():
            raise Cancelled(f"{what} cancelled after {i} of {n} faces")
        wi = torch.from_numpy(w[i:i + 1]).to(generator.device)
        img = render_small(generator, wi, stop, size).cpu()
        m = predictor.measure(img)
        for k in names:
            attrs[k][i] = m[k][0]
        if progress is not None and (i % 25 == 0 or i == n - 1):
            rate = (time.time() - t0) / (i + 1)
            frac = start_fraction + (end_fraction - start_fraction) * (i + 1) / n
            progress(f"{what}: {i + 1}/{n} ({rate:.2f} s/face, {rate * (n - i - 1) / 60:.1f} min left)", frac)
    return attrs


def label_faces(generator, predictor, n: int, *, seed: int = 0, psi: float = 0.8, size: int = 256,
                progress: Progress | None = None, cancelled: CancelCheck | None = None,
                start_fraction: float = 0.0, end_fraction: float = 1.0) -> LabelSet:
    """Sample ``n`` faces and label them (InterFaceGAN's data collection step)."""
    if n < 50:
        raise InputError(f"need at least 50 faces to fit attribute directions, got {n}")
    w = sample_w(generator, n, seed, psi)
    stop = preview_stop(generator, size)
    attrs = label_w(generator, predictor, w, stop=stop, size=size, progress=progress, cancelled=cancelled,
                    start_fraction=start_fraction, end_fraction=end_fraction)
    return LabelSet(w, attrs, psi, {"seed": seed, "size": size})
