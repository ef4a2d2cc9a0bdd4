"""Inverting an aligned face into a generator: estimate → W+ optimisation → optional PTI.

Three stages, each switchable, all generator-agnostic (written against :class:`Generator`):

1. **Estimate** (seconds): the model's trained encoder (:mod:`.encoder`, when one is given)
   predicts a ``w`` from the photo in one VGG pass; without one, a few dozen random faces are
   scored against the photo on cheap coarse previews (``stop_resolution``) and the best is kept.
   Then one shared ``w`` is optimised on those previews. This fixes pose, face shape and colours,
   so the user sees their face almost at once.
2. **W+ optimisation**: ``ws = w + δ`` at full resolution, loss = LPIPS-VGG + pixel MSE (both on
   a ``lpips_size`` downsample) + a penalty on the per-row offsets δ. The penalty (e4e's idea)
   keeps the rows near one ``w`` of the mapping's range, where the attribute directions found on
   generated faces still apply: an unconstrained W+ code reconstructs better but edits worse.
3. **PTI** (Roich et al. 2021): keep the W+ pivot fixed and fine-tune the synthesis weights (not
   the mapping or the style affines, so StyleSpace edits mean the same) until the identity
   matches. The result is a set of weight *deltas* kept with the photo.

Long-running by nature, so :func:`iter_inversion` is a generator of :class:`InversionUpdate`
(progress, current latent, and every few steps the current reconstruction, which the GUI shows);
:func:`invert` drives it with a progress callback and a cancel check.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import numpy as np
import torch
from torch import Tensor

from ...errors import Cancelled, InputError
from ..generator import Generator, flatten_styles
from ..perceptual import LPIPS, load_lpips
from .encoder import FeatureEncoder, downsample

from ..progress import Progress  # noqa: E402  (the engine's one convention)


@dataclass(frozen=True)
class InversionSettings:
    """What to run. Defaults: a minute of wall clock for the whole inversion (``time_budget``), PTI only
    for a face the W+ stage cannot bring near (``pti_far_lpips``).

    The measurements behind each default are in docs/photos.md ("Why the settings are what they are").
    """

    estimate: bool = True
    #: start from the encoder's prediction when the caller passes one (see ``model_encoder``)
    use_encoder: bool = True
    estimate_candidates: int = 16  #: random faces scored to pick the starting point (no encoder)
    encoder_candidates: int = 0  #: random faces still scored beside the encoder's prediction
    estimate_steps: int = 20  #: W-space steps on coarse previews
    estimate_resolution: int = 64  #: ``stop_resolution`` used by the estimate (cheap)
    estimate_lr: float = 0.08  #: Adam step, in units of the mapping's per-dimension std of w

    optimise: bool = True
    #: the most W+ steps: on two CPU cores the default budget ends the stage first (the default
    #: model takes 0.65–1 s a step), on a faster machine these steps do
    steps: int = 80
    #: seconds of wall clock for the whole inversion (what the caller spent aligning, the estimate,
    #: W+ and PTI; the learning-rate schedules follow the clock). None or 0: unlimited
    time_budget: float | None = 60.0
    #: share of ``time_budget`` left for PTI when it is on (the rest: estimate and W+)
    pti_share: float = 0.3
    #: the estimate stops at this share of ``time_budget`` (it takes ~3 s of a minute)
    estimate_share: float = 0.2
    deadline: float | None = None  #: seconds for estimate + W+ together (the benchmark's protocol)
    lr: float = 0.1  #: Adam step in units of the mapping's per-dimension std of w
    #: most W+ steps render only up to this resolution, the last ``full_steps`` at full size
    #: (None: all full)
    optimise_resolution: int | None = None
    full_steps: int = 5
    delta_weight: float = 0.05  #: penalty on W+ rows' offsets from the shared w (editability)
    #: the penalty at the first W+ step, falling geometrically to ``delta_weight`` over
    #: ``delta_weight_fall`` of the stage: a nearly single-w fit first, per-row freedom at the end
    #: (None: constant ``delta_weight``)
    delta_weight_start: float | None = 32.0
    delta_weight_fall: float = 1.0
    #: a face far from the model's range (first full-size render at LPIPS ``far_lpips[1]`` or
    #: more) lets the penalty fall over ``far_fall`` of the stage instead; linear in between,
    #: untouched below ``far_lpips[0]`` (None: off)
    far_lpips: tuple[float, float] | None = (0.30, 0.40)
    far_fall: float = 0.5

    pti: bool = False
    #: PTI joins by itself for a face W+ cannot bring near (LPIPS still at this or worse when W+
    #: is ``pti_far_at`` of the way through) and takes ``pti_share`` of the budget; a face W+ fits
    #: keeps the whole budget for W+ (None: only ``pti`` decides)
    pti_far_lpips: float | None = 0.21
    pti_far_at: float = 0.3
    pti_steps: int = 30
    pti_time_budget: float | None = None
    pti_lr: float = 1e-4  #: peak, warmed up over the first 20 % (a cold Adam jolts every weight at once)
    #: PTI also fits the full-resolution pixels with this weight, so finer layers cannot add detail
    #: that the ``lpips_size`` losses do not see
    pti_full_pixel_weight: float = 1.0

    lpips_size: int = 256  #: losses are computed on this downsample of the render
    pixel_weight: float = 1.0
    preview_every: int = 5  #: attach the reconstruction to every k-th update
    seed: int = 0
    #: what budgets and ``elapsed`` are measured with; benchmarks on a shared machine may pass a
    #: CPU clock (process time ÷ threads) so other people's work does not eat the budget
    clock: Callable[[], float] = field(default=time.perf_counter, compare=False, repr=False)


#: the PTI choices the CLI (``--pti``) and the batch dialog offer: (key, what the dialog says)
PTI_CHOICES = (("auto", "Faces far from the model"), ("on", "Every face"), ("off", "Never"))


def with_pti(settings: InversionSettings, choice: str) -> InversionSettings:
    """``settings`` with one of :data:`PTI_CHOICES`: ``auto`` keeps the default far-face rule (PTI only
    when ``pti_far_lpips`` says the face is far), ``on`` tunes every face, ``off`` none."""
    if choice == "on":
        return dataclasses.replace(settings, pti=True)
    if choice == "off":
        return dataclasses.replace(settings, pti=False, pti_far_lpips=None)
    if choice == "auto":
        return dataclasses.replace(settings, pti=False, pti_far_lpips=InversionSettings.pti_far_lpips)
    raise ValueError(f"PTI choice {choice!r}: expected one of {', '.join(k for k, _ in PTI_CHOICES)}")


def pti_choice(settings: InversionSettings) -> str:
    """Which of :data:`PTI_CHOICES` ``settings`` amount to (the inverse of :func:`with_pti`)."""
    return "on" if settings.pti else "auto" if settings.pti_far_lpips is not None else "off"


@dataclass
class InversionUpdate:
    """One step of an inversion, as reported to the caller."""

    stage: str  #: ``"estimate"``, ``"optimise"``, ``"pti"`` or ``"done"``
    step: int
    total: int
    fraction: float  #: overall progress 0..1
    loss: float
    lpips: float
    elapsed: float  #: seconds since the inversion started
    wplus: Tensor  #: [1, num_ws, w_dim], detached, CPU
    image: Tensor | None = None  #: current reconstruction in [-1, 1] (a coarse preview in the estimate)
    result: "InversionResult | None" = None  #: only on the final ``"done"`` update
    remaining: float | None = None  #: seconds left of ``time_budget`` (None: no budget)


@dataclass
class InversionResult:
    wplus: np.ndarray  #: [num_ws, w_dim] float32
    weight_deltas: dict[str, np.ndarray] | None  #: PTI: parameter name → (tuned − stored), float32
    history: list[dict] = field(default_factory=list)  #: per step: stage, step, seconds, loss, lpips
    seconds: float = 0.0
    #: where the estimate started: "encoder", "average face", "random face", "given" or "" (no estimate)
    origin: str = ""


# ---------------------------------------------------------------------------------------------
# helpers


def to_tensor_image(image: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """HxWx3 uint8 → [1, 3, H, W] float in [-1, 1]."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError("expected an HxWx3 uint8 RGB image")
    t = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).to(device).permute(2, 0, 1)[None].float()
    return t / 127.5 - 1.0


