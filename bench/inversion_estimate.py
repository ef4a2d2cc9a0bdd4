"""The inversion's first estimate with and without the trained encoder (issue 6), on the CPU.

    python bench/inversion_estimate.py [--faces 8] [--threads 1] [--json out.json]

Runs only the estimate stage (no W+ optimisation) on generated faces (seed 1000+i, ψ 0.7, as
bench/inversion.py) and on real photos (skimage's astronaut and, when Debian's opencv-doc is
installed, messi5.jpg with its 36-px face; detected and aligned), under several variants:
the former estimate (16 random faces scored on coarse previews, then 20 W steps), the encoder's
prediction scored together with those candidates, the encoder alone followed by the W steps, and
the encoder's prediction as it is. For each: seconds (process CPU time ÷ threads, as
bench/inversion.py measures; wall time too), LPIPS-VGG (256 px) of the full-resolution render of
the estimate against the target, the latent error for generated faces, and where it started.
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
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    gen = bench.ModelStore().load()
    name = "mobilestylegan-ffhq"
    lp = bench.load_lpips(size=None)
    _, w_std = bench.w_statistics(gen)
    encoder = model_encoder(Resources(gen, name))
    if encoder is None:
        raise SystemExit(f"no encoder shipped for {name}: run scripts/train_encoder.py first")
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

    rows: list[dict] = []
    for tname, target, true_ws in targets:
        for vname, changes in VARIANTS.items():
            r = estimate(gen, target, dataclasses.replace(base, **changes), lp, encoder)
            rec = bench.render(gen, r["wplus"])
            row = {"target": tname, "variant": vname, "seconds": round(r["seconds"], 2), "wall": round(r["wall"], 2),
                   "lpips": round(bench.lpips_of(lp, rec, target), 4), "psnr": round(bench.psnr(rec, target), 2),
                   "start": r["origin"]}
            if true_ws is not None:
                idx = bench.used_rows(gen)
                row["latent_rmse"] = round(float(np.sqrt(np.mean(((r["wplus"][idx] - true_ws[idx]) / w_std) ** 2))), 4)
            rows.append(row)
            print(f"{tname:10s} {vname:32s} {row['seconds']:5.2f}s (wall {row['wall']:5.1f}s) LPIPS {row['lpips']:.3f} "
                  f"PSNR {row['psnr']:.2f}" + (f" w-err {row['latent_rmse']:.3f}" if "latent_rmse" in row else "")
                  + f"  start: {row['start']}", flush=True)

    real = [t[0] for t in targets if t[2] is None]
    print(f"\nmean over {args.faces} generated faces; {', '.join(real)}:")
    summary: dict = {}
    for vname in VARIANTS:
        gen_rows = [r for r in rows if r["variant"] == vname and r["target"] not in real]
        photos_rows = [r for r in rows if r["variant"] == vname and r["target"] in real]
        s = {k: round(float(np.mean([r[k] for r in gen_rows])), 4) for k in ("seconds", "lpips", "psnr", "latent_rmse")}
        s["starts_from_encoder"] = sum(r["start"] == "encoder" for r in gen_rows)
        for r in photos_rows:
            s[r["target"]] = {k: r[k] for k in ("seconds", "lpips", "psnr", "start")}
        summary[vname] = s
        print(f"  {vname:32s} {s['seconds']:5.2f}s LPIPS {s['lpips']:.3f} PSNR {s['psnr']:.2f} "
              f"w-err {s['latent_rmse']:.3f} (encoder start {s['starts_from_encoder']}/{len(gen_rows)})"
              + "".join(f" | {r['target']} {r['seconds']:.2f}s LPIPS {r['lpips']:.3f} start {r['start']}"
                        for r in photos_rows))
    if args.json:
        args.json.write_text(json.dumps({"threads": threads, "faces": args.faces, "rows": rows, "summary": summary},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
