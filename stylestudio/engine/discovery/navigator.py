"""The ContraFeat navigator: K directions, each a softmax attention over W+ rows times a W vector.

``Δ_k = a_k ⊗ d_k``: ``a_k = softmax(θ_k)`` over the model's *live* W+ rows only (a row that feeds
no style layer, e.g. MobileStyleGAN's unused ``to_img`` rows, can change nothing, so attention
there would be wasted and would hide what a direction really does); ``d_k = c_k·B`` lies in the
span of a fixed basis ``B`` of W (top-q PCA components of mapped W, or SeFa's factors), so the
search stays among directions the model actually varies along.

Step size: ``d_k`` is RMS-normalised and then scaled to the natural spread of W along it (the
standard deviation of mapped faces along ``d_k``, ``sqrt(cᵀ C_B c / cᵀc)``), and the attention is
multiplied by the number of live rows, so uniform attention with s = 1 is a one-standard-deviation
move of every live row — the same meaning on every model whatever its W scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: 3-tap Gaussian (σ≈0.85) for smoothing attention across neighbouring rows
SMOOTH_TAPS = (0.25, 0.5, 0.25)


def live_rows(generator) -> list[int]:
    """W+ rows that feed at least one style layer, ascending."""
    return sorted({layer.w_index for layer in generator.style_layout})


@dataclass(frozen=True)
class Basis:
    """An orthonormal basis of (part of) W and W's covariance in it."""

    kind: str  #: ``"pca"`` or ``"sefa"``
    vectors: np.ndarray  #: [q, w_dim], orthonormal rows
    covariance: np.ndarray  #: [q, q], covariance of mapped W in this basis
    mean: np.ndarray  #: [w_dim], mean of mapped W

    @property
    def q(self) -> int:
        return int(self.vectors.shape[0])

    def spread(self, vectors: np.ndarray) -> np.ndarray:
        """Standard deviation of mapped W along each unit row of ``vectors`` [k, w_dim] (in the span)."""
        c = np.asarray(vectors, np.float64) @ self.vectors.T.astype(np.float64)
        return np.sqrt(np.maximum(np.einsum("ki,ij,kj->k", c, self.covariance, c) / (c * c).sum(1), 0.0))


@torch.no_grad()
def sample_w(generator, samples: int, seed: int, batch: int = 1000) -> np.ndarray:
    """``samples`` mapped W [samples, w_dim] (no truncation) from ``seed``."""
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn(samples, generator.z_dim, generator=g)
    out = [generator.map_z(z[i : i + batch].to(generator.device)).double().cpu() for i in range(0, samples, batch)]
    return torch.cat(out).numpy()


def pca_basis(generator, q: int = 30, samples: int = 20000, seed: int = 0) -> Basis:
    """GANSpace's basis: the top-``q`` principal components of mapped W (scikit-learn PCA)."""
    from sklearn.decomposition import PCA

    w = sample_w(generator, samples, seed)
    q = min(q, generator.w_dim, samples)
    pca = PCA(n_components=q, svd_solver="randomized" if q < generator.w_dim // 4 else "full",
              random_state=int(seed) % (2**32)).fit(w)
    return Basis("pca", pca.components_.astype(np.float32), np.diag(pca.explained_variance_),
                 pca.mean_.astype(np.float32))


def sefa_basis(generator, q: int = 30, samples: int = 20000, seed: int = 0) -> Basis:
    """SeFa's basis: the top-``q`` eigenvectors of AᵀA of the style affines (every row)."""
    from ..directions.sefa import affine_matrix

    a = affine_matrix(generator)
    eigval, eigvec = np.linalg.eigh(a.T @ a)
    vectors = eigvec[:, np.argsort(eigval)[::-1][: min(q, generator.w_dim)]].T
    w = sample_w(generator, samples, seed)
    cov = np.cov((w - w.mean(0)) @ vectors.T, rowvar=False).reshape(len(vectors), len(vectors))
    return Basis("sefa", vectors.astype(np.float32), cov, w.mean(0).astype(np.float32))


class Navigator(nn.Module):
    """K global directions ``Δ_k = a_k ⊗ d_k`` in W+ (see the module docstring)."""

    def __init__(self, basis: Basis, num_ws: int, rows: list[int], k: int, *, smooth: bool = False,
                 seed: int = 0) -> None:
        super().__init__()
        if k < 1 or not rows:
            raise ValueError("a navigator needs at least one direction and one live row")
        self.num_ws, self.k, self.smooth = int(num_ws), int(k), bool(smooth)
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.long))
        self.register_buffer("basis", torch.from_numpy(np.asarray(basis.vectors, np.float32)).clone())
        self.register_buffer("basis_cov", torch.from_numpy(np.asarray(basis.covariance, np.float32)).clone())
        g = torch.Generator().manual_seed(int(seed))
        # Small random logits break the symmetry between rows; coefficients start anywhere in the span.
        self.logits = nn.Parameter(0.1 * torch.randn(self.k, len(rows), generator=g))
        self.coeffs = nn.Parameter(torch.randn(self.k, basis.q, generator=g))

    def attention(self) -> Tensor:
        """a_k over the live rows [K, live], each summing to 1 (smoothed across rows if asked)."""
        a = torch.softmax(self.logits, dim=1)
        if self.smooth and a.shape[1] > 1:
            taps = a.new_tensor(SMOOTH_TAPS).view(1, 1, 3)
            a = F.conv1d(F.pad(a[:, None], (1, 1), mode="replicate"), taps)[:, 0]
            a = a / a.sum(1, keepdim=True)
        return a

    def row_weights(self) -> Tensor:
        """Attention on all W+ rows [K, num_ws] times the number of live rows (dead rows 0)."""
        a = self.attention()
        full = a.new_zeros(self.k, self.num_ws)
        return full.index_copy(1, self.rows, a * a.shape[1])

    def unit_vectors(self) -> Tensor:
        """d_k / |d_k| [K, w_dim] (RMS normalisation up to the constant √w_dim)."""
        d = self.coeffs @ self.basis
        rms = d.pow(2).mean(1, keepdim=True).sqrt() + 1e-12
        return (d / rms) / d.shape[1] ** 0.5

    def spread(self) -> Tensor:
        """Natural standard deviation of W along each d_k [K]."""
        c = self.coeffs
        return ((c @ self.basis_cov * c).sum(1) / (c * c).sum(1)).clamp_min(1e-12).sqrt()

    def forward(self) -> Tensor:
        """Δ [K, num_ws, w_dim]: one natural standard deviation along each direction."""
        return self.row_weights()[:, :, None] * (self.unit_vectors() * self.spread()[:, None])[:, None, :]


def diversity_loss(delta: Tensor) -> Tensor:
    """Σ_{i≠j} cos²(Δ_i, Δ_j) over the flattened directions (the caller weights it, 0.1)."""
    flat = F.normalize(delta.flatten(1), dim=1)
    cos = flat @ flat.T
    off = cos - torch.diag_embed(torch.diagonal(cos))
    return off.pow(2).sum()
