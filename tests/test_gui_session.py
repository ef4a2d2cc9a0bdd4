"""Session-level behaviour: autosave and crash recovery, models, settings, themes, panels."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel

from stylestudio.app.autosave import AutosaveStore
from stylestudio.app.settings import Settings
from stylestudio.engine.document import EditDocument, SeedSource
from stylestudio.engine.edits.direction import DirectionEdit

from test_gui_support import (TINY, assert_same_picture, canvas_array, close_window, ensure_test_model, make_window,
                              reference_frame, wait_final, wait_sliders, window)  # noqa: F401

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[1]


def test_autosave_writes_only_unsaved_changes_and_cleans_up(qtbot, tmp_path):
    w = make_window(qtbot)
    try:
        store = w.autosave.store
        w.autosave.tick()
        assert not store.path.exists(), "nothing to autosave while the document is unchanged"
        w.panel("faces").pick(31)
        w.autosave.tick()
        assert store.path.exists() and store.meta_path.exists()
        assert AutosaveStore.orphans() == [], "a live session's autosave is not an orphan"
        w.save_to(tmp_path / "saved.stylestudio")
        assert not store.path.exists(), "saving makes the autosave obsolete"
        w.panel("faces").pick(32)
        w.autosave.tick()
        assert store.path.exists()
    finally:
        close_window(w)
    assert not store.path.exists() and not store.meta_path.exists(), "a clean exit leaves nothing behind"


def test_autosave_timer_fires(qtbot):
    w = make_window(qtbot)
    try:
        w.autosave.set_interval(1)
        w.panel("faces").pick(33)
        qtbot.waitUntil(lambda: w.autosave.writes > 0, timeout=4000)
    finally:
        close_window(w)


def test_recovery_after_a_real_crash(qtbot, stylestudio_home):
    """A child process autosaves an edited document and dies; the next start offers it back."""
    ensure_test_model(TINY)
    doc = EditDocument(model=TINY, source=SeedSource(seed=77, psi=0.55),
                       edits=(DirectionEdit(library="sefa", name="factor1", amount=1.75, id="sefa:factor1"),))
    body, _ = doc.to_json()
    script = textwrap.dedent(f"""
        import json, os, sys
        from PySide6.QtCore import QCoreApplication
        app = QCoreApplication([])
        from stylestudio.app.autosave import AutosaveStore
        from stylestudio.engine.document import EditDocument
        from stylestudio.engine import edits  # noqa: F401
        doc = EditDocument.from_json(json.loads({json.dumps(json.dumps(body))}), {{}})
        AutosaveStore().write(doc, project_path=None, title="crashed work")
        os._exit(3)  # die without cleaning up, like a crash
    """)
    env = dict(os.environ, STYLESTUDIO_HOME=str(stylestudio_home), QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    orphans = AutosaveStore.orphans()
    assert [o.title for o in orphans] == ["crashed work"]
    for o in orphans:
        o._lock.unlock()

    w = make_window(qtbot)
    try:
        offered = []
        assert w.offer_recovery(ask=lambda item: offered.append(item.title) or True)
        assert offered == ["crashed work"]
        wait_final(qtbot, w)
        assert w.holder.doc.source == doc.source and w.holder.doc.edits == doc.edits
        assert w.isWindowModified(), "recovered work is unsaved work"
        assert_same_picture(canvas_array(w), reference_frame(doc))
        assert AutosaveStore.orphans() == []
        group = wait_sliders(qtbot, w)
        assert group.row("Factor 1").spin.value() == pytest.approx(1.75)
    finally:
        close_window(w)


def test_declining_recovery_discards_it(qtbot, stylestudio_home):
    store = AutosaveStore()
    store.write(EditDocument(model=TINY, source=SeedSource(seed=5)), None, "old")
    store.lock.unlock()  # as if its process had died
    w = make_window(qtbot)
    try:
        assert not w.offer_recovery(ask=lambda item: False)
        assert not store.path.exists() and AutosaveStore.orphans() == []
    finally:
        close_window(w)


def test_import_checkpoint_and_switch_models(qtbot, oracle_dir):
    pytest.importorskip("stylestudio.engine.stylegan2.nvlabs_pickle")
    w = make_window(qtbot)
    try:
        first = canvas_array(w)
        done = []
        job = w.import_model(oracle_dir / "stylegan2_tiny" / "network-snapshot.pkl", name="oracle-tiny",
                             on_done=done.append)
        # converting runs in the job thread (a big checkpoint takes a while): listed in the Jobs panel
        assert w.engine.records[job].lane == "jobs"
        assert w.panel("jobs").row_text(job, 0) == "Import network-snapshot.pkl"
        qtbot.waitUntil(lambda: bool(done), timeout=60000)
        assert done == ["oracle-tiny"] and "oracle-tiny" in w.installed_models()
        assert w.engine.records[job].result == "model “oracle-tiny”"
        assert w.holder.doc.model == "oracle-tiny"
        wait_final(qtbot, w)
        qtbot.waitUntil(lambda: w.ctx.model is not None and w.ctx.model.name == "oracle-tiny", timeout=10000)
        assert_same_picture(canvas_array(w), reference_frame(w.holder.doc))
        names = [a.text() for a in w.models.actions]
        assert any(n.startswith("oracle-tiny") for n in names)
        checked = [a.text() for a in w.models.actions if a.isChecked()]
        assert checked == ["oracle-tiny"]
        # switching is an undoable step
        w.undo_stack.undo()
        assert w.holder.doc.model == TINY
        wait_final(qtbot, w)
        assert_same_picture(canvas_array(w), first, tol=0)
        # switch through the menu
        act = next(a for a in w.models.actions if a.text().startswith("oracle-tiny"))
        act.trigger()
        assert w.holder.doc.model == "oracle-tiny"
        wait_final(qtbot, w)
    finally:
        close_window(w)


def test_importing_garbage_reports_an_error(qtbot, window, tmp_path):
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"this is no checkpoint")
    window.import_model(junk)
    qtbot.waitUntil(lambda: bool(window.errors), timeout=10000)
    assert "junk.pkl" in window.errors[-1]
    assert window.holder.doc.model == TINY


def test_settings_file_round_trip_and_damage(stylestudio_home):
    s = Settings(device="cpu", preview_size=256, default_model="x", autosave_interval_s=30, theme="light")
    s.add_recent("/tmp/a.stylestudio")
    s.add_recent("/tmp/b.stylestudio")
    s.add_recent("/tmp/a.stylestudio")
    s.extra["future_key"] = 1
    s.save()
    back = Settings.load()
    assert (back.device, back.preview_size, back.default_model, back.autosave_interval_s, back.theme) == \
        ("cpu", 256, "x", 30, "light")
    assert back.recent_files == [str(Path("/tmp/a.stylestudio").resolve()), str(Path("/tmp/b.stylestudio").resolve())]
    assert json.loads(Settings.path().read_text())["future_key"] == 1
    Settings.path().write_text(json.dumps({"preview_size": 999, "theme": 3, "autosave_interval_s": 1,
                                           "fast_previews": "no", "threads": True}))
    bad = Settings.load()
    assert bad.preview_size == 512 and bad.theme == "system" and bad.autosave_interval_s == 10
    assert bad.fast_previews is True and bad.threads == 0, "a value of the wrong type is not taken"
    Settings.path().write_text("{ not json")
    assert Settings.load() == Settings()


def test_preferences_apply(qtbot, window):
    window.settings.preview_size = 256
    window.settings.autosave_interval_s = 15
    window.settings.theme = "light"
    window.apply_settings()
    assert window.engine.worker.preview_size == 256
    assert window.autosave.timer.interval() == 15000
    assert not window.theme.dark
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 200
    assert Settings.load().preview_size == 256
    window.settings.theme = "dark"
    window.apply_settings()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
    # a device that does not exist is an error message, not a crash
    window.settings.device = "cuda:7"
    window.apply_settings(device_changed=True)
    qtbot.waitUntil(lambda: bool(window.errors), timeout=5000)
    assert "CUDA" in window.errors[-1] or "cuda" in window.errors[-1]
    window.settings.device = "auto"
    window.settings.save()


def test_faster_drag_previews_is_a_preference_the_render_thread_applies(qtbot, window):
    from stylestudio.app.dialogs import PreferencesDialog

    dlg = PreferencesDialog(window.settings, window.installed_models(), window)
    qtbot.addWidget(dlg)
    assert dlg.fast.isChecked(), "on by default"
    dlg.fast.setChecked(False)
    dlg.apply_to(window.settings)
    window.apply_settings()
    assert Settings.load().fast_previews is False
    window.panel("faces").pick(33)  # a render makes the render thread apply it
    qtbot.waitUntil(lambda: window.engine.worker.engine is not None
                    and window.engine.worker.engine.fast_previews is False, timeout=20000)
    assert window.engine.worker.engine.preview_precision is None
    window.settings.fast_previews = True
    window.apply_settings()
    window.panel("faces").pick(34)
    qtbot.waitUntil(lambda: window.engine.worker.engine.fast_previews is True, timeout=20000)


def test_theme_follows_the_system(qtbot):
    from stylestudio.app.theme import ThemeManager

    app = QApplication.instance()
    tm = ThemeManager(app, "system")
    scheme = app.styleHints().colorScheme()
    expect_dark = scheme != Qt.ColorScheme.Light
    assert tm.dark == expect_dark
    tm.apply("light")
    assert not tm.dark
    tm.apply("dark")
    assert tm.dark


def test_panels_can_be_added_with_one_call(qtbot):
    from stylestudio.app import panels

    class Notes(QLabel):
        def __init__(self, ctx):
            super().__init__(f"model {ctx.doc.model}")

    panels.register_panel(panels.PanelSpec("notes", "Notes", Notes, area="bottom", shortcut="Ctrl+Shift+N"))
    panels.register_slider_library("no-such-library", "Attributes", order=20)
    try:
        w = make_window(qtbot)
        try:
            assert isinstance(w.panel("notes"), Notes) and w.docks["notes"].windowTitle() == "Notes"
            assert w.dockWidgetArea(w.docks["notes"]) == Qt.DockWidgetArea.BottomDockWidgetArea
            toggles = [a.text() for a in w.panels_menu.actions()]
            assert "Notes" in toggles and "Attributes" in toggles
            attrs = w.panel("sliders-no-such-library")
            qtbot.waitUntil(lambda: "No attributes" in attrs.hint.text(), timeout=10000)
            assert attrs.group is None and not w.errors  # a missing library is not an error
        finally:
            close_window(w)
    finally:
        panels.PANELS.pop("notes")
        panels.PANELS.pop("sliders-no-such-library")


def test_shortcuts_cover_the_frequent_actions(qtbot, window):
    keys = {name: a.shortcut().toString() for name, a in window.actions_by_name.items()}
    assert keys["undo"] == "Ctrl+Z" and "Ctrl+Shift+Z" in [s.toString() for s in window.actions_by_name["redo"].shortcuts()]
    for name in ("open", "save", "save_as", "export", "copy", "random", "zoom_in", "zoom_out", "fit", "actual",
                 "split", "import_model", "preferences", "new", "quit"):
        assert keys[name], name
    shortcuts = [s.toString() for a in window.findChildren(type(window.actions_by_name["open"])) for s in a.shortcuts()]
    dupes = {s for s in shortcuts if shortcuts.count(s) > 1}
    assert not dupes, dupes


def test_a_menu_entry_is_one_line_in_the_menu_table(qtbot, monkeypatch):
    """An :class:`Act` added to ``window_menus.MENU_BAR`` is in that menu, at its place, with its
    shortcut and tooltip, and runs with the window (how features add their menu entries)."""
    from stylestudio.app import window_menus
    from stylestudio.app.window_menus import Act

    ran: list = []
    models = window_menus.MENU_BAR["&Models"]
    at = next(i for i, e in enumerate(models) if isinstance(e, Act) and e.name == "models_folder")
    entry = Act("discover_test", "&Discover Test…", ran.append, "Ctrl+Alt+Shift+D", "", "Find new sliders")
    monkeypatch.setitem(window_menus.MENU_BAR, "&Models", models[:at] + (entry,) + models[at:])
    w = make_window(qtbot)
    try:
        act = w.actions_by_name["discover_test"]
        menu = w.menus["&Models"]
        names = [a.text() for a in menu.actions()]
        assert names.index("&Discover Test…") == names.index("Open Models &Folder") - 1
        assert act.shortcut().toString() == "Ctrl+Alt+Shift+D" and act.toolTip().startswith("Find new sliders")
        act.trigger()
        assert ran == [w]
        w.models.fill()  # the installed models are listed at their own place, before the new entry
        names = [a.text() for a in menu.actions()]
        assert names.index(TINY) < names.index("&Discover Test…") < names.index("Open Models &Folder")
    finally:
        close_window(w)


def test_recent_files_menu_opens_projects(qtbot, window, tmp_path):
    window.panel("faces").pick(41)
    a = tmp_path / "a.stylestudio"
    window.save_to(a)
    window.panel("faces").pick(42)
    b = tmp_path / "b.stylestudio"
    window.save_to(b)
    window.files.fill_recent_menu()
    entries = [act for act in window.recent_menu.actions() if act.toolTip().endswith(".stylestudio")]
    assert [Path(e.toolTip()).name for e in entries][:2] == ["b.stylestudio", "a.stylestudio"]
    entries[1].trigger()
    assert window.project_path == a and window.holder.doc.source.seed == 41
    assert window.windowTitle() == "StyleStudio — a[*]" and not window.isWindowModified()
    wait_final(qtbot, window)
    assert_same_picture(canvas_array(window), reference_frame(window.holder.doc))
