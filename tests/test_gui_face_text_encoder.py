"""The Text paths panel with nothing imported: the built-in face-text encoder is offered and trains."""
from __future__ import annotations

import pytest

from test_gui_support import TINY, close_window, make_window

pytestmark = pytest.mark.gui


@pytest.mark.slow
def test_builtin_encoder_is_offered_and_trains_a_path(qtbot):
    from stylestudio.engine.text.library import TextPathLibrary, library_file

    w = make_window(qtbot)
    try:
        panel = w.panel("textpaths")
        w.docks["textpaths"].show()
        w.docks["textpaths"].raise_()
        qtbot.waitUntil(lambda: panel.encoder.findData("minilm") >= 0, timeout=10000)
        panel.encoder.setCurrentIndex(panel.encoder.findData("minilm"))
        assert "built-in" in panel.encoder.currentText()
        qtbot.keyClicks(panel.pairs, "a smiling face | a face with a neutral expression")
        panel.steps.setValue(2)
        panel.name.setText("guiminilm")
        job = panel.start()
        assert job is not None, panel.status.text()
        rec = w.engine.records[job]
        qtbot.waitUntil(lambda: rec.state in ("finished", "failed", "cancelled"), timeout=180000)
        assert rec.state == "finished", rec.result
        qtbot.waitUntil(lambda: panel.library.currentText() == "guiminilm", timeout=10000)
        assert TextPathLibrary.load(library_file(TINY, "guiminilm")).encoder == "minilm"
    finally:
        close_window(w)
        library_file(TINY, "guiminilm").unlink(missing_ok=True)
