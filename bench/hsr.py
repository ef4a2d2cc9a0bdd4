"""Does HSR make a StyleGAN2 smoother? The paper's protocol at the scale this machine allows.

    python bench/hsr.py [--faces 2000] [--resolution 32] [--warm-kimg 4] [--arm-kimg 4] [--batch 16]
        [--channels 64] [--latent-dim 128] [--ppl-samples 1000] [--fd-samples 1000] [--threads 1]
        [--out bench_hsr.json]
    python bench/hsr.py --reference [--faces 2000] [--resolution 32] [--ppl-samples 1000] [--fd-samples 1000]

The same protocol in stages, so the two arms can run as two processes at once and a long run can be
interrupted and continued (``--resume``) across sessions; the arms' rows are then combined:

    python bench/hsr.py --stage warm --warm-minutes 60 …          # or --warm-kimg N
    python bench/hsr.py --stage base --arm-kimg 8 --out base.json …  # and, at the same time, --stage hsr
    python bench/hsr.py --report base.json hsr.json [base_seed1.json]

A second baseline arm from the same warm start with another seed (``--stage base --arm-seed 1``)
is the noise reference: how far two runs that differ only in their random draws land apart, which
the metrics' bootstrap intervals (sampling noise only) do not show. ``--paired`` then measures the
trained arms' path lengths on the very same samples and gives the PPL change with a paired
bootstrap interval, far tighter than comparing two separate intervals:

    python bench/hsr.py --paired [--ppl-samples 1000]

1. A dataset of ``--faces`` faces rendered by the default model (ψ 0.7, seeds 0…N−1), downsampled
   (area) to ``--resolution`` px.
2. One shared warm-start run without HSR for ``--warm-kimg``.
3. Two arms from its checkpoint at equal kimg (``--arm-kimg`` more each): baseline (no HSR) and
   baseline + HSR (VGG16 features from the LPIPS weights; DINO ships in no registry).
4. For each arm: PPL (W, end, ε 1e-4, LPIPS-VGG16, 1st–99th percentile mean, bootstrap 95 %
   interval), FD-VGG against the dataset (VGG16 relu5_3 means at 64 px; not FID), kimg/s, wall time.

``--reference`` trains nothing: it measures the model that rendered the dataset (the default model)
at the arms' settings, seen as the data shows it (its preview stop, area-downsampled to
``--resolution``): PPL, and FD-VGG at ψ 1 as the arms are sampled, plus FD-VGG at the data's own ψ 0.7,
the distance a generator that had learnt the data perfectly would score with these sample counts.

ALS is not measured here: the attribute predictors find faces with dlib, which needs faces larger
than the 32–64 px a CPU run can train. The paper's goal is PPL −16 % without a worse FD.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)
from stylestudio.engine.training.run import run_folder  # noqa: E402


def render_dataset(path: Path, faces: int, side: int, batch: int = 16, device: str = "cpu") -> None:
    import torch

    from stylestudio.engine.document import seed_to_z
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.render import to_uint8
    from stylestudio.engine.training.dataset import FORMAT
    from stylestudio.safe_io import atomic_write

    seen = SeenAt(ModelStore().load(device=device), side)  # the same view --reference measures the model through
    out = []
    with torch.no_grad():
        for start in range(0, faces, batch):
            z = torch.cat([seed_to_z(s, seen.z_dim) for s in range(start, min(faces, start + batch))])
            img = seen.generate(z.to(seen.device), 0.7)
            out.append(np.stack([to_uint8(img[i:i + 1]) for i in range(img.shape[0])]))
            print(f"rendered {min(faces, start + batch)} of {faces}", file=sys.stderr, flush=True)
    images = np.concatenate(out)
    atomic_write(path, lambda f: np.savez(f, images=images, names=np.asarray([f"seed{i}" for i in range(faces)]),
                                          format=np.asarray(FORMAT)))


class SeenAt:
    """A generator as the bench's dataset shows it: its ``synthesis`` renders at the preview stop and
    area-downsamples to ``side`` px (:func:`render_dataset` makes the data through it); every other
    attribute is the model's own (what PPL and FD-VGG read of a generator)."""

    def __init__(self, gen, side: int) -> None:
        from stylestudio.engine.directions.labels import preview_stop

        self._gen, self._side = gen, side
        self._stop = preview_stop(gen, min_px=side)

    def __getattr__(self, name: str):
        return getattr(self._gen, name)

    def synthesis(self, ws, **_kwargs):
        from stylestudio.engine.directions.labels import render_small

        return render_small(self._gen, ws, self._stop, size=self._side)

    def generate(self, z, psi: float = 1.0, cutoff: int | None = None, **_kwargs):
        return self.synthesis(self._gen.mapping(z, psi, cutoff))


