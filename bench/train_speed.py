"""Training speed (kimg/s) of the StyleGAN2 trainer, one process and two (torchrun, gloo on CPU).

    python bench/train_speed.py [--resolution 64] [--batch 8] [--steps 6] [--hsr none|vgg16]
        [--channels 256] [--latent-dim 256] [--processes 1 2] [--threads 1]

Random pictures are enough for speed. The first two steps are warm-up (they include the lazy
regularisers' first runs); the timed steps are an exact multiple of both lazy intervals (R1 16,
path length 4 are scaled down to 2 here so few steps contain their share). The anchor is a fixed
float32 matrix product timed in the same run, so numbers from a loaded machine can be compared
by their ratio. On a GPU machine the same script measures CUDA (nccl for 2 processes).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)


def anchor_seconds() -> float:
    import torch

    a = torch.randn(512, 512)
    t = time.perf_counter()
    for _ in range(20):
        a = (a @ a).tanh()
    return time.perf_counter() - t


def worker(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from stylestudio.engine.device import pick_device
    from stylestudio.engine.distributed import current_world, process_device
    from stylestudio.engine.training.trainer import TrainConfig, Trainer

    torch.set_num_threads(args.threads)
    world = current_world("cuda" if torch.cuda.is_available() else "cpu")
    device = pick_device(process_device("auto", world))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (256, args.resolution, args.resolution, 3), dtype=np.uint8)
    cfg = TrainConfig(args.resolution, batch=args.batch, z_dim=args.latent_dim, w_dim=args.latent_dim,
                      mapping_layers=4, channel_base=max(args.resolution, 32 * args.channels),
                      channel_max=args.channels, hsr=args.hsr, r1_interval=2, pl_interval=2)
    trainer = Trainer(cfg, images, device, world)
    for _ in range(2):
        trainer.step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(args.steps):
        trainer.step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    return {"processes": world.size, "rank": world.rank, "seconds": seconds,
            "kimg_per_s": args.steps * args.batch / 1000 / seconds, "device": str(device)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--hsr", choices=("none", "vgg16"), default="none")
    p.add_argument("--channels", type=int, default=256)
    p.add_argument("--latent-dim", type=int, default=256)
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        res = worker(args)
        if res["rank"] == 0:
            print("RESULT " + json.dumps(res), flush=True)
        return
    anchor = anchor_seconds()
    print(f"anchor (20 × 512² float32 matmul+tanh): {anchor:.3f} s; load average {os.getloadavg()[0]:.1f}")
    base = None
    for n in args.processes:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--master_addr",
               "127.0.0.1", "--master_port", str(free_port()), __file__, "--worker",
               *[a for a in sys.argv[1:] if a != "--worker"]]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"{n} process(es) failed:\n{out.stderr[-2000:]}")
            continue
        res = json.loads(line[7:])
        base = base or res["kimg_per_s"]
        print(f"{n} process(es) on {res['device']}: {res['kimg_per_s']:.4f} kimg/s "
              f"({res['seconds']:.1f} s for {args.steps} steps of {args.batch} at {args.resolution} px, hsr "
              f"{args.hsr}); × {res['kimg_per_s'] / base:.2f} of 1 process; {res['kimg_per_s'] * anchor:.4f} "
              f"kimg per anchor")


if __name__ == "__main__":
    main()
