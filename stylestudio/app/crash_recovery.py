"""After a crash: offer the newest orphaned autosave, and say what had to be set aside."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from .. import paths
from .autosave import AutosaveStore, Recoverable
from .file_actions import file_error

if TYPE_CHECKING:
    from .main_window import MainWindow


def offer_recovery(window: "MainWindow", ask: Callable[[Recoverable], bool] | None = None) -> bool:
    """Offer the newest orphaned autosave (``ask`` answers "recover it?"). Returns True if recovered.

    An autosave that cannot be read is set aside with one line saying why, never deleted; the
    others stay for the next start."""
    try:
        scan = AutosaveStore.scan()
    except Exception as exc:  # an unreadable autosave folder must not stop the editor
        window.report_error("Could not look for unsaved work", file_error(paths.data_home() / "autosave", exc))
        return False
    for line in scan.set_aside:
        window.report_error("Autosave set aside", line)
    if not scan.found:
        return False
    item, others = scan.found[0], scan.found[1:]
    for o in others:
        o._lock.unlock()  # offered again next time
    ask = ask or (lambda it: ask_recover_dialog(window, it))
    try:
        doc = item.load()  # read it before asking: what cannot be read is set aside, never deleted
    except Exception as exc:
        window.report_error("Autosave set aside", item.set_aside(file_error(item.path, exc)))
        return False
    if not ask(item):
        item.discard()
        return False
    path = Path(item.project_path) if item.project_path else None
    window.set_document(doc, path, modified=True)
    item.discard()
    if window.autosave is not None:
        window.autosave.tick()
    window.statusBar().showMessage("Recovered the unsaved document", 6000)
    return True


def ask_recover_dialog(parent: QWidget, item: Recoverable) -> bool:
    when = time.strftime("%d %b %Y, %H:%M", time.localtime(item.saved_at))
    box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved work?",
                      f"StyleStudio did not close properly last time. Recover “{item.title}” "
                      f"(autosaved {when})?", QMessageBox.StandardButton.NoButton, parent)
    recover = box.addButton("&Recover", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("&Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.exec()
    return box.clickedButton() is recover
