"""The fast fit (``regions.fit.FAST``) against the editor's "Fit to this face" (``FitSettings()``),
on one fixed pair of the default model (seeds 12 → 34).

Its shortcuts that must not change the query (the start's look taken from the first step's render,
one start chosen by the leak of the unfitted starts) are compared exactly with the slow way; the
cheaper objective (the 128-px preview, 8 steps) is held to a stated tolerance on the box measure.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def pair(default_generator):
    from stylestudio.engine.document import SeedSource
    from stylestudio.engine.regions.catalog import Catalog, find_catalog

    gen = default_generator
    cat = Catalog.load(find_catalog("mobilestylegan-ffhq"))
    with torch.no_grad():
        target, reference = (gen.styles(SeedSource(s, 0.7).latent(gen)) for s in (12, 34))
    return gen, cat, target, reference


def _starts(cat, part: str, settings):
    from stylestudio.engine.regions.fit import fit_starts
    from stylestudio.engine.regions.queries import QueryParams

    clusters = cat.resolve(part)
    tuned = QueryParams.from_mapping(cat.region_query(part))
    return tuned, fit_starts(cat.rows(clusters), cat.effect_rows(clusters), settings, tuned)


def _region(gen, cat, target, part: str, settings) -> np.ndarray:
    with torch.no_grad():
        return np.isin(cat.cluster_map(gen, target, settings.resolution)[0].numpy(), list(cat.resolve(part)))


def _slow_start_fit(p, q0):
    """The start fit as it was written first: the start rendered on its own, then every step."""
    names = [n for n, v in q0.items() if np.any(v)]
    allowed = {n: torch.as_tensor((np.asarray(q0[n]) > 0).astype(np.float32)) for n in names}
    theta = {n: torch.as_tensor(np.asarray(q0[n], np.float32)).clone().requires_grad_(True) for n in names}

    def current():
        return {n: theta[n].clamp(0, 1) * allowed[n] for n in names}

    with torch.no_grad():
        start = p.render(current())
    opt = torch.optim.Adam(list(theta.values()), lr=p.settings.lr)
    with torch.enable_grad(), p.gen.whole_stages():
        for _ in range(p.settings.steps):
            img = p.render(current())
            loss = ((img - start).square() * p.inside).sum() / p.n_in + p._leak_penalty(img)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    out = {n: np.asarray(v, np.float32).copy() for n, v in q0.items()}
    out.update({n: v.detach().numpy() for n, v in current().items()})
    return out


def test_the_start_look_from_the_first_step_fits_the_same_query(pair) -> None:
    """Every fit (the fast one here, for speed) takes the start's own look from its first step's
    render instead of rendering it apart: one render fewer per start, the same query."""
    from stylestudio.engine.regions.fit import FAST, _Pair

    gen, cat, target, reference = pair
    settings = dataclasses.replace(FAST, steps=3)
    tuned, starts = _starts(cat, "mouth", settings)
    p = _Pair(gen, target, reference, _region(gen, cat, target, "mouth", settings), settings)
    fast = p.fit(starts[1])
    slow = _slow_start_fit(p, starts[1])
    moved = max(float(np.abs(slow[n] - starts[1][n]).max()) for n in slow)
    assert moved > 0.05  # the fit moved q, so agreeing below means something
    worst = max(float(np.abs(fast[n] - slow[n]).max()) for n in fast)
    assert worst <= 1e-4, f"the fast start fit differs from the slow one by {worst:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("part", ["mouth", "eyes"])
def test_one_start_chosen_by_leak_is_the_one_fitting_both_keeps(pair, part: str) -> None:
    """Fitting only the start whose unfitted transfer leaks least returns the query that fitting
    both starts and keeping the more local result returns (on this pair, for these parts)."""
    from stylestudio.engine.regions.fit import FAST, fit_query

    gen, cat, target, reference = pair
    fast = dataclasses.replace(FAST, steps=4, colour_steps=0)
    _, starts = _starts(cat, part, fast)
    region = _region(gen, cat, target, part, fast)
    one = fit_query(gen, target, reference, region, starts, fast)
    both = fit_query(gen, target, reference, region, starts, dataclasses.replace(fast, one_start=False))
    worst = max(float(np.abs(one[n] - both[n]).max()) for n in both)
    assert worst <= 1e-5, f"{part}: the one chosen start's fit differs from the best of both by {worst:.2e}"


@pytest.mark.slow
def test_the_fast_fit_is_about_as_local_as_the_default_on_the_eyes_box(pair) -> None:
    """The cheaper objective changes the query, so it is held to a stated tolerance instead: on the
    fixed eyes box (256-px preview, what ``bench/locality.py --measure boxes`` judges) the fast fit's
    out/in is at most the default fit's + 0.03, below the unfitted query's, and it changes the
    inside at least 60 % as much as the default fit. (Not so for every part: on this pair the fast
    fit's mouth measures 0.145 against the default's 0.074, which is why it is not the editor's.)"""
    from stylestudio.engine.regions.boxes import box_change
    from stylestudio.engine.regions.fit import FAST, FitSettings, fit_named_region
    from stylestudio.engine.regions.queries import blend_styles, query_layers

    gen, cat, target, reference = pair

    def look(q=None) -> np.ndarray:
        with torch.no_grad():
            x = gen.synthesize(blend_styles(target, reference, q) if q is not None else target,
                               stop_resolution=128).image
        return ((x.clamp(-1, 1) + 1) * 127.5)[0].permute(1, 2, 0).numpy()

    plain = look()
    tuned, _ = _starts(cat, "eyes", FAST)
    unfitted = query_layers(cat.rows(cat.resolve("eyes")), tuned, cat.effect_rows(cat.resolve("eyes")))
    measured = {}
    for name, q in (("unfitted", unfitted),
                    ("fast", fit_named_region(gen, cat, target, reference, cat.resolve("eyes"), FAST, also=tuned)),
                    ("thorough", fit_named_region(gen, cat, target, reference, cat.resolve("eyes"), FitSettings(),
                                                  also=tuned))):
        cin, cout = box_change(plain, look(q), "eyes")
        measured[name] = (cin, cout / cin)
    (in_f, fast), (in_t, thorough), (_, plain_ratio) = measured["fast"], measured["thorough"], measured["unfitted"]
    assert fast <= thorough + 0.03, measured
    assert fast < plain_ratio, measured
    assert in_f >= 0.6 * in_t, measured
