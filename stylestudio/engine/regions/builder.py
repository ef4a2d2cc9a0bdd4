"""Building a region catalog: sample faces, cluster one layer, measure every style channel.

The steps are those of :mod:`.catalog`'s description; a build is long (minutes on a CPU), so it
reports progress and stops when cancelled (``tasks.BuildCatalog`` runs it as a job).
"""
from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from ..generator import Generator
# The engine's one progress-and-cancel convention (engine/progress.py); the old names kept.
from ..progress import CancelFlag, Progress, check_cancel, is_cancelled
from .catalog import DEFAULT_K, Catalog
from .cluster_maps import cluster_probs, cluster_scores
from .kmeans import spherical_kmeans
from .taps import default_cluster_layer, probe_taps, stop_for, style_input_taps

_is_cancelled = is_cancelled


def _check_cancel(cancel: CancelFlag) -> None:
    check_cancel(cancel, "catalog building was cancelled")


def sample_styles(gen: Generator, start: int, count: int, *, psi: float, seed: int) -> "OrderedDict[str, Tensor]":
    """Styles of the catalog's sample faces ``start … start+count-1`` (reproducible per index)."""
    zs = np.stack([np.random.RandomState([seed, start + i]).randn(gen.z_dim) for i in range(count)])
    z = torch.from_numpy(zs.astype(np.float32)).to(gen.device)
    return gen.styles(gen.mapping(z, psi))


class _Accumulator:
    """Running sums for M of one style layer; one pass, standardisation applied at the end.

    With Ã = (A − μ)/σ: Σ Ã²·U_k = (Σ A²U_k − 2μ Σ A U_k + μ² Σ U_k)/σ², and μ, σ come from the
    same sums (memberships sum to one at every pixel), so no second pass over the faces is needed.
    """

    def __init__(self, k: int, c: int) -> None:
        self.s2 = np.zeros((k, c))
        self.s1 = np.zeros((k, c))
        self.s0 = np.zeros(k)

    def add(self, acts: Tensor, probs: Tensor) -> None:
        a = acts.double()
        u = probs.double()
        self.s2 += torch.einsum("nkhw,nchw->kc", u, a * a).cpu().numpy()
        self.s1 += torch.einsum("nkhw,nchw->kc", u, a).cpu().numpy()
        self.s0 += u.sum((0, 2, 3)).cpu().numpy()

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        count = self.s0.sum()
        mu = self.s1.sum(0) / count
        var = np.maximum(self.s2.sum(0) / count - mu**2, 0.0)
        std = np.sqrt(var)
        dead = std < 1e-6 * max(float(std.max()), 1e-12)
        energy = self.s2 - 2 * mu * self.s1 + (mu**2) * self.s0[:, None]
        energy = np.maximum(energy, 0.0)
        col = energy.sum(0, keepdims=True)
        m = np.where(col > 0, energy / np.maximum(col, 1e-300), 0.0)
        area = self.s0 / count
        m[:, dead] = area[:, None]  # a constant channel acts everywhere alike
        return m.astype(np.float32), mu.astype(np.float32), np.where(dead, 1.0, std).astype(np.float32)


