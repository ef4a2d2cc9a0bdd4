"""A trained network encoder: aligned photo → a W+ code (a shared ``w`` plus small per-row offsets).

The ridge encoder (:mod:`.encoder`) maps one pooled feature vector linearly onto ``w``; this one
adds to that linear map (copied from the ridge encoder) a residual read from where things are
(the LPIPS network's VGG16 maps at relu4_3 and relu5_3, average-pooled to 8×8 and 4×4) by a small
convolutional head, trained on generated faces whose codes are known (:mod:`.encoder_training`).
As in e4e, it predicts one ``w`` and an offset per W+ row, and the offsets are penalised during
training so the code stays near one ``w`` of the mapping's range, where the attribute directions
still apply.
Offsets live in the top principal directions of W (``offset_components``), which keeps the head
and the file small.

The VGG trunk is the frozen LPIPS network the inversion already loads; only the head is stored:
``<name>.pt`` holds plain tensors and numbers, read with ``torch.load(weights_only=True)``.
It offers the ridge encoder's interface (``w_dim``, ``predict_images``, ``predict``), so the
inversion's estimate uses it unchanged; :meth:`NetEncoder.predict_wplus` gives the rows too.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import InputError
from ...safe_io import atomic_write
from ..perceptual import LPIPS, load_lpips
from ..resources import register_resource_loader
from .encoder import TRAINING_SIZE, FeatureSpec, check_header, downsample, expected_feature_dim, image_tensor, pool_features

NET_FORMAT = "stylestudio-net-encoder"
NET_VERSION = 1


@dataclass(frozen=True)
class NetConfig:
    """The head's shape. ``size``: the side VGG sees. The pooled vector is the ridge encoder's
    (:class:`FeatureSpec` at ``size``) and its linear map to ``components`` principal coefficients
    of W is the head's first path, started from the shipped ridge encoder's weights;
    ``grid3``/``grid4``: the pooled maps of LPIPS taps 3 and 4 (relu4_3, relu5_3) the second path reads;
    ``hidden``: width of that path; ``offset_components``: principal directions of W each row's
    offset may use."""

    num_ws: int
    w_dim: int
    size: int = 128
    components: int = 128
    grid3: int = 8
    grid4: int = 4
    ch3: int = 64
    ch4: int = 32
    hidden: int = 384
    offset_components: int = 32
    dropout: float = 0.1

    @classmethod
    def for_generator(cls, gen: Any, **kwargs: Any) -> "NetConfig":
        """The default head for ``gen``'s W+ shape (components and offsets capped by ``w_dim``)."""
        return cls(gen.num_ws, gen.w_dim, **{"components": min(128, gen.w_dim),
                                             "offset_components": min(32, gen.w_dim), **kwargs})

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(size=self.size)

    @property
    def stats_dim(self) -> int:
        return expected_feature_dim(self.spec)

    @classmethod
    def from_dict(cls, d: Any) -> "NetConfig":
        try:
            cfg = cls(**{k: (float(v) if k == "dropout" else int(v)) for k, v in dict(d).items()})
        except (TypeError, ValueError) as exc:
            raise InputError(f"bad encoder configuration ({exc})") from exc
        if not (1 <= cfg.num_ws <= 64 and 1 <= cfg.w_dim <= 4096 and 32 <= cfg.size <= 512 and cfg.size % 16 == 0
                and 1 <= cfg.components <= cfg.w_dim and 1 <= cfg.grid3 <= cfg.size // 8
                and 1 <= cfg.grid4 <= cfg.size // 16 and cfg.grid3 % 2 == 0
                and all(1 <= v <= 4096 for v in (cfg.ch3, cfg.ch4, cfg.hidden))
                and 1 <= cfg.offset_components <= cfg.w_dim and 0.0 <= cfg.dropout < 1.0):
            raise InputError(f"bad encoder configuration {dict(d)}")
        return cfg


@dataclass
class Inputs:
    """What the head reads of a batch of faces (computed once per face for training)."""

    stats: Tensor  #: [N, stats_dim] the ridge encoder's pooled vector
    tap3: Tensor  #: [N, 512, grid3, grid3]
    tap4: Tensor  #: [N, 512, grid4, grid4]

    def __getitem__(self, idx) -> "Inputs":
        return Inputs(self.stats[idx], self.tap3[idx], self.tap4[idx])

    def to(self, *args: Any, **kwargs: Any) -> "Inputs":
        """Each tensor's ``Tensor.to`` with these arguments (a dtype, a device, or both)."""
        return Inputs(self.stats.to(*args, **kwargs), self.tap3.to(*args, **kwargs), self.tap4.to(*args, **kwargs))

    @staticmethod
    def cat(parts: list["Inputs"]) -> "Inputs":
        return Inputs(torch.cat([p.stats for p in parts]), torch.cat([p.tap3 for p in parts]),
                      torch.cat([p.tap4 for p in parts]))


