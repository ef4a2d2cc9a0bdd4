"""Issue 19: the inversion keeps a wall-clock budget and returns its best result; the identity measure;
``--time-budget`` on the command line; the app and the batch show identity."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylestudio.cli import main
from stylestudio.engine.inversion import InversionSettings, invert, iter_inversion
from stylestudio.engine.render import to_uint8

skdata = pytest.importorskip("skimage.data")
TINY = "stylegan2_tiny/network-snapshot.pkl"
FAST = InversionSettings(estimate_candidates=6, estimate_steps=10, estimate_resolution=16, steps=100000,
                         pti_steps=100000, pti_lr=1e-3, preview_every=5, pti_far_lpips=None)


@pytest.fixture(scope="module")
def tiny(oracle_dir):
    from stylestudio.engine.stylegan2.nvlabs_pickle import load_nvlabs_pickle

    torch.set_num_threads(1)
    return load_nvlabs_pickle(oracle_dir / TINY).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def target(tiny) -> np.ndarray:
    ws = tiny.mapping(torch.from_numpy(np.random.RandomState(3).randn(1, tiny.z_dim).astype(np.float32)), 0.7)
    with torch.no_grad():
        return to_uint8(tiny.synthesis(ws))


@pytest.fixture(scope="module")
def tiny_model(oracle_dir) -> str:
    assert main(["models", "import", str(oracle_dir / TINY), "--name", "tiny"]) == 0
    return "tiny"


def ticking(monkeypatch, gen, seconds: float) -> list[float]:
    """A clock that advances ``seconds`` per render: budgets become step counts, independent of load."""
    ticks = [0.0]
    real = type(gen).synthesize

    def synthesize(self, *args, **kwargs):
        ticks[0] += seconds
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(gen), "synthesize", synthesize)  # on the class: PTI renders with a deep copy
    return ticks


@pytest.mark.parametrize("pti", [False, True])
def test_budget_covers_the_whole_inversion(monkeypatch, tiny, target, pti) -> None:
    """4 s budget, 0.1 s a render, 0.5 s spent aligning: the whole run ends within ±10 % of 4 s."""
    ticks = ticking(monkeypatch, tiny, 0.1)
    settings = dataclasses.replace(FAST, time_budget=4.0, pti=pti, clock=lambda: ticks[0])
    updates = list(iter_inversion(tiny, target, settings, spent=0.5))
    result = updates[-1].result
    assert 3.6 <= result.seconds <= 4.4, result.seconds
    stages = {h["stage"] for h in result.history}
    assert ("pti" in stages) == pti and "optimise" in stages
    opt_end = max(h["seconds"] for h in result.history if h["stage"] == "optimise")
    if pti:  # W+ leaves the last pti_share of the budget to PTI
        assert 0.9 * 4.0 * (1 - settings.pti_share) <= opt_end <= 4.0 * (1 - settings.pti_share)
    # the time left is reported and falls to (nearly) nothing
    left = [u.remaining for u in updates]
    assert left[0] <= 3.5 and left[-1] <= 0.4 and all(a >= b for a, b in zip(left, left[1:]))


@pytest.mark.parametrize("far", [True, False])
def test_a_far_face_calls_pti_in(monkeypatch, tiny, target, far) -> None:
    """``pti_far_lpips``: PTI joins (within the same budget, W+ leaving it its share) only when W+,
    ``pti_far_at`` of the way through, is still at least that far from the photo."""
    ticks = ticking(monkeypatch, tiny, 0.1)
    settings = dataclasses.replace(FAST, time_budget=4.0, pti=False, clock=lambda: ticks[0],
                                   pti_far_lpips=1e-6 if far else 10.0)
    updates = list(iter_inversion(tiny, target, settings))
    result = updates[-1].result
    stages = [h["stage"] for h in result.history]
    assert ("pti" in stages) == far and (result.weight_deltas is not None) == far
    assert 3.6 <= result.seconds <= 4.4, result.seconds
    opt_end = max(h["seconds"] for h in result.history if h["stage"] == "optimise")
    if far:  # judged part of the way through W+, which then left PTI its share
        assert opt_end <= 4.0 * (1 - settings.pti_share)
    else:
        assert opt_end > 4.0 * (1 - settings.pti_share)
    fractions = [u.fraction for u in updates]
    assert all(a <= b + 1e-9 for a, b in zip(fractions, fractions[1:])) and fractions[-1] == 1.0


def test_pti_choices() -> None:
    from stylestudio.engine.inversion import with_pti

    base = InversionSettings()
    assert base.pti is False and base.pti_far_lpips is not None  # the default: only far faces
    assert with_pti(base, "on").pti is True
    off = with_pti(base, "off")
    assert off.pti is False and off.pti_far_lpips is None
    assert with_pti(off, "auto") == base
    with pytest.raises(ValueError, match="sometimes"):
        with_pti(base, "sometimes")


def test_no_budget_runs_the_steps(monkeypatch, tiny, target) -> None:
    ticks = ticking(monkeypatch, tiny, 0.1)
    settings = dataclasses.replace(FAST, steps=30, time_budget=None, clock=lambda: ticks[0])
    updates = list(iter_inversion(tiny, target, settings))
    assert sum(u.stage == "optimise" for u in updates) == 30
    assert all(u.remaining is None for u in updates)


def test_progress_line_says_the_time_left(tiny, target) -> None:
    lines: list[str] = []
    invert(tiny, target, dataclasses.replace(FAST, steps=3, estimate_steps=2, time_budget=600.0),
           progress=lambda m, f: lines.append(m))
    assert lines and all(" s left" in m for m in lines)


def test_returns_the_best_code_seen_not_the_last(tiny, target) -> None:
    """An Adam step far too large makes later steps worse: the result is the best step's code."""
    settings = dataclasses.replace(FAST, estimate=False, steps=12, lr=30.0, delta_weight_start=None,
                                   time_budget=None)
    updates = list(iter_inversion(tiny, target, settings))
    opt = [u for u in updates if u.stage == "optimise"]
    done = updates[-1]
    best = min(opt, key=lambda u: u.loss)
    assert opt[-1].loss > best.loss * 1.05, "the test needs a run whose last step is not its best"
    assert done.loss == pytest.approx(best.loss, rel=1e-4)
    assert np.allclose(done.result.wplus, best.wplus[0].numpy())


