"""The built-in encoder's image side: frozen face features → a small head trained into MiniLM's space.

No CLIP ships in any package registry, so the built-in encoder learns its image tower the
LiT/ShareLock way: image features the project already has stay frozen — VGG16 (the LPIPS
weights), the age and gender nets' penultimate layers, the expression net's last feature maps,
the MobileFaceNet identity embedding — and only an MLP on top is trained, with a symmetric
InfoNCE loss, against the *frozen* all-MiniLM-L6-v2 embeddings of captions that the attribute
predictors wrote for generated faces (``scripts/train_face_text_head.py``).

The predictors' face chips are cut at the default model's *average* landmark positions (stored
with the head) rather than at landmarks detected per image: the generator's faces are aligned
the FFHQ way, the chip is then a fixed differentiable warp, and ``encode_image`` needs no face
detector, never fails on a face, and passes gradients to the image (ContraCLIP needs them).
The head can only know what the captions said: see docs/textpaths.md for its measured limits.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import InputError

HEAD_FORMAT = "stylestudio-face-text-head"
HEAD_VERSION = 1
FEATURE_SIZE = 256  #: images are resized to this side before any feature is taken
VGG_SIZE = 112  #: VGG16 sees the face box at this side (its cost grows with the square)
VGG_TAPS = (2, 3, 4)  #: relu3_3, relu4_3, relu5_3 of the five LPIPS taps
EMOTION_FEATURES = "StatefulPartitionedCall/model_1/add_2/add"
EMOTION_LOGITS = "StatefulPartitionedCall/model_1/global_average_pooling2d_1/Mean"
IDENTITY_FEATURES = "MobileFaceNet/Logits/SpatialSqueeze"


def head_file() -> Path:
    """The shipped head (package data, like resources/identity/ and resources/encoder/)."""
    from ... import paths

    return Path(paths.resources_dir()) / "textencoder" / "minilm-face-head.pt"


class FaceFeatures(nn.Module):
    """Generator images (RGB, −1…1, any size) → frozen face features [N, dim]; differentiable in the image."""

    def __init__(self, template: Tensor, progress: Any = None) -> None:
        super().__init__()
        from ..attributes.networks import AgeGender, Emotion, Identity
        from ..perceptual.lpips import load_lpips

        self.vgg = load_lpips("cpu", size=None, progress=progress)
        self.age_gender = AgeGender.load(progress)
        self.emotion = Emotion.load(progress)
        self.identity = Identity.load(progress)
        #: the model's mean 68 landmarks, in units of the image side
        self.register_buffer("template", template.float().reshape(1, 68, 2))
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        from ..attributes import align

        x = images.float()
        if x.shape[-1] != FEATURE_SIZE or x.shape[-2] != FEATURE_SIZE:
            x = F.interpolate(x, size=(FEATURE_SIZE, FEATURE_SIZE), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > FEATURE_SIZE)
        lm = (self.template * FEATURE_SIZE).expand(x.shape[0], -1, -1).cpu()
        parts = []
        # VGG16 on the face box (the LPIPS network's unit-normalised taps, averaged over space)
        box = align.box_chip(x, lm, VGG_SIZE, scale=1.3)
        feats = self.vgg.features(box)
        parts += [feats[j].mean((2, 3)) for j in VGG_TAPS]
        # age and gender nets: their penultimate layers and logits, on their own chips
        ag = self.age_gender
        age_in = ag.normalise(ag.chips(x, lm, 64))
        gender_in = ag.normalise(ag.chips(x, lm, 32))
        parts += [ag.age_net(age_in, "layer_1_flatten"), ag.age_net(age_in, "logits"),
                  ag.gender_net(gender_in, "layer_1_flatten"), ag.gender_net(gender_in, "logits")]
        # expression net: last feature maps (averaged) and logits
        rgb01 = (self.emotion.chips(x, lm).clamp(-1, 1) + 1) / 2
        grey = ((rgb01 * self.emotion.grey).sum(1, keepdim=True) - 0.5) * 2
        emo = self.emotion.net(grey.permute(0, 2, 3, 1), [EMOTION_FEATURES, EMOTION_LOGITS])
        parts += [emo[EMOTION_FEATURES].mean((1, 2)), emo[EMOTION_LOGITS]]
        # identity embedding (MobileFaceNet, before its L2 normalisation)
        chip = (self.identity.chips(x, lm).clamp(-1, 1) + 1) / 2
        parts.append(self.identity.net(chip.permute(0, 2, 3, 1), [IDENTITY_FEATURES])[IDENTITY_FEATURES])
        return torch.cat([p.reshape(p.shape[0], -1).float() for p in parts], 1)


class FaceHead(nn.Module):
    """Standardised features → MLP → a 384-d vector in MiniLM's sentence space."""

    def __init__(self, in_dim: int, out_dim: int = 384, hidden: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def set_standardisation(self, feats: Tensor) -> None:
        self.mean.copy_(feats.mean(0))
        self.std.copy_(feats.std(0).clamp(min=1e-4))

    def forward(self, feats: Tensor) -> Tensor:
        return self.mlp((feats - self.mean) / self.std)


def info_nce(img: Tensor, txt: Tensor, caption_ids: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric InfoNCE; another face with the very same caption is not counted as a negative.

    Captions written from a handful of labels repeat within a batch ("a smiling woman"), and
    pushing a face away from its twin's identical caption would only teach noise."""
    img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    logits = logit_scale.exp().clamp(max=100) * img @ txt.T
    twin = (caption_ids[:, None] == caption_ids[None, :]) & ~torch.eye(len(caption_ids), dtype=torch.bool,
                                                                           device=logits.device)
    logits = logits.masked_fill(twin, float("-inf"))
    target = torch.arange(len(caption_ids), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def save_head(path: Path, head: FaceHead, template: Tensor, meta: dict[str, Any]) -> None:
    import io

    from ...safe_io import atomic_write_bytes

    state = {k: v.detach().cpu() for k, v in head.state_dict().items()}
    state = {k: (v.half() if v.is_floating_point() and v.ndim == 2 else v.float()) for k, v in state.items()}
    buf = io.BytesIO()
    torch.save({"format": HEAD_FORMAT, "version": HEAD_VERSION, "state": state, "template": template.float().cpu(),
                "in_dim": int(head.mean.shape[0]), "hidden": int(head.mlp[0].out_features),
                "out_dim": int(head.mlp[3].out_features), "meta": meta}, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_head(path: Path) -> tuple[FaceHead, Tensor, dict[str, Any]]:
    """(head, mean landmarks [68, 2], meta); one clear error for anything that is not such a file."""
    import pickle

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise InputError(f"{path}: not a face-text head ({str(exc)[:160]})") from None
    if not isinstance(blob, dict) or blob.get("format") != HEAD_FORMAT:
        raise InputError(f"{path}: not a face-text head")
    if blob.get("version") != HEAD_VERSION:
        raise InputError(f"{path}: face-text head version {blob.get('version')!r}, this StyleStudio reads {HEAD_VERSION}")
    try:
        head = FaceHead(int(blob["in_dim"]), int(blob["out_dim"]), int(blob["hidden"]))
        head.load_state_dict({k: v.float() for k, v in blob["state"].items()}, strict=True)
        template = torch.as_tensor(blob["template"]).float().reshape(68, 2)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: damaged face-text head ({str(exc)[:160]})") from None
    if not torch.isfinite(template).all() or not all(torch.isfinite(v).all() for v in head.state_dict().values()):
        raise InputError(f"{path}: damaged face-text head (non-finite numbers)")
    return head.eval().requires_grad_(False), template, dict(blob.get("meta", {}))


class FaceImageEncoder(nn.Module):
    """Images → the built-in encoder's 384-d image embeddings (features, then the trained head)."""

    def __init__(self, path: Path | None = None, progress: Any = None) -> None:
        super().__init__()
        head, template, self.meta = read_head(path or head_file())
        self.features = FaceFeatures(template, progress)
        self.head = head

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))


@lru_cache(maxsize=1)
def face_image_encoder() -> FaceImageEncoder:
    return FaceImageEncoder()


def train_head(head: FaceHead, feats: Tensor, caps: Tensor, text_emb: Tensor, *, epochs: int = 60,
               batch: int = 256, lr: float = 1e-3, weight_decay: float = 0.05, seed: int = 0) -> list[float]:
    """Symmetric InfoNCE of the head's image embeddings against frozen caption embeddings.

    ``feats`` [N, D] cached :class:`FaceFeatures`; ``caps`` [N, K] indices into ``text_emb`` [T, 384]
    (K captions per face, one drawn per face and epoch). Returns the mean loss of each epoch."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * max(1, feats.shape[0] // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    head.train()
    losses = []
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(feats.shape[0], generator=g)
            total, count = 0.0, 0
            for i in range(0, feats.shape[0] - batch + 1 if feats.shape[0] >= batch else 1, batch):
                idx = order[i:i + batch]
                ids = caps[idx, torch.randint(caps.shape[1], (idx.shape[0],), generator=g)]
                loss = info_nce(head(feats[idx]), text_emb[ids], ids, head.logit_scale)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if sched.last_epoch < steps - 1:
                    sched.step()
                total, count = total + loss.item(), count + 1
            losses.append(total / max(count, 1))
    head.eval()
    return losses
