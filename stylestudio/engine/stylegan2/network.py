"""StyleGAN2 generator in plain PyTorch, numerically equivalent to NVlabs stylegan2-ada-pytorch.

The maths follows the ``training.networks.Generator`` of stylegan2-ada-pytorch with the *skip*
output architecture (the one every released StyleGAN2 generator uses): a mapping MLP with an
equalised-learning-rate multiplier, then one synthesis block per resolution (4, 8, ... px), each
made of modulated 3×3 convolutions with weight demodulation, per-pixel noise, bias + leaky ReLU
(gain √2) and a 1×1 toRGB whose outputs are summed over resolutions through [1,3,3,1]
upsampling. No custom CUDA op is needed: the NVlabs ``upfirdn2d`` / ``bias_act`` / modulated-conv
kernels are expressed with standard ``conv2d`` / ``conv_transpose2d`` calls (per-sample weights
run as one grouped convolution, as NVlabs' fused path does).

State-dict keys mirror NVlabs' module tree (``blocks.b8.conv0.affine.weight`` ↔
``synthesis.b8.conv0.affine.weight``) so checkpoint conversion is a key rename.

Synthesis stages are the resolution blocks: stage ``i`` is block ``b{4·2^i}``.
"""
from __future__ import annotations

import inspect
import math
from collections import OrderedDict
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..generator import (MAX_CHANNELS, MAX_LATENT_DIM, MAX_MAPPING_LAYERS, MAX_RESOLUTION, Generator, StyleLayer,
                         SynthesisResult, check_float, check_int, check_resolution)

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEFAULT_FILTER = (1.0, 3.0, 3.0, 1.0)
#: the longest 1-D resampling filter accepted (StyleGAN2 uses 4 taps)
MAX_FILTER_TAPS = 16


# ---- low-level ops ------------------------------------------------------------------------------

