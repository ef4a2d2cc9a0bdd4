"""The photo encoders on held-out generated faces: ridge (``default.json``) vs network (``default.pt``).

    python bench/encoder_heldout.py [--faces 160] [--render 24] [--cache held-out.npz] [--threads 1]

Faces: ``training_faces(gen, N, seed 500000, mix 0)`` — ψ uniform in 0.5–1, full renders downsampled
to 256 px, one w per face; `stylestudio train-encoder` never uses this seed (its chunks are
100000 + 1000·k, k < 200). For every face: the latent error of each encoder's prediction (RMS
over the W+ rows that reach the image, in units of the mapping's per-dimension std of w; the
network's shared w and its W+ rows separately); for the first ``--render`` faces also the LPIPS
(VGG, 256 px) of the prediction's full-resolution render against the face. Seconds are process
CPU time ÷ threads (the machine is shared); the load average is printed.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_spec = importlib.util.spec_from_file_location("bench_inversion", REPO / "bench" / "inversion.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

from stylestudio.engine.inversion.encoder import downsample  # noqa: E402
from stylestudio.engine.inversion.encoder_training import training_faces  # noqa: E402
from stylestudio.engine.inversion.net_encoder import NetEncoder, head_inputs  # noqa: E402
from stylestudio.engine.resources import Resources  # noqa: E402

SEED = 500_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=160)
    ap.add_argument("--render", type=int, default=24, help="faces whose predictions are rendered for LPIPS")
    ap.add_argument("--cache", type=Path, default=None, help="keep the held-out renders here (.npz)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--net", type=Path, default=None, help="a network encoder file (default: the model's default.pt)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, … (figures are the same; seconds are not)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)

    gen = bench.ModelStore().load(device=args.device)
    name = "mobilestylegan-ffhq"
    lp = bench.load_lpips(args.device, size=None)
    _, w_std = bench.w_statistics(gen)
    res = Resources(gen, name)
    ridge = res.get("encoder", "default")
    net = NetEncoder.load(args.net) if args.net else res.get("net-encoder", "default")
    net.head.to(gen.device)
    if args.cache is not None and args.cache.is_file():
        with np.load(args.cache, allow_pickle=False) as f:
            wplus, images = f["wplus"][:args.faces].astype(np.float32), f["images"][:args.faces]
            assert int(f["seed"]) == SEED and len(wplus) == args.faces, "the cache holds other faces"
    else:
        wplus, images = training_faces(gen, args.faces, SEED, mix=0.0)
        if args.cache is not None:
            np.savez(args.cache, wplus=wplus.astype(np.float16), images=images, seed=np.int64(SEED))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    idx = bench.used_rows(gen)

    # one VGG pass a face serves both: the head's pooled vector is the ridge encoder's input
    t0 = time.process_time()
    feats = [head_inputs(lp, x[i:i + 16], net.head.cfg) for i in range(0, len(x), 16)]
    t_vgg = (time.process_time() - t0) / args.threads / len(x)
    t0 = time.process_time()
    preds = {"ridge": np.concatenate([ridge.predict_features(f.stats) for f in feats])}
    t_ridge = t_vgg + (time.process_time() - t0) / args.threads / len(x)
    t0 = time.process_time()
    w_net, wp_net = zip(*(net.predict_inputs(f) for f in feats))
    t_net = t_vgg + (time.process_time() - t0) / args.threads / len(x)
    preds["network w"] = np.concatenate(w_net)
    preds["network W+"] = np.concatenate(wp_net)

    def as_wplus(p: np.ndarray) -> np.ndarray:
        return p if p.ndim == 3 else np.repeat(p[:, None], gen.num_ws, 1)

    out: dict = {"faces": len(x), "rendered": min(args.render, len(x)), "load": os.getloadavg()[0],
                 "seconds_per_face": {"ridge": round(t_ridge, 3), "network": round(t_net, 3)}}
    targets = downsample(x[:args.render], 256)
    for kind, p in preds.items():
        wp = as_wplus(p)
        err = np.sqrt((((wp[:, idx] - wplus[:, idx]) / w_std) ** 2).mean((1, 2)))
        lps = []
        for i in range(min(args.render, len(x))):
            ws = torch.from_numpy(wp[i:i + 1]).to(gen.device)
            rec = downsample(gen.synthesize(gen.styles(ws)).image, 256)
            lps.append(float(lp(rec, targets[i:i + 1].to(rec.device))))
        out[kind] = {"latent_rmse": round(float(err.mean()), 4), "latent_rmse_median": round(float(np.median(err)), 4),
                     "lpips": round(float(np.mean(lps)), 4) if lps else None, "lpips_each": [round(v, 4) for v in lps]}
        print(f"{kind:11s} latent RMSE {err.mean():.3f} (median {np.median(err):.3f}) over {len(x)} faces"
              + (f"; LPIPS {np.mean(lps):.3f} over {len(lps)} rendered" if lps else ""), flush=True)
    if lps:
        better = sum(a < b for a, b in zip(out["network w"]["lpips_each"], out["ridge"]["lpips_each"]))
        out["network w lower lpips"] = f"{better}/{len(lps)}"
        print(f"network w lower LPIPS than ridge on {better}/{len(lps)} faces; "
              f"{t_ridge:.2f} s vs {t_net:.2f} s a face to predict; load {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
