"""Shared helpers for the GUI tests (imported by tests/test_gui_*.py; holds no tests itself).

The GUI tests run on small random StyleGAN2 models saved into the session's private model
store, so each test takes well under a second of rendering. Reference pictures are rendered
in the test thread by an independent :class:`Renderer`, never taken from the window itself.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

TINY = "tiny32"  #: 32 px, renders in a few ms
SMALL = "small128"  #: 128 px, ~20 ms a frame: slow enough that a slider can outrun it

CONFIGS = {
    TINY: dict(z_dim=64, w_dim=64, img_resolution=32, num_mapping_layers=2, channel_base=1024, channel_max=64),
    SMALL: dict(z_dim=128, w_dim=128, img_resolution=128, num_mapping_layers=2, channel_base=4096,
                channel_max=128),
}


def ensure_test_model(name: str):
    """Create (once per session) a random StyleGAN2 in the private model store."""
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.stylegan2.network import StyleGAN2Generator

    store = ModelStore()
    if not store.has(name):
        torch.manual_seed(1234)
        gen = StyleGAN2Generator(**CONFIGS[name])
        with torch.no_grad():  # a non-zero w_avg so truncation visibly matters
            gen.w_avg.copy_(torch.randn(gen.w_dim) * 0.3)
        store.add(gen, name, {"format": "test", "note": "random weights for GUI tests"})
    return store.load(name)


def reference_frame(doc) -> np.ndarray:
    """The document rendered headless, independently of the window: HxWx3 uint8."""
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.render import Renderer, to_uint8

    gen = ModelStore().load(doc.model)
    return to_uint8(Renderer(gen, doc.model).render(doc))


def canvas_array(window) -> np.ndarray:
    from stylestudio.app.qimage_arrays import array_from_qimage

    img = window.canvas.current_image()
    assert img is not None, "nothing on the canvas"
    return array_from_qimage(img)


def assert_same_picture(a: np.ndarray, b: np.ndarray, tol: int = 1) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a.astype(int) - b.astype(int)).max()
    assert diff <= tol, f"pictures differ by up to {diff} levels"


def wait_final(qtbot, window, timeout: int = 10000) -> None:
    qtbot.waitUntil(lambda: window.frame_is_current(final=True), timeout=timeout)


def make_window(qtbot, model: str = TINY, autosave: bool = True, **settings):
    from stylestudio.app.main_window import MainWindow
    from stylestudio.app.settings import Settings

    ensure_test_model(model)
    s = Settings(default_model=model, last_seed=settings.pop("last_seed", 3), **settings)
    s.save()
    w = MainWindow(Settings.load(), autosave=autosave)
    w.ask_unsaved = lambda: "discard"
    w.ask_stop_jobs = lambda jobs: True  # a test closing its window stops what it started
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    activate(qtbot, w)
    wait_final(qtbot, w)
    return w


def activate(qtbot, window) -> None:
    """Make ``window`` the active one: window shortcuts (Ctrl+Z, B…) only reach the active window,
    and windows of earlier tests may still hold activation until Qt deletes them."""
    from PySide6.QtWidgets import QApplication

    window.raise_()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    window.canvas.setFocus()


def close_window(window) -> None:
    window.ask_unsaved = lambda: "discard"
    window.shutdown()
    window.close()


def slider_drag(qtbot, slider, fractions: list[float], before_release=None) -> None:
    """Press the slider's handle (at its current value) and drag it through ``fractions`` of its width.

    ``before_release()`` runs while the button is still held (e.g. to wait for a preview).
    """
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    span = slider.maximum() - slider.minimum()
    frac0 = (slider.value() - slider.minimum()) / span
    margin = 7  # Fusion's handle half-width
    width = slider.width() - 2 * margin

    def pos(f: float) -> QPoint:
        return QPoint(round(margin + f * width), slider.height() // 2)

    QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos(frac0))
    assert slider.isSliderDown(), "the press did not grab the handle"
    for f in fractions:
        QTest.mouseMove(slider, pos(f))
        qtbot.wait(5)
    if before_release is not None:
        before_release()
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos(fractions[-1]))


@pytest.fixture
def window(qtbot):
    w = make_window(qtbot)
    yield w
    close_window(w)


def wait_sliders(qtbot, window):
    panel = window.panel("sliders-sefa")
    qtbot.waitUntil(lambda: panel.group is not None and panel._model == window.holder.doc.model, timeout=10000)
    return panel.group
