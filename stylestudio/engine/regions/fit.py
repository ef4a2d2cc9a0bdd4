""""Fit to this face": a transfer's channel weights fitted to one target/reference pair.

The catalog's queries pick ``q`` from statistics averaged over many faces. On the default model
that leaves small or diffuse regions (nose, forehead, cheeks, skin, neck) changing faintly, and
what they do change leaks (``bench/locality.py``). Here ``q`` is fitted by gradient descent for
the pair at hand, over a generous starting query's channels, toward the ideal composite: the
start's result inside the region, the untouched target outside it (a band of ``margin`` around
the region is left free, as the benchmark does not count it either)::

    loss = mean_in (G(q) − G(q₀))² + β · mean_out ρ(G(q) − T)

``ρ`` is a Charbonnier (smooth L1) penalty: leaks are judged by mean absolute change. The fit
runs from two starts, the generous one and the region's own tuned query, and keeps the result
that leaks less for what it changes inside: the generous start reaches diffuse regions (skin,
neck) that the tuned query barely moves, but on hair it takes so much that the fit cannot pull
the leak back (8 pairs, ``bench/locality.py --fit``: hair out/in 0.257 from the generous start
alone, 0.093 from both; mean over the regions 0.140 → 0.107).

On diffuse regions (cheeks, forehead, skin) both starts barely change the inside, so what little
they change is mostly leak: the starts' own result is the wrong goal. When neither fit is local
enough (``local_enough``), a third fit aims at the reference's *colour* instead: the mean colour
of the target's region is pulled toward the mean colour of the same region on the reference (its
own cluster map, or the painted mask), over every style channel, with the same leak penalty::

    loss = γ · |mean_in G(q) − mean_region R|² + β · mean_out ρ(G(q) − T)

The most local of the fits is kept, as before. On 6 tuning pairs (seeds 30000+) this took cheeks
from out/in 0.167 to 0.076, forehead 0.141 → 0.115 and skin 0.130 → 0.058, with the inside changing
three times as much (the faces take the reference's skin tone); on the benchmark's 100 pairs every
region then meets both goals (mean out/in 0.069). The fit renders the generator's
preview at ``resolution`` and takes seconds on a CPU (about a hundred plain preview renders),
which is why it is the *full* fit the user asks for, not the default.

:data:`FAST` optimises the same losses more cheaply: on the 128-px preview (style layers of later
stages keep the start's weights), 8 steps of twice the size, from the one start whose unfitted
transfer leaks least (one no-grad render each, instead of fitting both), and a 20-step colour fit:
about ten plain renders. It is not the default, because the cheaper objective does not carry to
the full picture everywhere: on 4 tuning pairs the face-part boxes measure it about as local as
the default fit for eyes, mouth and hair, but the smooth regions' colour fit leaks two to three
times as much (skin out/in 0.126 against 0.048), and on some pairs the mouth does too. Every fit
takes the start's own look from its first step's render, so a start costs no render of its own.

:data:`QUICK`, the default of new transfers (:data:`NEW_TRANSFER_PRESET`), is :data:`FAST` without
its colour fit: about ten plain renders (about a second on two idle cores), and on the benchmark's
pairs more local than the unfitted query on every face-part box (eyes 0.109 → 0.075, nose 0.101 →
0.089, mouth 0.089 → 0.067, hair 0.273 → 0.248) and every cluster region (mean 0.168 → 0.129),
though not as local as the full fit on the smooth regions (docs/regional_transfer.md, "The default:
the quick fit"). :data:`PRESETS` are the fits a transfer can ask for by name (``TransferEdit.fit_preset``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from ..progress import Cancel, Progress, check_cancel
from .cluster_maps import resize_mask
from .masks import dilate
from .queries import QueryParams, blend_styles, query_layers


@dataclass(frozen=True)
class FitSettings:
    """The defaults are ``scripts/query_limit.py``'s best on the default model (β 1 beat β 4);
    :data:`FAST` is a cheaper fit, about ten times faster and less local (see its note)."""

    steps: int = 20
    beta: float = 1.0  #: weight of the leak outside against reaching the start inside
    lr: float = 0.05  #: Adam step on q (q lives in [0, 1])
    #: the preview the fit renders (``stop_resolution``; MobileStyleGAN's 128 is its 256-px preview):
    #: style layers of later stages are not rendered, so they keep the start's weights
    resolution: int = 128
    margin: float = 0.03  #: free band around the region, as a share of the picture's side
    #: the starting query whose channels may be used: generous, since the fit removes what leaks
    start: QueryParams = QueryParams("effect", tau=0.3)
    #: out/in at or below which the starts' fits are kept as they are; above it the colour fit is tried
    local_enough: float = 0.10
    colour_steps: int = 40  #: Adam steps of the colour fit
    colour_weight: float = 0.25  #: γ: reaching the reference's mean colour against the leak
    #: fit only the start whose unfitted transfer leaks least at the fit's preview (one cheap
    #: render each) instead of fitting every start and keeping the more local result
    one_start: bool = False


#: A fit at about ten plain preview renders (the default: about a hundred): the 128-px preview,
#: 8 steps of twice the size, one start chosen by its unfitted leak, a 20-step colour fit. Not the
#: editor's: on the face-part boxes it is about as local as the default for eyes, mouth and hair,
#: but on the smooth regions (cheeks, forehead, skin) and on some pairs' mouths it leaks far more
#: (docs/regional_transfer.md, "A faster fit").
FAST = FitSettings(steps=8, lr=0.1, resolution=64, colour_steps=20, one_start=True)

#: :data:`FAST` without its colour fit: the fit of new transfers. The colour fit is what made FAST
#: tint the mid-face for the nose (box out/in 0.217 with it, 0.089 without); without it every box and
#: cluster region measured more local than the unfitted query, at about ten plain renders.
QUICK = FitSettings(steps=8, lr=0.1, resolution=64, colour_steps=0, one_start=True)
#: the fits a transfer asks for by name: ``full`` is the original "Fit to this face" (what every
#: transfer saved with a fit before the presets was fitted with), ``quick`` the default of new ones
PRESETS: dict[str, FitSettings] = {"quick": QUICK, "full": FitSettings()}
NEW_TRANSFER_PRESET = "quick"  #: the fit a new transfer gets in the editor and the CLI


def region_at(mask: np.ndarray, size: int) -> np.ndarray:
    """Any-size region mask (bool or 0–1) → bool [size, size] (resized as soft masks are, then ≥ ½)."""
    m = torch.as_tensor(np.asarray(mask, np.float32))[None, None]
    return resize_mask(m, (size, size))[0, 0].numpy() >= 0.5


class _Pair:
    """One target/reference pair and region at the fit's preview resolution: what every start
    shares (the untouched render, the inside and the counted outside)."""

    def __init__(self, gen, target: Mapping[str, Tensor], reference: Mapping[str, Tensor],
                 region: np.ndarray, settings: FitSettings,
                 reference_region: np.ndarray | Callable[[], np.ndarray] | None = None,
                 step: Callable[[], None] | None = None) -> None:
        self.gen, self.target, self.reference, self.settings = gen, target, reference, settings
        #: called after every Adam step (progress and cancel of :func:`fit_query`)
        self.step = step or (lambda: None)
        self.stop = settings.resolution if settings.resolution < gen.resolution else None
        with torch.no_grad():
            self.plain = gen.synthesize(dict(target), stop_resolution=self.stop).image
        size = self.plain.shape[-1]
        inside_np = region_at(region, size)
        if not inside_np.any():
            raise InputError("the painted region is too small to fit to: paint a larger area")
        outside_np = ~dilate(inside_np, max(1, round(settings.margin * size)))
        self.inside = torch.from_numpy(inside_np).float()[None, None].to(self.plain)
        self.outside = torch.from_numpy(outside_np).float()[None, None].to(self.plain)
        self.n_in = self.inside.sum() * 3
        self.n_out = max(float(self.outside.sum()) * 3, 1.0)
        self._reference_region = reference_region
        self._reference_colour: Tensor | None = None

    @property
    def reference_colour(self) -> Tensor:
        """Mean RGB [1, 3] of the region on the reference's preview (its own region where given and
        present, else the target's: faces are aligned, so a painted mask means the same place). A
        callable region is asked for only here, when a colour fit runs."""
        if self._reference_colour is None:
            with torch.no_grad():
                image = self.gen.synthesize(dict(self.reference), stop_resolution=self.stop).image
            where = self.inside
            given = self._reference_region() if callable(self._reference_region) else self._reference_region
            if given is not None:
                own = region_at(given, image.shape[-1])
                if own.any():
                    where = torch.from_numpy(own).float()[None, None].to(image)
            self._reference_colour = (image * where).sum((2, 3)) / where.sum()
        return self._reference_colour

    def _leak_penalty(self, img: Tensor) -> Tensor:
        """β · mean Charbonnier change outside (leaks are judged by mean absolute change)."""
        return self.settings.beta * (((img - self.plain).square() + 1e-4).sqrt() * self.outside).sum() / self.n_out

    def render(self, q: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        return self.gen.synthesize(blend_styles(self.target, self.reference, q), stop_resolution=self.stop).image

    @torch.no_grad()
    def leak(self, q: Mapping[str, np.ndarray]) -> float:
        """Mean absolute change outside ÷ inside (the benchmark's out/in) of a transfer with ``q``."""
        change = (self.render(q) - self.plain).abs()
        inside = float((change * self.inside).sum() / self.n_in)
        outside = float((change * self.outside).sum() / self.n_out)
        return outside / inside if inside > 0 else float("inf")

    def fit(self, q0: Mapping[str, np.ndarray], goal: str = "start") -> dict[str, np.ndarray]:
        """Fit from ``q0``. ``goal="start"``: keep the start's inside, over the start's channels only;
        ``goal="colour"``: reach the reference's mean colour inside, over every channel of the layers."""
        if goal not in ("start", "colour"):
            raise ValueError(f"unknown fit goal {goal!r}")
        names = [n for n, v in q0.items() if np.any(v)] if goal == "start" else list(q0)
        out = {n: np.asarray(v, np.float32).copy() for n, v in q0.items()}
        if not names:
            return out
        allowed = {n: torch.as_tensor((np.asarray(q0[n]) > 0).astype(np.float32)).to(self.plain) if goal == "start"
                   else torch.ones(len(q0[n])).to(self.plain) for n in names}
        theta = {n: torch.as_tensor(np.asarray(q0[n], np.float32)).to(self.plain).clone().requires_grad_(True)
                 for n in names}

        def current() -> dict[str, Tensor]:
            return {n: theta[n].clamp(0, 1) * allowed[n] for n in names}

        steps = self.settings.steps
        if goal == "start":
            start: list[Tensor] = []  # the start's own look: the first step's render (q is q₀ there)

            def reach(img: Tensor) -> Tensor:
                if not start:
                    start.append(img.detach())
                return ((img - start[0]).square() * self.inside).sum() / self.n_in
        else:
            steps, colour, area = self.settings.colour_steps, self.reference_colour, self.inside.sum()

            def reach(img: Tensor) -> Tensor:
                mean_in = (img * self.inside).sum((2, 3)) / area
                return self.settings.colour_weight * (mean_in - colour).square().sum()
        opt = torch.optim.Adam(list(theta.values()), lr=self.settings.lr)
        # whole stages: the generator's memory-saving strips give the same picture but slow every
        # backward pass (MobileStyleGAN's 128-px stage runs in strips at the fit's resolution)
        with torch.enable_grad(), self.gen.whole_stages():
            for _ in range(steps):
                img = self.render(current())
                loss = reach(img) + self._leak_penalty(img)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.step()
        for n, v in current().items():
            out[n] = v.detach().cpu().numpy().astype(np.float32)
        return out


def fit_query(gen, target: Mapping[str, Tensor], reference: Mapping[str, Tensor], region: np.ndarray,
              q0: Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]],
              settings: FitSettings = FitSettings(),
              reference_region: np.ndarray | Callable[[], np.ndarray] | None = None,
              progress: Progress | None = None, cancel: Cancel = None) -> dict[str, np.ndarray]:
    """``q`` for this pair, fitted over the channels of ``q0`` (or of each of several starts), keeping
    the result that leaks least outside for what it changes inside (with ``settings.one_start`` only
    the start whose unfitted transfer leaks least is fitted). When even that one leaks more than
    ``settings.local_enough``, a colour fit from the last start joins the candidates. ``region``: bool
    mask of any size on the target (one that vanishes at the fit's resolution is an
    :class:`InputError`); ``reference_region``: the same region on the reference, where known (or a
    callable giving it, so it is only worked out when the colour fit runs). ``progress``/``cancel``:
    :mod:`stylestudio.engine.progress`, reported and checked after every step.

    Returns float32 rows in [0, 1] with the same layers as the start.
    """
    starts = [q0] if isinstance(q0, Mapping) else list(q0)
    if not starts:
        raise ValueError("fit_query needs at least one starting query")
    total = max(1, len(starts) * settings.steps + max(0, settings.colour_steps))  # the colour fit may not run
    done = [0]

    def step() -> None:
        check_cancel(cancel, "the fit was cancelled")
        done[0] += 1
        if progress is not None:
            progress("Fitting the transfer to this face", min(1.0, done[0] / total))

    check_cancel(cancel, "the fit was cancelled")
    pair = _Pair(gen, target, reference, region, settings, reference_region, step)
    colour_start = starts[-1]
    if settings.one_start and len(starts) > 1:
        starts = [min(starts, key=pair.leak)]
        total = max(1, settings.steps + max(0, settings.colour_steps))
    leaks = [(pair.leak(q), q) for q in (pair.fit(s) for s in starts)]
    best = min(leaks, key=lambda lq: lq[0])
    if best[0] <= settings.local_enough or settings.colour_steps <= 0:
        return best[1]
    coloured = pair.fit(colour_start, goal="colour")
    return min([best, (pair.leak(coloured), coloured)], key=lambda lq: lq[0])[1]


