"""Regional transfer (Editing in Style): catalog maths, queries, masks, the edit, persistence.

Fast: everything runs on the tiny 32-px StyleGAN2 of the oracle folder (or, without it, a small
randomly initialised one of the same shape), with a catalog built from a dozen faces.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from stylestudio.engine.document import EditDocument, LatentSource, SeedSource
from stylestudio.engine.edits.transfer import TransferEdit
from stylestudio.engine.regions.builder import _Accumulator, build_catalog
from stylestudio.engine.regions.catalog import Catalog
from stylestudio.engine.regions.cluster_maps import cluster_probs
from stylestudio.engine.regions.kmeans import spherical_kmeans
from stylestudio.engine.regions.taps import probe_taps, style_input_taps
from stylestudio.engine.regions.masks import mask_clusters, mask_rows
from stylestudio.engine.regions.queries import (QueryParams, blend_styles, sequential_query,
                                                simple_query)
from stylestudio.engine.render import Renderer
from stylestudio.errors import Cancelled, InputError, ModelFormatError

TINY_PKL = Path(__file__).resolve().parents[1].parent / "shared" / "oracle" / "stylegan2_tiny" / "network-snapshot.pkl"


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    if TINY_PKL.is_file():
        from stylestudio.engine.stylegan2.nvlabs_pickle import load_nvlabs_pickle

        gen = load_nvlabs_pickle(TINY_PKL)
    else:
        from stylestudio.engine.stylegan2.network import StyleGAN2Generator

        torch.manual_seed(0)
        gen = StyleGAN2Generator(z_dim=64, w_dim=64, img_resolution=32, num_mapping_layers=2,
                                 channel_base=1024, channel_max=64)
    return gen.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def catalog(tiny) -> Catalog:
    return build_catalog(tiny, "tiny", k=5, samples=12, batch=4, seed=3)


def _renderer(gen, cat: Catalog) -> Renderer:
    r = Renderer(gen, "tiny")
    r.resources.put("catalog", "default", cat)
    return r


# ---------------------------------------------------------------------------------------------
# the contribution matrix


def test_contributions_columns_are_shares(catalog: Catalog, tiny) -> None:
    assert catalog.style_layers == tuple(l.name for l in tiny.style_layout)
    for name in catalog.style_layers:
        m = catalog.contributions[name]
        assert m.shape == (catalog.k, tiny.layer(name).channels)
        assert (m >= 0).all() and (m <= 1 + 1e-6).all()
        np.testing.assert_allclose(m.sum(0), 1.0, atol=1e-5)  # every channel's energy is somewhere
    np.testing.assert_allclose(catalog.area.sum(), 1.0, atol=1e-5)
    assert (np.diff(catalog.area) <= 1e-7).all()  # clusters numbered biggest first
    # a region's row is the sum of its clusters' rows, and the whole picture holds everything
    rows = catalog.rows(range(catalog.k))
    for name, row in rows.items():
        np.testing.assert_allclose(row, 1.0, atol=1e-5)
    two = catalog.rows((1, 3))
    for name in catalog.style_layers:
        np.testing.assert_allclose(two[name], catalog.contributions[name][[1, 3]].sum(0), rtol=1e-6)


def test_accumulator_matches_direct_standardised_formula() -> None:
    rng = np.random.RandomState(0)
    n, c, k, h = 3, 4, 3, 8
    labels = rng.randint(0, k, size=(n, h, h))
    u = np.eye(k)[labels].transpose(0, 3, 1, 2)  # one-hot [n, k, h, h]
    a = rng.randn(n, c, h, h) * np.array([1.0, 2.0, 0.5, 3.0])[None, :, None, None] + 1.5
    # channel 0 lives only in cluster 0: the paper's "local" channel
    a[:, 0] = np.where(labels == 0, 5.0 + rng.rand(n, h, h), 0.0)
    acc = _Accumulator(k, c)
    acc.add(torch.from_numpy(a[:2]), torch.from_numpy(u[:2]))  # batches accumulate
    acc.add(torch.from_numpy(a[2:]), torch.from_numpy(u[2:]))
    m, mu, sd = acc.finish()
    std = (a - a.mean((0, 2, 3), keepdims=True)) / a.std((0, 2, 3), keepdims=True)
    direct = np.einsum("nkhw,nchw->kc", u, std**2) / (n * h * h)  # M[k,c] = mean(Ã² · U_k)
    np.testing.assert_allclose(m, direct / direct.sum(0, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(mu, a.mean((0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(sd, a.std((0, 2, 3)), rtol=1e-4)
    # standardised, a channel on only in a region covering a share p of the picture puts 1 − p of its
    # energy there (here p ≈ 1/3); channels on everywhere spread like the clusters' areas
    assert m[0, 0] > 0.55 and m[0, 0] == m[:, 0].max()
    assert m[0, 1:].max() < 0.5


def test_style_inputs_follow_execution_order(tiny) -> None:
    inputs = style_input_taps(tiny, probe_taps(tiny))
    assert inputs["b8.conv0"] == "b4.conv1"  # a conv's style scales the previous layer's output
    assert inputs["b8.conv1"] == "b8.conv0"
    assert inputs["b8.torgb"] == "b8.conv1"
    assert inputs["b4.conv1"] == "b4.conv1"  # the constant input is not tapped: own output stands in


def test_spherical_kmeans_keeps_centroids_on_the_sphere() -> None:
    rng = np.random.RandomState(1)
    dirs = np.eye(6)[:3] * 4
    x = np.concatenate([d + 0.3 * rng.randn(200, 6) for d in dirs]) * rng.uniform(0.5, 3, (600, 1))
    cent, labels = spherical_kmeans(x, 3, seed=0)
    np.testing.assert_allclose(np.linalg.norm(cent, axis=1), 1.0, atol=1e-5)
    # scale does not matter, direction does: each true group is one cluster
    for g in range(3):
        assert len(set(labels[g * 200:(g + 1) * 200])) == 1
    assert len(set(labels)) == 3


def test_cluster_probs_any_resolution(catalog: Catalog, tiny) -> None:
    styles = tiny.styles(tiny.mapping(torch.randn(2, tiny.z_dim), 0.7))
    scores = catalog.scores(tiny, styles)
    for size in (4, 16, 64):
        p = cluster_probs(scores, size)
        assert p.shape == (2, catalog.k, size, size)
        torch.testing.assert_close(p.sum(1), torch.ones(2, size, size))
    labels = catalog.cluster_map(tiny, styles, 48)
    assert labels.shape == (2, 48, 48) and int(labels.max()) < catalog.k


# ---------------------------------------------------------------------------------------------
# queries


def test_simple_query_monotone_in_lambda() -> None:
    m = np.random.RandomState(2).dirichlet(np.ones(5), size=40).T[0]
    prev = np.zeros_like(m)
    for lam in (0.0, 0.5, 1, 2, 5, 50):
        q = simple_query(m, lam)
        assert (q >= prev - 1e-7).all() and (q <= 1).all() and (q >= 0).all()
        prev = q
    assert (simple_query(m, 0.0) == 0).all()
    np.testing.assert_allclose(simple_query(m, 2.0), np.minimum(1, 2 * m), rtol=1e-6)


def test_sequential_query_monotone_in_eps_and_rho() -> None:
    m = np.random.RandomState(3).dirichlet(np.ones(4) * 0.3, size=64).T[0]
    prev = np.zeros_like(m)
    counts = []
    for eps in (0.0, 0.5, 1.0, 3.0, 10.0, 100.0):
        q = sequential_query(m, eps, 0.0)
        assert set(np.unique(q)) <= {0.0, 1.0}
        assert (q >= prev).all()
        prev = q
        counts.append(int(q.sum()))
    assert counts[0] == 0 and counts[-1] == len(m) - int((m <= 0).sum())
    assert counts[2] < counts[-1]
    # the chosen channels are the most local ones, and their leak is within budget
    q = sequential_query(m, 1.5, 0.0)
    chosen = m[q == 1]
    assert chosen.min() >= m[q == 0].max()
    assert (1 - chosen).sum() < 1.5
    # raising rho only removes channels
    assert (sequential_query(m, 10.0, 0.3) <= sequential_query(m, 10.0, 0.1)).all()
    assert (m[sequential_query(m, 10.0, 0.3) == 1] > 0.3).all()


def test_blend_identity_and_reference(tiny) -> None:
    s = tiny.styles(tiny.mapping(torch.randn(1, tiny.z_dim), 0.7))
    r = tiny.styles(tiny.mapping(torch.randn(1, tiny.z_dim), 0.7))
    zero = {k: np.zeros(v.shape[1], np.float32) for k, v in s.items()}
    one = {k: np.ones(v.shape[1], np.float32) for k, v in s.items()}
    out = blend_styles(s, r, zero)
    assert all(out[k] is s[k] for k in s)  # untouched layers are the same tensors (cache reuse)
    out = blend_styles(s, r, one)
    for k in s:
        torch.testing.assert_close(out[k], r[k])
    half = blend_styles(s, r, one, 0.5)
    for k in s:
        torch.testing.assert_close(half[k], (s[k] + r[k]) / 2)


def test_transfer_q0_is_identity_and_q1_is_the_reference(tiny, catalog: Catalog) -> None:
    renderer = _renderer(tiny, catalog)
    target = EditDocument(model="tiny", source=SeedSource(5, 0.7))
    ref = SeedSource(6, 0.7)
    base = renderer.render(target)
    ref_img = renderer.render(EditDocument(model="tiny", source=ref))
    # strength 0: identity
    doc = target.with_edit(TransferEdit(reference=ref, region=("c0",), strength=0.0))
    torch.testing.assert_close(renderer.render(doc), base)
    # a query that selects nothing (ε = 0): identity
    doc = target.with_edit(TransferEdit(reference=ref, region=("c0",), eps=0.0))
    torch.testing.assert_close(renderer.render(doc), base)
    # the whole picture with a saturated simple query: q = 1 on every channel → the reference
    all_clusters = tuple(f"c{i}" for i in range(catalog.k))
    doc = target.with_edit(TransferEdit(reference=ref, region=all_clusters, query="simple", lam=1e6))
    torch.testing.assert_close(renderer.render(doc), ref_img, atol=1e-5, rtol=1e-5)
    # a real regional query changes the picture, but less than the whole swap
    doc = target.with_edit(TransferEdit(reference=ref, region=("c1",), eps=3.0, rho=0.0))
    out = renderer.render(doc)
    d = (out - base).abs().mean()
    assert 0 < d < (ref_img - base).abs().mean()


def test_query_is_cached_per_catalog(tiny, catalog: Catalog) -> None:
    renderer = _renderer(tiny, catalog)
    catalog.cache.clear()
    doc = EditDocument(model="tiny", source=SeedSource(5)).with_edit(
        TransferEdit(reference=SeedSource(7), region=("c2",)))
    renderer.render(doc)
    n = len(catalog.cache)
    renderer.render(doc.with_edit(TransferEdit(reference=SeedSource(7), region=("c2",), strength=0.5,
                                               id=doc.edits[0].id)))
    assert len(catalog.cache) == n == 1  # strength is not part of the query


# ---------------------------------------------------------------------------------------------
# "fit to this face"


def _in_out(a: Tensor, b: Tensor, region: np.ndarray, margin: int = 1) -> tuple[float, float]:
    from stylestudio.engine.regions.masks import dilate

    d = (a - b).abs().mean(1)[0].numpy()
    return float(d[region].mean()), float(d[~dilate(region, margin)].mean())


def test_fit_keeps_the_change_inside_the_region(tiny, catalog: Catalog) -> None:
    from stylestudio.engine.regions.fit import FitSettings, fit_query
    from stylestudio.engine.regions.queries import query_layers

    s = tiny.styles(SeedSource(5, 0.7).latent(tiny))
    r = tiny.styles(SeedSource(6, 0.7).latent(tiny))
    region = np.zeros((32, 32), bool)
    region[8:20, 10:24] = True  # a painted block: what matters is the fit's own objective
    q0 = query_layers(catalog.rows((0, 1, 2, 3, 4)), QueryParams("sequential", eps=1e9, rho=0.0))
    settings = FitSettings(steps=40, lr=0.1, beta=4.0, colour_steps=0)  # the start's own goal only
    q = fit_query(tiny, s, r, region, q0, settings)
    assert q.keys() == q0.keys()
    assert all(((v >= 0) & (v <= 1)).all() and not v[q0[k] == 0].any() for k, v in q.items())
    with torch.no_grad():
        plain = tiny.synthesize(s).image
        start = tiny.synthesize(blend_styles(s, r, q0)).image
        fitted = tiny.synthesize(blend_styles(s, r, q)).image
    in0, out0 = _in_out(start, plain, region)
    in1, out1 = _in_out(fitted, plain, region)
    # the whole swap moves everything alike; the fit keeps much of the inside and drops the outside
    assert out1 < 0.6 * out0, (in0, out0, in1, out1)
    assert out1 / in1 < 0.75 * (out0 / in0), (in0, out0, in1, out1)
    assert in1 > 0.3 * in0


def test_fit_from_two_starts_keeps_the_more_local(tiny, catalog: Catalog) -> None:
    """A generous start and a tuned one: the fit keeps whichever result leaks less per change inside."""
    from stylestudio.engine.regions.fit import FitSettings, fit_query
    from stylestudio.engine.regions.queries import query_layers

    s = tiny.styles(SeedSource(5, 0.7).latent(tiny))
    r = tiny.styles(SeedSource(6, 0.7).latent(tiny))
    region = np.zeros((32, 32), bool)
    region[8:20, 10:24] = True
    generous = query_layers(catalog.rows((0, 1, 2, 3, 4)), QueryParams("sequential", eps=1e9, rho=0.0))
    narrow = query_layers(catalog.rows((0, 1)), QueryParams("sequential", eps=1.0, rho=0.3))
    settings = FitSettings(steps=10, lr=0.1, colour_steps=0)

    def leak(q) -> float:
        with torch.no_grad():
            plain = tiny.synthesize(s).image
            inside, outside = _in_out(tiny.synthesize(blend_styles(s, r, q)).image, plain, region)
        return outside / inside

    alone = [fit_query(tiny, s, r, region, q0, settings) for q0 in (generous, narrow)]
    leaks = [leak(q) for q in alone]
    assert abs(leaks[0] - leaks[1]) > 0.01 * max(leaks)  # the two starts end in different places
    best = alone[int(np.argmin(leaks))]
    for starts in ([generous, narrow], [narrow, generous]):
        q = fit_query(tiny, s, r, region, starts, settings)
        assert all(np.allclose(q[k], best[k], atol=1e-6) for k in best)


@pytest.mark.skipif(not TINY_PKL.is_file(), reason="needs the oracle's trained tiny StyleGAN2 (../shared/oracle): "
                    "on the random stand-in the region keeps no colour for the fit to reach")
def test_colour_fit_reaches_the_reference_colour_and_joins_only_when_the_starts_leak(tiny, catalog: Catalog) -> None:
    """The colour fit pulls the region's mean colour toward the reference's, over any channel; it is
    tried only when the starts' fits leak more than ``local_enough``, and then the more local wins."""
    import dataclasses

    from stylestudio.engine.regions.fit import FitSettings, _Pair, fit_query
    from stylestudio.engine.regions.queries import query_layers

    s = tiny.styles(SeedSource(5, 0.7).latent(tiny))
    r = tiny.styles(SeedSource(6, 0.7).latent(tiny))
    region = np.zeros((32, 32), bool)
    region[8:20, 10:24] = True
    narrow = query_layers(catalog.rows((0, 1)), QueryParams("sequential", eps=1.0, rho=0.3))
    settings = FitSettings(steps=10, lr=0.1, colour_steps=30, colour_weight=4.0)
    pair = _Pair(tiny, s, r, region, settings)

    def colour_gap(q) -> float:
        with torch.no_grad():
            img = pair.render(q)
        return float(((img * pair.inside).sum((2, 3)) / pair.inside.sum() - pair.reference_colour).norm())

    coloured = pair.fit(narrow, goal="colour")
    assert colour_gap(coloured) < 0.5 * colour_gap(narrow), (colour_gap(narrow), colour_gap(coloured))
    assert any(v[narrow[k] == 0].any() for k, v in coloured.items())  # free of the start's channels
    assert all(((v >= 0) & (v <= 1)).all() for v in coloured.values())

    started = pair.fit(narrow)
    assert abs(pair.leak(started) - pair.leak(coloured)) > 0.01 * pair.leak(started)
    local = dataclasses.replace(settings, local_enough=1e9)  # every start local enough: no colour fit
    q = fit_query(tiny, s, r, region, narrow, local)
    assert all(np.allclose(q[k], started[k], atol=1e-6) for k in started)
    strict = dataclasses.replace(settings, local_enough=0.0)  # never local enough: the more local of the two
    best = min((started, coloured), key=pair.leak)
    q = fit_query(tiny, s, r, region, narrow, strict)
    assert all(np.allclose(q[k], best[k], atol=1e-6) for k in best)


