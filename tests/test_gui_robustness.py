"""The editor and bad input: malformed projects, autosaves and settings never crash it or lose files.

Every failing open/save/export shows ONE dialog with one line naming the file and the editor keeps
running; recovery sets aside (never deletes) what it cannot read; settings and autosaves are
written atomically and their stale temporaries are cleaned up at start.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from stylestudio.app import file_actions as mw  # open/save (and their error lines) live there
from stylestudio.app.autosave import UNREADABLE, AutosaveStore, autosave_dir
from stylestudio.app.settings import Settings
from stylestudio.engine.document import EditDocument, SeedSource
from stylestudio.engine.project import save_project
from stylestudio.errors import InputError

from test_gui_support import TINY, close_window, ensure_test_model, make_window, window  # noqa: F401
from zip_json import zip_bytes

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[1]
OLD = time.time() - 2 * 86400  #: an mtime that makes a temporary stale


def visible_boxes(w) -> list[QMessageBox]:
    return [b for b in w.findChildren(QMessageBox) if b.isVisible()]


def dismiss(w) -> None:
    for b in visible_boxes(w):
        b.done(0)
    w.error_box = None


def assert_one_dialog_naming(w, name: str, before: int) -> str:
    """Exactly one dialog is up, and exactly one new one-line message naming ``name``."""
    assert len(visible_boxes(w)) == 1
    assert len(w.errors) == before + 1, w.errors[before:]
    line = w.errors[-1]
    assert "\n" not in line and name in line, line
    assert name in w.error_box.informativeText()
    return line


# ---------------------------------------------------------------------------------------------
# opening, saving, exporting: one dialog, the editor keeps its document


@pytest.mark.parametrize("exc, bug", [
    (InputError("damaged"), False),
    (zipfile.BadZipFile("File is not a zip file"), True),
    (RuntimeError("File is encrypted, password required for extraction"), True),
    (NotImplementedError("That compression method is not supported"), True),
    (AttributeError("'list' object has no attribute 'get'"), True),
    (RecursionError("maximum recursion depth exceeded"), True),
    (MemoryError(), True),
    (KeyError("manifest.json"), True),
    (TypeError("unhashable type: 'dict'"), True),
    (PermissionError(errno.EACCES, "Permission denied"), False),
])
def test_open_failure_of_any_kind_is_one_dialog(qtbot, window, tmp_path, monkeypatch, caplog, exc, bug):
    path = tmp_path / "odd.stylestudio"
    path.write_bytes(b"whatever")

    def loader(_p):
        raise exc

    monkeypatch.setattr(mw, "load_project", loader)
    doc = window.holder.doc
    before = len(window.errors)
    with caplog.at_level(logging.ERROR, logger=mw.__name__):
        assert window.open_path(path) is False
    line = assert_one_dialog_naming(window, "odd.stylestudio", before)
    assert ("unexpected" in line) == bug
    if bug:  # a bug is logged with its traceback
        assert any(r.exc_info and r.exc_info[1] is exc for r in caplog.records)
    assert window.holder.doc is doc and window.project_path is None
    assert path.read_bytes() == b"whatever"


def _malformed_projects(tmp_path: Path) -> dict[str, bytes]:
    good = tmp_path / "good.stylestudio"
    save_project(good, EditDocument(model=TINY, source=SeedSource(seed=4)))
    data = good.read_bytes()
    manifest = {"format": "stylestudio-project", "format_version": 1, "arrays": []}
    body = json.loads(zipfile.ZipFile(good).read("document.json"))
    encrypted = bytearray(data)
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the "encrypted" flag in every header
        at = 0
        while (at := encrypted.find(sig, at)) >= 0:
            flag_at = at + (6 if sig == b"PK\x03\x04" else 8)
            encrypted[flag_at] |= 1
            at += 4
    return {
        "truncated.stylestudio": data[: len(data) // 2],
        "text.stylestudio": b"just some notes, renamed\n",
        "empty.stylestudio": b"",
        "list-manifest.stylestudio": zip_bytes({"manifest.json": b"[1, 2, 3]", "document.json": b"{}"}),
        "nested.stylestudio": zip_bytes({"manifest.json": json.dumps(manifest).encode(),
                                    "document.json": b"[" * 100_000 + b"]" * 100_000}),
        "wrong-types.stylestudio": zip_bytes({"manifest.json": json.dumps(manifest).encode(),
                                         "document.json": json.dumps(dict(body, source=[1, 2])).encode()}),
        "encrypted.stylestudio": bytes(encrypted),
        "newer.stylestudio": zip_bytes({"manifest.json": json.dumps(dict(manifest, format_version=99)).encode(),
                                   "document.json": b"{}"}),
    }


def test_opening_malformed_projects_through_the_window(qtbot, window, tmp_path):
    """Real files through the real loader: each is one dialog naming it; the editor stays usable."""
    doc = window.holder.doc
    for name, data in _malformed_projects(tmp_path).items():
        path = tmp_path / name
        path.write_bytes(data)
        before = len(window.errors)
        assert window.open_path(path) is False, name
        assert_one_dialog_naming(window, name, before)
        assert path.read_bytes() == data, "opening must not change the file"
        dismiss(window)
    assert window.holder.doc is doc
    window.panel("faces").pick(12)  # still usable
    assert window.holder.doc.source.seed == 12


def test_missing_model_message_names_the_project(qtbot, window, tmp_path):
    path = tmp_path / "other-model.stylestudio"
    save_project(path, EditDocument(model="no-such-model", source=SeedSource(seed=1)))
    before = len(window.errors)
    assert not window.open_path(path)
    assert "not installed" in assert_one_dialog_naming(window, "other-model.stylestudio", before)


@pytest.mark.parametrize("exc, bug", [
    (InputError("/x/y.stylestudio: the disk is full"), False),
    (OSError(errno.ENOSPC, "No space left on device"), False),
    (RuntimeError("something broke"), True),
])
def test_save_failure_is_one_dialog(qtbot, window, tmp_path, monkeypatch, exc, bug):
    def saver(*_a, **_k):
        raise exc

    monkeypatch.setattr(mw, "save_project", saver)
    window.panel("faces").pick(21)
    path = tmp_path / "keep.stylestudio"
    before = len(window.errors)
    assert window.save_to(path) is False
    line = assert_one_dialog_naming(window, "keep.stylestudio" if not isinstance(exc, InputError) else "y.stylestudio",
                                    before)
    assert ("unexpected" in line) == bug
    assert window.isWindowModified(), "a failed save leaves the work unsaved, not marked saved"
    assert window.project_path is None


def test_save_where_the_folder_is_a_file_is_one_dialog(qtbot, window, tmp_path):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    window.panel("faces").pick(22)
    before = len(window.errors)
    assert not window.save_to(tmp_path / "notes.txt" / "a.stylestudio")
    assert_one_dialog_naming(window, "a.stylestudio", before)
    assert window.isWindowModified()


def test_export_to_a_missing_folder_is_said_at_once(qtbot, window, tmp_path):
    before = len(window.errors)
    assert window.export_to(tmp_path / "missing" / "face.png") == 0
    line = assert_one_dialog_naming(window, "face.png", before)
    assert "does not exist" in line


def test_export_bug_in_the_worker_is_one_dialog_naming_the_file(qtbot, window, tmp_path, monkeypatch):
    from stylestudio.engine import export

    def broken(*_a, **_k):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(export, "export_document", broken)
    before = len(window.errors)
    window.export_to(tmp_path / "face.png")
    qtbot.waitUntil(lambda: len(window.errors) > before, timeout=10000)
    line = assert_one_dialog_naming(window, "face.png", before)
    assert "unexpected ZeroDivisionError" in line
    assert not (tmp_path / "face.png").exists()


# ---------------------------------------------------------------------------------------------
# autosave side files and recovery: set aside, never deleted


def _orphan(folder: Path, session: str, seed: int = 5) -> AutosaveStore:
    store = AutosaveStore(folder=folder, session=session)
    store.write(EditDocument(model=TINY, source=SeedSource(seed=seed)), None, f"work {seed}")
    store.lock.unlock()  # as if its process had died
    return store


BAD_SIDE_FILES = {
    "truncated": b'{"session": "s", "saved_at": 17',
    "list": b"[1, 2, 3]",
    "string": b'"hello"',
    "null": b"null",
    "binary": bytes(range(256)) * 4,
    "nested": b"[" * 50_000 + b"]" * 50_000,
    "huge": b'{"title": "' + b"x" * 200_000 + b'"}',
}
BAD_FIELDS = {
    "saved_at-text": {"saved_at": "yesterday"},
    "saved_at-nan": {"saved_at": float("nan")},
    "saved_at-huge": {"saved_at": 1e300},
    "saved_at-negative": {"saved_at": -5},
    "saved_at-bool": {"saved_at": True},
    "saved_at-missing": {"saved_at": None},
    "title-number": {"title": 12},
    "title-list": {"title": ["a"]},
    "title-long": {"title": "t" * 5000},
    "project_path-number": {"project_path": 3},
    "project_path-relative": {"project_path": "rel/a.stylestudio"},
    "project_path-nul": {"project_path": "/tmp/a\x00b.stylestudio"},
    "project_path-not-a-project": {"project_path": "/etc/passwd"},
    "session-other": {"session": "someone-else"},
    "session-number": {"session": 7},
    "format-version-newer": {"format_version": 2},
    "format-version-text": {"format_version": "1"},
    "format-other": {"format": "something-else"},
}


def _write_bad_meta(store: AutosaveStore, case: str) -> bytes:
    if case in BAD_SIDE_FILES:
        data = BAD_SIDE_FILES[case]
    else:
        meta = json.loads(store.meta_path.read_text())
        meta.update(BAD_FIELDS[case])
        meta = {k: v for k, v in meta.items() if v is not None}
        data = json.dumps(meta).encode()
    store.meta_path.write_bytes(data)
    return data


@pytest.mark.parametrize("case", [*BAD_SIDE_FILES, *BAD_FIELDS])
def test_malformed_side_file_is_set_aside_not_deleted(qtbot, tmp_path, case):
    folder = tmp_path / "autosave"
    store = _orphan(folder, "s")
    good = _orphan(folder, "t", seed=6)
    project = store.path.read_bytes()
    meta = _write_bad_meta(store, case)
    scan = AutosaveStore.scan(folder)
    assert [r.session for r in scan.found] == ["t"], "the readable autosave is still offered"
    assert len(scan.set_aside) == 1
    line = scan.set_aside[0]
    assert "\n" not in line and "s.json" in line and str(folder / UNREADABLE) in line
    assert (folder / UNREADABLE / "s.stylestudio").read_bytes() == project
    assert (folder / UNREADABLE / "s.json").read_bytes() == meta
    assert not store.path.exists() and not store.meta_path.exists()
    for r in scan.found:
        r._lock.unlock()
    assert good.path.exists()


def test_valid_side_files_of_older_versions_are_still_read(qtbot, tmp_path):
    """Side files written before the format fields existed are recovered as before."""
    folder = tmp_path / "autosave"
    store = _orphan(folder, "old")
    store.meta_path.write_text(json.dumps({"session": "old", "saved_at": 1_700_000_000.5,
                                           "project_path": "/home/me/a.stylestudio", "title": "before"}))
    [item] = AutosaveStore.orphans(folder)
    assert (item.title, item.saved_at, item.project_path) == ("before", 1_700_000_000.5, "/home/me/a.stylestudio")
    item._lock.unlock()


def test_an_autosave_without_its_side_file_is_still_offered(qtbot, tmp_path):
    folder = tmp_path / "autosave"
    store = _orphan(folder, "nometa")
    store.meta_path.unlink()
    [item] = AutosaveStore.orphans(folder)
    assert item.path == store.path and item.title == "Untitled"
    item._lock.unlock()


def test_stale_temporaries_in_the_autosave_folder_are_removed(qtbot, tmp_path):
    folder = tmp_path / "autosave"
    folder.mkdir()
    stale = folder / ".abc.stylestudio.x1y2.tmp"
    fresh = folder / ".abc.json.k3l4.tmp"
    for p in (stale, fresh):
        p.write_bytes(b"partial")
    os.utime(stale, (OLD, OLD))
    AutosaveStore.scan(folder)
    assert not stale.exists(), "a killed write's leftover goes"
    assert fresh.exists(), "a write in progress is left alone"


def test_side_file_is_written_atomically_with_the_users_umask(qtbot, tmp_path):
    folder = tmp_path / "autosave"
    store = AutosaveStore(folder=folder, session="perm")
    old = os.umask(0o027)
    try:
        store.write(EditDocument(model=TINY, source=SeedSource(seed=1)), None, "t")
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.meta_path.stat().st_mode) == 0o640
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []
    assert json.loads(store.meta_path.read_text())["format_version"] == 1
    store.close()


@pytest.mark.parametrize("content", ["newer", "garbage"])
def test_recovery_sets_aside_an_autosave_it_cannot_read(qtbot, content):
    """A newer version's autosave (or a damaged one) is kept in unreadable/ and the user is told."""
    folder = autosave_dir()
    store = _orphan(folder, f"unread-{content}")
    if content == "newer":
        manifest = {"format": "stylestudio-project", "format_version": 99, "arrays": []}
        store.path.write_bytes(zip_bytes({"manifest.json": json.dumps(manifest).encode(), "document.json": b"{}"}))
    else:
        store.path.write_bytes(b"\x00garbage" * 100)
    data = store.path.read_bytes()
    w = make_window(qtbot)
    try:
        asked = []
        assert not w.offer_recovery(ask=lambda item: asked.append(item) or True)
        assert asked == [], "what cannot be read is not offered (nor discarded)"
        kept = folder / UNREADABLE / f"unread-{content}.stylestudio"
        assert kept.read_bytes() == data
        assert (folder / UNREADABLE / f"unread-{content}.json").exists()
        assert len(visible_boxes(w)) == 1
        assert "\n" not in w.errors[-1] and str(kept) in w.errors[-1]
        assert AutosaveStore.orphans() == []
    finally:
        close_window(w)
        for p in (folder / UNREADABLE).glob(f"unread-{content}*"):
            p.unlink()


