"""The inversion's first estimate with and without the trained encoders (issues 6 and 19), on the CPU.

    python bench/inversion_estimate.py [--faces 8] [--threads 1] [--edits 4] [--json out.json]

Runs only the estimate stage (no W+ optimisation) on generated faces (seed 1000+i, ψ 0.7, as
bench/inversion.py) and on real photos (skimage's astronaut and, when Debian's opencv-doc is
installed, messi5.jpg with its 36-px face; detected and aligned), under several variants:
the former estimate (16 random faces scored on coarse previews, then 20 W steps), the encoder's
prediction scored together with those candidates, the encoder alone followed by the W steps, and
the encoder's prediction as it is. For each: seconds (process CPU time ÷ threads, as
bench/inversion.py measures; wall time too), LPIPS-VGG (256 px) of the full-resolution render of
the estimate against the target, the latent error for generated faces, and where it started.

Both encoders run, same faces, same run: the ridge one (``default.json``) and the network one
(``default.pt``, ``stylestudio train-encoder``), whose W+ prediction (the shared w plus its
per-row offsets) is also rendered as it is. None of these faces were training faces (training
chunks use seeds 100000+, the held-out set of the training script 500000). ``--edits N``: on the
first N generated faces, the smile and age sliders (±2, as the editor applies them) on each
encoder's raw prediction and on the true latent; the predicted attribute change after/before
is the edit strength kept (needs the attribute predictors; skipped without them).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_spec = importlib.util.spec_from_file_location("bench_inversion", REPO / "bench" / "inversion.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

from stylestudio.engine.document import seed_to_z  # noqa: E402
from stylestudio.engine.inversion import InversionSettings, iter_inversion, model_encoder  # noqa: E402
from stylestudio.engine.render import to_uint8  # noqa: E402
from stylestudio.engine.resources import Resources  # noqa: E402

VARIANTS = {
    "random 16 + 20 steps (before)": dict(use_encoder=False),
    "encoder + random 16 + 20 steps": dict(encoder_candidates=16),
    "encoder + 20 steps (default)": dict(),
    "encoder only": dict(estimate_steps=0),
}
#: variants run once (they do not use an encoder)
NO_ENCODER = ("random 16 + 20 steps (before)",)


def predict_wplus(gen, encoder, target: np.ndarray, lp) -> np.ndarray:
    """The network encoder's raw W+ [num_ws, w_dim] for an aligned face (no search, no steps)."""
    from stylestudio.engine.inversion.encoder import image_tensor

    return encoder.predict_wplus(image_tensor(target), lp)[0]


