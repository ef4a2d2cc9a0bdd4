"""Closed-form semantic factors (SeFa, Shen & Zhou 2021) for any generator.

SeFa's directions are the top eigenvectors of AᵀA, where A stacks the style affine weights of
the chosen layers. We read A through the generator interface alone — styles are affine in W, so
``A[:, i] = styles(e_i) − styles(0)`` — which makes the factors available for every model without
architecture-specific code.
"""
from __future__ import annotations

import numpy as np
import torch

from .library import Direction, DirectionLibrary


@torch.no_grad()
def affine_matrix(generator, rows: list[int] | None = None) -> np.ndarray:
    """Stack of the style affines fed by W+ ``rows`` (all rows when None): [total_channels, w_dim]."""
    rows = list(range(generator.num_ws)) if rows is None else rows
    w_dim, dev = generator.w_dim, generator.device
    zero = torch.zeros(1, generator.num_ws, w_dim, device=dev)
    basis = torch.zeros(w_dim, generator.num_ws, w_dim, device=dev)
    idx = torch.arange(w_dim, device=dev)
    for r in rows:
        basis[idx, r, idx] = 1.0
    s0 = generator.styles(zero)
    s1 = generator.styles(basis)
    blocks = []
    for layer in generator.style_layout:
        if layer.w_index in rows:
            a = (s1[layer.name] - s0[layer.name]).T  # [channels, w_dim]
            # Normalise each layer's block as SeFa does per weight row, so wide layers don't dominate.
            blocks.append(a / (a.norm(dim=1, keepdim=True) + 1e-8))
    return torch.cat(blocks).double().cpu().numpy()


@torch.no_grad()
def natural_spread(generator, vectors: np.ndarray, samples: int = 2000, seed: int = 0) -> np.ndarray:
    """Standard deviation of mapped random faces along each row of ``vectors`` [k, w_dim].

    Makes a slider unit mean the same on every model: W's scale differs a lot between
    generators (MobileStyleGAN's W spreads ~0.4 per dimension), so a fixed W distance is a
    nudge on one model and destroys the face on another.
    """
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, generator.z_dim, generator=g).to(generator.device)
    w = torch.cat([generator.map_z(z[i : i + 500]) for i in range(0, samples, 500)]).double().cpu().numpy()
    return ((w - w.mean(0)) @ np.asarray(vectors, np.float64).T).std(0)


def sefa_library(generator, model: str, count: int = 10, rows: list[int] | None = None,
                 unit: float | None = None) -> DirectionLibrary:
    """The top ``count`` factors as slider directions "factor1"….

    One slider unit is ``unit`` in W, or by default one standard deviation of natural faces
    along that factor (so ±3 spans the faces the model usually makes).
    """
    a = affine_matrix(generator, rows)
    eigval, eigvec = np.linalg.eigh(a.T @ a)
    order = np.argsort(eigval)[::-1][:count]
    vectors = eigvec[:, order].T.astype(np.float32)
    units = [unit] * len(order) if unit is not None else natural_spread(generator, vectors).tolist()
    dirs = [
        Direction(
            name=f"factor{i + 1}",
            label=f"Factor {i + 1}",
            vector=vectors[i],
            layers=tuple(rows) if rows is not None else (),
            unit=float(units[i]),
            meta={"eigenvalue": float(eigval[j]), "unit": "standard deviations of natural faces"
                  if unit is None else "W distance"},
        )
        for i, j in enumerate(order)
    ]
    return DirectionLibrary(model, dirs, kind="sefa", meta={"rows": rows})
