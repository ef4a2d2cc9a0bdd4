"""The per-face fit renders whole stages under autograd (``regions/fit.py``): faster than the
generator's memory-saving strips, and it must fit the same query as the strips would."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest


@pytest.mark.slow
def test_the_fit_in_whole_stages_returns_the_query_fitted_in_strips(default_generator, monkeypatch) -> None:
    import torch

    from stylestudio.engine.document import SeedSource
    from stylestudio.engine.regions.catalog import Catalog, find_catalog
    from stylestudio.engine.regions.fit import FitSettings, fit_named_region, fit_starts
    from stylestudio.engine.regions.queries import QueryParams

    gen = default_generator
    cat = Catalog.load(find_catalog("mobilestylegan-ffhq"))
    with torch.no_grad():
        t, r = (gen.styles(SeedSource(s, 0.7).latent(gen)) for s in (12, 34))
    settings = FitSettings(steps=3, colour_steps=0)
    tuned = QueryParams.from_mapping(cat.region_query("mouth"))
    fast = fit_named_region(gen, cat, t, r, cat.resolve("mouth"), settings, also=tuned)
    entered = []

    @contextlib.contextmanager
    def strips():  # the fit as it was: the generator keeps its strips
        entered.append(True)
        yield

    monkeypatch.setattr(gen, "whole_stages", strips)
    slow = fit_named_region(gen, cat, t, r, cat.resolve("mouth"), settings, also=tuned)
    assert entered, "the fit asks the generator for whole stages"
    assert set(fast) == set(slow)
    starts = fit_starts(cat.rows(cat.resolve("mouth")), cat.effect_rows(cat.resolve("mouth")), settings, tuned)
    moved = min(max(float(np.abs(slow[n] - q0[n]).max()) for n in slow) for q0 in starts)
    assert moved > 0.01  # the fit moved q away from its start, so agreeing below means something
    worst = max(float(np.abs(fast[n] - slow[n]).max()) for n in fast)
    assert worst <= 1e-3, f"the whole-stage fit differs from the strip fit by {worst:.2e}"