def fit_named_region(gen, cat, target: Mapping[str, Tensor], reference: Mapping[str, Tensor],
                     clusters, settings: FitSettings = FitSettings(),
                     also: QueryParams | None = None, progress: Progress | None = None,
                     cancel: Cancel = None) -> dict[str, np.ndarray]:
    """The fitted ``q`` of catalog ``clusters``, on the target's own cluster map (the editor's named
    regions and ``bench/locality.py --fit`` both go through here). ``also``: a second start, the
    region's own (tuned) query; the more local of the two fits is kept."""
    with torch.no_grad():
        labels = cat.cluster_map(gen, target, settings.resolution)[0].cpu().numpy()
    region = np.isin(labels, list(clusters))
    rows = cat.rows(clusters)
    if not region.any():  # e.g. ears under long hair: nothing of the region to take a look into
        return {n: np.zeros_like(np.asarray(v, np.float32)) for n, v in rows.items()}
    def on_reference() -> np.ndarray:
        with torch.no_grad():
            return np.isin(cat.cluster_map(gen, reference, settings.resolution)[0].cpu().numpy(), list(clusters))

    return fit_query(gen, target, reference, region, fit_starts(rows, cat.effect_rows(clusters), settings, also),
                     settings, reference_region=on_reference, progress=progress, cancel=cancel)


def fit_starts(rows: Mapping[str, np.ndarray], effects: Mapping[str, np.ndarray] | None, settings: FitSettings,
               also: QueryParams | None = None) -> list[dict[str, np.ndarray]]:
    """The starting queries of a fit: the generous ``settings.start`` and, when given and different,
    ``also``. A generous start reaches diffuse regions (skin, neck) that a tuned query barely
    moves; a tuned start keeps regions whose generous query leaks a lot (hair) as local as tuned."""
    params = [settings.start] + ([also] if also is not None and also != settings.start else [])
    return [query_layers(rows, p, effects) for p in params]
