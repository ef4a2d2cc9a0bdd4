"""Perceptual path length (Karras et al. 2019/2020), as NVlabs computes it, for any generator.

For sample i: two latents z0, z1 (and t ~ U(0, 1) for ``full`` sampling, t = 0 for ``end``);
in W space they are mapped and interpolated linearly, in Z space spherically then mapped; the
images at t and t + ε (ε = 1e-4, the model's constant noise) are optionally cropped to the face
(rows 3/8…7/8, columns 2/8…6/8, NVlabs' FFHQ crop), box-downsampled to 256 px when larger, and
their LPIPS-VGG16 distance divided by ε² is the sample's path length. PPL is the mean over the
samples between the 1st and 99th percentiles. ``ppl2_wend`` of StyleGAN2 is ``space="w",
sampling="end", crop=False``.

Each sample's latents come from a generator seeded by (seed, index), so the value depends on
the seed and the sample count only: not on the batch size nor on how many processes
(``torchrun``) shared the samples.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from ..distributed import World, any_rank, current_world, gather_rows, shard
from ..generator import Generator
from ..progress import Cancel, Finish, Progress, check_cancel, no_progress
from .stats import MetricResult, bootstrap_interval, sample_rng

EPSILON = 1e-4
SPACES = ("w", "z")
SAMPLINGS = ("end", "full")
#: images larger than this are box-downsampled to it before LPIPS (NVlabs)
LPIPS_SIDE = 256
MIN_LPIPS_SIDE = 16

Distance = Callable[[Tensor, Tensor], Tensor]


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of (normalised) latents, as NVlabs' PPL does in Z."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1, 1))
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    d = a * torch.cos(p) + c * torch.sin(p)
    return d / d.norm(dim=-1, keepdim=True)


def face_crop(img: Tensor) -> Tensor:
    """NVlabs' PPL crop: the central face region of an aligned portrait."""
    c = img.shape[2] // 8
    return img[:, :, c * 3: c * 7, c * 2: c * 6]


def box_downsample(img: Tensor, side: int = LPIPS_SIDE) -> Tensor:
    factor = img.shape[2] // side
    if factor > 1:
        n, ch, h, w = img.shape
        img = img.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=(3, 5))
    return img


def lpips_distance(device: torch.device | str) -> Distance:
    """LPIPS-VGG16 at the images' own size (they are already at most 256 px)."""
    from ..perceptual.lpips import load_lpips

    net = load_lpips(device, size=None)
    return lambda a, b: net(a, b)


def draw_latents(gen: Generator, indices: list[int], seed: int, sampling: str) -> tuple[Tensor, Tensor, Tensor]:
    z0, z1, t = [], [], []
    for i in indices:
        rng = sample_rng(seed, i)
        z0.append(rng.standard_normal(gen.z_dim))
        z1.append(rng.standard_normal(gen.z_dim))
        t.append(rng.uniform() if sampling == "full" else 0.0)
    as_t = lambda x: torch.from_numpy(np.asarray(x, np.float32)).to(gen.device)  # noqa: E731
    return as_t(z0), as_t(z1), as_t(t).unsqueeze(1)


@torch.no_grad()
def path_lengths(gen: Generator, indices: list[int], *, seed: int, space: str = "w", sampling: str = "end",
                 epsilon: float = EPSILON, crop: bool = False, distance: Distance | None = None) -> np.ndarray:
    """The path length of each sample in ``indices`` (one batch)."""
    if space not in SPACES or sampling not in SAMPLINGS:
        raise ValueError(f"space must be one of {SPACES} and sampling one of {SAMPLINGS}")
    distance = distance or lpips_distance(gen.device)
    z0, z1, t = draw_latents(gen, indices, seed, sampling)
    if space == "w":
        w0, w1 = gen.map_z(z0), gen.map_z(z1)
        wa, wb = w0.lerp(w1, t), w0.lerp(w1, t + epsilon)
    else:
        wa, wb = gen.map_z(slerp(z0, z1, t)), gen.map_z(slerp(z0, z1, t + epsilon))
    img = gen.synthesis(torch.cat([wa, wb]), noise_mode="const").float()
    if crop:
        img = face_crop(img)
    if img.shape[-1] < MIN_LPIPS_SIDE:
        raise InputError(f"PPL measures images of at least {MIN_LPIPS_SIDE} px (VGG16 pools four times); this "
                         f"model's {'cropped ' if crop else ''}images have {img.shape[-1]} px")
    img = box_downsample(img)
    a, b = img.chunk(2)
    return (distance(a, b).double() / epsilon ** 2).cpu().numpy()


def filtered_mean(dist: np.ndarray) -> float:
    """NVlabs: the mean of the values between the 1st ('lower') and 99th ('higher') percentiles."""
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


def metric_name(space: str, sampling: str, crop: bool) -> str:
    return f"ppl_{space}{sampling}{'_crop' if crop else ''}"


def perceptual_path_length(gen: Generator, samples: int, *, seed: int = 0, space: str = "w", sampling: str = "end",
                           epsilon: float = EPSILON, crop: bool = False, batch: int = 8,
                           distance: Distance | None = None, world: World | None = None,
                           progress: Progress = no_progress, cancel: Cancel = None,
                           finish: Finish = None) -> MetricResult:
    """PPL over ``samples`` samples split across the ranks of ``world``; every rank gets the result.
    ``finish`` (*Finish now*) ends the sampling after the current batch: the result is then that of
    the samples measured so far, with their (wider) bootstrap interval."""
    if samples < 2:
        raise ValueError("PPL needs at least 2 samples")
    world = world or current_world(gen.device)
    distance_name = "lpips-vgg16" if distance is None else getattr(distance, "__name__", "given")
    distance = distance or lpips_distance(gen.device)
    mine = list(shard(samples, world))
    rows = []
    name = metric_name(space, sampling, crop)
    most = -(-samples // world.size)  # every rank takes as many turns (a rank may have one sample less)
    for start in range(0, most, batch):
        check_cancel(cancel)
        if any_rank(bool(rows) and finish is not None and finish(), world):  # every rank stops together
            break
        idx = mine[start: start + batch]
        if not idx:
            continue
        d = path_lengths(gen, idx, seed=seed, space=space, sampling=sampling, epsilon=epsilon, crop=crop,
                         distance=distance)
        rows.append(np.stack([np.asarray(idx, np.float64), d], axis=1))
        progress(f"{name}: {min(start + batch, len(mine))} of {len(mine)} samples"
                 f"{f' (rank {world.rank})' if world.distributed else ''}", min(1.0, (start + batch) / len(mine)))
    mine_rows = np.concatenate(rows) if rows else np.zeros((0, 2))
    every = gather_rows(mine_rows, world)
    dist = every[np.argsort(every[:, 0], kind="stable"), 1]
    if len(dist) < 2:
        raise InputError(f"PPL needs at least 2 samples; it was finished after {len(dist)}")
    value = filtered_mean(dist)
    low, high = bootstrap_interval(dist, filtered_mean, seed)
    kept = int(((dist >= np.percentile(dist, 1, method="lower")) & (dist <= np.percentile(dist, 99, method="higher"))).sum())
    return MetricResult(name, value, low, high, kept, seed,
                        settings={"space": space, "sampling": sampling, "epsilon": epsilon, "crop": crop,
                                  "samples": len(dist), "distance": distance_name,
                                  "processes": world.size},
                        details={"median": float(np.median(dist)),
                                 **({"asked": samples} if len(dist) < samples else {})})
