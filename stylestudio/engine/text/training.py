"""Train text paths for a generator against a vision-language encoder (ContraCLIP and its ablations).

Written once against the :class:`~stylestudio.engine.generator.Generator` interface. Each step
samples faces, moves each along a random path by ε ∈ ±[0.1, 0.2]·(the codes' radius), renders the
pair at a reduced ``stop_resolution`` and scores the change of the image embedding against the
text directions (:mod:`.contraclip`). The generator and encoder stay frozen; only the paths learn.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import InputError
from ..distributed import any_rank, current_world
from ..generator import Generator
from ..progress import Cancel, Finish, Progress, check_cancel
from .contraclip import LOSSES, METHODS, LatentPaths, Poles, path_loss, targets
from .library import TextPath, TextPathLibrary

EPS_RANGE = (0.1, 0.2)  #: |ε| of a training step, as a fraction of the codes' radius
UNIT = 0.15  #: one slider unit, as a fraction of the radius (the middle of the training steps)


@dataclass(frozen=True)
class TrainSettings:
    method: str = "contraclip"
    loss: str = "contrastive"
    steps: int | None = None  #: None: until ``minutes`` run out
    minutes: float | None = None
    batch: int = 8
    lr: float = 1e-3
    psi: float = 0.7
    seed: int = 0
    dipoles: int = 4  #: RBF dipoles per latent path
    stop_resolution: int | None = None  #: None: the smallest stage at least as large as the encoder's input
    tau: float = 0.07
    rows: int | None = None  #: W+ rows 0…rows−1 the paths move (None: the first ~2/3, :func:`path_rows`)

    def check(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.loss not in LOSSES:
            raise InputError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.steps is None and self.minutes is None:
            raise InputError("give a number of steps or a time budget in minutes")
        if self.steps is not None and not 1 <= self.steps <= 10_000_000:
            raise InputError(f"steps must be between 1 and 10000000, got {self.steps}")
        if self.minutes is not None and not (math.isfinite(self.minutes) and 0 < self.minutes <= 100_000):
            raise InputError(f"minutes must be a positive number, got {self.minutes}")
        if not 1 <= self.batch <= 1024 or not 1 <= self.dipoles <= 64:
            raise InputError("batch must be 1…1024 and dipoles 1…64")
        if not (math.isfinite(self.lr) and 0 < self.lr < 10):
            raise InputError(f"learning rate must be in (0, 10), got {self.lr}")
        if self.rows is not None and not 1 <= self.rows <= 64:
            raise InputError(f"rows must be between 1 and the model's number of W+ rows, got {self.rows}")


def path_rows(gen: Generator, rows: int | None = None) -> int:
    """How many leading W+ rows the paths move: ``rows`` (the official code's ``--stylegan-layer`` + 1), or
    the first ~2/3 (ContraCLIP moves rows 0–11 of StyleGAN2-1024's 18). Fewer rows keep a path off the
    finer layers (colour, texture) when what it should change is shape."""
    if rows is None:
        return max(1, round(gen.num_ws * 2 / 3))
    if not 1 <= rows <= gen.num_ws:
        raise InputError(f"rows must be between 1 and {gen.num_ws} (the model's W+ rows), got {rows}")
    return rows


def pick_stop(gen: Generator, encoder_resolution: int) -> int | None:
    """The smallest stage whose image is at least the encoder's input size (None: the full image)."""
    for res in sorted({layer.resolution for layer in gen.style_layout}):
        if gen.preview_size(res) >= min(encoder_resolution, gen.resolution):
            return res if gen.preview_size(res) < gen.resolution else None
    return None


#: least distance between a dipole's unit-length poles (under MiniLM two sentences that differ by a full stop are 0.24 apart)
MIN_POLE_GAP = 1e-3


class PathTrainer:
    """Holds everything one training needs so the loop, the evaluation and the GUI's loss curve share it."""

    def __init__(self, gen: Generator, encoder: Any, pairs: Sequence[tuple[str, str, str]], settings: TrainSettings) -> None:
        settings.check()
        if not pairs:
            raise InputError("give at least one pair of sentences")
        self.gen, self.encoder, self.settings = gen, encoder, settings
        self.pairs = [TextPath(n, p, q) for n, p, q in pairs]
        self.device = gen.device
        # under torchrun every rank starts from the same paths and evaluation batch, then draws its
        # own training faces; gradients are averaged, so the ranks stay identical
        self.world = current_world(self.device)
        self.rng = torch.Generator().manual_seed(settings.seed)
        self.rows = path_rows(gen, settings.rows)
        self.dim = self.rows * gen.w_dim
        self.stop = (settings.stop_resolution if settings.stop_resolution is not None
                     else pick_stop(gen, int(getattr(encoder, "image_resolution", gen.resolution))))
        with torch.no_grad():
            pos = encoder.encode_text([p.positive for p in self.pairs])
            neg = encoder.encode_text([p.negative for p in self.pairs])
            self.poles = Poles.from_embeddings(pos.to(self.device), neg.to(self.device))
            self._check_poles_apart()
            x = self.codes(self.latents(256))
            self.radius = float(x.norm(dim=1).mean())
        self.paths = LatentPaths(len(self.pairs), self.dim, self.radius, settings.dipoles, settings.method,
                                 self.rng).to(self.device)
        # support vectors live at the codes' scale, so their rate is relative to it; γ and directions are not
        groups = [{"params": [p], "lr": settings.lr * (self.radius if n == "support" else 1.0)}
                  for n, p in self.paths.named_parameters()]
        self.optimizer = torch.optim.Adam(groups)
        self.losses: list[float] = []
        self.eval_batch = self.sample(max(settings.batch, 2 * len(self.pairs)))
        if self.world.distributed:
            self.rng.manual_seed(settings.seed * 1000 + 17 + self.world.rank)

    def _check_poles_apart(self) -> None:
        """A pair the encoder reads as one point has no direction between its poles (γ would be
        infinite and the loss constant): refuse it by name rather than train a path that does nothing."""
        gap = (self.poles.pos - self.poles.neg).norm(dim=-1)
        for path, d in zip(self.pairs, gap.tolist()):
            if not d > MIN_POLE_GAP:
                raise InputError(f"pair {path.name!r}: the encoder reads {path.positive[:40]!r} and "
                                 f"{path.negative[:40]!r} as the same (distance {d:.1e}); "
                                 "word the two sides apart")

    # -- sampling ---------------------------------------------------------------------------------
    def latents(self, n: int) -> Tensor:
        z = torch.randn(n, self.gen.z_dim, generator=self.rng).to(self.device)
        return self.gen.mapping(z, self.settings.psi)

    def codes(self, ws: Tensor) -> Tensor:
        return (ws[:, : self.rows] - self.gen.w_avg).reshape(ws.shape[0], -1)

    def sample(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        """(W+, path index, signed ε) for n faces."""
        with torch.no_grad():
            ws = self.latents(n)
        k = torch.randint(len(self.pairs), (n,), generator=self.rng)
        lo, hi = EPS_RANGE
        mag = (lo + (hi - lo) * torch.rand(n, generator=self.rng)) * self.radius
        sign = torch.randint(2, (n,), generator=self.rng) * 2 - 1
        return ws, k.to(self.device), (mag * sign).to(self.device)

    # -- one step ---------------------------------------------------------------------------------
    def render(self, ws: Tensor) -> Tensor:
        return self.gen.synthesize(self.gen.styles(ws), stop_resolution=self.stop).image

    def embed(self, ws: Tensor) -> Tensor:
        return F.normalize(self.encoder.encode_image(self.render(ws)), dim=-1)

    def loss_of(self, ws: Tensor, k: Tensor, eps: Tensor) -> Tensor:
        with torch.no_grad():
            phi0 = self.embed(ws)
        moved = self.paths.step(self.codes(ws), k, eps)
        ws1 = torch.cat([moved.reshape(ws.shape[0], self.rows, -1) + self.gen.w_avg, ws[:, self.rows :]], dim=1)
        phi1 = self.embed(ws1)
        target = targets(self.settings.method, phi0, self.poles, torch.sign(eps))
        return path_loss(phi1 - phi0, target, k, self.settings.loss, self.settings.tau)

    def evaluate(self) -> float:
        """The loss on a fixed batch (the same faces, paths and ε every time): comparable across steps."""
        with torch.no_grad(), self.gen.whole_stages():
            return float(self.loss_of(*self.eval_batch))

    def step(self) -> float:
        with self.gen.whole_stages():
            loss = self.loss_of(*self.sample(self.settings.batch))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        if self.world.distributed:
            import torch.distributed as dist

            for p in self.paths.parameters():
                dist.all_reduce(p.grad)
                p.grad /= self.world.size
        self.optimizer.step()
        self.losses.append(float(loss.detach()))
        return self.losses[-1]

    def run(self, progress: Progress, cancel: Cancel,
            on_update: Callable[[int, float], None] | None = None, finish: Finish = None) -> TextPathLibrary:
        """Train until the steps or the time budget (whichever first), ``finish`` (after a step at
        least; the paths learnt so far are returned) or cancel."""
        s = self.settings
        start = time.monotonic()
        first = self.evaluate()
        budget = s.minutes * 60 if s.minutes is not None else math.inf
        i, early = 0, False
        while s.steps is None or i < s.steps:
            time_up = time.monotonic() - start >= budget
            wanted = i > 0 and finish is not None and finish()
            if any_rank(time_up or wanted, self.world):  # every rank stops at the same step
                early = wanted and not time_up
                break
            check_cancel(cancel)
            loss = self.step()
            i += 1
            done = max(i / s.steps if s.steps else 0.0, (time.monotonic() - start) / budget)
            progress(f"Text paths: step {i}, loss {loss:.4f}", min(done, 0.999))
            if on_update is not None:
                on_update(i, loss)
        last = self.evaluate()
        seconds = time.monotonic() - start
        curve = self.losses if len(self.losses) <= 500 else self.losses[:: math.ceil(len(self.losses) / 500)]
        meta = {"method": s.method, "loss": s.loss, "steps": i, "seconds": round(seconds, 2), "batch": s.batch,
                "lr": s.lr, "psi": s.psi, "seed": s.seed, "stop_resolution": self.stop, "tau": s.tau,
                "eval_loss_start": first, "eval_loss_end": last, "loss_curve": [round(v, 5) for v in curve]}
        if early:
            meta["finished_early"] = True  # stopped by the person before its budget ran out
        progress(f"Text paths: {i} steps in {seconds:.0f} s, loss {first:.4f} → {last:.4f}", 1.0)
        return TextPathLibrary(model="", paths=self.pairs, latent=self.paths.cpu().eval().requires_grad_(False),
                               rows=self.rows, w_dim=self.gen.w_dim, radius=self.radius, unit=UNIT * self.radius,
                               encoder=str(getattr(self.encoder, "name", "?")), meta=meta)
