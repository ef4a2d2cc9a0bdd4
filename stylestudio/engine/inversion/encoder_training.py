"""Fitting the inversion encoder (:mod:`.encoder`) on generated faces: used by scripts/train_encoder.py.

Kept apart from the encoder itself because only training needs scikit-learn's solver and the
augmentation; using an encoder is three matrix products.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .encoder import FeatureEncoder, FeatureSpec

ALPHAS = tuple(float(a) for a in np.logspace(1, 5, 9))


def degrade(images: np.ndarray, rng: np.random.RandomState, low: int = 32,
            high: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Copies of uint8 faces [N, S, S, 3] as if the photo had held only s×s pixels of the aligned
    crop (s log-uniform in [low, high]): area-downsampled, bicubic-upsampled back, quantised.

    A face found small in a photo (messi5.jpg's is 36 px) is aligned by upsampling; trained on
    sharp renders only, the encoder misreads that blur (latent error +20% on faces seen at under
    96 px), trained on both it barely changes on sharp ones. Returns (copies, s per face).
    """
    n, size = images.shape[0], images.shape[1]
    sides = np.exp(rng.uniform(np.log(low), np.log(high), n)).astype(int)
    out = images.copy()
    with torch.no_grad():
        for i, s in enumerate(sides):
            if s >= size:
                continue
            x = torch.from_numpy(images[i:i + 1]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            x = F.interpolate(F.interpolate(x, size=(s, s), mode="area"), size=(size, size), mode="bicubic",
                              align_corners=False)
            out[i] = ((x.clamp(-1, 1) + 1) * 127.5).round().byte()[0].permute(1, 2, 0).numpy()
    return out, sides


def pick_alpha(x: np.ndarray, y: np.ndarray, groups: np.ndarray, alphas: tuple[float, ...] = ALPHAS,
               holdout: float = 0.1, seed: int = 0) -> tuple[float, dict[float, float]]:
    """Ridge strength with the lowest error on a held-out tenth of the *faces*.

    Leave-one-out (RidgeCV's default) would see a face's degraded copy while predicting the face
    and choose far too little regularisation. One SVD of the training part serves every alpha.
    """
    rng = np.random.RandomState(seed)
    faces = np.unique(groups)
    val = np.isin(groups, rng.choice(faces, max(1, int(len(faces) * holdout)), replace=False))
    xt, yt = x[~val], y[~val]
    x_mu, y_mu = xt.mean(0), yt.mean(0)
    u, s, vt = np.linalg.svd(xt - x_mu, full_matrices=False)
    uty = u.T @ (yt - y_mu)
    xv = (x[val] - x_mu) @ vt.T
    errors = {}
    for a in alphas:
        pred = xv @ ((s / (s ** 2 + a))[:, None] * uty) + y_mu
        errors[a] = float(((pred - y[val]) ** 2).mean())
    return min(errors, key=errors.get), errors


def fit_encoder(features: np.ndarray, w: np.ndarray, spec: FeatureSpec, model: str, components: int = 128,
                groups: np.ndarray | None = None, alphas: tuple[float, ...] = ALPHAS) -> FeatureEncoder:
    """Ridge regression from standardised pooled features [N, D] onto the top ``components`` PCA
    coefficients of ``w`` [N, w_dim].

    ``groups``: which face each row shows (rows of one face: a render and its degraded copies);
    the ridge strength is then picked on held-out faces (:func:`pick_alpha`), else by
    leave-one-out. On the default model 128 components predict as well as all 512 (the minor
    ones are not predictable from these features), at a quarter of the file size.
    """
    from sklearn.linear_model import Ridge, RidgeCV

    x = np.asarray(features, np.float64)
    w = np.asarray(w, np.float64)
    x_mean, x_scale = x.mean(0), x.std(0) + 1e-6
    xs = (x - x_mean) / x_scale
    w_mean = w.mean(0)
    _, _, vt = np.linalg.svd(w - w_mean, full_matrices=False)
    basis = vt[:components]
    y = (w - w_mean) @ basis.T
    if groups is None:
        ridge = RidgeCV(alphas=alphas).fit(xs, y)
        alpha = float(ridge.alpha_)
    else:
        alpha, _ = pick_alpha(xs, y, np.asarray(groups), alphas)
        ridge = Ridge(alpha=alpha).fit(xs, y)
    meta = {"training": {"rows": int(x.shape[0]), "alpha": alpha}}
    return FeatureEncoder(model, spec, x_mean.astype(np.float32), x_scale.astype(np.float32),
                          ridge.coef_.astype(np.float32), ridge.intercept_.astype(np.float32),
                          w_mean.astype(np.float32), basis.astype(np.float32), meta)