@torch.no_grad()
def head_inputs(lpips: LPIPS, images: Tensor, cfg: NetConfig) -> Inputs:
    """[N, 3, H, W] in [-1, 1] → the head's inputs. Larger faces go through
    :data:`TRAINING_SIZE` first, as the training renders did, so a photo and a render blur alike."""
    if lpips.size is not None and lpips.size != cfg.size:
        raise ValueError("head_inputs needs an LPIPS module that does not resize (size=None)")
    images = images.to(next(lpips.parameters()).device)
    x = downsample(downsample(images, TRAINING_SIZE) if images.shape[-1] > TRAINING_SIZE else images, cfg.size)
    feats = lpips.features(x)
    return Inputs(pool_features(feats, x, cfg.spec), F.adaptive_avg_pool2d(feats[3], cfg.grid3).float(),
                  F.adaptive_avg_pool2d(feats[4], cfg.grid4).float())


class NetHead(nn.Module):
    """Head inputs → (shared ``w`` [N, w_dim], per-row offsets [N, num_ws, w_dim]).

    Two paths add up: the ridge encoder's linear map (pooled vector → principal coefficients of W,
    fine-tuned from the shipped ridge), and a residual read from where things are (the pooled VGG
    maps) together with those coefficients, started at zero, so training begins at the ridge
    encoder's answer and keeps it where it cannot do better. Buffers hold the standardisation of
    the inputs and the units of the outputs.
    """

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("stats_mean", torch.zeros(cfg.stats_dim))
        self.register_buffer("stats_scale", torch.ones(cfg.stats_dim))
        self.register_buffer("w_mean", torch.zeros(cfg.w_dim))
        self.register_buffer("w_scale", torch.ones(cfg.w_dim))
        self.register_buffer("w_basis", torch.eye(cfg.w_dim)[:cfg.components].clone())  #: [components, w_dim]
        self.register_buffer("coef_scale", torch.ones(cfg.components))
        self.register_buffer("basis", torch.eye(cfg.w_dim)[:cfg.offset_components].clone())  #: [K, w_dim]
        self.register_buffer("basis_scale", torch.ones(cfg.offset_components))
        self.linear = nn.Linear(cfg.stats_dim, cfg.components)
        self.conv3a = nn.Conv2d(512, cfg.ch3, 1)
        self.conv3b = nn.Conv2d(cfg.ch3, cfg.ch3, 3, stride=2, padding=1)
        self.conv4 = nn.Conv2d(512, cfg.ch4, 1)
        joined = cfg.components + cfg.ch3 * (cfg.grid3 // 2) ** 2 + cfg.ch4 * cfg.grid4 ** 2
        self.joint = nn.Linear(joined, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)
        self.to_w = nn.Linear(cfg.hidden, cfg.w_dim)
        self.to_offsets = nn.Linear(cfg.hidden, cfg.num_ws * cfg.offset_components)
        for layer in (self.to_w, self.to_offsets):  # start at the linear path's w, no offsets
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Inputs) -> tuple[Tensor, Tensor]:
        c = self.linear((x.stats - self.stats_mean) / self.stats_scale)
        a = F.gelu(self.conv3b(F.gelu(self.conv3a(x.tap3)))).flatten(1)
        b = F.gelu(self.conv4(x.tap4)).flatten(1)
        h = self.drop(F.gelu(self.joint(torch.cat([c / self.coef_scale, a, b], 1))))
        w = self.w_mean + c @ self.w_basis + self.to_w(h) * self.w_scale
        coef = self.to_offsets(h).view(-1, self.cfg.num_ws, self.cfg.offset_components) * self.basis_scale
        return w, coef @ self.basis


