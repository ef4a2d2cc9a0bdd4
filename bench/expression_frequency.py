"""How often does the expression net call a generated face angry, surprised, sad…? (docs/textpaths.md)

    python bench/expression_frequency.py [--faces 400] [--threads 1]

The built-in face-text encoder can only be taught the facts its captions say, and a caption can only
say what a predictor labels often enough. This renders faces of the default model (half at ψ 0.7,
half at ψ 1.0; seeds 91000/91001, never used by the face-text head's data), finds their landmarks and
prints, per emotion of the expression net, the share of faces where it is the top emotion, where
its probability passes 0.15 (the captions' threshold for "surprised") and 0.5, and its median.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from stylestudio.engine.attributes import AttributePredictor
    from stylestudio.engine.attributes.networks import EMOTIONS
    from stylestudio.engine.directions.labels import preview_stop, render_small, sample_w
    from stylestudio.engine.model_store import ModelStore

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    gen = ModelStore().load(device="cpu")
    pred = AttributePredictor()
    stop = preview_stop(gen, 256)
    t0 = time.perf_counter()
    rows = []
    for psi, seed in ((0.7, 91000), (1.0, 91001)):
        w = sample_w(gen, args.faces // 2, seed, psi)
        for i in range(0, len(w), 10):
            img = torch.cat([render_small(gen, torch.from_numpy(w[j:j + 1]), stop)
                             for j in range(i, min(i + 10, len(w)))])
            lm = pred.landmarks(img)
            ok = ~np.isnan(lm).any(axis=(1, 2))
            if ok.any():
                rows.append(pred.emotion(img[ok], torch.from_numpy(lm[ok])).numpy())
    e = np.concatenate(rows)
    print(f"{len(e)} of {args.faces} faces with a face found, {time.perf_counter() - t0:.0f} s")
    top = e.argmax(1)
    print("emotion    top     P>0.15  P>0.5   median")
    for k, name in enumerate(EMOTIONS):
        p = e[:, k]
        print(f"{name:9s} {np.mean(top == k):6.1%}  {np.mean(p > 0.15):6.1%}  {np.mean(p > 0.5):6.1%}  "
              f"{np.median(p):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
