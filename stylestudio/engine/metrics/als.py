"""Attribute Linearity Score (Karmali et al., HSR, ECCV 2022): how evenly an edit changes its attribute.

For each face (seeded W, truncated by ψ) and each direction, the face is edited in ``steps`` (11)
equal steps from −span to +span slider units along the direction (on its W+ rows), and the
attribute the direction controls is measured on every step. An edit whose attribute moves by
the same amount at each step is linear. A face's score for one direction is the standard
deviation of its consecutive attribute changes divided by the direction's typical step (the
mean |change| over all faces), so attributes in different units (years, logits, degrees) can
be averaged; ALS is the mean over faces and directions, 0 for a perfectly linear attribute.
(The paper reports the spread of consecutive changes of classifier outputs along InterFaceGAN
edits; the normalisation by the typical step is ours, so numbers compare across attributes and
models but not with the paper's tables.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ..distributed import World, current_world, gather_rows, shard
from ..generator import Generator
from ..progress import Cancel, Progress, check_cancel, no_progress
from .stats import MetricResult, bootstrap_interval, sample_rng

STEPS = 11
SPAN = 2.0

#: images [N, 3, H, W] → attribute name → [N] values (NaN: not measurable on that image)
Scorer = Callable[[Tensor], Mapping[str, np.ndarray]]
#: W+ [N, num_ws, w_dim] → images to score
Renderer = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class EditDirection:
    name: str  #: the attribute the scorer reports for this direction
    vector: np.ndarray  #: [w_dim]
    rows: tuple[int, ...] = ()  #: W+ rows it moves (empty: all)
    unit: float = 1.0  #: W distance of one slider unit


def face_scores(gen: Generator, index: int, directions: Sequence[EditDirection], score: Scorer, *, seed: int,
                psi: float, steps: int, span: float, render: Renderer) -> np.ndarray:
    """[2 · len(directions)]: per direction, the std and the mean |change| of consecutive steps."""
    z = torch.from_numpy(sample_rng(seed, index, 2).standard_normal((1, gen.z_dim)).astype(np.float32))
    w = gen.w_avg.lerp(gen.map_z(z.to(gen.device)), psi)[0]
    amounts = torch.linspace(-span, span, steps, device=gen.device, dtype=w.dtype)
    out = []
    for d in directions:
        vec = torch.from_numpy(np.asarray(d.vector, np.float32)).to(gen.device)
        ws = w.expand(steps, gen.num_ws, -1).clone()
        rows = list(d.rows) if d.rows else slice(None)
        ws[:, rows] += (amounts * d.unit)[:, None, None] * vec
        values = np.asarray(score(render(ws))[d.name], np.float64)
        delta = np.diff(values)
        out += [float(delta.std()), float(np.abs(delta).mean())]  # NaN when a step was not measurable
    return np.asarray(out)


@torch.no_grad()
def attribute_linearity(gen: Generator, directions: Sequence[EditDirection], score: Scorer, samples: int, *,
                        seed: int = 0, psi: float = 0.7, steps: int = STEPS, span: float = SPAN,
                        render: Renderer | None = None, world: World | None = None,
                        progress: Progress = no_progress, cancel: Cancel = None) -> MetricResult:
    """ALS over ``samples`` faces split across ranks; every rank gets the result."""
    if not directions:
        raise ValueError("ALS needs at least one direction")
    if samples < 2 or steps < 3:
        raise ValueError("ALS needs at least 2 faces and 3 steps")
    world = world or current_world(gen.device)
    render = render or (lambda ws: gen.synthesis(ws, noise_mode="const"))
    mine = list(shard(samples, world))
    rows = []
    for k, i in enumerate(mine):
        check_cancel(cancel)
        rows.append(np.concatenate([[float(i)], face_scores(gen, i, directions, score, seed=seed, psi=psi,
                                                            steps=steps, span=span, render=render)]))
        progress(f"als: {k + 1} of {len(mine)} faces", (k + 1) / len(mine))
    every = gather_rows(np.stack(rows) if rows else np.zeros((0, 1 + 2 * len(directions))), world)
    every = every[np.argsort(every[:, 0], kind="stable"), 1:]
    spread, step = every[:, 0::2], every[:, 1::2]
    typical = np.nanmean(step, axis=0)  # per direction
    with np.errstate(invalid="ignore", divide="ignore"):
        normed = np.where(typical > 0, spread / typical, np.nan)
    per_face = np.nanmean(normed, axis=1) if normed.size else normed
    per_face = per_face[np.isfinite(per_face)]
    if len(per_face) == 0:
        raise ValueError("no face could be measured along the edits (the attribute was never found)")
    value = float(per_face.mean())
    low, high = bootstrap_interval(per_face, lambda v: float(v.mean()), seed)
    per_direction = {d.name: float(np.nanmean(normed[:, j])) for j, d in enumerate(directions)}
    return MetricResult("als", value, low, high, len(per_face), seed,
                        settings={"psi": psi, "steps": steps, "span": span, "directions": [d.name for d in directions],
                                  "processes": world.size},
                        details={"per_direction": per_direction})
