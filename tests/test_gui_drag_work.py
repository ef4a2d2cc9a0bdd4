"""What a slider drag costs the GUI thread: the brush mask, the Regions panel and the other rows leave a
step alone when nothing of theirs changed (the canvas is repainted for new frames only)."""
from __future__ import annotations

import numpy as np
import pytest

from test_gui_support import close_window, make_window, slider_drag, wait_sliders

pytestmark = pytest.mark.gui


def test_a_document_change_that_keeps_the_mask_does_not_repaint(qtbot):
    from stylestudio.app.mask_painter import MASK_RES, MaskPainter

    p = MaskPainter()
    seen: list = []
    p.changed.connect(lambda: seen.append(1))
    p.set_mask(None)
    p.set_mask(None)  # the same (no) mask again: nothing to redraw
    assert len(seen) == 1
    m = np.zeros((MASK_RES, MASK_RES), np.uint8)
    m[10:20, 10:20] = 255
    p.set_mask(m)
    p.set_mask(m)
    assert len(seen) == 2 and p.mask[15, 15] > 0.9
    p.show_region_mask(np.zeros((MASK_RES, MASK_RES), np.float32))  # a region's own mask
    p.set_mask(m)  # the document's painted mask is shown again
    assert len(seen) == 4 and p.mask[15, 15] > 0.9


def test_dragging_a_slider_repaints_the_canvas_only_for_frames(qtbot):
    """Each slider step changes the document; with no painted mask, the canvas must be redrawn
    for new frames only, not for the regions panel's (unchanged, empty) mask on every step."""
    w = make_window(qtbot)
    try:
        group = wait_sliders(qtbot, w)
        regions = w.panel("regions")
        repaints: list = []
        regions.painter.changed.connect(lambda: repaints.append(1))
        behind: list = []
        slider_drag(qtbot, group.rows[0].slider, [0.6, 0.7, 0.8, 0.9],
                    before_release=lambda: behind.append(regions._behind))
        qtbot.waitUntil(lambda: len(w.holder.doc.edits) == 1, timeout=5000)
        assert repaints == []
        # mid-drag the Regions panel left the steps alone (nothing of it moved) and caught up on release
        assert behind == [True] and not regions._behind
        # the other sliders' rows skip a document whose edit of theirs did not change
        doc = w.holder.doc
        assert group.rows[1].sync(doc) is False and group.rows[0].sync(doc) is False
        w.undo_stack.undo()
        qtbot.waitUntil(lambda: w.holder.doc is not doc, timeout=3000)
        assert group.rows[0].value() == 0.0
    finally:
        close_window(w)
