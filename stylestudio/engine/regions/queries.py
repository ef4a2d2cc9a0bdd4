"""Queries: which style channels to take from the reference for a region (Collins et al. §3.3).

A query turns a region's contribution row ``m`` (per style layer, ``m[c]`` = share of channel
``c``'s activity inside the region; ``1 − m[c]`` is the share outside) into ``q ∈ [0, 1]^C``:

* **simple**: ``q = min(1, λ·m)`` — soft, every channel in proportion to its locality;
* **sequential**: sort channels by ``m`` (most local first) and set ``q = 1`` while the accumulated
  out-of-region share ``Σ (1 − m)`` stays below ``ε``, and only where ``m > ρ``. It takes the
  channels that act mostly in the region until a budget of leakage is spent, which is what keeps
  the rest of the face in place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ...errors import InputError

if TYPE_CHECKING:
    from torch import Tensor

QUERY_KINDS = ("sequential", "simple", "effect")


@dataclass(frozen=True)
class QueryParams:
    """Query settings. The defaults (sequential, ε = 5, ρ = 0.4) were the most local of the settings
    tried with ``bench/locality.py`` on the default model (ε 2–30, ρ 0.15–0.5, simple λ 2–6):
    lowering ρ or raising ε makes small regions change more but leak more."""

    kind: str = "sequential"
    lam: float = 4.0  #: simple query gain λ
    eps: float = 5.0  #: sequential: budget of accumulated out-of-region share ε (per layer)
    rho: float = 0.4  #: sequential: minimum in-region share ρ of a chosen channel
    tau: float = 0.7  #: effect: minimum share τ of a channel's pixel effect inside the region

    def __post_init__(self) -> None:
        if self.kind not in QUERY_KINDS:
            raise InputError(f"query must be one of {', '.join(QUERY_KINDS)}, got {self.kind!r}")
        for name in ("lam", "eps", "rho", "tau"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v < 0:
                raise InputError(f"{name} must be a non-negative number, got {v}")
        for name in ("rho", "tau"):
            if getattr(self, name) > 1:
                raise InputError(f"{name} is a share and must be at most 1, got {getattr(self, name)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> "QueryParams":
        """From stored settings (a catalog's per-region entry); unknown keys are an error."""
        known = {f for f in cls.__dataclass_fields__}
        extra = set(values) - known
        if extra:
            raise InputError(f"unknown query settings: {', '.join(sorted(extra))}")
        try:
            return cls(**{k: (str(v) if k == "kind" else float(v)) for k, v in values.items()})  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise InputError(f"bad query settings {dict(values)}: {exc}") from None


def simple_query(m: np.ndarray, lam: float) -> np.ndarray:
    """``q = min(1, λ·m)``."""
    return np.minimum(1.0, lam * np.clip(np.asarray(m, np.float64), 0.0, None)).astype(np.float32)


def sequential_query(m: np.ndarray, eps: float, rho: float) -> np.ndarray:
    """Greedy channel selection under an out-of-region budget ``ε`` with a floor ``ρ``.

    Channel ``c`` at rank ``r`` (by ``m`` descending) is chosen when the out-of-region shares of
    ranks ``0…r`` sum to less than ``ε`` and ``m[c] > ρ``. Both conditions only admit more
    channels as ``ε`` grows or ``ρ`` falls, so the query is monotone in them.
    """
    m = np.clip(np.asarray(m, np.float64), 0.0, 1.0)
    order = np.argsort(-m, kind="stable")
    leak = np.cumsum(1.0 - m[order])
    q = np.zeros(m.shape, np.float32)
    q[order[leak < eps]] = 1.0
    q[m <= rho] = 0.0
    return q


def effect_query(share: np.ndarray, tau: float) -> np.ndarray:
    """``q = 1`` where the channel's pixel-effect share inside the region is at least ``τ``."""
    return (np.asarray(share, np.float64) >= tau).astype(np.float32)


def query(m: np.ndarray, params: QueryParams) -> np.ndarray:
    if params.kind == "simple":
        return simple_query(m, params.lam)
    return sequential_query(m, params.eps, params.rho)


def query_layers(rows: Mapping[str, np.ndarray], params: QueryParams,
                 effects: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Apply the query to every style layer's row (``effects``: the effect query's shares)."""
    if params.kind == "effect":
        effects = effects or {}
        return {name: (effect_query(effects[name], params.tau) if name in effects
                       else sequential_query(m, params.eps, params.rho)) for name, m in rows.items()}
    return {name: query(m, params) for name, m in rows.items()}


def blend_styles(styles: Mapping[str, "Tensor"], reference: Mapping[str, "Tensor"],
                 q: Mapping[str, np.ndarray], strength: float = 1.0) -> "dict[str, Tensor]":
    """``σ_G = σ_S + strength·diag(q)·(σ_R − σ_S)`` on every layer that has a query.

    Layers without a query (or with ``q = 0``) are passed through untouched, so a later render can
    reuse the cached activations of every stage before the first changed layer. ``q`` rows may be
    tensors, which gradients flow through (the per-face fit, ``regions.fit``).
    """
    import torch

    out = {}
    for name, s in styles.items():
        qq = q.get(name)
        if qq is None or strength == 0 or (not isinstance(qq, torch.Tensor) and not np.any(qq)):
            out[name] = s
            continue
        # a copy: q may be a document's read-only array, which torch will not wrap
        qt = qq.to(s) if isinstance(qq, torch.Tensor) else torch.tensor(np.asarray(qq, np.float32),
                                                                         device=s.device, dtype=s.dtype)
        out[name] = s + strength * qt * (reference[name].to(s) - s)
    return out
