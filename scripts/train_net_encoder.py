"""Train the network photo encoder on as many generated faces as a time budget allows (issue 19c).

    python scripts/train_net_encoder.py [--device cuda] [--faces 30000] [--render-minutes 3.5]
        [--cache DIR] [--out DIR] [--fit-minutes 1.7] [--variants recipe,large-batch]

The run behind the shipped ``resources/encoder/<model>/default.pt`` (see docs/photos.md): the
engine's own ``prepare_faces`` (what ``stylestudio train-encoder`` uses) renders faces in cached
chunks until ``--render-minutes`` are spent, then each named fit below is made on the same faces
and written to ``--out/<variant>.pt`` with its held-out history. The variants were fixed before the
run; the choice between them is made afterwards by ``bench/encoder_heldout.py`` on its own faces
(seed 500 000, never rendered here).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)

#: fits tried on the same faces; ``epochs`` are sized for a GPU's ~2 minutes
VARIANTS = {
    # the CPU recipe (NetTraining's defaults): the ridge's linear path kept as fitted
    "recipe": dict(epochs=15, batch=32, lr=1e-3, linear_lr_share=0.0),
    # with tens of thousands of faces the linear path may be fine-tuned too, in larger batches
    "large-batch": dict(epochs=30, batch=128, lr=2e-3, linear_lr_share=0.1),
    # the same, with a wider residual path and twice the offset directions per row
    "wide": dict(epochs=30, batch=128, lr=2e-3, linear_lr_share=0.1,
                 config=dict(ch3=128, ch4=64, hidden=768, offset_components=64)),
}


def main() -> int:
    import torch

    from stylestudio.engine.device import pick_device
    from stylestudio.engine.inversion.encoder import FeatureEncoder
    from stylestudio.engine.inversion.encoder_training import NetTraining, fit_net_encoder, prepare_faces
    from stylestudio.engine.inversion.net_encoder import NetConfig
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.perceptual import load_lpips
    from stylestudio.engine.resources import Resources

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilestylegan-ffhq")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--faces", type=int, default=30_000)
    ap.add_argument("--render-minutes", type=float, default=3.5)
    ap.add_argument("--fit-minutes", type=float, default=1.7)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("encoder-faces"))
    ap.add_argument("--out", type=Path, default=Path("."))
    args = ap.parse_args()
    device = pick_device(args.device)
    t0 = time.time()

    def say(msg: str, frac: float | None = None) -> None:
        print(f"[{time.time() - t0:6.1f} s] {msg}", flush=True)

    gen = ModelStore().load(args.model, device=device)
    cfg = NetConfig.for_generator(gen)
    ridge = Resources(gen, args.model).get("encoder", "default")
    assert isinstance(ridge, FeatureEncoder) and ridge.spec == cfg.spec
    lpips = load_lpips(device, size=None)
    say(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}), torch {torch.__version__}")
    with torch.no_grad():
        inputs, wplus, groups = prepare_faces(gen, lpips, cfg, args.cache, args.faces, args.seed, progress=say,
                                              render_seconds=60 * args.render_minutes)
    faces = len(set(groups.tolist()))
    say(f"{faces} faces ({len(groups)} images) ready")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"faces": faces, "device": str(device), "prepare_seconds": round(time.time() - t0, 1), "fits": {}}
    for name in args.variants.split(","):
        spec = dict(VARIANTS[name])
        vcfg = replace(cfg, **spec.pop("config", {}))
        settings = NetTraining(**spec, max_seconds=60 * args.fit_minutes, seed=args.seed)
        t1 = time.time()
        enc = fit_net_encoder(gen, args.model, inputs, wplus, groups, vcfg, settings, ridge, progress=say)
        enc.meta["training"].update({"seed": args.seed, "from_ridge": True, "variant": name,
                                     "device": str(device), "seconds": round(time.time() - t1, 1)})
        enc.save(args.out / f"{name}.pt")
        hist = enc.meta["training"]["history"]
        summary["fits"][name] = {"best_held_out_loss": enc.meta["training"]["best_held_out_loss"],
                                 "start": hist[0]["val"], "epochs_run": hist[-1]["epoch"],
                                 "best_epoch": min(hist, key=lambda h: h["val"])["epoch"],
                                 "seconds": round(time.time() - t1, 1)}
        say(f"{name}: {summary['fits'][name]}")
    (args.out / "training_summary.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
