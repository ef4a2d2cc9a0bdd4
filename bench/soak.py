"""Soak: many edits rendered in one process, resident memory sampled — does it stay flat?

A long editing session must not grow: every slider move makes a new immutable document, the
renderer keeps bounded caches (source latents, reference styles, the last frame), and torch's
allocator should reuse its blocks. This renders ``--edits`` documents (default 1 000) of the
default model, each a new slider value (the attribute sliders, with "keep others" on or off), every
fifth with a regional transfer from a changing reference face, and a new seed every 50 edits, like
a user trying faces. Resident memory (``VmRSS``) is sampled every ``--every`` edits.

It prints the RSS after warm-up (the first ``--warmup`` edits), at the end, the growth between
them, and the slope per 100 edits after warm-up (least squares over the samples); plus the time
per edit as a ratio to an anchor measured in the same run (one plain ``synthesis`` at the same
size).

    STYLESTUDIO_WHEELHOUSE=/tmp/wheels python bench/soak.py [--edits 1000] [--size 256] [--threads 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def slope_per_100(xs: list[int], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return 100.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=1000)
    ap.add_argument("--size", type=int, default=256, help="render resolution (the preview path)")
    ap.add_argument("--every", type=int, default=50, help="sample RSS every N edits")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from stylestudio.engine.document import EditDocument, SeedSource
    from stylestudio.engine.edits.direction import DirectionEdit
    from stylestudio.engine.edits.transfer import TransferEdit
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
    from stylestudio.engine.render import Renderer

    torch.set_num_threads(args.threads)
    gen = ModelStore().load(DEFAULT_MODEL)
    renderer = Renderer(gen, DEFAULT_MODEL)
    names = list(renderer.resources.get("directions", "attributes").names())
    regions = ["mouth", "eyes", "hair", "nose", "skin"]

    with torch.no_grad():
        styles = gen.styles(gen.mapping(torch.randn(1, gen.z_dim, generator=torch.Generator().manual_seed(0)), 0.7))
        gen.synthesize(styles, stop_resolution=args.size)  # warm-up
        t = time.perf_counter()
        for _ in range(5):
            gen.synthesize(styles, stop_resolution=args.size)
        anchor = (time.perf_counter() - t) / 5

    samples: list[tuple[int, float]] = [(0, rss_mb())]
    t0 = time.perf_counter()
    doc = EditDocument(model=DEFAULT_MODEL, source=SeedSource(seed=0, psi=0.7), title="soak")
    for i in range(1, args.edits + 1):
        if i % 50 == 0:
            doc = EditDocument(model=DEFAULT_MODEL, source=SeedSource(seed=i // 50, psi=0.7), title="soak")
        name = names[i % len(names)]
        amount = round(((i * 37) % 61) / 10.0 - 3.0, 1)
        keep = () if i % 3 else ("age", "gender")
        doc = doc.with_edit(DirectionEdit(library="attributes", name=name, amount=amount, keep=keep))
        if i % 5 == 0:
            doc = doc.with_edit(TransferEdit(reference=SeedSource(seed=1000 + i % 40, psi=0.7),
                                             region=(regions[i % len(regions)],), strength=1.0))
        if len(doc.edits) > 12:  # a user's document keeps a handful of edits, not a thousand
            doc = doc.without_edit(doc.edits[0].id)
        with torch.no_grad():
            img = renderer.render(doc, stop_resolution=args.size)
        assert torch.isfinite(img).all()
        if i % args.every == 0:
            samples.append((i, rss_mb()))
    elapsed = time.perf_counter() - t0

    after = [(i, r) for i, r in samples if i >= args.warmup]
    warm = after[0][1]
    end = samples[-1][1]
    slope = slope_per_100([i for i, _ in after], [r for _, r in after])
    per_edit = elapsed / args.edits
    print("edits  rss_mb")
    for i, r in samples:
        print(f"{i:5d}  {r:7.1f}")
    print(f"soak: {args.edits} edits at {args.size} px, {args.threads} threads")
    print(f"rss after warm-up ({args.warmup} edits) {warm:.1f} MB, at end {end:.1f} MB, "
          f"growth {end - warm:+.1f} MB ({100 * (end - warm) / warm:+.1f} %), slope {slope:+.2f} MB per 100 edits")
    print(f"per edit {per_edit * 1000:.0f} ms = {per_edit / anchor:.2f} x anchor "
          f"(anchor: one plain synthesis at {args.size} px, {anchor * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
