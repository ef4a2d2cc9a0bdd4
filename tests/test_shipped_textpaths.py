"""The text path library shipped for the default model (resources/textpaths/<model>/textpaths.sstp,
scripts/train_starter_textpaths.py): it is package data, its smile and gender paths move the
project's predictors the right way (age on its own, shorter stretch of W+ rows), the CLI lists it as shipped and edits with it, a user's library
of the same name hides it without touching it, and the editor's Text paths panel offers it."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from stylestudio.cli import main

SHIPPED = ("smile", "gender", "age")
FACES = (515151, 5, 0.7)  #: the quality bench's held-out faces (seed, count, ψ), never used to train the paths


def _shipped_file() -> Path:
    from stylestudio import paths
    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.text.library import shipped_library

    path = shipped_library(DEFAULT_MODEL, "textpaths")
    assert path is not None, "resources/textpaths/<default model>/textpaths.sstp is missing from the package data"
    assert path.is_relative_to(paths.resources_dir())
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shipped_library_is_package_data_and_small(tmp_path: Path):
    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.text.library import TextPathLibrary

    path = _shipped_file()
    assert path.stat().st_size < 1 << 20
    lib = TextPathLibrary.load(path)
    assert lib.model == DEFAULT_MODEL and lib.encoder == "minilm" and tuple(lib.names()) == SHIPPED
    # calibrated: each path has its own slider unit (slider ±1 ≈ the attribute slider's ±1)
    assert all(p.unit is not None and p.unit > 0 and p.unit_negative is not None and p.unit_negative > 0
               for p in lib.paths)
    # age moves only the coarse and middle rows (0–11): kept off the 128-px rows it bleached the skin
    assert [p.rows for p in lib.paths] == [None, None, 12] and lib.rows == 15
    torch.manual_seed(0)
    ws = torch.randn(2, 23, lib.w_dim)
    moved = lib.move("age", ws, 1.0, torch.zeros(lib.w_dim))
    assert torch.equal(moved[:, 12:], ws[:, 12:]) and (moved[:, :12] - ws[:, :12]).abs().amax() > 0
    back = TextPathLibrary.load(lib.save(tmp_path / "again.sstp"))
    assert [(p.unit, p.unit_negative) for p in back.paths] == [(p.unit, p.unit_negative) for p in lib.paths]


def test_a_paths_own_unit_scales_its_slider_and_bad_units_are_refused(tmp_path: Path):
    from zip_json import edit_zip_json

    from stylestudio.engine.text.library import TextPathLibrary
    from stylestudio.errors import InputError

    lib = TextPathLibrary.load(_shipped_file())
    torch.manual_seed(0)
    ws, w_avg = torch.randn(2, lib.rows + 2, lib.w_dim), torch.zeros(lib.w_dim)
    dist = lambda lib: float((lib.move("smile", ws, 1.0, w_avg) - ws).norm(dim=-1).sum(-1).mean())  # noqa: E731
    lib.set_path_units({"smile": 0.2 * lib.unit})
    near = dist(lib)
    lib.set_path_units({"smile": 0.4 * lib.unit})
    assert dist(lib) > 1.6 * near
    # the − side has its own unit (a curved path can be weaker one way): only −1 follows it
    back = lambda lib: float((lib.move("smile", ws, -1.0, w_avg) - ws).norm(dim=-1).sum(-1).mean())  # noqa: E731
    lib.set_path_units({}, negative={"smile": 0.2 * lib.unit})
    near_back = back(lib)
    lib.set_path_units({}, negative={"smile": 0.4 * lib.unit})
    assert back(lib) > 1.6 * near_back and abs(dist(lib) - near * 2) < 0.4 * near
    with pytest.raises(InputError, match="finite and positive"):
        lib.set_path_units({}, negative={"gender": -1.0})
    with pytest.raises(InputError, match="finite and positive"):
        lib.set_path_units({"gender": float("nan")})
    # a hand-edited file with a negative unit is one clear error
    bad = edit_zip_json(_shipped_file(), tmp_path / "bad.sstp", lambda meta: meta["paths"][0].update(unit=-1.0))
    with pytest.raises(InputError, match="bad.sstp: damaged text path library"):
        TextPathLibrary.load(bad)


def test_shipped_paths_move_the_predictors_the_right_way(default_generator):
    """Each path at ±1 moves its attribute (the project's predictors) the slider's way, by a good part of
    what the shipped attribute slider's ±1 does to the same faces (the shipped unit is calibrated to it)."""
    from stylestudio.engine.attributes import AttributePredictor
    from stylestudio.engine.directions.library import DirectionLibrary
    from stylestudio.engine.directions.labels import preview_stop, render_small, sample_w
    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.resources import Resources
    from stylestudio.engine.text.library import TextPathLibrary

    gen = default_generator
    lib = TextPathLibrary.load(_shipped_file())
    sliders = DirectionLibrary.load(Resources(None, DEFAULT_MODEL).find_file("directions", "attributes.ssdir"))
    seed, n, psi = FACES
    ws = gen.broadcast_w(torch.from_numpy(sample_w(gen, n, seed, psi)))
    moves = [(kind, name, a) for name in SHIPPED for kind in ("path", "slider") for a in (-1.0, 1.0)]
    stop, pred = preview_stop(gen, 256), AttributePredictor()
    with torch.no_grad():
        moved = [lib.move(name, ws, a, gen.w_avg) if kind == "path" else
                 ws + sliders.delta(name, a, gen.num_ws)[None].to(ws.dtype) for kind, name, a in moves]
        images = torch.cat([render_small(gen, w, stop) for w in [ws, *moved]])
    m = pred.measure(images)
    for name in SHIPPED:
        values = np.asarray(m[name], float).reshape(len(moves) + 1, n)
        change = {(kind, a): values[1 + i] - values[0] for i, (kind, nm, a) in enumerate(moves) if nm == name}
        for a in (-1.0, 1.0):
            path, slider = a * change["path", a], a * change["slider", a]
            assert slider.mean() > 0.5, (name, a, slider)  # the premise: the slider moves these faces
            # no face the wrong way beyond noise (0.5 logit; for age a sixth of the slider's change in years),
            # and most of the slider's change
            noise = max(0.5, slider.mean() / 6)
            assert (path > -noise).all() and path.mean() > 0.4 * slider.mean(), (name, a, path, slider)


def test_cli_lists_the_shipped_library_and_edits_with_it(default_generator, tmp_path: Path, capsys):
    from PIL import Image

    assert main(["textpaths", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("textpaths "))
    assert "smile, gender, age" in line and "[shipped, read-only]" in line
    assert main(["textpaths", "show", "textpaths"]) == 0
    shown = capsys.readouterr().out
    assert "its paths come from 2 trainings" in shown and "age: 120 steps, seed 0, W+ rows 0–11" in shown
    assert next(x for x in shown.splitlines() if x.strip().startswith("age ")).endswith("(W+ rows 0–11 only)")
    out, plain = tmp_path / "smile.png", tmp_path / "plain.png"
    assert main(["edit", "--source", "seed:7", "--library", "textpaths", "--set", "smile=+1", "--size", "256",
                 "-o", str(out)]) == 0
    assert main(["generate", "--seed", "7", "--size", "256", "-o", str(plain)]) == 0
    a, b = (np.asarray(Image.open(p).convert("RGB"), float) for p in (out, plain))
    assert a.shape == b.shape and np.abs(a - b).mean() > 0.5


def test_a_users_library_of_the_same_name_hides_the_shipped_one_without_touching_it(capsys):
    from stylestudio import paths
    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.text.library import TextPathLibrary, find_library, library_file

    shipped = _shipped_file()
    before = _sha(shipped)
    mine = library_file(DEFAULT_MODEL, "textpaths")
    assert mine.is_relative_to(paths.data_home()) and mine != shipped
    # training under the shipped name says so before the job (here it then stops at a bad encoder)
    assert main(["textpaths", "train", "--pair", "a|b", "--steps", "1", "--name", "textpaths",
                 "--encoder", "nosuch"]) == 2
    assert "shipped with StyleStudio" in capsys.readouterr().out
    try:
        TextPathLibrary.load(shipped).subset(["smile"]).save(mine)
        assert find_library(DEFAULT_MODEL, "textpaths") == mine
        assert main(["textpaths", "list"]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("textpaths "))
        assert "1 path (smile)" in line and "hides the shipped library" in line
        assert _sha(shipped) == before
    finally:
        mine.unlink(missing_ok=True)
    assert find_library(DEFAULT_MODEL, "textpaths") == shipped


@pytest.mark.gui
def test_text_paths_panel_offers_the_shipped_library(qtbot, default_generator):
    from stylestudio.engine.edits.path import PathEdit
    from stylestudio.engine.model_store import DEFAULT_MODEL

    from test_gui_support import close_window, make_window

    w = make_window(qtbot, DEFAULT_MODEL)
    try:
        panel = w.panel("textpaths")
        w.docks["textpaths"].show()
        w.docks["textpaths"].raise_()
        qtbot.waitUntil(lambda: panel.library.findText("textpaths") >= 0, timeout=20000)
        panel.library.setCurrentIndex(panel.library.findText("textpaths"))
        qtbot.waitUntil(lambda: [r.binding.name for r in panel.group.rows] == list(SHIPPED), timeout=10000)
        slider = panel.group.row("smile").slider
        qtbot.waitUntil(slider.isVisible, timeout=5000)
        slider.setValue(slider.value() + 1)
        key = "textpath:textpaths:smile"
        qtbot.waitUntil(lambda: isinstance(w.holder.doc.edit(key), PathEdit), timeout=5000)
        assert w.holder.doc.edit(key).amount > 0
    finally:
        close_window(w)