@torch.no_grad()
def w_statistics(gen: Generator, samples: int = 2000, seed: int = 0) -> tuple[Tensor, float]:
    """(mean w, mean per-dimension std of w) of the mapping: the natural units of W."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, gen.z_dim, generator=g).to(gen.device)
    w = torch.cat([gen.map_z(z[i:i + 500]) for i in range(0, samples, 500)])
    return gen.w_avg.detach().clone(), float(w.std(0).mean())


def synthesis_parameters(gen: Generator) -> list[str]:
    """Names of the parameters that act only inside synthesis (not the mapping, not style affines).

    Found generically: whatever receives a gradient from ``map_z`` or ``styles`` is excluded, so
    PTI never changes what a W+ code means in StyleSpace and every style-space edit stays valid.
    """
    named = dict(gen.named_parameters())
    flags = {n: p.requires_grad for n, p in named.items()}
    try:
        for p in named.values():
            p.requires_grad_(True)
        with torch.enable_grad():
            ws = gen.w_avg.detach()[None, None].expand(1, gen.num_ws, -1).clone()
            probe = flatten_styles(gen.styles(ws)).sum()
            probe = probe + gen.map_z(torch.zeros(1, gen.z_dim, device=gen.device)).sum()
            grads = torch.autograd.grad(probe, list(named.values()), allow_unused=True)
    finally:
        for n, p in named.items():
            p.requires_grad_(flags[n])
    return [n for (n, _), g in zip(named.items(), grads) if g is None]


def apply_weight_deltas(gen: Generator, deltas: Mapping[str, np.ndarray | Tensor]) -> Generator:
    """A copy of ``gen`` whose named parameters are shifted by ``deltas`` (PTI weights)."""
    tuned = copy.deepcopy(gen)
    params = dict(tuned.named_parameters())
    with torch.no_grad():
        for name, d in deltas.items():
            p = params.get(name)
            # a copy: a document's arrays are immutable (torch warns on sharing read-only memory)
            d = torch.tensor(np.asarray(d)) if not isinstance(d, Tensor) else d
            if p is not None and d.numel() == p.numel() == 1:
                d = d.reshape(p.shape)  # scalars come back from .npy files as shape (1,)
            if p is None or tuple(p.shape) != tuple(d.shape):
                raise InputError(f"the photo's fine-tuned weights do not fit this model ({name})")
            p.add_(d.to(p.device, p.dtype))
    return tuned


def whole_stages(gen: Generator):
    """Run synthesis stages whole while gradients flow (the generator's own contract hook)."""
    return gen.whole_stages()


class _Losses:
    """LPIPS + pixel loss against one target, with the target's features computed once."""

    def __init__(self, target: Tensor, lpips: LPIPS, size: int, pixel_weight: float) -> None:
        self.size = size
        self.lpips = lpips
        self.pixel_weight = pixel_weight
        self.target = downsample(target, size)
        with torch.no_grad():
            self.feats = lpips.features(self.target)

    def __call__(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """(total loss per image [N], LPIPS per image [N])."""
        small = downsample(image, self.size)
        lp = self.lpips.distance_to_features(small, [f.expand(small.shape[0], -1, -1, -1) for f in self.feats])
        mse = (small - self.target).square().mean((1, 2, 3))
        return lp + self.pixel_weight * mse, lp


def _penalty_fall(settings: InversionSettings, first_lpips: float) -> float:
    """Share of the W+ stage over which the offset penalty falls, given the LPIPS of the
    estimate's first full-size render (see ``far_lpips``)."""
    fall = settings.delta_weight_fall
    if settings.far_lpips is None:
        return fall
    lo, hi = settings.far_lpips
    far = 1.0 if first_lpips >= hi else 0.0 if first_lpips <= lo else (first_lpips - lo) / (hi - lo)
    return fall + far * (min(fall, settings.far_fall) - fall)


def _far_calls_pti(settings: InversionSettings, lpips_now: float) -> bool:
    """Whether PTI joins for a face W+ has brought only to ``lpips_now`` (see ``pti_far_lpips``)."""
    return settings.pti_far_lpips is not None and settings.pti_steps > 0 and lpips_now >= settings.pti_far_lpips


def _delta_weight(settings: InversionSettings, t: float, fall: float) -> float:
    """The W+ offset penalty at progress ``t`` (0..1) of the W+ stage, falling over ``fall``."""
    start, end = settings.delta_weight_start, settings.delta_weight
    if start is None or start <= 0 or end <= 0:
        return end
    return start * (end / start) ** min(1.0, max(0.0, t / max(fall, 1e-6)))


def _schedule(t: float, rampup: float = 0.05, rampdown: float = 0.3) -> float:
    """NVlabs projector learning-rate shape: short warm-up, cosine ramp-down at the end."""
    r = min(1.0, (1.0 - t) / rampdown)
    r = 0.5 - 0.5 * math.cos(r * math.pi)
    return r * min(1.0, t / rampup) if rampup > 0 else r


@torch.no_grad()
def _candidates(gen: Generator, w_avg: Tensor, target: Tensor, lpips: LPIPS, settings: InversionSettings,
                encoder: FeatureEncoder | None) -> tuple[Tensor, list[str]]:
    """The estimate's starting points [K, w_dim] and what each is: the encoder's prediction (when
    there is an encoder), the average face, then random faces at ψ 0.7 (``estimate_candidates``,
    or ``encoder_candidates`` with an encoder)."""
    cands, kinds = [w_avg[None]], ["average face"]
    if encoder is not None:
        cands.insert(0, torch.from_numpy(encoder.predict_images(target, lpips)).to(w_avg.device, w_avg.dtype))
        kinds.insert(0, "encoder")
    n = settings.estimate_candidates if encoder is None else settings.encoder_candidates
    if n > 0:
        g = torch.Generator().manual_seed(settings.seed)
        z = torch.randn(n, gen.z_dim, generator=g).to(w_avg.device)
        cands.append(w_avg.lerp(gen.map_z(z), 0.7))
        kinds += ["random face"] * n
    return torch.cat(cands), kinds


# ---------------------------------------------------------------------------------------------
# the stages


def iter_inversion(gen: Generator, target: np.ndarray, settings: InversionSettings = InversionSettings(),
                   lpips: LPIPS | None = None, init_wplus: np.ndarray | None = None,
                   encoder: FeatureEncoder | None = None, spent: float = 0.0) -> Iterator[InversionUpdate]:
    """Invert the aligned face ``target`` (HxWx3 uint8 at the model's resolution).

    Yields an update after every step; the last one has ``stage == "done"`` and ``result``.
    Stopping the iteration early is how a caller cancels. ``init_wplus`` replaces the estimate.
    ``encoder``: the model's trained encoder (``model_encoder(resources)``), used by the estimate
    unless ``settings.use_encoder`` is off; None: random faces only. ``spent``: seconds of
    ``settings.time_budget`` the caller already used (finding and aligning the face).
    """
    if encoder is not None and encoder.w_dim != gen.w_dim:
        raise InputError(f"the encoder predicts {encoder.w_dim}-d codes, this model's W is {gen.w_dim}-d")
    with whole_stages(gen):
        yield from _stages(gen, target, settings, lpips, init_wplus,
                           encoder if settings.use_encoder else None, spent)


@torch.enable_grad()  # as a decorator it applies around each step only, not to the caller between yields
def _stages(gen: Generator, target: np.ndarray, settings: InversionSettings, lpips: LPIPS | None,
            init_wplus: np.ndarray | None, encoder: FeatureEncoder | None,
            spent: float = 0.0) -> Iterator[InversionUpdate]:
    if target.shape[:2] != (gen.resolution, gen.resolution):
        raise InputError(f"target is {target.shape[1]}×{target.shape[0]}, the model needs "
                         f"{gen.resolution}×{gen.resolution} (align the face first)")
    clock = settings.clock
    t0 = clock() - max(0.0, spent)
    # the whole inversion's budget: the estimate may use up to ``estimate_share`` of it, PTI (when
    # on) gets the last ``pti_share``, W+ what lies between; each stage keeps the time of a final
    # render in hand (the result is rendered once more after the last stage)
    total = settings.time_budget if settings.time_budget and math.isfinite(settings.time_budget) else None
    end = None if total is None else t0 + total
    pti_on = settings.pti and settings.pti_steps > 0
    dev = gen.device
    lpips = lpips or load_lpips(dev, size=None)
    target_t = to_tensor_image(target, dev)
    w_avg, w_std = w_statistics(gen, seed=settings.seed)
    size = min(settings.lpips_size, gen.resolution)
    history: list[dict] = []

    # the three stages' step counts decide the progress bar's shares
    n_est = (settings.estimate_steps + 1) if settings.estimate else 0
    n_opt = settings.steps if settings.optimise else 0
    # PTI's share is added when a far face calls it in
    costs = [n_est * 0.15, n_opt * 1.0, settings.pti_steps * 1.2 if pti_on else 0.0]
    shown = [0.0]  # the progress bar never moves back (it would when PTI's share is added)

    def frac(stage: int, done: float) -> float:
        shown[0] = max(shown[0], min(1.0, (sum(costs[:stage]) + costs[stage] * done) / max(sum(costs), 1e-9)))
        return shown[0]

    def update(stage: str, step: int, total: int, f: float, loss: Tensor, lp: Tensor, ws: Tensor,
               image: Tensor | None) -> InversionUpdate:
        rec = {"stage": stage, "step": step, "seconds": clock() - t0,
               "loss": float(loss.detach().mean()), "lpips": float(lp.detach().mean())}
        history.append(rec)
        return InversionUpdate(stage, step, total, f, rec["loss"], rec["lpips"], rec["seconds"],
                               ws.detach().cpu().clone(), None if image is None else image.detach().cpu(),
                               remaining=None if end is None else max(0.0, end - clock()))

    # ---- 1. estimate ---------------------------------------------------------------------------
    origin = ""
    if init_wplus is not None:
        origin = "given"
        ws0 = torch.as_tensor(np.asarray(init_wplus, np.float32), device=dev).reshape(1, gen.num_ws, gen.w_dim)
        w0 = ws0.mean(1, keepdim=True)
        delta0 = ws0 - w0
    else:
        w0 = w_avg[None, None].clone()
        delta0 = torch.zeros(1, gen.num_ws, gen.w_dim, device=dev)
    if settings.estimate and init_wplus is None:
        res = settings.estimate_resolution
        with torch.no_grad():
            probe = gen.synthesize(gen.styles(gen.broadcast_w(w0[:, 0])), stop_resolution=res).image
        est_losses = _Losses(target_t, lpips, min(probe.shape[-1], size), settings.pixel_weight)
        cands, kinds = _candidates(gen, w_avg, target_t, lpips, settings, encoder)
        with torch.no_grad():
            scores, previews = [], []
            for i in range(0, cands.shape[0], 8):
                img = gen.synthesize(gen.styles(gen.broadcast_w(cands[i:i + 8])), stop_resolution=res).image
                scores.append(est_losses(img)[0])
                previews.append(img)
            scores_t = torch.cat(scores)
            k = int(scores_t.argmin())
            best = cands[k]
            origin = kinds[k]
            first_look = torch.cat(previews)[k:k + 1]  # shown at once: "a first result within seconds"
        w = best[None, None].clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=settings.estimate_lr * w_std, betas=(0.9, 0.999))
        yield update("estimate", 0, n_est, frac(0, 1 / max(n_est, 1)), scores_t.min(), scores_t.min(),
                     gen.broadcast_w(best[None]), first_look)
        est_end = None if total is None else t0 + settings.estimate_share * total
        last = 0.0
        for step in range(settings.estimate_steps):
            began = clock()
            if est_end is not None and began + last > est_end:
                break
            for group in opt.param_groups:
                group["lr"] = settings.estimate_lr * w_std * _schedule(step / settings.estimate_steps)
            img = gen.synthesize(gen.styles(w.expand(1, gen.num_ws, -1)), stop_resolution=res).image
            loss, lp = est_losses(img)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            show = img if (step + 1) % settings.preview_every == 0 or step + 1 == settings.estimate_steps else None
            last = clock() - began
            yield update("estimate", step + 1, n_est, frac(0, (step + 2) / n_est), loss, lp,
                         w.expand(1, gen.num_ws, -1), show)
        w0 = w.detach().clone()

    losses = _Losses(target_t, lpips, size, settings.pixel_weight)

    # ---- 2. W+ optimisation -------------------------------------------------------------------
    w = w0.clone().requires_grad_(settings.optimise)
    delta = delta0.clone().requires_grad_(settings.optimise)
    if settings.optimise and settings.steps > 0:
        opt = torch.optim.Adam([w, delta], lr=settings.lr * w_std, betas=(0.9, 0.999))
        full_share = min(1.0, settings.full_steps / settings.steps) * 2.0  # full steps cost ~2× a preview step
        start = clock()

        def wplus_budget(pti: bool) -> float | None:
            """Seconds for W+: to the budget's end, less PTI's share when PTI follows."""
            budget = None if end is None else max(1e-3, end - (settings.pti_share * total if pti else 0.0) - start)
            if settings.deadline is not None:
                left = max(1e-3, settings.deadline - (start - t0))
                budget = left if budget is None else min(budget, left)
            return budget

        budget = wplus_budget(pti_on)
        last = 0.0  # the previous step's seconds: a step that would end past the budget is not begun
        fall = settings.delta_weight_fall  # decided at the first step, from how far the estimate is
        judged = False  # whether the far-face rule has looked (see ``pti_far_lpips``)
        tail = 0.0 if pti_on else 0.5  # the final render costs about half a step
        best_loss, best_ws = math.inf, None  # the best code seen is the result, not the last one
        for step in range(settings.steps):
            began = clock()
            t = step / settings.steps
            if budget:
                t = max(t, (began - start) / budget)
                if began - start + last * (1.0 + tail) > budget:
                    break
            for group in opt.param_groups:
                group["lr"] = settings.lr * w_std * _schedule(t)
            ws = w + delta
            full = (settings.optimise_resolution is None or step >= settings.steps - settings.full_steps
                    or (budget is not None and t >= 1.0 - full_share))
            img = gen.synthesize(gen.styles(ws), stop_resolution=None if full else settings.optimise_resolution).image
            loss, lp = losses(img)
            if step == 0:
                fall = _penalty_fall(settings, float(lp.detach().mean()))
            if not pti_on and not judged and full and t >= settings.pti_far_at:  # previews' LPIPS do not compare
                judged = True  # one look, part of the way through: is W+ getting there?
                if _far_calls_pti(settings, float(lp.detach().mean())):
                    pti_on, tail = True, 0.0
                    costs[2] = settings.pti_steps * 1.2
                    budget = wplus_budget(True)
            reg = _delta_weight(settings, t, fall) * (delta / w_std).square().mean()
            if full and float(loss.detach().sum()) < best_loss:  # previews' losses do not compare
                best_loss, best_ws = float(loss.detach().sum()), ws.detach().clone()
            opt.zero_grad(set_to_none=True)
            (loss.sum() + reg).backward()
            opt.step()
            show = img if (step + 1) % settings.preview_every == 0 else None
            last = clock() - began
            yield update("optimise", step + 1, n_opt, frac(1, max(t, (step + 1) / settings.steps)),
                         loss, lp, ws, show)
        ws = best_ws if best_ws is not None else (w + delta).detach()
    else:
        ws = (w + delta).detach()

    # ---- 3. PTI -------------------------------------------------------------------------------
    deltas: dict[str, np.ndarray] | None = None
    if pti_on:
        names = synthesis_parameters(gen)
        tuned = copy.deepcopy(gen)
        named = dict(tuned.named_parameters())
        params = [named[n].requires_grad_(True) for n in names]
        opt = torch.optim.Adam(params, lr=settings.pti_lr)
        start = clock()
        styles = {k: v.detach() for k, v in gen.styles(ws).items()}
        # the weights that scored best so far (the model's own at first): a pivot that already fits
        # well gains little, and a step that overshoots must not make the result worse than W+ alone
        best_loss, best = math.inf, None
        last = 0.0
        pti_budget = settings.pti_time_budget or None
        if end is not None:
            pti_budget = max(1e-3, min(pti_budget or math.inf, end - start))
        for step in range(settings.pti_steps):
            began = clock()
            t = step / settings.pti_steps
            if pti_budget:
                t = max(t, (began - start) / pti_budget)
                if began - start + last * 1.5 > pti_budget:
                    break
            for group in opt.param_groups:
                group["lr"] = settings.pti_lr * _schedule(t, rampup=0.2, rampdown=0.2)
            img = tuned.synthesize(styles).image
            loss, lp = losses(img)
            if settings.pti_full_pixel_weight:
                loss = loss + settings.pti_full_pixel_weight * ((img - target_t) ** 2).flatten(1).mean(1)
            if float(loss.detach().sum()) < best_loss:
                best_loss, best = float(loss.detach().sum()), [p.detach().clone() for p in params]
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            show = img if (step + 1) % settings.preview_every == 0 else None
            last = clock() - began
            yield update("pti", step + 1, settings.pti_steps, frac(2, max(t, (step + 1) / settings.pti_steps)), loss, lp, ws, show)
        if best is not None:
            with torch.no_grad():
                for p, b in zip(params, best):
                    p.copy_(b)
        orig = dict(gen.named_parameters())
        deltas = {n: (named[n].detach() - orig[n].detach()).cpu().numpy().astype(np.float32) for n in names}
        del tuned

    with torch.no_grad():
        final_gen = gen if deltas is None else apply_weight_deltas(gen, deltas)
        img = final_gen.synthesize(final_gen.styles(ws)).image
        loss, lp = losses(img)
    result = InversionResult(ws[0].cpu().numpy().astype(np.float32), deltas, history,
                             clock() - t0, origin)
    final = update("done", 1, 1, 1.0, loss, lp, ws, img)
    final.result = result
    yield final


def time_left(update: InversionUpdate) -> str:
    """``", 42 s left"`` for a progress line; empty without a budget."""
    return "" if update.remaining is None else f", {update.remaining:.0f} s left"


def invert(gen: Generator, target: np.ndarray, settings: InversionSettings = InversionSettings(),
           progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
           on_update: Callable[[InversionUpdate], None] | None = None,
           lpips: LPIPS | None = None, encoder: FeatureEncoder | None = None, spent: float = 0.0) -> InversionResult:
    """Run :func:`iter_inversion` to the end; ``cancelled()`` returning true raises :class:`Cancelled`."""
    names = {"estimate": "first estimate", "optimise": "refining the latent", "pti": "fine-tuning for identity",
             "done": "done"}
    for u in iter_inversion(gen, target, settings, lpips, encoder=encoder, spent=spent):
        if on_update is not None:
            on_update(u)
        if progress is not None:
            progress(f"{names[u.stage]} ({u.step}/{u.total}, LPIPS {u.lpips:.3f}{time_left(u)})", u.fraction)
        if u.result is not None:
            return u.result
        if cancelled is not None and cancelled():
            raise Cancelled("inversion cancelled")
    raise RuntimeError("inversion ended without a result")  # unreachable: the iterator always finishes
