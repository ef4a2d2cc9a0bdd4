"""Drag previews of the default model in bfloat16 against float32: what is lost, what is gained.

The editor draws its drag previews (256/512 px display frames, never measured, replaced by the
exact frame on release) with a bfloat16 copy of the generator where the CPU computes bfloat16
natively (engine/precision.py). This prints, for ``--faces`` held-out faces (seeds from
``--seed``, ψ 0.7):

* the bfloat16 preview against the float32 one: mean and largest difference in grey levels
  (0–255), PSNR, and LPIPS (VGG); beside it, for scale, the LPIPS of the float32 preview itself
  against the final frame area-downsampled to its size (what the preview already leaves out);
* render times (styles → preview image, median of ``--repeats`` interleaved runs) of both, and
  their ratio to the anchor measured in the same run: one full 1024 render in float32.

The model comes from the user's model store (provisioned on first use).

    python bench/preview_precision.py [--threads 2] [--faces 12] [--png /tmp/precision.png]
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylestudio  # noqa: E402,F401 (first: it chooses passive OpenMP waiting before torch loads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.preview_heads import interleaved  # noqa: E402
from stylestudio.engine.model_store import ModelStore  # noqa: E402
from stylestudio.engine.perceptual import load_lpips  # noqa: E402
from stylestudio.engine.precision import native_bfloat16, reduced_copy  # noqa: E402

STOPS = (128, 256)  # 256- and 512-px previews


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=12)
    ap.add_argument("--seed", type=int, default=91000, help="first held-out seed (torch generator)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--png", type=Path, default=None, help="write float32 | bfloat16 | 8× difference of 2 faces here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    gen = ModelStore().load(device="cpu")
    low = reduced_copy(gen, torch.bfloat16)
    lpips = load_lpips(size=None)
    rng = torch.Generator().manual_seed(args.seed)
    rows: dict[int, dict[str, list[float]]] = {s: {"mean": [], "max": [], "psnr": [], "lpips": [], "head": []}
                                              for s in STOPS}
    shown: list[torch.Tensor] = []
    with torch.no_grad():
        for i in range(args.faces):
            styles = gen.styles(gen.mapping(torch.randn(1, gen.z_dim, generator=rng), 0.7))
            low_styles = {k: v.to(torch.bfloat16) for k, v in styles.items()}
            final = gen.synthesize(styles).image.clamp(-1, 1)
            for stop in STOPS:
                exact = gen.synthesize(styles, stop_resolution=stop, display=True).image.clamp(-1, 1)
                fast = low.synthesize(low_styles, stop_resolution=stop, display=True).image.float().clamp(-1, 1)
                grey = (fast - exact).abs() * 127.5
                mse = float(((fast - exact) * 127.5).pow(2).mean())
                r = rows[stop]
                r["mean"].append(float(grey.mean()))
                r["max"].append(float(grey.max()))
                r["psnr"].append(10 * math.log10(255.0 ** 2 / max(mse, 1e-12)))
                r["lpips"].append(float(lpips(fast, exact).mean()))
                r["head"].append(float(lpips(exact, F.adaptive_avg_pool2d(final, exact.shape[-1])).mean()))
                if stop == 128 and i < 2:
                    shown.append(torch.cat([exact, fast, ((fast - exact) * 8).clamp(-1, 1)], 3))
        styles = gen.styles(gen.mapping(torch.randn(1, gen.z_dim, generator=rng), 0.7))
        low_styles = {k: v.to(torch.bfloat16) for k, v in styles.items()}
        fns = {"full": lambda: gen.synthesize(styles)}
        for stop in STOPS:
            fns[f"f32 {stop}"] = lambda stop=stop: gen.synthesize(styles, stop_resolution=stop, display=True)
            fns[f"bf16 {stop}"] = lambda stop=stop: low.synthesize(low_styles, stop_resolution=stop, display=True)
        med = interleaved(fns, args.repeats)
    anchor = med["full"]
    print(f"drag previews in bfloat16, default model; {args.threads} threads; native bfloat16: "
          f"{native_bfloat16(torch.device('cpu'))}; load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end; "
          f"{args.faces} held-out faces from seed {args.seed}")
    print(f"anchor: full 1024 render in float32 {anchor * 1000:.0f} ms (median of {args.repeats})")
    print(f"{'preview':>8} {'grey mean':>10} {'grey max':>9} {'PSNR dB':>8} {'LPIPS bf16':>11} {'LPIPS f32 vs final':>19} "
          f"{'ms f32':>7} {'ms bf16':>8} {'f32/full':>9} {'bf16/full':>10} {'speed-up':>9}")
    for stop in STOPS:
        r = {k: statistics.mean(v) for k, v in rows[stop].items()}
        a, b = med[f"f32 {stop}"], med[f"bf16 {stop}"]
        print(f"{2 * stop:>6}px {r['mean']:10.2f} {max(rows[stop]['max']):9.0f} {r['psnr']:8.1f} {r['lpips']:11.4f} "
              f"{r['head']:19.3f} {a * 1000:7.0f} {b * 1000:8.0f} {a / anchor:9.3f} {b / anchor:10.3f} {a / b:8.2f}×")
    if args.png:
        from PIL import Image

        grid = torch.cat(shown, 2)[0]
        Image.fromarray(((grid + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()).save(args.png, optimize=True)
        print(f"wrote {args.png}: 256-px previews of 2 faces, float32 | bfloat16 | difference × 8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
