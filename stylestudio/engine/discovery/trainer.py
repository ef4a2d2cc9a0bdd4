"""Training the ContraFeat navigator (and its instant baselines) against any :class:`Generator`.

One step (binary loss): sample W+ codes (each from two z's: the first half of the rows from one,
the rest from the other, as the authors' code does so the navigator sees style mixtures); pair
sample 1 with sample 2; move sample 1 and sample 2 along a direction k by the same random amount
s ~ U[−1, 1]·scale, and sample 2 along another direction j ≠ k; render all five at a reduced size
(the generator's stop resolution), read the sensor and apply :func:`losses.binary_loss` plus
0.1 × the diversity term. The prototype variant moves one sample by ±s/2 along k and contrasts the
change with K learned prototype variation images. Adam (lr 0.05, betas (0, 0.99)) as the authors.

Everything random comes from ``settings.seed`` (and the rank under ``torchrun``), so a run is
reproducible. Under ``torch.distributed`` the learned parameters are wrapped in
``DistributedDataParallel`` (gloo on CPU, nccl on GPU): every rank samples its own batch and the
gradients are averaged.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..directions.library import Direction, DirectionLibrary
from ..distributed import any_rank, collective_device, current_world
from ..progress import Cancel, Finish, Progress, check_cancel, no_progress
from . import losses
from .navigator import Basis, Navigator, diversity_loss, live_rows, pca_basis, sefa_basis
from .sensor import SENSORS, generator_taps, load_sensor

METHODS = ("contrafeat", "contrafeat-proto", "pca", "sefa")
LEARNED = ("contrafeat", "contrafeat-proto")
BASES = ("pca", "sefa")
#: the step amounts a direction strip shows (slider units)
STRIP_STEPS = (-2.0, -1.0, 0.0, 1.0, 2.0)


@dataclass(frozen=True)
class DiscoverySettings:
    """How to discover directions. ``steps`` or ``minutes`` bounds training (the first reached)."""

    method: str = "contrafeat"
    directions: int = 10
    steps: int | None = None
    minutes: float | None = 20.0
    size: int = 128  #: render side in pixels (the generator stops at the matching resolution)
    sensor: str = "vgg16-relu3_3"
    basis: str = "pca"  #: the span of d_k: top-q ``pca`` components of W or ``sefa`` factors
    q: int = 30
    pairs: int = 2  #: sample pairs per step (the binary loss renders 5 images per pair)
    #: s ~ U[−1, 1]·scale natural standard deviations (per live row under uniform attention).
    #: None: 2 / live rows, so a direction whose attention sits on one row moves that row by at
    #: most 2 standard deviations while training — the authors' navigator (attention summing to 1,
    #: no rescaling) bounds a one-row move the same way. A fixed 2.0 let a collapsed direction move
    #: its row by 32 and scored 0.30 against 0.40 (docs/discovery.md).
    scale: float | None = None
    smooth: bool = False  #: 3-tap Gaussian smoothing of the attention across rows
    #: False: d_k stays the k-th basis vector and only the attention is learned ("PCA + attention")
    train_vectors: bool = True
    lr: float = 0.05
    diversity: float = 0.1
    psi: float = 1.0  #: truncation of the training samples (the authors use none)
    mirror: bool = True  #: prototype variant: prototypes may appear mirrored (and negated)
    seed: int = 0
    basis_samples: int = 20000

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.basis not in BASES:
            raise ValueError(f"basis must be one of {', '.join(BASES)}, got {self.basis!r}")
        if self.sensor not in SENSORS:
            raise ValueError(f"sensor must be one of {', '.join(SENSORS)}, got {self.sensor!r}")
        if self.method == "contrafeat-proto" and self.sensor == "generator":
            raise ValueError("the prototype variant needs an image sensor (vgg16-…): prototypes are images")
        if not 1 <= self.directions <= 64:
            raise ValueError(f"directions must be between 1 and 64, got {self.directions}")
        if self.steps is not None and not 1 <= self.steps <= 10_000_000:
            raise ValueError(f"steps must be between 1 and 10000000, got {self.steps}")
        if self.minutes is not None and not (math.isfinite(self.minutes) and 0 < self.minutes <= 60 * 24 * 30):
            raise ValueError(f"minutes must be a positive number of at most 30 days, got {self.minutes}")
        if self.method == "contrafeat" and self.directions < 2:
            raise ValueError("the binary contrast needs at least 2 directions (a positive and a negative)")
        if self.method in LEARNED and self.steps is None and self.minutes is None:
            raise ValueError("give steps or minutes: training needs a budget")
        if not 8 <= self.size <= 1024:
            raise ValueError(f"size must be between 8 and 1024 pixels, got {self.size}")
        if not self.train_vectors and self.q < self.directions:
            raise ValueError(f"fixed basis vectors need q ≥ directions ({self.q} < {self.directions})")
        if not 1 <= self.q <= 4096 or not 1 <= self.pairs <= 256:
            raise ValueError("q and pairs must be positive (q ≤ 4096, pairs ≤ 256)")
        for name in ("scale", "lr", "diversity", "psi"):
            v = getattr(self, name)
            if v is None and name == "scale":
                continue
            if not math.isfinite(v) or v < 0 or v > 100:
                raise ValueError(f"{name} must be a finite number between 0 and 100, got {v}")


@dataclass
class DiscoveryUpdate:
    """One report from a running discovery (the GUI draws the loss curve and strips from these)."""

    step: int
    steps: int | None
    seconds: float
    loss: float
    contrast: float
    diversity: float
    fraction: float
    #: per direction, the W+ row weights [K, num_ws] (attention × live rows)
    row_weights: np.ndarray | None = None
    #: uint8 [K, len(STRIP_STEPS), H, W, 3] when strips were drawn at this step
    strips: np.ndarray | None = None
    #: the closing report (the finished directions' strips; its loss repeats the last step's)
    final: bool = False


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Learned(nn.Module):
    """Everything ContraFeat learns: the navigator and (prototype variant) the prototype images."""

    def __init__(self, navigator: Navigator, prototypes: Tensor | None) -> None:
        super().__init__()
        self.navigator = navigator
        self.prototypes = nn.Parameter(prototypes) if prototypes is not None else None

    def forward(self) -> tuple[Tensor, Tensor | None]:
        protos = torch.tanh(self.prototypes) if self.prototypes is not None else None
        return self.navigator(), protos


class DiscoveryTrainer:
    """Owns the navigator, the sensor and the optimiser for one run on one generator."""

    def __init__(self, generator, settings: DiscoverySettings, progress: Progress | None = None,
                 basis: Basis | None = None) -> None:
        if settings.method not in LEARNED:
            raise ValueError(f"{settings.method} needs no training; use baseline_library()")
        self.gen = generator
        self.settings = s = settings
        self.rank, self.world = _rank_world()
        self.device = generator.device
        self.rows = live_rows(generator)
        self.amount_scale = s.scale if s.scale is not None else 2.0 / len(self.rows)
        self.basis = basis or make_basis(generator, s)
        self.stop = stop_for_size(generator, s.size)
        self.image_size = generator.preview_size(self.stop) if self.stop is not None else generator.resolution
        self.sensor = load_sensor(s.sensor, self.device, min(s.size, 224), progress)
        self.taps = generator_taps(generator, self.stop) if self.sensor is None else ()
        nav = Navigator(self.basis, generator.num_ws, self.rows, s.directions, smooth=s.smooth, seed=s.seed)
        if not s.train_vectors:
            with torch.no_grad():
                nav.coeffs.copy_(torch.eye(s.directions, self.basis.q))
            nav.coeffs.requires_grad_(False)
        protos = None
        if s.method == "contrafeat-proto":
            g = torch.Generator().manual_seed(s.seed + 1)
            side = self.sensor.size
            protos = 0.5 * torch.randn(s.directions, 3, side, side, generator=g)
        self.learned = Learned(nav, protos).to(self.device)
        self.model: nn.Module = self.learned
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(self.learned, device_ids=None if self.device.type == "cpu"
                                                 else [self.device.index or 0])
        self.optimizer = torch.optim.Adam([p for p in self.learned.parameters() if p.requires_grad], lr=s.lr,
                                          betas=(0.0, 0.99))
        self.rng = torch.Generator().manual_seed(s.seed * 1000 + 17 + self.rank)
        self.step_count = 0
        self.finished_early = False  #: ended by ``finish`` before its budget
        self.history: list[tuple[float, float, float]] = []  #: (loss, contrast, diversity) per step

    @property
    def navigator(self) -> Navigator:
        return self.learned.navigator

    # ---- sampling and sensing ----------------------------------------------------------------
    @torch.no_grad()
    def sample_ws(self, n: int) -> Tensor:
        """W+ [n, num_ws, w_dim]: rows before the middle from one z, the rest from a second z."""
        g = self.gen
        z = torch.randn(2, n, g.z_dim, generator=self.rng).to(self.device)
        w1, w2 = g.map_z(z[0]), g.map_z(z[1])
        ws = w1[:, None].repeat(1, g.num_ws, 1)
        ws[:, g.num_ws // 2 :] = w2[:, None]
        return g.truncate(ws, self.settings.psi)

    def sense(self, ws: Tensor) -> list[Tensor]:
        """Sensor features of the faces ``ws`` (rendered at the reduced size)."""
        with self.gen.whole_stages():
            out = self.gen.synthesize(self.gen.styles(ws), taps=self.taps, stop_resolution=self.stop)
        if self.sensor is None:
            return [out.features[t] for t in self.taps]
        return self.sensor(out.image)

    def _amounts(self, n: int) -> Tensor:
        return ((torch.rand(n, generator=self.rng) * 2 - 1) * self.amount_scale).to(self.device)

    # ---- one step ----------------------------------------------------------------------------
    def loss(self) -> tuple[Tensor, Tensor, Tensor]:
        """(total, contrast, diversity) for a freshly sampled batch, with gradients."""
        s = self.settings
        delta, protos = self.model()
        div = diversity_loss(delta)
        k = delta.shape[0]
        if s.method == "contrafeat":
            p = s.pairs
            ws = self.sample_ws(2 * p)
            w1, w2 = ws[:p], ws[p:]
            pick = torch.rand(p, k, generator=self.rng).argsort(1)[:, :2].to(self.device)
            amt = self._amounts(p)[:, None, None]
            dk, dj = delta[pick[:, 0]], delta[pick[:, 1]]
            batch = torch.cat([w1, w2, w1 + amt * dk, w2 + amt * dk, w2 + amt * dj])
            contrast = losses.binary_loss(self.sense(batch))
        else:
            b = s.pairs * 2
            ws = self.sample_ws(b)
            idx = torch.randint(k, (b,), generator=self.rng).to(self.device)
            amt = self._amounts(b)[:, None, None] * 0.5
            batch = torch.cat([ws - amt * delta[idx], ws + amt * delta[idx]])
            if s.mirror and bool(torch.rand(1, generator=self.rng)[0] > 0.5):
                protos = -protos.flip(-1)
            contrast = losses.prototype_loss(self.sense(batch), self.sensor(protos), idx)
        return contrast + s.diversity * div, contrast, div

    def step(self) -> tuple[float, float, float]:
        with _frozen(self.gen):
            self.optimizer.zero_grad(set_to_none=True)
            total, contrast, div = self.loss()
            total.backward()
            self.optimizer.step()
        self.step_count += 1
        row = (float(total.detach()), float(contrast.detach()), float(div.detach()))
        self.history.append(row)
        return row

    # ---- the loop ----------------------------------------------------------------------------
    def train(self, progress: Progress | None = None, cancel: Cancel = None,
              on_update: Callable[[DiscoveryUpdate], None] | None = None,
              strip_seconds: float = 180.0, strip_seed: int = 7, strip_size: int = 64,
              finish: Finish = None) -> list[tuple[float, float, float]]:
        """Step until ``steps`` or ``minutes`` (whichever first), ``finish`` (after a step at least)
        or cancel; reports every step."""
        progress = progress or no_progress
        s = self.settings
        start = time.monotonic()
        last_strip = start
        budget = s.minutes * 60 if s.minutes is not None else None
        while True:
            check_cancel(cancel, "discovery cancelled")
            elapsed = time.monotonic() - start
            if s.steps is not None and self.step_count >= s.steps:
                break
            time_up = budget is not None and elapsed >= budget
            wanted = self.step_count > 0 and finish is not None and finish()
            if any_rank(time_up or wanted, current_world()):  # every rank stops at the same step
                self.finished_early = wanted and not time_up
                break
            total, contrast, div = self.step()
            elapsed = time.monotonic() - start
            fraction = max(self.step_count / s.steps if s.steps else 0.0, elapsed / budget if budget else 0.0)
            fraction = min(1.0, fraction)
            progress(f"step {self.step_count}{f'/{s.steps}' if s.steps else ''}  loss {total:+.4f}  "
                     f"(contrast {contrast:+.4f}, diversity {div:.4f})  {elapsed:.0f} s so far", fraction)
            if on_update is not None:
                strips = None
                if time.monotonic() - last_strip >= strip_seconds:
                    strips, last_strip = self.strips(strip_seed, strip_size), time.monotonic()
                on_update(DiscoveryUpdate(self.step_count, s.steps, elapsed, total, contrast, div, fraction,
                                          self.row_weights(), strips))
        if on_update is not None and self.history:  # the finished directions' strips, always
            total, contrast, div = self.history[-1]
            on_update(DiscoveryUpdate(self.step_count, s.steps, time.monotonic() - start, total, contrast, div, 1.0,
                                      self.row_weights(), self.strips(strip_seed, strip_size), final=True))
        return self.history

    # ---- results -----------------------------------------------------------------------------
    @torch.no_grad()
    def row_weights(self) -> np.ndarray:
        return self.navigator.row_weights().cpu().numpy()

    @torch.no_grad()
    def directions(self) -> list[Direction]:
        """The current directions as library entries ``direction_1`` … (see :func:`to_direction`)."""
        nav = self.navigator
        vec = nav.unit_vectors().cpu().numpy()
        spread = nav.spread().cpu().numpy()
        weights = self.row_weights()
        return [to_direction(i, vec[i], weights[i], float(spread[i]), self.settings) for i in range(nav.k)]

    def library(self, model: str) -> DirectionLibrary:
        return DirectionLibrary(model, self.directions(), kind="discovered", meta=run_meta(self.settings, self))

    @torch.no_grad()
    def strips(self, seed: int = 7, size: int = 64) -> np.ndarray:
        """uint8 [K, len(STRIP_STEPS), size, size, 3]: one face moved along every direction."""
        return direction_strips(self.gen, self.library("strip"), seed, size, self.stop)

    # ---- checkpoints (rank 0 writes; every rank resumes from the same file) -------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs; under torchrun a collective call (every rank's sampling
        state is gathered, so each rank resumes its own stream)."""
        rng = self.rng.get_state()[None]
        if self.world > 1:
            import torch.distributed as dist

            mine = rng.to(collective_device())  # the generator's state is a CPU tensor; nccl gathers CUDA ones
            parts = [torch.empty_like(mine) for _ in range(self.world)]
            dist.all_gather(parts, mine)
            rng = torch.cat(parts).cpu()
        return {"learned": self.learned.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step_count, "rng": rng,
                "history": torch.tensor(self.history, dtype=torch.float64).reshape(-1, 3)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        rng = state["rng"]
        if rng.shape[0] != self.world:
            raise ValueError(f"checkpoint of a run on {rng.shape[0]} processes cannot resume on {self.world}")
        self.learned.load_state_dict(state["learned"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count = int(state["step"])
        self.rng.set_state(rng[self.rank].clone())
        self.history = [tuple(float(x) for x in row) for row in state["history"].tolist()]

    def save_checkpoint(self, path: Path) -> None:
        """Call on every rank (see :meth:`state_dict`); rank 0 writes."""
        state = self.state_dict()
        if self.rank == 0:
            from ...safe_io import atomic_write

            atomic_write(Path(path), lambda f: torch.save(state, f))

    def load_checkpoint(self, path: Path) -> None:
        self.load_state_dict(torch.load(Path(path), map_location=self.device, weights_only=True))


class _frozen:
    """Generator parameters without gradients for the duration (restored after)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.flags = [(p, p.requires_grad) for p in self.module.parameters()]
        for p, _ in self.flags:
            p.requires_grad_(False)

    def __exit__(self, *exc: Any) -> None:
        for p, flag in self.flags:
            p.requires_grad_(flag)


def stop_for_size(generator, size: int) -> int | None:
    """The smallest stop resolution whose image is at least ``size`` pixels (None: full size)."""
    for res in sorted({l.resolution for l in generator.style_layout}):
        if generator.preview_size(res) >= size:
            return None if res >= max(l.resolution for l in generator.style_layout) else res
    return None


def make_basis(generator, s: DiscoverySettings) -> Basis:
    make = pca_basis if s.basis == "pca" else sefa_basis
    return make(generator, s.q, s.basis_samples, s.seed)


def to_direction(i: int, vector: np.ndarray, weights: np.ndarray, spread: float, s: DiscoverySettings) -> Direction:
    """Library entry ``direction_{i+1}``: one slider unit is one natural standard deviation, so
    ±scale units span what training saw; rows with at least a quarter of the largest weight are listed."""
    weights = np.asarray(weights, np.float64)
    rows = tuple(int(r) for r in np.flatnonzero(weights >= 0.25 * weights.max()))
    return Direction(name=f"direction_{i + 1}", label=f"Direction {i + 1}", vector=np.asarray(vector, np.float32),
                     layers=rows, unit=float(spread), row_weights=tuple(float(x) for x in weights),
                     meta={"unit": "standard deviations of natural faces", "method": s.method})


def run_meta(s: DiscoverySettings, trainer: DiscoveryTrainer | None = None, seconds: float | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"settings": asdict(s)}
    if trainer is not None:
        meta["scale"] = trainer.amount_scale  # the training step actually used (settings may say None)
        meta["steps"] = trainer.step_count
        if trainer.history:
            meta["final_loss"] = float(np.mean([h[0] for h in trainer.history[-20:]]))
    if seconds is not None:
        meta["seconds"] = round(seconds, 1)
    return meta


def baseline_library(generator, model: str, s: DiscoverySettings, basis: Basis | None = None) -> DirectionLibrary:
    """PCA (GANSpace) or SeFa: the top-K basis vectors as directions on every live row."""
    b = basis or make_basis(generator, replace(s, basis=s.method, q=max(s.q, s.directions)))
    vectors = b.vectors[: s.directions]
    spread = b.spread(vectors)
    weights = np.zeros(generator.num_ws)
    weights[live_rows(generator)] = 1.0
    dirs = [to_direction(i, vectors[i] / np.linalg.norm(vectors[i]), weights, float(spread[i]), s)
            for i in range(len(vectors))]
    return DirectionLibrary(model, dirs, kind="discovered", meta=run_meta(s))


@torch.no_grad()
def direction_strips(generator, library: DirectionLibrary, seed: int = 7, size: int = 64,
                     stop: int | None = None, psi: float = 0.7, steps: tuple[float, ...] = STRIP_STEPS) -> np.ndarray:
    """uint8 [K, len(steps), size, size, 3]: the face of ``seed`` at each amount along each direction."""
    import torch.nn.functional as F

    from ..document import seed_to_z

    g = generator
    ws = g.mapping(seed_to_z(seed, g.z_dim).to(g.device), psi)
    out = []
    for name in library.names():
        batch = torch.cat([ws + library.delta(name, a, g.num_ws).to(ws)[None] for a in steps])
        img = g.synthesize(g.styles(batch), stop_resolution=stop).image
        img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False,
                            antialias=img.shape[-1] > size)
        out.append(((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    return np.stack(out)


def discover(generator, model: str, s: DiscoverySettings, progress: Progress | None = None, cancel: Cancel = None,
             on_update: Callable[[DiscoveryUpdate], None] | None = None,
             strip_seconds: float = 180.0, finish: Finish = None) -> DirectionLibrary:
    """Run ``s.method`` and return the direction library (not saved)."""
    progress = progress or no_progress
    t0 = time.monotonic()
    if s.method not in LEARNED:
        progress(f"{s.method.upper()}: computing the basis…", -1)
        lib = baseline_library(generator, model, s)
        lib.meta["seconds"] = round(time.monotonic() - t0, 1)
        if on_update is not None:
            weights = np.array([d.row_weights for d in lib.directions.values()])
            on_update(DiscoveryUpdate(0, 0, lib.meta["seconds"], 0.0, 0.0, 0.0, 1.0, weights,
                                      direction_strips(generator, lib, 7, 64), final=True))
        return lib
    progress(f"preparing: {s.basis.upper()} basis of W, sensor {s.sensor}…", -1)
    trainer = DiscoveryTrainer(generator, s, progress)
    trainer.train(progress, cancel, on_update, strip_seconds, finish=finish)
    lib = trainer.library(model)
    lib.meta.update(run_meta(s, trainer, time.monotonic() - t0))
    if trainer.finished_early:
        lib.meta["finished_early"] = True  # stopped by the person before its budget ran out
    return lib
