"""Train the starter text path library shipped for the default model (resources/textpaths/<model>/textpaths.sstp).

    nice -n 10 python scripts/train_starter_textpaths.py [--work /tmp/starter-textpaths] [--threads 1]

Two trainings, each with the built-in face-text encoder (``minilm``) and the three pairs smile, age
and gender in one run (the InfoNCE loss contrasts the paths with each other, so training fewer
pairs would give other, unmeasured paths), lr 1e-3, batch 8, seed 0, one CPU thread; each is saved
under ``--work`` and reused by a later run with the same settings (docs/textpaths.md, "Shipped library"):

1. ``smile`` and ``gender``: bench/textpaths_quality.py's measured ContraCLIP arm exactly (20 steps,
   the paths move the first two thirds of the W+ rows, 15 of 23).
2. ``age`` (stop 33; 120 steps since stop 34, 60 before): moving only W+ rows 0–11 (the 4–64 px
   layers; ``--rows 12``).
   With 15 rows the age path's + side whitened and reddened the skin and drifted identity; kept off
   the 128-px rows it ages the face (wrinkles, greying hair) as far as the slider with identity
   drift like the slider's (measured on calibration faces for 2 seeds × {12, 15} rows × {20, 60} steps:
   docs/textpaths.md). 120 steps (stop 34) lowered identity drift and side effects on both sides again
   on the same calibration faces (`bench/textpaths_rows.py --rows 12 --steps 60 120 --seeds 0`).
   Joins the library as a path of 12 rows among paths of 15.
3. Calibrates each shipped path as the bench does, on 30 calibration faces (seed 424242): the amount
   of its own units whose mean change of the target (the project's predictors) equals the shipped
   attribute slider's at −1 and at +1 becomes the path's unit on that side, so ``--set smile=+1``
   changes the predictors' smile about as much as the ``attributes`` slider's smile +1, and ``-1``
   as much as its −1 (the age path needs twice the distance to make a face younger as older).
4. Writes resources/textpaths/<model>/textpaths.sstp.

Not shipped: eyes_closed (tried twice with two wordings: it moves skin and pose far more than the
eyes, docs/textpaths.md), surprise and tan (measured badly), anger, hair length and make-up (no
predictor labels them, so the built-in encoder cannot know them); hair colour, blond / dark (tried at
stop 34 with bench/textpaths_rows.py: the skin follows the hair and identity drifts 5–20 times the slider's).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)

#: the quality bench's pairs, in its order (the order fixes which random draws each path gets)
TRAINED = ("smile", "age", "gender")
#: (file under --work, training settings, the paths kept from it, whether the bench's anchor batch is drawn first)
RUNS = (("trained.sstp", {"method": "contraclip", "steps": 20, "batch": 8, "lr": 1e-3, "seed": 0}, ("smile", "gender"), True),
        ("trained-age.sstp", {"method": "contraclip", "steps": 120, "batch": 8, "lr": 1e-3, "seed": 0, "rows": 12},
         ("age",), False))
SHIPPED = ("smile", "gender", "age")
LIBRARY = "textpaths"
#: calibration faces: the bench's 10 (seed 424242) and the next 20 of that seed (10 alone scatter: the
#: matched amounts moved by up to 35 % when the model's preview heads were refitted)
CALIB_FACES = 30


def calibrate(gen, lib, work: Path) -> dict:
    """Per shipped path: the amounts (− side, + side) of the library's own unit matching the shipped
    slider's ∓1 / ±1 change of the target on the bench's calibration faces (cached under ``work``)."""
    import numpy as np
    import torch

    from bench.textpaths_quality import CALIB_GRID, CALIB_SEED, PAIRS, PSI, Arms, Meter, crossing, nanmean
    from stylestudio.engine.directions.labels import sample_w

    file = work / "calibration.json"
    digest = hashlib.sha256(repr([(p.name, p.unit, p.unit_negative, p.rows) for p in lib.paths]).encode())
    for v in lib.latent.state_dict().values():  # the vectors themselves (the file's bytes carry zip timestamps)
        digest.update(v.numpy().tobytes())
    key = {"vectors": digest.hexdigest(), "seed": CALIB_SEED, "faces": CALIB_FACES,
           "paths": list(SHIPPED)}
    if file.is_file() and json.loads(file.read_text()).get("key") == key:
        print(f"reusing {file}")
        return json.loads(file.read_text())["paths"]
    meter, arms = Meter(gen, 128), Arms(gen, {"contraclip": lib})
    ws = gen.broadcast_w(torch.from_numpy(sample_w(gen, CALIB_FACES, CALIB_SEED, PSI)))
    base = meter(ws, lpips=False)["attrs"]
    out = {}
    for p in SHIPPED:
        t0 = time.time()
        ti = meter.names.index(PAIRS[p][2])
        change = lambda arm, a: nanmean(meter(arms.move(arm, p, ws, a), lpips=False)["attrs"][:, ti] - base[:, ti])  # noqa: E731
        entry = {"slider_change": {}, "amount": {}, "reached": {}}
        for side, sign in (("+", 1.0), ("-", -1.0)):
            goal = change("slider", sign)
            grid = [0.0, *CALIB_GRID]
            amount, ok = crossing(grid, [0.0] + [change("contraclip", sign * a) for a in CALIB_GRID], goal)
            entry["slider_change"][side], entry["amount"][side], entry["reached"][side] = goal, amount, ok
        entry["scale"] = float(np.mean([entry["amount"]["+"], entry["amount"]["-"]]))
        entry["seconds"] = round(time.time() - t0, 1)
        out[p] = entry
        print(f"calibration {p}: slider ∓1 / ±1 changes {PAIRS[p][2]} by {entry['slider_change']['-']:+.2f} / "
              f"{entry['slider_change']['+']:+.2f}; matched amounts −{entry['amount']['-']:.2f} / "
              f"+{entry['amount']['+']:.2f} units (the path's units on each side)", flush=True)
    file.write_text(json.dumps({"key": key, "paths": out}, indent=1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/starter-textpaths"),
                    help="where the trained three-path library and the calibration are kept (and reused)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the bench's arm was trained with 1)")
    ap.add_argument("--train-only", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="default: resources/textpaths/<model>/textpaths.sstp")
    args = ap.parse_args()

    import torch

    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    gen = ModelStore().load(DEFAULT_MODEL, device="cpu")
    from bench.textpaths_quality import train_pairs

    libs = [train_pairs(gen, args.work / name, list(TRAINED), settings, anchor) for name, settings, _keep, anchor in RUNS]
    if args.train_only:
        return 0
    torch.set_grad_enabled(False)
    shipped = libs[0].subset(list(RUNS[0][2]))
    for lib, (_name, _settings, keep, _anchor) in zip(libs[1:], RUNS[1:]):
        shipped.adopt(lib, list(keep))
    cal = calibrate(gen, shipped, args.work)
    # each side its own unit: ±1 changes the attribute as much as the slider's ±1 on both sides
    now = {p.name: p.unit or shipped.unit for p in shipped.paths}
    shipped.set_path_units({p: now[p] * cal[p]["amount"]["+"] for p in SHIPPED},
                           negative={p: now[p] * cal[p]["amount"]["-"] for p in SHIPPED})
    shipped.meta.update(trained_with=list(TRAINED), shipped=list(SHIPPED), calibration_faces=CALIB_FACES,
                        runs=[{"paths": list(keep), **settings, "seconds": lib.meta["seconds"]}
                              for lib, (_n, settings, keep, _a) in zip(libs, RUNS)], load_average=" ".join(
        f"{x:.2f}" for x in os.getloadavg()), calibration={p: {k: cal[p][k] for k in ("slider_change", "amount", "reached")}
                                                           for p in SHIPPED},
        script="scripts/train_starter_textpaths.py")
    out = args.out or REPO / "resources" / "textpaths" / DEFAULT_MODEL / f"{LIBRARY}.sstp"
    shipped.save(out)
    print(f"{', '.join(shipped.names())} → {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
