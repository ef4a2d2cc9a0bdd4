"""The learned attribute predictors: age, gender (dlib/Cydral CC0 nets), emotion, identity.

Each takes images as a float tensor [N, 3, H, W] in [-1, 1] (the generator's output convention)
and 68-point landmarks [N, 68, 2] in the same pixel frame, cuts its own face chip and applies the
normalisation the network was trained with (checked on known faces: see tests/test_attributes.py).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from . import align, assets
from .graphs import OnnxNet, TFJSNet

#: the per-channel means (in 0–255) of the dlib age/gender nets; input = (RGB − mean) / 256
DLIB_MEANS = (122.781998, 117.000999, 104.297997)
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _bytes(images: Tensor) -> Tensor:
    """[-1, 1] → [0, 255] float (what the networks call a pixel)."""
    return (images.clamp(-1, 1) + 1) * 127.5


class AgeGender(nn.Module):
    """Age in years (Σ p·bin over 81 bins) and femaleness P(female) from the CC0 dlib networks."""

    def __init__(self, age_net: nn.Module, gender_net: nn.Module) -> None:
        super().__init__()
        self.age_net = age_net
        self.gender_net = gender_net
        self.register_buffer("bins", torch.tensor(assets.AGE_BINS, dtype=torch.float32))
        self.register_buffer("mean", torch.tensor(DLIB_MEANS).view(1, 3, 1, 1))

    @classmethod
    def load(cls, progress=None) -> "AgeGender":
        return cls(OnnxNet.load(assets.onnx_file(assets.AGE_ONNX, progress)),
                   OnnxNet.load(assets.onnx_file(assets.GENDER_ONNX, progress))).eval()

    def chips(self, images: Tensor, lm68: Tensor, size: int) -> Tensor:
        # dlib's extract_image_chip(get_face_chip_details(shape5, size, 0.2)), as the package does
        return align.template_chip(images, align.dlib5_points(lm68), align.DLIB5_TEMPLATE, size, padding=0.2)

    def normalise(self, chips: Tensor) -> Tensor:
        return (_bytes(chips) - self.mean) / 256.0

    @torch.no_grad()
    def forward(self, images: Tensor, lm68: Tensor) -> dict[str, Tensor]:
        p_age = self.age_net(self.normalise(self.chips(images, lm68, 64)))
        p_gender = self.gender_net(self.normalise(self.chips(images, lm68, 32)))
        return {"age": p_age @ self.bins, "female": p_gender[:, 0]}


class Emotion(nn.Module):
    """Seven-way expression classifier (mini-Xception on 64×64 grey, inputs in [−1, 1])."""

    def __init__(self, net: TFJSNet) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("grey", torch.tensor([0.2989, 0.5870, 0.1140]).view(1, 3, 1, 1))

    @classmethod
    def load(cls, progress=None) -> "Emotion":
        return cls(TFJSNet.load(assets.human_model("emotion", progress))).eval()

    def chips(self, images: Tensor, lm68: Tensor) -> Tensor:
        return align.box_chip(images, lm68, 64, scale=1.1)

    @torch.no_grad()
    def forward(self, images: Tensor, lm68: Tensor) -> Tensor:
        """[N, 7] probabilities in :data:`EMOTIONS` order."""
        rgb01 = (self.chips(images, lm68).clamp(-1, 1) + 1) / 2
        grey = (rgb01 * self.grey).sum(1, keepdim=True)
        x = (grey - 0.5) * 2
        return self.net(x.permute(0, 2, 3, 1))["Identity"]


class Identity(nn.Module):
    """MobileFaceNet 192-d face embedding on ArcFace-aligned 112-px chips, inputs in [0, 1].

    Checked on generated faces: [0, 1] inputs separate the same face (rendered at two sizes)
    from different faces best, *after* removing the population's mean embedding (see
    :func:`~.predictor.identity_distance`); the network's own unit-length output is dominated by
    a component every face shares.
    """

    def __init__(self, net: TFJSNet) -> None:
        super().__init__()
        self.net = net

    @classmethod
    def load(cls, progress=None) -> "Identity":
        return cls(TFJSNet.load(assets.human_model("mobilefacenet", progress))).eval()

    def chips(self, images: Tensor, lm68: Tensor) -> Tensor:
        return align.template_chip(images, align.arcface_points(lm68), align.ARCFACE_TEMPLATE, 112)

    @torch.no_grad()
    def raw(self, images: Tensor, lm68: Tensor) -> Tensor:
        """The embedding before the network's final L2 normalisation: [N, 192]."""
        x = (self.chips(images, lm68).clamp(-1, 1) + 1) / 2
        return self.net(x.permute(0, 2, 3, 1), ["MobileFaceNet/Logits/SpatialSqueeze"])[
            "MobileFaceNet/Logits/SpatialSqueeze"]