def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale each latent to unit root-mean-square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def bias_lrelu(x: Tensor, bias: Tensor, clamp: float | None = None) -> Tensor:
    """NVlabs ``bias_act(act='lrelu')``: add bias, leaky ReLU(0.2), multiply by √2, clamp."""
    x = F.leaky_relu(x + bias.reshape(1, -1, *([1] * (x.dim() - 2))), LRELU_SLOPE) * LRELU_GAIN
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def upfirdn2d(x: Tensor, taps: Tensor, up: int = 1, pad: tuple[int, int] = (0, 0), gain: float = 1.0) -> Tensor:
    """Upsample by zero insertion, pad (negative = crop), then convolve with a separable FIR filter.

    ``taps`` is the normalised 1-D filter; the 2-D filter is its outer product (as NVlabs builds it
    from ``[1,3,3,1]``). ``gain`` is the total 2-D gain, split evenly between the two passes.
    Same padding on both axes, which is all StyleGAN2 needs.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = pad
    if p0 or p1:
        x = F.pad(x, [p0, p1, p0, p1])
    f = (taps.to(x.dtype) * math.sqrt(gain)).flip(0)  # flipped: true convolution, like NVlabs
    k = f.numel()
    x = F.conv2d(x, f.reshape(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    x = F.conv2d(x, f.reshape(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return x


def upsample2d(x: Tensor, taps: Tensor) -> Tensor:
    """2× upsampling of the skip image (NVlabs ``upfirdn2d.upsample2d``)."""
    k = taps.numel()
    return upfirdn2d(x, taps, up=2, pad=((k + 1) // 2, (k - 2) // 2), gain=4.0)


def modulated_conv2d(
    x: Tensor, weight: Tensor, styles: Tensor, *, demodulate: bool = True, up: int = 1,
    taps: Tensor | None = None,
) -> Tensor:
    """Per-sample modulated convolution as one grouped conv (NVlabs' fused path).

    ``up=2`` is a stride-2 transposed convolution followed by the FIR low-pass filter, with the
    padding NVlabs' ``conv2d_resample`` derives, so outputs have exactly twice the input size.
    """
    n, cin, h, w_ = x.shape
    cout, _, kh, kw = weight.shape
    wts = weight.unsqueeze(0) * styles.reshape(n, 1, cin, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        dcoefs = (wts.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        wts = wts * dcoefs.reshape(n, cout, 1, 1, 1)
    x = x.reshape(1, n * cin, h, w_)
    if up == 1:
        x = F.conv2d(x, wts.reshape(n * cout, cin, kh, kw), padding=kh // 2, groups=n)
        return x.reshape(n, cout, *x.shape[2:])
    if taps is None:
        raise ValueError("an upsampling convolution needs a resampling filter")
    ft = taps.numel()
    pad = kw // 2
    p0 = pad + (ft + up - 1) // 2 - (kw - 1)
    p1 = pad + (ft - up) // 2 - (kw - up)
    pt = max(min(-p0, -p1), 0)
    wts = wts.transpose(1, 2).reshape(n * cin, cout, kh, kw)
    x = F.conv_transpose2d(x, wts, stride=up, padding=pt, groups=n)
    x = upfirdn2d(x, taps, pad=(p0 + pt, p1 + pt), gain=float(up * up))
    return x.reshape(n, cout, *x.shape[2:])


def taps_from_kernel(kernel: Tensor) -> list[float]:
    """The normalised 1-D taps of a stored (separable, outer-product) resampling kernel.

    Checkpoints store the 2-D kernel (NVlabs: normalised; rosinality: ×4 for upsampling); the
    generator keeps only the 1-D taps. Raises ``ValueError`` if the kernel is not separable.
    """
    if kernel.numel() > MAX_FILTER_TAPS ** 2:
        raise ValueError(f"resampling kernel has unexpected shape {tuple(kernel.shape)}")
    k = kernel.detach().to(torch.float64).cpu()
    if not bool(torch.isfinite(k).all()) or not float(k.sum()) > 0:
        raise ValueError("resampling kernel is zero, negative overall or not finite")
    if k.dim() == 1:
        taps = k / k.sum()
    elif k.dim() == 2 and k.shape[0] == k.shape[1]:
        k2 = k / k.sum()
        taps = k2.sum(dim=1)
        if not torch.allclose(torch.outer(taps, taps), k2, atol=1e-6):
            raise ValueError("resampling kernel is not a separable outer product")
    else:
        raise ValueError(f"resampling kernel has unexpected shape {tuple(k.shape)}")
    return [float(t) for t in taps]


# ---- layers -------------------------------------------------------------------------------------

class FullyConnected(nn.Module):
    """Equalised-learning-rate linear layer (NVlabs ``FullyConnectedLayer``)."""

    def __init__(self, in_features: int, out_features: int, *, lr_multiplier: float = 1.0,
                 activation: str = "linear", bias_init: float = 0.0) -> None:
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"unsupported activation {activation!r}")
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_lrelu(x.matmul(w.t()), b)


class SynthesisLayer(nn.Module):
    """Modulated 3×3 conv (optionally 2× up) + noise + bias + leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *,
                 up: int = 1, use_noise: bool = True, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(self, x: Tensor, style: Tensor, taps: Tensor, noise_mode: str) -> Tensor:
        x = modulated_conv2d(x, self.weight, style, up=self.up, taps=taps)
        if self.use_noise and noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        elif self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength
        return bias_lrelu(x, self.bias, self.conv_clamp)


class ToRGB(nn.Module):
    """Modulated 1×1 conv without demodulation; its affine output is scaled by 1/√fan_in inside."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        x = modulated_conv2d(x, self.weight, style * self.weight_gain, demodulate=False)
        x = x + self.bias.reshape(1, -1, 1, 1)
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class SynthesisBlock(nn.Module):
    """One resolution: (const | 2× up conv0), conv1, toRGB."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, *, use_noise: bool, conv_clamp: float | None) -> None:
        super().__init__()
        self.resolution = resolution
        self.in_channels = in_channels
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        use_noise=use_noise, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    use_noise=use_noise, conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)

    def layer_names(self) -> tuple[str, ...]:
        """Style layers of this block, in execution order."""
        return ("conv1", "torgb") if self.in_channels == 0 else ("conv0", "conv1", "torgb")


# ---- the generator ------------------------------------------------------------------------------