@dataclass
class NetEncoder:
    """A trained :class:`NetHead` for one model, used like the ridge encoder."""

    model: str
    head: NetHead
    meta: dict[str, Any] = field(default_factory=dict)  #: training set, validation figures

    @property
    def w_dim(self) -> int:
        return self.head.cfg.w_dim

    @property
    def num_ws(self) -> int:
        return self.head.cfg.num_ws

    # -- use -----------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_inputs(self, x: Inputs) -> tuple[np.ndarray, np.ndarray]:
        """Head inputs → (w [N, w_dim], W+ [N, num_ws, w_dim]) as float32 arrays."""
        self.head.eval()
        w, off = self.head(x.to(self.head.stats_mean.device, torch.float32))
        return w.cpu().numpy().astype(np.float32), (w[:, None] + off).cpu().numpy().astype(np.float32)

    def _inputs(self, images: Tensor, lpips: LPIPS | None) -> Inputs:
        if lpips is None or lpips.size is not None:
            lpips = load_lpips(images.device, size=None)
        self.head.to(images.device)
        return head_inputs(lpips, images, self.head.cfg)

    def predict_images(self, images: Tensor, lpips: LPIPS | None = None) -> np.ndarray:
        """[N, 3, H, W] in [-1, 1] (an aligned face at any size) → the shared w [N, w_dim]."""
        return self.predict_inputs(self._inputs(images, lpips))[0]

    def predict_wplus(self, images: Tensor, lpips: LPIPS | None = None) -> np.ndarray:
        """[N, 3, H, W] in [-1, 1] → W+ [N, num_ws, w_dim] (the shared w plus each row's offset)."""
        return self.predict_inputs(self._inputs(images, lpips))[1]

    def predict(self, image: np.ndarray, lpips: LPIPS | None = None) -> np.ndarray:
        """An aligned face (HxWx3 uint8, any size) → its estimated ``w`` [w_dim]."""
        return self.predict_images(image_tensor(image), lpips)[0]

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """One ``.pt`` file of plain tensors (float16 weights) and numbers, written atomically."""
        path = Path(path)
        state = {k: (v.detach().cpu().to(torch.float16) if v.is_floating_point() else v.detach().cpu())
                 for k, v in self.head.state_dict().items()}
        # the input standardisation spans orders of magnitude: keep it exact
        for k in ("stats_mean", "stats_scale", "w_mean", "w_scale", "coef_scale", "basis_scale"):
            state[k] = self.head.state_dict()[k].detach().cpu().float()
        blob = {"format": NET_FORMAT, "format_version": NET_VERSION, "model": self.model,
                "config": asdict(self.head.cfg), "state": state, "meta": self.meta}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: torch.save(blob, f))

    @classmethod
    def load(cls, path: Path) -> "NetEncoder":
        """Read an encoder (never executing anything in the file); anything else raises
        :class:`InputError` naming the file and what is wrong."""
        path = Path(path)
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch's safe unpickler raises many kinds of error on garbage
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise InputError(f"{path}: not a readable encoder file ({first})") from exc
        check_header(path, blob, NET_FORMAT, NET_VERSION, "a StyleStudio network encoder")
        try:
            cfg = NetConfig.from_dict(blob.get("config") or {})
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from exc
        state = blob.get("state")
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise InputError(f"{path}: the encoder's weights are missing")
        head = NetHead(cfg)
        expected = head.state_dict()
        if set(state) != set(expected):
            raise InputError(f"{path}: the encoder's weights do not match its configuration")
        for k, v in state.items():
            if tuple(v.shape) != tuple(expected[k].shape) or not v.is_floating_point() or not torch.isfinite(v).all():
                raise InputError(f"{path}: encoder weight {k} is {tuple(v.shape)} {v.dtype}, expected "
                                 f"{tuple(expected[k].shape)} of finite numbers")
        head.load_state_dict({k: v.float() for k, v in state.items()})
        if not all(bool((getattr(head, k) > 0).all()) for k in ("stats_scale", "w_scale", "coef_scale")):
            raise InputError(f"{path}: the encoder's scales must be positive")
        head.eval().requires_grad_(False)
        meta = blob.get("meta") if isinstance(blob.get("meta"), dict) else {}
        return cls(str(blob.get("model", "")), head, meta)


@register_resource_loader("net-encoder")
def _load_net_encoder(res: Any, name: str) -> NetEncoder:
    """``<data or resources>/encoder/<model>/<name>.pt``, refused when made for another model."""
    path = res.find_file("encoder", f"{name}.pt")
    if path is None:
        raise InputError(f"no network encoder {name!r} for model {res.model!r}")
    enc = NetEncoder.load(path)
    if enc.model != res.model or enc.w_dim != res.generator.w_dim or enc.num_ws != res.generator.num_ws:
        raise InputError(f"{path}: an encoder for {enc.model!r} ({enc.num_ws}×{enc.w_dim} W+), not for "
                         f"{res.model!r}")
    return enc
