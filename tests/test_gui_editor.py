"""The editor driven as a user would: real widgets, real worker thread, pixels checked."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest

from stylestudio.engine.document import SeedSource
from stylestudio.engine.edits.direction import DirectionEdit
from stylestudio.engine.imageio import read_recipe
from stylestudio.engine.project import load_project

from test_gui_support import (TINY, activate, assert_same_picture, canvas_array, close_window, make_window,
                              reference_frame, slider_drag, wait_final, wait_sliders, window)  # noqa: F401  (window: a fixture)

pytestmark = pytest.mark.gui


def test_starts_with_a_face_and_a_clean_title(qtbot, window):
    assert window.windowTitle() == "StyleStudio — Untitled[*]"
    assert not window.isWindowModified()
    doc = window.holder.doc
    assert doc.model == TINY and doc.source == SeedSource(seed=3, psi=0.7)
    frame = canvas_array(window)
    assert frame.shape == (32, 32, 3) and frame.std() > 5
    assert_same_picture(frame, reference_frame(doc))


def test_pick_a_seed_in_the_browser(qtbot, window):
    browser = window.panel("faces")
    qtbot.waitUntil(browser.thumbnails_complete, timeout=10000)
    index = browser.model.index(5, 0)
    rect = browser.grid.visualRect(index)
    QTest.mouseClick(browser.grid.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     rect.center())
    assert window.holder.doc.source.seed == 5
    assert window.undo_stack.count() == 1 and window.isWindowModified()
    wait_final(qtbot, window)
    assert_same_picture(canvas_array(window), reference_frame(window.holder.doc))
    # seed box and Random
    browser.seed_box.setFocus()
    browser.seed_box.lineEdit().selectAll()
    QTest.keyClicks(browser.seed_box, "42")
    QTest.keyClick(browser.seed_box, Qt.Key.Key_Return)
    assert window.holder.doc.source.seed == 42
    QTest.mouseClick(browser.random_button, Qt.MouseButton.LeftButton)
    assert window.holder.doc.source.seed not in (5, 42)
    assert window.undo_stack.count() == 3


def test_truncation_drag_is_one_step(qtbot, window):
    browser = window.panel("faces")
    slider_drag(qtbot, browser.psi_slider, [0.6, 0.5, 0.4])
    psi = window.holder.doc.source.psi
    assert psi == pytest.approx(browser.psi_slider.value() / 100) and psi < 0.7
    assert window.undo_stack.count() == 1
    wait_final(qtbot, window)
    assert_same_picture(canvas_array(window), reference_frame(window.holder.doc))


def test_slider_drag_undo_redo(qtbot, window):
    before = canvas_array(window)
    group = wait_sliders(qtbot, window)
    row = group.row("Factor 1")
    requests0 = window.engine.worker.stats["render_requests"]
    slider_drag(qtbot, row.slider, [0.55, 0.6, 0.7, 0.8, 0.9])
    value = row.slider.value() / 100
    assert value > 1.0
    edit = window.holder.doc.edit("sefa:factor1")
    assert isinstance(edit, DirectionEdit) and edit.amount == pytest.approx(value)
    assert window.undo_stack.count() == 1, "a whole drag must be one undo step"
    assert window.undo_stack.text(0).startswith("Factor 1")
    assert window.engine.worker.stats["render_requests"] - requests0 >= 5
    wait_final(qtbot, window)
    edited = canvas_array(window)
    assert_same_picture(edited, reference_frame(window.holder.doc))
    assert np.abs(edited.astype(int) - before.astype(int)).max() > 10

    activate(qtbot, window)
    activate(qtbot, window)
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.holder.doc.edits == () and row.slider.value() == 0 and row.spin.value() == 0
    wait_final(qtbot, window)
    assert_same_picture(canvas_array(window), before, tol=0)
    activate(qtbot, window)
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.holder.doc.edit("sefa:factor1").amount == pytest.approx(value)
    assert row.slider.value() == round(value * 100)
    wait_final(qtbot, window)
    assert_same_picture(canvas_array(window), edited, tol=0)

    # a second drag is a second step; a drag back to the start leaves no step at all
    slider_drag(qtbot, row.slider, [0.3])
    assert window.undo_stack.count() == 2
    start = row.slider.value()
    f0 = (start - row.slider.minimum()) / (row.slider.maximum() - row.slider.minimum())
    slider_drag(qtbot, row.slider, [0.9, f0])
    assert row.slider.value() == start
    assert window.undo_stack.count() == 2


def test_keyboard_steps_and_reset(qtbot, window):
    group = wait_sliders(qtbot, window)
    row = group.row("Factor 2")
    row.slider.setFocus()
    for _ in range(4):
        QTest.keyClick(row.slider, Qt.Key.Key_Right)
    assert window.holder.doc.edit("sefa:factor2").amount == pytest.approx(0.2)
    assert window.undo_stack.count() == 1, "quick key steps merge"
    QTest.mouseClick(row.reset_button, Qt.MouseButton.LeftButton)
    assert window.holder.doc.edit("sefa:factor2") is None and row.slider.value() == 0
    assert window.undo_stack.count() == 2
    row.spin.setValue(-1.25)
    assert window.holder.doc.edit("sefa:factor2").amount == pytest.approx(-1.25)
    assert row.slider.value() == -125


def test_save_close_reopen_gives_the_same_picture(qtbot, tmp_path):
    w = make_window(qtbot)
    group = wait_sliders(qtbot, w)
    w.panel("faces").pick(11)
    group.row("Factor 3").spin.setValue(1.5)
    group.row("Factor 1").spin.setValue(-0.75)
    wait_final(qtbot, w)
    shown = canvas_array(w)
    path = tmp_path / "portrait.stylestudio"
    assert w.save_to(path)
    assert not w.isWindowModified() and w.windowTitle() == "StyleStudio — portrait[*]"
    assert str(path.resolve()) == w.settings.recent_files[0]
    doc = w.holder.doc
    close_window(w)

    w2 = make_window(qtbot)
    assert w2.open_path(path)
    wait_final(qtbot, w2)
    assert w2.windowTitle() == "StyleStudio — portrait[*]" and not w2.isWindowModified()
    assert w2.undo_stack.count() == 0
    reopened = w2.holder.doc
    assert reopened.source == doc.source and reopened.edits == doc.edits
    assert_same_picture(canvas_array(w2), shown, tol=0)
    # the sliders show the reopened values
    group2 = wait_sliders(qtbot, w2)
    assert group2.row("Factor 3").spin.value() == pytest.approx(1.5)
    close_window(w2)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_export_full_resolution_with_recipe(qtbot, window, tmp_path, suffix):
    from PIL import Image

    group = wait_sliders(qtbot, window)
    group.row("Factor 1").spin.setValue(2.0)
    wait_final(qtbot, window)
    out = tmp_path / f"face{suffix}"
    done = []
    window.export_to(out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    with Image.open(out) as im:
        assert im.size == (32, 32)
        pixels = np.asarray(im.convert("RGB"))
    recipe = read_recipe(out)  # what a save writes: the sliders stamped with the entries they were drawn with
    assert recipe == window.renders.stamped(window.holder.doc).to_json()[0]
    assert recipe["edits"][0]["version"]
    if suffix != ".jpg":
        assert_same_picture(pixels, canvas_array(window), tol=0)


def test_copy_to_clipboard(qtbot, window):
    got = []
    window.copy_image(on_done=got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    from stylestudio.app.qimage_arrays import array_from_qimage

    clip = QGuiApplication.clipboard().image()
    assert not clip.isNull()
    assert_same_picture(array_from_qimage(clip), canvas_array(window), tol=0)


def test_worker_exception_becomes_a_message(qtbot, window):
    # 1) bad input inside the engine: a direction the library does not have
    from stylestudio.app.undo_commands import SliderCommand

    bad = window.holder.doc.with_edit(DirectionEdit(library="sefa", name="no-such-factor", amount=1.0, id="x"))
    window.undo_stack.push(SliderCommand(window.holder, bad, "x", "Broken", 1.0, 1))
    qtbot.waitUntil(lambda: window.error_box is not None and window.error_box.isVisible(), timeout=10000)
    assert "no-such-factor" in window.error_box.informativeText()
    assert "no-such-factor" in window.statusBar().currentMessage()
    window.error_box.close()
    # the window still works: undo renders again
    window.undo_stack.undo()
    wait_final(qtbot, window)
    assert_same_picture(canvas_array(window), reference_frame(window.holder.doc))

    # 2) a bug (not bad input) raised in the worker thread
    engine = window.engine.worker.engine

    def broken(*args, **kwargs):
        raise RuntimeError("synthetic failure in the worker")

    original = engine.render
    engine.render = broken
    try:
        window.panel("faces").pick(7)
        qtbot.waitUntil(lambda: any("synthetic failure" in e for e in window.errors), timeout=10000)
        assert window.isVisible()
    finally:
        engine.render = original
    window.panel("faces").pick(8)
    wait_final(qtbot, window)
    assert window.holder.doc.source.seed == 8


def test_zoom_fit_one_to_one_and_before_after(qtbot, window):
    canvas = window.canvas
    window.resize(1000, 560)
    qtbot.waitUntil(lambda: canvas.width() < 512, timeout=3000)
    window.activateWindow()
    canvas.setFocus()
    assert canvas.is_fit()
    activate(qtbot, window)
    QTest.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale() == 1.0 and not canvas.is_fit()
    activate(qtbot, window)
    QTest.keyClick(window, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale() > 1.0
    activate(qtbot, window)
    QTest.keyClick(window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.is_fit() and canvas.scale() == pytest.approx(canvas.fit_scale())
    # pan when the picture is larger than the view
    canvas.set_zoom(16.0)  # 512 px on screen
    assert canvas.width() < 512 or canvas.height() < 512 or pytest.skip("canvas larger than the zoomed picture")
    r0 = canvas.image_rect()
    c = canvas.rect().center()
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, pos=c)
    QTest.mouseMove(canvas, c + type(c)(-40, -30))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=c + type(c)(-40, -30))
    r1 = canvas.image_rect()
    moved = (r1.left() - r0.left(), r1.top() - r0.top())
    assert moved != (0, 0) and all(m <= 0 for m in moved), moved
    canvas.fit()

    # edit, then hold \ to see the original
    original = canvas_array(window)
    group = wait_sliders(qtbot, window)
    group.row("Factor 1").spin.setValue(2.5)
    wait_final(qtbot, window)
    qtbot.waitUntil(canvas.has_before, timeout=10000)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    canvas.setFocus()

    def shown() -> np.ndarray:
        from stylestudio.app.qimage_arrays import array_from_qimage

        img = canvas.grab().toImage()
        r = canvas.image_rect().toRect()
        return array_from_qimage(img.copy(r.adjusted(2, 2, -2, -2)))

    edited_view = shown()
    QTest.keyPress(canvas, Qt.Key.Key_Backslash)
    assert canvas.hold_original
    original_view = shown()
    QTest.keyRelease(canvas, Qt.Key.Key_Backslash)
    assert not canvas.hold_original
    assert np.abs(original_view.astype(int) - edited_view.astype(int)).mean() > 3
    # the "before" image is the unedited face, pixel for pixel
    from stylestudio.app.qimage_arrays import array_from_qimage

    assert_same_picture(array_from_qimage(canvas._before.toImage()), original, tol=0)
    # split view: Y
    activate(qtbot, window)
    QTest.keyClick(window, Qt.Key.Key_Y)
    assert canvas.split and window.actions_by_name["split"].isChecked()
    activate(qtbot, window)
    QTest.keyClick(window, Qt.Key.Key_Y)
    assert not canvas.split


def test_unsaved_changes_prompt_on_close(qtbot, window):
    window.panel("faces").pick(9)
    answers = []
    window.ask_unsaved = lambda: answers.append(1) or "cancel"
    assert not window.close()
    assert window.isVisible() and answers == [1]
    window.ask_unsaved = lambda: "discard"


def test_the_quit_question_answers_from_the_keyboard(qtbot, window):
    """Save, Don't Save and Cancel have mnemonics: Alt+S, Alt+D, Alt+C."""
    from PySide6.QtGui import QKeySequence

    box, answers = window.unsaved_box()
    qtbot.addWidget(box)
    buttons = {b.text(): b for b in box.buttons()}
    assert set(buttons) == {"&Save", "&Don't Save", "&Cancel"}
    for text, key in (("&Save", "Alt+S"), ("&Don't Save", "Alt+D"), ("&Cancel", "Alt+C")):
        assert buttons[text].shortcut() == QKeySequence(key), text
    assert answers == {buttons["&Save"]: "save", buttons["&Don't Save"]: "discard"}
    assert box.escapeButton() is buttons["&Cancel"] and box.defaultButton() is buttons["&Save"]
    from PySide6.QtWidgets import QApplication

    activate(qtbot, window)  # windows of earlier tests may still hold activation
    box.show()
    qtbot.waitExposed(box)

    def active() -> bool:  # mnemonics reach the active window only; ask until it is
        if QApplication.activeWindow() is not box:
            box.raise_()
            box.activateWindow()
        return QApplication.activeWindow() is box

    qtbot.waitUntil(active, timeout=5000)
    QTest.keyClick(box, Qt.Key.Key_D, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: box.clickedButton() is not None, timeout=5000)  # a mnemonic animates its click
    assert answers.get(box.clickedButton()) == "discard"


