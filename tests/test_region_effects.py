"""Pixel-effect matrices, the effect query and per-region tuned query settings.

Fast: the tiny 32-px StyleGAN2 of the oracle folder (or a random one of the same shape).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stylestudio.engine.document import EditDocument, SeedSource
from stylestudio.engine.edits.transfer import TransferEdit, query_fields
from stylestudio.engine.regions.builder import build_catalog, sample_styles
from stylestudio.engine.regions.catalog import Catalog
from stylestudio.engine.regions.effects import effect_shares, measure_effects
from stylestudio.engine.regions.locality import at_equal_inside, measure, prepare_pair
from stylestudio.engine.regions.queries import QueryParams, effect_query, query_layers
from stylestudio.engine.render import Renderer
from stylestudio.errors import InputError, ModelFormatError

from test_regions import tiny  # noqa: F401 - the shared module fixture


@pytest.fixture(scope="module")
def catalog(tiny) -> Catalog:  # noqa: F811
    cat = build_catalog(tiny, "tiny", k=4, samples=8, batch=4, seed=5)
    return dataclasses.replace(cat, effects=measure_effects(tiny, cat, samples=3, probes=2, seed=1))


def test_effect_energy_matches_the_jacobian(tiny) -> None:  # noqa: F811
    """The probe estimate converges to Σ_{p in cluster} ‖∂image_p/∂σ_c‖², computed exactly here."""
    cat = build_catalog(tiny, "tiny", k=2, samples=4, batch=4, seed=2)
    one_face = dict(samples=1, seed=7)
    est = measure_effects(tiny, cat, probes=64, **one_face)
    layer = tiny.style_layout[-1].name  # the last layer: few channels, so the exact Jacobian is cheap
    base = sample_styles(tiny, 0, 1, psi=0.7, seed=7 + 1_000_003)
    labels = cat.cluster_map(tiny, base, tiny.resolution)[0]
    s = base[layer].detach().clone()

    def image_of(v):
        st = dict(base)
        st[layer] = v
        return tiny.synthesize(st).image[0]

    jac = torch.autograd.functional.jacobian(image_of, s)  # [3, H, W, 1, C]
    energy = (jac[..., 0, :] ** 2).sum(0)  # [H, W, C]
    exact = np.stack([energy[labels == k].sum(0).numpy() for k in range(cat.k)])
    rel = np.abs(est[layer] - exact).sum() / exact.sum()
    assert rel < 0.35, rel  # 64 probes: a few tens of percent of noise at most


def test_effect_shares_sum_to_one_over_clusters(catalog: Catalog) -> None:
    assert catalog.effects, "no layer received an effect"
    for name, e in catalog.effects.items():
        assert e.shape == catalog.contributions[name].shape and (e >= 0).all()
        total = sum(effect_shares(catalog.effects, [k])[name] for k in range(catalog.k))
        live = e.sum(0) > 0
        np.testing.assert_allclose(total[live], 1.0, atol=1e-5)
    everything = catalog.effect_rows(range(catalog.k))
    assert all(np.all((v > 0.999) | (catalog.effects[n].sum(0) == 0)) for n, v in everything.items())


def test_effect_query_is_monotone_in_tau_and_falls_back(catalog: Catalog) -> None:
    rows, eff = catalog.rows([1]), catalog.effect_rows([1])
    counts = [sum(int(v.sum()) for v in query_layers(rows, QueryParams("effect", tau=t), eff).values())
              for t in (0.0, 0.3, 0.6, 0.9, 1.0)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    np.testing.assert_array_equal(effect_query(np.array([0.2, 0.5, 0.9]), 0.5), [0, 1, 1])
    # without effect matrices the effect query is the sequential one
    seq = query_layers(rows, QueryParams("sequential", eps=3, rho=0.3))
    fb = query_layers(rows, QueryParams("effect", eps=3, rho=0.3), None)
    assert all(np.array_equal(seq[k], fb[k]) for k in seq)


def test_catalog_keeps_effects_and_tuned_queries(tmp_path: Path, catalog: Catalog) -> None:
    cat = dataclasses.replace(catalog.with_name("mouth", [2]).with_name("eyes", [1]),
                              queries={"mouth": {"kind": "effect", "tau": 0.8, "eps": 5.0, "rho": 0.4},
                                       "eyes": {"kind": "sequential", "eps": 2.0, "rho": 0.65}})
    path = cat.save(tmp_path / "default")
    body = json.loads(path.read_text())
    assert body["format_version"] == 2 and body["effect_layers"]
    back = Catalog.load(path)
    assert set(back.effects) == set(cat.effects)
    for n in cat.effects:
        np.testing.assert_array_equal(back.effects[n], cat.effects[n])
    assert back.region_query("mouth") == {"kind": "effect", "tau": 0.8, "eps": 5.0, "rho": 0.4}
    assert back.region_query(["mouth", "eyes"]) is None and back.region_query("nose") is None
    # renaming a region drops its stale tuning, keeps the others
    assert back.with_name("mouth", [3]).region_query("mouth") is None
    assert back.with_name("mouth", [3]).region_query("eyes") is not None
    # fields for a new edit: tuned, then explicit overrides
    f = query_fields(back.region_query("mouth"), tau=0.6)
    assert f["query"] == "effect" and f["tau"] == 0.6
    assert query_fields(None)["query"] == QueryParams().kind
    with pytest.raises(InputError):
        query_fields({"kind": "effect", "tau": 3})
    with pytest.raises(InputError):
        query_fields({"kind": "effect", "colour": 1})
    # a catalog whose effect matrices do not match is refused
    body["effect_layers"] = []
    bad = dataclasses.replace(cat, effects={n: e[:, :1] for n, e in cat.effects.items()})
    with pytest.raises(ModelFormatError, match="effect"):
        Catalog.load(bad.save(tmp_path / "bad"))


def test_version_1_catalog_still_loads(tmp_path: Path, catalog: Catalog) -> None:
    path = dataclasses.replace(catalog, effects={}, queries={}).save(tmp_path / "old")
    body = json.loads(path.read_text())
    body["format_version"] = 1
    for key in ("queries", "effect_layers"):
        body.pop(key)
    path.write_text(json.dumps(body))
    back = Catalog.load(path)
    assert back.effects == {} and back.queries == {}


def test_effect_transfer_edit_renders_and_round_trips(tmp_path: Path, tiny, catalog: Catalog) -> None:  # noqa: F811
    from stylestudio.engine.project import load_project, save_project

    r = Renderer(tiny, "tiny")
    r.resources.put("catalog", "default", catalog)
    doc = EditDocument(model="tiny", source=SeedSource(seed=3, psi=0.7))
    busiest = max(range(catalog.k), key=lambda k: sum(int((v >= 0.4).sum()) for v in catalog.effect_rows([k]).values()))
    edit = TransferEdit(reference=SeedSource(seed=9, psi=0.7), region=(f"c{busiest}",), query="effect", tau=0.4)
    out = doc.with_edit(edit)
    a, b = r.render(doc), r.render(out)
    assert not torch.equal(a, b)
    path = tmp_path / "x.stylestudio"
    save_project(path, out)
    again = load_project(path)
    assert again.edits[0].tau == 0.4 and again.edits[0].query == "effect"
    assert torch.equal(r.render(again), b)


def test_locality_measure_on_a_pair(tiny, catalog: Catalog) -> None:  # noqa: F811
    with torch.no_grad():
        s = tiny.styles(SeedSource(1, 0.7).latent(tiny))
        ref = tiny.styles(SeedSource(2, 0.7).latent(tiny))
    pair = prepare_pair(tiny, catalog, s, ref, 32, None)
    cluster = int(np.bincount(pair.labels.ravel()).argmax())
    none = {k: np.zeros(v.shape[1], np.float32) for k, v in s.items()}
    allq = {k: np.ones(v.shape[1], np.float32) for k, v in s.items()}
    m0 = measure(tiny, pair, [cluster], none, 32, None, 1)
    m1 = measure(tiny, pair, [cluster], allq, 32, None, 1)
    assert m0.inside == 0 and m0.outside == 0
    assert m1.moved == pytest.approx(1.0, abs=1e-4)  # q = 1 everywhere is the reference itself
    assert at_equal_inside([(2.0, 1.0), (4.0, 3.0)], 3.0) == pytest.approx(2.0)
    assert at_equal_inside([(2.0, 1.0)], 4.0) == pytest.approx(2.0)