@pytest.fixture(scope="module")
def fit_session():
    """A session on the tiny test model with a small catalog, and a region that covers much of face 5."""
    from stylestudio.engine.session import Session

    from test_gui_support import TINY, ensure_test_model

    ensure_test_model(TINY)
    session = Session(device="cpu")
    gen = session.generator(TINY)
    cat = build_catalog(gen, TINY, k=5, samples=12, batch=4, seed=3)
    session.install(TINY, "catalog", "default", cat)
    session.take_published()
    with torch.no_grad():
        labels = cat.cluster_map(gen, gen.styles(SeedSource(5).latent(gen)), 32)[0].numpy()
    return session, TINY, f"c{np.bincount(labels.ravel()).argmax()}"


def test_renders_only_use_the_fit_that_the_fit_region_task_made(fit_session, monkeypatch, tmp_path: Path) -> None:
    """A render never fits (it draws the unfitted query until a fit is in the document); FitRegion
    fits in its caller's thread with progress; the fit is used for its face and transfer only."""
    import dataclasses

    import stylestudio.engine.regions.fit as fit_module
    from stylestudio.engine import tasks
    from stylestudio.engine.project import load_project, save_project
    from stylestudio.engine.tasks.regions import fitted_document

    session, model, region = fit_session
    calls = []
    real = fit_module.fit_query

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    real_named = fit_module.fit_named_region

    def uncounted(*args, **kwargs):
        monkeypatch.setattr(fit_module, "fit_query", real)
        try:
            return real_named(*args, **kwargs)
        finally:
            monkeypatch.setattr(fit_module, "fit_query", counting)

    monkeypatch.setattr(fit_module, "fit_query", counting)  # named regions fit through fit_named_region
    renderer = session.renderer(model, "final")
    edit = TransferEdit(reference=SeedSource(7), region=(region,), fit=True, eps=4.0, rho=0.0)
    doc = EditDocument(model=model, source=SeedSource(5)).with_edit(edit)
    unfitted = renderer.render(doc)
    torch.testing.assert_close(unfitted, renderer.render(doc.with_edit(dataclasses.replace(edit, fit=False))))
    assert calls == []  # the render did not fit

    fractions: list[float] = []
    fitted = tasks.run(session, tasks.FitRegion.of(doc, edit), lambda m, f: fractions.append(f))
    assert calls == [1] and fractions[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in zip(fractions, fractions[1:]) if a >= 0 and b >= 0)
    assert tasks.describe_result(tasks.FitRegion.of(doc, edit), fitted).startswith("fitted ")
    done = fitted_document(doc, fitted)
    assert done is not None and done.edits[0].fitted is fitted
    assert fitted_document(done, fitted) is None  # already in
    image = renderer.render(done)
    assert not torch.equal(image, unfitted)
    # the same q as fitting this pair directly
    gen, cat = renderer.generator, renderer.resources.get("catalog", "default")
    with torch.no_grad():
        base, ref = gen.styles(SeedSource(5).latent(gen)), gen.styles(SeedSource(7).latent(gen))
    direct = uncounted(gen, cat, base, ref, cat.resolve((region,)), also=edit.params)
    assert all(np.allclose(fitted.q[k], direct[k], atol=1e-5) for k in direct)

    # a strength change keeps the fit; another face, reference or region draws the unfitted query
    weaker = done.with_edit(dataclasses.replace(done.edits[0], strength=0.4))
    assert not torch.equal(renderer.render(weaker), renderer.render(
        weaker.with_edit(dataclasses.replace(weaker.edits[0], fitted=None))))
    other_face = done.with_source(SeedSource(6))
    torch.testing.assert_close(renderer.render(other_face),
                               renderer.render(doc.with_source(SeedSource(6))))
    assert fitted_document(doc.with_source(SeedSource(6)), fitted) is None
    other_ref = done.with_edit(dataclasses.replace(done.edits[0], reference=SeedSource(8)))
    torch.testing.assert_close(renderer.render(other_ref), renderer.render(
        other_ref.with_edit(dataclasses.replace(other_ref.edits[0], fitted=None))))
    assert len(calls) == 1 and "fitted" in edit.describe()

    # saved with the project: reopened, it draws the fitted look at once
    save_project(tmp_path / "f.stylestudio", done)
    back = load_project(tmp_path / "f.stylestudio")
    assert back.edits[0].fitted is not None and back.edits[0].is_fitted_for(fitted.face_key)
    torch.testing.assert_close(renderer.render(back), image)
    assert len(calls) == 1


