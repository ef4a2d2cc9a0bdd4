"""Inversion quality against time, on the CPU: generated faces (known latents) and real photos.

    python bench/inversion.py                     # the full run: 50 generated faces + real photos
    python bench/inversion.py --faces 5 --quick   # a smoke run
    python bench/inversion.py --encoder off       # estimate without the trained encoder (as before issue 6)
    python bench/inversion.py --faces 3 --pti off # the default command's settings (issue 19), PTI forced off
    python bench/inversion.py --combine a.json b.json   # one table from runs split with --first-face

Protocol (issue 19): each face is inverted as ``stylestudio invert`` does it with no flags — the
default ``InversionSettings`` with its whole-inversion ``time_budget`` (``--time-budget``
overrides; ``--pti on/off`` overrides the default's PTI choice). Printed per face and summarised:
seconds (and their ratio to an anchor measured in the same run: one plain full-resolution
synthesis), LPIPS on the face crop, **identity** (centred cosine similarity of face embeddings,
engine/inversion/identity.py, against its "same person" threshold) and, on generated faces, the
paired edit strength (the shipped smile/age sliders ±2 on the face's own latent vs on its
inversion; goal ≥ 80 %).

(a) Generated faces: seed 1000+i, ψ 0.7, rendered by the default model; each is inverted and,
    after every stage (estimate, W+ optimisation, PTI), we record the seconds so far, PSNR and
    LPIPS-VGG (256 px) of the full-resolution reconstruction, and the latent error (RMS over the
    W+ rows that reach the image, in units of the mapping's per-dimension std of w).
(b) Real photos: skimage's astronaut and, when Debian's opencv-doc is installed, messi5.jpg:
    detect, align, invert within ``--deadline`` seconds (no fine-tuning), then PTI on top; LPIPS
    and seconds. Before/after pictures go to docs/.
(c) Editability: the same slider moved on a generated face and on the inverted photo; we compare
    how far the image moves (LPIPS) and, when issue 5's attribute predictor is importable, how
    far the predicted attribute moves.

Timing: ``--threads`` torch threads (default 2). This machine is shared by several people, so
wall-clock time mostly measures their load; by default budgets and reported seconds use the
process's CPU time ÷ threads (``--clock cpu``), with OpenMP told not to spin-wait
(``OMP_WAIT_POLICY=PASSIVE``) so CPU time is work done. That approximates the wall time on an
idle machine with that many cores; ``--clock wall`` uses the wall clock instead. Both are
recorded, with the load average.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its thread pool

import numpy as np
import torch
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stylestudio.engine.document import EditDocument, LatentSource, seed_to_z  # noqa: E402
from stylestudio.engine.face.align import align_face, load_photo  # noqa: E402
from stylestudio.engine.face.landmarks import detect_faces  # noqa: E402
from stylestudio.engine.inversion import (PTI_CHOICES, InversionSettings, apply_weight_deltas, iter_inversion,  # noqa: E402
                                          model_encoder)
from stylestudio.engine.inversion.invert import to_tensor_image, w_statistics  # noqa: E402
from stylestudio.engine.model_store import ModelStore  # noqa: E402
from stylestudio.engine.perceptual import load_lpips  # noqa: E402
from stylestudio.engine.photo import paste_back  # noqa: E402
from stylestudio.engine.render import Renderer, to_uint8  # noqa: E402
from stylestudio.engine.resources import Resources  # noqa: E402

MESSI = Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


@torch.no_grad()
def lpips_of(lp, a: np.ndarray, b: np.ndarray) -> float:
    x = torch.nn.functional.interpolate(to_tensor_image(a), size=(256, 256), mode="bilinear", antialias=True)
    y = torch.nn.functional.interpolate(to_tensor_image(b), size=(256, 256), mode="bilinear", antialias=True)
    return float(lp(x, y))


@torch.no_grad()
def render(gen, wplus: np.ndarray | torch.Tensor, deltas=None) -> np.ndarray:
    g = gen if not deltas else apply_weight_deltas(gen, deltas)
    ws = torch.as_tensor(np.asarray(wplus, np.float32)).reshape(1, gen.num_ws, gen.w_dim)
    return to_uint8(g.synthesis(ws))


def used_rows(gen) -> list[int]:
    return sorted({layer.w_index for layer in gen.style_layout})


def run_inversion(gen, target: np.ndarray, settings: InversionSettings, lp, encoder=None):
    """Run all stages; return per-stage (seconds on the settings' clock, wall seconds, wplus) and the result."""
    ends: dict[str, dict] = {}
    wall0 = time.perf_counter()
    result = None
    for u in iter_inversion(gen, target, settings, lp, encoder=encoder):
        if u.stage != "done":
            ends[u.stage] = {"seconds": u.elapsed, "wall": time.perf_counter() - wall0, "wplus": u.wplus[0].numpy(),
                             "steps": u.step}
        else:
            result = u.result
    ends["_wall"] = time.perf_counter() - wall0
    return ends, result


TRAJECTORY_AT = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def wplus_trajectory(history: list[dict]) -> list[float]:
    """The W+ stage's LPIPS when it had used each share of its time in ``TRAJECTORY_AT`` (with
    ``--pti off`` the shares of a W+ stage that was not cut short: what the far-face rule looks at)."""
    opt = [h for h in history if h["stage"] == "optimise"]
    if not opt:
        return []
    t0, t1 = opt[0]["seconds"], opt[-1]["seconds"]
    return [round(next(h["lpips"] for h in opt if h["seconds"] - t0 >= f * (t1 - t0)), 4) for f in TRAJECTORY_AT]


def stage_metrics(gen, target, ends, result, lp, true_ws=None, w_std=1.0, meter=None, landmarks=None) -> list[dict]:
    """One row per stage (its last step) and a ``result`` row: what the inversion returned (the
    best code seen, with PTI's weights when PTI ran), timed at the end of the whole run."""
    rows = []
    final = {"seconds": result.seconds, "wall": ends.get("_wall", 0.0), "steps": 0, "wplus": result.wplus}
    for stage, e in [*((k, v) for k, v in ends.items() if not k.startswith("_")), ("result", final)]:
        deltas = result.weight_deltas if stage in ("pti", "result") else None
        wplus = result.wplus if stage in ("pti", "result") else e["wplus"]
        rec = render(gen, wplus, deltas)
        m = {"stage": stage, "steps": e["steps"], "seconds": round(e["seconds"], 2), "wall_seconds": round(e["wall"], 2),
             "psnr": round(psnr(rec, target), 3), "lpips": round(lpips_of(lp, rec, target), 4)}
        if meter is not None:
            m["identity"] = round(meter.similarity(target, rec, landmarks), 4)
        if true_ws is not None:
            idx = used_rows(gen)
            err = (np.asarray(wplus)[idx] - true_ws[idx]) / w_std
            m["latent_rmse"] = round(float(np.sqrt(np.mean(err ** 2))), 4)
        rows.append(m)
    return rows


def summarise(per_face: list[list[dict]]) -> dict:
    out = {}
    for stage in ("estimate", "optimise", "pti", "result"):
        vals = [r for face in per_face for r in face if r["stage"] == stage]
        if not vals:
            continue
        out[stage] = {k: {"mean": round(float(np.nanmean([v[k] for v in vals])), 4),
                          "median": round(float(np.nanmedian([v[k] for v in vals])), 4),
                          "min": round(float(np.nanmin([v[k] for v in vals])), 4)}
                      for k in vals[0] if k != "stage"}
        out[stage]["n"] = len(vals)
        out[stage]["faces_psnr_ge_27"] = int(sum(v["psnr"] >= 27 for v in vals))
    return out


def print_table(summary: dict) -> None:
    """Stage table: mean (median) of each figure."""
    keys = ("seconds", "psnr", "lpips", "identity", "latent_rmse")
    print(f"{'stage':10s} {'n':>3s} " + " ".join(f"{k:>18s}" for k in keys))
    for stage, m in summary.items():
        print(f"{stage:10s} {m['n']:3d} " + " ".join(
            f"{m[k]['mean']:9.3f} ({m[k]['median']:6.3f})" if k in m else f"{'-':>18s}" for k in keys)
            + f"   PSNR ≥ 27 dB: {m['faces_psnr_ge_27']}/{m['n']}")


def label(img: np.ndarray, text: str) -> np.ndarray:
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, 8 + 7 * len(text), 18], fill=(0, 0, 0))
    d.text((4, 3), text, fill=(255, 255, 255))
    return np.asarray(im)


