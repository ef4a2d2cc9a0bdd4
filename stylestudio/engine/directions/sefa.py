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


def sefa_library(generator, model: str, count: int = 10, rows: list[int] | None = None,
                 unit: float = 3.0) -> DirectionLibrary:
    """The top ``count`` factors as slider directions "factor1"…; one slider unit is ``unit`` in W."""
    a = affine_matrix(generator, rows)
    eigval, eigvec = np.linalg.eigh(a.T @ a)
    order = np.argsort(eigval)[::-1][:count]
    dirs = [
        Direction(
            name=f"factor{i + 1}",
            label=f"Factor {i + 1}",
            vector=eigvec[:, j].astype(np.float32),
            layers=tuple(rows) if rows is not None else (),
            unit=unit,
            meta={"eigenvalue": float(eigval[j])},
        )
        for i, j in enumerate(order)
    ]
    return DirectionLibrary(model, dirs, kind="sefa", meta={"rows": rows})
