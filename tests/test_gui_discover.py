"""The Discover panel: a short discovery job runs in the job thread while a slider keeps being
dragged, its loss curve and strips appear, a direction is renamed, used as a slider and deleted."""
from __future__ import annotations

import numpy as np
import pytest

from test_gui_jobs import Drag
from test_gui_support import TINY, canvas_array, close_window, make_window, wait_final, wait_sliders

pytestmark = pytest.mark.gui


def _select(combo, data) -> None:
    combo.setCurrentIndex(combo.findData(data))


@pytest.mark.slow  # a real (short) training job beside live renders: about a minute here
def test_discover_while_dragging_then_rename_use_and_delete(qtbot):
    from stylestudio.engine.discovery.store import library_paths
    from stylestudio.engine.edits.direction import DirectionEdit

    w = make_window(qtbot)
    try:
        panel = w.panel("discover")
        w.docks["discover"].show()
        w.docks["discover"].raise_()
        _select(panel.method, "contrafeat")
        _select(panel.sensor, "generator")
        _select(panel.render_size, 64)
        panel.directions.setValue(3)
        panel.steps.setValue(12)
        panel.seed.setValue(5)
        panel.name.setText("guidisc")

        row = wait_sliders(qtbot, w).rows[0]
        w.docks["sliders-sefa"].raise_()
        qtbot.waitUntil(row.slider.isVisible, timeout=5000)
        frames: list = []
        w.engine.rendered.connect(frames.append)

        job = panel.start()
        assert job is not None and not panel.start_button.isEnabled()
        rec = w.engine.records[job]
        assert rec.lane == "long"
        qtbot.waitUntil(lambda: rec.state == "running", timeout=30000)
        drag = Drag(row.slider)
        while rec.state == "running":  # the editor stays live for the whole job
            drag.step()
            qtbot.wait(40)
        drag.release()
        assert rec.state == "finished", rec.result
        assert len(frames) >= 4, "renders waited for the discovery job"
        assert len(panel.losses) == 12 and all(np.isfinite(panel.losses).ravel())
        qtbot.waitUntil(lambda: panel.library.currentText() == "guidisc", timeout=10000)
        assert panel.strips.count() == 3  # one strip per direction (the final ones)
        assert "guidisc" in library_paths(TINY)
        assert [panel.list.item(i).text() for i in range(panel.list.count())] == \
            ["Direction 1", "Direction 2", "Direction 3"]

        # use Direction 2, then rename it as a person would: edit its name in the list
        w.docks["discover"].raise_()
        first = panel.group.row("Direction 2").slider
        qtbot.waitUntil(first.isVisible, timeout=5000)
        half = first.maximum() // 2
        first.setValue(half)
        qtbot.waitUntil(lambda: isinstance(w.holder.doc.edit("guidisc:direction_2"), DirectionEdit), timeout=5000)
        panel.list.item(1).setText("Jaw")
        qtbot.waitUntil(lambda: [d["name"] for d in panel.libraries.get("guidisc", [])]
                        == ["direction_1", "jaw", "direction_3"], timeout=10000)
        assert panel.list.item(1).text() == "Jaw"

        # the renamed slider still shows the edit made under the former name, and moving it moves
        # that same edit (no second edit of the same direction)
        qtbot.waitUntil(lambda: panel.group is not None and "Jaw" in [r.binding.label for r in panel.group.rows],
                        timeout=5000)
        slider = panel.group.row("Jaw").slider
        qtbot.waitUntil(slider.isVisible, timeout=5000)
        assert slider.value() == half
        wait_final(qtbot, w)
        before = canvas_array(w)
        slider.setValue(slider.maximum())
        qtbot.waitUntil(lambda: w.holder.doc.edit("guidisc:direction_2").amount == 3.0, timeout=5000)
        mine = [e for e in w.holder.doc.edits if getattr(e, "library", None) == "guidisc"]
        assert [(e.id, e.name) for e in mine] == [("guidisc:direction_2", "jaw")]
        wait_final(qtbot, w, 20000)
        after = canvas_array(w)
        assert np.abs(before.astype(int) - after.astype(int)).mean() > 0.5

        # delete Direction 3: asked first; Cancel deletes nothing
        asked: list[str] = []
        panel.confirm = lambda question: asked.append(question) or False
        panel.list.setCurrentRow(2)
        panel.delete_button.click()
        assert asked == ["Delete the direction “Direction 3” from guidisc? This cannot be undone. Pictures and "
                         "projects that use it keep drawing it from a copy."]
        qtbot.wait(300)
        assert panel.list.count() == 3
        panel.confirm = lambda question: True
        panel.delete_button.click()
        qtbot.waitUntil(lambda: panel.list.count() == 2, timeout=10000)
    finally:
        close_window(w)
        from stylestudio.engine.discovery.store import user_path

        user_path(TINY, "guidisc").unlink(missing_ok=True)


