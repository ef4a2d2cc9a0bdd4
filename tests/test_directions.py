"""Attribute directions: projection maths, library round trip, boundary fitting, the SC²GAN
re-projection, "new slider from examples", the shipped library and the edit CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stylestudio.engine.directions import interfacegan, sc2gan
from stylestudio.engine.directions.examples import direction_from_examples, save_custom_direction
from stylestudio.engine.directions.labels import LabelSet
from stylestudio.engine.directions.library import Direction, DirectionLibrary, project_out
from stylestudio.errors import InputError

REQUIRED = {"age", "gender", "smile", "yaw", "pitch"}


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _library(rng: np.random.RandomState, dim: int = 32) -> DirectionLibrary:
    base = rng.randn(dim)
    # deliberately correlated normals: every pair has cosine ≈ 0.5
    vecs = {n: _unit(base + rng.randn(dim)) for n in ("age", "gender", "smile", "yaw")}
    return DirectionLibrary("test", [Direction(n, n.title(), v, (0, 2), 1.5, {"k": i})
                                     for i, (n, v) in enumerate(vecs.items())], meta={"faces_labelled": 7})


def test_project_out_single_is_interfacegans_formula():
    rng = np.random.RandomState(0)
    d, n = _unit(rng.randn(16)), _unit(rng.randn(16))
    np.testing.assert_allclose(project_out(d, [n]), d - (d @ n) * n, atol=1e-6)


def test_joint_projection_is_orthogonal_to_every_kept_normal():
    rng = np.random.RandomState(1)
    lib = _library(rng)
    normals = [lib[k].vector for k in ("gender", "smile", "yaw")]
    v = project_out(lib["age"].vector, normals)
    for n in normals:
        assert abs(float(v @ n)) < 1e-5
    # projecting one normal at a time is *not* enough for correlated normals: the joint solve is needed
    seq = lib["age"].vector.astype(np.float64)
    for n in normals:
        seq = seq - (seq @ n) * n
    assert max(abs(float(seq @ n)) for n in normals) > 1e-2


def test_conditioned_keeps_the_step_along_the_own_normal():
    rng = np.random.RandomState(2)
    lib = _library(rng)
    v = lib.conditioned("age", ["gender", "smile"])
    assert float(v @ lib["age"].vector) == pytest.approx(1.0, abs=1e-5)
    assert abs(float(v @ lib["gender"].vector)) < 1e-5 and abs(float(v @ lib["smile"].vector)) < 1e-5
    # delta: only the direction's rows move, by amount × unit along the conditioned vector
    delta = lib.delta("age", 2.0, num_ws=4, keep=["gender", "smile"]).numpy()
    assert np.abs(delta[[1, 3]]).max() == 0
    np.testing.assert_allclose(delta[0], 2.0 * 1.5 * v, rtol=1e-5)
    with pytest.raises(InputError):
        lib.conditioned("nothing")


def test_library_round_trip(tmp_path):
    lib = _library(np.random.RandomState(3))
    path = tmp_path / "attributes.ssdir"
    lib.save(path)
    back = DirectionLibrary.load(path)
    assert back.names() == lib.names() and back.meta == lib.meta and back.kind == lib.kind
    for n in lib.names():
        np.testing.assert_array_equal(back[n].vector, lib[n].vector)
        assert back[n].layers == lib[n].layers and back[n].unit == lib[n].unit and back[n].meta == lib[n].meta
    path.write_bytes(b"not a zip")
    with pytest.raises(InputError):
        DirectionLibrary.load(path)


def test_fit_boundary_recovers_a_linear_attribute():
    rng = np.random.RandomState(4)
    true = _unit(rng.randn(64))
    w = rng.randn(1500, 64).astype(np.float32) + 3.0
    y = 4.0 * (w @ true) + 0.5 * rng.randn(1500)
    fit = interfacegan.fit_boundary(w, y)
    assert float(fit["normal"] @ true) > 0.95
    assert fit["accuracy"] > 0.95
    assert fit["slope"] == pytest.approx(4.0, rel=0.1)
    # NaN labels (faces where no face was found) are ignored
    y2 = y.copy()
    y2[:100] = np.nan
    assert float(interfacegan.fit_boundary(w, y2)["normal"] @ true) > 0.95


def test_correlated_pairs_and_reprojection():
    rng = np.random.RandomState(5)
    a = rng.randn(400)
    labels = LabelSet(rng.randn(400, 8).astype(np.float32),
                      {"a": a, "b": a + 0.3 * rng.randn(400), "c": rng.randn(400)})
    pairs = sc2gan.correlated_pairs(labels, ["a", "b", "c"])
    assert [p for p, _ in pairs["a"]] == ["b"] and pairs["c"] == []
    metrics = np.stack([np.eye(8) * s for s in (1.0, 3.0)])
    wp = rng.randn(5, 2, 8)
    # rows weighted by their metrics: (1·w0 + 3·w1) / 4
    np.testing.assert_allclose(sc2gan.reproject(wp, metrics), (wp[:, 0] + 3 * wp[:, 1]) / 4, rtol=1e-5)
    same = np.repeat(wp[:, :1], 2, axis=1)
    np.testing.assert_allclose(sc2gan.reproject(same, metrics), wp[:, 0], rtol=1e-5)


@pytest.fixture(scope="module")
def tiny_generator(oracle_dir):
    from stylestudio.engine.stylegan2.nvlabs_pickle import load_nvlabs_pickle

    torch.set_num_threads(1)  # one-image renders of a 32-px model: threads only add contention
    return load_nvlabs_pickle(oracle_dir / "stylegan2_tiny" / "network-snapshot.pkl").eval().requires_grad_(False)


class BrightnessPredictor:
    """A stand-in labeller for the tiny model: measurable, deterministic image statistics."""

    names = ["brightness", "redness"]

    def measure(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        return {"brightness": images.mean((1, 2, 3)).numpy(),
                "redness": (images[:, 0] - images[:, 1:].mean(1)).mean((1, 2)).numpy()}


class CentrePredictor(BrightnessPredictor):
    """Adds an attribute strongly correlated with brightness, so the SC²GAN refit has a pair."""

    names = ["brightness", "redness", "centre"]

    def measure(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        out = super().measure(images)
        h = images.shape[-1]
        out["centre"] = images[:, :, h // 4:3 * h // 4, h // 4:3 * h // 4].mean((1, 2, 3)).numpy()
        return out


def test_row_metrics_reproject_w_exactly(tiny_generator):
    g = tiny_generator
    metrics = sc2gan.row_metrics(g)
    w = g.map_z(torch.randn(3, g.z_dim)).numpy()
    np.testing.assert_allclose(sc2gan.reproject(np.repeat(w[:, None], g.num_ws, 1), metrics), w, atol=1e-4)


def test_build_library_pipeline_on_tiny_model(tiny_generator, monkeypatch):
    """Labelling, fitting, layer profile and unit calibration, end to end on a 32-px model."""
    from stylestudio.engine.attributes import predictor as predictor_mod
    from stylestudio.engine.directions import labels as labels_mod

    g = tiny_generator
    pred = BrightnessPredictor()
    monkeypatch.setattr(labels_mod, "render_small",
                        lambda gen, ws, stop, size=256: gen.synthesis(gen.broadcast_w(ws)))
    monkeypatch.setattr(interfacegan, "render_small",
                        lambda gen, ws, stop, size=256: gen.synthesis(gen.broadcast_w(ws)))
    monkeypatch.setattr(predictor_mod, "ATTRIBUTES", {})
    labels = labels_mod.label_faces(g, pred, 300, seed=1, psi=1.0)
    assert len(labels) == 300 and np.isfinite(labels.attrs["brightness"]).all()
    lib = interfacegan.build_library(g, "tiny", labels, pred, names=["brightness", "redness"],
                                     probe_faces=6, calib_faces=8)
    d = lib["brightness"]
    assert d.meta["accuracy"] > 0.8 and set(d.layers) <= set(range(g.num_ws)) and d.layers
    # a slider unit moves brightness by about half its spread across the faces
    w = labels.w[:20]
    up, down = interfacegan.measure_edits(g, pred, w, [(d.vector, d.unit, d.layers), (d.vector, -d.unit, d.layers)], None)
    per_unit = float(np.mean(up["brightness"] - down["brightness"]) / 2)
    assert per_unit == pytest.approx(0.5 * labels.attrs["brightness"].std(), rel=0.3)
    assert np.asarray(lib.meta["correlation"]).shape == (2, 2)


def test_build_attribute_library_with_refit(tiny_generator, monkeypatch, tmp_path):
    """The builder behind `stylestudio directions build`: label, fit, SC²GAN refit, save, report progress."""
    from stylestudio.engine.attributes import predictor as predictor_mod
    from stylestudio.engine.directions import labels as labels_mod
    from stylestudio.engine.directions.builder import build_attribute_library

    render = lambda gen, ws, stop, size=256: gen.synthesis(gen.broadcast_w(ws))  # noqa: E731
    monkeypatch.setattr(labels_mod, "render_small", render)
    monkeypatch.setattr(interfacegan, "render_small", render)
    monkeypatch.setattr(predictor_mod, "ATTRIBUTES", {})
    pred = CentrePredictor()
    seen: list[float] = []
    lib, path = build_attribute_library(tiny_generator, "tiny", 200, predictor=pred, output=tmp_path / "a.ssdir",
                                        progress=lambda msg, f: seen.append(f))
    assert path.is_file() and DirectionLibrary.load(path).names() == ["brightness", "redness", "centre"]
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert lib.meta["faces_labelled"] == 200
    corr = np.asarray(lib.meta["correlation"])
    assert corr[0, 2] > 0.5  # brightness and centre brightness go together
    refitted = [d for d in lib.directions.values() if d.meta["method"] == "sc2gan"]
    assert {d.name for d in refitted} >= {"brightness", "centre"}
    for d in refitted:  # a refitted direction keeps its InterFaceGAN original for comparison
        assert len(d.meta["interfacegan_vector"]) == tiny_generator.w_dim and d.meta["synthesised"] > 0
    assert lib.meta.get("refit") == "sc2gan"


def test_labelling_can_be_cancelled(tiny_generator, monkeypatch):
    from stylestudio.engine.directions import labels as labels_mod
    from stylestudio.errors import Cancelled

    monkeypatch.setattr(labels_mod, "render_small", lambda gen, ws, stop, size=256: gen.synthesis(gen.broadcast_w(ws)))
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 10

    with pytest.raises(Cancelled, match="after 10 of 100"):
        labels_mod.label_faces(tiny_generator, BrightnessPredictor(), 100, cancelled=cancelled)


def test_plain_library_restores_the_interfacegan_directions():
    lib = _library(np.random.RandomState(7))
    old = lib["age"]
    refit = _unit(np.random.RandomState(8).randn(32))
    lib.directions["age"] = Direction("age", "Age", refit, old.layers, 2.0,
                                      dict(old.meta, method="sc2gan", interfacegan_vector=old.vector.tolist(),
                                           interfacegan_unit=old.unit))
    plain = sc2gan.plain_library(lib)
    np.testing.assert_allclose(plain["age"].vector, old.vector, atol=1e-6)
    assert plain["age"].unit == old.unit and plain["gender"] is lib["gender"]


def test_new_slider_from_examples(tmp_path, tiny_generator):
    g = tiny_generator
    rng = np.random.RandomState(6)
    quality = _unit(rng.randn(g.w_dim))
    base = g.map_z(torch.from_numpy(rng.randn(12, g.z_dim).astype(np.float32))).numpy()
    pos = [b + 4.0 * quality for b in base[:6]]
    neg = [b - 4.0 * quality for b in base[6:]]
    d = direction_from_examples(g, pos, neg, "freckles")
    assert float(d.vector @ quality) > 0.8  # a random direction: ~0.1
    assert d.unit > 0 and d.meta["positives"] == 6
    # W+ examples work too, and a kept direction is projected out
    other = _unit(rng.randn(g.w_dim))
    wplus_pos = [np.repeat(p[None], g.num_ws, 0) for p in pos]
    d2 = direction_from_examples(g, wplus_pos, neg, "freckles", keep=[other])
    assert abs(float(d2.vector @ other)) < 1e-5
    with pytest.raises(InputError, match="at least 5"):
        direction_from_examples(g, pos[:4], neg, "freckles")
    with pytest.raises(InputError, match="name"):
        direction_from_examples(g, pos, neg, "Bad Name")
    path = save_custom_direction("tiny", d)
    assert DirectionLibrary.load(path)["freckles"].unit == pytest.approx(d.unit)


def test_cli_slider_parsing():
    from stylestudio.commands.edit import keep_list, parse_sets

    assert parse_sets(["age=+2", "smile=-1.5", "age=1"]) == [("age", 1.0), ("smile", -1.5)]
    assert parse_sets(["age=2e-1", "smile=-.5E0"]) == [("age", 0.2), ("smile", -0.5)]
    for bad in ("age", "=1", "age=4", "age=x", "age=nan", "age=inf"):  # "Age=1" is fine: the editor's label (test_cli)
        with pytest.raises(InputError):
            parse_sets([bad])
    with pytest.raises(InputError, match=r"smile=1e\+09 is outside the slider range"):  # says what is wrong
        parse_sets(["smile=+1e9"])
    names = ["age", "gender", "smile"]
    assert keep_list("all", names, "age") == ("gender", "smile")
    assert keep_list("none", names, "age") == ()
    assert keep_list("age,gender", names, "age") == ("gender",)
    with pytest.raises(InputError):
        keep_list("beard", names, "age")


def test_shipped_library_for_the_default_model():
    from stylestudio import paths

    path = paths.resources_dir() / "directions" / "mobilestylegan-ffhq" / "attributes.ssdir"
    lib = DirectionLibrary.load(path)
    assert lib.model == "mobilestylegan-ffhq"
    assert REQUIRED <= set(lib.names()) and len(lib.names()) >= 8
    for d in lib.directions.values():
        assert d.name == d.name.lower()
        assert d.vector.shape == (512,) and abs(float(np.linalg.norm(d.vector)) - 1) < 1e-4
        assert d.unit > 0 and all(0 <= r < 23 for r in d.layers)
        assert d.meta["unit_change"] > 0 and d.meta["faces"] >= 1000
    assert 5 <= lib["age"].meta["unit_change"] <= 9  # one unit ≈ 6–8 years
    # every slider can move while keeping all the others
    for n in lib.names():
        v = lib.conditioned(n, [k for k in lib.names() if k != n])
        assert np.isfinite(v).all()


@pytest.mark.slow
def test_cli_edit_end_to_end(tmp_path, default_generator):
    """`stylestudio edit` on a seed and on a project: age goes up by about its unit, kept smile stays."""
    from stylestudio.cli import main
    from stylestudio.engine.attributes import AttributePredictor
    from stylestudio.engine.imageio import load_rgb, read_recipe

    out = tmp_path / "older.png"
    assert main(["edit", "--source", "seed:7", "--set", "age=+2", "--keep", "all", "--size", "256",
                 "-o", str(out), "--save-project", str(tmp_path / "older.stylestudio")]) == 0
    assert main(["generate", "--seed", "7", "--size", "256", "-o", str(tmp_path / "plain.png")]) == 0
    recipe = read_recipe(out)
    assert recipe["edits"][0]["name"] == "age" and recipe["edits"][0]["amount"] == 2.0
    pred = AttributePredictor()

    def measure(p):
        img = torch.from_numpy(np.array(load_rgb(p))).permute(2, 0, 1)[None].float() / 127.5 - 1
        return pred.measure(img)

    before, after = measure(tmp_path / "plain.png"), measure(out)
    assert after["age"][0] - before["age"][0] > 5
    assert abs(after["smile"][0] - before["smile"][0]) < 2.5
    # a project file as the source: its age edit is replaced, a smile edit is added (seed 7 smiles
    # broadly, so the slider goes down)
    out2 = tmp_path / "project.png"
    assert main(["edit", "--source", str(tmp_path / "older.stylestudio"), "--set", "age=0", "--set", "smile=-3",
                 "--size", "256", "-o", str(out2)]) == 0
    edits = {e["name"]: e["amount"] for e in read_recipe(out2)["edits"]}
    assert edits == {"age": 0.0, "smile": -3.0}
    assert measure(out2)["smile"][0] < before["smile"][0] - 2
    assert main(["edit", "--source", "seed:7", "--set", "beard=1", "-o", str(tmp_path / "x.png")]) == 2
