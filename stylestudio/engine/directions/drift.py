"""What a slider does to the *other* attributes: measured effects and pair-wise drift.

A slider is only as good as what it leaves alone. SC²GAN's claim is about strongly correlated
pairs, so the figure of merit is per pair: moving attribute A by its slider, how much does B
move, in B's own slider units (half its spread across faces), per slider unit of A's own change.
The same per-unit effects, measured once on sample faces and stored in the library, give the
editor its "what the others did" readout without measuring anything while the user drags.

Effects are central differences (the edit at +s minus the edit at −s, over 2s), which cancels
the even part of a curved response, averaged over faces.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from . import labels as _labels
from .labels import CancelCheck, Progress
from .library import DirectionLibrary

#: ``measure(ws)`` → attribute name → values [N], for W+ codes [N, num_ws, w_dim]
Measure = Callable[[np.ndarray], Mapping[str, np.ndarray]]
#: the keep settings whose effects a library stores: no correction, and every other attribute kept
KEEP_MODES = ("none", "others")
EFFECT_STEPS = (2.0,)  #: slider amounts whose ±edits measure an effect (central differences)


def keep_set(library: DirectionLibrary, name: str, mode: str) -> tuple[str, ...]:
    """The attributes a slider of ``name`` holds still under keep ``mode`` (see :data:`KEEP_MODES`)."""
    if mode == "none":
        return ()
    if mode == "others":
        return tuple(k for k in library.names() if k != name)
    raise ValueError(f"unknown keep mode {mode!r}")


def slider_effects(measure: Measure, w: np.ndarray, library: DirectionLibrary, name: str, num_ws: int,
                   keep: Iterable[str] = (), steps: Sequence[float] = EFFECT_STEPS) -> dict[str, np.ndarray]:
    """Per-face change of every measured attribute per slider unit of ``name`` (attribute units).

    ``w``: W latents [N, w_dim]. Returns name → [N] (NaN where a predictor failed on a face).
    """
    keep = tuple(keep)
    base = np.repeat(np.asarray(w, np.float32)[:, None, :], num_ws, axis=1)
    total: dict[str, np.ndarray] = {}
    for s in steps:
        up = measure(base + library.delta(name, s, num_ws, keep).numpy()[None])
        down = measure(base + library.delta(name, -s, num_ws, keep).numpy()[None])
        for k in up:
            d = (np.asarray(up[k], np.float64) - np.asarray(down[k], np.float64)) / (2.0 * s)
            total[k] = total.get(k, 0.0) + d / len(steps)
    return total


def mean_effects(per_face: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean over faces of :func:`slider_effects` (faces a predictor failed on are left out)."""
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in per_face.items()}


def pair_drift(effects: Mapping[str, float], a: str, b: str, units: Mapping[str, float]) -> float:
    """B's change in B's slider units per slider unit of A's own change, for a move of A's slider.

    ``effects``: mean change of each attribute per slider unit of A (attribute units, as from
    :func:`mean_effects`); ``units``: each attribute's slider unit in attribute units. 0 is a
    perfectly disentangled pair; ±1 means B follows A one for one.
    """
    own = effects[a] / units[a]
    if not np.isfinite(own) or abs(own) < 1e-9:
        return float("nan")
    return float(effects[b] / units[b] / own)


def correlation_pairs(names: Sequence[str], corr: np.ndarray, top: int) -> list[tuple[str, str, float]]:
    """The ``top`` most strongly correlated attribute pairs (a, b, r), strongest first."""
    c = np.asarray(corr, np.float64)
    pairs = [(names[i], names[j], float(c[i, j])) for i in range(len(names)) for j in range(i + 1, len(names))]
    return sorted(pairs, key=lambda p: -abs(p[2]))[:top]


def render_measure(generator, predictor, stop: int | None, cancelled: CancelCheck | None = None) -> Measure:
    """A :data:`Measure` that renders each W+ code at preview size and runs the attribute predictors."""
    from ...errors import Cancelled

    def measure(ws: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, list[float]] = {}
        for i in range(len(ws)):
            if cancelled is not None and cancelled():
                raise Cancelled("measuring slider effects cancelled")
            wi = torch.from_numpy(np.ascontiguousarray(ws[i:i + 1])).to(generator.device)
            img = _labels.render_small(generator, wi, stop).cpu()
            m = predictor.measure(img)
            for k in predictor.names:
                out.setdefault(k, []).append(float(m[k][0]))
        return {k: np.array(v) for k, v in out.items()}

    return measure


def library_effects(measure: Measure, w: np.ndarray, library: DirectionLibrary, num_ws: int, *,
                    modes: Sequence[str] = KEEP_MODES, progress: Progress | None = None,
                    start_fraction: float = 0.0, end_fraction: float = 1.0) -> None:
    """Measure every slider's effects on sample faces ``w`` and store them in each direction's
    ``meta["effects"]`` (keep mode → attribute → mean change per slider unit, attribute units)."""
    names = library.names()
    for k, name in enumerate(names):
        if progress:
            progress(f"measuring what the {name} slider does to the others",
                     start_fraction + (end_fraction - start_fraction) * k / len(names))
        d = library[name]
        d.meta["effects"] = {mode: {a: round(v, 6) for a, v in
                                    mean_effects(slider_effects(measure, w, library, name, num_ws,
                                                                keep_set(library, name, mode))).items()
                                    if a in library and np.isfinite(v)}
                             for mode in modes}
    library.meta["effects_faces"] = int(len(w))


#: |r| over the labelled faces from which an attribute is named in a slider's readout even when
#: it did not move (the user sees "smile unchanged" where smile would be expected to follow)
READOUT_CORRELATION = 0.2


def readout_partners(library: DirectionLibrary, name: str, top: int = 2,
                     threshold: float = READOUT_CORRELATION) -> list[str]:
    """The attributes most correlated with ``name`` over the library's labelled faces."""
    attrs, corr = library.meta.get("attributes"), library.meta.get("correlation")
    try:
        c = np.asarray(corr, np.float64)
        if not isinstance(attrs, list) or name not in attrs or c.shape != (len(attrs), len(attrs)):
            return []
    except (TypeError, ValueError):  # a hand-edited library: no partners rather than no sliders
        return []
    row = c[attrs.index(name)]
    found = [(attrs[j], abs(float(r))) for j, r in enumerate(row)
             if attrs[j] != name and attrs[j] in library and abs(float(r)) >= threshold]
    return [n for n, _ in sorted(found, key=lambda p: -p[1])[:top]]


def _number(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) else None


def slider_effects_summary(library: DirectionLibrary, name: str) -> dict:
    """What the editor needs to say what slider ``name`` does to the others, computed once when the
    sliders are listed: ``effects`` (keep mode → attribute → change per slider unit, attribute
    units; empty when the library has none stored), ``partners``, and ``faces`` measured on."""
    effects = library[name].meta.get("effects")
    effects = effects if isinstance(effects, dict) else {}
    clean = {mode: {k: _number(v) for k, v in vals.items() if k != name and k in library and _number(v) is not None}
             for mode, vals in effects.items() if mode in KEEP_MODES and isinstance(vals, dict)}
    return {"effects": clean, "partners": readout_partners(library, name) if clean else [],
            "faces": int(_number(library.meta.get("effects_faces")) or 0)}
