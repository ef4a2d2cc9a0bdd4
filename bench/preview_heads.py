"""Drag previews of the default model: the 1×1 analysis heads against the k×k display heads.

The editor's drag previews (and thumbnails) are drawn with the display heads (issue #15); every
measurement on coarse renders keeps the 1×1 heads. For each preview stop (``stop_resolution``
64 / 128 / 256 → 128 / 256 / 512 px) this prints, on ``--faces`` held-out faces (seeds from
``--seed``, ψ 0.7, never used by either fit):

* LPIPS (VGG) of the preview against the final 1024 frame area-downsampled to the preview's
  size, mean over the faces, for both heads;
* the preview render time (styles → preview image, median of ``--repeats`` interleaved runs),
  absolute and as a ratio to the anchor measured in the same run: the full 1024 render;
* the provisioning cost of each fit (its renders included).

Nothing is read from or written to the model store: the model is converted from the wheel.

    STYLESTUDIO_WHEELHOUSE=/work/wheels python bench/preview_heads.py [--png docs/preview_heads.png]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylestudio  # noqa: E402,F401 (first: it chooses passive OpenMP waiting before torch loads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from stylestudio.engine.mobilestylegan import display_heads, provision  # noqa: E402
from stylestudio.engine.perceptual import load_lpips  # noqa: E402

STOPS = (64, 128, 256)


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, run in turn so that all see the same background load."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=12)
    ap.add_argument("--seed", type=int, default=90000, help="first held-out seed")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--png", type=Path, default=None, help="write a side-by-side of 3 faces (256-px previews) here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    gen = provision.build(provision.read_members(provision.locate_wheel()))
    gen.w_avg.copy_(provision.compute_w_avg(gen))
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    provision.fit_preview_heads(gen)
    fit_analysis = time.perf_counter() - t
    t = time.perf_counter()
    errors = display_heads.fit_display_heads(gen)
    fit_display = time.perf_counter() - t

    lpips = load_lpips(size=None)
    rng = torch.Generator().manual_seed(args.seed)
    scores: dict[tuple[str, int], list[float]] = {}
    shown: dict[str, list[torch.Tensor]] = {"analysis": [], "display": [], "final": []}
    with torch.no_grad():
        for i in range(args.faces):
            styles = gen.styles(gen.mapping(torch.randn(1, gen.z_dim, generator=rng), 0.7))
            final = gen.synthesize(styles).image
            for stop in STOPS:
                ref = F.adaptive_avg_pool2d(final, 2 * stop)
                for key in ("analysis", "display"):
                    img = gen.synthesize(styles, stop_resolution=stop, display=key == "display").image
                    scores.setdefault((key, stop), []).append(float(lpips(img.clamp(-1, 1), ref.clamp(-1, 1)).mean()))
                    if stop == 128 and i < 4:
                        shown[key].append(img)
                if stop == 128 and i < 4:
                    shown["final"].append(ref)
        styles = gen.styles(gen.mapping(torch.randn(1, gen.z_dim, generator=rng), 0.7))
        fns: dict[str, Callable[[], Any]] = {"full": lambda: gen.synthesize(styles)}
        for stop in STOPS:
            fns[f"analysis {stop}"] = lambda stop=stop: gen.synthesize(styles, stop_resolution=stop)
            fns[f"display {stop}"] = lambda stop=stop: gen.synthesize(styles, stop_resolution=stop, display=True)
        times = interleaved(fns, args.repeats)

    anchor = times["full"]
    print(f"preview heads, default model; {args.threads} threads; load average {load0:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end; {args.faces} held-out faces from seed {args.seed}; "
          f"median of {args.repeats} runs")
    print(f"display heads: kernels {'/'.join(map(str, gen.display_kernels))} (b4 … b256, 0 = none), off-centre "
          f"taps on {display_heads.DISPLAY_COMPONENTS} principal components, {display_heads.DISPLAY_SAMPLES} "
          f"faces at psi {display_heads.DISPLAY_PSI[0]}-{display_heads.DISPLAY_PSI[1]}; RMS error "
          + ", ".join(f"{k} {v:.3f}" for k, v in errors.items()))
    print(f"fit at provisioning (renders included): 1x1 analysis heads {fit_analysis:.1f} s, "
          f"display heads {fit_display:.1f} s")
    print(f"anchor: full 1024 render {anchor * 1000:.0f} ms")
    print(f"{'preview':>8} {'LPIPS 1x1':>10} {'LPIPS display':>14} {'ms 1x1':>8} {'ms display':>11} "
          f"{'1x1/full':>9} {'display/full':>13}")
    for stop in STOPS:
        a, b = (statistics.mean(scores[(k, stop)]) for k in ("analysis", "display"))
        ta, tb = times[f"analysis {stop}"], times[f"display {stop}"]
        print(f"{2 * stop:>6}px {a:10.3f} {b:14.3f} {ta * 1000:8.0f} {tb * 1000:11.0f} "
              f"{ta / anchor:9.3f} {tb / anchor:13.3f}")
    if args.png:
        from PIL import Image

        # the centre 128 px of each 256-px preview (eyes to mouth) at 1:1, where skin is judged
        rows = [torch.cat([t[:, :, 72:200, 64:192] for t in shown[k][:3]], 3)[0]
                for k in ("analysis", "display", "final")]
        grid = ((torch.cat(rows, 1).clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(grid).save(args.png, optimize=True)
        print(f"wrote {args.png}: rows = 1x1 analysis heads, display heads, final frame area-downsampled; the "
              f"centre 128 px of the 256-px preview of 3 faces")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