def reference_rows(args, images: np.ndarray) -> dict:
    """The data's own generator at the arms' settings: what the trained arms' figures compare with."""
    from stylestudio.engine.metrics.fd import fd_vgg
    from stylestudio.engine.metrics.ppl import perceptual_path_length
    from stylestudio.engine.model_store import ModelStore

    seen = SeenAt(ModelStore().load(device=args.device), args.resolution)
    rows = {}
    t = time.perf_counter()
    ppl = perceptual_path_length(seen, args.ppl_samples, seed=args.seed, batch=32)
    rows["ppl"] = ppl.to_dict()
    print(f"default model at {args.resolution} px: {ppl.line()} ({time.perf_counter() - t:.0f} s)", flush=True)
    for psi in (1.0, 0.7):
        t = time.perf_counter()
        fd = fd_vgg(seen, images, args.fd_samples, seed=args.seed, psi=psi, size=64, batch=32, resamples=20)
        rows[f"fd_vgg_psi{psi}"] = fd.to_dict()
        print(f"default model at {args.resolution} px, ψ {psi}: {fd.line()} ({time.perf_counter() - t:.0f} s)",
              flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--faces", type=int, default=2000)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--warm-kimg", type=float, default=4)
    p.add_argument("--arm-kimg", type=float, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--latent-dim", type=int, default=128)
    p.add_argument("--hsr-weight", type=float, default=1.0)
    p.add_argument("--ppl-samples", type=int, default=1000)
    p.add_argument("--fd-samples", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--device", default="cpu", help="cpu, cuda, … (training, rendering and the metrics)")
    p.add_argument("--precision", default="fp32", help="fp32, or bf16 / fp16 mixed precision on a GPU")
    p.add_argument("--reference", action="store_true",
                   help="train nothing: measure the default model (which rendered the data) at the arms' settings")
    p.add_argument("--stage", choices=("all", "warm", "base", "hsr"), default="all",
                   help="run one stage only: the warm start, or one arm from its checkpoint")
    p.add_argument("--warm-minutes", type=float, default=None, help="warm start by time instead of --warm-kimg")
    p.add_argument("--resume", action="store_true", help="continue the stage's run from its last checkpoint")
    p.add_argument("--arm-seed", type=int, default=None,
                   help="the arm's own seed (default: the warm start's); another seed of the baseline is the "
                        "noise reference, saved as hsrbench-base-s<SEED>")
    p.add_argument("--report", type=Path, nargs="+", metavar="JSON",
                   help="compare the arms' --out files (baseline, HSR[, baseline of another seed]) and stop")
    p.add_argument("--paired", action="store_true",
                   help="PPL of the trained arms on the same samples: each arm's change from the baseline with a "
                        "paired bootstrap interval")
    args = p.parse_args()
    if args.paired:
        paired_ppl(args)
        return
    if args.report:
        rows = {arm: json.loads(path.read_text())["rows"][arm.split("-")[0]]
                for arm, path in zip(("base", "hsr", "base-reseeded"), args.report)}
        compare(rows)
        return

    import torch

    from stylestudio import paths
    from stylestudio.engine import tasks
    from stylestudio.engine.metrics.fd import fd_vgg
    from stylestudio.engine.metrics.ppl import perceptual_path_length
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.session import Session
    from stylestudio.engine.tasks.train import TrainModel
    from stylestudio.engine.training.dataset import load_dataset

    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    data = paths.cache_dir() / f"hsrbench-{args.faces}-{args.resolution}.npz"
    if not data.is_file():
        render_dataset(data, args.faces, args.resolution, batch=16 if args.device == "cpu" else 256,
                       device=args.device)
    images = load_dataset(data)
    if args.reference:
        rows = reference_rows(args, images)
        print(f"wall time {time.perf_counter() - t_all:.0f} s; load average {os.getloadavg()[0]:.1f}", flush=True)
        if args.out:
            args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "reference": rows},
                                           indent=2))
        return
    say = lambda m, f: None  # noqa: E731
    common = dict(batch=args.batch, latent_dim=args.latent_dim, channel_max=args.channels, mapping_layers=4,
                  seed=args.seed, checkpoint_minutes=10.0, precision=args.precision)
    session = Session(device=args.device)
    if args.stage in ("all", "warm"):
        t = time.perf_counter()
        warm = tasks.run(session, TrainModel("hsrbench-warm", data, args.resolution, hsr="none",
                                             kimg=None if args.warm_minutes else args.warm_kimg,
                                             minutes=args.warm_minutes, fresh=not args.resume, **common), say)
        print(f"warm start: {warm.summary()} ({time.perf_counter() - t:.0f} s)", flush=True)
        print(f"fakes: {run_folder('hsrbench-warm') / 'fakes.png'}", flush=True)
    if args.stage == "warm":
        return
    warm_kimg = warm_start_kimg()
    total = warm_kimg + args.arm_kimg
    rows = {}
    for arm, hsr in (("base", "none"), ("hsr", "vgg16")):
        if args.stage not in ("all", arm):
            continue
        name = f"hsrbench-{arm}" + (f"-s{args.arm_seed}" if args.arm_seed is not None else "")
        arm_common = {**common, "seed": args.seed if args.arm_seed is None else args.arm_seed}
        out = tasks.run(session, TrainModel(name, None, hsr=hsr, hsr_weight=args.hsr_weight, kimg=total,
                                            fresh=not args.resume, warm_start="hsrbench-warm", **arm_common), say)
        gen = ModelStore().load(name, device=args.device)
        t = time.perf_counter()
        ppl = perceptual_path_length(gen, args.ppl_samples, seed=args.seed, batch=32)
        fd = fd_vgg(gen, images, args.fd_samples, seed=args.seed, size=64, batch=32, resamples=20)
        rows[arm] = {"kimg": out.kimg, "warm_kimg": warm_kimg, "seed": arm_common["seed"], "kimg_per_s": out.kimg_per_s, "seconds": out.seconds,
                     "resumed_at_step": out.resumed_at_step, "metrics_seconds": time.perf_counter() - t,
                     "ppl": ppl.to_dict(), "fd_vgg": fd.to_dict(), "losses": out.last_losses,
                     "load_average": os.getloadavg()[0]}
        print(f"{arm:5s}: {out.kimg:.3g} kimg ({warm_kimg:.3g} warm + {out.kimg - warm_kimg:.3g}) at "
              f"{out.kimg_per_s:.4f} kimg/s ({out.seconds:.0f} s); {ppl.line()}; {fd.line()}; "
              f"fakes: {run_folder(name) / 'fakes.png'}", flush=True)
    if len(rows) == 2:
        compare(rows)
    print(f"wall time {time.perf_counter() - t_all:.0f} s; load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))


def paired_ppl(args) -> None:
    """Every trained arm's path lengths on the same samples (seed, index), and each arm's PPL change
    from the baseline with a paired bootstrap: the arms share their warm start, so a sample's path
    length moves together across them and most of the sampling noise cancels."""
    import torch

    from stylestudio.engine.metrics.ppl import filtered_mean, lpips_distance, path_lengths
    from stylestudio.engine.metrics.stats import bootstrap_interval
    from stylestudio.engine.model_store import ModelStore

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    store = ModelStore()
    reseeded = sorted(n for n in store.names() if n.startswith("hsrbench-base-s"))  # --arm-seed baselines
    arms = [n for n in ("hsrbench-base", "hsrbench-hsr", *reseeded) if store.has(n)]
    if "hsrbench-base" not in arms or len(arms) < 2:
        raise SystemExit(f"--paired needs the baseline and another arm trained (have: {', '.join(arms) or 'none'})")
    lengths, distance = {}, lpips_distance(args.device)
    for name in arms:
        t = time.perf_counter()
        gen = store.load(name, device=args.device)
        lengths[name] = np.concatenate([path_lengths(gen, list(range(i, min(args.ppl_samples, i + 32))), seed=args.seed,
                                                     distance=distance) for i in range(0, args.ppl_samples, 32)])
        print(f"{name}: PPL {filtered_mean(lengths[name]):.4g} over {args.ppl_samples} samples, seed {args.seed} "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
    base = lengths["hsrbench-base"]

    def change(pairs: np.ndarray) -> float:  # rows: (baseline, arm) path lengths of one sample
        return (filtered_mean(pairs[:, 1]) - filtered_mean(pairs[:, 0])) / filtered_mean(pairs[:, 0]) * 100

    for name in arms[1:]:
        pairs = np.stack([base, lengths[name]], axis=1)  # resampled by rows: paired
        low, high = bootstrap_interval(pairs, change, args.seed)
        r = np.corrcoef(np.log(pairs.T))[0, 1]
        print(f"{name} vs hsrbench-base, same {len(base)} samples: PPL {change(pairs):+.2f} % (paired 95 % interval "
              f"{low:+.2f} … {high:+.2f} %; per-sample log-length correlation {r:.3f})", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)


def warm_start_kimg() -> float:
    """How far the shared warm start got (kimg), read from its checkpoint: the arms add equal kimg to it."""
    import torch

    ckpt = run_folder("hsrbench-warm") / "checkpoint.pt"
    if not ckpt.is_file():
        raise SystemExit(f"{ckpt}: no warm start yet (run --stage warm first)")
    return float(torch.load(ckpt, map_location="cpu", weights_only=True)["images_seen"]) / 1000


def compare(rows: dict) -> None:
    """The goal's line: HSR's PPL change against the baseline at equal kimg, and FD-VGG beside it."""
    b, h = rows["base"], rows["hsr"]
    if abs(b["kimg"] - h["kimg"]) > 0.05 * max(b["kimg"], 1e-9):
        print(f"warning: the arms are not at equal kimg ({b['kimg']:.3g} and {h['kimg']:.3g})", flush=True)
    change = (h["ppl"]["value"] - b["ppl"]["value"]) / b["ppl"]["value"] * 100
    print(f"HSR vs baseline at equal kimg ({b['kimg']:.3g} and {h['kimg']:.3g}): PPL {b['ppl']['value']:.4g} → "
          f"{h['ppl']['value']:.4g}, {change:+.1f} % (goal ≤ −16 %), FD-VGG {b['fd_vgg']['value']:.4g} → "
          f"{h['fd_vgg']['value']:.4g}; kimg/s {b['kimg_per_s']:.4f} and {h['kimg_per_s']:.4f}", flush=True)
    r = rows.get("base-reseeded")
    if r is not None:  # training noise: the same baseline continued with other random draws
        noise = (r["ppl"]["value"] - b["ppl"]["value"]) / b["ppl"]["value"] * 100
        print(f"noise reference, baseline with seed {r.get('seed')} instead of {b.get('seed', 0)} ({r['kimg']:.3g} kimg): "
              f"PPL {r['ppl']['value']:.4g} ({noise:+.1f} % from the baseline), FD-VGG {r['fd_vgg']['value']:.4g}",
              flush=True)


if __name__ == "__main__":
    main()
