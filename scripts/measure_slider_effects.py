"""Measure what each attribute slider does to the other attributes and store it in the library.

    python scripts/measure_slider_effects.py [--model mobilestylegan-ffhq] [--library PATH] [--faces 12]

The editor shows, under each named slider, what the other attributes do when it moves ("smile
unchanged; mouth open +0.03"). Those per-unit effects are measured once here (and by
``stylestudio directions build``) on the first ``--faces`` of the faces the library was labelled
on (seed 0, ψ 0.8: never the benchmark's evaluation faces), with and without "keep others", and
written into each direction's ``meta["effects"]``. Use it for a library built before effects were
stored; the directions themselves are not touched.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)


def main() -> int:
    import torch

    from stylestudio.cli import progress_printer
    from stylestudio.engine.attributes import AttributePredictor
    from stylestudio.engine.directions.drift import library_effects, render_measure
    from stylestudio.engine.directions.labels import preview_stop, sample_w
    from stylestudio.engine.directions.library import DirectionLibrary
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--library", type=Path, default=None)
    ap.add_argument("--faces", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    t0 = time.time()
    gen = ModelStore().load(args.model, progress=progress_printer)
    path = args.library or REPO / "resources" / "directions" / args.model / "attributes.ssdir"
    lib = DirectionLibrary.load(path)
    seed, psi = int(lib.meta.get("seed", 0)), float(lib.meta.get("psi", 0.8))
    w = sample_w(gen, args.faces, seed, psi)  # the first faces of the labelled set
    measure = render_measure(gen, AttributePredictor(), preview_stop(gen, 256))
    library_effects(measure, w, lib, gen.num_ws, progress=progress_printer)
    lib.save(path)
    for d in lib.directions.values():
        kept = d.meta["effects"]["others"]
        others = sorted(((k, v / lib[k].meta["unit_change"]) for k, v in kept.items() if k != d.name),
                        key=lambda kv: -abs(kv[1]))[:3]
        print(f"{d.name:15s} own {kept.get(d.name, float('nan')) / d.meta['unit_change']:+.2f} units; largest "
              "others (keep others): " + ", ".join(f"{k} {v:+.2f}" for k, v in others))
    print(f"saved {path} in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
