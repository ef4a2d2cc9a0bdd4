"""The editor on the default 1024-px model (slow: run with --slow)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from stylestudio.engine.imageio import read_recipe
from stylestudio.engine.model_store import DEFAULT_MODEL

from test_gui_support import (assert_same_picture, canvas_array, close_window, reference_frame, slider_drag,
                              wait_final, wait_sliders)

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture
def default_window(qtbot, default_generator):
    from stylestudio.app.main_window import MainWindow
    from stylestudio.app.settings import Settings

    Settings(default_model=DEFAULT_MODEL, last_seed=1).save()
    t0 = time.perf_counter()
    w = MainWindow(Settings.load())
    w.ask_unsaved = lambda: "discard"
    qtbot.addWidget(w)
    w.show()
    first: list[float] = []
    w.canvas.frame_shown.connect(lambda seq, q, t: first.append(t - t0) if not first else None)
    w.first_frame_s = first  # type: ignore[attr-defined]
    yield w
    close_window(w)


def test_a_face_within_seconds_of_start(qtbot, default_window):
    w = default_window
    qtbot.waitUntil(lambda: bool(w.first_frame_s), timeout=30000)
    assert w.first_frame_s[0] < 8.0, f"first frame after {w.first_frame_s[0]:.1f} s"
    wait_final(qtbot, w, timeout=60000)
    frame = canvas_array(w)
    assert frame.shape == (1024, 1024, 3) and frame.std() > 20
    assert_same_picture(frame, reference_frame(w.holder.doc))
    assert w.ctx.model.resolution == 1024


def test_drag_a_factor_and_export_full_resolution(qtbot, default_window, tmp_path):
    w = default_window
    wait_final(qtbot, w, timeout=60000)
    group = wait_sliders(qtbot, w)
    previews: list[int] = []
    w.engine.rendered.connect(lambda r: previews.append(r.image.width()) if r.quality == "preview" else None)
    slider_drag(qtbot, group.row("Factor 4").slider, [0.55, 0.6, 0.65, 0.7],
                before_release=lambda: qtbot.waitUntil(lambda: bool(previews), timeout=60000))
    assert w.undo_stack.count() == 1
    wait_final(qtbot, w, timeout=60000)
    assert previews and max(previews) < 1024, "dragging shows quick coarse frames"
    assert_same_picture(canvas_array(w), reference_frame(w.holder.doc))
    out = tmp_path / "face.png"
    done: list = []
    w.export_to(out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=60000)
    with Image.open(out) as im:
        assert im.size == (1024, 1024)
        # the export renders in the job thread, with fewer torch threads than the render thread:
        # float sums in another order round a few pixels (about 1 in 25 000) one level differently
        assert_same_picture(np.asarray(im.convert("RGB")), canvas_array(w), tol=1)
    assert read_recipe(out)["edits"][0]["name"] == "factor4"
