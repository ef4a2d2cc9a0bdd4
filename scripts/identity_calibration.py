"""Calibrate the identity measure (resources/identity/mobilefacenet.json) on generated faces.

    python scripts/identity_calibration.py [--centre-faces 48] [--invert 4] [--pti off,on] [--clock cpu]

1. The population's mean embedding: ``--centre-faces`` generated faces (seeds 3000…, ψ 0.7) of the
   default model, full renders, each chipped by its own dlib landmarks.
2. "Other person": the centred cosine similarity of every pair of those faces.
3. "Same person": ``--invert`` other generated faces (seeds 2000…, never the benchmark's 1000–1049)
   are rendered and inverted with the app's default settings (the default time budget, on the
   ``--clock``), and each reconstruction is compared with its own original. With ``--pti off,on``
   each face is inverted both ways and the paired edit strength (bench/inversion.py's
   smile/age ±2 on the face's own latent vs on its inversion) is measured too: the PTI decision.
4. The threshold: 1 % of "other person" pairs score above it (their 99th percentile), moved up to
   the midpoint between that and the lowest "same person" similarity of the default settings'
   inversions (PTI as the defaults say) when those all lie above it. The embedding network is
   small (MobileFaceNet): the two distributions overlap, so the threshold is a guide, not a proof.

Times are process CPU seconds ÷ threads with ``--clock cpu`` (the machine is shared).
"""
from __future__ import annotations

import argparse
import dataclasses
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
sys.path.insert(0, str(REPO / "bench"))


def main() -> int:
    from stylestudio.engine.document import seed_to_z
    from stylestudio.engine.inversion import InversionSettings, iter_inversion, model_encoder
    from stylestudio.engine.inversion.identity import CALIBRATION_FILE, IdentityCalibration, IdentityMeter, \
        centred_cosine
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.perceptual import load_lpips
    from stylestudio.engine.render import to_uint8
    from stylestudio.engine.resources import Resources
    from stylestudio.paths import resources_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--centre-faces", type=int, default=48)
    ap.add_argument("--invert", type=int, default=4, help="generated faces to invert (seeds --first-seed…)")
    ap.add_argument("--first-seed", type=int, default=2000, help="never the benchmark's 1000–1049")
    ap.add_argument("--pti", default="off", help="comma-separated: off, on (each face inverted each way)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("-o", "--output", type=Path, default=Path(resources_dir()).joinpath(*CALIBRATION_FILE))
    ap.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock = (lambda: time.process_time() / args.threads) if args.clock == "cpu" else time.perf_counter
    gen = ModelStore().load()
    name = "mobilestylegan-ffhq"

    def face(seed: int):
        with torch.no_grad():
            ws = gen.mapping(seed_to_z(seed, gen.z_dim), 0.7)
            return ws, to_uint8(gen.synthesis(ws))

    # 1–2: centre and other-person similarities
    meter = IdentityMeter(IdentityCalibration(np.zeros(192, np.float32), 0.0))
    embs = []
    for s in range(3000, 3000 + args.centre_faces):
        img = face(s)[1]
        lm = meter.landmarks(img)
        if lm is not None:
            embs.append(meter.embed(img, lm))
    embs = np.stack(embs)
    centre = embs.mean(0)
    iu = np.triu_indices(len(embs), 1)
    others = centred_cosine(embs[iu[0]], embs[iu[1]], centre)
    meter = IdentityMeter(IdentityCalibration(centre.astype(np.float32), 0.0), meter.landmarker)
    print(f"centre from {len(embs)} of {args.centre_faces} faces; other-person similarity over {len(others)} pairs: "
          f"mean {others.mean():.3f}, 99th pct {np.percentile(others, 99):.3f}, max {others.max():.3f}", flush=True)

    # 3: same-person similarities after inversion (and the PTI comparison)
    from inversion import load_paired_tools, lpips_of, paired_edits, render, summarise_paired  # bench/inversion.py

    lp = load_lpips(size=None)
    encoder = model_encoder(Resources(gen, name))
    variants = [v.strip() for v in args.pti.split(",") if v.strip()]
    tools = load_paired_tools(gen, name) if args.invert else None
    report: dict = {"load_before": os.getloadavg(), "clock": args.clock, "threads": args.threads,
                    "others": others.tolist(), "variants": {}}
    for v in variants:
        report["variants"][v] = {"same": [], "seconds": [], "lpips": [], "paired": []}
    for i in range(args.invert):
        seed = args.first_seed + i
        ws, target = face(seed)
        for v in variants:
            settings = dataclasses.replace(InversionSettings(), pti=v == "on", clock=clock)
            t0 = time.perf_counter()
            result = [u for u in iter_inversion(gen, target, settings, lp, encoder=encoder)][-1].result
            wall = time.perf_counter() - t0
            rec = render(gen, result.wplus, result.weight_deltas)
            sim = meter.similarity(target, rec)
            r = report["variants"][v]
            r["same"].append(sim)
            r["seconds"].append(result.seconds)
            r["lpips"].append(lpips_of(lp, rec, target))
            if tools is not None:
                r["paired"].append(paired_edits(gen, tools, ws[0].numpy(), {f"PTI {v}": (result.wplus,
                                                                                       result.weight_deltas)}))
            print(f"seed {seed} PTI {v}: {result.seconds:.1f} s on the clock ({wall:.0f} s wall), "
                  f"LPIPS {r['lpips'][-1]:.3f}, identity {sim:.3f}", flush=True)
            for line in summarise_paired(r["paired"][-1:])[1] if r["paired"] else ():
                print("  " + line, flush=True)

    default = "on" if InversionSettings().pti else "off"
    threshold = float(np.percentile(others, 99))
    for v, r in report["variants"].items():
        if not r["same"]:
            continue
        same = np.array(r["same"])
        print(f"PTI {v}: identity mean {same.mean():.3f} min {same.min():.3f}; LPIPS mean {np.mean(r['lpips']):.3f}; "
              f"{np.mean(r['seconds']):.1f} s", flush=True)
        if r["paired"]:
            r["paired_summary"], lines = summarise_paired(r["paired"])
            for line in lines:
                print("  " + line, flush=True)
    chosen = report["variants"].get(default, {}).get("same")
    if chosen and min(chosen) > threshold:
        threshold = float((threshold + min(chosen)) / 2)
    report["threshold"] = threshold
    report["load_after"] = os.getloadavg()
    cal = IdentityCalibration(centre.astype(np.float32), round(threshold, 3), {
        "made_by": "scripts/identity_calibration.py",
        "centre_faces": f"{len(embs)} generated faces, seeds 3000-{3000 + args.centre_faces - 1}, psi 0.7",
        "other_person": {"pairs": int(len(others)), "mean": round(float(others.mean()), 4),
                         "p99": round(float(np.percentile(others, 99)), 4), "max": round(float(others.max()), 4)},
        "same_person": {"faces": len(chosen or []), "seeds": f"{args.first_seed}-{args.first_seed + args.invert - 1}",
                        "pti": default, "min": round(float(min(chosen)), 4) if chosen else None,
                        "mean": round(float(np.mean(chosen)), 4) if chosen else None},
        "rule": "99th percentile of other-person pairs, or the midpoint between it and the lowest "
                "same-person similarity when that is higher"})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(cal.to_json(), indent=1) + "\n", encoding="utf-8")
    print(f"threshold {threshold:.3f} -> {args.output}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