def test_bad_settings_are_one_message_and_start_nothing(qtbot):
    w = make_window(qtbot)
    try:
        panel = w.panel("discover")
        panel.name.setText("attributes")
        assert panel.start() is None
        assert "taken by StyleStudio" in panel.status.text() and panel.start_button.isEnabled()
        panel.name.setText("../x")
        assert panel.start() is None and "direction library" in panel.status.text()
    finally:
        close_window(w)


def test_discovery_never_lands_on_a_library_unasked(qtbot):
    """The suggested name moves past discovered libraries; a typed one asks before replacing."""
    from stylestudio.engine.directions.library import DirectionLibrary
    from test_kept_libraries import _user_directions

    made = _user_directions("discovered", seed=9, kind="discovered")
    w = make_window(qtbot)
    try:
        panel = w.panel("discover")
        qtbot.waitUntil(lambda: panel.library.findText("discovered") >= 0, timeout=10000)
        assert panel.name.text() == "discovered_2"
        asked: list[tuple[str, str]] = []
        panel.confirm = lambda question, action="Delete": asked.append((question, action)) and False
        panel.name.setText("discovered")
        assert panel.start() is None and panel.status.text() == "Not started: choose another library name"
        assert asked == [("Replace your discovered library “discovered” (2 directions: bend, twist) with what this "
                          "training finds? Pictures and projects that use its sliders keep drawing them from a copy.",
                          "Replace")]
        assert DirectionLibrary.load(made).names() == ["bend", "twist"] and panel.start_button.isEnabled()
    finally:
        close_window(w)
        made.unlink(missing_ok=True)


def test_finish_now_saves_the_directions_found_so_far(qtbot):
    from stylestudio.engine.directions.library import DirectionLibrary
    from stylestudio.engine.discovery.store import user_path

    w = make_window(qtbot)
    try:
        panel = w.panel("discover")
        _select(panel.method, "contrafeat")
        _select(panel.sensor, "generator")
        _select(panel.render_size, 64)
        panel.directions.setValue(2)
        panel.steps.setValue(0)  # no limit: only the 20-minute budget would end it
        panel.name.setText("guifinish")
        job = panel.start()
        assert job is not None and panel.finish_button.isEnabled()
        qtbot.waitUntil(lambda: len(panel.losses) >= 2, timeout=60000)
        jobs = w.panel("jobs")  # the Jobs panel's row offers it too
        finish = jobs.finish_buttons[job]
        assert finish.isVisibleTo(jobs) and finish.isEnabled() and finish.text() == "Finish now"
        from stylestudio.app.panels.jobs import COL_CANCEL

        qtbot.waitUntil(lambda: jobs.tree.columnWidth(COL_CANCEL) >= jobs.tree.itemWidget(jobs.items[job], COL_CANCEL).sizeHint().width(),
                        timeout=5000)  # both buttons fit their column
        finish.click()
        assert not finish.isEnabled() and not w.engine.finish(job)  # asked once
        rec = w.engine.records[job]
        qtbot.waitUntil(lambda: rec.state in ("finished", "failed", "cancelled"), timeout=60000)
        assert rec.state == "finished", rec.result
        lib = DirectionLibrary.load(user_path(TINY, "guifinish"))
        assert lib.meta["finished_early"] is True and lib.names() == ["direction_1", "direction_2"]
        assert lib.meta["steps"] == len(panel.losses)
        assert panel.status.text() == "2 directions saved as “guifinish” (finished early)"
        assert panel.start_button.isEnabled() and not panel.finish_button.isEnabled()
    finally:
        close_window(w)
        user_path(TINY, "guifinish").unlink(missing_ok=True)