def estimate(gen, target: np.ndarray, settings: InversionSettings, lp, encoder) -> dict:
    """Run the estimate stage alone; its seconds, final W+ and starting point."""
    wall0 = time.perf_counter()
    last, origin = None, ""
    for u in iter_inversion(gen, target, dataclasses.replace(settings, optimise=False), lp, encoder=encoder):
        if u.stage == "estimate":
            last = (u.elapsed, time.perf_counter() - wall0, u.wplus[0].numpy())
        else:
            origin = u.result.origin
    assert last is not None
    return {"seconds": last[0], "wall": last[1], "wplus": last[2], "origin": origin}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--edits", type=int, default=4, help="generated faces for the edit-strength check (0: none)")
    ap.add_argument("--net", type=Path, default=None, help="a network encoder file (default: the model's default.pt)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    gen = bench.ModelStore().load()
    name = "mobilestylegan-ffhq"
    lp = bench.load_lpips(size=None)
    _, w_std = bench.w_statistics(gen)
    res = Resources(gen, name)
    encoders = {}
    if res.find_file("encoder", "default.json") is not None:
        encoders["ridge"] = res.get("encoder", "default")
    if args.net is not None:
        from stylestudio.engine.inversion.net_encoder import NetEncoder

        encoders["network"] = NetEncoder.load(args.net)
    elif res.find_file("encoder", "default.pt") is not None:
        encoders["network"] = res.get("net-encoder", "default")
    if not encoders:
        raise SystemExit(f"no encoder shipped for {name}: run scripts/train_encoder.py or stylestudio train-encoder")
    default = model_encoder(res)
    print(f"encoders: {', '.join(encoders)}; the inversion uses "
          f"{next((k for k, e in encoders.items() if e is default), '?')}; load {os.getloadavg()[0]:.1f}", flush=True)
    threads = args.threads
    base = InversionSettings(clock=lambda: time.process_time() / threads)

    targets: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    for i in range(args.faces):
        with torch.no_grad():
            ws = gen.mapping(seed_to_z(1000 + i, gen.z_dim), 0.7)
            targets.append((f"seed {1000 + i}", to_uint8(gen.synthesis(ws)), ws[0].numpy()))
    if not args.skip_real:
        from skimage import data as skdata

        photos = {"astronaut": skdata.astronaut}
        if bench.MESSI.is_file():
            photos["messi"] = lambda: bench.load_photo(bench.MESSI)
        for pname, load in photos.items():
            photo = load()
            face = bench.detect_faces(photo)[0]
            targets.append((pname, bench.align_face(photo, face.landmarks, gen.resolution)[0], None))

    idx = bench.used_rows(gen)
    rows: list[dict] = []
    raw: dict[str, dict[str, np.ndarray]] = {}  # target → {kind: W+}: the raw predictions, for the edit check
    for tname, target, true_ws in targets:
        runs = [(v, None) for v in NO_ENCODER] + [(v, e) for e in encoders for v in VARIANTS if v not in NO_ENCODER]
        raw[tname] = {}
        for vname, ename in runs:
            t0, w0 = time.process_time(), time.perf_counter()
            if vname == "encoder only" and ename == "network":  # also its W+ rows, as predicted
                wp = predict_wplus(gen, encoders[ename], target, lp)
                raw[tname]["network W+"] = wp
                r = {"seconds": (time.process_time() - t0) / threads, "wall": time.perf_counter() - w0, "wplus": wp,
                     "origin": "encoder"}
                rows.append(score(gen, lp, tname, "network W+ only", r, target, true_ws, idx, w_std))
            r = estimate(gen, target, dataclasses.replace(base, **VARIANTS[vname]), lp,
                         encoders.get(ename) if ename else None)
            if vname == "encoder only":
                raw[tname][ename] = r["wplus"]
            rows.append(score(gen, lp, tname, vname if ename is None else f"{ename}: {vname}", r, target, true_ws,
                              idx, w_std))

    real = [t[0] for t in targets if t[2] is None]
    print(f"\nmean over {args.faces} generated faces; {', '.join(real)}:")
    summary: dict = {}
    for vname in dict.fromkeys(r["variant"] for r in rows):
        gen_rows = [r for r in rows if r["variant"] == vname and r["target"] not in real]
        photos_rows = [r for r in rows if r["variant"] == vname and r["target"] in real]
        s = {k: round(float(np.mean([r[k] for r in gen_rows])), 4) for k in ("seconds", "lpips", "psnr", "latent_rmse")}
        s["starts_from_encoder"] = sum(r["start"] == "encoder" for r in gen_rows)
        for r in photos_rows:
            s[r["target"]] = {k: r[k] for k in ("seconds", "lpips", "psnr", "start")}
        summary[vname] = s
        print(f"  {vname:41s} {s['seconds']:5.2f}s LPIPS {s['lpips']:.3f} PSNR {s['psnr']:.2f} "
              f"w-err {s['latent_rmse']:.3f} (encoder start {s['starts_from_encoder']}/{len(gen_rows)})"
              + "".join(f" | {r['target']} LPIPS {r['lpips']:.3f} start {r['start']}" for r in photos_rows))

    edits = edit_strength(gen, name, targets[:min(args.edits, args.faces)], raw) if args.edits else {}
    if args.json:
        args.json.write_text(json.dumps({"threads": threads, "faces": args.faces, "load": os.getloadavg()[0],
                                         "rows": rows, "summary": summary, "edits": edits}, indent=1))
    return 0


def score(gen, lp, tname: str, vname: str, r: dict, target: np.ndarray, true_ws, idx, w_std: float) -> dict:
    rec = bench.render(gen, r["wplus"])
    row = {"target": tname, "variant": vname, "seconds": round(r["seconds"], 2), "wall": round(r["wall"], 2),
           "lpips": round(bench.lpips_of(lp, rec, target), 4), "psnr": round(bench.psnr(rec, target), 2),
           "start": r["origin"]}
    if true_ws is not None:
        row["latent_rmse"] = round(float(np.sqrt(np.mean(((r["wplus"][idx] - true_ws[idx]) / w_std) ** 2))), 4)
    print(f"{tname:10s} {vname:41s} {row['seconds']:5.2f}s (wall {row['wall']:5.1f}s) LPIPS {row['lpips']:.3f} "
          f"PSNR {row['psnr']:.2f}" + (f" w-err {row['latent_rmse']:.3f}" if "latent_rmse" in row else "")
          + f"  start: {row['start']}", flush=True)
    return row


def edit_strength(gen, name: str, targets: list, raw: dict) -> dict:
    """Each encoder's raw prediction edited with the smile and age sliders against the true latent
    edited the same way (bench/inversion.py's paired check): the share of the attribute change kept."""
    tools = bench.load_paired_tools(gen, name)
    if tools is None:
        return {}
    per_face = [bench.paired_edits(gen, tools, true_ws, {k: (w, None) for k, w in raw[t].items()})
                for t, _, true_ws in targets]
    out: dict = {}
    print(f"\nedit strength kept (Δ attribute on the raw prediction ÷ on the true latent, {len(per_face)} faces):")
    for kind in per_face[0]:
        for slider in bench.PAIRED_SLIDERS:
            for a in bench.PAIRED_AMOUNTS:
                inv = np.array([f[kind][slider][a][0] for f in per_face])
                true = np.array([f[kind][slider][a][1] for f in per_face])
                ratio = float(inv.mean() / true.mean()) if abs(true.mean()) > 1e-9 else float("nan")
                out[f"{kind} {slider} {a:+g}"] = {"estimate": float(inv.mean()), "true": float(true.mean()),
                                                  "kept": round(ratio, 3)}
                print(f"  {kind:11s} {slider:6s} {a:+g}: Δ {inv.mean():+.2f} vs {true.mean():+.2f} on the true latent "
                      f"({ratio:.0%} kept)", flush=True)
    return out


if __name__ == "__main__":
    sys.exit(main())