# ---- the command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-3", "abc", "nan", "1e9", "0.5"])
def test_bad_time_budget_is_one_error_line(capsys, tmp_path, value) -> None:
    photo = tmp_path / "p.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    rc = main(["invert", str(photo), "-o", str(tmp_path / "p.stylestudio"), "--time-budget", value])
    err = capsys.readouterr().err
    assert rc == 2 and "--time-budget" in err
    assert [line for line in err.splitlines() if line.startswith("error:") or "error:" in line][:1], err
    assert not (tmp_path / "p.stylestudio").exists()


@pytest.mark.parametrize("value, seconds", [("none", None), ("0", None), ("NONE", None), ("45", 45.0),
                                            (None, 60.0)])
def test_time_budget_reaches_the_request(monkeypatch, capsys, tmp_path, tiny_model, value, seconds) -> None:
    from stylestudio.engine import tasks

    seen = []

    def fake_run(session, request, progress=None, cancel=None):
        seen.append(request)
        raise SystemExit(0)  # stop before inverting: only the request is checked

    monkeypatch.setattr(tasks, "run", fake_run)
    photo = tmp_path / "p.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    argv = ["invert", str(photo), "-o", str(tmp_path / "p.stylestudio"), "--model", tiny_model] + (
        ["--time-budget", value] if value is not None else [])
    with pytest.raises(SystemExit):
        main(argv)
    assert seen[0].settings.time_budget == seconds


@pytest.mark.parametrize("flags, pti, far", [([], False, True), (["--pti"], True, True), (["--no-pti"], False, False)])
def test_pti_choice_reaches_the_request(monkeypatch, tmp_path, tiny_model, flags, pti, far) -> None:
    from stylestudio.engine import tasks

    seen = []

    def fake_run(session, request, progress=None, cancel=None):
        seen.append(request)
        raise SystemExit(0)

    monkeypatch.setattr(tasks, "run", fake_run)
    photo = tmp_path / "p.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    with pytest.raises(SystemExit):  # the flags before the photo, as a user may type them
        main(["invert", *flags, str(photo), "-o", str(tmp_path / "p.stylestudio"), "--model", tiny_model])
    assert seen[0].settings.pti is pti
    assert (seen[0].settings.pti_far_lpips is not None) is far


