"""Discovered directions against PCA and SeFa: the ContraFeat authors' protocol, with the project's
own attribute predictors (10 attributes + identity).

    python bench/discovery.py [--minutes 4] [--faces 16] [--seeds 0] [--size 64] [--threads 1]
        [--target-lpips 0.3] [--grid docs/discovery_grid.png] [--methods ...] [--libs DIR]

``--libs DIR`` keeps every trained library there (``<method>_<seed>.ssdir``) and loads one found
there instead of training it again, so the learned runs can train in separate processes (one
``--methods`` each, ``--train-only``) and a later run evaluates them.

Methods: PCA (GANSpace), SeFa, PCA + learned attention, ContraFeat binary, ContraFeat prototype
(each trained ``--minutes`` per seed, the same seeds for all), and the shipped supervised attribute
sliders as a reference row. For every direction the edit amount s is calibrated so the swing from
−s to +s makes the same mean LPIPS change (``--target-lpips``, on calibration faces that are not
evaluation faces); then on ``--faces`` faces at ψ 0.5 each direction's mean absolute attribute
shift between −s and +s is measured (attributes in units of their spread across the faces;
identity as the population-centred cosine distance in units of its median between two faces),
each row is max-normalised, and:

* disentanglement score = mean over directions of (largest − second largest),
* attributes found = how many attributes are some direction's top one,
* purity = mean over directions of 1 − H(row / Σ row) / log(#attributes) (1: one attribute only),

with a bootstrap standard error over faces (for "found", a 90 % bootstrap interval: a count moves
in steps, and with few faces it moves a lot), and, for each learned run against PCA and SeFa, the
share of bootstrap resamples of the faces (the same resample for both) in which it finds more
attributes and scores higher. ``--save FILE`` keeps every measurement (.npz) for re-analysis.
The authors' notebooks (24-attribute predictor,
FFHQ-512, long GPU training) report PCA 0.314 / 9, SeFa 0.301 / 9, ContraFeat-prototype 0.320 / 14.
The evaluation seeds (``--eval-seed``) are never used for training or calibration.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)


def calibrate(gen, lpips, lib, stop, w_cal, target: float, rounds: int = 3) -> dict[str, float]:
    """Per direction, the amount s (slider units) whose −s…+s swing has mean LPIPS ``target``."""
    import torch

    from stylestudio.engine.directions.labels import render_small

    base = gen.broadcast_w(torch.from_numpy(w_cal))
    out = {}
    for name in lib.names():
        d = lib.delta(name, 1.0, gen.num_ws)[None]
        s = 1.0
        for _ in range(rounds):
            a = render_small(gen, base - s * d, stop)
            b = render_small(gen, base + s * d, stop)
            change = float(lpips(a, b).mean())
            s = float(np.clip(s * target / max(change, 1e-4), 0.02, 20.0))
        out[name] = s
    return out


def measure(gen, pred, lib, stop, w_eval, amounts: dict[str, float], batch: int = 8):
    """attrs [K, 2, N, A] at −s and +s, embeddings [K, 2, N, E]."""
    import torch

    from stylestudio.engine.directions.labels import render_small

    names = lib.names()
    attrs, embs = [], []
    for name in names:
        d = lib.delta(name, amounts[name], gen.num_ws)[None]
        per_sign_a, per_sign_e = [], []
        for sign in (-1.0, 1.0):
            a_rows, e_rows = [], []
            for i in range(0, len(w_eval), batch):
                ws = gen.broadcast_w(torch.from_numpy(w_eval[i:i + batch])) + sign * d
                img = render_small(gen, ws, stop)
                m = pred.measure(img)
                a_rows.append(np.stack([m[n] for n in pred.names], 1))
                e_rows.append(pred.embed(img, m["landmarks"]))
            per_sign_a.append(np.concatenate(a_rows))
            per_sign_e.append(np.concatenate(e_rows))
        attrs.append(np.stack(per_sign_a))
        embs.append(np.stack(per_sign_e))
    return np.stack(attrs), np.stack(embs)


def shift_matrix(attrs, embs, spread, centre, id_unit, faces=None) -> np.ndarray:
    """Mean |change| per direction and attribute (+ identity), in spread units: [K, A+1]."""
    from stylestudio.engine.attributes import identity_distance

    idx = slice(None) if faces is None else faces
    a = np.abs(attrs[:, 1, idx] - attrs[:, 0, idx]) / spread  # [K, N, A]
    rows = []
    for k in range(attrs.shape[0]):
        e0, e1 = embs[k, 0, idx], embs[k, 1, idx]
        ok = np.isfinite(e0).all(-1) & np.isfinite(e1).all(-1)
        ident = np.array([identity_distance(x, y, centre) for x, y in zip(e0[ok], e1[ok])]) / id_unit
        rows.append(np.append(np.nanmean(a[k], 0), ident.mean() if len(ident) else np.nan))
    return np.array(rows)


def scores(shift: np.ndarray) -> tuple[float, int, float]:
    norm = shift / np.nanmax(shift, 1, keepdims=True)
    top2 = -np.sort(-np.nan_to_num(norm), 1)[:, :2]
    score = float((top2[:, 0] - top2[:, 1]).mean())
    found = len(set(np.nanargmax(norm, 1).tolist()))
    p = np.nan_to_num(norm) / np.nan_to_num(norm).sum(1, keepdims=True)
    ent = -(p * np.log(np.where(p > 0, p, 1))).sum(1) / np.log(p.shape[1])
    return score, found, float((1 - ent).mean())


def print_seed_means(results: dict[str, tuple[float, int, float]], width: int = 24) -> None:
    """Per learned method trained with several seeds (keys ``method#seed``): the mean (score,
    found, purity) over its seeds, and the spread of the score between them."""
    for method in sorted({k.split("#")[0] for k in results if "#" in k}):
        rows = np.array([v for k, v in results.items() if k.split("#")[0] == method])
        if len(rows) > 1:
            print(f"{method + f' (mean of {len(rows)})':{width}s} {rows[:, 0].mean():7.3f} {rows[:, 0].std():6.3f} "
                  f"{rows[:, 1].mean():6.1f} {'':>8s} {rows[:, 2].mean():7.3f}")


def print_paired(boots: dict[str, np.ndarray], width: int = 24) -> None:
    """Each learned run against PCA and SeFa on the same resampled faces (``boots``: per key, the
    [resamples, (score, found, purity)] of the bootstrap)."""
    baselines = [k for k in ("pca", "sefa") if k in boots]
    learned = [k for k in boots if "#" in k]
    if not (baselines and learned):
        return
    print("\n== paired bootstrap (the same resampled faces): share of resamples where the run beats the baseline ==")
    for key in learned:
        for base in baselines:
            a, b = boots[key], boots[base]
            print(f"{key:{width}s} vs {base:5s}: found more {np.mean(a[:, 1] > b[:, 1]):.2f}, as many "
                  f"{np.mean(a[:, 1] == b[:, 1]):.2f}, fewer {np.mean(a[:, 1] < b[:, 1]):.2f}; "
                  f"score higher {np.mean(a[:, 0] > b[:, 0]):.2f}")


def strip_grid(gen, lib, stop, w, amounts, size: int = 64, steps=(-1.0, -0.5, 0.0, 0.5, 1.0)) -> np.ndarray:
    """uint8 [K*size, len(steps)*size, 3]: one face along every direction, steps in units of its s."""
    import torch
    import torch.nn.functional as F

    from stylestudio.engine.directions.labels import render_small

    base = gen.broadcast_w(torch.from_numpy(w[None]))
    rows = []
    for name in lib.names():
        d = lib.delta(name, amounts[name], gen.num_ws)[None]
        img = render_small(gen, torch.cat([base + t * d for t in steps]), stop, size)
        img = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        rows.append(np.concatenate(list(img), 1))
    return np.concatenate(rows, 0)


def main() -> int:
    import torch
    from PIL import Image, ImageDraw

    from stylestudio.cli import progress_printer
    from stylestudio.engine.attributes import AttributePredictor, identity_distance
    from stylestudio.engine.directions.labels import preview_stop, sample_w
    from stylestudio.engine.directions.library import DirectionLibrary
    from stylestudio.engine.discovery.trainer import DiscoverySettings, discover
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
    from stylestudio.engine.perceptual.lpips import load_lpips

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--directions", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget per learned run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--size", type=int, default=64, help="training render size")
    ap.add_argument("--faces", type=int, default=16, help="evaluation faces (ψ 0.5)")
    ap.add_argument("--eval-seed", type=int, default=4242)
    ap.add_argument("--target-lpips", type=float, default=0.3)
    ap.add_argument("--cal-faces", type=int, default=2, help="faces for calibrating s (not evaluation faces)")
    ap.add_argument("--cal-rounds", type=int, default=2, help="s ← s·target/LPIPS(s) iterations")
    ap.add_argument("--methods", nargs="+",
                    default=["pca", "sefa", "pca+attention", "contrafeat", "contrafeat-proto", "attributes"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scale", type=float, default=None,
                    help="ContraFeat training step s ~ U[-1, 1]·scale standard deviations per live row under uniform "
                         "attention (default the trainer's: 2 / live rows, which bounds a one-row direction at 2; "
                         "libraries trained before stop 29 used a fixed 2.0)")
    ap.add_argument("--smooth", action="store_true", help="3-tap smoothing of the attention across rows")
    ap.add_argument("--libs", type=Path, default=None, help="keep trained libraries here; load those already there")
    ap.add_argument("--train-only", action="store_true", help="stop after training (with --libs)")
    ap.add_argument("--grid", type=lambda v: Path(v) if v else None, default=REPO / "docs" / "discovery_grid.png",
                    help="where to draw the strips (an empty value: no grid)")
    ap.add_argument("--save", type=Path, default=None, help="keep the measurements (attributes, embeddings, units) here")
    args = ap.parse_args()
    if args.train_only and args.libs is None:
        ap.error("--train-only needs --libs (where the trained libraries are kept)")

    torch.set_num_threads(args.threads)
    t_start = time.time()
    gen = ModelStore().load(args.model, progress=progress_printer)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start, {args.threads} torch thread(s)")

    libs: dict[str, DirectionLibrary] = {}
    timing: dict[str, str] = {}
    loaded: list[str] = []  #: learned runs read from --libs: their training is theirs, not this run's --minutes
    for method in args.methods:
        if method == "attributes":
            path = REPO / "resources" / "directions" / args.model / "attributes.ssdir"
            if path.is_file():
                libs[method] = DirectionLibrary.load(path)
            continue
        learned = method in ("pca+attention", "contrafeat", "contrafeat-proto")
        for seed in (args.seeds if learned else [args.seeds[0]]):
            extra = {k: v for k, v in (("scale", args.scale), ("smooth", args.smooth or None)) if v is not None}
            s = DiscoverySettings(method="contrafeat" if method == "pca+attention" else method,
                                  directions=args.directions, minutes=args.minutes if learned else None,
                                  size=args.size, seed=seed, train_vectors=method != "pca+attention",
                                  **(extra if learned else {}))
            tag = "".join(f"~{k}{'' if v is True else v}" for k, v in extra.items()) if learned else ""
            key = method if not learned else f"{method}{tag}#{seed}"
            kept = args.libs / f"{key.replace('#', '_').replace('+', '-')}.ssdir" if args.libs else None
            t0 = time.time()
            if kept is not None and kept.is_file():
                lib = DirectionLibrary.load(kept)
                dt = float(lib.meta["seconds"])
                loaded.append(key)
                print(f"{key:24s} loaded from {kept}")
            else:
                with torch.enable_grad():
                    lib = discover(gen, args.model, s, progress=(lambda m, f: None))
                dt = time.time() - t0
                if kept is not None:
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    lib.save(kept)
            steps = lib.meta.get("steps")
            libs[key] = lib
            timing[key] = (f"{dt:.0f} s, {steps} steps, {dt / steps:.2f} s/step" if steps else f"{dt:.1f} s")
            loss = lib.meta.get("final_loss")
            print(f"{key:24s} {timing[key]}" + (f"  final loss {loss:+.4f}" if loss is not None else ""), flush=True)

    if args.train_only:
        print(f"trained; load average now {os.getloadavg()[0]:.1f}; total {(time.time() - t_start) / 60:.1f} min")
        return 0
    torch.set_grad_enabled(False)
    stop = preview_stop(gen, 256)
    lpips = load_lpips("cpu", size=128)
    pred = AttributePredictor(identity=True)
    w_cal = sample_w(gen, args.cal_faces, args.eval_seed + 1, 0.5)
    w_eval = sample_w(gen, args.faces, args.eval_seed, 0.5)

    # the spread of every attribute and of identity across the evaluation faces (the units)
    from stylestudio.engine.directions.labels import render_small

    a_rows, e_rows = [], []
    for i in range(0, len(w_eval), 8):  # in batches, as measure(): 500 faces at once took 22 GB
        base_img = render_small(gen, gen.broadcast_w(torch.from_numpy(w_eval[i:i + 8])), stop)
        m0 = pred.measure(base_img)
        a_rows.append(np.stack([m0[n] for n in pred.names], 1))
        e_rows.append(pred.embed(base_img, m0["landmarks"]))
    a0, e0 = np.concatenate(a_rows), np.concatenate(e_rows)
    spread = np.nanstd(a0, 0)
    e0 = e0[np.isfinite(e0).all(-1)]
    centre = e0.mean(0)
    pairs = [identity_distance(e0[i], e0[j], centre) for i in range(len(e0)) for j in range(i + 1, len(e0))]
    id_unit = float(np.median(pairs))

    columns = [n[:8] for n in pred.names] + ["identity"]
    results: dict[str, tuple] = {}
    boot_all: dict[str, np.ndarray] = {}  #: per library, [resamples, (score, found, purity)]
    measured: dict[str, tuple] = {}
    grids: dict[str, np.ndarray] = {}
    rng = np.random.RandomState(0)
    boots = [rng.randint(0, args.faces, args.faces) for _ in range(200)]
    for key, lib in libs.items():
        t0 = time.time()
        amounts = calibrate(gen, lpips, lib, stop, w_cal, args.target_lpips, args.cal_rounds)
        attrs, embs = measure(gen, pred, lib, stop, w_eval, amounts)
        shift = shift_matrix(attrs, embs, spread, centre, id_unit)
        boot = np.array([scores(shift_matrix(attrs, embs, spread, centre, id_unit, b)) for b in boots])
        results[key] = (shift, scores(shift), boot[:, ::2].std(0), amounts)
        boot_all[key] = boot
        measured[key] = (attrs, embs)
        if "#" not in key or key.endswith(f"#{args.seeds[0]}"):
            grids[key.split("#")[0]] = strip_grid(gen, lib, stop, w_eval[0], amounts)
        progress_printer(f"evaluated {key} ({time.time() - t0:.0f} s)", -1)
        if args.save:  # after every library: a run stopped part way keeps what it measured
            arrays = {"spread": spread, "centre": centre, "id_unit": np.float64(id_unit), "w_eval": w_eval}
            for k, (attrs_k, embs_k) in measured.items():
                arrays[f"{k}/attrs"], arrays[f"{k}/embs"], arrays[f"{k}/boot"] = attrs_k, embs_k, boot_all[k]
            args.save.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(args.save, **arrays)

    trained = (f"training {args.minutes} min per run" if not loaded else
               f"{', '.join(loaded)} loaded from {args.libs} (their training: the summary's last column)")
    print(f"\n{args.faces} faces at ψ 0.5, {args.directions} directions per method, same LPIPS swing "
          f"{args.target_lpips} (−s…+s) for every direction; {trained} at {args.size} px, "
          f"seeds {args.seeds}; load average now {os.getloadavg()[0]:.1f}")
    for key, (shift, sc, se, amounts) in results.items():
        norm = shift / np.nanmax(shift, 1, keepdims=True)
        print(f"\n== {key}: mean |shift| per direction, row max-normalised (s in slider units) ==")
        print(f"{'direction':14s}{'s':>6s}" + "".join(f"{c:>9s}" for c in columns))
        for name, row, s in zip(libs[key].names(), norm, amounts.values()):
            print(f"{name:14s}{s:6.2f}" + "".join(f"{v:9.2f}" for v in row))
    print("\n== summary ==")
    print(f"{'method':24s} {'score':>7s} {'±se':>6s} {'found':>6s} {'90% int':>8s} {'purity':>7s} {'±se':>6s}  training")
    for key, (shift, (score, found, purity), se, _) in results.items():
        lo, hi = np.percentile(boot_all[key][:, 1], [5, 95])
        print(f"{key:24s} {score:7.3f} {se[0]:6.3f} {found:6d} {f'{lo:.0f}–{hi:.0f}':>8s} {purity:7.3f} {se[1]:6.3f}  "
              f"{timing.get(key, '-')}")
    print_paired(boot_all)
    if args.save:
        print(f"measurements → {args.save}")
    print_seed_means({k: v[1] for k, v in results.items()})

    if args.grid and grids:
        cell = next(iter(grids.values())).shape[1]
        height = max(g.shape[0] for g in grids.values()) + 20
        canvas = Image.new("RGB", (cell * len(grids) + 10 * (len(grids) - 1), height), "white")
        draw = ImageDraw.Draw(canvas)
        for i, (name, g) in enumerate(grids.items()):
            x = i * (cell + 10)
            draw.text((x + 4, 4), name, fill="black")
            canvas.paste(Image.fromarray(g), (x, 20))
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(args.grid)
        print(f"\ngrid (columns: −s, −s/2, 0, +s/2, +s per direction; one panel per method) → {args.grid}")
    print(f"total {(time.time() - t_start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
