"""Pair-wise drift and per-slider effects (engine.directions.drift) on a synthetic model whose
attributes are known linear functions of W, so every number has a closed-form answer."""
from __future__ import annotations

import numpy as np
import pytest

from stylestudio.engine.directions.drift import (correlation_pairs, keep_set, library_effects, mean_effects,
                                                 pair_drift, slider_effects, slider_effects_summary)
from stylestudio.engine.directions.library import Direction, DirectionLibrary

DIM, NUM_WS = 16, 4
ROWS = (1, 2)  #: rows the sliders act on; the synthetic attributes read the mean over all rows


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def synthetic(seed: int = 0):
    """Attributes a (coefficients ca), b (cb, strongly aligned with ca) and c; a library whose
    normals are exactly the attributes' coefficient directions, units of different sizes."""
    rng = np.random.RandomState(seed)
    ca = rng.randn(DIM) * 3.0
    cb = 0.8 * ca / np.linalg.norm(ca) * 2.0 + rng.randn(DIM) * 0.3
    cc = rng.randn(DIM)
    coef = {"a": ca, "b": cb, "c": cc}

    def measure(ws: np.ndarray) -> dict[str, np.ndarray]:
        x = ws.astype(np.float64).mean(1)  # [N, DIM]
        return {k: x @ v for k, v in coef.items()}

    units = {"a": 5.0, "b": 0.25, "c": 2.0}  # attribute change of one slider unit
    dirs = [Direction(k, k.upper(), _unit(v), ROWS, 0.7 + 0.3 * i, {"unit_change": units[k]})
            for i, (k, v) in enumerate(coef.items())]
    return coef, measure, units, DirectionLibrary("synthetic", dirs)


def test_slider_effects_match_the_linear_attributes():
    coef, measure, units, lib = synthetic()
    w = np.random.RandomState(1).randn(5, DIM).astype(np.float32)
    eff = slider_effects(measure, w, lib, "a", NUM_WS)
    d = lib["a"]
    share = len(ROWS) / NUM_WS  # the measure averages rows; the slider moves ROWS of them
    for k, c in coef.items():
        expected = share * d.unit * float(c @ d.vector)
        np.testing.assert_allclose(eff[k], expected, rtol=1e-4, atol=1e-6)  # the same on every face
    assert mean_effects(eff)["a"] == pytest.approx(share * d.unit * float(coef["a"] @ d.vector), rel=1e-4)


def test_pair_drift_in_each_attributes_own_units():
    coef, measure, units, lib = synthetic()
    w = np.random.RandomState(2).randn(4, DIM).astype(np.float32)
    eff = mean_effects(slider_effects(measure, w, lib, "a", NUM_WS))
    va = lib["a"].vector
    expected = (float(coef["b"] @ va) / units["b"]) / (float(coef["a"] @ va) / units["a"])
    assert pair_drift(eff, "a", "b", units) == pytest.approx(expected, rel=1e-4)
    assert abs(expected) > 1.0  # b follows a strongly: a real test of the scaling
    # keeping b (its normal projected out) removes b's drift entirely, a still moves as much
    kept = mean_effects(slider_effects(measure, w, lib, "a", NUM_WS, keep=("b",)))
    assert pair_drift(kept, "a", "b", units) == pytest.approx(0.0, abs=1e-4)
    assert kept["a"] == pytest.approx(eff["a"], rel=1e-4)
    # a slider that does not move its own attribute has no defined drift
    assert np.isnan(pair_drift({"a": 0.0, "b": 1.0}, "a", "b", units))


def test_library_effects_stored_per_keep_mode():
    coef, measure, units, lib = synthetic()
    w = np.random.RandomState(3).randn(3, DIM).astype(np.float32)
    library_effects(measure, w, lib, NUM_WS)
    assert lib.meta["effects_faces"] == 3
    for name in lib.names():
        eff = lib[name].meta["effects"]
        assert set(eff) == {"none", "others"}
        for other in keep_set(lib, name, "others"):
            assert eff["others"][other] == pytest.approx(0.0, abs=1e-4)  # kept: held still
        assert eff["others"][name] == pytest.approx(eff["none"][name], rel=1e-3)
    assert abs(lib["a"].meta["effects"]["none"]["b"]) > 0.1  # uncorrected, a drags b along


def test_correlation_pairs_strongest_first():
    corr = np.array([[1, -0.6, 0.1], [-0.6, 1, 0.3], [0.1, 0.3, 1]])
    assert correlation_pairs(["x", "y", "z"], corr, 2) == [("x", "y", -0.6), ("y", "z", 0.3)]


def test_summary_for_the_editor_and_a_hand_edited_library():
    coef, measure, units, lib = synthetic()
    library_effects(measure, np.random.RandomState(4).randn(2, DIM).astype(np.float32), lib, NUM_WS)
    lib.meta.update(attributes=["a", "b", "c"], correlation=[[1, 0.7, 0.1], [0.7, 1, 0.3], [0.1, 0.3, 1]])
    s = slider_effects_summary(lib, "a")
    assert s["partners"] == ["b"] and s["faces"] == 2  # c is not correlated enough to be named
    assert set(s["effects"]["none"]) == {"b", "c"}  # the slider's own change is not an "other"
    assert s["effects"]["none"]["b"] == pytest.approx(lib["a"].meta["effects"]["none"]["b"])
    # damaged numbers are left out, never raised: the sliders must still list
    lib["a"].meta["effects"] = {"none": {"b": "x", "c": float("nan"), "zz": 1.0}, "others": [1, 2], "bogus": {}}
    lib.meta.update(correlation=[[1, 2]], effects_faces="many")
    s = slider_effects_summary(lib, "a")
    assert s == {"effects": {"none": {}}, "partners": [], "faces": 0}