def test_batch_keeps_no_limit_unless_asked() -> None:
    import argparse

    from stylestudio.commands.common import inversion_settings

    args = argparse.Namespace(pti="auto", steps=None, time_budget=None, pti_steps=None)
    assert inversion_settings(args).time_budget == InversionSettings().time_budget == 60.0
    assert inversion_settings(args, unbudgeted=True).time_budget is None
    asked = argparse.Namespace(pti="auto", steps=None, time_budget=20.0, pti_steps=None)
    assert inversion_settings(asked, unbudgeted=True).time_budget == 20.0


# ---- identity -------------------------------------------------------------------------------------------


def test_centred_cosine_and_calibration_file() -> None:
    from stylestudio.engine.inversion.identity import IdentityCalibration, centred_cosine, identity_line

    c = np.ones(192)
    a, b = c + np.eye(192)[0], c + np.eye(192)[1]
    assert centred_cosine(a, a, c) == pytest.approx(1.0)
    assert centred_cosine(a, b, c) == pytest.approx(0.0)
    cal = IdentityCalibration.load()  # the shipped one
    assert cal.centre.shape == (192,) and 0 < cal.threshold < 1
    assert identity_line(0.8312, 0.7) == "identity 0.83 (same person ≥ 0.70)"


def test_damaged_calibration_is_one_clear_error(tmp_path) -> None:
    from stylestudio.engine.inversion.identity import IdentityCalibration
    from stylestudio.errors import InputError

    bad = tmp_path / "cal.json"
    bad.write_text('{"format": "stylestudio-identity-calibration", "threshold": 7, "centre": [1, 2]}')
    with pytest.raises(InputError, match="cal.json"):
        IdentityCalibration.load(bad)


@pytest.mark.slow
def test_identity_of_a_face_with_itself_and_with_another(default_generator) -> None:
    """The astronaut against itself is ≈ 1, against a generated face much lower."""
    from stylestudio.engine.document import seed_to_z
    from stylestudio.engine.face.align import align_face
    from stylestudio.engine.face.landmarks import detect_faces
    from stylestudio.engine.inversion.identity import identity_meter, identity_similarity

    photo = skdata.astronaut()
    aligned, _ = align_face(photo, detect_faces(photo)[0].landmarks, 1024)
    with torch.no_grad():
        other = to_uint8(default_generator.synthesis(default_generator.mapping(seed_to_z(1, 512), 0.7)))
    same = identity_similarity(aligned, aligned)
    shifted = identity_similarity(aligned, np.roll(aligned, 6, axis=1))  # the same face, moved a little
    different = identity_similarity(aligned, other)
    assert same == pytest.approx(1.0, abs=1e-5)
    assert shifted > identity_meter().threshold
    assert different < shifted - 0.2


def test_cli_prints_the_identity_line(monkeypatch, capsys, tmp_path, tiny_model) -> None:
    """The tiny model's 32-px faces are below the measure's size, so a stand-in meter is used: the
    point here is that the measure reaches the output, not the network."""
    from stylestudio.engine.inversion import identity

    class Meter:
        threshold = 0.5

        def similarity(self, photo, rec, landmarks=None):
            assert photo.shape == rec.shape and landmarks.shape == (68, 2)
            return 0.734

    monkeypatch.setattr(identity, "MIN_IDENTITY_SIDE", 16)
    monkeypatch.setattr(identity, "identity_meter", lambda: Meter())
    photo = tmp_path / "p.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    capsys.readouterr()
    rc = main(["invert", str(photo), "-o", str(tmp_path / "p.stylestudio"), "--model", "tiny", "--steps", "3",
               "--time-budget", "30"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "identity 0.73 (same person ≥ 0.50)" in out
    assert " s left" in err

    from stylestudio.engine.project import load_project

    assert load_project(tmp_path / "p.stylestudio").source.inversion["identity"] == pytest.approx(0.734)
