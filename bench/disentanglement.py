"""Disentanglement of the attribute sliders: plain InterFaceGAN vs conditional vs SC²GAN refit.

    python bench/disentanglement.py [--faces 200] [--steps -2 -1 1 2] [--model NAME]
        [--library PATH] [--grid docs/disentanglement_grid.png] [--threads 1]

For every face (seeded, ψ 0.7), every slider and every step, the face is edited exactly as the
editor does (``DirectionLibrary.delta`` on the slider's rows) and re-measured by the attribute
predictors (the same ones that built the library) and by an identity embedding (MobileFaceNet,
population-centred cosine distance). All changes are expressed in *slider units of the measured
attribute* (its change divided by that attribute's unit, half its spread across faces), per unit
of slider movement, so rows and columns are comparable.

Methods: ``interfacegan`` (plain boundary normals, no correction), ``conditional`` (the same,
with every other attribute's normal projected out jointly: "keep others"), ``sc2gan`` (the
refitted directions, also keeping others: what the editor ships and uses by default).
Goal: mean drift of the non-target attributes falls by at least half against ``interfacegan``
while the target change stays at least 90 % as large.
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


def method_libraries(lib):
    from stylestudio.engine.directions.sc2gan import plain_library

    plain = plain_library(lib)
    names = lib.names()
    return {
        "interfacegan": (plain, lambda n: ()),
        "conditional": (plain, lambda n: tuple(k for k in names if k != n)),
        "sc2gan": (lib, lambda n: tuple(k for k in names if k != n)),
    }


def edit_ws(gen, w, lib, name, amount, keep):
    import torch

    ws = gen.broadcast_w(torch.from_numpy(w[None]))
    return ws + lib.delta(name, amount, gen.num_ws, keep)[None]


_STATE: dict = {}


def _init_worker(model: str, library: str, threads: int) -> None:
    """Load the generator, library and predictors once per worker process."""
    import torch

    from stylestudio.engine.attributes import AttributePredictor
    from stylestudio.engine.directions.labels import preview_stop
    from stylestudio.engine.directions.library import DirectionLibrary
    from stylestudio.engine.model_store import ModelStore

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    gen = ModelStore().load(model)
    lib = DirectionLibrary.load(Path(library))
    _STATE.update(gen=gen, lib=lib, pred=AttributePredictor(identity=True), stop=preview_stop(gen, 256),
                  methods=method_libraries(lib))


def _measure(ws) -> tuple[np.ndarray, np.ndarray]:
    from stylestudio.engine.directions.labels import render_small

    gen, pred, names = _STATE["gen"], _STATE["pred"], _STATE["lib"].names()
    img = render_small(gen, ws, _STATE["stop"])
    m = pred.measure(img)
    emb = pred.embed(img, m["landmarks"])[0]
    return np.array([m[n][0] for n in names]), emb


def measure_face(job: tuple) -> tuple:
    """One face: its attributes and embedding, then those of every (slider, method, step) edit."""
    import torch

    w, method_names, steps = job
    gen, lib = _STATE["gen"], _STATE["lib"]
    names = lib.names()
    a0, e0 = _measure(gen.broadcast_w(torch.from_numpy(w[None])))
    attrs = np.full((len(names), len(method_names), len(steps), len(names)), np.nan)
    embs = np.full((len(names), len(method_names), len(steps), e0.shape[-1]), np.nan)
    for si, name in enumerate(names):
        for mi, mname in enumerate(method_names):
            mlib, keep = _STATE["methods"][mname]
            for ki, step in enumerate(steps):
                attrs[si, mi, ki], embs[si, mi, ki] = _measure(edit_ws(gen, w, mlib, name, step, keep(name)))
    return a0, e0, attrs, embs


def main() -> int:
    import multiprocessing as mp

    import torch

    from stylestudio.cli import progress_printer
    from stylestudio.engine.attributes import identity_distance
    from stylestudio.engine.directions.labels import preview_stop, sample_w
    from stylestudio.engine.directions.library import DirectionLibrary
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
    from stylestudio.engine.resources import Resources

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--library", type=Path, default=None)
    ap.add_argument("--faces", type=int, default=200)
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--steps", type=float, nargs="+", default=[-2, -1, 1, 2])
    ap.add_argument("--methods", nargs="+", default=["interfacegan", "conditional", "sc2gan"])
    ap.add_argument("--grid", type=Path, default=REPO / "docs" / "disentanglement_grid.png")
    ap.add_argument("--grid-sliders", nargs="+", default=["age", "smile", "gender", "yaw"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes, faces split between them")
    ap.add_argument("--save", type=Path, default=None, help="also save every measured change (.npz)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    gen = ModelStore().load(args.model, progress=progress_printer)
    path = args.library or Resources(gen, args.model).find_file("directions", "attributes.ssdir")
    lib = DirectionLibrary.load(path)
    names = lib.names()
    units = np.array([lib[n].meta["unit_change"] for n in names])
    methods = {k: v for k, v in method_libraries(lib).items() if k in args.methods}
    method_names = list(methods)
    w = sample_w(gen, args.faces, args.seed, 0.7)
    jobs = [(w[i], method_names, args.steps) for i in range(args.faces)]
    init = (args.model, str(path), args.threads)
    t0 = time.time()
    results = []
    if args.jobs > 1:
        pool = mp.get_context("spawn").Pool(args.jobs, _init_worker, init)
        stream = pool.imap(measure_face, jobs)
    else:
        _init_worker(*init)
        pool, stream = None, map(measure_face, jobs)
    for i, res in enumerate(stream):
        results.append(res)
        rate = (time.time() - t0) / (i + 1)
        progress_printer(f"face {i + 1}/{args.faces} ({rate:.1f} s/face, {rate * (args.faces - i - 1) / 60:.1f} min left)",
                         (i + 1) / args.faces)
    if pool is not None:
        pool.close()
        pool.join()
    elapsed = time.time() - t0

    centre = np.nanmean(np.stack([e0 for _, e0, _, _ in results]), 0)
    # deltas[method][face, slider, step, attribute]: attribute change per slider unit, in attribute units
    steps = np.array(args.steps, np.float64)
    deltas, ident = {}, {}
    for mi, mname in enumerate(method_names):
        deltas[mname] = np.stack([(attrs[:, mi] - a0) / units / steps[None, :, None] for a0, _, attrs, _ in results])
        dist = []
        for _, e0, _, embs in results:
            e1 = embs[:, mi]
            ok = np.isfinite(e1).all(-1) & np.isfinite(e0).all()
            dist.append((identity_distance(e0, e1, centre) / np.abs(steps)[None, :])[ok])
        ident[mname] = np.concatenate(dist).tolist()
    if args.save:
        np.savez_compressed(args.save, names=np.array(names), steps=np.array(args.steps),
                            **{f"delta.{m}": d for m, d in deltas.items()})

    print(f"\n{args.faces} faces × {len(names)} sliders × steps {args.steps} × {len(methods)} methods "
          f"(library {path}, {lib.meta.get('faces_labelled', '?')} labelled faces; {elapsed / 60:.1f} min, "
          f"{args.jobs} worker(s))")
    print("cells: change of the column attribute per slider unit, in that attribute's units (half its spread\n"
          "across faces). Diagonal: mean signed change (ideal +1). Off-diagonal 'systematic': |mean over faces\n"
          "of the signed change| (the entanglement a correction can remove; ideal 0). 'abs': mean |change|\n"
          "per face (includes each predictor's face-specific jitter, a floor no direction can remove).")
    summary = {}
    short = [n[:8] for n in names]
    off_mask = ~np.eye(len(names), dtype=bool)
    for mname in methods:
        d = deltas[mname]
        signed = np.nanmean(d, axis=(0, 2))  # [slider, attribute]
        absolute = np.nanmean(np.abs(d), axis=(0, 2))
        diag = np.diag(signed)
        sysm = np.abs(signed)
        print(f"\n== {mname}: systematic drift (diagonal: target change) ==")
        print(f"{'slider':15s}" + "".join(f"{s:>9s}" for s in short) + "  drift   abs")
        for si, n in enumerate(names):
            row = np.where(np.arange(len(names)) == si, signed[si], sysm[si])
            print(f"{n:15s}" + "".join(f"{v:9.2f}" for v in row)
                  + f"  {sysm[si][off_mask[si]].mean():5.3f} {absolute[si][off_mask[si]].mean():5.3f}")
        summary[mname] = (float(diag.mean()), float(sysm[off_mask].mean()), float(absolute[off_mask].mean()),
                          float(np.mean(ident[mname])) if ident[mname] else np.nan)
    print("\n== summary (per slider unit) ==")
    print(f"{'method':14s} {'target':>8s} {'drift':>8s} {'abs drift':>10s} {'identity':>9s} "
          f"{'drift/IFG':>10s} {'abs/IFG':>8s} {'target/IFG':>11s}")
    ref = summary.get("interfacegan")
    for mname, (tgt, drift, absd, idd) in summary.items():
        print(f"{mname:14s} {tgt:8.3f} {drift:8.3f} {absd:10.3f} {idd:9.4f} "
              f"{drift / ref[1] if ref else np.nan:10.2f} {absd / ref[2] if ref else np.nan:8.2f} "
              f"{tgt / ref[0] if ref else np.nan:11.2f}")
    if ref:
        for mname in ("conditional", "sc2gan"):
            if mname in summary:
                tgt, drift, _, _ = summary[mname]
                ok = drift <= 0.5 * ref[1] and tgt >= 0.9 * ref[0]
                print(f"goal for {mname} (systematic drift ≤ 50 % and target ≥ 90 % of plain InterFaceGAN): "
                      f"{'met' if ok else 'NOT met'}")
    if args.grid and str(args.grid) != "none":
        save_grid(gen, w, methods, args.grid_sliders, args.grid, preview_stop(gen, 256))
        print(f"grid → {args.grid}")
    return 0


def save_grid(gen, w, methods, sliders, path: Path, stop) -> None:
    """Rows: (face, slider) pairs, plain InterFaceGAN above the shipped corrected slider; columns: −2…+2."""
    from PIL import Image, ImageDraw

    from stylestudio.engine.directions.labels import render_small
    from stylestudio.engine.render import to_uint8

    plain, keep_none = methods.get("interfacegan", (None, None))
    shipped, keep_all = methods.get("sc2gan", methods.get("conditional"))
    tile, pad, label_w = 128, 2, 150
    steps = [-2, -1, 0, 1, 2]
    rows = []
    for fi in range(min(2, len(w))):
        for name in sliders:
            for title, (lib, keep) in (("raw", (plain, keep_none)), ("corrected", (shipped, keep_all))):
                if lib is None or name not in lib:
                    continue
                row = [to_uint8(render_small(gen, edit_ws(gen, w[fi], lib, name, s, keep(name)), stop, tile))
                       for s in steps]
                rows.append((f"face {fi + 1}\n{name}\n{title}", row))
    width = label_w + len(steps) * (tile + pad)
    canvas = Image.new("RGB", (width, 20 + len(rows) * (tile + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for k, s in enumerate(steps):
        draw.text((label_w + k * (tile + pad) + tile // 2 - 8, 4), f"{s:+d}", fill="black")
    for r, (text, row) in enumerate(rows):
        y = 20 + r * (tile + pad)
        draw.multiline_text((6, y + 40), text, fill="black")
        for k, img in enumerate(row):
            canvas.paste(Image.fromarray(img), (label_w + k * (tile + pad), y))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


if __name__ == "__main__":
    sys.exit(main())
