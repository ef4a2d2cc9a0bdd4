"""Does a text path trained with the built-in encoder move what its sentences say? (docs/textpaths.md)

    stylestudio textpaths train --encoder minilm --pair "a smiling face|a face with a neutral expression" \
        --steps 40 --batch 4 --name t
    python bench/face_text_slider.py --library t [--path smiling] [--faces 24] [--attribute smile]

Moves held-out faces of the default model (seed 7009: a held-out chunk of
scripts/train_face_text_head.py) along the path by −2…+2 slider units, renders 256-px previews
and measures every attribute with the project's predictors (which the path never saw: it was
trained against the encoder only). Prints the mean target attribute per amount, the share of faces
whose target rises from −2 to +2, the mean per-face Spearman correlation, and the drift of the
other attributes; saves a faces × amounts figure.
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

AMOUNTS = (-2.0, -1.0, 0.0, 1.0, 2.0)


def main() -> int:
    import torch
    from PIL import Image
    from scipy.stats import spearmanr

    from stylestudio.engine.attributes import AttributePredictor
    from stylestudio.engine.attributes.predictor import to_uint8
    from stylestudio.engine.directions.labels import preview_stop, render_small, sample_w
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
    from stylestudio.engine.text.library import TextPathLibrary, find_library

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--library", required=True)
    ap.add_argument("--path", default=None, help="the path (default: the library's first)")
    ap.add_argument("--attribute", default="smile")
    ap.add_argument("--faces", type=int, default=24)
    ap.add_argument("--figure", type=Path, default=REPO / "docs" / "face_text_smile.png")
    ap.add_argument("--figure-faces", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    t0 = time.time()
    gen = ModelStore().load(DEFAULT_MODEL, device="cpu")
    file = find_library(DEFAULT_MODEL, args.library)
    if file is None:
        raise SystemExit(f"no text path library {args.library!r} for {DEFAULT_MODEL}")
    lib = TextPathLibrary.load(file)
    name = args.path or lib.names()[0]
    p = lib.paths[lib.index(name)]
    print(f"library {args.library}: path {name!r} (+ {p.positive!r} / − {p.negative!r}), encoder {lib.encoder}, "
          f"{lib.meta.get('steps')} steps, method {lib.meta.get('method')}")
    pred = AttributePredictor()
    stop = preview_stop(gen, 256)
    w = torch.from_numpy(sample_w(gen, args.faces, 7009, 0.7))
    ws = gen.broadcast_w(w)
    values = {a: [] for a in pred.names}
    thumbs = []
    for amount in AMOUNTS:
        moved = lib.move(name, ws, amount, gen.w_avg) if amount else ws
        img = torch.cat([render_small(gen, moved[i:i + 1], stop) for i in range(args.faces)])
        m = pred.measure(img)
        for a in pred.names:
            values[a].append(m[a])
        thumbs.append(to_uint8(img[: args.figure_faces]))
    v = {a: np.stack(values[a], 1) for a in values}  # [faces, amounts]
    target = v[args.attribute]
    ok = np.isfinite(target).all(1)
    print(f"{int(ok.sum())} of {args.faces} held-out faces measured at every amount")
    print(f"{'amount':>8s} " + " ".join(f"{a:+7.1f}" for a in AMOUNTS))
    for a in pred.names:
        row = np.nanmean(v[a][ok], 0)
        print(f"{a:>14s} " + " ".join(f"{x:7.2f}" for x in row) + ("   ← target" if a == args.attribute else ""))
    rises = float((target[ok, -1] > target[ok, 0]).mean())
    rho = np.nanmean([spearmanr(AMOUNTS, target[i]).statistic for i in np.flatnonzero(ok)
                      if np.ptp(target[i]) > 0])
    print(f"\n{args.attribute}: rises from −2 to +2 on {100 * rises:.0f}% of faces; mean per-face Spearman "
          f"{rho:+.2f}; mean change −2→+2 {np.nanmean(target[ok, -1] - target[ok, 0]):+.2f} "
          f"(sd over faces of the attribute at 0: {np.nanstd(target[ok, 2]):.2f})")
    grid = np.concatenate([np.concatenate(list(t), 0) for t in thumbs], 1)  # rows: faces, cols: amounts
    small = Image.fromarray(grid).resize((grid.shape[1] // 2, grid.shape[0] // 2), Image.LANCZOS)
    small.quantize(256).save(args.figure, optimize=True)  # a palette keeps the figure small in the repository
    print(f"figure: {args.figure} (rows: faces, columns: amounts {', '.join(f'{a:+g}' for a in AMOUNTS)}); "
          f"{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
