"""InterFaceGAN attribute directions: linear boundaries in W fitted on labelled generated faces.

For each attribute: a linear SVM separates the top from the bottom 30 % of faces in W; its unit
normal is the direction, with offset and the attribute's linear score scale. Two measurements by
editing then make a slider meaningful on every face:

* *layers*: the attribute direction is applied to the W+ rows of one synthesis stage at a time;
  the stages that carry most of the attribute change become the direction's rows (restricting a
  pose edit to coarse rows, a colour edit to fine rows, keeps it from touching the rest);
* *unit*: the W step of one slider unit is calibrated on real edits so that one unit moves the
  attribute by half its standard deviation across generated faces.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC

from ...errors import Cancelled, InputError
from .labels import CancelCheck, LabelSet, Progress, preview_stop, render_small
from .library import Direction, DirectionLibrary

TAIL = 0.3  #: fraction of faces taken as positives and as negatives (InterFaceGAN's top/bottom split)
UNIT_STD = 0.5  #: one slider unit = this many standard deviations of the attribute
LAYER_SHARE = 0.9  #: the chosen stages carry at least this share of the attribute's change


def fit_boundary(w: np.ndarray, y: np.ndarray, tail: float = TAIL, seed: int = 0,
                 sample_weight: np.ndarray | None = None) -> dict:
    """SVM boundary for a continuous attribute ``y`` over latents ``w`` ([N, D]).

    Returns ``normal`` (unit, pointing to larger ``y``), ``offset`` (signed distance of a latent
    is ``normal·w + offset``), ``accuracy`` on a held-out fifth, and ``slope`` (attribute units
    per W unit along the normal, by least squares over all faces).
    """
    ok = np.isfinite(y)
    w, y = w[ok].astype(np.float64), y[ok].astype(np.float64)
    sw = None if sample_weight is None else sample_weight[ok]
    lo, hi = np.quantile(y, [tail, 1 - tail])
    sel = (y <= lo) | (y >= hi)
    if sel.sum() < 20 or lo == hi:
        raise InputError("too few distinct labels to fit a boundary")
    x, t = w[sel], (y[sel] >= hi).astype(int)
    wsel = None if sw is None else sw[sel]
    mean = w.mean(0)
    idx = np.arange(len(t))
    tr, te = train_test_split(idx, test_size=0.2, random_state=seed, stratify=t)
    clf = LinearSVC(C=0.01, max_iter=20000, dual=False)
    clf.fit(x[tr] - mean, t[tr], sample_weight=None if wsel is None else wsel[tr])
    acc = float(clf.score(x[te] - mean, t[te]))
    clf.fit(x - mean, t, sample_weight=wsel)
    coef = clf.coef_[0]
    norm = float(np.linalg.norm(coef))
    normal = coef / norm
    offset = float(clf.intercept_[0] / norm - normal @ mean)
    proj = w @ normal
    slope = float(np.cov(proj, y)[0, 1] / max(np.var(proj, ddof=1), 1e-12))
    return {"normal": normal.astype(np.float32), "offset": offset, "accuracy": acc, "slope": slope,
            "std": float(y.std()), "mean": float(y.mean()), "count": int(ok.sum())}


def stage_rows(generator) -> "OrderedDict[int, list[int]]":
    """W+ rows that feed each synthesis stage (rows feeding nothing are left out)."""
    out: OrderedDict[int, list[int]] = OrderedDict()
    for layer in generator.style_layout:
        rows = out.setdefault(layer.stage, [])
        if layer.w_index not in rows:
            rows.append(layer.w_index)
    return out


def _edit_ws(w: np.ndarray, vector: np.ndarray, amount: float, rows: Sequence[int] | None, num_ws: int) -> np.ndarray:
    ws = np.repeat(w[:, None, :], num_ws, axis=1)
    sel = slice(None) if rows is None else list(rows)
    ws[:, sel, :] += amount * vector[None, None, :]
    return ws


def measure_edits(generator, predictor, w: np.ndarray, moves: list[tuple[np.ndarray, float, Sequence[int] | None]],
                  stop: int | None, cancelled: CancelCheck | None = None) -> list[dict[str, np.ndarray]]:
    """Attributes of each face of ``w`` after each move (vector, W distance, rows)."""
    out = []
    for vec, amount, rows in moves:
        if cancelled is not None and cancelled():
            raise Cancelled("direction building cancelled")
        ws = _edit_ws(w, vec, amount, rows, generator.num_ws)
        imgs = torch.cat([render_small(generator, torch.from_numpy(ws[i:i + 1]).to(generator.device), stop)
                          for i in range(len(ws))]).cpu()
        out.append(predictor.measure(imgs))
    return out


def layer_profile(generator, predictor, w: np.ndarray, normal: np.ndarray, step: float, name: str,
                  stop: int | None, cancelled: CancelCheck | None = None) -> dict[int, float]:
    """Mean change of attribute ``name`` when only one stage's rows move by ``step`` along ``normal``."""
    groups = stage_rows(generator)
    base = measure_edits(generator, predictor, w, [(normal, 0.0, None)], stop, cancelled)[0][name]
    moves = [(normal, step, rows) for rows in groups.values()]
    res = measure_edits(generator, predictor, w, moves, stop, cancelled)
    return {stage: float(np.nanmean(r[name] - base)) for stage, r in zip(groups, res)}


