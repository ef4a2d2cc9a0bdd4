"""The StyleGAN2 residual discriminator (Karras et al. 2020, config F "resnet"), in plain PyTorch.

fromRGB at full resolution, then one residual block per resolution (3×3 conv, 3×3 conv with
FIR-blurred 2× downsampling, a 1×1 blurred-downsampled skip, summed with gain √½), and at 4×4
the epilogue: minibatch standard deviation (groups of 4), 3×3 conv, a fully connected layer and
the output logit. Every weight uses the equalised learning rate; activations are leaky ReLU ×√2.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..generator import check_int, check_resolution
from ..stylegan2.network import DEFAULT_FILTER, FullyConnected, bias_lrelu, upfirdn2d


class Conv(nn.Module):
    """Equalised-lr conv; ``down=2`` blurs with the [1,3,3,1] filter before a stride-2 conv."""

    def __init__(self, cin: int, cout: int, kernel: int, *, bias: bool = True, activation: bool = True,
                 down: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.gain = 1 / math.sqrt(cin * kernel * kernel)
        self.activation, self.down, self.kernel = activation, down, kernel
        taps = torch.tensor(DEFAULT_FILTER)
        self.register_buffer("taps", taps / taps.sum(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.gain
        if self.down == 2:
            pad = (2, 2) if self.kernel == 3 else (1, 1)
            x = F.conv2d(upfirdn2d(x, self.taps, pad=pad), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.kernel // 2)
        if self.activation:
            return bias_lrelu(x, self.bias if self.bias is not None else torch.zeros_like(w[:, 0, 0, 0]))
        return x if self.bias is None else x + self.bias.reshape(1, -1, 1, 1)


class DiscriminatorBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = Conv(cin, cin, 3)
        self.conv1 = Conv(cin, cout, 3, down=2)
        self.skip = Conv(cin, cout, 1, bias=False, activation=False, down=2)

    def forward(self, x: Tensor) -> Tensor:
        y = self.skip(x)
        x = self.conv1(self.conv0(x))
        return (x + y) * math.sqrt(0.5)


def minibatch_std(x: Tensor, group: int = 4) -> Tensor:
    n, c, h, w = x.shape
    g = min(group, n)
    if n % g:
        g = 1
    y = x.reshape(g, -1, c, h, w)
    y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=[1, 2, 3])  # [N/g]
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """Image [N, 3, R, R] in [-1, 1] → realness logit [N]."""

    def __init__(self, img_resolution: int, *, channel_base: int = 32768, channel_max: int = 512,
                 img_channels: int = 3, mbstd_group: int = 4) -> None:
        super().__init__()
        res = check_resolution("img_resolution", img_resolution, 8)
        self._config = {"img_resolution": res, "channel_base": check_int("channel_base", channel_base, 1, 1 << 24),
                        "channel_max": check_int("channel_max", channel_max, 1, 4096),
                        "img_channels": check_int("img_channels", img_channels, 1, 16),
                        "mbstd_group": check_int("mbstd_group", mbstd_group, 1, 64)}
        ch = {r: min(channel_base // r, channel_max) for r in (2 ** i for i in range(2, int(math.log2(res)) + 1))}
        self.mbstd_group = mbstd_group
        self.from_rgb = Conv(img_channels, ch[res], 1)
        self.blocks = nn.ModuleDict({f"b{r}": DiscriminatorBlock(ch[r], ch[r // 2])
                                     for r in sorted(ch, reverse=True) if r > 4})
        self.conv = Conv(ch[4] + 1, ch[4], 3)
        self.fc = FullyConnected(ch[4] * 16, ch[4], activation="lrelu")
        self.out = FullyConnected(ch[4], 1)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def forward(self, img: Tensor) -> Tensor:
        x = self.from_rgb(img)
        for block in self.blocks.values():
            x = block(x)
        x = self.conv(minibatch_std(x, self.mbstd_group))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
