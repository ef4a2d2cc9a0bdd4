"""The Attributes panel's readout under a moved slider: what the other attributes did, from the
effects the library measured (handed over by the DescribeSliders request), scaled by the slider
value and following the keep switches. Tiny model, a made-up library with known effects."""
from __future__ import annotations

import numpy as np
import pytest

from test_gui_support import TINY, close_window, ensure_test_model, make_window

pytestmark = pytest.mark.gui
#: name → (label, unit, one slider unit in attribute units)
SPECS = {"age": ("Age", "years", 6.0), "gender": ("Gender", "logit P(female)", 2.0),
         "smile": ("Smile", "logit P(happy)", 2.0), "yaw": ("Yaw", "degrees", 6.0)}
#: what the age slider does per unit (attribute units), with every other attribute kept and without
AGE_EFFECTS = {"others": {"age": 6.0, "gender": 0.1, "smile": 0.05, "yaw": 1.0},
               "none": {"age": 6.2, "gender": -1.0, "smile": 0.05, "yaw": 3.0}}


def write_library(model: str, w_dim: int) -> None:
    from stylestudio import paths
    from stylestudio.engine.directions.library import Direction, DirectionLibrary

    rng = np.random.default_rng(0)
    dirs = []
    for n, (label, unit, change) in SPECS.items():
        v = rng.standard_normal(w_dim).astype(np.float32)
        meta = {"attribute_unit": unit, "unit_change": change}
        if n == "age":
            meta["effects"] = AGE_EFFECTS
        dirs.append(Direction(n, label, v / np.linalg.norm(v), (), 0.5, meta))
    corr = np.eye(4)
    corr[0, 1] = corr[1, 0] = -0.4  # age and gender go together in the labelled faces
    d = paths.data_home() / "directions" / model
    d.mkdir(parents=True, exist_ok=True)
    DirectionLibrary(model, dirs, meta={"attributes": list(SPECS), "correlation": corr.tolist(),
                                        "effects_faces": 12}).save(d / "attributes.ssdir")


@pytest.fixture
def readout_window(qtbot):
    gen = ensure_test_model(TINY)
    write_library(TINY, gen.w_dim)
    w = make_window(qtbot)
    panel = w.panel("attributes")
    qtbot.waitUntil(lambda: len(panel.rows) == len(SPECS), timeout=10000)
    w.docks["attributes"].raise_()
    qtbot.waitUntil(panel.isVisible, timeout=5000)
    yield w, panel
    close_window(w)


def test_readout_says_what_the_others_did(qtbot, readout_window) -> None:
    w, panel = readout_window
    age = panel.row("age")
    assert not age.readout.isVisible() and age.readout.text() == "", "nothing moved, nothing to say"
    assert "12 sample faces" in age.readout.toolTip()

    age.slider.setValue(100)  # +1 with Keep others on: the correlated partner is named, and held
    assert age.readout.isVisible()
    assert age.readout.text() == "Gender unchanged · others unchanged"
    age.slider.setValue(200)  # +2: yaw's small leak (1° per unit) becomes visible
    assert age.readout.text() == "Gender unchanged · Yaw +2 ° · others unchanged"
    age.slider.setValue(-300)
    assert age.readout.text() == "Gender unchanged · Yaw -3 ° · others unchanged"

    panel.keep_box.setChecked(False)  # no correction: the uncorrected measurement
    assert age.readout.text() == "Gender ↑ female · Yaw -9 ° · others unchanged"
    panel.row("yaw").pin.setChecked(True)  # a pinned attribute is read from the kept measurement
    assert age.readout.text() == "Gender ↑ female · Yaw -3 ° · others unchanged"
    w.undo_stack.undo()
    w.undo_stack.undo()  # keep others back on
    assert age.readout.text() == "Gender unchanged · Yaw -3 ° · others unchanged"

    panel.reset_all.click()
    assert not age.readout.isVisible()
    assert all(not r.readout.isVisible() for r in panel.rows), "sliders without measured effects stay quiet"
    assert not w.errors, w.errors


@pytest.mark.slow
def test_readout_with_the_shipped_library(qtbot, default_generator) -> None:
    """The default model's own sliders: the smile slider's line shows keep others holding the mouth
    (smile ↔ mouth open, r = 0.61 over the labelled faces) and, with keep off, the mouth following."""
    from stylestudio.app.main_window import MainWindow
    from stylestudio.app.settings import Settings
    from stylestudio.engine.model_store import DEFAULT_MODEL

    Settings(default_model=DEFAULT_MODEL, last_seed=2).save()
    w = MainWindow(Settings.load(), autosave=False)
    w.ask_unsaved = lambda: "discard"
    qtbot.addWidget(w)
    w.show()
    try:
        panel = w.panel("attributes")
        qtbot.waitUntil(lambda: len(panel.rows) >= 10, timeout=120000)
        smile = panel.row("smile")
        assert smile.partners[:1] == ["mouth_open"] and smile.effects["none"]["mouth_open"] > 0
        smile.slider.setValue(200)
        assert smile.readout.text().startswith("Mouth open unchanged"), smile.readout.text()
        panel.keep_box.setChecked(False)
        assert smile.readout.text().startswith("Mouth open +"), smile.readout.text()
        assert not w.errors, w.errors
    finally:
        close_window(w)