def build_catalog(
    gen: Generator,
    model: str,
    *,
    k: int = DEFAULT_K,
    layer: str | None = None,
    samples: int = 200,
    fit_samples: int | None = None,
    psi: float = 0.7,
    seed: int = 0,
    batch: int = 4,
    max_rows: int = 120_000,
    effect_samples: int = 0,
    progress: Progress | None = None,
    cancel: CancelFlag = None,
) -> Catalog:
    """Sample faces, cluster ``layer``, and measure every style layer's contributions.

    ``fit_samples`` faces (default ``samples``) feed k-means, at most ``max_rows`` pixels of them;
    all ``samples`` faces feed M. ``progress(message, fraction)`` is called along the way and
    ``cancel`` (callable or Event) is polled between batches: raises :class:`Cancelled`.
    ``effect_samples`` > 0 also measures the pixel-effect matrices (regions.effects) on that many
    faces at the generator's 256-px preview, for the effect query.
    """
    if not 2 <= k <= 64:
        raise InputError(f"k must be between 2 and 64, got {k}")
    if samples < 1:
        raise InputError(f"samples must be positive, got {samples}")
    fit_samples = min(samples, fit_samples or samples)
    layer = layer or default_cluster_layer(gen)
    if layer not in gen.tap_names:
        raise InputError(f"unknown layer {layer!r}; this model has: {', '.join(gen.tap_names)}")
    report = progress or (lambda m, f: None)
    t0 = time.time()
    shapes = probe_taps(gen)
    if len(shapes[layer]) != 3 or shapes[layer][1] < 2:
        raise InputError(f"layer {layer!r} is not a spatial feature map")
    inputs = style_input_taps(gen, shapes)
    rng = np.random.RandomState(seed)

    # 1. activations of the cluster layer → spherical k-means
    c, h, w = shapes[layer]
    per_face = max(1, min(h * w, max_rows // fit_samples))
    rows = []
    done = 0
    with torch.no_grad():
        stop = stop_for(gen, layer)
        for i in range(0, fit_samples, batch):
            _check_cancel(cancel)
            n = min(batch, fit_samples - i)
            styles = sample_styles(gen, i, n, psi=psi, seed=seed)
            try:
                feats = gen.synthesize(styles, taps=[layer], stop_resolution=stop).features[layer]
            except ValueError:
                feats = gen.synthesize(styles, taps=[layer]).features[layer]
            x = feats.float().permute(0, 2, 3, 1).reshape(n, h * w, c).cpu().numpy()
            for face in x:
                pick = rng.choice(h * w, per_face, replace=False) if per_face < h * w else slice(None)
                rows.append(face[pick])
            done += n
            report(f"cluster layer activations {done}/{fit_samples}", 0.25 * done / fit_samples)
    _check_cancel(cancel)
    report(f"spherical k-means (k={k}) on {sum(len(r) for r in rows)} pixels", 0.25)
    centroids, _ = spherical_kmeans(np.concatenate(rows), k, seed=seed)
    del rows
    _check_cancel(cancel)

    # 2. cluster memberships on every style layer's input → contribution matrices
    cent = torch.from_numpy(centroids).to(gen.device)
    taps = sorted({t for t in inputs.values() if t is not None} | {layer})
    accs = {name: _Accumulator(k, gen.layer(name).channels) for name in inputs}
    area = np.zeros(k)
    done = 0
    with torch.no_grad():
        for i in range(0, samples, batch):
            _check_cancel(cancel)
            n = min(batch, samples - i)
            styles = sample_styles(gen, fit_samples + i, n, psi=psi, seed=seed)
            feats = gen.synthesize(styles, taps=taps).features
            scores = cluster_scores(feats[layer], cent)
            area += cluster_probs(scores, scores.shape[-2:]).double().mean((2, 3)).sum(0).cpu().numpy()
            probs_at: dict[tuple[int, int], Tensor] = {}
            for name, tap in inputs.items():
                if tap is None:
                    continue
                acts = feats[tap]
                size = tuple(acts.shape[-2:])
                if size not in probs_at:
                    probs_at[size] = cluster_probs(scores, size)  # type: ignore[arg-type]
                accs[name].add(acts, probs_at[size])  # type: ignore[index]
            done += n
            report(f"contributions {done}/{samples}", 0.25 + 0.75 * done / samples)
    area /= samples
    order = np.argsort(-area, kind="stable")  # biggest clusters first: stable, readable numbering
    contributions, mean, std = {}, {}, {}
    for name in inputs:
        if inputs[name] is None:
            ch = gen.layer(name).channels
            m, mu, sd = np.repeat(area[:, None], ch, 1).astype(np.float32), np.zeros(ch, np.float32), np.ones(ch, np.float32)
        else:
            m, mu, sd = accs[name].finish()
        contributions[name] = m[order]
        mean[name], std[name] = mu, sd
    meta = {"samples": samples, "fit_samples": fit_samples, "psi": psi, "seed": seed,
            "built": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.time() - t0, 1),
            "arch": gen.arch, "resolution": gen.resolution}
    cat = Catalog(model=model, layer=layer, centroids=centroids[order], style_layers=tuple(inputs),
                  contributions=contributions, mean=mean, std=std, input_taps=inputs,
                  area=area[order].astype(np.float32), meta=meta)
    if effect_samples > 0:
        from ..directions.labels import preview_stop
        from .effects import measure_effects

        stop = preview_stop(gen, 256)
        cat.effects = measure_effects(gen, cat, samples=effect_samples, stop_resolution=stop, psi=psi, seed=seed,
                                      cancel=cancel, progress=lambda m, f: report(m, 0.99 * f))
        cat.meta["effects"] = {"samples": effect_samples, "probes": 2, "stop_resolution": stop}
        cat.meta["seconds"] = round(time.time() - t0, 1)
    report("done", 1.0)
    return cat
