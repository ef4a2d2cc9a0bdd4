"""What ContraFeat compares: frozen deep features of the rendered faces.

The paper's sensor is an ImageNet AlexNet, which no package registry ships; the VGG16 inside the
LPIPS weights the project already converts (``engine/perceptual/lpips.py``) is the same kind of
ImageNet feature network, so it is the default, read up to relu3_3 or relu4_3 (deeper layers are
too coarse at the small render sizes used on a CPU). The second option needs no extra network:
the generator's own synthesis activations, which are free because they come out of the render.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..perceptual.lpips import LPIPS, VGG_CHANNELS

#: VGG16 conv index (0-based among the 13) after whose ReLU each named layer is read
VGG_TAPS = {"relu1_2": 1, "relu2_2": 3, "relu3_3": 6, "relu4_3": 9}
SENSORS = ("vgg16-relu3_3", "vgg16-relu4_3", "generator")


class VGGSensor(nn.Module):
    """LPIPS' ImageNet VGG16, frozen, returning raw ReLU features up to ``depth``.

    Images in [-1, 1] are resized (antialiased) to ``size`` and scaled as LPIPS does (ImageNet
    statistics expressed for [-1, 1] inputs).
    """

    def __init__(self, lpips: LPIPS, depth: str = "relu3_3", size: int = 128) -> None:
        super().__init__()
        if depth not in VGG_TAPS:
            raise ValueError(f"sensor depth must be one of {', '.join(VGG_TAPS)}, got {depth!r}")
        self.size = int(size)
        self.last = VGG_TAPS[depth]
        self.taps = {i for i in VGG_TAPS.values() if i <= self.last}
        # a copy: the cached LPIPS module stays where it is when the sensor moves to a device
        self.convs = copy.deepcopy(nn.ModuleList(list(lpips.convs)[: self.last + 1]))
        self.register_buffer("shift", lpips.shift.clone())
        self.register_buffer("scale", lpips.scale.clone())
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: Tensor) -> list[Tensor]:
        x = images
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.size)
        h = (x - self.shift) / self.scale
        feats, ci = [], 0
        for c in VGG_CHANNELS:
            if ci > self.last:
                break
            if c == "M":
                h = F.max_pool2d(h, 2, 2)
                continue
            h = F.relu(self.convs[ci](h))
            if ci in self.taps:
                feats.append(h)
            ci += 1
        return feats


def generator_taps(generator, stop_resolution: int | None, count: int = 3) -> tuple[str, ...]:
    """The ``count`` deepest feature-conv taps rendered up to ``stop_resolution``."""
    limit = stop_resolution or generator.resolution
    names = set(generator.tap_names)
    convs = [l.name for l in generator.style_layout
             if l.kind == "conv" and l.name in names and l.resolution <= limit]
    if not convs:
        raise ValueError("the generator exposes no feature taps to use as a sensor")
    return tuple(convs[-count:])


def pick_features(features: dict[str, Tensor], taps: Sequence[str]) -> list[Tensor]:
    return [features[t] for t in taps]


def load_sensor(kind: str, device: torch.device | str, size: int, progress=None) -> VGGSensor | None:
    """The VGG sensor for ``kind`` (``None`` for ``"generator"``: features come from the render)."""
    if kind not in SENSORS:
        raise ValueError(f"sensor must be one of {', '.join(SENSORS)}, got {kind!r}")
    if kind == "generator":
        return None
    from ..perceptual.lpips import load_lpips

    return VGGSensor(load_lpips("cpu", None, progress), kind.split("-", 1)[1], size).to(device)
