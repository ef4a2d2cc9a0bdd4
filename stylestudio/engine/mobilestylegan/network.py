"""MobileStyleGAN (Belousov 2021) as a plain PyTorch module implementing :class:`Generator`.

Architecture (the distilled StyleGAN2-FFHQ-1024 student):

* mapping: z(512) → pixel norm → 8 × (linear, leaky ReLU 0.2 × √2) → w(512);
* synthesis, one *stage* per resolution: ``b4`` = constant 512×4×4 → modulated 3×3 conv;
  then ``b8`` … ``b512``, each = modulated inverse-Haar-wavelet upsampling (4C channels at r/2 →
  C channels at r) → two modulated depthwise-separable 3×3 convs → (last stage only) a modulated
  1×1 "to wavelet" conv giving 12 channels (RGB × {LL, LH, HL, HH}); the 1024² image is the
  inverse Haar transform of those 12 channels at 512².

Every conv's demodulation is a constant (MobileStyleGAN demodulates with a fixed buffer), so a
modulated conv is "scale the input channels by the style, then a fixed conv". For one image the
style is folded into the (tiny) depthwise or wavelet kernel, which costs nothing; for a batch the
input is scaled. The noise maps are fixed constants of the model (no noise input).

Conventions of this module (different from the original training code, same function):

* Activations that feed an inverse wavelet transform are ordered channel-major, band-minor
  (``[c0: LL, LH, HL, HH, c1: ...]``), so the transform is one grouped transposed conv. The
  converter permutes the producing conv's rows and the ``up`` modulation accordingly; the
  ``bK.up`` style channels follow the same order.
* Style = the modulation affine's output (before the constant 1/sqrt(fan-in) gain).
* W+ rows follow the original network (23 rows): ``b4.conv1`` ← 0; stage i ≥ 1: ``up`` and
  ``conv1`` ← 3i−2, ``conv2`` ← 3i−1, ``to_img`` ← 3i. The published export dropped the
  intermediate ``to_img`` heads (their outputs never reach the image), so rows 3, 6, 9, 12, 15,
  18 and the spare row 22 feed nothing in this model.
* Coarse previews (``stop_resolution``): the published export has no intermediate ``to_img``
  heads, so each earlier stage has a *preview head*, an unmodulated 1×1 conv fitted at
  provisioning time (least squares) from the stage's features to the Haar coefficients of the
  box-downsampled final image. A stage at feature resolution r previews a 2r × 2r image.
* Display previews (``display=True``): a 1×1 head maps each feature pixel on its own and leaves a
  visible 2×2 grid on skin. Stages listed in ``display_kernels`` also have a k×k *display head*,
  fitted the same way, used only for previews that are shown and never measured (issue #15).
  The 1×1 heads stay the *analysis* heads: attribute labels, the face-text encoder, region fits
  and inversion estimates are computed on them, unchanged. A model stored before display heads
  existed has none (``display_kernels`` absent) and shows its 1×1 previews.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..generator import (MAX_CHANNELS, MAX_LATENT_DIM, MAX_MAPPING_LAYERS, Generator, StyleLayer, SynthesisResult,
                         check_int, check_resolution)

CHANNELS = (512, 512, 512, 512, 512, 256, 128, 64)
SLOPE = 0.2
CL = torch.channels_last
Tap = Callable[[str, Tensor], None]


def _noise_act(y: Tensor, noise: Tensor) -> Tensor:
    """+ fixed noise map, leaky ReLU 0.2, in place (the conv output is a fresh tensor)."""
    return F.leaky_relu_(y.add_(noise), SLOPE)


def _no_tap(name: str, value: Tensor) -> None:
    return None


def haar_kernel(taps: Tensor, groups: int) -> Tensor:
    """Transposed-conv kernel [4·groups, 1, 2, 2] of the inverse wavelet from its 1-D taps.

    ``taps`` is [col/row, low/high, 2]. Band k of a group is (LL, LH, HL, HH): LH = vertical
    high-pass, horizontal low-pass (pytorch_wavelets' order, which the export used).
    """
    col, row = taps[0], taps[1]
    bands = [(0, 0), (1, 0), (0, 1), (1, 1)]  # (vertical filter, horizontal filter)
    k = torch.stack([torch.outer(col[v], row[h]) for v, h in bands])  # [4, 2, 2]
    return k.unsqueeze(1).repeat(groups, 1, 1, 1)


def haar_analysis(img: Tensor, taps: Tensor) -> Tensor:
    """Forward Haar transform [N, 3, 2h, 2w] → 12 band-grouped channels [N, 12, h, w].

    The synthesis filters are orthonormal, so analysis uses the same 2×2 kernels.
    """
    return F.conv2d(img, haar_kernel(taps, 3).to(img.dtype), stride=2, groups=3)


def inverse_wavelet(x: Tensor, kernel: Tensor) -> Tensor:
    """[N, 4C, h, w] band-grouped coefficients → [N, C, 2h, 2w]."""
    return F.conv_transpose2d(x, kernel, stride=2, groups=kernel.shape[0] // 4)


def _per_channel(v: Tensor) -> Tensor:
    """[N, C] → [N, C, 1, 1] for scaling activations."""
    return v[:, :, None, None]


def _per_filter(v: Tensor) -> Tensor:
    """One sample's [1, C] scale → [C, 1, 1, 1] for scaling a depthwise/transposed kernel."""
    return v.reshape(-1, 1, 1, 1)


class MappingNetwork(nn.Module):
    """z → w: pixel norm then ``n_layers`` × (linear, leaky ReLU × √2); lr scale folded in."""

    def __init__(self, dim: int, n_layers: int) -> None:
        super().__init__()
        self.fc = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))

    def forward(self, z: Tensor) -> Tensor:
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        for fc in self.fc:
            x = F.leaky_relu(fc(x), SLOPE) * math.sqrt(2.0)
        return x


