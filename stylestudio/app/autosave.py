"""Autosave and crash recovery.

Every running editor is a *session* with an id. While its document has unsaved changes, the
session writes it every N seconds to ``<data>/autosave/<id>.stylestudio`` (atomically, like any
project) with a small ``<id>.json`` beside it (where the document came from, when it was
saved). The session holds ``<id>.lock`` (a QLockFile, which records the process id). A clean
exit deletes all three. At the next start, an autosave whose lock can be taken belongs to a
session that died without cleaning up — a crash — and is offered for recovery.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QTimer

from .. import paths
from ..engine.document import EditDocument
from ..engine.project import load_project, save_project
from ..errors import StyleStudioError


def autosave_dir() -> Path:
    d = paths.data_home() / "autosave"
    d.mkdir(parents=True, exist_ok=True)
    return d


@dataclass
class Recoverable:
    """An autosave left behind by a session that did not exit cleanly."""

    session: str
    path: Path
    saved_at: float
    project_path: str | None
    title: str
    _lock: QLockFile

    def load(self) -> EditDocument:
        return load_project(self.path)

    def discard(self) -> None:
        for p in (self.path, self.path.with_suffix(".json")):
            p.unlink(missing_ok=True)
        self._lock.unlock()


class AutosaveStore:
    """The files of one session (no timer: usable from tests and crash simulations)."""

    def __init__(self, folder: Path | None = None, session: str | None = None) -> None:
        self.folder = Path(folder) if folder else autosave_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.session = session or uuid.uuid4().hex[:12]
        self.path = self.folder / f"{self.session}.stylestudio"
        self.meta_path = self.folder / f"{self.session}.json"
        self.lock = QLockFile(str(self.folder / f"{self.session}.lock"))
        self.lock.setStaleLockTime(0)  # stale only when the owner process is gone, never by age
        self.lock.tryLock(0)

    def write(self, doc: EditDocument, project_path: str | None, title: str) -> None:
        save_project(self.path, doc)
        meta = {"session": self.session, "saved_at": time.time(), "project_path": project_path, "title": title}
        tmp = self.meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta))
        tmp.replace(self.meta_path)

    def clear(self) -> None:
        """The document is saved (or was never changed): nothing to recover."""
        self.path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Clean exit."""
        self.clear()
        self.lock.unlock()

    @classmethod
    def orphans(cls, folder: Path | None = None) -> list[Recoverable]:
        """Autosaves of sessions that died; the caller must ``discard`` each (or recover and discard)."""
        folder = Path(folder) if folder else autosave_dir()
        found = []
        for meta_path in sorted(folder.glob("*.json")):
            session = meta_path.stem
            lock = QLockFile(str(folder / f"{session}.lock"))
            lock.setStaleLockTime(0)
            if not lock.tryLock(0):
                continue  # a running editor owns it
            project = folder / f"{session}.stylestudio"
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                meta = {}
            if not project.is_file():
                meta_path.unlink(missing_ok=True)
                lock.unlock()
                continue
            found.append(Recoverable(session, project, float(meta.get("saved_at", project.stat().st_mtime)),
                                     meta.get("project_path"), str(meta.get("title", "Untitled")), lock))
        found.sort(key=lambda r: r.saved_at, reverse=True)
        for lock_path in folder.glob("*.lock"):  # locks of dead sessions that never autosaved
            if not (folder / f"{lock_path.stem}.json").exists():
                stale = QLockFile(str(lock_path))
                stale.setStaleLockTime(0)
                if stale.tryLock(0):
                    stale.unlock()  # removes the file
        return found


class AutosaveManager(QObject):
    """Writes the window's document every ``interval_s`` while it has unsaved changes."""

    def __init__(self, window, interval_s: int, parent: QObject | None = None) -> None:
        super().__init__(parent or window)
        self.window = window
        self.store = AutosaveStore()
        self._last: EditDocument | None = None
        self.writes = 0
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.tick)
        self.set_interval(interval_s)
        self.timer.start()

    def set_interval(self, seconds: int) -> None:
        self.timer.setInterval(max(1, int(seconds)) * 1000)

    def tick(self) -> None:
        w = self.window
        doc = w.holder.doc
        if w.undo_stack.isClean():
            if self._last is not None:
                self.store.clear()
                self._last = None
            return
        if doc is self._last:
            return
        try:
            self.store.write(doc, str(w.project_path) if w.project_path else None, w.document_name())
            self._last = doc
            self.writes += 1
        except (OSError, StyleStudioError) as exc:
            w.statusBar().showMessage(f"Autosave failed: {exc}", 6000)

    def saved(self) -> None:
        """The user saved: the autosave is obsolete."""
        self.store.clear()
        self._last = None

    def close(self) -> None:
        self.timer.stop()
        self.store.close()
