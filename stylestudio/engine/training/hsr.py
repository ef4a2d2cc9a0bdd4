"""HSR (Karmali et al., ECCV 2022): align the generator's block features with a frozen network's.

For each generator block at 8/16/32/64 px that the model has, a 1×1 convolution (trained with
the generator) projects the block's output features (``b{r}.conv1``) to the channels of a
frozen network's features at a matching depth; the loss is the squared distance between the
two after resizing the projection to the target's size. Coarse generator blocks are matched with
deep features, finer blocks with shallower ones, as the paper matches them to ViT blocks.

The paper's frozen network is DINO ViT-B/16 (blocks 2/5/8/11). DINO ships in no package
registry, so StyleStudio uses the ImageNet VGG16 carried by the LPIPS weights: its relu5_3,
relu4_3, relu3_3 and relu2_2 activations, coarsest generator block ↔ relu5_3. Both the target
and the projection are unit-normalised over channels (as LPIPS normalises), so the loss is
scale-free: 0 when aligned, at most 4 per pixel. The targets are the frozen network's features
of the generated image itself, without gradient.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..generator import Generator
from ..perceptual.lpips import HEAD_CHANNELS

HSR_RESOLUTIONS = (8, 16, 32, 64)
#: LPIPS/VGG16 taps, deepest first (relu5_3, relu4_3, relu3_3, relu2_2), matched to blocks coarse → fine
VGG_TAPS_DEEP_FIRST = (4, 3, 2, 1)
FEATURE_NETWORKS = ("vgg16", "none")


def unit(x: Tensor) -> Tensor:
    return x / (x.square().sum(1, keepdim=True).add(1e-10).sqrt())


def vgg_side(resolution: int) -> int:
    """The side the generated image is resized to for VGG16: 4× the model (relu5_3 then sees
    resolution/4 px), at least 64 and at most VGG's 224."""
    return max(64, min(224, 4 * resolution))


class HSRHeads(nn.Module):
    """The trainable 1×1 projections, one per matched generator block."""

    def __init__(self, gen: Generator, resolutions: tuple[int, ...] = HSR_RESOLUTIONS) -> None:
        super().__init__()
        blocks = sorted(r for r in resolutions if f"b{r}.conv1" in gen.tap_names)
        if not blocks:
            raise ValueError(f"the generator has no block at {', '.join(map(str, resolutions))} px for HSR")
        self.resolutions = tuple(blocks[: len(VGG_TAPS_DEEP_FIRST)])
        self.vgg_taps = VGG_TAPS_DEEP_FIRST[: len(self.resolutions)]
        self.heads = nn.ModuleDict({
            f"b{r}": nn.Conv2d(gen.layer(f"b{r}.conv1").channels, HEAD_CHANNELS[t], 1)
            for r, t in zip(self.resolutions, self.vgg_taps)})

    @property
    def taps(self) -> tuple[str, ...]:
        return tuple(f"b{r}.conv1" for r in self.resolutions)

    def loss(self, features: dict[str, Tensor], targets: list[Tensor]) -> Tensor:
        """Mean over matched blocks of the per-pixel squared distance (``targets`` = LPIPS features)."""
        total = 0.0
        for r, t in zip(self.resolutions, self.vgg_taps):
            target = targets[t]
            pred = unit(self.heads[f"b{r}"](features[f"b{r}.conv1"]))
            if pred.shape[-1] != target.shape[-1]:
                pred = unit(F.interpolate(pred, size=target.shape[-2:], mode="bilinear", align_corners=False))
            total = total + (pred - target).square().sum(1).mean()
        return total / len(self.resolutions)


class HSRTarget:
    """The frozen VGG16 (LPIPS weights): unit-normalised features of a batch of images, no gradient."""

    def __init__(self, resolution: int, device: torch.device | str) -> None:
        from ..perceptual.lpips import load_lpips

        self.net = load_lpips(device, size=vgg_side(resolution))

    @torch.no_grad()
    def __call__(self, images: Tensor) -> list[Tensor]:
        return self.net.features(images.detach().float())
