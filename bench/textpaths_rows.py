"""How many W+ rows should a text path move? The experiment behind the shipped ``age`` path (docs/textpaths.md).

    nice -n 10 python bench/textpaths_rows.py --rows 15 12 --steps 20 60 --seeds 0 1 [--path age] [--work DIR]
    nice -n 10 python bench/textpaths_rows.py --pairs smile,age,gender,hair --path hair --rows 12 15 --steps 60 --seeds 0

For every (rows, steps, seed) it trains the starter corpus's three pairs (smile, age, gender) with
the built-in encoder as scripts/train_starter_textpaths.py trains the shipped age path (ContraCLIP,
batch 8, lr 1e-3, one thread, no timing batch drawn first: rows 12, 60 steps, seed 0 here is that
path bit for bit; cached under ``--work``), then, on the quality bench's **calibration** faces
(seed 424242, never the evaluation faces), moves the faces −3…+3 of the path's units and finds
where the mean change of its attribute (the project's predictors) equals the shipped attribute
slider's at −1 and at +1. At those matched amounts it prints identity drift (1 − centred cosine of
MobileFaceNet embeddings) and the mean |change| of the other nine attributes in their slider units,
next to the slider's own. It decides nothing by itself; it shows what the choice was made on.

``--pairs`` trains a candidate pair of bench/textpaths_quality.PAIRS beside the starter's three
(``hair``: blond / dark hair, measured against the ``hair_lightness`` slider; not shipped).
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

TRAINED = ("smile", "age", "gender")
AMOUNTS = (1.0, 2.0, 3.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[15, 12])
    ap.add_argument("--steps", type=int, nargs="+", default=[20, 60])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--pairs", default=",".join(TRAINED),
                    help="comma-separated pairs trained together (bench/textpaths_quality.PAIRS; default: the starter's three)")
    ap.add_argument("--path", default="age", help="the pair measured (one of --pairs)")
    ap.add_argument("--faces", type=int, default=10, help="calibration faces (seed 424242)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/textpaths-rows"))
    args = ap.parse_args()
    pairs = args.pairs.split(",")
    if args.path not in pairs:
        raise SystemExit(f"--path {args.path} is not one of --pairs {args.pairs}")
    from bench.textpaths_quality import PAIRS

    if any(p not in PAIRS for p in pairs):
        raise SystemExit(f"--pairs: choose from {', '.join(PAIRS)}")

    import torch

    from bench.textpaths_quality import (CALIB_SEED, PSI, Arms, Meter, attribute_units, crossing, load_average,
                                         train_pairs)
    from stylestudio.engine.directions.labels import sample_w
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    args.work.mkdir(parents=True, exist_ok=True)
    gen = ModelStore().load(DEFAULT_MODEL, device="cpu")
    meter = Meter(gen, 128)
    ws = gen.broadcast_w(torch.from_numpy(sample_w(gen, args.faces, CALIB_SEED, PSI)))
    start = meter(ws, lpips=False)
    names = meter.names
    units = attribute_units(names, start["attrs"])
    ti = names.index(PAIRS[args.path][2])
    others = [i for i in range(len(names)) if i != ti]

    def measure(moved) -> tuple[np.ndarray, float]:
        m = meter(moved, lpips=False)
        return np.nanmean(m["attrs"] - start["attrs"], axis=0), float(np.nanmean(meter.identity_drift(m["emb"], start["emb"])))

    def side_effects(change: np.ndarray) -> tuple[float, str]:
        rel = np.abs(change[others]) / units[others]
        return float(rel.mean()), f"{names[others[int(rel.argmax())]]} {rel.max():.2f}"

    t0 = time.time()
    slider = Arms(gen, {})
    rows_out = []
    ref = {}
    for sign in (1.0, -1.0):
        change, drift = measure(slider.move("slider", args.path, ws, sign))
        ref[sign] = (change, drift)
        rows_out.append(("attribute slider", sign, 1.0, True, change[ti], drift, *side_effects(change)))
    for rows in args.rows:
        for steps in args.steps:
            for seed in args.seeds:
                settings = {"method": "contraclip", "steps": steps, "batch": 8, "lr": 1e-3, "seed": seed, "rows": rows}
                extra = "".join(f"-{p}" for p in pairs if p not in TRAINED)
                lib = train_pairs(gen, args.work / f"rows{rows}-steps{steps}-seed{seed}{extra}.sstp", pairs, settings)
                for sign in (1.0, -1.0):
                    grid = [measure(lib.move(args.path, ws, sign * a, gen.w_avg)) for a in AMOUNTS]
                    goal = ref[sign][0][ti]
                    amount, reached = crossing([0.0, *AMOUNTS], [0.0] + [g[0][ti] for g in grid], goal)
                    # the measures at the matched amount, linear between the grid points around it
                    pts = [(np.zeros(len(names)), 0.0), *grid]
                    i = min(int(np.floor(amount)), len(AMOUNTS) - 1)
                    f = amount - i
                    change = (1 - f) * pts[i][0] + f * pts[i + 1][0]
                    drift = (1 - f) * pts[i][1] + f * pts[i + 1][1]
                    rows_out.append((f"rows {rows}, {steps} steps, seed {seed}", sign, amount, reached, change[ti],
                                     drift, *side_effects(change)))
    print(f"\n`{args.path}` on {args.faces} calibration faces (seed {CALIB_SEED}, ψ {PSI}); {time.time() - t0:.0f} s, "
          f"load average {load_average()}")
    print("| path | side | matched amount | target change | identity drift | other attrs | largest other |")
    print("|---|---|---|---|---|---|---|")
    for label, sign, amount, reached, target, drift, other, worst in rows_out:
        star = "" if reached else "*"
        print(f"| {label} | {'+' if sign > 0 else '−'} | {amount:.2f}{star} | {target:+.2f} | {drift:.3f} | "
              f"{other:.2f} | {worst} |")
    print("(* not reached within 3 units; the measures are at 3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
