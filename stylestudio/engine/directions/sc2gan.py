"""SC²GAN-style refit: directions that stay put on the attributes they are correlated with.

Generated faces inherit the correlations of the training photos (older faces wear glasses more,
smiles open the mouth), so an InterFaceGAN boundary fitted on them mixes correlated attributes
into its normal. SC²GAN's remedy: synthesise the *rare* combinations (old and not X, young and
X), which a boundary fitted on natural samples never sees, and refit on both.

1. For each strongly correlated pair (a, b), take common faces (a and b both low, or both high,
   for a positive correlation) and move a alone towards the rare side, editing only a's own W+
   rows (b mostly lives on other rows and stays where it was).
2. Re-project each edited W+ code into W. We solve this in StyleSpace, where the generator is
   affine per layer: the W code whose styles are closest (per-layer-normalised least squares) to
   the edited code's styles, ``w = (Σ_l A_lᵀA_l)⁻¹ Σ_l A_lᵀA_l w⁺_row(l)``, in closed form.
3. Relabel the re-projected faces with the predictors (what was synthesised is measured, not
   assumed), and refit a's boundary on the natural (high-density) and synthesised (low-density)
   samples together, weighting the synthesised ones so they are not drowned out.
"""
from __future__ import annotations

import numpy as np
import torch

from .interfacegan import UNIT_STD, calibrate_unit, fit_boundary
from .labels import CancelCheck, LabelSet, Progress, label_w, preview_stop
from .library import Direction, DirectionLibrary

CORRELATION = 0.25  #: |r| from which a pair counts as correlated
SYNTH_SHARE = 0.3  #: total weight of the synthesised samples relative to the natural ones


@torch.no_grad()
def row_metrics(generator) -> np.ndarray:
    """[num_ws, D, D]: Σ over the style layers fed by each row of AᵀA (rows of A unit length)."""
    d, dev = generator.w_dim, generator.device
    zero = torch.zeros(1, generator.num_ws, d, device=dev)
    s0 = generator.styles(zero)
    out = np.zeros((generator.num_ws, d, d))
    eye = torch.eye(d, device=dev)
    for layer in generator.style_layout:
        basis = torch.zeros(d, generator.num_ws, d, device=dev)
        basis[:, layer.w_index] = eye
        a = (generator.styles(basis)[layer.name] - s0[layer.name]).T.double().cpu()  # [channels, D]
        a = a / (a.norm(dim=1, keepdim=True) + 1e-8)
        out[layer.w_index] += (a.T @ a).numpy() / a.shape[0]
    return out


def reproject(wplus: np.ndarray, metrics: np.ndarray) -> np.ndarray:
    """W codes [N, D] whose styles best match the W+ codes [N, num_ws, D] (closed form)."""
    total = metrics.sum(0)
    rhs = np.einsum("rij,nrj->ni", metrics, wplus.astype(np.float64))
    return np.linalg.solve(total, rhs.T).T.astype(np.float32)


def correlated_pairs(labels: LabelSet, names: list[str], threshold: float = CORRELATION) -> dict[str, list[tuple[str, float]]]:
    ok = labels.valid(names)
    corr = np.corrcoef(np.stack([labels.attrs[n][ok] for n in names]))
    out: dict[str, list[tuple[str, float]]] = {}
    for i, a in enumerate(names):
        partners = [(names[j], float(corr[i, j])) for j in range(len(names)) if j != i and abs(corr[i, j]) >= threshold]
        out[a] = sorted(partners, key=lambda p: -abs(p[1]))
    return out