class ModConv3x3(nn.Module):
    """Dense modulated 3×3 conv (the 4×4 stage); ``weight`` carries the fixed demodulation."""

    def __init__(self, w_dim: int, channels: int, res: int) -> None:
        super().__init__()
        self.affine = nn.Linear(w_dim, channels)
        self.weight = nn.Parameter(torch.zeros(channels, channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("noise", torch.zeros(1, 1, res, res))
        self.gain = 1.0 / math.sqrt(channels * 9)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        # the input is 4×4: scaling it is cheaper than scaling the 512×512×3×3 kernel
        x = x * _per_channel(style * self.gain)
        return _noise_act(F.conv2d(x, self.weight, self.bias, padding=1), self.noise)


class ModDWConv(nn.Module):
    """Modulated depthwise-separable 3×3 conv; ``weight_pw`` carries the fixed demodulation."""

    def __init__(self, w_dim: int, c_in: int, c_out: int, res: int) -> None:
        super().__init__()
        self.affine = nn.Linear(w_dim, c_in)
        self.weight_dw = nn.Parameter(torch.zeros(c_in, 1, 3, 3))
        self.weight_pw = nn.Parameter(torch.zeros(c_out, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.register_buffer("noise", torch.zeros(1, 1, res, res))
        self.gain = 1.0 / math.sqrt(c_in * 9)

    def forward(self, x: Tensor, dw_kernel: Tensor, rows: slice) -> Tensor:
        """Fixed-kernel part: depthwise (already modulated) → pointwise → noise → activation."""
        y = F.conv2d(x, dw_kernel, padding=1, groups=x.shape[1])
        return _noise_act(F.conv2d(y, self.weight_pw, self.bias), self.noise[:, :, rows])


class WaveletUp(nn.Module):
    """Modulated inverse-Haar upsampling: 4C channels at r/2 → C channels at r."""

    def __init__(self, w_dim: int, c_in: int) -> None:
        super().__init__()
        self.affine = nn.Linear(w_dim, c_in)


class ToWavelet(nn.Module):
    """Modulated 1×1 conv (no demodulation) → 12 band-grouped Haar coefficients of RGB."""

    def __init__(self, w_dim: int, c_in: int) -> None:
        super().__init__()
        self.affine = nn.Linear(w_dim, c_in)
        self.weight = nn.Parameter(torch.zeros(12, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(12))
        self.gain = 1.0 / math.sqrt(c_in)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        s = style * self.gain
        if x.shape[0] == 1:
            return F.conv2d(x, self.weight * s.view(1, -1, 1, 1), self.bias)
        return F.conv2d(x * _per_channel(s), self.weight, self.bias)


class PreviewHead(nn.Module):
    """Unmodulated k×k conv → 12 Haar coefficients, fitted at provisioning (see module doc)."""

    def __init__(self, c_in: int, kernel: int = 1) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(12, c_in, kernel, kernel))
        self.register_buffer("bias", torch.zeros(12))

    @property
    def kernel(self) -> int:
        return int(self.weight.shape[-1])

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=self.kernel // 2)


class InputStage(nn.Module):
    """Stage ``b4``: the learned constant and its modulated 3×3 conv."""

    def __init__(self, w_dim: int, channels: int, display_kernel: int = 0) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.zeros(1, channels, 4, 4))
        self.conv1 = ModConv3x3(w_dim, channels, 4)
        self.preview = PreviewHead(channels)
        if display_kernel:
            self.display = PreviewHead(channels, display_kernel)

    def forward(self, style: Tensor, tap: Tap) -> Tensor:
        x = self.const.expand(style.shape[0], -1, -1, -1).contiguous(memory_format=CL)
        x = self.conv1(x, style)
        tap("conv1", x)
        return x


class Block(nn.Module):
    """Stage ``b{res}``: wavelet upsampling, two depthwise-separable convs, optional to_img.

    For one image every modulation is folded into a small kernel (the transposed-conv wavelet
    kernel carries ``up``, the depthwise kernels carry ``conv1``/``conv2``), so no pass over the
    activations is spent on styles. Large stages run one sample at a time in horizontal strips
    (``tile_rows``), each recomputed with a 2-row halo (two 3×3 convs): every intermediate stays
    small enough to sit in cache and to be recycled by the allocator instead of page-faulted in
    afresh (glibc maps blocks over 32 MB directly from the OS); the result is the same.
    """

    HALO = 2  # rows of context needed by the two 3×3 convs

    def __init__(self, w_dim: int, c_in: int, c_out: int, res: int, last: bool, display_kernel: int = 0) -> None:
        super().__init__()
        self.res, self.c_out = res, c_out
        self.up = WaveletUp(w_dim, c_in)
        self.conv1 = ModDWConv(w_dim, c_in // 4, c_out, res)
        self.conv2 = ModDWConv(w_dim, c_out, c_out, res)
        if last:
            self.to_img = ToWavelet(w_dim, c_out)
        else:
            self.preview = PreviewHead(c_out)
            if display_kernel:
                self.display = PreviewHead(c_out, display_kernel)

    def _chain(self, x: Tensor, kernel: Tensor, s: tuple[Tensor, Tensor, Tensor], folded: bool,
               rows: slice, tap: Tap) -> Tensor:
        """up → conv1 → conv2 on input ``x`` whose upsampled rows are ``rows`` of the stage."""
        s_up, s1, s2 = s
        dw1, dw2 = self.conv1.weight_dw, self.conv2.weight_dw
        g1, g2 = self.conv1.gain, self.conv2.gain
        if folded:  # one sample: modulations go into the kernels
            kernel, dw1, dw2 = kernel * _per_filter(s_up), dw1 * _per_filter(s1 * g1), dw2 * _per_filter(s2 * g2)
        else:
            x = x * _per_channel(s_up)
        u = inverse_wavelet(x, kernel)
        tap("up", u)
        y = self.conv1(u if folded else u * _per_channel(s1 * g1), dw1, rows)
        tap("conv1", y)
        y = self.conv2(y if folded else y * _per_channel(s2 * g2), dw2, rows)
        tap("conv2", y)
        return y

    def forward(self, x: Tensor, s: tuple[Tensor, Tensor, Tensor], kernel: Tensor, tap: Tap,
                tile_rows: int | None = None, head: Callable[[Tensor, int], Tensor] | None = None) -> Tensor:
        """Features [N, c_out, res, res], or ``head(features, sample)`` assembled over strips."""
        if not tile_rows:
            y = self._chain(x, kernel, s, x.shape[0] == 1, slice(0, self.res), tap)
            return y if head is None else torch.cat([head(y[n:n + 1], n) for n in range(y.shape[0])])
        out: Tensor | None = None
        step = max(2, min(tile_rows, self.res) // 2 * 2)  # even, so strips map onto whole input rows
        for n in range(x.shape[0]):
            sn = (s[0][n:n + 1], s[1][n:n + 1], s[2][n:n + 1])
            for r0 in range(0, self.res, step):
                r1 = min(r0 + step, self.res)
                a, b = max(r0 - self.HALO, 0), min(r1 + self.HALO, self.res)
                y = self._chain(x[n:n + 1, :, a // 2:b // 2], kernel, sn, True, slice(a, b), _no_tap)
                y = y[:, :, r0 - a:r1 - a]
                part = y if head is None else head(y, n)
                if out is None:
                    scale = part.shape[2] // (r1 - r0)
                    out = torch.empty((x.shape[0], part.shape[1], self.res * scale, self.res * scale),
                                      dtype=part.dtype, device=part.device,  # images: plain NCHW
                                      memory_format=CL if part.shape[1] > 4 else torch.contiguous_format)
                out[n:n + 1, :, r0 * scale:r1 * scale] = part
        assert out is not None
        return out


class MobileStyleGAN(Generator):
    """The default face generator. See the module docstring for conventions."""

    arch = "mobilestylegan"
    #: on the CPU, a stage whose batch activations exceed 2 × ``tile_bytes`` runs one sample at
    #: a time in horizontal strips of about ``tile_bytes`` per activation tensor (0 disables
    #: strips); a speed setting only, the results are the same
    tile_bytes = 8 << 20

    def __init__(self, z_dim: int = 512, w_dim: int = 512, resolution: int = 1024,
                 channels: Iterable[int] = CHANNELS, mapping_layers: int = 8,
                 display_kernels: Iterable[int] | None = None) -> None:
        super().__init__()
        # model.json decides these: check types and bounds before anything is allocated
        z_dim = check_int("z_dim", z_dim, 1, MAX_LATENT_DIM)
        w_dim = check_int("w_dim", w_dim, 1, MAX_LATENT_DIM)
        resolution = check_resolution("resolution", resolution, 8)
        mapping_layers = check_int("mapping_layers", mapping_layers, 1, MAX_MAPPING_LAYERS)
        if not isinstance(channels, (list, tuple)) or len(channels) > 12:
            raise ValueError("channels must be a list of at most 12 channel counts")
        self.channels = tuple(check_int("channels", c, 1, MAX_CHANNELS) for c in channels)
        if len(self.channels) < 2 or 8 * 2 ** (len(self.channels) - 1) != resolution:
            raise ValueError(f"{len(self.channels)} channel entries give {8 * 2 ** (len(self.channels) - 1)} px, "
                             f"not {resolution}")
        if z_dim != w_dim:
            raise ValueError("MobileStyleGAN's mapping keeps the width: z_dim must equal w_dim")
        if any(c % 4 for c in self.channels[:-1]):
            raise ValueError("channels feeding a wavelet upsampling must be multiples of 4")
        n_heads = len(self.channels) - 1
        if display_kernels is None:  # stored before display heads existed
            display_kernels = (0,) * n_heads
        if not isinstance(display_kernels, (list, tuple)) or len(display_kernels) != n_heads:
            raise ValueError(f"display_kernels must list one kernel size (0: none) for each of the first "
                             f"{n_heads} stages")
        self.display_kernels = tuple(check_int("display_kernels", k, 0, 7) for k in display_kernels)
        if any(k and k % 2 == 0 for k in self.display_kernels):
            raise ValueError("display head kernel sizes must be odd")
        self.z_dim, self.w_dim, self.resolution = z_dim, w_dim, resolution
        self.mapping_layers = mapping_layers
        self.num_ws = 3 * (len(self.channels) - 1) + 2
        self.mapping_network = MappingNetwork(w_dim, mapping_layers)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.register_buffer("wavelet_taps", torch.zeros(2, 2, 2))
        self.stage_names = tuple(f"b{4 * 2 ** i}" for i in range(len(self.channels)))
        stages: dict[str, nn.Module] = {"b4": InputStage(w_dim, self.channels[0], self.display_kernels[0])}
        for i, c_out in enumerate(self.channels[1:], start=1):
            stages[self.stage_names[i]] = Block(w_dim, self.channels[i - 1], c_out, 4 * 2 ** i, last=i == n_heads,
                                                display_kernel=self.display_kernels[i] if i < n_heads else 0)
        self.stages = nn.ModuleDict(stages)
        self.style_layout = self._layout()
        self._modules_by_style = {l.name: self._style_module(l.name) for l in self.style_layout}

    # ---- layout -------------------------------------------------------------------------------
    def _layout(self) -> tuple[StyleLayer, ...]:
        out = [StyleLayer("b4.conv1", self.channels[0], 4, 0, 0)]
        for i, c_out in enumerate(self.channels[1:], start=1):
            name, res, c_in, row = self.stage_names[i], 4 * 2 ** i, self.channels[i - 1], 3 * i - 2
            out += [StyleLayer(f"{name}.up", c_in, res, row, i),
                    StyleLayer(f"{name}.conv1", c_in // 4, res, row, i),
                    StyleLayer(f"{name}.conv2", c_out, res, row + 1, i)]
        last = len(self.stage_names) - 1
        out.append(StyleLayer(f"{self.stage_names[last]}.to_img", self.channels[-1], 4 * 2 ** last,
                              3 * last, last, kind="rgb"))
        return tuple(out)

    def _style_module(self, name: str) -> nn.Module:
        stage, part = name.split(".")
        return getattr(self.stages[stage], part)

    @property
    def config(self) -> dict[str, Any]:
        config = {"z_dim": self.z_dim, "w_dim": self.w_dim, "resolution": self.resolution,
                  "channels": list(self.channels), "mapping_layers": self.mapping_layers}
        if any(self.display_kernels):
            config["display_kernels"] = list(self.display_kernels)
        return config

    @property
    def tap_names(self) -> tuple[str, ...]:
        """Each style layer's output activations (``bK.up`` = upsampled features before conv1's
        modulation; ``b512.to_img`` = the 12 Haar coefficients), plus ``"image"``."""
        return tuple(l.name for l in self.style_layout) + ("image",)

    # ---- mapping and styles -------------------------------------------------------------------
    def map_z(self, z: Tensor) -> Tensor:
        return self.mapping_network(z)

    def styles(self, ws: Tensor) -> "OrderedDict[str, Tensor]":
        ws = self.broadcast_w(ws)
        return OrderedDict((l.name, self._modules_by_style[l.name].affine(ws[:, l.w_index]))
                           for l in self.style_layout)

    # ---- synthesis ----------------------------------------------------------------------------
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
        """StyleSpace → image [N, 3, 1024, 1024] (see :meth:`Generator.synthesize`).

        ``noise_mode`` is accepted and ignored: this model's noise maps are fixed constants.
        ``stop_resolution`` r stops after the last stage whose features are at most r px and
        returns that stage's preview: an image of twice its feature resolution (r=256 → 512 px);
        r ≥ 512 renders the full image. ``cache[k]`` holds the features entering stage k ≥ 1 (a
        coarse render also keeps those entering the stage after its last). ``display``: a coarse
        image comes from the stage's display head where it has one (see the module docstring).
        """
        wanted, stop = self.check_synthesis(taps, start, cache, stop_resolution, noise_mode)
        last = len(self.stage_names) - 1
        result = SynthesisResult(image=torch.empty(0))
        x = cache[start] if start > 0 else None  # type: ignore[index]
        for k in range(start, stop + 1):
            if keep_cache and k > 0:
                result.cache[k] = x
            x = self._run_stage(k, x, styles, wanted, result.features, image=k == last)
        assert x is not None
        if stop < last:
            if keep_cache:
                result.cache[stop + 1] = x  # a coarse frame's work, reusable by the full one
            stage = self.stages[self.stage_names[stop]]
            head = stage.display if display and hasattr(stage, "display") else stage.preview
            x = inverse_wavelet(head(x), haar_kernel(self.wavelet_taps, 3).to(x.dtype))
        result.image = x.contiguous()
        if "image" in wanted:
            result.features["image"] = result.image
        return result

    def preview_size(self, stop_resolution: int) -> int:
        """The inverse wavelet doubles a stage's features: stage k's image is 8·2^k px."""
        stage = min(self.stage_of_resolution(stop_resolution), len(self.stage_names) - 1)
        return 2 * 4 * 2 ** stage

    @contextmanager
    def whole_stages(self) -> Iterator[None]:
        """No strips while this block runs (strips are a memory saving with identical results, but
        under autograd their slice bookkeeping makes every backward pass ~40 % slower)."""
        had = "tile_bytes" in vars(self)
        old = vars(self).get("tile_bytes")
        self.tile_bytes = 0
        try:
            yield
        finally:
            if had:
                self.tile_bytes = old
            else:
                del self.tile_bytes

    def _tile_rows(self, k: int, x: Tensor, tapped: bool) -> int | None:
        """Strip height for stage k on input ``x``, or None to run the whole batch at once.

        Strips (one sample at a time) are used on the CPU when the batch's activations would
        exceed twice ``tile_bytes``; not when taps are wanted, nor on GPUs (their allocators
        recycle memory, and strips would only add kernel launches)."""
        res = 4 * 2 ** k
        widest = max(self.channels[k], self.channels[k - 1] // 4) if k else self.channels[0]
        size = x.shape[0] * widest * res * res * x.element_size()
        if tapped or k == 0 or not self.tile_bytes or size <= 2 * self.tile_bytes or x.device.type != "cpu":
            return None
        return max(8, self.tile_bytes // (x.element_size() * res * widest))

    def _run_stage(self, k: int, x: Tensor | None, styles: Mapping[str, Tensor], wanted: set[str],
                   feats: dict[str, Tensor], image: bool) -> Tensor:
        """Stage k's output features, or the final image when ``image`` (last stage only)."""
        name = self.stage_names[k]
        stage = self.stages[name]

        def tap(part: str, value: Tensor) -> None:
            if f"{name}.{part}" in wanted:
                feats[f"{name}.{part}"] = value.contiguous()

        if k == 0:
            return stage(styles[f"{name}.conv1"], tap)
        assert x is not None
        kernel = haar_kernel(self.wavelet_taps, x.shape[1] // 4).to(x.dtype)
        s = (styles[f"{name}.up"], styles[f"{name}.conv1"], styles[f"{name}.conv2"])
        tiles = self._tile_rows(k, x, any(t.startswith(f"{name}.") for t in wanted))
        if not image:
            return stage(x, s, kernel, tap, tiles)
        s_img = styles[f"{name}.to_img"]
        img_kernel = haar_kernel(self.wavelet_taps, 3).to(x.dtype)
        if tiles:
            return stage(x, s, kernel, tap, tiles,
                         head=lambda y, n: inverse_wavelet(stage.to_img(y, s_img[n:n + 1]), img_kernel))
        coeffs = stage.to_img(stage(x, s, kernel, tap), s_img)
        tap("to_img", coeffs)
        return inverse_wavelet(coeffs, img_kernel)
