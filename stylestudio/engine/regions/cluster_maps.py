"""Cluster maps: which catalog cluster every pixel of a face belongs to, at any resolution."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def cluster_scores(features: Tensor, centroids: Tensor) -> Tensor:
    """Cosine similarity of every pixel's channel vector to every centroid: [N, K, H, W]."""
    f = F.normalize(features.float(), dim=1)
    return torch.einsum("nchw,kc->nkhw", f, centroids.to(f))


def cluster_probs(scores: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Hard cluster memberships at ``size`` [N, K, h, w] (one-hot when upsampling, soft when pooling).

    Upsampling interpolates the similarity maps before the argmax, so boundaries are smooth at any
    resolution; downsampling area-averages the one-hot map so memberships still sum to one.
    """
    h, w = (size, size) if isinstance(size, int) else size
    k = scores.shape[1]
    if h >= scores.shape[-2]:
        if (h, w) != tuple(scores.shape[-2:]):
            scores = F.interpolate(scores, size=(h, w), mode="bilinear", align_corners=False)
        return F.one_hot(scores.argmax(1), k).permute(0, 3, 1, 2).to(scores.dtype)
    onehot = F.one_hot(scores.argmax(1), k).permute(0, 3, 1, 2).to(scores.dtype)
    return F.adaptive_avg_pool2d(onehot, (h, w))


def resize_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """[N, 1, H, W] soft mask → ``size`` (area when shrinking, bilinear when growing)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    if size[0] <= mask.shape[-2]:
        return F.adaptive_avg_pool2d(mask, size)
    return F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