class StyleGAN2Generator(Generator):
    """NVlabs-compatible StyleGAN2 (skip architecture, unconditional) behind the Generator API.

    Constructor arguments use NVlabs' names, with ``mapping_kwargs`` flattened
    (``num_mapping_layers``, ``mapping_lr_multiplier``, ``mapping_layer_features``) and
    ``synthesis_kwargs`` flattened (``channel_base``, ``channel_max``, ``conv_clamp``,
    ``use_noise``, ``resample_filter``). Always computes in fp32 (NVlabs' fp16 blocks are a speed
    option, not a different model).
    """

    arch = "stylegan2"

    def __init__(
        self,
        z_dim: int = 512,
        w_dim: int = 512,
        img_resolution: int = 1024,
        img_channels: int = 3,
        *,
        num_mapping_layers: int = 8,
        mapping_lr_multiplier: float = 0.01,
        mapping_layer_features: int | None = None,
        channel_base: int = 32768,
        channel_max: int = 512,
        conv_clamp: float | None = None,
        use_noise: bool = True,
        resample_filter: Sequence[float] = DEFAULT_FILTER,
    ) -> None:
        super().__init__()
        self._config: dict[str, Any] = self.check_config(
            z_dim=z_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            num_mapping_layers=num_mapping_layers, mapping_lr_multiplier=mapping_lr_multiplier,
            mapping_layer_features=mapping_layer_features, channel_base=channel_base, channel_max=channel_max,
            conv_clamp=conv_clamp, use_noise=use_noise, resample_filter=resample_filter)
        z_dim, w_dim, img_resolution = self._config["z_dim"], self._config["w_dim"], self._config["img_resolution"]
        img_channels, num_mapping_layers = self._config["img_channels"], self._config["num_mapping_layers"]
        mapping_lr_multiplier = self._config["mapping_lr_multiplier"]
        mapping_layer_features = self._config["mapping_layer_features"]
        channel_base, channel_max = self._config["channel_base"], self._config["channel_max"]
        use_noise = self._config["use_noise"]
        self.z_dim, self.w_dim = int(z_dim), int(w_dim)
        self.resolution = int(img_resolution)
        self.img_channels = int(img_channels)

        taps = torch.tensor(self._config["resample_filter"], dtype=torch.float32)
        self.register_buffer("resample_taps", taps / taps.sum(), persistent=False)

        feats = mapping_layer_features or w_dim
        dims = [z_dim] + [feats] * (num_mapping_layers - 1) + [w_dim]
        self.mapper = nn.ModuleDict({
            f"fc{i}": FullyConnected(dims[i], dims[i + 1], lr_multiplier=mapping_lr_multiplier, activation="lrelu")
            for i in range(num_mapping_layers)
        })
        self.register_buffer("w_avg", torch.zeros(w_dim))

        resolutions = [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in resolutions}
        self.blocks = nn.ModuleDict()
        layout: list[StyleLayer] = []
        w_idx = 0
        for stage, res in enumerate(resolutions):
            cin = channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(cin, channels[res], w_dim, res, img_channels,
                                   use_noise=use_noise, conv_clamp=self._config["conv_clamp"])
            self.blocks[f"b{res}"] = block
            for offset, lname in enumerate(block.layer_names()):
                ch = cin if lname == "conv0" else channels[res]
                layout.append(StyleLayer(f"b{res}.{lname}", ch, res, w_idx + offset, stage,
                                         "rgb" if lname == "torgb" else "conv"))
            w_idx += len(block.layer_names()) - 1  # toRGB shares its W+ row with the next conv0
        self.num_ws = w_idx + 1  # the last block's toRGB gets its own row
        self.style_layout = tuple(layout)
        self.stage_names = tuple(f"b{r}" for r in resolutions)
        self._taps = tuple(l.name for l in layout)

    # ---- construction ---------------------------------------------------------------------------
    @staticmethod
    def check_config(*, z_dim: Any, w_dim: Any, img_resolution: Any, img_channels: Any, num_mapping_layers: Any,
                     mapping_lr_multiplier: Any, mapping_layer_features: Any, channel_base: Any, channel_max: Any,
                     conv_clamp: Any, use_noise: Any, resample_filter: Any) -> dict[str, Any]:
        """The constructor arguments checked and normalised; ValueError naming the first bad one.

        Model files decide these, so types, signs and upper bounds are checked before anything is
        allocated (a tiny file must not be able to ask for gigabytes).
        """
        res = check_resolution("img_resolution", img_resolution)
        if not isinstance(resample_filter, (list, tuple)) or not 1 <= len(resample_filter) <= MAX_FILTER_TAPS:
            raise ValueError(f"resample_filter must be a list of 1 to {MAX_FILTER_TAPS} numbers")
        taps = [check_float("resample_filter", t) for t in resample_filter]
        if not sum(taps) > 0:
            raise ValueError("resample_filter must have a positive sum")
        if not isinstance(use_noise, (bool, np.bool_)):
            raise ValueError(f"use_noise must be true or false, got {use_noise!r:.40}")
        base = check_int("channel_base", channel_base, 1, MAX_CHANNELS * MAX_RESOLUTION)
        if base < res:
            raise ValueError(f"channel_base {base} gives no channels at {res} px (it must be at least {res})")
        return dict(
            z_dim=check_int("z_dim", z_dim, 1, MAX_LATENT_DIM), w_dim=check_int("w_dim", w_dim, 1, MAX_LATENT_DIM),
            img_resolution=res, img_channels=check_int("img_channels", img_channels, 1, 16),
            num_mapping_layers=check_int("num_mapping_layers", num_mapping_layers, 1, MAX_MAPPING_LAYERS),
            mapping_lr_multiplier=check_float("mapping_lr_multiplier", mapping_lr_multiplier, positive=True),
            mapping_layer_features=None if mapping_layer_features is None else
            check_int("mapping_layer_features", mapping_layer_features, 1, MAX_LATENT_DIM),
            channel_base=base, channel_max=check_int("channel_max", channel_max, 1, MAX_CHANNELS),
            conv_clamp=None if conv_clamp is None else check_float("conv_clamp", conv_clamp, positive=True),
            use_noise=bool(use_noise), resample_filter=taps,
        )

    @classmethod
    def planned_shapes(cls, **kwargs: Any) -> dict[str, tuple[int, ...]]:
        """The state-dict shapes the constructor would make, computed without building anything.

        Used to check a model file's settings (memory) and weights (shapes) before allocating.
        """
        bound = inspect.signature(cls.__init__).bind(None, **kwargs)
        bound.apply_defaults()
        cfg = cls.check_config(**{k: v for k, v in bound.arguments.items() if k != "self"})
        w, n_layers = cfg["w_dim"], cfg["num_mapping_layers"]
        feats = cfg["mapping_layer_features"] or w
        dims = [cfg["z_dim"]] + [feats] * (n_layers - 1) + [w]
        out: dict[str, tuple[int, ...]] = {"w_avg": (w,)}
        for i in range(n_layers):
            out[f"mapper.fc{i}.weight"], out[f"mapper.fc{i}.bias"] = (dims[i + 1], dims[i]), (dims[i + 1],)
        res_max = cfg["img_resolution"]
        channels = {r: min(cfg["channel_base"] // r, cfg["channel_max"]) for r in (2 ** i for i in range(1, 13))}

        def layer(prefix: str, cin: int, cout: int, res: int, k: int = 3) -> None:
            out[f"{prefix}.affine.weight"], out[f"{prefix}.affine.bias"] = (cin, w), (cin,)
            out[f"{prefix}.weight"], out[f"{prefix}.bias"] = (cout, cin, k, k), (cout,)
            if k == 3 and cfg["use_noise"]:
                out[f"{prefix}.noise_const"], out[f"{prefix}.noise_strength"] = (res, res), ()

        res = 4
        while res <= res_max:
            c = channels[res]
            if res == 4:
                out["blocks.b4.const"] = (c, 4, 4)
            else:
                layer(f"blocks.b{res}.conv0", channels[res // 2], c, res)
            layer(f"blocks.b{res}.conv1", c, c, res)
            layer(f"blocks.b{res}.torgb", c, cfg["img_channels"], res, k=1)
            res *= 2
        return out

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config, resample_filter=list(self._config["resample_filter"]))

    @property
    def tap_names(self) -> tuple[str, ...]:
        """Per style layer: conv layers give their activations (after bias + lrelu), ``.torgb``
        gives that block's RGB contribution (before it is added to the upsampled skip image)."""
        return self._taps

    # ---- mapping / styles -----------------------------------------------------------------------
    def map_z(self, z: Tensor) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"expected z of shape [N, {self.z_dim}], got {tuple(z.shape)}")
        x = normalize_2nd_moment(z.to(torch.float32))
        for fc in self.mapper.values():
            x = fc(x)
        return x

    def styles(self, ws: Tensor) -> "OrderedDict[str, Tensor]":
        """Raw affine outputs per layer (toRGB ones *before* the 1/√fan_in gain, as NVlabs)."""
        ws = self.broadcast_w(ws).to(torch.float32)
        out: OrderedDict[str, Tensor] = OrderedDict()
        for layer in self.style_layout:
            out[layer.name] = self._module(layer.name).affine(ws[:, layer.w_index])
        return out

    def _module(self, name: str) -> nn.Module:
        block, lname = name.split(".")
        return getattr(self.blocks[block], lname)

    # ---- synthesis ------------------------------------------------------------------------------
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
        """StyleSpace → image; see :meth:`Generator.synthesize` (``display`` changes nothing here).

        ``cache[i]`` is the ``(x, img)`` pair entering stage ``i`` (``(None, None)`` for stage 0,
        whose input is the learned constant); a coarse render also keeps the pair entering the
        stage after its last. With ``stop_resolution`` the returned image is that
        block's skip image at its own resolution, *not* upsampled (callers resize for display).
        """
        wanted, last = self.check_synthesis(taps, start, cache, stop_resolution, noise_mode)
        self._check_tap_stages(wanted, start, last)
        x, img = (None, None) if start == 0 else cache[start]  # type: ignore[index]

        out_cache: dict[int, Any] = {}
        if keep_cache and cache:
            out_cache.update({k: v for k, v in cache.items() if k <= start})
        features: dict[str, Tensor] = {}
        taps_1d = self.resample_taps
        for stage in range(start, last + 1):
            if keep_cache:
                out_cache[stage] = (x, img)
            block = self.blocks[self.stage_names[stage]]
            x, img = self._run_block(block, x, img, styles, taps_1d, noise_mode, wanted, features)
        if keep_cache and last + 1 < len(self.stage_names):
            out_cache[last + 1] = (x, img)  # a coarse frame's work, reusable by the full one
        return SynthesisResult(image=img, features=features, cache=out_cache)

    def _check_tap_stages(self, wanted: set[str], start: int, last: int) -> None:
        """Taps must lie in the stages rendered (the base class has checked their names)."""
        for name in wanted:
            stage = self.layer(name).stage
            if not start <= stage <= last:
                raise ValueError(f"tap {name!r} is in stage {stage}, outside the rendered stages {start}..{last}")

    def _run_block(self, block: SynthesisBlock, x: Tensor | None, img: Tensor | None,
                   styles: Mapping[str, Tensor], taps_1d: Tensor, noise_mode: str,
                   wanted: set[str], features: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        prefix = f"b{block.resolution}."

        def style(lname: str) -> Tensor:
            try:
                return styles[prefix + lname]
            except KeyError:
                raise KeyError(f"styles lack layer {prefix + lname!r}") from None

        if block.in_channels == 0:
            s = style("conv1")
            x = block.const.to(s.dtype).unsqueeze(0).expand(s.shape[0], -1, -1, -1)
        else:
            x = block.conv0(x, style("conv0"), taps_1d, noise_mode)
            if prefix + "conv0" in wanted:
                features[prefix + "conv0"] = x
        x = block.conv1(x, style("conv1"), taps_1d, noise_mode)
        if prefix + "conv1" in wanted:
            features[prefix + "conv1"] = x
        y = block.torgb(x, style("torgb"))
        if prefix + "torgb" in wanted:
            features[prefix + "torgb"] = y
        img = y if img is None else upsample2d(img, taps_1d) + y
        return x, img

    def forward(self, z: Tensor, psi: float = 1.0, cutoff: int | None = None, noise_mode: str = "const") -> Tensor:
        """z → image, like NVlabs ``G(z, c, truncation_psi, truncation_cutoff, noise_mode)``."""
        return self.generate(z, psi, cutoff, noise_mode=noise_mode)
