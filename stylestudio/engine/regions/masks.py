"""Painted regions: from a mask drawn on the target to a contribution row the queries can use.

Two ways, both offered (``mask_mode``):

* ``"clusters"`` — the mask picks the catalog clusters it covers on the *target's own* cluster
  map (a cluster counts when at least ``coverage`` of its area lies under the mask); the region
  is then their union and uses the catalog's contribution rows, averaged over many faces.
* ``"activations"`` — the mask defines the region directly: for each style layer, the share of
  each channel's standardised squared activation of *this target* that lies inside the mask
  versus outside. Follows the brush exactly, but rests on one face's statistics.

:data:`DEFAULT_MASK_MODE` is the one ``bench/locality.py`` measured as more local.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from ..generator import Generator
from ..limits import MAX_MASK_PIXELS, MAX_MASK_SIDE
from .catalog import Catalog
from .cluster_maps import cluster_probs, resize_mask

MASK_MODES = ("clusters", "activations")
#: Chosen by measurement: ``bench/locality.py``'s painted-mask table (blobs painted over each named
#: region of the default model, 10 pairs) gave a mean out/in change ratio of 0.31 for "clusters"
#: against 0.34 for "activations", which also leaked more for eyes, eyebrows, mouth and hair.
DEFAULT_MASK_MODE = "clusters"
DEFAULT_COVERAGE = 0.5


def mask_array(mask: np.ndarray) -> np.ndarray:
    """Any 2-D mask (bool, uint8 0–255, float 0–1) → float32 [H, W] in [0, 1]."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[-1] in (1, 3, 4):
        m = m[..., -1] if m.shape[-1] == 4 else m.mean(-1)
    if m.ndim != 2 or min(m.shape) < 2:
        raise InputError(f"a mask must be a 2-D image, got shape {m.shape}")
    if m.dtype == np.bool_:
        out = m.astype(np.float32)
    elif m.dtype.kind in "ui":
        out = m.astype(np.float32) / (255.0 if m.max(initial=0) > 1 else 1.0)
    elif m.dtype.kind == "f":
        out = m.astype(np.float32)
    else:
        raise InputError(f"a mask must be numeric, got dtype {m.dtype}")
    if not np.isfinite(out).all():
        raise InputError("the mask contains non-finite values")
    out = np.clip(out, 0.0, 1.0)
    if out.max(initial=0.0) <= 0.0:
        raise InputError("the mask is empty: paint the region first")
    return out


def load_mask(path: Path) -> np.ndarray:
    """A mask image file → uint8 [H, W] (its alpha channel when it has one, else its brightness).

    Read like a photo (no pipes or folders, damaged files are one line), but with the smaller
    :data:`~stylestudio.engine.limits.MAX_MASK_PIXELS` limit: a mask becomes float32 arrays.
    """
    from ..imageio import open_image, to_grey8

    label = str(path)
    with open_image(Path(path), label, MAX_MASK_PIXELS, what="mask image") as img:
        if max(img.size) > MAX_MASK_SIDE:
            raise InputError(f"{label}: the mask image is {img.size[0]}×{img.size[1]}; painted masks are at most "
                             f"{MAX_MASK_SIDE}×{MAX_MASK_SIDE}")
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            arr = np.asarray(img.convert("RGBA"))[..., 3]
            if arr.min() == 255:  # opaque everywhere: the picture itself is the mask
                arr = np.asarray(to_grey8(img))
        else:
            arr = np.asarray(to_grey8(img))
    try:
        mask_array(arr)  # validates: not empty
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _mask_tensor(mask: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(mask_array(mask))[None, None].to(device)


@torch.no_grad()
def mask_coverage(catalog: Catalog, gen: Generator, styles: Mapping[str, Tensor], mask: np.ndarray,
                  size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: (share of its area under the mask, share of the mask it takes), on the target."""
    m = resize_mask(_mask_tensor(mask, gen.device), (size, size))[0, 0].double()
    probs = cluster_probs(catalog.scores(gen, styles)[:1], size)[0].double()  # [K, s, s]
    inside = (probs * m).sum((1, 2))
    area = probs.sum((1, 2))
    cov = torch.where(area > 0, inside / area.clamp_min(1e-12), torch.zeros_like(area))
    share = inside / m.sum().clamp_min(1e-12)
    return cov.cpu().numpy(), share.cpu().numpy()


def mask_clusters(catalog: Catalog, gen: Generator, styles: Mapping[str, Tensor], mask: np.ndarray,
                  coverage: float = DEFAULT_COVERAGE) -> tuple[int, ...]:
    """Clusters at least ``coverage`` covered by the mask; else the one the mask mostly lies on."""
    if not 0.0 < coverage <= 1.0:
        raise InputError(f"coverage must be in (0, 1], got {coverage}")
    cov, share = mask_coverage(catalog, gen, styles, mask)
    chosen = tuple(int(i) for i in np.flatnonzero(cov >= coverage))
    return chosen or (int(share.argmax()),)


@torch.no_grad()
def mask_rows(catalog: Catalog, gen: Generator, styles: Mapping[str, Tensor], mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per style layer: the share of each channel's standardised energy inside the mask, on the target."""
    taps = sorted({t for t in catalog.input_taps.values() if t is not None})
    feats = gen.synthesize({k: v[:1] for k, v in styles.items()}, taps=taps).features
    mt = _mask_tensor(mask, gen.device)
    rows: dict[str, np.ndarray] = {}
    area_share = float(mt.mean())
    for name in catalog.style_layers:
        tap = catalog.input_taps[name]
        ch = catalog.contributions[name].shape[1]
        if tap is None:
            rows[name] = np.full(ch, area_share, np.float32)
            continue
        a = feats[tap][0].double()
        mu = torch.from_numpy(catalog.mean[name]).to(a).reshape(-1, 1, 1)
        sd = torch.from_numpy(catalog.std[name]).to(a).reshape(-1, 1, 1)
        e = ((a - mu) / sd) ** 2  # [C, h, w]
        mm = resize_mask(mt.double(), tuple(a.shape[-2:]))[0, 0]
        total = e.sum((1, 2))
        inside = (e * mm).sum((1, 2))
        row = torch.where(total > 0, inside / total.clamp_min(1e-300), torch.full_like(total, float(mm.mean())))
        rows[name] = row.float().cpu().numpy()
    return rows


def dilate(mask: np.ndarray | Tensor, radius: int) -> np.ndarray:
    """Grow a boolean [H, W] mask by a disk of ``radius`` pixels (region margins, overlays)."""
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))[None, None]
    if radius <= 0:
        return m[0, 0].numpy() > 0.5
    yy, xx = torch.meshgrid(torch.arange(-radius, radius + 1), torch.arange(-radius, radius + 1), indexing="ij")
    disk = ((yy**2 + xx**2) <= radius**2).float()[None, None]
    grown = torch.nn.functional.conv2d(m, disk, padding=radius)
    return grown[0, 0].numpy() > 0.5