def test_start_with_a_malformed_side_file_still_opens_the_project(qtbot, tmp_path, stylestudio_home):
    """The real start-up path (run_app): the bad autosave is set aside and the project opens."""
    ensure_test_model(TINY)
    Settings(default_model=TINY).save()
    project = tmp_path / "asked-for.stylestudio"
    save_project(project, EditDocument(model=TINY, source=SeedSource(seed=8)))
    folder = autosave_dir()
    store = _orphan(folder, "startup-bad")
    store.meta_path.write_bytes(b"[1, 2]")  # a list: once a traceback at every start
    script = textwrap.dedent("""
        import sys
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from stylestudio.app import main_window
        real_open = main_window.MainWindow.open_path
        def open_path(self, path, ask=True):
            ok = real_open(self, path, ask)
            print("OPENED", ok, self.project_path, "|".join(self.errors), flush=True)
            QTimer.singleShot(0, QApplication.instance().quit)
            return ok
        main_window.MainWindow.open_path = open_path
        from stylestudio.app.main import run_app
        sys.exit(run_app([sys.argv[1]]))
    """)
    env = dict(os.environ, STYLESTUDIO_HOME=str(stylestudio_home), QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=str(REPO))
    try:
        proc = subprocess.run([sys.executable, "-c", script, str(project)], env=env, capture_output=True,
                              text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        assert f"OPENED True {project}" in proc.stdout, (proc.stdout, proc.stderr)
        assert "startup-bad.json" in proc.stdout, "the user was told about the set-aside autosave"
        assert (folder / UNREADABLE / "startup-bad.json").read_bytes() == b"[1, 2]"
        assert (folder / UNREADABLE / "startup-bad.stylestudio").exists()
    finally:
        for p in (folder / UNREADABLE).glob("startup-bad*"):
            p.unlink()


# ---------------------------------------------------------------------------------------------
# settings


@pytest.mark.parametrize("content", [
    b"[1, 2]", b"\xff\xfe garbage \x00", b"[" * 100_000, b'{"last_psi": NaN, "last_seed": 99999999999999}',
    b'{"recent_files": ["/a\\u0000b.stylestudio", 3, "/ok.stylestudio"], "default_model": "../../etc"}',
    b'{"device": 5, "theme": null, "preview_size": "big", "threads": 1e400}',
], ids=["list", "binary", "nested", "nan-and-huge-seed", "nul-and-model-path", "wrong-types"])
def test_hostile_settings_give_defaults(stylestudio_home, content):
    Settings.path().write_bytes(content)
    s = Settings.load()
    assert s.preview_size in (256, 512) and 0 <= s.last_psi <= 1.5 and 0 <= s.last_seed < 2**32
    assert all("\x00" not in p for p in s.recent_files) and s.default_model in ("",)
    assert isinstance(s.device, str) and isinstance(s.threads, int)
    Settings.path().unlink()


def test_settings_save_keeps_permissions_and_cleans_stale_temporaries(stylestudio_home):
    path = Settings.path()
    Settings(theme="dark").save()
    os.chmod(path, 0o640)
    assert Settings(theme="light").save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640, "a replaced settings file keeps its permissions"
    stale = path.parent / ".settings.json.q1w2.tmp"
    stale.write_text("{")
    os.utime(stale, (OLD, OLD))
    assert Settings.load().theme == "light"
    assert not stale.exists()
    path.unlink()


def test_settings_that_cannot_be_saved_are_not_a_crash(stylestudio_home, monkeypatch, caplog):
    from stylestudio.app import settings as settings_mod

    def full_disk(path, _text):
        raise InputError(f"{path}: the disk is full")

    monkeypatch.setattr(settings_mod, "atomic_write_text", full_disk)
    with caplog.at_level(logging.WARNING, logger=settings_mod.__name__):
        assert Settings(theme="dark").save() is False
    assert any("the disk is full" in r.getMessage() for r in caplog.records)
