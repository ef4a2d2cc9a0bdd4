"""Where in the *picture* each style channel acts: the pixel-effect share of every cluster.

Collins et al.'s contribution matrix M says where a channel's *activations* live. What a user
judges, and what ``bench/locality.py`` measures, is where the *picture* changes when the channel's
style moves; a channel whose activations sit in the eyes can still shift the colours of the whole
face through the layers after it. So, next to M, a catalog may hold effect matrices E:

    E[k, c] = mean over faces of Σ_{pixels p in cluster k} ‖∂image_p / ∂σ_c‖²

the energy of channel c's first-order pixel effect that lands in cluster k. ``E[k] / Σ_k E`` is
the share of the channel's effect inside cluster k; the *effect* query takes the channels whose
share inside the region is at least τ (:func:`stylestudio.engine.regions.queries.effect_query`).

The per-pixel Jacobian is far too large to form, so the energy is estimated with random sign
probes (Hutchinson): for r with independent ±1 entries on the cluster's pixels and 0 elsewhere,
``E_r[(rᵀJ)_c²] = Σ_{p∈k} ‖J_{p,c}‖²``, and ``rᵀJ`` is one backward pass. The image is the
generator's cheap preview (``stop_resolution``); style layers of the stages after it get no
effect matrix and the query falls back to M there.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from ..generator import Generator
from ..progress import CancelFlag, Progress
from .builder import _check_cancel, sample_styles
from .catalog import Catalog

EFFECT_SEED_OFFSET = 1_000_003  #: effect faces are drawn apart from the clustering faces


def measure_effects(gen: Generator, cat: Catalog, *, samples: int = 32, probes: int = 2,
                    stop_resolution: int | None = None, psi: float = 0.7, seed: int = 0,
                    progress: Progress | None = None, cancel: CancelFlag = None) -> dict[str, np.ndarray]:
    """Effect matrices ``{style layer: E [K, channels] float32}`` for the layers the image reaches."""
    report: Callable[[str, float], None] = progress or (lambda m, f: None)
    k = cat.k
    totals: dict[str, np.ndarray] = {}
    t0 = time.time()
    gen_rng = torch.Generator().manual_seed(seed)
    for i in range(samples):
        _check_cancel(cancel)
        with torch.no_grad():
            base = sample_styles(gen, i, 1, psi=psi, seed=seed + EFFECT_SEED_OFFSET)
        styles = {name: s.detach().clone().requires_grad_(True) for name, s in base.items()}
        with torch.enable_grad():
            image = gen.synthesize(styles, stop_resolution=stop_resolution).image
            with torch.no_grad():
                labels = cat.cluster_map(gen, base, image.shape[-1])[0].to(image.device)
            names = list(styles)
            for cluster in range(k):
                inside = (labels == cluster).to(image.dtype)
                if not bool(inside.any()):
                    continue
                for _ in range(probes):
                    signs = torch.randint(0, 2, image.shape, generator=gen_rng).to(image) * 2 - 1
                    grads = torch.autograd.grad((image * signs * inside).sum(), [styles[n] for n in names],
                                                retain_graph=True, allow_unused=True)
                    for name, g in zip(names, grads):
                        if g is None:
                            continue
                        acc = totals.setdefault(name, np.zeros((k, g.shape[1])))
                        acc[cluster] += (g[0].double() ** 2).cpu().numpy() / probes
        report(f"pixel effects {i + 1}/{samples} faces ({time.time() - t0:.0f} s)", (i + 1) / samples)
    return {name: (acc / max(samples, 1)).astype(np.float32) for name, acc in totals.items()
            if float(acc.sum()) > 0}


def effect_shares(effects: Mapping[str, np.ndarray], clusters: Sequence[int]) -> dict[str, np.ndarray]:
    """Per style layer with an effect matrix: share of each channel's pixel effect in ``clusters``."""
    idx = list(clusters)
    out = {}
    for name, e in effects.items():
        total = e.sum(0)
        out[name] = np.where(total > 0, e[idx].sum(0) / np.maximum(total, 1e-30), 0.0).astype(np.float32)
    return out
