"""The shipped text path library at its own ±1 against the shipped attribute slider's ±1 (docs/textpaths.md).

    nice -n 10 python bench/shipped_textpaths.py [--faces 40]

bench/textpaths_quality.py measured these paths at amounts matched on its calibration faces; the
shipped library carries each path's calibrated unit instead (scripts/train_starter_textpaths.py).
This measures what a user gets from ``--set smile=+1``: on held-out faces (the quality bench's
seed, ψ 0.7) each path and the slider of the same attribute at −1, 0, +1, as 256-px previews:
the mean target change −1→+1 (the project's predictors), Spearman ρ over the three points, identity
drift (1 − centred cosine of MobileFaceNet embeddings, mean of both ends) and the mean |change| of
the other attributes in their slider units. Prints absolute times and a ratio against an anchor
render of the same faces.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=None,
                    help="the faces' seed (default: the quality bench's held-out 515151; another seed gives faces no "
                         "choice was ever made on)")
    ap.add_argument("--library", type=Path, default=None, help="a text path library file (default: the shipped one)")
    ap.add_argument("--paths", default=None, help="comma-separated paths to measure (default: all)")
    args = ap.parse_args()

    import torch

    from bench.textpaths_quality import EVAL_SEED, PSI, Arms, Meter, attribute_units, load_average, spearman_rows
    from stylestudio.engine.attributes.predictor import ATTRIBUTES
    from stylestudio.engine.directions.labels import sample_w
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
    from stylestudio.engine.text.library import TextPathLibrary, shipped_library

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    gen = ModelStore().load(DEFAULT_MODEL, device="cpu")
    path = args.library or shipped_library(DEFAULT_MODEL, "textpaths")
    lib = TextPathLibrary.load(path)
    if args.paths:
        lib = lib.subset(args.paths.split(","))
    seed = EVAL_SEED if args.seed is None else args.seed
    meter, arms = Meter(gen, 128), Arms(gen, {"shipped": lib})
    names = meter.names
    starts = []
    w_all = torch.from_numpy(sample_w(gen, args.faces, seed, PSI))
    amounts = (-1.0, 0.0, 1.0)
    rows = {(arm, p): {"attrs": [], "emb": []} for p in lib.names() for arm in ("shipped", "slider")}
    t0, anchor = time.time(), 0.0
    for s in range(0, args.faces, args.batch):
        ws = gen.broadcast_w(w_all[s:s + args.batch])
        ta = time.perf_counter()
        meter.render(ws)
        anchor += time.perf_counter() - ta
        base = meter(ws, lpips=False)
        starts.append(base["attrs"])
        for (arm, p), acc in rows.items():
            got = [meter(arms.move(arm, p, ws, a), lpips=False) if a else base for a in amounts]
            acc["attrs"].append(np.stack([g["attrs"] for g in got], 1))  # [B, 3, A]
            acc["emb"].append(np.stack([g["emb"] for g in got], 1))
        print(f"  {min(s + args.batch, args.faces)}/{args.faces} faces, {time.time() - t0:.0f} s", flush=True)
    seconds = time.time() - t0
    spread = attribute_units(names, np.concatenate(starts))
    print(f"\n{path.name} ({path.stat().st_size / 1024:.0f} KiB) on {args.faces} held-out faces (seed {seed}, ψ {PSI}), "
          f"load average {load_average()}")
    print("| path | arm | target −1→+1 | Spearman ρ (3 points) | identity drift | other attrs | largest other |")
    print("|---|---|---|---|---|---|---|")
    for p in lib.names():
        ti = names.index(p)
        for arm in ("shipped", "slider"):
            a = np.concatenate(rows[arm, p]["attrs"])  # [N, 3, A]
            e = np.concatenate(rows[arm, p]["emb"])
            target = a[:, 2, ti] - a[:, 0, ti]
            rho = np.nanmean(spearman_rows(np.array(amounts), a[:, :, ti]))
            drift = np.nanmean([meter.identity_drift(e[:, k], e[:, 1]) for k in (0, 2)])
            other = np.abs(a[:, 2] - a[:, 0]) / spread
            other[:, ti] = np.nan
            with warnings.catch_warnings():  # the target's own column is all NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                per = np.nanmean(other, 0)
            big = int(np.nanargmax(per))
            unit = ATTRIBUTES[p].unit
            print(f"| {p} | {'text path' if arm == 'shipped' else 'attribute slider'} | {np.nanmean(target):+.2f} {unit} "
                  f"| {rho:+.3f} | {drift:.3f} | {np.nanmean(per):.2f} | {names[big]} {per[big]:.2f} |")
    print(f"\n{seconds:.0f} s for {args.faces} faces × (1 anchor + 9 measured renders) "
          f"({(seconds - anchor) / args.faces / 9:.3f} s a measured render with predictors and identity = "
          f"{(seconds - anchor) / anchor / 9:.1f}× the anchor, a plain 256-px preview render, "
          f"{anchor / args.faces:.3f} s a face)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
