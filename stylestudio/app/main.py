"""Starting the editor: ``stylestudio`` with no arguments, or ``python main.py``."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QCoreApplication, QEvent, QTimer
from PySide6.QtWidgets import QApplication

from .. import __version__


def run_app(argv: Sequence[str] | None = None) -> int:
    """Open the editor window (optionally on a project given as the first argument); returns the exit code."""
    argv = list(argv or [])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "stylestudio", *argv])
    app.setApplicationName("StyleStudio")
    app.setOrganizationName("StyleStudio")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("stylestudio")

    from .main_window import MainWindow
    from .settings import Settings
    from .theme import ThemeManager, app_icon

    settings = Settings.load()
    theme = ThemeManager(app, settings.theme)  # type: ignore[arg-type]
    app.setWindowIcon(app_icon())
    window = MainWindow(settings, theme=theme)
    window.show()
    project = next((a for a in argv if not a.startswith("-")), None)

    def after_show() -> None:
        try:
            recovered = window.offer_recovery()
        except Exception:  # recovery must never stop the editor, nor the project asked for, from opening
            logging.getLogger(__name__).exception("looking for unsaved work failed")
            window.report_error("Could not look for unsaved work", "unexpected failure (a bug; details in the log)")
            recovered = False
        if not recovered and project:
            window.open_path(Path(project), ask=False)

    QTimer.singleShot(0, after_show)
    code = app.exec()
    window.shutdown()
    # the whole widget tree goes now, parents before children as Qt does it, not in PySide's sweep
    # of Python-owned objects at interpreter exit (which can delete a child twice: app/modal.py)
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return int(code)
