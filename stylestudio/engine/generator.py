"""The one interface every style-based generator implements.

Every edit in StyleStudio (sliders, regional transfer, discovered directions, inversion) is
written once against :class:`Generator`. A generator maps z → W+ (``mapping``), W+ → StyleSpace
(``styles``) and StyleSpace → image (``synthesize``). Edits happen in StyleSpace because it is
the most disentangled space of a style-based generator and every architecture has one.

Synthesis is a sequence of *stages* (the constant/first conv, then one stage per resolution
block). A stage consumes a fixed set of style layers, so when an edit only touches late style
layers the activations entering the first touched stage can be reused from a previous render
(``start`` + ``cache``). ``stop_resolution`` ends synthesis early and returns the coarse image
of that stage, which is what interactive previews use.
"""
from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

#: Per-layer style vectors, ordered as ``Generator.style_layout``; each value is [N, channels].
Styles = "OrderedDict[str, Tensor]"


# ---- constructor-argument checks ------------------------------------------------------------------
# Model files (foreign checkpoints, a hand-edited ``model.json``) decide these arguments, so every
# generator checks them before allocating anything: types, signs and upper bounds that keep a
# 400-byte file from asking for gigabytes.

#: the largest latent width accepted (released StyleGAN2 models use 512)
MAX_LATENT_DIM = 2048
#: the largest channel count of one layer (released StyleGAN2 models use 512)
MAX_CHANNELS = 4096
#: the largest output resolution accepted
MAX_RESOLUTION = 4096
#: the most mapping-network layers accepted (released models use 2..8)
MAX_MAPPING_LAYERS = 32


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in ``low..high``; ValueError naming ``name`` otherwise (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, got {_short(value)}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {int(value)}")
    return int(value)


def check_float(name: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite float (``positive``: > 0); ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {_short(value)}")
    out = float(value)
    if not math.isfinite(out) or (positive and out <= 0):
        raise ValueError(f"{name} must be a finite{' positive' if positive else ''} number, got {out}")
    return out


def check_resolution(name: str, value: Any, low: int = 4, high: int = MAX_RESOLUTION) -> int:
    """A power-of-two resolution in ``low..high``."""
    res = check_int(name, value, low, high)
    if res & (res - 1):
        raise ValueError(f"{name} must be a power of two, got {res}")
    return res


@dataclass(frozen=True)
class StyleLayer:
    """One style input of the synthesis network (one affine / modulation)."""

    name: str  #: stable identifier, e.g. ``"b64.conv1"``
    channels: int  #: length of the style vector
    resolution: int  #: spatial resolution of the activations it modulates
    w_index: int  #: which W+ row feeds it
    stage: int  #: index of the synthesis stage that consumes it
    kind: str = "conv"  #: ``"conv"`` (feature conv, modulates activations) or ``"rgb"`` (output conv)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NOISE_MODES = ("const", "none", "random")


class UnknownTapError(KeyError, ValueError):
    """A tap name the generator does not have (the same exception from every generator; it is a
    KeyError and a ValueError so callers written against either keep working)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


@dataclass
class SynthesisResult:
    """What ``Generator.synthesize`` returns."""

    image: Tensor  #: [N, 3, H, W], RGB, roughly in [-1, 1], not clamped
    features: dict[str, Tensor] = field(default_factory=dict)  #: requested taps
    #: state entering each stage, keyed by stage index; pass back as ``cache`` with ``start``
    cache: dict[int, Any] = field(default_factory=dict)


class Generator(nn.Module, ABC):
    """Abstract style-based generator.

    Subclasses set ``z_dim``, ``w_dim``, ``num_ws``, ``resolution``, register a ``w_avg`` buffer
    of shape [w_dim], and build ``style_layout`` (a tuple of :class:`StyleLayer`) and
    ``stage_names`` (one name per synthesis stage, e.g. ``"b4"``, ``"b8"``...).
    """

    arch: str = ""  #: registry key of the architecture (``"stylegan2"``, ``"mobilestylegan"``)
    z_dim: int
    w_dim: int
    num_ws: int
    resolution: int
    w_avg: Tensor
    style_layout: tuple[StyleLayer, ...]
    stage_names: tuple[str, ...]

    # ---- construction / serialisation -------------------------------------------------------
    @property
    @abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``type(self)(**self.config)`` rebuilds it."""

    # ---- mapping ----------------------------------------------------------------------------
    @abstractmethod
    def map_z(self, z: Tensor) -> Tensor:
        """The mapping network proper: z [N, z_dim] → w [N, w_dim] (no truncation)."""

    def mapping(self, z: Tensor, psi: float = 1.0, cutoff: int | None = None) -> Tensor:
        """z → W+ [N, num_ws, w_dim] with truncation towards ``w_avg``.

        ``cutoff`` truncates only the first ``cutoff`` W+ rows (the NVlabs convention).
        """
        w = self.map_z(z)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        return self.truncate(ws, psi, cutoff)

    def truncate(self, ws: Tensor, psi: float = 1.0, cutoff: int | None = None) -> Tensor:
        if psi == 1.0:
            return ws
        avg = self.w_avg.to(ws.dtype)
        if cutoff is None:
            return avg.lerp(ws, psi)
        out = ws.clone()
        out[:, :cutoff] = avg.lerp(ws[:, :cutoff], psi)
        return out

    def broadcast_w(self, w: Tensor) -> Tensor:
        """Accept W [N, w_dim] or W+ [N, num_ws, w_dim]; return W+."""
        if w.dim() == 2:
            return w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if w.dim() == 3 and w.shape[1] == self.num_ws:
            return w
        raise ValueError(
            f"expected W [N, {self.w_dim}] or W+ [N, {self.num_ws}, {self.w_dim}], got {tuple(w.shape)}"
        )

    # ---- style space ------------------------------------------------------------------------
    @abstractmethod
    def styles(self, ws: Tensor) -> "OrderedDict[str, Tensor]":
        """W+ [N, num_ws, w_dim] → StyleSpace: one [N, channels] vector per style layer."""

    @abstractmethod
    def synthesize(
        self,
        styles: Mapping[str, Tensor],
        *,
        taps: Iterable[str] = (),
        start: int = 0,
        cache: Mapping[int, Any] | None = None,
        keep_cache: bool = False,
        stop_resolution: int | None = None,
        noise_mode: str = "const",
        display: bool = False,
    ) -> SynthesisResult:
        """StyleSpace → image.

        ``taps``: names from ``tap_names`` whose activations are returned in ``features``.
        ``start``/``cache``: begin at stage ``start`` from ``cache[start]`` (a previous result's
        cache made with ``keep_cache=True``); styles of earlier stages are then ignored. A coarse
        render (``stop_resolution``) with ``keep_cache`` also keeps the state entering the stage
        after its last, so the full frame of the same styles continues where the preview ended.
        ``stop_resolution``: stop after the stage producing that resolution, returning its coarse
        image. ``noise_mode``: ``"const"`` (the model's fixed noise), ``"none"`` or ``"random"``;
        generators without noise ignore it. ``display``: the image is only shown, never measured, so
        a coarse image may come from heads fitted for the eye (MobileStyleGAN's display heads);
        generators whose coarse images are their own (StyleGAN2's toRGB) ignore it.
        """

    @property
    @abstractmethod
    def tap_names(self) -> tuple[str, ...]:
        """Names of the activations ``synthesize`` can return as features."""

    # ---- the contract's shared checks and hooks (one place for every generator) ------------------
    def check_synthesis(self, taps: Iterable[str], start: int, cache: Mapping[int, Any] | None,
                        stop_resolution: int | None, noise_mode: str) -> tuple[set[str], int]:
        """Check ``synthesize``'s arguments once for every generator; returns (taps wanted, last stage).

        Raises :class:`UnknownTapError` for a tap the model lacks and ``ValueError`` for a bad
        noise mode, a start outside the rendered stages or a start without its cache.
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        wanted = set(taps)
        unknown = wanted.difference(self.tap_names)
        if unknown:
            raise UnknownTapError(f"unknown taps {sorted(unknown)}; available: {', '.join(self.tap_names)}")
        last = len(self.stage_names) - 1
        if stop_resolution is not None:
            last = min(self.stage_of_resolution(stop_resolution), last)
        if not 0 <= start <= last:
            raise ValueError(f"start stage {start} outside 0..{last}")
        if start > 0 and (not cache or start not in cache):
            raise ValueError(f"starting at stage {start} needs cache[{start}] from a keep_cache render")
        return wanted, last

    def preview_size(self, stop_resolution: int) -> int:
        """Pixels on a side of the image ``synthesize(..., stop_resolution=r)`` returns.

        The stage's own resolution for most generators; wavelet generators (MobileStyleGAN) return
        twice their feature resolution and override this."""
        return int(stop_resolution)

    @contextmanager
    def whole_stages(self) -> Iterator[None]:
        """Render every stage whole (no memory-saving strips) inside this block: under autograd
        strips cost far more than they save. A no-op for generators that never render in strips."""
        yield

    # ---- conveniences built on the interface ------------------------------------------------
    def synthesis(self, ws: Tensor, **kwargs: Any) -> Tensor:
        """W or W+ → image (the classic synthesis call)."""
        return self.synthesize(self.styles(self.broadcast_w(ws)), **kwargs).image

    def generate(self, z: Tensor, psi: float = 1.0, cutoff: int | None = None, **kwargs: Any) -> Tensor:
        return self.synthesis(self.mapping(z, psi, cutoff), **kwargs)

    def layer(self, name: str) -> StyleLayer:
        for layer in self.style_layout:
            if layer.name == name:
                return layer
        raise KeyError(f"no style layer named {name!r}")

    def first_stage_of(self, names: Iterable[str]) -> int:
        """The earliest stage consuming any of ``names`` (for choosing ``start``)."""
        stages = [self.layer(n).stage for n in names]
        return min(stages) if stages else len(self.stage_names)

    def stage_of_resolution(self, resolution: int) -> int:
        """The index of the last stage whose layers work at ``resolution`` or below."""
        stages = [l.stage for l in self.style_layout if l.resolution <= resolution]
        if not stages:
            raise ValueError(f"no stage at resolution {resolution}")
        return max(stages)

    @property
    def device(self) -> torch.device:
        return self.w_avg.device

    def describe(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "resolution": self.resolution,
            "z_dim": self.z_dim,
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "style_layers": len(self.style_layout),
            "style_channels": sum(l.channels for l in self.style_layout),
            "parameters": sum(p.numel() for p in self.parameters()),
        }


def flatten_styles(styles: Mapping[str, Tensor]) -> Tensor:
    """Concatenate per-layer styles into one [N, total_channels] tensor (layout order)."""
    return torch.cat(list(styles.values()), dim=1)


def unflatten_styles(flat: Tensor, layout: Sequence[StyleLayer]) -> "OrderedDict[str, Tensor]":
    out: OrderedDict[str, Tensor] = OrderedDict()
    i = 0
    for layer in layout:
        out[layer.name] = flat[:, i : i + layer.channels]
        i += layer.channels
    if i != flat.shape[1]:
        raise ValueError(f"flat styles have {flat.shape[1]} channels, layout needs {i}")
    return out
