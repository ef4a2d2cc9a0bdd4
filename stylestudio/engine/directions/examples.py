"""A new slider from examples: at least five faces with a quality and five without.

With so few examples an SVM in 512 dimensions would mostly fit noise, so the direction is the
difference of the two groups' mean W codes (the maximum-likelihood boundary normal for two
groups with shared isotropic spread), optionally with other sliders' directions projected out
so the new one leaves them alone. One unit is a quarter of the gap between the groups, so the
slider's ±2 walks a face from the negative group's mean to the positive one's.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from ... import paths
from ...errors import InputError
from .library import Direction, DirectionLibrary, project_out

MIN_EXAMPLES = 5
CUSTOM_LIBRARY = "custom"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def as_w(generator, latent) -> np.ndarray:
    """A face's latent as one W vector: W as is; W+ by the StyleSpace least-squares projection."""
    from .sc2gan import reproject, row_metrics

    arr = latent.detach().cpu().numpy() if isinstance(latent, torch.Tensor) else np.asarray(latent, np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 1:
        return arr.astype(np.float32)
    if arr.ndim == 2 and arr.shape[0] == generator.num_ws:
        if np.allclose(arr, arr[:1], atol=1e-6):
            return arr[0].astype(np.float32)
        key = id(generator)
        if key not in _METRICS:
            _METRICS[key] = row_metrics(generator)
        return reproject(arr[None], _METRICS[key])[0]
    raise InputError(f"a latent of shape {arr.shape} is neither W nor W+ of this model")


_METRICS: dict[int, np.ndarray] = {}


def direction_from_examples(generator, positives: Sequence, negatives: Sequence, name: str,
                            label: str | None = None, keep: Iterable[np.ndarray] = (),
                            layers: Sequence[int] = ()) -> Direction:
    """A slider direction separating ``positives`` from ``negatives`` (latents: W or W+).

    ``keep``: unit directions (e.g. library normals) the new slider must not move along.
    """
    if not _NAME.match(name):
        raise InputError(f"slider name {name!r}: use lower-case letters, digits and '_' (start with a letter)")
    if len(positives) < MIN_EXAMPLES or len(negatives) < MIN_EXAMPLES:
        raise InputError(f"pick at least {MIN_EXAMPLES} faces with the quality and {MIN_EXAMPLES} without "
                         f"(got {len(positives)} and {len(negatives)})")
    pos = np.stack([as_w(generator, p) for p in positives])
    neg = np.stack([as_w(generator, n) for n in negatives])
    gap = pos.mean(0) - neg.mean(0)
    v = project_out(gap, list(keep))
    norm = float(np.linalg.norm(v))
    if norm < 1e-6:
        raise InputError("the two groups of faces do not differ (or differ only in kept attributes)")
    v = v / norm
    sep = float((pos @ v).mean() - (neg @ v).mean())
    spread = float(np.sqrt(((pos @ v).var() + (neg @ v).var()) / 2))
    return Direction(name=name, label=label or name.replace("_", " ").capitalize(), vector=v.astype(np.float32),
                     layers=tuple(int(r) for r in layers), unit=sep / 4.0,
                     meta={"method": "examples", "positives": len(pos), "negatives": len(neg),
                           "separation": sep, "spread": spread})


def custom_library_path(model: str) -> Path:
    d = paths.data_home() / "directions" / model
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{CUSTOM_LIBRARY}.ssdir"


def save_custom_direction(model: str, direction: Direction) -> Path:
    """Add (or replace) ``direction`` in the user's ``custom`` library for ``model``."""
    path = custom_library_path(model)
    lib = DirectionLibrary.load(path) if path.is_file() else DirectionLibrary(model, kind=CUSTOM_LIBRARY)
    lib.directions[direction.name] = direction
    lib.save(path)
    return path
