"""Pair-wise drift on this model's most strongly correlated attribute pairs: plain, projection, refit.

    python bench/sc2gan_pairs.py [--faces 24] [--pairs 5] [--jobs 2] [--seed 777] [--save out.npz]
    python bench/sc2gan_pairs.py --report out.npz      # the tables again, from saved measurements

SC²GAN's claim is about strongly correlated pairs (age↔glasses in the paper). This prints the
correlation matrix of the labelled faces the shipped library was fitted on (stored in the
library), takes the ``--pairs`` most strongly correlated pairs, and for each pair (A, B) and
each direction of it measures the pair-wise drift (``engine.directions.drift.pair_drift``):
moving A's slider, B's change in B's slider units per slider unit of A's own change (0 ideal).

Methods: ``interfacegan`` (plain boundary normal, nothing kept), ``conditional`` (plain normal
with every other attribute's normal projected out: "keep others"), ``sc2gan`` (the refitted
normal, keep others: what the editor ships), ``sc2gan_raw`` (the refitted normal alone: the
paper's claim without the projection). Effects are central differences at ±2 slider units on
``--faces`` seeded faces (ψ 0.7; seed 777 as bench/disentanglement.py: evaluation faces, never
used to build or tune the library). Intervals: 90 % bootstrap over faces.

It also prints, without rendering, what the refit's synthesis does (``diagnose``): the "rare"
samples are made by moving A along its plain normal on A's rows and re-projecting into W; the
table gives how much of the A step survives re-projection, how far the styles miss the edit,
B's linear-score change per A change before and after re-projection, and how many of A's rows B
also lives on. (Faces of the build distribution, seed 0, ψ 0.8.)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)

METHODS = ("interfacegan", "conditional", "sc2gan", "sc2gan_raw")
_STATE: dict = {}


def method_setup(lib, method: str, name: str):
    """(library, keep) of one method for slider ``name``."""
    from stylestudio.engine.directions.drift import keep_set
    from stylestudio.engine.directions.sc2gan import plain_library

    plain = _STATE.setdefault("plain", plain_library(lib))
    return {"interfacegan": (plain, keep_set(plain, name, "none")),
            "conditional": (plain, keep_set(plain, name, "others")),
            "sc2gan": (lib, keep_set(lib, name, "others")),
            "sc2gan_raw": (lib, keep_set(lib, name, "none"))}[method]


def _init_worker(model: str, library: str, threads: int) -> None:
    import torch

    from stylestudio.engine.attributes import AttributePredictor
    from stylestudio.engine.directions.drift import render_measure
    from stylestudio.engine.directions.labels import preview_stop
    from stylestudio.engine.directions.library import DirectionLibrary
    from stylestudio.engine.model_store import ModelStore

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    gen = ModelStore().load(model)
    _STATE.update(gen=gen, lib=DirectionLibrary.load(Path(library)),
                  measure=render_measure(gen, AttributePredictor(), preview_stop(gen, 256)))


def measure_face(job: tuple) -> np.ndarray:
    """[method, slider, attribute]: change per slider unit on one face (attribute units)."""
    from stylestudio.engine.directions.drift import slider_effects

    w, methods, sliders = job
    gen, lib = _STATE["gen"], _STATE["lib"]
    names = lib.names()
    out = np.full((len(methods), len(sliders), len(names)), np.nan)
    for mi, method in enumerate(methods):
        for si, s in enumerate(sliders):
            mlib, keep = method_setup(lib, method, s)
            eff = slider_effects(_STATE["measure"], w[None], mlib, s, gen.num_ws, keep)
            out[mi, si] = [eff[n][0] for n in names]
    return out


def diagnose(gen, lib, faces: int = 32) -> None:
    """How rare are the refit's synthesised samples? Linear scores only (the library's normals and
    slopes), so it costs seconds."""
    import torch

    from stylestudio.engine.directions.labels import sample_w
    from stylestudio.engine.directions.sc2gan import plain_library, reproject, row_metrics

    plain = plain_library(lib)
    metrics = row_metrics(gen)
    w = sample_w(gen, faces, 0, 0.8)

    def score(n: str, dw: np.ndarray) -> float:  # mean change in n's slider units, from n's linear score
        d = plain[n]
        return float(np.mean(d.meta["slope"] * (dw @ d.vector) / d.meta["unit_change"]))

    print(f"\nrefit synthesis ({faces} faces, A moved 2.5 units on its rows, then re-projected into W):")
    print(f"{'A (partner B)':26s} {'A kept':>7s} {'style miss':>11s} {'B/A edit':>9s} {'B/A reproj':>11s} "
          f"{'shared rows':>12s}")
    for a in lib.names():
        d = plain[a]
        for b in (lib[a].meta.get("partners") or {}):
            rows, step = list(d.layers), 2.5 * d.unit
            wp = np.repeat(w[:, None], gen.num_ws, 1).copy()
            wp[:, rows] += step * d.vector
            dw = reproject(wp, metrics) - w
            full = np.tile(step * d.vector, (len(w), 1))
            with torch.no_grad():
                s_edit, s0 = gen.styles(torch.from_numpy(wp)), gen.styles(gen.broadcast_w(torch.from_numpy(w)))
                s_rep = gen.styles(gen.broadcast_w(torch.from_numpy(w + dw)))
            miss = np.sqrt(sum(float(((s_rep[k] - s_edit[k]) ** 2).sum()) for k in s_edit)
                           / sum(float(((s_edit[k] - s0[k]) ** 2).sum()) for k in s_edit))
            shared = len(set(d.layers) & set(plain[b].layers))
            print(f"{a + ' (' + b + ')':26s} {score(a, dw) / score(a, full):7.2f} {miss:11.2f} "
                  f"{score(b, full) / score(a, full):9.2f} {score(b, dw) / score(a, dw):11.2f} "
                  f"{shared:5d} of {len(d.layers):2d}")


def main() -> int:
    import multiprocessing as mp

    import torch

    from stylestudio.cli import progress_printer
    from stylestudio.engine.directions.drift import correlation_pairs
    from stylestudio.engine.directions.labels import sample_w
    from stylestudio.engine.directions.library import DirectionLibrary
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
    from stylestudio.engine.resources import Resources

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--library", type=Path, default=None)
    ap.add_argument("--faces", type=int, default=24)
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save", type=Path, default=None, help="measurements so far, rewritten after every face")
    ap.add_argument("--report", type=Path, default=None, help="print the tables of a --save file, measure nothing")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    gen = ModelStore().load(args.model, progress=progress_printer)
    path = args.library or Resources(gen, args.model).find_file("directions", "attributes.ssdir")
    lib = DirectionLibrary.load(path)
    names = lib.names()
    corr = np.array(lib.meta["correlation"])
    attrs = lib.meta.get("attributes", names)
    print(f"correlation of the attributes over the {lib.meta.get('faces_valid', '?')} labelled faces the library "
          f"was fitted on ({path}):")
    print(" " * 15 + "".join(f"{n[:8]:>9s}" for n in attrs))
    for i, n in enumerate(attrs):
        print(f"{n:15s}" + "".join(f"{v:9.2f}" for v in corr[i]))
    pairs = correlation_pairs(attrs, corr, args.pairs)
    sliders = list(dict.fromkeys(n for a, b, _ in pairs for n in (a, b)))
    for n in sliders:
        d = lib[n]
        if d.meta.get("method") == "sc2gan":
            print(f"  {n}: refitted with {d.meta.get('partners')}, {d.meta.get('synthesised')} synthesised faces, "
                  f"cosine to the plain normal {d.meta.get('cosine_to_interfacegan', float('nan')):.3f}")
        else:
            print(f"  {n}: not refitted (no partner with |r| ≥ {lib.meta.get('correlation_threshold')})")

    units = {n: float(lib[n].meta["unit_change"]) for n in names}
    diagnose(gen, lib)
    if args.report:
        with np.load(args.report, allow_pickle=False) as f:
            eff, methods, saved = f["effects"], [str(m) for m in f["methods"]], [str(n) for n in f["sliders"]]
        if saved != sliders:
            raise SystemExit(f"error: {args.report} holds other sliders than --pairs {args.pairs} picks")
        report(eff, names, sliders, methods, pairs, units, f"{len(eff)} faces from {args.report}")
        return 0
    w = sample_w(gen, args.faces, args.seed, 0.7)
    jobs = [(w[i], args.methods, sliders) for i in range(args.faces)]
    init = (args.model, str(path), args.threads)
    t0 = time.time()
    if args.jobs > 1:
        pool = mp.get_context("spawn").Pool(args.jobs, _init_worker, init)
        stream = pool.imap(measure_face, jobs)
    else:
        _init_worker(*init)
        pool, stream = None, map(measure_face, jobs)
    results = []
    for i, res in enumerate(stream):
        results.append(res)
        rate = (time.time() - t0) / (i + 1)
        progress_printer(f"face {i + 1}/{args.faces} ({rate:.1f} s/face)", (i + 1) / args.faces)
        if args.save:  # a long run on a busy machine leaves what it measured
            np.savez_compressed(args.save, effects=np.stack(results), names=np.array(names),
                                sliders=np.array(sliders), methods=np.array(args.methods),
                                units=np.array([units[n] for n in names]))
    if pool is not None:
        pool.close()
        pool.join()
    eff = np.stack(results)  # [face, method, slider, attribute]
    report(eff, names, sliders, args.methods, pairs, units,
           f"{args.faces} faces (seed {args.seed}), {(time.time() - t0) / 60:.1f} min, {args.jobs} worker(s)")
    return 0


def report(eff: np.ndarray, names: list[str], sliders: list[str], methods: list[str], pairs, units, what: str) -> None:
    """Pair drift per pair, both ways, per method, with bootstrap intervals over faces."""
    from stylestudio.engine.directions.drift import pair_drift

    rng = np.random.RandomState(0)
    boots = [rng.randint(0, len(eff), len(eff)) for _ in range(1000)]

    def drift(mi: int, a: str, b: str, faces=slice(None)) -> float:
        e = np.nanmean(eff[faces, mi, sliders.index(a)], axis=0)
        return pair_drift(dict(zip(names, e)), a, b, units)

    print(f"\n{what}: {len(sliders)} sliders × {len(methods)} methods, ±2 units")
    print("pair drift: moving A's slider, B's change in B's slider units per slider unit of A's own change "
          "(0 ideal); [90 % interval over faces]")
    print(f"{'A → B':28s} {'r':>6s}" + "".join(f"{m:>22s}" for m in methods))
    summary: dict[str, list[float]] = {m: [] for m in methods}
    for a, b, r in pairs:
        for x, y in ((a, b), (b, a)):
            cells = []
            for mi, m in enumerate(methods):
                v = drift(mi, x, y)
                lo, hi = np.nanpercentile([drift(mi, x, y, idx) for idx in boots], [5, 95])
                summary[m].append(abs(v))
                cells.append(f"{v:+.3f} [{lo:+.2f},{hi:+.2f}]")
            print(f"{x + ' → ' + y:28s} {r:+6.2f}" + "".join(f"{c:>22s}" for c in cells))
    print(f"{'mean |pair drift|':35s}" + "".join(f"{np.mean(summary[m]):22.3f}" for m in methods))
    print(f"{'own change (slider units/unit)':35s}" + "".join(
        f"{np.nanmean([np.nanmean(eff[:, mi, si, names.index(s)]) / units[s] for si, s in enumerate(sliders)]):22.3f}"
        for mi, _ in enumerate(methods)))


if __name__ == "__main__":
    sys.exit(main())
