"""Text paths (ContraCLIP): what a training step and a path edit cost, against a plain render.

    python bench/textpaths.py [--model NAME] [--encoder NAME | --random-vitb32] [--batch 8] [--steps 3]
        [--threads 2]

Prints absolute seconds and ratios against an anchor measured in the same run (one render of the
same batch at the training resolution, no gradients). ``--random-vitb32`` builds a ViT-B/32 with
random weights from ``../shared/oracle/clip_tiny/vit-b-32-state-dict-shapes.json``: right for
timing (the cost does not depend on the weights), meaningless for anything else.

The issue's quality table (monotonicity, identity drift, other attributes and the LPIPS step
ratio of ContraCLIP against the linear and StyleCLIP-like arms and the shipped sliders, at matched
target change) is measured by ``bench/textpaths_quality.py`` with the built-in encoder.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)

SHAPES = REPO.parent / "shared" / "oracle" / "clip_tiny" / "vit-b-32-state-dict-shapes.json"


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--encoder", default=None)
    ap.add_argument("--random-vitb32", action="store_true")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch

    from stylestudio.engine.document import SeedSource
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
    from stylestudio.engine.text.clip_model import CLIP, infer_config
    from stylestudio.engine.text.encoders import ClipEncoder, load_encoder
    from stylestudio.engine.text.training import PathTrainer, TrainSettings

    torch.set_num_threads(args.threads)
    gen = ModelStore().load(args.model or DEFAULT_MODEL, device=args.device)
    if args.random_vitb32 or args.encoder is None:
        shapes = json.loads(SHAPES.read_text())
        torch.manual_seed(0)
        model = CLIP(infer_config({k: torch.empty(v, device="meta") for k, v in shapes.items()}))
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.02)
        encoder = ClipEncoder(model.eval().requires_grad_(False), "random-vitb32").to(args.device)
    else:
        encoder = load_encoder(args.encoder, args.device)
    pairs = [("smile", "a smiling face", "a face with a neutral expression"),
             ("age", "an old person", "a young person"), ("gender", "a woman", "a man")]
    results = {}
    for method in ("contraclip", "linear"):
        trainer = PathTrainer(gen, encoder, pairs, TrainSettings(method=method, steps=args.steps, batch=args.batch))
        trainer.step()  # warm-up
        results[method] = best_of(trainer.step, args.steps)
    ws = trainer.latents(args.batch)
    with torch.no_grad():
        anchor = best_of(lambda: trainer.render(ws), 3)
    contra = PathTrainer(gen, encoder, pairs, TrainSettings(steps=1, batch=2)).run(lambda m, f: None, None)
    linear = PathTrainer(gen, encoder, pairs, TrainSettings(method="linear", steps=1, batch=2)).run(
        lambda m, f: None, None)
    w1 = SeedSource(seed=7).latent(gen)
    with torch.no_grad():
        full = best_of(lambda: gen.synthesis(w1), 3)
        move_c = best_of(lambda: contra.move("smile", w1, 2.0, gen.w_avg), 5)
        move_l = best_of(lambda: linear.move("smile", w1, 2.0, gen.w_avg), 5)
    size = gen.preview_size(trainer.stop) if trainer.stop else gen.resolution
    print(f"model {args.model or DEFAULT_MODEL} ({gen.resolution} px), encoder {encoder.name} "
          f"({encoder.image_resolution} px), training renders at {size} px, batch {args.batch}, "
          f"{args.threads} threads, {args.device}")
    print(f"anchor: one no-grad render of the batch at {size} px      {anchor:8.3f} s")
    for method, t in results.items():
        print(f"training step ({method:10s}, {len(pairs)} pairs)          {t:8.3f} s   {t / anchor:6.1f}× anchor   "
              f"{60 / t:6.1f} steps/min")
    print(f"anchor: one full {gen.resolution}-px render                       {full:8.3f} s")
    print(f"path edit +2 (contraclip: 8 path-following steps)   {move_c * 1000:8.2f} ms  {move_c / full:.2e}× anchor")
    print(f"path edit +2 (linear)                               {move_l * 1000:8.2f} ms  {move_l / full:.2e}× anchor")


if __name__ == "__main__":
    main()
