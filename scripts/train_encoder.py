"""Train the photo-inversion encoder shipped in resources/encoder/<model>/ (issue 6).

    python scripts/train_encoder.py [--model mobilestylegan-ffhq] [--faces 2000] [--val 200]
        [--cache faces.npz] [-o resources/encoder/mobilestylegan-ffhq/default.json]

Generated faces of the model (W from ``sample_w``, each truncated with its own ψ drawn uniformly
from ``--psi``, so faces far from the average are covered) are rendered at full resolution and
downsampled to 256 px as uint8 — what an aligned photo looks like to the encoder (the generator's
cheap 256-px preview has other colours and detail: LPIPS ~0.35 against the downsampled render, so
it is not used). Each face also gets a degraded copy (as if the photo held only 32–256 px of the
crop), so faces found small in a photo are read right. Frozen LPIPS-VGG features are pooled into
one vector per image and a ridge regression maps them onto the top PCA components of W (see
stylestudio/engine/inversion/encoder.py and encoder_training.py).

The last ``--val`` faces are held out: the latent error (RMS in units of the mapping's
per-dimension std of w) and the LPIPS (256 px) of the predicted face against the target, next to
the average face and the inversion's former first guess (the best of 16 random faces scored on
coarse previews, as ``invert._stages`` picks it); and the encoder on the degraded copies. Times
are process CPU seconds (the machine may be shared): one thread, ~0.31 s a face to render,
~0.08 s an image for features, a few minutes for the fit; about 25 minutes in all for 2200 faces.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)


def render_faces(gen, n: int, seed: int, psi: tuple[float, float], size: int = 256,
                 batch: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(w [n, w_dim], ψ [n], images [n, size, size, 3] uint8): full renders, downsampled like a photo."""
    import torch

    from stylestudio.engine.directions.labels import sample_w

    w1 = torch.from_numpy(sample_w(gen, n, seed, 1.0))
    psis = np.random.RandomState(seed + 1).uniform(psi[0], psi[1], n).astype(np.float32)
    w = gen.w_avg.cpu()[None].lerp(w1, torch.from_numpy(psis)[:, None]).numpy().astype(np.float32)
    images = np.empty((n, size, size, 3), np.uint8)
    t0 = time.process_time()
    for i in range(0, n, batch):
        images[i:i + batch] = to_uint8_batch(full_renders(gen, w[i:i + batch], size, batch))
        if (i // batch) % 50 == 0 or i + batch >= n:
            done = min(n, i + batch)
            print(f"rendered {done}/{n} ({(time.process_time() - t0) / done:.2f} s/face)", flush=True)
    return w, psis, images


def load_or_render(gen, n: int, seed: int, psi: tuple[float, float], cache: Path | None):
    """Rendering dominates the run; ``--cache`` keeps the faces for refits with other settings."""
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as f:
            if len(f["w"]) >= n and int(f["seed"]) == seed and tuple(f["psi_range"]) == tuple(np.float32(psi)):
                print(f"faces from {cache}", flush=True)
                seconds = float(f["render_seconds"]) * n / len(f["w"]) if "render_seconds" in f.files else None
                return f["w"][:n], f["psi"][:n], f["images"][:n], seconds
    t0 = time.process_time()
    w, psis, images = render_faces(gen, n, seed, psi)
    seconds = time.process_time() - t0
    if cache is not None:
        np.savez(cache, w=w, psi=psis, images=images, seed=np.int64(seed), psi_range=np.float32(psi),
                 render_seconds=np.float64(seconds))
    return w, psis, images, seconds


def to_uint8_batch(images) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] → [N, H, W, 3] uint8."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def as_tensor(images: np.ndarray):
    """[N, H, W, 3] uint8 → [N, 3, H, W] in [-1, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def full_renders(gen, w: np.ndarray, size: int = 256, batch: int = 4):
    """W [N, w_dim] → full-resolution renders downsampled to ``size`` ([N, 3, size, size] in [-1, 1])."""
    import torch

    from stylestudio.engine.inversion.encoder import downsample

    out = []
    with torch.no_grad():
        for i in range(0, len(w), batch):
            wb = torch.from_numpy(np.array(w[i:i + batch], np.float32)).to(gen.device)
            out.append(downsample(gen.synthesize(gen.styles(gen.broadcast_w(wb))).image, size).cpu())
    return torch.cat(out)


def extract_features(lpips, images: np.ndarray, spec, what: str = "features", batch: int = 16) -> np.ndarray:
    """uint8 faces [N, H, W, 3] → pooled features [N, D]."""
    from stylestudio.engine.inversion.encoder import pooled_features

    out = []
    t0 = time.process_time()
    for i in range(0, len(images), batch):
        out.append(pooled_features(lpips, as_tensor(images[i:i + batch]), spec).numpy())
        done = min(len(images), i + batch)
        if (i // batch) % 40 == 0 or done == len(images):
            print(f"{what} {done}/{len(images)} ({(time.process_time() - t0) / done:.3f} s/face)", flush=True)
    return np.concatenate(out)


def lpips_rows(lpips, a, b, batch: int = 8) -> np.ndarray:
    """LPIPS of ``a[i]`` against ``b[i]`` ([N, 3, 256, 256] each), in batches (VGG maps of 200 faces
    at 256 px would take ~6 GB)."""
    import torch

    with torch.no_grad():
        return np.concatenate([lpips(a[i:i + batch], b[i:i + batch]).numpy() for i in range(0, len(a), batch)])


def lpips_between(lpips, fa: list, fb: list):
    """LPIPS from features (rows of ``fa`` against rows of ``fb``; broadcasts)."""
    return sum(((a - b).pow(2) * lpips.head(j).view(1, -1, 1, 1)).sum(1).mean((1, 2))
               for j, (a, b) in enumerate(zip(fa, fb)))


def best_of_candidates(gen, lpips, targets, settings) -> tuple[np.ndarray, np.ndarray]:
    """The inversion's former first guess for each target: of the average face and
    ``settings.estimate_candidates`` random faces, the one whose coarse preview scores best (same
    candidates, preview size and loss as ``invert._stages``). Returns (candidates [K, w_dim],
    index of the pick per target [N])."""
    import torch

    from stylestudio.engine.inversion.invert import _candidates, _resize

    with torch.no_grad():
        cands, _ = _candidates(gen, gen.w_avg, targets[:1], lpips, settings, None)
        prev = gen.synthesize(gen.styles(gen.broadcast_w(cands)), stop_resolution=settings.estimate_resolution).image
        size = min(prev.shape[-1], settings.lpips_size)
        prev = _resize(prev, size)
        pf = lpips.features(prev)
        picks = []
        for i in range(len(targets)):
            t = _resize(targets[i:i + 1], size)
            pixel = (prev - t).square().mean((1, 2, 3))
            score = lpips_between(lpips, pf, lpips.features(t)) + settings.pixel_weight * pixel
            picks.append(int(score.argmin()))
    return cands.cpu().numpy(), np.array(picks)


def figures(name: str, w: np.ndarray, w_true: np.ndarray, lp: np.ndarray, psis: np.ndarray, w_std: float,
            reference: np.ndarray | None = None) -> dict:
    err = np.sqrt(((w - w_true) ** 2).mean(1)) / w_std
    low = psis < 0.75
    out = {"latent_rmse": round(float(err.mean()), 4), "lpips": round(float(lp.mean()), 4),
           "lpips_median": round(float(np.median(lp)), 4),
           "latent_rmse_psi_lt_0.75": round(float(err[low].mean()), 4),
           "latent_rmse_psi_ge_0.75": round(float(err[~low].mean()), 4),
           "lpips_psi_lt_0.75": round(float(lp[low].mean()), 4), "lpips_psi_ge_0.75": round(float(lp[~low].mean()), 4)}
    if reference is not None:
        out["encoder_lower_lpips"] = f"{int((reference < lp).sum())}/{len(lp)}"
    print(f"  {name:34s} latent RMSE {err.mean():.3f} w-std   LPIPS {lp.mean():.3f} (median {np.median(lp):.3f})",
          flush=True)
    return out


def validate(gen, lpips, enc, feats: np.ndarray, feats_degraded: np.ndarray, sides: np.ndarray,
             w_true: np.ndarray, psis: np.ndarray, images: np.ndarray, w_std: float) -> dict:
    """Held-out faces: encoder vs average face vs best of 16 random faces; encoder on degraded copies."""
    from stylestudio.engine.inversion import InversionSettings

    t0 = time.process_time()
    targets = as_tensor(images)

    def lpips_of_w(w: np.ndarray) -> np.ndarray:
        return lpips_rows(lpips, full_renders(gen, w), targets)

    w_enc = enc.predict_features(feats)
    lp_enc = lpips_of_w(w_enc)
    out: dict = {"faces": int(len(w_true)), "psi": [round(float(psis.min()), 3), round(float(psis.max()), 3)]}
    out["encoder"] = figures("encoder", w_enc, w_true, lp_enc, psis, w_std)

    w_avg = gen.w_avg.cpu().numpy()[None]
    lp_avg = lpips_rows(lpips, full_renders(gen, w_avg).expand(len(targets), -1, -1, -1), targets)
    out["average face"] = figures("average face", np.broadcast_to(w_avg, w_true.shape), w_true, lp_avg, psis,
                                  w_std, lp_enc)

    cands, idx = best_of_candidates(gen, lpips, targets, InversionSettings())
    lp_best = lpips_rows(lpips, full_renders(gen, cands)[idx], targets)
    out["best of 16 random"] = figures("best of 16 random (former estimate)", cands[idx], w_true, lp_best, psis,
                                       w_std, lp_enc)

    w_deg = enc.predict_features(feats_degraded)
    small = sides < 96
    out["encoder, degraded photo"] = figures("encoder, photo held 32-256 px", w_deg, w_true, lpips_of_w(w_deg), psis,
                                             w_std)
    out["encoder, degraded photo"]["faces_under_96px"] = int(small.sum())
    out["encoder, degraded photo"]["latent_rmse_under_96px"] = round(
        float((np.sqrt(((w_deg - w_true) ** 2).mean(1)) / w_std)[small].mean()), 4)
    out["seconds"] = round(time.process_time() - t0, 1)
    return out


def main() -> int:
    import torch

    from stylestudio.cli import progress_printer
    from stylestudio.engine.inversion.encoder import FeatureEncoder, FeatureSpec
    from stylestudio.engine.inversion.encoder_training import degrade, fit_encoder
    from stylestudio.engine.inversion.invert import w_statistics
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
    from stylestudio.engine.perceptual import load_lpips

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--faces", type=int, default=2000, help="training faces")
    ap.add_argument("--val", type=int, default=200, help="held-out faces for the validation figures (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--psi", default="0.5,1.0", help="truncation range, one ψ per face drawn uniformly")
    ap.add_argument("--components", type=int, default=128, help="PCA components of W predicted")
    ap.add_argument("--no-degrade", action="store_true", help="train on sharp renders only")
    ap.add_argument("--size", type=int, default=FeatureSpec.size, help="side of the VGG input")
    ap.add_argument("--grid-layer", type=int, default=FeatureSpec.grid_layer)
    ap.add_argument("--grid", type=int, default=FeatureSpec.grid)
    ap.add_argument("--pixels", type=int, default=FeatureSpec.pixels)
    ap.add_argument("--cache", type=Path, default=None, help="keep the rendered faces here (.npz, ~200 KB a face)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output", type=Path, default=None,
                    help="encoder file (.json; default resources/encoder/<model>/default.json)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    t0 = time.process_time()
    psi = (float(args.psi.split(",")[0]), float(args.psi.split(",")[1]))
    spec = FeatureSpec(size=args.size, grid_layer=args.grid_layer, grid=args.grid, pixels=args.pixels)
    gen = ModelStore().load(args.model, progress=progress_printer)
    lpips = load_lpips(gen.device, size=None)
    _, w_std = w_statistics(gen)
    n, nt = args.faces + args.val, args.faces
    w, psis, images, t_render = load_or_render(gen, n, args.seed, psi, args.cache)
    t = time.process_time()
    feats = extract_features(lpips, images, spec)
    degraded, sides = degrade(images, np.random.RandomState(args.seed + 2))
    feats_deg = extract_features(lpips, degraded, spec, "features of degraded copies")
    t_feats = time.process_time() - t

    t = time.process_time()
    if args.no_degrade:
        enc = fit_encoder(feats[:nt], w[:nt], spec, args.model, args.components)
    else:
        rows = np.concatenate([feats[:nt], feats_deg[:nt]])
        enc = fit_encoder(rows, np.concatenate([w[:nt], w[:nt]]), spec, args.model, args.components,
                          groups=np.concatenate([np.arange(nt), np.arange(nt)]))
    t_fit = time.process_time() - t
    print(f"fitted: {feats.shape[1]} features → {args.components} W components, ridge alpha "
          f"{enc.meta['training']['alpha']:.3g} ({t_fit:.0f} s)", flush=True)
    enc.meta["training"].update(
        faces=nt, degraded_copies=not args.no_degrade, seed=args.seed, psi=list(psi),
        rendered="full resolution, downsampled to 256 px", held_out=args.val, threads=args.threads,
        seconds={"render": None if t_render is None else round(t_render * nt / n, 1),
                 "features": round(t_feats * nt / n, 1), "fit": round(t_fit, 1)})
    out = args.output or REPO / "resources" / "encoder" / args.model / "default.json"
    enc.save(out)  # now, and again with the validation figures
    enc = FeatureEncoder.load(out)  # validate what ships (weights stored as float16)
    if args.val:
        print(f"validation on {args.val} held-out faces (ψ {psi[0]}–{psi[1]}):", flush=True)
        enc.meta["validation"] = validate(gen, lpips, enc, feats[nt:], feats_deg[nt:], sides[nt:], w[nt:],
                                          psis[nt:], images[nt:], w_std)
        enc.meta["validation"]["w_std"] = round(w_std, 5)
        enc.save(out)
    size = sum(p.stat().st_size for p in (out, out.with_suffix(".npz")))
    print(f"wrote {out} (+ .npz, {size / 1e6:.2f} MB) after {time.process_time() - t0:.0f} CPU s", flush=True)
    print(json.dumps(enc.meta, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