def test_fit_region_can_be_cancelled(fit_session) -> None:
    from stylestudio.engine import tasks
    from stylestudio.engine.progress import CancelToken
    from stylestudio.engine.regions.fit import FitSettings

    session, model, region = fit_session
    doc = EditDocument(model=model, source=SeedSource(5))
    edit = TransferEdit(reference=SeedSource(7), region=(region,), fit=True)
    token = CancelToken()
    seen: list[float] = []

    def progress(message: str, fraction: float) -> None:
        seen.append(fraction)
        if fraction > 0:
            token.cancel()

    with pytest.raises(Cancelled):
        tasks.run(session, tasks.FitRegion.of(doc, edit, FitSettings(steps=500)), progress, token)
    assert 0 < max(seen) < 0.01  # stopped after its first step of 1000+
    with pytest.raises(InputError, match="region"):  # nothing to fit: one clear message
        tasks.run(session, tasks.FitRegion.of(doc, TransferEdit(reference=SeedSource(7), fit=True)))


def test_a_damaged_fit_in_a_project_is_one_clear_error(fit_session, tmp_path: Path) -> None:
    import dataclasses

    from stylestudio.engine.project import load_project, save_project
    from stylestudio.engine.regions.fitted import FittedQuery

    session, model, region = fit_session
    doc = EditDocument(model=model, source=SeedSource(5))
    edit = TransferEdit(reference=SeedSource(7), region=(region,), fit=True)
    bad_q = {"b4.conv1": np.full(4, 2.0, np.float32)}  # channel weights outside [0, 1]
    with pytest.raises(InputError, match="0, 1"):
        FittedQuery("x", "y", np.zeros((3, 3)), bad_q)
    ok = FittedQuery("x", "y", np.zeros((3, 3)), {"b4.conv1": np.full(4, 0.5, np.float32)})
    assert not ok.q["b4.conv1"].flags.writeable  # a document's arrays are values
    save_project(tmp_path / "p.stylestudio", doc.with_edit(dataclasses.replace(edit, fitted=ok)))
    back = load_project(tmp_path / "p.stylestudio").edits[0]
    assert back.fitted.inputs == "x" and np.array_equal(back.fitted.q["b4.conv1"], ok.q["b4.conv1"])