def test_history_signs_offsets_but_not_absolute_values(qtbot, window):
    """A slider amount is an offset ("Factor 1 +1.50"); a strength or ψ is a value ("Strength 1.66")."""
    from stylestudio.app.undo_commands import SetTruncationCommand, SliderCommand
    from stylestudio.engine.edits.transfer import TransferEdit

    group = wait_sliders(qtbot, window)
    group.row("Factor 1").spin.setValue(1.5)
    assert window.undo_stack.text(window.undo_stack.index() - 1) == "Factor 1 +1.50"
    group.row("Factor 1").spin.setValue(-0.25)
    assert window.undo_stack.text(window.undo_stack.index() - 1) == "Factor 1 -0.25"
    holder = window.holder
    transfer = TransferEdit(reference=SeedSource(seed=3), region=("mouth",), strength=1.66, id="transfer")
    after = holder.doc.with_edit(transfer)
    assert SliderCommand(holder, after, "transfer", "Strength", 1.66, 1).text() == "Strength 1.66"
    assert SliderCommand(holder, after, "transfer", "Strength", 1.66, 1, signed=True).text() == "Strength +1.66"
    assert SetTruncationCommand(holder, 0.7).text() == "Truncation ψ 0.70"
    # the recipe's own descriptions follow the same rule
    assert transfer.describe() == "mouth from seed 3 (ψ 0.7) ×1.66"
    assert DirectionEdit(library="attributes", name="age", amount=1.5).describe() == "age +1.50"


def test_open_a_damaged_project_shows_an_error(qtbot, window, tmp_path):
    bad = tmp_path / "broken.stylestudio"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    assert not window.open_path(bad)
    assert window.error_box is not None and "damaged" in window.error_box.informativeText()
    assert window.holder.doc.model == TINY  # the open document is untouched


def test_project_thumbnail_and_recipe(qtbot, window, tmp_path):
    from stylestudio.engine.project import project_thumbnail

    path = tmp_path / "t.stylestudio"
    window.save_to(path)
    thumb = project_thumbnail(path)
    assert thumb is not None and thumb.size == (32, 32)
    assert load_project(path).source == window.holder.doc.source
