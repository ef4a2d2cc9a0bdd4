"""ContraFeat's contrastive losses on sensor feature changes (Zhu et al. 2022).

Every loss works per sensor layer and per spatial position: the cosine between two feature
*differences* (an edit's effect) at a position, squared (a direction may flip sign), weighted by a
mask that says where the edits changed anything — the min–max-normalised norm of the difference,
so unchanged background does not vote. The masks of the two compared differences are multiplied
(a position counts when both edits act there), as in the authors' code.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-6


def norm_mask(diff: Tensor) -> Tensor:
    """[N, C, H, W] difference → [N, H, W]: its per-position norm, min–max normalised per sample."""
    norm = diff.norm(dim=1)
    flat = norm.flatten(1)
    lo = flat.min(1, keepdim=True).values
    hi = flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo + EPS)).view_as(norm)


def masked_cos2(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    """Σ mask·cos²(a, b) / Σ mask over positions: [N, C, H, W] × 2, mask [N, H, W] → [N]."""
    cos = F.cosine_similarity(a, b, dim=1, eps=EPS)
    return (mask * cos.pow(2)).flatten(1).sum(1) / (mask.flatten(1).sum(1) + EPS)


def binary_layer_loss(diff_q: Tensor, diff_pos: Tensor, diff_neg: Tensor) -> Tensor:
    """``−Σ mask·cos²(Dq, D+)/Σmask + Σ mask·cos²(Dq, D−)/Σmask`` per pair [N]."""
    mq, mp, mn = norm_mask(diff_q), norm_mask(diff_pos), norm_mask(diff_neg)
    return -masked_cos2(diff_q, diff_pos, mq * mp) + masked_cos2(diff_q, diff_neg, mq * mn)


def binary_loss(feats: Sequence[Tensor]) -> Tensor:
    """Binary contrast over sensor layers. Each layer's batch is five equal parts: sample 1,
    sample 2, sample 1 moved along k (query), sample 2 along k (positive), sample 2 along j ≠ k
    (negative). Returns the mean over pairs of the sum over layers."""
    total = None
    for f in feats:
        p1, p2, q, pos, neg = f.chunk(5)
        layer = binary_layer_loss(q - p1, pos - p2, neg - p2)
        total = layer if total is None else total + layer
    return total.mean()


def prototype_similarity(diff: Tensor, protos: Tensor) -> Tensor:
    """Masked cos² between each edit's difference [B, C, H, W] and each prototype pattern
    [K, C, h, w] (resized to H×W) → [B, K]."""
    b, c, h, w = diff.shape
    if protos.shape[-2:] != (h, w):
        protos = F.interpolate(protos, size=(h, w), mode="bilinear", align_corners=False)
    mq, mk = norm_mask(diff), norm_mask(protos)
    dq = diff / (diff.norm(dim=1, keepdim=True) + EPS)
    dk = protos / (protos.norm(dim=1, keepdim=True) + EPS)
    cos = torch.einsum("bchw,kchw->bkhw", dq, dk)
    mask = mq[:, None] * mk[None]
    return (mask * cos.pow(2)).flatten(2).sum(2) / (mask.flatten(2).sum(2) + EPS)


def prototype_loss(feats: Sequence[Tensor], proto_feats: Sequence[Tensor], index: Tensor,
                   pos: float = 1.0, neg: float = 1.0) -> Tensor:
    """``−pos·sim(k) + neg·mean_{j≠k} sim(j)`` summed over layers, mean over the batch.

    ``feats``: per layer [2B, ...], the first half before and the second half after moving along
    direction ``index[b]``; ``proto_feats``: per layer the sensor features of the K prototype
    variation images.
    """
    total = None
    for f, p in zip(feats, proto_feats):
        before, after = f.chunk(2)
        sim = prototype_similarity(after - before, p)  # [B, K]
        onehot = F.one_hot(index, sim.shape[1]).to(sim.dtype)
        s_pos = (sim * onehot).sum(1)
        s_neg = (sim * (1 - onehot)).sum(1) / max(1, sim.shape[1] - 1)
        layer = -pos * s_pos + neg * s_neg
        total = layer if total is None else total + layer
    return total.mean()
