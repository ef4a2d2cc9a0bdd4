"""A metric's value with its confidence interval, and the bootstrap that gives the interval.

Metrics here are means over random samples (or a statistic of them, FD), so the number alone
says nothing about how much another seed would move it. Every result carries a 95 % bootstrap
interval computed from the same per-sample values, with a random generator seeded from the
run's seed, so the whole result is reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

#: bootstrap resamples for means (cheap) and for FD (a matrix square root each)
BOOTSTRAP = 500
CONFIDENCE = 0.95


@dataclass(frozen=True)
class MetricResult:
    metric: str  #: e.g. ``"ppl_wend"``, ``"als"``, ``"fd_vgg"``
    value: float
    low: float  #: lower end of the 95 % interval
    high: float  #: upper end
    samples: int  #: samples the value is computed from (after any filtering)
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def line(self) -> str:
        asked = self.details.get("asked")  # finished early: fewer samples measured than asked for
        early = f"; finished early, {self.settings.get('samples')} of {asked} measured" if asked else ""
        return (f"{self.metric} = {self.value:.5g} ± {self.half_width:.3g} "
                f"(95% interval {self.low:.5g} … {self.high:.5g}; {self.samples} samples, seed {self.seed}{early})")

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "low": self.low, "high": self.high,
                "samples": self.samples, "seed": self.seed, "settings": self.settings, "details": self.details}


def bootstrap_interval(values: np.ndarray, statistic: Callable[[np.ndarray], float], seed: int,
                       resamples: int = BOOTSTRAP, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the rows of ``values``."""
    values = np.asarray(values)
    if len(values) < 2:
        v = statistic(values) if len(values) else float("nan")
        return v, v
    stats = bootstrap_replicates(values, statistic, seed, resamples)
    alpha = (1 - confidence) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def bootstrap_replicates(values: np.ndarray, statistic: Callable[[np.ndarray], float], seed: int,
                         resamples: int = BOOTSTRAP) -> np.ndarray:
    """``statistic`` of ``resamples`` resamples (with replacement) of the rows of ``values``."""
    values = np.asarray(values)
    rng = np.random.default_rng([seed, 0xB007])
    return np.array([statistic(values[rng.integers(0, len(values), len(values))]) for _ in range(resamples)])


def sample_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """The random generator of sample ``index``: the same numbers whichever rank draws it."""
    return np.random.default_rng([seed, index, stream])
