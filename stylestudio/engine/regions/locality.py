"""How local a regional transfer is: the measurement shared by ``bench/locality.py`` and the
per-region query tuning (``scripts/tune_region_queries.py``), so both judge by the same numbers.

For a target/reference pair and a region taken from the target's own cluster map (dilated a
little: a halo right at the edge is not a leak): the mean absolute pixel change inside and
outside the region, how far the inside moved toward the reference, and the out-change of the
plain baseline (swapping the same layers' *whole* style vectors) read off at equal inside change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .masks import dilate
from .queries import blend_styles

BASE_T = (0.5, 1.0)  #: baseline mixing fractions; the (in, out) curve runs through 0 and these


def render_rgb(gen, styles_list: list[Mapping[str, Tensor]], size: int, stop: int | None) -> np.ndarray:
    """Style dicts → [B, size, size, 3] float 0–255 (box-downsampled); one at a time, which is
    faster than batching on a CPU."""
    out = []
    with torch.no_grad():
        for styles in styles_list:
            img = gen.synthesize(styles, stop_resolution=stop).image
            img = (img.clamp(-1, 1) + 1) * 127.5
            if img.shape[-1] != size:
                img = F.adaptive_avg_pool2d(img, size) if img.shape[-1] > size else F.interpolate(
                    img, size=(size, size), mode="bilinear", align_corners=False)
            out.append(img[0].permute(1, 2, 0).cpu().numpy())
    return np.stack(out)


def change(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """Mean |a − b| (RGB mean, 0–255) inside and outside ``region``."""
    d = np.abs(a - b).mean(-1)
    return float(d[region].mean()), float(d[~region].mean())


def at_equal_inside(curve: list[tuple[float, float]], inside: float) -> float:
    """Baseline out-change at a given in-change, on the piecewise-linear (in, out) curve from (0, 0)."""
    pts = [(0.0, 0.0)] + sorted(curve)
    for (i0, o0), (i1, o1) in zip(pts, pts[1:]):
        if i0 <= inside <= i1 and i1 > i0:
            return o0 + (o1 - o0) * (inside - i0) / (i1 - i0)
    i1, o1 = pts[-1]
    return o1 * inside / max(i1, 1e-9)


def pair_styles(gen, i: int, seed_base: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Target and reference styles of measuring pair ``i``: seeds ``base + 2i`` and ``base + 2i + 1``
    at ψ 0.7, the same pairs for the benchmark (base 10000) and the tuning (base 30000)."""
    from ..document import SeedSource

    with torch.no_grad():
        t = gen.styles(SeedSource(seed_base + 2 * i, 0.7).latent(gen))
        r = gen.styles(SeedSource(seed_base + 2 * i + 1, 0.7).latent(gen))
    return t, r


@dataclass
class PairImages:
    """A target/reference pair rendered once and reused for every region and query."""

    target_styles: Mapping[str, Tensor]
    reference_styles: Mapping[str, Tensor]
    target: np.ndarray
    reference: np.ndarray
    labels: np.ndarray  #: the target's cluster map at the measuring size


def prepare_pair(gen, cat, target: Mapping[str, Tensor], reference: Mapping[str, Tensor], size: int,
                 stop: int | None) -> PairImages:
    timg, rimg = render_rgb(gen, [target, reference], size, stop)
    with torch.no_grad():
        labels = cat.cluster_map(gen, target, size)[0].cpu().numpy()
    return PairImages(target, reference, timg, rimg, labels)


@dataclass
class Locality:
    inside: float  #: mean |Δ| inside the region
    outside: float  #: mean |Δ| outside it
    moved: float  #: 1 − |G − R|_in / |T − R|_in
    baseline_outside: float  #: style mixing's out-change at the same inside change
    area: float  #: share of the picture the (dilated) region covers


def measure(gen, pair: PairImages, clusters, q: Mapping[str, np.ndarray], size: int, stop: int | None,
            margin: int) -> Locality | None:
    """Locality of the transfer ``q`` of ``clusters`` on one pair (None: region absent or everywhere)."""
    region = dilate(np.isin(pair.labels, list(clusters)), margin)
    if not region.any() or region.all():
        return None
    s, r = pair.target_styles, pair.reference_styles
    ours = blend_styles(s, r, q, 1.0)
    layers = {k for k, v in q.items() if np.any(v)}
    base = [blend_styles(s, r, {k: np.ones(s[k].shape[1], np.float32) for k in layers}, t) for t in BASE_T]
    imgs = render_rgb(gen, [ours] + base, size, stop)
    cin, cout = change(imgs[0], pair.target, region)
    gap = np.abs(pair.target - pair.reference).mean(-1)[region].mean()
    left = np.abs(imgs[0] - pair.reference).mean(-1)[region].mean()
    curve = [change(im, pair.target, region) for im in imgs[1:]]
    return Locality(cin, cout, float(1 - left / max(gap, 1e-9)), at_equal_inside(curve, cin), float(region.mean()))
