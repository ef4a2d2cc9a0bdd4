"""File ▸ Open Photo in the real window: detect, choose, invert (few steps), edit, export the whole photo.

Runs on the tiny test model (a 32-px generator: the point is the pipeline, not the likeness), so
it needs the face detector and the LPIPS weights but not the default model.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from stylestudio.app.qimage_arrays import array_from_qimage

from stylestudio.engine.inversion import InversionSettings

from test_gui_support import activate, canvas_array, close_window, make_window, wait_final, wait_sliders

pytestmark = pytest.mark.gui
skdata = pytest.importorskip("skimage.data")

FEW_STEPS = InversionSettings(estimate_candidates=4, estimate_steps=4, steps=6, full_steps=2, preview_every=1,
                              lpips_size=64)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture
def photo_window(qtbot):
    w = make_window(qtbot)
    w.photo.inversion_settings = FEW_STEPS
    yield w
    close_window(w)


def shown_picture(window) -> np.ndarray:
    """What the canvas draws over the picture's rectangle, scaled back to the model's size."""
    canvas = window.canvas
    rect = canvas.image_rect().toRect()
    grab = canvas.grab(rect).toImage()
    arr = array_from_qimage(grab)
    return np.asarray(Image.fromarray(arr).resize((canvas.logical, canvas.logical), Image.BOX))


def far_from_face(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    d = max(x1 - x0, y1 - y0)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return (xx < x0 - d) | (xx > x1 + d) | (yy < y0 - d) | (yy > y1 + d)


def test_open_photo_invert_edit_and_export_the_whole_photo(qtbot, photo_window, astronaut, tmp_path) -> None:
    w = photo_window
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    assert w.actions_by_name["open_photo"].shortcut().toString() == "Ctrl+Shift+O"
    opened: list = []
    w.photo.opened.connect(opened.append)
    texts: list[str] = []
    w.engine.job_progress.connect(lambda _job, message, _f: texts.append(message))
    shown: set[str] = set()  #: the canvas label while previews come (polled in the GUI thread)
    w.photo.open_photo(path)
    qtbot.waitUntil(lambda: shown.add(w.render_label.text()) or bool(opened), timeout=120000)
    assert w.photo.previews >= 2, "intermediate reconstructions were shown while it refined"
    doc = w.holder.doc
    assert doc.source.kind == "photo" and doc.source.inverted and doc.title == "astronaut"
    wait_final(qtbot, w)

    # one progress line, in plain words: no stage step counts, no LPIPS figure (that is in a tooltip)
    inverting = [t for t in texts if t.startswith("Inverting astronaut.png")]
    assert inverting and all("LPIPS" not in t and "/" not in t for t in texts), texts
    assert all(any(f"likeness: {word}" in t for word in ("good", "fair", "poor")) for t in inverting)
    assert all(re.search(r"· \d+ % ·", t) for t in inverting)
    previews = [t for t in shown if t.startswith("Inverting")]
    assert previews and all(re.search(r"\d", t) is None for t in previews), "no second, different counter"
    assert "likeness" in w.statusBar().currentMessage() and "LPIPS" not in w.statusBar().currentMessage()
    assert "LPIPS" in w.render_label.toolTip()

    # "show original" (hold \\) shows the photo's aligned crop, not the model's reconstruction of it
    inversion = canvas_array(w)
    crop = doc.source.aligned(32)
    activate(qtbot, w)
    QTest.keyPress(w, Qt.Key.Key_Backslash)
    assert w.canvas.hold_original
    held = shown_picture(w)
    QTest.keyRelease(w, Qt.Key.Key_Backslash)
    to_photo = np.abs(held.astype(int) - crop).mean()
    to_inversion = np.abs(held.astype(int) - inversion).mean()
    print(f"held picture vs photo crop {to_photo:.1f}, vs inversion {to_inversion:.1f}")
    assert to_photo < 6 and to_photo < to_inversion / 2
    assert np.array_equal(array_from_qimage(w.canvas.original_image()), crop)

    group = wait_sliders(qtbot, w)
    group.row("Factor 1").slider.setValue(200)
    wait_final(qtbot, w)
    assert w.holder.doc.edit("sefa:factor1").amount == 2.0
    assert w.actions_by_name["export_whole_photo"].isChecked()

    out = tmp_path / "edited.png"
    done: list = []
    w.export_to(out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=60000)
    with Image.open(out) as im:
        exported = np.asarray(im.convert("RGB"))
    assert exported.shape == astronaut.shape
    far = far_from_face(w.holder.doc.source.landmarks, astronaut.shape[:2])
    assert far.mean() > 0.2 and np.array_equal(exported[far], astronaut[far]), "pixels far from the face untouched"
    assert np.abs(exported.astype(int) - astronaut).max() > 0, "the face was pasted back"

    # File ▸ Preview Export shows that same picture before a file is chosen, and says when it is behind
    w.actions_by_name["preview_export"].trigger()
    preview = w.export_preview
    qtbot.waitUntil(lambda: preview.isVisible() and preview.job == 0 and bool(preview.text), timeout=60000)
    assert "whole photo with the edited face pasted back" in preview.caption.text()
    assert f"{astronaut.shape[1]} × {astronaut.shape[0]} px" in preview.caption.text()
    shown = array_from_qimage(preview.picture.pixmap.toImage())
    assert np.array_equal(shown, exported), "the preview is the exported picture"
    group.row("Factor 1").slider.setValue(-200)
    qtbot.waitUntil(lambda: "changed since" in preview.caption.text(), timeout=5000)
    qtbot.mouseClick(preview.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: preview.job == 0 and "changed since" not in preview.caption.text(), timeout=60000)
    assert not np.array_equal(array_from_qimage(preview.picture.pixmap.toImage()), exported)
    w.undo_stack.undo()
    assert "changed since" in preview.caption.text()
    qtbot.mouseClick(preview.export_button, Qt.MouseButton.LeftButton)  # on to the Export dialog
    qtbot.waitUntil(lambda: w.export_box is not None, timeout=5000)
    w.export_box.reject()
    preview.close()

    # the export option: the aligned crop alone
    w.actions_by_name["export_whole_photo"].setChecked(False)
    assert not w.holder.doc.export.paste_back
    crop = tmp_path / "crop.png"
    done.clear()
    w.export_to(crop, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=60000)
    with Image.open(crop) as im:
        assert im.size == (32, 32)
    w.undo_stack.undo()
    assert w.holder.doc.export.paste_back and w.actions_by_name["export_whole_photo"].isChecked()
    assert not w.errors, w.errors


def test_several_faces_ask_which_and_no_face_changes_nothing(qtbot, photo_window, astronaut, tmp_path) -> None:
    w = photo_window
    before = w.holder.doc
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(blank)
    w.photo.open_photo(blank)
    qtbot.waitUntil(lambda: bool(w.errors), timeout=60000)
    assert "no face" in w.errors[-1].lower() and w.holder.doc is before
    w.error_box.close()

    two = tmp_path / "two.png"
    Image.fromarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)).save(two)
    asked: list = []

    def choose(thumbs, descriptions):
        asked.append((len(thumbs), thumbs[0].shape, descriptions))
        return None  # the user cancels the chooser

    w.photo.choose_face = choose
    w.photo.open_photo(two)
    qtbot.waitUntil(lambda: bool(asked), timeout=60000)
    assert asked[0][0] == 2 and asked[0][1] == (128, 128, 3)
    qtbot.wait(100)
    assert w.holder.doc is before and w.photo.job == 0

    # pick the second face, then cancel the inversion: nothing is lost
    w.photo.inversion_settings = dataclasses.replace(FEW_STEPS, steps=400)
    w.photo.choose_face = lambda thumbs, descriptions: 1
    w.photo.open_photo(two)
    qtbot.waitUntil(lambda: w.photo.previews >= 1, timeout=60000)
    w.cancel_button.click()
    qtbot.waitUntil(lambda: w.photo.job == 0, timeout=60000)
    assert w.holder.doc is before
    wait_final(qtbot, w)