def small(img: np.ndarray, size: int = 384) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS))


def edit_sliders(gen, name: str) -> tuple[str, list[str]]:
    """Sliders to test editability with: issue 5's attribute directions if shipped, else SeFa."""
    from stylestudio.engine.resources import Resources

    try:
        lib = Resources(gen, name).get("directions", "attributes")
        names = [n for n in ("smile", "age", "gender") if n in lib.names()]
        if names:
            return "attributes", names
    except Exception:  # noqa: BLE001 - no attribute directions for this model: fall back
        pass
    return "sefa", ["factor1", "factor2"]


def edited(renderer: Renderer, doc: EditDocument, library: str, direction: str, amount: float) -> np.ndarray:
    from stylestudio.engine.edits.direction import DirectionEdit

    return to_uint8(renderer.render(doc.with_edit(DirectionEdit(library=library, name=direction, amount=amount))))


def combine(files: list[Path]) -> int:
    """One table from runs split over faces (``--first-face``): the stage figures from every face's
    rows, the paired edits from each run's means weighted by its faces (a ratio of means stays exact)."""
    per_face, paired, seeds, runs = [], {}, [], 0
    for f in files:
        gen_part = json.loads(Path(f).read_text()).get("generated")
        if not gen_part:
            continue
        runs += 1
        per_face += gen_part["per_face"]
        seeds += [(gen_part.get("psi", 0.7), s) for s in gen_part.get("seeds") or
                  range(gen_part["first_seed"], gen_part["first_seed"] + gen_part["faces"])]
        for key, v in gen_part.get("paired_edits", {}).items():
            acc = paired.setdefault(key, {"inverted": 0.0, "true": 0.0, "reach": 0.0, "n": 0})
            for k, kk in (("inverted", "inverted"), ("true", "true"), ("reach", "faces_at_80pct")):
                acc[k] += v[kk] * v["n"]
            acc["n"] += v["n"]
    if len(set(seeds)) != len(seeds):
        raise SystemExit("the runs overlap: a face is in two of them")
    print(f"{len(per_face)} generated faces, seeds {min(s for _, s in seeds)}–{max(s for _, s in seeds)} "
          f"(ψ {', '.join(f'{p:g}' for p in sorted({p for p, _ in seeds}))}; {runs} runs)")
    print_table(summarise(per_face))
    print("edit after inversion, same face (slider as the editor applies it, keep others on):")
    for key, a in paired.items():
        inv, true = a["inverted"] / a["n"], a["true"] / a["n"]
        print(f"  {key}: Δ {inv:+.2f} after inversion vs {true:+.2f} on the face's own latent = "
              f"{inv / true * 100:.0f}% ({a['reach'] / a['n'] * 100:.0f}% of {a['n']} faces ≥ 80%)")
    return 0