def choose_rows(generator, profile: dict[int, float], share: float = LAYER_SHARE) -> tuple[int, ...]:
    """The stages with the largest positive contributions until ``share`` of their sum is reached."""
    groups = stage_rows(generator)
    pos = {s: v for s, v in profile.items() if v > 0}
    total = sum(pos.values())
    if total <= 0:
        return ()
    rows: list[int] = []
    acc = 0.0
    for s, v in sorted(pos.items(), key=lambda kv: -kv[1]):
        rows += groups[s]
        acc += v
        if acc >= share * total:
            break
    return tuple(sorted(rows))


def calibrate_unit(generator, predictor, w: np.ndarray, vector: np.ndarray, rows: Sequence[int] | None,
                   name: str, target: float, guess: float, stop: int | None,
                   cancelled: CancelCheck | None = None) -> tuple[float, float]:
    """W step per slider unit so that ±1.5 units move ``name`` by ``target`` per unit on average.

    Returns (unit, measured change per unit at the returned unit, by linear rescaling).
    """
    moves = [(vector, 1.5 * guess, rows), (vector, -1.5 * guess, rows)]
    up, down = measure_edits(generator, predictor, w, moves, stop, cancelled)
    per_unit = float(np.nanmean(up[name] - down[name]) / 3.0)
    if not np.isfinite(per_unit) or per_unit <= 1e-6 * max(target, 1e-6):
        return guess, per_unit
    return guess * target / per_unit, target


def build_library(generator, model: str, labels: LabelSet, predictor, *, names: Sequence[str] | None = None,
                  probe_faces: int = 12, calib_faces: int = 24, seed: int = 0,
                  progress: Progress | None = None, cancelled: CancelCheck | None = None,
                  start_fraction: float = 0.0, end_fraction: float = 1.0) -> DirectionLibrary:
    """Fit, place on layers and calibrate every attribute direction; correlations go in ``meta``."""
    from ..attributes import ATTRIBUTES

    names = [n for n in (names or getattr(predictor, "names", None) or list(labels.attrs)) if n in labels.attrs]
    stop = preview_stop(generator, 256)
    rng = np.random.RandomState(seed)
    probe = labels.w[rng.choice(len(labels), probe_faces, replace=False)]
    calib = labels.w[rng.choice(len(labels), calib_faces, replace=False)]
    dirs = []
    for k, name in enumerate(names):
        frac = start_fraction + (end_fraction - start_fraction) * k / len(names)
        if progress:
            progress(f"fitting the {name} direction", frac)
        fit = fit_boundary(labels.w, labels.attrs[name], seed=seed)
        target = UNIT_STD * fit["std"]
        guess = target / max(fit["slope"], 1e-6)
        profile = layer_profile(generator, predictor, probe, fit["normal"], 2 * guess, name, stop, cancelled)
        rows = choose_rows(generator, profile) or tuple(range(generator.num_ws))
        unit, per_unit = calibrate_unit(generator, predictor, calib, fit["normal"], rows, name, target, guess,
                                        stop, cancelled)
        spec = ATTRIBUTES.get(name)
        dirs.append(Direction(
            name=name, label=spec.label if spec else name.replace("_", " ").capitalize(),
            vector=fit["normal"], layers=rows, unit=float(unit),
            meta={"offset": fit["offset"], "accuracy": fit["accuracy"], "slope": fit["slope"],
                  "attribute_mean": fit["mean"], "attribute_std": fit["std"], "unit_change": target,
                  "attribute_unit": spec.unit if spec else "", "positive": spec.positive if spec else "",
                  "layer_profile": {str(s): v for s, v in profile.items()}, "faces": fit["count"],
                  "method": "interfacegan"}))
    ok = labels.valid(names)
    corr = np.corrcoef(np.stack([labels.attrs[n][ok] for n in names]))
    normals = np.stack([d.vector for d in dirs])
    meta = {"faces_labelled": len(labels), "faces_valid": int(ok.sum()), "psi": labels.psi,
            "attributes": names, "correlation": np.round(corr, 4).tolist(),
            "normal_cosine": np.round(normals @ normals.T, 4).tolist(),
            "unit_definition": f"one slider unit = {UNIT_STD} std of the attribute across generated faces",
            "slider_range": [-3, 3]}
    return DirectionLibrary(model, dirs, kind="attributes", meta=meta)
