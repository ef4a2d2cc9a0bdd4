"""One StyleGAN2 training step and the state a checkpoint holds (Karras et al. 2020, NVlabs' loss).

Per step, as stylegan2-ada-pytorch's ``StyleGAN2Loss`` and training loop do:

* **G main**: non-saturating logistic loss softplus(−D(G(z))), with style mixing (probability
  0.9: W+ rows from a cutoff onwards come from a second latent) and random noise; the mapping's
  ``w_avg`` follows the batch mean (β = 0.995). With HSR, + weight × the HSR loss (``hsr.py``).
* **G path length**, every 4th step (lazy, half batch): ‖J_wᵀ y‖ for y ~ N(0, I)/√(HW), penalty
  (length − running mean)² × weight 2 × interval.
* **D main**: softplus(D(G(z))) + softplus(−D(x)).
* **D R1**, every 16th step (lazy): γ/2 · ‖∇ₓD(x)‖² × interval.
* Adam (β₁ 0, β₂ 0.99) with the lazy-regularisation corrections of lr and betas; an EMA copy of G
  (half-life ``ema_kimg`` with NVlabs' ramp-up) is the model that is kept.

Several processes (``torchrun``): each takes ``batch / world`` samples and the gradients are
averaged across them with one all-reduce per phase (what NVlabs does instead of wrapping the
networks in DDP, whose hooks do not cover R1 and path-length double-backward), so every rank
keeps identical parameters. Every random number of a step comes from (seed, step, rank), so a
resumed run continues exactly as an uninterrupted one would.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import InputError
from ..distributed import World
from ..stylegan2.network import StyleGAN2Generator
from .discriminator import Discriminator
from .hsr import FEATURE_NETWORKS, HSRHeads, HSRTarget


@dataclass(frozen=True)
class TrainConfig:
    resolution: int
    batch: int = 16  #: images per step over all processes
    z_dim: int = 256
    w_dim: int = 256
    mapping_layers: int = 4
    channel_base: int = 8192
    channel_max: int = 256
    lr: float = 0.0025
    r1_gamma: float | None = None  #: None: NVlabs' heuristic 0.0002 · resolution² / batch
    pl_weight: float = 2.0
    style_mixing: float = 0.9
    r1_interval: int = 16
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    w_avg_beta: float = 0.995
    ema_kimg: float | None = None  #: None: batch · 10 / 32 (NVlabs)
    ema_rampup: float | None = 0.05
    hsr: str = "none"  #: "vgg16" or "none"
    hsr_weight: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.hsr not in FEATURE_NETWORKS:
            raise InputError(f"--hsr must be one of {', '.join(FEATURE_NETWORKS)}, got {self.hsr!r}")
        if self.batch < 1:
            raise InputError("the batch must hold at least one image")

    @property
    def gamma(self) -> float:
        return self.r1_gamma if self.r1_gamma is not None else 0.0002 * self.resolution ** 2 / self.batch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def generator(self) -> StyleGAN2Generator:
        return StyleGAN2Generator(z_dim=self.z_dim, w_dim=self.w_dim, img_resolution=self.resolution,
                                  num_mapping_layers=self.mapping_layers, channel_base=self.channel_base,
                                  channel_max=self.channel_max)

    def discriminator(self) -> Discriminator:
        return Discriminator(self.resolution, channel_base=self.channel_base, channel_max=self.channel_max)


PRECISIONS = ("fp32", "bf16", "fp16")  #: fp32, or mixed precision (autocast) of the adversarial passes


def check_precision(precision: str, device: torch.device | str) -> str:
    """``precision`` if this device can train with it. Mixed precision is a GPU feature: on a CPU,
    bf16 autocast runs (tests use it) but is slower than fp32, and fp16 has no CPU kernels."""
    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    kind = torch.device(device).type
    if precision == "fp16" and kind != "cuda":
        raise InputError("--precision fp16 needs a CUDA GPU (on the CPU use fp32)")
    if precision == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("this GPU has no bfloat16: use --precision fp16")
    return precision


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)


class Trainer:
    """The networks, optimisers and counters of one run; :meth:`step` trains one batch."""

    def __init__(self, config: TrainConfig, images: np.ndarray, device: torch.device | str, world: World,
                 G: StyleGAN2Generator | None = None, D: Discriminator | None = None,
                 precision: str = "fp32") -> None:
        if images.shape[1] != config.resolution:
            raise InputError(f"the dataset holds {images.shape[1]} px images, the model is {config.resolution} px")
        if config.batch % world.size:
            raise InputError(f"the batch ({config.batch}) must split evenly across {world.size} processes")
        self.config, self.world, self.device = config, world, torch.device(device)
        self.images = torch.from_numpy(images)  # uint8 NHWC, converted per batch
        torch.manual_seed(config.seed)  # every rank builds the same initial networks
        self.G = (G or config.generator()).to(self.device).train().requires_grad_(True)
        self.D = (D or Discriminator(config.resolution, channel_base=self.G.config["channel_base"],
                                     channel_max=self.G.config["channel_max"])).to(self.device).train()
        if world.distributed:  # rank 0's networks for everyone (a given D, for one, was not built from the seed)
            for net in (self.G, self.D):
                for t in list(net.parameters()) + list(net.buffers()):
                    dist.broadcast(t.data, src=0)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.heads = HSRHeads(self.G).to(self.device) if config.hsr != "none" else None
        self.hsr_target = HSRTarget(config.resolution, self.device) if self.heads is not None else None
        self.opt_G = self._adam(list(self.G.parameters()), config.pl_interval)
        if self.heads is not None:  # a group of its own, so HSR can be switched on when resuming a baseline
            self.opt_G.add_param_group({"params": list(self.heads.parameters())})
        self.opt_D = self._adam(list(self.D.parameters()), config.r1_interval)
        self.step_count = 0
        self.images_seen = 0
        self.pl_mean = torch.zeros([], device=self.device)
        self.local_batch = config.batch // world.size
        # Mixed precision (how this invocation runs, not part of the model or its checkpoint): the
        # generator and discriminator passes of the adversarial losses run under autocast; the R1
        # and path-length terms (second-order gradients) and the weights stay fp32. fp16 scales
        # the losses against underflow; bf16 has fp32's range and needs no scaling.
        self.precision = check_precision(precision, self.device)
        self._amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        scaled = self.precision == "fp16"
        self.scaler_G = torch.amp.GradScaler(self.device.type, enabled=scaled)
        self.scaler_D = torch.amp.GradScaler(self.device.type, enabled=scaled)

    def _adam(self, params: list[nn.Parameter], interval: int) -> torch.optim.Adam:
        ratio = interval / (interval + 1)  # lazy regularisation: NVlabs' correction
        return torch.optim.Adam(params, lr=self.config.lr * ratio, betas=(0.0, 0.99 ** ratio), eps=1e-8)

    # ---- pieces of a step ---------------------------------------------------------------------------
    def _all_mean(self, t: Tensor) -> Tensor:
        if self.world.distributed:
            t = t.clone()
            dist.all_reduce(t)
            t /= self.world.size
        return t

    def _sync_grads(self, params: list[nn.Parameter]) -> None:
        """Average gradients over the processes (one flat all-reduce, NVlabs' way)."""
        if not self.world.distributed:
            return
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
        dist.all_reduce(flat)
        flat /= self.world.size
        i = 0
        for p in params:
            n = p.numel()
            p.grad = flat[i: i + n].view_as(p).clone()
            i += n

    def _mapping(self, n: int, rng: torch.Generator, track: bool = False) -> Tensor:
        G = self.G
        z = torch.randn(n, G.z_dim, generator=rng).to(self.device)
        w = G.map_z(z)
        if track:
            with torch.no_grad():
                G.w_avg.copy_(self._all_mean(w.detach().mean(0)).lerp(G.w_avg, self.config.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, G.num_ws, 1)
        if self.config.style_mixing > 0 and torch.rand([], generator=rng) < self.config.style_mixing:
            cutoff = int(torch.randint(1, G.num_ws, [], generator=rng)) if G.num_ws > 1 else 1
            w2 = G.map_z(torch.randn(n, G.z_dim, generator=rng).to(self.device))
            ws = torch.cat([ws[:, :cutoff], w2.unsqueeze(1).repeat(1, G.num_ws - cutoff, 1)], dim=1)
        return ws

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self._amp_dtype, enabled=self._amp_dtype is not None)

    def _real(self, n: int, rng: torch.Generator) -> Tensor:
        idx = torch.randint(len(self.images), (n,), generator=rng)
        return self.images[idx].to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1

    def _synth(self, ws: Tensor, taps: tuple[str, ...] = ()) -> Any:
        with self.G.whole_stages():
            return self.G.synthesize(self.G.styles(ws), taps=taps, noise_mode="random")

    def path_length_penalty(self, rng: torch.Generator) -> Tensor:
        n = max(1, self.local_batch // self.config.pl_batch_shrink)
        ws = self._mapping(n, rng)
        img = self._synth(ws).image
        noise = torch.randn(img.shape, generator=rng).to(self.device) / math.sqrt(img.shape[2] * img.shape[3])
        grad, = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(2).mean(1).sqrt()
        with torch.no_grad():
            self.pl_mean.copy_(self.pl_mean.lerp(self._all_mean(lengths.mean().detach()), self.config.pl_decay))
        return (lengths - self.pl_mean).square().mean()

    def r1_penalty(self, real: Tensor) -> Tensor:
        real = real.detach().requires_grad_(True)
        grad, = torch.autograd.grad(self.D(real).sum(), real, create_graph=True)
        return grad.square().sum(dim=[1, 2, 3]).mean()

    def hsr_loss(self, result: Any) -> Tensor:
        assert self.heads is not None and self.hsr_target is not None
        return self.heads.loss(result.features, self.hsr_target(result.image))

    # ---- the step -----------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        cfg, G, D, n = self.config, self.G, self.D, self.local_batch
        torch.manual_seed(step_seed(cfg.seed, self.step_count, self.world.rank))  # synthesis noise
        rng = torch.Generator().manual_seed(step_seed(cfg.seed, self.step_count, self.world.rank) ^ 0x5EED)
        real = self._real(n, rng)
        logs: dict[str, float] = {}
        g_params = [p for group in self.opt_G.param_groups for p in group["params"]]

        G.requires_grad_(True)
        D.requires_grad_(False)
        taps = self.heads.taps if self.heads is not None else ()
        with self._autocast():
            result = self._synth(self._mapping(n, rng, track=True), taps)
            loss = F.softplus(-D(result.image)).float().mean()
            logs["loss_G"] = float(loss.detach())
            if self.heads is not None:
                hsr = self.hsr_loss(result).float()
                logs["loss_hsr"] = float(hsr.detach())
                loss = loss + cfg.hsr_weight * hsr
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler_G.scale(loss).backward()
        self._sync_grads(g_params)
        self.scaler_G.step(self.opt_G)
        self.scaler_G.update()

        if cfg.pl_weight > 0 and self.step_count % cfg.pl_interval == 0:
            self.opt_G.zero_grad(set_to_none=True)
            pl = self.path_length_penalty(rng)
            (pl * cfg.pl_weight * cfg.pl_interval).backward()
            self._sync_grads(g_params)
            self.opt_G.step()
            logs["pl_penalty"] = float(pl.detach())

        G.requires_grad_(False)
        D.requires_grad_(True)
        with self._autocast():
            with torch.no_grad():
                fake = self._synth(self._mapping(n, rng)).image
            loss_d = F.softplus(D(fake)).float().mean() + F.softplus(-D(real)).float().mean()
        logs["loss_D"] = float(loss_d.detach())
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler_D.scale(loss_d).backward()
        self._sync_grads(list(D.parameters()))
        self.scaler_D.step(self.opt_D)
        self.scaler_D.update()

        if cfg.gamma > 0 and self.step_count % cfg.r1_interval == 0:
            self.opt_D.zero_grad(set_to_none=True)
            r1 = self.r1_penalty(real)
            (r1 * (cfg.gamma / 2) * cfg.r1_interval).backward()
            self._sync_grads(list(D.parameters()))
            self.opt_D.step()
            logs["r1_penalty"] = float(r1.detach())

        self.step_count += 1
        self.images_seen += cfg.batch
        self._update_ema()
        return logs

    @torch.no_grad()
    def _update_ema(self) -> None:
        cfg = self.config
        ema_nimg = (cfg.ema_kimg if cfg.ema_kimg is not None else cfg.batch * 10 / 32) * 1000
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.images_seen * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ---- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"format": "stylestudio-training-1", "config": self.config.to_dict(),
                "g_config": self.G.config, "d_config": self.D.config,
                "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                "heads": self.heads.state_dict() if self.heads is not None else {},
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
                "step": self.step_count, "images_seen": self.images_seen, "pl_mean": self.pl_mean.detach().cpu()}

    @classmethod
    def from_state(cls, state: dict[str, Any], images: np.ndarray, device: torch.device | str,
                   world: World, hsr: str | None = None, hsr_weight: float | None = None,
                   precision: str = "fp32", seed: int | None = None) -> "Trainer":
        """Rebuild a trainer from :meth:`state_dict` (read with ``weights_only=True``).

        ``hsr``/``hsr_weight`` override the checkpoint's: resuming a baseline with HSR switched on
        is the paper's protocol (warm start, then HSR); new heads start untrained. ``seed``
        overrides the checkpoint's too (a warm-started run draws its own random numbers: two arms
        that differ only in it measure how much training noise alone moves a metric)."""
        try:
            saved = dict(state["config"])
            if hsr is not None:
                saved["hsr"] = hsr
            if hsr_weight is not None:
                saved["hsr_weight"] = hsr_weight
            if seed is not None:
                saved["seed"] = seed
            config = TrainConfig.from_dict(saved)
            G = StyleGAN2Generator(**state["g_config"])
            D = Discriminator(**state["d_config"])
            t = cls(config, images, device, world, G=G, D=D, precision=precision)
            t.G.load_state_dict(state["G"])
            t.D.load_state_dict(state["D"])
            t.G_ema.load_state_dict(state["G_ema"])
            had_heads = bool(state["heads"])
            if t.heads is not None and had_heads:
                t.heads.load_state_dict(state["heads"])
            opt_state = state["opt_G"]
            if had_heads and t.heads is None:  # HSR switched off: drop the heads' group
                opt_state = {"state": {k: v for k, v in opt_state["state"].items()
                                       if int(k) < len(opt_state["param_groups"][0]["params"])},
                             "param_groups": opt_state["param_groups"][:1]}
            if t.heads is not None and not had_heads:  # HSR switched on: the heads' group starts fresh
                heads_group = t.opt_G.param_groups.pop()
                t.opt_G.load_state_dict(opt_state)
                t.opt_G.add_param_group(heads_group)
            else:
                t.opt_G.load_state_dict(opt_state)
            t.opt_D.load_state_dict(state["opt_D"])
            t.step_count, t.images_seen = int(state["step"]), int(state["images_seen"])
            t.pl_mean.copy_(state["pl_mean"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"the training checkpoint does not fit this trainer ({str(exc)[:160]})") from None
        return t