def synthesise_rare(generator, labels: LabelSet, direction: Direction, partner: str, r: float, count: int,
                    amount: float, metrics: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """W codes of rare combinations of ``direction``'s attribute with ``partner`` (see module doc)."""
    a = labels.attrs[direction.name]
    b = labels.attrs[partner] * np.sign(r)
    ok = np.isfinite(a) & np.isfinite(b)
    ma, mb = np.median(a[ok]), np.median(b[ok])
    low = np.where(ok & (a < ma) & (b < mb))[0]
    high = np.where(ok & (a > ma) & (b > mb))[0]
    half = count // 2
    picks = [(rng.choice(low, min(half, len(low)), replace=False), +1.0),
             (rng.choice(high, min(count - half, len(high)), replace=False), -1.0)]
    rows = list(direction.layers) or list(range(generator.num_ws))
    out = []
    for idx, sign in picks:
        if len(idx) == 0:
            continue
        wp = np.repeat(labels.w[idx][:, None, :], generator.num_ws, axis=1).copy()
        wp[:, rows, :] += sign * amount * direction.unit * direction.vector[None, None, :]
        out.append(reproject(wp, metrics))
    return np.concatenate(out) if out else np.zeros((0, generator.w_dim), np.float32)


def plain_library(library: DirectionLibrary) -> DirectionLibrary:
    """The InterFaceGAN library a refitted one was made from (refitted directions swapped back)."""
    dirs = []
    for d in library.directions.values():
        if "interfacegan_vector" in d.meta:
            d = Direction(d.name, d.label, np.asarray(d.meta["interfacegan_vector"], np.float32), d.layers,
                          float(d.meta["interfacegan_unit"]), dict(d.meta, method="interfacegan"))
        dirs.append(d)
    return DirectionLibrary(library.model, dirs, kind=library.kind, meta=dict(library.meta, refit=None))


def refit_library(generator, library: DirectionLibrary, labels: LabelSet, predictor, *,
                  threshold: float = CORRELATION, per_pair: int = 16, max_partners: int = 2,
                  amount: float = 2.5, calib_faces: int = 24, seed: int = 0,
                  progress: Progress | None = None, cancelled: CancelCheck | None = None,
                  start_fraction: float = 0.0, end_fraction: float = 1.0) -> tuple[DirectionLibrary, LabelSet]:
    """A copy of ``library`` whose correlated directions are refitted (others are kept as they are).

    Returns the new library and the synthesised, relabelled samples.
    """
    names = [n for n in library.names() if n in labels.attrs]
    pairs = correlated_pairs(labels, names, threshold)
    metrics = row_metrics(generator)
    stop = preview_stop(generator, 256)
    rng = np.random.RandomState(seed)
    calib = labels.w[rng.choice(len(labels), calib_faces, replace=False)]
    synth_all: list[LabelSet] = []
    dirs = []
    for k, name in enumerate(names):
        d = library[name]
        partners = pairs[name][:max_partners]
        frac = start_fraction + (end_fraction - start_fraction) * k / len(names)
        if not partners:
            dirs.append(d)
            continue
        if progress:
            progress(f"SC²GAN: {name} with {', '.join(p for p, _ in partners)}", frac)
        w_syn = np.concatenate([synthesise_rare(generator, labels, d, p, r, per_pair, amount, metrics, rng)
                                for p, r in partners])
        attrs = label_w(generator, predictor, w_syn, stop=stop, cancelled=cancelled, what=f"relabelling {name}")
        synth = LabelSet(w_syn, attrs, labels.psi)
        synth_all.append(synth)
        both = labels.concat(synth)
        weight = np.ones(len(both))
        weight[len(labels):] = SYNTH_SHARE * len(labels) / max(len(synth), 1)
        fit = fit_boundary(both.w, both.attrs[name], seed=seed, sample_weight=weight)
        rows = d.layers or None
        target = UNIT_STD * d.meta.get("attribute_std", fit["std"])
        guess = d.unit * float(d.vector @ fit["normal"])  # same step along the old normal to start
        unit, _ = calibrate_unit(generator, predictor, calib, fit["normal"], rows, name, target,
                                 max(guess, 1e-3), stop, cancelled)
        # the plain InterFaceGAN direction stays in the file: benchmarks and users can compare
        meta = dict(d.meta, method="sc2gan", accuracy=fit["accuracy"], offset=fit["offset"],
                    interfacegan_vector=[round(float(x), 7) for x in d.vector], interfacegan_unit=d.unit,
                    partners={p: r for p, r in partners}, synthesised=len(synth),
                    cosine_to_interfacegan=float(d.vector @ fit["normal"]))
        dirs.append(Direction(name, d.label, fit["normal"], d.layers, float(unit), meta))
    synth = synth_all[0] if synth_all else LabelSet(np.zeros((0, labels.w.shape[1]), np.float32), {}, labels.psi)
    for s in synth_all[1:]:
        synth = synth.concat(s)
    meta = dict(library.meta, refit="sc2gan", correlation_threshold=threshold, synthesised=len(synth))
    return DirectionLibrary(library.model, dirs, kind=library.kind, meta=meta), synth
