"""Spherical k-means (Editing in Style clusters the *directions* of a layer's pixel vectors)."""
from __future__ import annotations

import numpy as np

from ...errors import InputError


def normalise_rows(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def spherical_kmeans(x: np.ndarray, k: int, *, seed: int = 0, n_init: int = 3, iters: int = 50,
                     tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the directions of the rows of ``x``: returns (unit centroids [k, C], labels).

    scikit-learn's k-means (k-means++ starts, ``n_init`` runs) on the L2-normalised rows gives the
    start (Euclidean distance between unit vectors is monotone in their cosine); scikit-learn has
    no spherical k-means, so Lloyd iterations of the spherical objective — assign by cosine,
    centroid = renormalised mean — follow here and keep the centroids on the sphere.
    """
    from sklearn.cluster import KMeans

    xn = normalise_rows(np.asarray(x, np.float32))
    if xn.shape[0] < k:
        raise InputError(f"k-means needs at least k={k} samples, got {xn.shape[0]}")
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed, max_iter=100).fit(xn)
    centroids = normalise_rows(km.cluster_centers_.astype(np.float32))
    labels = None
    prev_obj = -np.inf
    rng = np.random.RandomState(seed)
    for _ in range(iters):
        sims = xn @ centroids.T
        labels = sims.argmax(1)
        obj = float(sims[np.arange(len(xn)), labels].mean())
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, xn)
        empty = np.linalg.norm(sums, axis=1) < 1e-12
        if empty.any():  # re-seed an empty cluster with the worst-fitting rows
            worst = np.argsort(sims[np.arange(len(xn)), labels])[: int(empty.sum())]
            sums[empty] = xn[worst] + 1e-3 * rng.randn(int(empty.sum()), xn.shape[1]).astype(np.float32)
        centroids = normalise_rows(sums)
        if obj - prev_obj < tol:
            break
        prev_obj = obj
    labels = (xn @ centroids.T).argmax(1)
    return centroids, labels