# ---------------------------------------------------------------------------------------------
# painted masks


def test_mask_selects_the_clusters_it_covers(tiny, catalog: Catalog) -> None:
    styles = tiny.styles(SeedSource(11).latent(tiny))
    labels = catalog.cluster_map(tiny, styles, 128)[0].numpy()
    present = [int(i) for i in np.unique(labels) if (labels == i).mean() > 0.05]
    a = present[0]
    assert mask_clusters(catalog, tiny, styles, (labels == a).astype(np.uint8) * 255) == (a,)
    if len(present) > 1:
        b = present[1]
        both = np.isin(labels, [a, b])
        assert mask_clusters(catalog, tiny, styles, both) == tuple(sorted((a, b)))
        # a dab inside cluster b only: below the coverage threshold, it falls back to b
        ys, xs = np.nonzero(labels == b)
        dab = np.zeros_like(labels, dtype=bool)
        dab[ys[len(ys) // 2], xs[len(xs) // 2]] = True
        assert mask_clusters(catalog, tiny, styles, dab, coverage=0.5) == (b,)


def test_mask_rows_are_shares_of_the_target(tiny, catalog: Catalog) -> None:
    styles = tiny.styles(SeedSource(12).latent(tiny))
    yy, xx = np.mgrid[:64, :64]
    m = ((yy - 40) ** 2 + (xx - 30) ** 2 < 15**2).astype(np.float32)
    inside = mask_rows(catalog, tiny, styles, m)
    outside = mask_rows(catalog, tiny, styles, 1 - m)
    full = mask_rows(catalog, tiny, styles, np.ones((64, 64), np.float32))
    for name in catalog.style_layers:
        np.testing.assert_allclose(inside[name] + outside[name], 1.0, atol=1e-4)
        np.testing.assert_allclose(full[name], 1.0, atol=1e-6)
    with pytest.raises(InputError):
        mask_rows(catalog, tiny, styles, np.zeros((64, 64)))


@pytest.mark.parametrize("mode", ["clusters", "activations"])
def test_mask_transfer_changes_the_picture(tiny, catalog: Catalog, mode: str) -> None:
    renderer = _renderer(tiny, catalog)
    target = EditDocument(model="tiny", source=SeedSource(21))
    base = renderer.render(target)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    doc = target.with_edit(TransferEdit(reference=SeedSource(22), mask=mask, mask_mode=mode, eps=4.0, rho=0.0))
    assert (renderer.render(doc) - base).abs().mean() > 0


# ---------------------------------------------------------------------------------------------
# persistence


def test_catalog_round_trip(tmp_path: Path, catalog: Catalog) -> None:
    named = catalog.with_name("mouth", [2]).with_name("Eyes", [3, 1])
    path = named.save(tmp_path / "default")
    assert path.suffix == ".json" and path.with_suffix(".npz").is_file()
    body = json.loads(path.read_text())
    assert body["names"] == {"mouth": [2], "eyes": [1, 3]}
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:  # plain arrays, no pickle
        assert all(z[k].dtype != object for k in z.files)
    back = Catalog.load(path)
    assert back.k == catalog.k and back.layer == catalog.layer
    assert back.style_layers == catalog.style_layers and back.input_taps == catalog.input_taps
    np.testing.assert_array_equal(back.centroids, catalog.centroids)
    np.testing.assert_array_equal(back.area, catalog.area)
    for n in catalog.style_layers:
        np.testing.assert_array_equal(back.contributions[n], catalog.contributions[n])
        np.testing.assert_array_equal(back.mean[n], catalog.mean[n])
        np.testing.assert_array_equal(back.std[n], catalog.std[n])
    assert back.resolve("mouth") == (2,) and back.resolve(["eyes", "c4"]) == (1, 3, 4)
    assert back.resolve("mouth+3") == (2, 3)
    assert back.cluster_name(2) == "mouth" and back.cluster_name(0) == "c0"
    with pytest.raises(InputError, match="unknown region"):
        back.resolve("beard")
    # a damaged array file is refused
    npz = path.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:-40] + b"\0" * 40)
    with pytest.raises(ModelFormatError):
        Catalog.load(path)
    with pytest.raises(InputError):
        Catalog.load(tmp_path / "missing")


