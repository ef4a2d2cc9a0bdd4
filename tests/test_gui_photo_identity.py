"""Issue 19 in the window: after Open Photo the feedback says whether it is still the person
(identity), and File ▸ Photo Time Budget… sets the inversion's budget.

The tiny test model's 32-px faces are below what the identity network can read, so its meter is
a stand-in here (the measure itself is tested in test_inversion_budget.py); the point is that
the measure travels from the inversion job to what the user sees.
"""
from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtWidgets import QInputDialog

from stylestudio.engine.inversion import InversionSettings

from test_gui_photo import photo_window  # noqa: F401  (the window with a few-step inversion)
from test_gui_support import wait_final

pytestmark = pytest.mark.gui
skdata = pytest.importorskip("skimage.data")


def test_open_photo_feedback_shows_identity(qtbot, photo_window, tmp_path, monkeypatch) -> None:
    from stylestudio.engine.inversion import identity

    class Meter:
        threshold = 0.6

        def similarity(self, photo, rec, landmarks=None):
            return 0.812

    monkeypatch.setattr(identity, "MIN_IDENTITY_SIDE", 16)
    monkeypatch.setattr(identity, "identity_meter", lambda: Meter())
    w = photo_window
    path = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(path)
    opened: list = []
    w.photo.opened.connect(opened.append)
    messages: list[str] = []
    w.statusBar().messageChanged.connect(messages.append)
    monkeypatch.setattr(w, "report_error", lambda title, text, *a, **k: messages.append(f"error {title}: {text}"))
    w.photo.open_photo(path)
    qtbot.waitUntil(lambda: bool(opened) or any("rror" in m for m in messages), timeout=300000)
    assert opened, messages
    wait_final(qtbot, w)
    assert w.holder.doc.source.inversion["identity"] == pytest.approx(0.812)
    assert any("identity 0.81 (same person ≥ 0.60)" in m for m in messages), messages
    assert "identity 0.81" in w.render_label.toolTip()


def test_photo_time_budget_menu_sets_and_keeps_the_budget(qtbot, photo_window, monkeypatch) -> None:
    w = photo_window
    w.photo.inversion_settings = InversionSettings()
    assert w.photo.inversion_settings.time_budget == 60.0
    monkeypatch.setattr(QInputDialog, "getInt", staticmethod(lambda *a, **k: (25, True)))
    w.actions_by_name["photo_time_budget"].trigger()
    assert w.photo.inversion_settings.time_budget == 25.0
    assert w.settings.extra["photo_time_budget_s"] == 25.0
    monkeypatch.setattr(QInputDialog, "getInt", staticmethod(lambda *a, **k: (0, True)))
    w.actions_by_name["photo_time_budget"].trigger()
    assert w.photo.inversion_settings.time_budget is None  # 0: no limit


def test_fine_tune_menu_sets_and_keeps_the_choice(qtbot, photo_window) -> None:
    """File ▸ Fine-Tune for Identity: faces far from the model (the default), every face, or never;
    the choice reaches the next inversion and is kept in the settings file."""
    from stylestudio.app.photo_open import saved_inversion_settings

    w = photo_window
    w.photo.inversion_settings = InversionSettings()
    actions = {key: w.actions_by_name[f"photo_fine_tune_{key}"] for key in ("auto", "on", "off")}
    assert all(a in w.photo.pti_menu.actions() for a in actions.values())
    actions["off"].trigger()
    assert actions["off"].isChecked() and not actions["auto"].isChecked()
    assert w.photo.inversion_settings.pti is False and w.photo.inversion_settings.pti_far_lpips is None
    assert w.settings.extra["photo_fine_tune"] == "off"
    actions["on"].trigger()
    assert w.photo.inversion_settings.pti is True and w.settings.extra["photo_fine_tune"] == "on"
    again = saved_inversion_settings(dict(w.settings.extra))  # what the next session starts with
    assert again.pti is True
    assert saved_inversion_settings({"photo_fine_tune": ["on"]}) == InversionSettings()  # a hand-edited file
    actions["auto"].trigger()
    assert w.photo.pti_choice() == "auto" and w.photo.inversion_settings.pti_far_lpips is not None