def compare_real(a_file: Path, b_file: Path) -> int:
    """Two runs of the same photos: per photo LPIPS and identity, then over every photo × slider × ±2
    edit how far the picture moves (geometric mean of B/A) and the predictors' change in the slider's
    direction (means), each with how many edits B moves less than A."""
    a, b = (json.loads(Path(f).read_text())["real"] for f in (a_file, b_file))
    names = [n for n in a if isinstance(a[n], list) and n in b]
    print(f"{'photo':12s} {'LPIPS A':>8s} {'B':>6s} {'identity A':>10s} {'B':>6s}")
    for n in names:
        print(f"{n:12s} {a[n][-1]['lpips']:8.3f} {b[n][-1]['lpips']:6.3f} {a[n][-1]['identity']:10.3f} "
              f"{b[n][-1]['identity']:6.3f}")
    mean = {(k, run_id): np.mean([run[n][-1][k] for n in names]) for k in ("lpips", "identity")
            for run_id, run in (("A", a), ("B", b))}
    print(f"{'mean':12s} {mean['lpips', 'A']:8.3f} {mean['lpips', 'B']:6.3f} {mean['identity', 'A']:10.3f} "
          f"{mean['identity', 'B']:6.3f}")
    moved, along = [], []
    for n in names:
        for d, per in a[n + "_edits"]["results"].items():
            ra, rb = per["result"], b[n + "_edits"]["results"][d]["result"]
            for i, sign in ((0, -1.0), (1, 1.0)):
                moved.append(rb["lpips_moved"][i] / ra["lpips_moved"][i])
                if "delta" in ra and "delta" in rb:
                    along.append((sign * ra["delta"][i], sign * rb["delta"][i]))
    moved_a = np.array(moved)
    print(f"picture moved, B / A: geometric mean {np.exp(np.log(moved_a).mean()):.3f}; "
          f"B less in {(moved_a < 1).sum()} of {len(moved_a)} edits")
    if along:
        al = np.array(along)
        print(f"predicted change in the slider's direction: A {al[:, 0].mean():.2f}, B {al[:, 1].mean():.2f}; "
              f"B less in {(al[:, 1] < al[:, 0]).sum()} of {len(al)} edits")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=50)
    ap.add_argument("--first-face", type=int, default=0,
                    help="start at seed --first-seed + this (to split a long run over sessions)")
    ap.add_argument("--first-seed", type=int, default=1000,
                    help="the evaluation faces are seeds 1000–1049; choose settings on other seeds")
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="these generated faces instead of --first-seed/--first-face/--faces (never the "
                         "evaluation seeds when choosing settings)")
    ap.add_argument("--psi", type=float, default=0.7,
                    help="truncation of the generated faces (the benchmark's 0.7; 1.0 gives faces farther "
                         "from the encoder's comfort)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--time-budget", type=float, default=InversionSettings().time_budget or 0.0,
                    help="seconds for the whole inversion (default the app's; 0: none)")
    ap.add_argument("--pti", choices=[k for k, _ in PTI_CHOICES], default="auto",
                    help="PTI fine-tuning within the budget: auto (the app's default: only for a face far from the "
                         "model), on (every face) or off (never)")
    ap.add_argument("--quick", action="store_true", help="a 20-s budget (a smoke run)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="cpu: process CPU time ÷ threads (default; the machine is shared), wall: wall clock")
    ap.add_argument("--skip-generated", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-paired", action="store_true", help="skip the same-face edit check on generated faces")
    ap.add_argument("--docs", type=Path, default=REPO / "docs")
    ap.add_argument("--json", type=Path, default=None, help="write all figures here")
    ap.add_argument("--photos", default="", help="comma-separated subset of: astronaut, messi")
    ap.add_argument("--photo-file", action="append", default=[], metavar="NAME=PATH[@FACE]",
                    help="another photo to invert (repeatable; @FACE picks a face of a group photo, largest "
                         "first, as the CLI's --face does); tune settings on these, not on the evaluation photos")
    ap.add_argument("--optimise-resolution", type=int, default=None,
                    help="W+ steps render the preview of this stop resolution, the last ones full size "
                         "(default the app's)")
    ap.add_argument("--lpips-size", type=int, default=None, help="side the losses are computed at (default the app's)")
    ap.add_argument("--lr", type=float, default=None, help="W+ Adam step in units of w's std (default the app's)")
    ap.add_argument("--projects", type=Path, default=None, help="save the inverted photos as projects here")
    ap.add_argument("--encoder", choices=("on", "off"), default="on",
                    help="start the estimate from the model's trained encoder (resources/encoder/), as the app does")
    ap.add_argument("--delta-weight", type=float, default=None,
                    help=f"W+ offset penalty (default the app's, {InversionSettings.delta_weight:g})")
    ap.add_argument("--delta-weight-start", type=float, default=None,
                    help="W+ offset penalty at the first step, falling to --delta-weight (default the app's)")
    ap.add_argument("--far-lpips", default=None,
                    help="'LO,HI': estimates at this LPIPS or worse let the W+ penalty fall sooner; 'off' "
                         f"(default the app's, {InversionSettings.far_lpips})")
    ap.add_argument("--pti-far-lpips", default=None,
                    help="PTI joins within the budget for a face still at this LPIPS or worse when W+ is "
                         f"{InversionSettings.pti_far_at * 100:.0f} %% through; 'off' (default the app's, "
                         f"{InversionSettings.pti_far_lpips})")
    ap.add_argument("--trajectory", action="store_true",
                    help="also print each face's W+ LPIPS at 0, 10, … 50 %% of the stage (with --pti off: what "
                         "the far-face rule looks at)")
    ap.add_argument("--compare-real", type=Path, nargs=2, default=None, metavar=("A.json", "B.json"),
                    help="compare two runs' photos (e.g. --pti off and on): LPIPS, identity and how strongly the "
                         "edits act, and stop")
    ap.add_argument("--combine", type=Path, nargs="+", default=None, metavar="JSON",
                    help="print one table from the --json files of runs split with --first-face, and stop")
    args = ap.parse_args()
    if args.combine:
        return combine(args.combine)
    if args.compare_real:
        return compare_real(*args.compare_real)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.time_budget = min(args.time_budget or 20.0, 20.0)

    gen = ModelStore().load()
    name = "mobilestylegan-ffhq"
    lp = load_lpips(size=None)
    _, w_std = w_statistics(gen)
    threads = args.threads
    clock = (lambda: time.process_time() / threads) if args.clock == "cpu" else time.perf_counter
    settings = dataclasses.replace(InversionSettings(), time_budget=args.time_budget or None, clock=clock)
    settings = with_pti(settings, args.pti)
    from stylestudio.engine.inversion.identity import IdentityMeter

    meter = IdentityMeter()
    anchor0 = anchor(gen, clock)
    encoder = model_encoder(Resources(gen, name)) if args.encoder == "on" else None
    settings = dataclasses.replace(settings, use_encoder=encoder is not None)
    if args.delta_weight is not None:
        settings = dataclasses.replace(settings, delta_weight=args.delta_weight)
    if args.delta_weight_start is not None:
        settings = dataclasses.replace(settings, delta_weight_start=args.delta_weight_start or None)
    if args.optimise_resolution is not None:
        settings = dataclasses.replace(settings, optimise_resolution=args.optimise_resolution or None)
    if args.lpips_size is not None:
        settings = dataclasses.replace(settings, lpips_size=args.lpips_size)
    if args.lr is not None:
        settings = dataclasses.replace(settings, lr=args.lr)
    if args.far_lpips is not None:
        far = None if args.far_lpips == "off" else tuple(float(v) for v in args.far_lpips.split(","))
        settings = dataclasses.replace(settings, far_lpips=far)
    if args.pti_far_lpips is not None:
        settings = dataclasses.replace(settings, pti_far_lpips=None if args.pti_far_lpips == "off"
                                       else float(args.pti_far_lpips))
    report: dict = {"threads": args.threads, "clock": args.clock, "identity_threshold": meter.threshold,
                    "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "clock"},
                    "encoder": None if encoder is None else encoder.meta.get("training"),
                    "load_before": os.getloadavg(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    print(f"settings: {settings}", flush=True)

    # ---- (a) generated faces -------------------------------------------------------------------
    if not args.skip_generated and (args.seeds or args.faces > 0):
        fs = settings
        per_face, paired = [], []
        tools = load_paired_tools(gen, "mobilestylegan-ffhq") if not args.skip_paired else None
        seeds = args.seeds or [args.first_seed + args.first_face + i for i in range(args.faces)]
        for i, seed in enumerate(seeds):
            with torch.no_grad():
                ws = gen.mapping(seed_to_z(seed, gen.z_dim), args.psi)
                target = to_uint8(gen.synthesis(ws))
            ends, result = run_inversion(gen, target, fs, lp, encoder)
            rows = stage_metrics(gen, target, ends, result, lp, ws[0].numpy(), w_std, meter)
            per_face.append(rows)
            if args.trajectory:
                rows[-1]["wplus_trajectory"] = wplus_trajectory(result.history)
                print(f"seed {seed}: W+ LPIPS at {TRAJECTORY_AT} of the stage: {rows[-1]['wplus_trajectory']}")
            if tools is not None:
                paired.append(paired_edits(gen, tools, ws[0].numpy(), {"result": (result.wplus, result.weight_deltas)}))
            print(f"face {i + 1}/{len(seeds)} seed {seed}: " + "; ".join(
                f"{r['stage']} {r['steps']} steps {r['seconds']:.0f}s PSNR {r['psnr']:.2f} LPIPS {r['lpips']:.3f} "
                f"identity {r['identity']:.3f} w-err {r['latent_rmse']:.3f}" for r in rows), flush=True)
            if i == 0:
                shown = [r for r in rows if r["stage"] in ("estimate", "result")]
                recs = [render(gen, ends["estimate"]["wplus"]), render(gen, result.wplus, result.weight_deltas)]
                strip = [label(small(target), "generated (target)")] + [
                    label(small(r), f"{m['stage']} {m['seconds']:.0f}s LPIPS {m['lpips']:.3f} id {m['identity']:.2f}")
                    for r, m in zip(recs, shown)]
                args.docs.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.concatenate(strip, 1)).save(args.docs / "inversion_generated.png")
        report["generated"] = {"faces": len(seeds), "first_seed": seeds[0], "seeds": seeds, "psi": args.psi,
                               "per_face": per_face, "summary": summarise(per_face)}
        print(json.dumps(report["generated"]["summary"], indent=1), flush=True)
        print_table(report["generated"]["summary"])
        if paired:
            report["generated"]["paired_edits"], lines = summarise_paired(paired)
            print("edit after inversion, same face (slider as the editor applies it, keep others on):")
            for line in lines:
                print("  " + line, flush=True)

    # ---- (b) real photos ------------------------------------------------------------------------
    if not args.skip_real:
        from skimage import data as skdata

        from stylestudio.engine.photo import PhotoSource

        photos = [("astronaut", lambda: skdata.astronaut(), 0)]
        if MESSI.is_file():
            photos.append(("messi", lambda: load_photo(MESSI), 0))
        photos = [p for p in photos if not args.photos or p[0] in args.photos.split(",")]
        for spec in args.photo_file:
            pname, _, ppath = spec.partition("=")
            ppath, at, which = ppath.rpartition("@") if "@" in ppath else (ppath, "", "0")
            if not ppath or not Path(ppath).is_file() or not which.isdigit():
                ap.error(f"--photo-file {spec!r}: expected NAME=PATH[@FACE] of an existing image")
            photos.append((pname, lambda ppath=ppath: load_photo(Path(ppath)), int(which)))
        report["real"] = {}
        args.docs.mkdir(parents=True, exist_ok=True)
        library, sliders = edit_sliders(gen, name)
        renderer = Renderer(gen, name)
        for pname, load, which in photos:
            photo = load()
            faces = detect_faces(photo)
            if which >= len(faces):
                ap.error(f"{pname}: face {which} asked for, {len(faces)} found")
            face = faces[which]
            aligned, alignment = align_face(photo, face.landmarks, gen.resolution)
            m = alignment.to_aligned()
            lm = (np.asarray(face.landmarks, np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32)
            ends, result = run_inversion(gen, aligned, settings, lp, encoder)
            rows = stage_metrics(gen, aligned, ends, result, lp, meter=meter, landmarks=lm)
            if args.trajectory:
                rows[-1]["wplus_trajectory"] = wplus_trajectory(result.history)
                print(f"{pname}: W+ LPIPS at {TRAJECTORY_AT} of the stage: {rows[-1]['wplus_trajectory']}")
            report["real"][pname] = rows
            print(f"{pname}: " + "; ".join(f"{r['stage']} {r['steps']} steps {r['seconds']:.1f}s (wall {r['wall_seconds']:.0f}s) "
                                          f"LPIPS {r['lpips']:.3f} PSNR {r['psnr']:.2f} identity {r['identity']:.3f}"
                                          for r in rows), flush=True)
            import io

            from stylestudio.engine.face.align import ffhq_quad

            buf = io.BytesIO()
            Image.fromarray(photo).save(buf, format="PNG")
            base = dict(photo_bytes=np.frombuffer(buf.getvalue(), np.uint8).copy(), name=pname,
                        landmarks=face.landmarks, quad=ffhq_quad(face.landmarks))
            docs = {"result": EditDocument(model=name, source=PhotoSource(**base, wplus=result.wplus,
                                                                          weight_deltas=result.weight_deltas))}
            if args.projects:
                from stylestudio.engine.project import save_project

                for key, d in docs.items():
                    save_project(args.projects / f"{pname}-{key}.stylestudio", d)
            rec = {k: to_uint8(renderer.render(d)) for k, d in docs.items()}
            fin = rows[-1]
            strip = [label(small(aligned), "photo (aligned)"),
                     label(small(rec["result"]), f"{fin['seconds']:.0f}s LPIPS {fin['lpips']:.3f} id {fin['identity']:.2f}"
                                                 f"{' PTI' if result.weight_deltas is not None else ''}")]
            for direction in sliders[:2]:
                for amount in (-2.0, 2.0):
                    strip.append(label(small(edited(renderer, docs["result"], library, direction, amount)),
                                       f"{direction} {amount:+g}"))
            Image.fromarray(np.concatenate(strip, 1)).save(args.docs / f"inversion_{pname}.png")
            report["real"][pname + "_edits"] = editability(renderer, docs, library, sliders[:2], lp)
            for line in report["real"][pname + "_edits"]["lines"]:
                print(f"{pname}: {line}", flush=True)
            own = photo_attributes(aligned, sliders[:2])
            if own:  # an edit's change is measured from the reconstruction, so say how far that is from the photo
                report["real"][pname + "_photo_attributes"] = own
                rec_vals = {d: report["real"][pname + "_edits"]["results"][d]["result"].get("attribute", [None])[0]
                            for d in own}
                print(f"{pname}: predicted on the photo vs its reconstruction: " + "; ".join(
                    f"{d} {v:.2f} vs {rec_vals[d]:.2f}" for d, v in own.items() if rec_vals[d] is not None), flush=True)
            # the whole photo: original | reconstruction pasted back | first slider +2 pasted back
            pasted_same = paste_back(photo, rec["result"], face.landmarks)
            pasted_edit = paste_back(photo, edited(renderer, docs["result"], library, sliders[0], 2.0), face.landmarks)
            Image.fromarray(np.concatenate([photo, pasted_same, pasted_edit], 1)).save(
                args.docs / f"inversion_{pname}_pasted.png")

    anchor1 = anchor(gen, clock)
    a = (anchor0 + anchor1) / 2
    report["anchor_seconds"] = {"before": anchor0, "after": anchor1}
    print(f"anchor: one plain {gen.resolution}-px synthesis, {a:.3f} s on the {args.clock} clock "
          f"(before {anchor0:.3f}, after {anchor1:.3f})")
    print(f"identity threshold (same person ≥): {meter.threshold:.3f}")
    print(f"{'':24s} {'seconds':>8s} {'÷anchor':>8s} {'LPIPS':>6s} {'identity':>8s}")
    if "generated" in report:
        r = report["generated"]["summary"]["result"]
        print(f"{'generated (mean)':24s} {r['seconds']['mean']:8.1f} {r['seconds']['mean'] / a:8.0f} "
              f"{r['lpips']['mean']:6.3f} {r['identity']['mean']:8.3f} (min {r['identity']['min']:.3f})")
    for pname, rows in report.get("real", {}).items():
        if isinstance(rows, list):
            r = rows[-1]
            print(f"{pname:24s} {r['seconds']:8.1f} {r['seconds'] / a:8.0f} {r['lpips']:6.3f} {r['identity']:8.3f}")
    report["load_after"] = os.getloadavg()
    print(f"load average before {report['load_before']}, after {report['load_after']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


PAIRED_SLIDERS = ("smile", "age")
PAIRED_AMOUNTS = (-2.0, 2.0)


@torch.no_grad()
def anchor(gen, clock, repeats: int = 3) -> float:
    """Seconds (on ``clock``) of one plain full-resolution synthesis, median of ``repeats``."""
    ws = gen.w_avg[None, None].expand(1, gen.num_ws, -1)
    gen.synthesis(ws)
    times = []
    for _ in range(repeats):
        t = clock()
        gen.synthesis(ws)
        times.append(clock() - t)
    return float(sorted(times)[len(times) // 2])


def load_paired_tools(gen, name: str):
    """(attribute library, predictor) for the paired editability check, or None without them."""
    from stylestudio.engine.resources import Resources

    try:
        from stylestudio.engine.attributes.predictor import AttributePredictor

        lib = Resources(gen, name).get("directions", "attributes")
        return lib, AttributePredictor()
    except Exception as exc:  # noqa: BLE001 - predictor weights or directions unavailable
        print(f"(paired editability skipped: {exc})", flush=True)
        return None


@torch.no_grad()
def paired_edits(gen, tools, true_ws: np.ndarray, latents: dict) -> dict:
    """The same slider on a generated face's own latent and on the latents inverted from its render.

    The fair version of "does an edit still act after inversion": same face, same starting
    attribute, so an attribute that is already saturated on this face is saturated for both.
    Returns {latent kind: {slider: {amount: (Δ on inverted, Δ on the true latent)}}} for the
    shipped slider as the editor applies it (keep others on).
    """
    lib, pred = tools
    names = lib.names()
    out: dict = {}

    def attr(wplus, deltas, slider) -> float:
        img = torch.from_numpy(render(gen, wplus, deltas).astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        return float(pred.measure(img)[slider][0])

    for kind, (wplus, deltas) in {"true": (true_ws, None), **latents}.items():
        base = torch.as_tensor(np.asarray(wplus, np.float32))
        out[kind] = {}
        for slider in PAIRED_SLIDERS:
            keep = tuple(n for n in names if n != slider)
            a0 = attr(base, deltas, slider)
            out[kind][slider] = {a: attr(base + lib.delta(slider, a, gen.num_ws, keep), deltas, slider) - a0
                                 for a in PAIRED_AMOUNTS}
    return {kind: {s: {a: (out[kind][s][a], out["true"][s][a]) for a in PAIRED_AMOUNTS} for s in PAIRED_SLIDERS}
            for kind in latents}


def summarise_paired(per_face: list[dict]) -> tuple[dict, list[str]]:
    """Ratio of mean changes (inverted ÷ true latent) and the share of faces reaching 80 %."""
    summary, lines = {}, []
    for kind in per_face[0]:
        for slider in PAIRED_SLIDERS:
            for a in PAIRED_AMOUNTS:
                pairs = np.array([f[kind][slider][a] for f in per_face], np.float64)
                pairs = pairs[np.isfinite(pairs).all(1)]
                inv, true = pairs[:, 0], pairs[:, 1]
                ratio = float(inv.mean() / true.mean())
                reach = float(np.mean(inv / true >= 0.8))
                summary[f"{kind} {slider} {a:+g}"] = {"inverted": float(inv.mean()), "true": float(true.mean()),
                                                     "ratio": ratio, "faces_at_80pct": reach, "n": len(pairs)}
                lines.append(f"{kind:9s} {slider:6s} {a:+g}: Δ {inv.mean():+.2f} after inversion vs {true.mean():+.2f} "
                             f"on the face's own latent = {ratio * 100:.0f}% ({reach * 100:.0f}% of {len(pairs)} faces ≥ 80%)")
    return summary, lines


@functools.lru_cache(maxsize=1)
def attribute_predictor():
    """(issue 5's predictor, its attribute table), or (None, {}) when it or its weights are unavailable."""
    try:
        from stylestudio.engine.attributes.predictor import ATTRIBUTES, AttributePredictor

        return AttributePredictor(), ATTRIBUTES
    except Exception:  # noqa: BLE001 - predictor or its weights unavailable
        return None, {}


def photo_attributes(aligned: np.ndarray, names: list[str]) -> dict[str, float]:
    """The attribute predictors' reading of the aligned photo itself ({} without the predictors)."""
    pred, _ = attribute_predictor()
    if pred is None:
        return {}
    x = torch.from_numpy(np.array(aligned, np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    with torch.no_grad():
        m = pred.measure(x)
    return {n: float(m[n][0]) for n in names if n in m}


def editability(renderer: Renderer, docs: dict, library: str, sliders: list[str], lp, seeds=(7, 8, 9, 10)) -> dict:
    """Does a slider still act after inversion? The same slider (±2) on the inverted photo and on
    generated faces: the image change (LPIPS) and, when issue 5's predictor is importable, the
    predicted attribute change. Ratio = photo / mean over generated faces, per direction (−2, +2)."""
    from stylestudio.engine.edits.direction import DirectionEdit

    pred, ATTRIBUTES = attribute_predictor()
    gen = renderer.generator
    model = next(iter(docs.values())).model
    generated = {f"seed {s}": EditDocument(model=model, source=LatentSource(
        wplus=gen.mapping(seed_to_z(s, gen.z_dim), 0.7)[0].detach().numpy(), name=f"seed {s}")) for s in seeds}
    out: dict = {"library": library, "amount": 2.0, "results": {}, "lines": []}
    for direction in sliders:
        per: dict = {}
        for key, doc in {**docs, **generated}.items():
            with torch.no_grad():
                imgs = [renderer.render(doc)] + [renderer.render(doc.with_edit(
                    DirectionEdit(library=library, name=direction, amount=a))) for a in (-2.0, 2.0)]
            moved = [lpips_of(lp, to_uint8(imgs[i]), to_uint8(imgs[0])) for i in (1, 2)]
            entry = {"lpips_moved": moved}
            if pred is not None and direction in ATTRIBUTES:
                m = pred.measure(torch.cat(imgs).clamp(-1, 1))[direction]
                entry["attribute"] = [float(m[0]), float(m[1]), float(m[2])]
                entry["delta"] = [float(m[1] - m[0]), float(m[2] - m[0])]
            per[key] = entry
        out["results"][direction] = per
        g_keys = list(generated)
        for key in docs:
            parts = []
            for which, idx in (("−2", 0), ("+2", 1)):
                if "delta" in per[key]:
                    g = np.nanmean([per[k]["delta"][idx] for k in g_keys])
                    parts.append(f"{which}: Δ{direction} {per[key]['delta'][idx]:+.2f} vs generated {g:+.2f} "
                                 f"({per[key]['delta'][idx] / g * 100:.0f}%)")
                g_lp = np.mean([per[k]["lpips_moved"][idx] for k in g_keys])
                parts.append(f"{which}: image moved LPIPS {per[key]['lpips_moved'][idx]:.3f} vs {g_lp:.3f}")
            out["lines"].append(f"{library}/{direction} on {key}: " + "; ".join(parts))
    return out


if __name__ == "__main__":
    sys.exit(main())