def test_catalog_resource_is_found_in_the_user_folder(tiny, catalog: Catalog, stylestudio_home: Path) -> None:
    from stylestudio.engine.regions.catalog import find_catalog, user_catalog_path

    catalog.with_name("blob", [0]).save(user_catalog_path("tinyres", "mine"))
    assert find_catalog("tinyres", "mine") == stylestudio_home / "catalogs" / "tinyres" / "mine.json"
    r = Renderer(tiny, "tinyres")
    cat = r.resources.get("catalog", "mine")
    assert cat.resolve("blob") == (0,)
    with pytest.raises(InputError, match="catalog build"):
        r.resources.get("catalog", "nothere")


def test_transfer_edit_survives_a_project_round_trip(tmp_path: Path, tiny, catalog: Catalog) -> None:
    from stylestudio.engine.project import load_project, save_project

    ref = LatentSource(wplus=SeedSource(31).latent(tiny).numpy(), name="ref")
    mask = np.zeros((40, 40), np.float32)
    mask[10:20, 5:30] = 0.8
    edit = TransferEdit(reference=ref, mask=mask, mask_mode="activations", strength=0.7, eps=2.5, rho=0.05,
                        fit=True)
    assert edit.mask.dtype == np.uint8 and edit.mask.max() == 204
    doc = EditDocument(model="tiny", source=SeedSource(30)).with_edit(edit)
    save_project(tmp_path / "p.stylestudio", doc)
    back = load_project(tmp_path / "p.stylestudio")
    e = back.edits[0]
    assert isinstance(e, TransferEdit) and e.id == edit.id
    assert (e.strength, e.eps, e.rho, e.mask_mode, e.fit) == (0.7, 2.5, 0.05, "activations", True)
    np.testing.assert_array_equal(e.mask, edit.mask)
    assert isinstance(e.reference, LatentSource)
    np.testing.assert_array_equal(e.reference.wplus, ref.wplus)
    renderer = _renderer(tiny, catalog)
    torch.testing.assert_close(renderer.render(back), renderer.render(doc))


