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
import logging
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QLockFile, QObject, QTimer

from .. import paths
from ..engine.document import EditDocument
from ..engine.project import SUFFIX, load_project, save_project
from ..errors import StyleStudioError
from ..safe_io import atomic_write_text, remove_stale_temporaries

log = logging.getLogger(__name__)

#: The side file's format: a newer StyleStudio may write a higher version, which this one sets aside.
META_FORMAT = "stylestudio-autosave"
META_VERSION = 1
MAX_META_BYTES = 64 * 1024  #: ours are ~200 bytes; anything far larger is not one of ours
MAX_TITLE_CHARS = 1000
MAX_PATH_CHARS = 4096
LATEST_TIME = 32_503_680_000.0  #: year 3000: later saved_at values are not times (and break localtime)
UNREADABLE = "unreadable"  #: sub-folder where autosaves that cannot be read are kept, never deleted


def autosave_dir() -> Path:
    d = paths.data_home() / "autosave"
    d.mkdir(parents=True, exist_ok=True)
    return d


class BadSideFile(ValueError):
    """An autosave's side file that this version cannot trust (the message says which field)."""


def read_meta(meta_path: Path, session: str) -> dict[str, Any]:
    """The side file's fields, validated; raises :class:`BadSideFile` with one line naming the field."""
    try:
        with open(meta_path, "rb") as f:
            raw = f.read(MAX_META_BYTES + 1)
    except OSError as exc:
        raise BadSideFile(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > MAX_META_BYTES:
        raise BadSideFile(f"is larger than {MAX_META_BYTES // 1024} KiB")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise BadSideFile(f"is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise BadSideFile(f"holds a {type(meta).__name__}, not an object")
    if "format" in meta and meta["format"] != META_FORMAT:
        raise BadSideFile(f"format {str(meta['format'])[:40]!r} is not {META_FORMAT!r}")
    version = meta.get("format_version", 1)
    if type(version) is not int:
        raise BadSideFile("format_version is not an integer")
    if version > META_VERSION:
        raise BadSideFile(f"was written by a newer StyleStudio (autosave format {version})")
    if meta.get("session") != session:
        raise BadSideFile(f"session {str(meta.get('session'))[:40]!r} does not match its file name")
    saved_at = meta.get("saved_at")
    if type(saved_at) not in (int, float) or not math.isfinite(saved_at) or not 0 <= saved_at <= LATEST_TIME:
        raise BadSideFile(f"saved_at {str(saved_at)[:40]!r} is not a time")
    title = meta.get("title")
    if not isinstance(title, str) or len(title) > MAX_TITLE_CHARS or "\x00" in title:
        raise BadSideFile("title is not a short text")
    project_path = meta.get("project_path")
    if project_path is not None and (not isinstance(project_path, str) or not project_path
                                     or len(project_path) > MAX_PATH_CHARS or "\x00" in project_path
                                     or not os.path.isabs(project_path) or not project_path.endswith(SUFFIX)):
        raise BadSideFile(f"project_path {str(project_path)[:80]!r} is not the path of a {SUFFIX} project")
    return {"saved_at": float(saved_at), "title": title, "project_path": project_path}


def set_aside(folder: Path, session: str, reason: str) -> str:
    """Move a session's autosave and side file to ``<folder>/unreadable/`` (never delete them).

    Returns one line for the user naming where the files now are and why.
    """
    files = [p for p in (folder / f"{session}{SUFFIX}", folder / f"{session}.json") if os.path.lexists(p)]
    aside = folder / UNREADABLE
    try:
        aside.mkdir(exist_ok=True)
        stamp = ""
        while any(os.path.lexists(aside / f"{p.stem}{stamp}{p.suffix}") for p in files):
            stamp = f"-{uuid.uuid4().hex[:6]}"
        for p in files:
            os.replace(p, aside / f"{p.stem}{stamp}{p.suffix}")
        where = aside / f"{files[0].stem}{stamp}{files[0].suffix}" if files else aside
        message = f"{where}: autosave set aside (kept, not recovered): {reason}"
    except OSError as exc:
        message = (f"{folder / (session + SUFFIX)}: autosave not recovered and left in place: {reason} "
                   f"(moving it to {aside} failed: {exc.strerror or type(exc).__name__})")
    log.warning("%s", message)
    return message


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
        """The user chose not to recover it (or it was recovered): delete it."""
        for p in (self.path, self.path.with_suffix(".json")):
            p.unlink(missing_ok=True)
        self._lock.unlock()

    def set_aside(self, reason: str) -> str:
        """It cannot be read: keep it in ``unreadable/`` and return the line that tells the user."""
        message = set_aside(self.path.parent, self.session, reason)
        self._lock.unlock()
        return message


@dataclass
class Scan:
    """What the autosave folder holds at start-up."""

    found: list[Recoverable] = field(default_factory=list)  #: newest first
    set_aside: list[str] = field(default_factory=list)  #: one line each, for the user


class AutosaveStore:
    """The files of one session (no timer: usable from tests and crash simulations)."""

    def __init__(self, folder: Path | None = None, session: str | None = None) -> None:
        self.folder = Path(folder) if folder else autosave_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.session = session or uuid.uuid4().hex[:12]
        self.path = self.folder / f"{self.session}{SUFFIX}"
        self.meta_path = self.folder / f"{self.session}.json"
        self.lock = QLockFile(str(self.folder / f"{self.session}.lock"))
        self.lock.setStaleLockTime(0)  # stale only when the owner process is gone, never by age
        self.lock.tryLock(0)

    def write(self, doc: EditDocument, project_path: str | None, title: str) -> None:
        """The project first, then its side file, each atomically (a kill leaves the older pair)."""
        save_project(self.path, doc)
        meta = {"format": META_FORMAT, "format_version": META_VERSION, "session": self.session,
                "saved_at": time.time(), "project_path": project_path, "title": title}
        atomic_write_text(self.meta_path, json.dumps(meta))

    def clear(self) -> None:
        """The document is saved (or was never changed): nothing to recover."""
        self.path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Clean exit."""
        self.clear()
        self.lock.unlock()

    @classmethod
    def scan(cls, folder: Path | None = None) -> Scan:
        """Autosaves of sessions that died, and those set aside because they cannot be read.

        The caller must ``discard`` (or recover and discard, or ``set_aside``) each found item, or
        unlock it to have it offered again next time. Stale temporaries of killed writes go.
        """
        folder = Path(folder) if folder else autosave_dir()
        result = Scan()
        remove_stale_temporaries(folder)
        sessions = sorted({p.stem for p in folder.glob("*.json")} | {p.stem for p in folder.glob(f"*{SUFFIX}")})
        for session in sessions:
            if session.startswith("."):
                continue  # a temporary of a write in progress
            lock = QLockFile(str(folder / f"{session}.lock"))
            lock.setStaleLockTime(0)
            if not lock.tryLock(0):
                continue  # a running editor owns it
            project = folder / f"{session}{SUFFIX}"
            meta_path = folder / f"{session}.json"
            has_project = os.path.lexists(project)
            if not os.path.lexists(meta_path):
                # killed between writing the project and its first side file: still the user's work
                meta = {"saved_at": _mtime(project), "title": "Untitled", "project_path": None}
            else:
                try:
                    meta = read_meta(meta_path, session)
                except BadSideFile as exc:
                    if has_project:
                        result.set_aside.append(set_aside(folder, session, f"its side file {meta_path.name} {exc}"))
                    else:
                        result.set_aside.append(set_aside(folder, session, f"side file {exc}, without an autosave"))
                    lock.unlock()
                    continue
            if not has_project:
                meta_path.unlink(missing_ok=True)  # a valid side file alone holds no work
                lock.unlock()
                continue
            if not project.is_file():
                result.set_aside.append(set_aside(folder, session, f"{project.name} is not a file"))
                lock.unlock()
                continue
            result.found.append(Recoverable(session, project, meta["saved_at"], meta["project_path"], meta["title"],
                                            lock))
        result.found.sort(key=lambda r: r.saved_at, reverse=True)
        for lock_path in folder.glob("*.lock"):  # locks of dead sessions that never autosaved
            if not (folder / f"{lock_path.stem}.json").exists() and not (folder / f"{lock_path.stem}{SUFFIX}").exists():
                stale = QLockFile(str(lock_path))
                stale.setStaleLockTime(0)
                if stale.tryLock(0):
                    stale.unlock()  # removes the file
        return result

    @classmethod
    def orphans(cls, folder: Path | None = None) -> list[Recoverable]:
        """Autosaves of sessions that died (unreadable ones are set aside and logged)."""
        return cls.scan(folder).found


def _mtime(path: Path) -> float:
    try:
        return min(max(0.0, path.stat().st_mtime), LATEST_TIME)
    except OSError:
        return time.time()


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
            # as a save writes it: keeping copies of its sliders' libraries, so a recovered picture draws
            # even if one was deleted meanwhile (engine/edits/kept.py)
            self.store.write(w.renders.stamped(doc), str(w.project_path) if w.project_path else None,
                             w.document_name())
            self._last = doc
            self.writes += 1
        except (OSError, StyleStudioError) as exc:
            w.statusBar().showMessage(f"Autosave failed: {exc}", 6000)
        except Exception as exc:  # a bug must not stop the timer or the editor; said and logged
            log.exception("autosave to %s failed", self.store.path)
            w.statusBar().showMessage(f"Autosave failed: unexpected {type(exc).__name__}: {exc}", 6000)

    def saved(self) -> None:
        """The user saved: the autosave is obsolete."""
        self.store.clear()
        self._last = None

    def close(self) -> None:
        self.timer.stop()
        self.store.close()
