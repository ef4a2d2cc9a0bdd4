""""Fit to this face": a transfer's channel weights fitted to one target/reference pair.

The catalog's queries pick ``q`` from statistics averaged over many faces. On the default model
that leaves small or diffuse regions (nose, forehead, cheeks, skin, neck) changing faintly, and
what they do change leaks (``bench/locality.py``). Here ``q`` is fitted by gradient descent for
the pair at hand, over a generous starting query's channels, toward the ideal composite: the
start's result inside the region, the untouched target outside it (a band of ``margin`` around
the region is left free, as the benchmark does not count it either)::

    loss = mean_in (G(q) − G(q₀))² + β · mean_out ρ(G(q) − T)

``ρ`` is a Charbonnier (smooth L1) penalty: leaks are judged by mean absolute change. The fit
renders the generator's preview at ``resolution`` and takes seconds on a CPU, which is why it is
a setting the user turns on rather than the default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from .catalog import resize_mask
from .masks import dilate
from .queries import QueryParams, blend_styles, query_layers


@dataclass(frozen=True)
class FitSettings:
    """The defaults are ``scripts/query_limit.py``'s best on the default model (β 1 beat β 4)."""

    steps: int = 20
    beta: float = 1.0  #: weight of the leak outside against reaching the start inside
    lr: float = 0.05  #: Adam step on q (q lives in [0, 1])
    resolution: int = 128  #: the preview the fit renders (``stop_resolution``)
    margin: float = 0.03  #: free band around the region, as a share of the picture's side
    #: the starting query whose channels may be used: generous, since the fit removes what leaks
    start: QueryParams = QueryParams("effect", tau=0.3)


def region_at(mask: np.ndarray, size: int) -> np.ndarray:
    """Any-size region mask (bool or 0–1) → bool [size, size] (resized as soft masks are, then ≥ ½)."""
    m = torch.as_tensor(np.asarray(mask, np.float32))[None, None]
    return resize_mask(m, (size, size))[0, 0].numpy() >= 0.5


def fit_query(gen, target: Mapping[str, Tensor], reference: Mapping[str, Tensor], region: np.ndarray,
              q0: Mapping[str, np.ndarray], settings: FitSettings = FitSettings()) -> dict[str, np.ndarray]:
    """``q`` over ``q0``'s channels for this pair. ``region``: bool mask of any size on the target
    (one that vanishes at the fit's resolution is an :class:`InputError`).

    Returns float32 rows in [0, 1] with the same layers as ``q0``; channels ``q0`` left at 0 stay 0.
    """
    names = [n for n, v in q0.items() if np.any(v)]
    if not names:
        return {n: np.asarray(v, np.float32) for n, v in q0.items()}
    stop = settings.resolution if settings.resolution < gen.resolution else None
    with torch.no_grad():
        plain = gen.synthesize(dict(target), stop_resolution=stop).image
    size = plain.shape[-1]
    inside_np = region_at(region, size)
    if not inside_np.any():
        raise InputError("the painted region is too small to fit to: paint a larger area")
    margin = max(1, round(settings.margin * size))
    outside_np = ~dilate(inside_np, margin)
    inside = torch.from_numpy(inside_np).float()[None, None].to(plain)
    outside = torch.from_numpy(outside_np).float()[None, None].to(plain)
    n_in, n_out = inside.sum() * 3, max(float(outside.sum()) * 3, 1.0)

    allowed = {n: torch.as_tensor((np.asarray(q0[n]) > 0).astype(np.float32)).to(plain) for n in names}
    theta = {n: torch.as_tensor(np.asarray(q0[n], np.float32)).to(plain).clone().requires_grad_(True)
             for n in names}

    def blended() -> dict[str, Tensor]:
        return blend_styles(target, reference, {n: theta[n].clamp(0, 1) * allowed[n] for n in names})

    with torch.no_grad():
        start = gen.synthesize(blended(), stop_resolution=stop).image
    opt = torch.optim.Adam(list(theta.values()), lr=settings.lr)
    with torch.enable_grad():
        for _ in range(settings.steps):
            img = gen.synthesize(blended(), stop_resolution=stop).image
            loss = ((img - start).square() * inside).sum() / n_in \
                + settings.beta * (((img - plain).square() + 1e-4).sqrt() * outside).sum() / n_out
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    out = {n: np.asarray(v, np.float32) for n, v in q0.items()}
    for n in names:
        out[n] = (theta[n].detach().clamp(0, 1) * allowed[n]).cpu().numpy().astype(np.float32)
    return out


def fit_named_region(gen, cat, target: Mapping[str, Tensor], reference: Mapping[str, Tensor],
                     clusters, settings: FitSettings = FitSettings()) -> dict[str, np.ndarray]:
    """The fitted ``q`` of catalog ``clusters``, on the target's own cluster map (the editor's named
    regions and ``bench/locality.py --fit`` both go through here)."""
    with torch.no_grad():
        labels = cat.cluster_map(gen, target, settings.resolution)[0].cpu().numpy()
    region = np.isin(labels, list(clusters))
    q0 = query_layers(cat.rows(clusters), settings.start, cat.effect_rows(clusters))
    if not region.any():  # e.g. ears under long hair: nothing of the region to take a look into
        return {n: np.zeros_like(np.asarray(v, np.float32)) for n, v in q0.items()}
    return fit_query(gen, target, reference, region, q0, settings)