def test_bad_transfer_settings_are_input_errors(tiny, catalog: Catalog) -> None:
    ref = SeedSource(1)
    with pytest.raises(InputError):
        TransferEdit(reference=ref, region=("c0",), strength=5.0)
    with pytest.raises(InputError):
        TransferEdit(reference=ref, region=("c0",), strength=float("nan"))
    with pytest.raises(InputError):
        TransferEdit(reference=ref, region=("c0",), mask=np.ones((8, 8)))
    with pytest.raises(InputError):
        TransferEdit(reference=ref, mask=np.zeros((8, 8)))
    with pytest.raises(InputError):
        TransferEdit(reference=ref, region=("c0",), query="magic")
    with pytest.raises(InputError):
        TransferEdit(reference=ref, region=("c0",), eps=-1)
    with pytest.raises(InputError):
        TransferEdit(reference=ref, mask=np.ones((8, 8)), mask_mode="nearest")
    with pytest.raises(InputError):
        QueryParams(rho=2.0)
    renderer = _renderer(tiny, catalog)
    doc = EditDocument(model="tiny", source=SeedSource(2)).with_edit(TransferEdit(reference=ref, region=("nose",)))
    with pytest.raises(InputError, match="unknown region"):
        renderer.render(doc)


def test_build_reports_progress_and_can_be_cancelled(tiny) -> None:
    seen: list[float] = []
    build_catalog(tiny, "tiny", k=3, samples=4, batch=2, progress=lambda m, f: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 4
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        build_catalog(tiny, "tiny", k=3, samples=8, batch=2, cancel=cancel)
    import threading

    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        build_catalog(tiny, "tiny", k=3, samples=8, batch=2, cancel=ev)
    with pytest.raises(InputError):
        build_catalog(tiny, "tiny", k=1, samples=4)
    with pytest.raises(InputError):
        build_catalog(tiny, "tiny", k=3, samples=4, layer="b999.conv")


def test_dilate_grows_by_a_disk() -> None:
    from stylestudio.engine.regions.masks import dilate

    m = np.zeros((21, 21), bool)
    m[10, 10] = True
    g = dilate(m, 3)
    assert g.sum() == 29 and g[10, 13] and not g[10, 14] and not g[13, 13]  # disk of radius 3
    assert (dilate(m, 0) == m).all()
