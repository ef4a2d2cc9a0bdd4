"""Drag previews of the default model: the 1×1 preview heads of before issue #15 (16 faces at
ψ 1) against the heads it ships now (``provision.PREVIEW_KERNELS``, k×k from the 128-px preview
up, 32 faces at ψ 0.5–1), and 1×1 heads fitted exactly as the new ones (what the kernel alone
brings).

For each preview stop (``stop_resolution`` 64 / 128 / 256 → 128 / 256 / 512 px) it prints, on
``--faces`` held-out faces (seeds from ``--seed``, ψ 0.7, never used by the fit):

* LPIPS (VGG) of the preview against the final 1024 frame area-downsampled to the preview's
  size, mean over the faces, for the three sets of heads;
* the preview render time (W styles → preview image, median of ``--repeats`` interleaved runs),
  absolute and as a ratio to the anchor measured in the same run: the full 1024 render;
* the provisioning cost of the fit (renders included): seconds before and now.

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
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from stylestudio.engine.mobilestylegan import provision  # noqa: E402
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
    old = provision.with_preview_kernels(gen, None)  # 1×1 heads, as stored before issue #15
    same = provision.with_preview_kernels(gen, None)  # 1×1 heads fitted as the k×k ones are
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    provision.fit_preview_heads(old, samples=16, psi=(1.0, 1.0), pixels_wide=8192)  # the recipe before
    fit_old = time.perf_counter() - t
    provision.fit_preview_heads(same)
    t = time.perf_counter()
    provision.fit_preview_heads(gen)
    fit_new = time.perf_counter() - t
    kernels = "/".join(f"{k}" for k in gen.preview_kernels)

    lpips = load_lpips(size=None)
    rng = torch.Generator().manual_seed(args.seed)
    scores: dict[tuple[str, int], list[float]] = {}
    shown: dict[str, list[torch.Tensor]] = {"before": [], "new": [], "final": []}
    with torch.no_grad():
        for i in range(args.faces):
            styles = gen.styles(gen.mapping(torch.randn(1, gen.z_dim, generator=rng), 0.7))
            final = gen.synthesize(styles).image
            for stop in STOPS:
                ref = F.adaptive_avg_pool2d(final, 2 * stop)
                for key, model in (("before", old), ("1x1", same), ("new", gen)):
                    img = model.synthesize(styles, stop_resolution=stop).image
                    scores.setdefault((key, stop), []).append(float(lpips(img.clamp(-1, 1), ref.clamp(-1, 1)).mean()))
                    if stop == 128 and i < 4 and key in shown:
                        shown[key].append(img)
                if stop == 128 and i < 4:
                    shown["final"].append(ref)
        styles = gen.styles(gen.mapping(torch.randn(1, gen.z_dim, generator=rng), 0.7))
        fns: dict[str, Callable[[], Any]] = {"full": lambda: gen.synthesize(styles)}
        for stop in STOPS:
            fns[f"before {stop}"] = lambda stop=stop: old.synthesize(styles, stop_resolution=stop)
            fns[f"new {stop}"] = lambda stop=stop: gen.synthesize(styles, stop_resolution=stop)
        times = interleaved(fns, args.repeats)

    anchor = times["full"]
    print(f"preview heads, default model; {args.threads} threads; load average {load0:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end; {args.faces} held-out faces from seed {args.seed}; "
          f"median of {args.repeats} runs")
    print(f"heads now: kernels {kernels} (b4 … b256), off-centre taps on {provision.PREVIEW_COMPONENTS} "
          f"principal components, {provision.PREVIEW_SAMPLES} faces")
    print("before = 1x1 heads, 16 faces at psi 1 (the recipe before issue #15); 1x1 same fit = 1x1 heads "
          "fitted exactly as the heads now")
    print(f"fit at provisioning (renders included): before {fit_old:.1f} s, now {fit_new:.1f} s "
          f"(+{fit_new - fit_old:.1f} s)")
    print(f"anchor: full 1024 render {anchor * 1000:.0f} ms")
    print(f"{'preview':>8} {'LPIPS before':>13} {'1x1 same fit':>13} {'LPIPS now':>10} {'ms before':>10} "
          f"{'ms now':>8} {'before/full':>12} {'now/full':>9}")
    for stop in STOPS:
        a, m, b = (statistics.mean(scores[(k, stop)]) for k in ("before", "1x1", "new"))
        ta, tb = times[f"before {stop}"], times[f"new {stop}"]
        print(f"{2 * stop:>6}px {a:13.3f} {m:13.3f} {b:10.3f} {ta * 1000:10.0f} {tb * 1000:8.0f} "
              f"{ta / anchor:12.3f} {tb / anchor:9.3f}")
    if args.png:
        from PIL import Image

        # the centre 128 px of each 256-px preview (eyes to mouth) at 1:1, where skin is judged
        rows = [torch.cat([t[:, :, 72:200, 64:192] for t in shown[k][:3]], 3)[0] for k in ("before", "new", "final")]
        grid = ((torch.cat(rows, 1).clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(grid).save(args.png, optimize=True)
        print(f"wrote {args.png}: rows = heads before, heads now, final frame area-downsampled; the centre "
              f"128 px of the 256-px preview of 3 faces")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
