"""The main window's status bar: the running job (text, progress, cancel) and the frame, zoom and
model readouts."""
from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QToolButton

from . import theme as theme_mod
from .engine_client import EngineClient


class WindowStatus(QObject):
    """Permanent status-bar widgets; the job ones show while a (non-quiet) job runs."""

    def __init__(self, bar: QStatusBar, engine: EngineClient) -> None:
        super().__init__(bar)
        self.engine = engine
        #: running jobs shown here: id → (title, latest text, fraction, cancellable)
        self.jobs: dict[int, tuple[str, str, float, bool]] = {}
        self.last_job = 0  #: the job shown, which the cancel button cancels (0: none)
        self.job_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(180)
        self.progress.setRange(0, 1000)
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(theme_mod.icon("cancel"))
        self.cancel_button.setProperty("icon_name", "cancel")
        self.cancel_button.setToolTip("Cancel (Esc)")
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.clicked.connect(lambda: self.engine.cancel(self.last_job or None))
        self.render_label = QLabel()
        self.zoom_label = QLabel()
        self.model_label = QLabel()
        for w in self._job_widgets():
            bar.addPermanentWidget(w)
            w.hide()
        for w in (self.render_label, self.zoom_label, self.model_label):
            bar.addPermanentWidget(w)
        engine.job_started.connect(self.on_job_started)
        engine.job_progress.connect(self.on_job_progress)
        engine.job_ended.connect(self.on_job_ended)

    def _job_widgets(self) -> tuple:
        return self.job_label, self.progress, self.cancel_button

    def on_job_started(self, job_id: int, title: str, cancellable: bool, quiet: bool) -> None:
        if quiet:
            return
        self.jobs[job_id] = (title, title, -1.0, cancellable)
        self._follow(job_id)
        for w in self._job_widgets():
            w.show()

    def on_job_progress(self, job_id: int, message: str, fraction: float) -> None:
        if job_id not in self.jobs:
            return
        title, _, _, cancellable = self.jobs[job_id]
        self.jobs[job_id] = (title, message or title, fraction, cancellable)
        if job_id == self.last_job:  # a training run beside an export: the bar follows one job, not both
            self._show(job_id)

    def on_job_ended(self, job_id: int) -> None:
        self.jobs.pop(job_id, None)
        if not self.jobs:
            for w in self._job_widgets():
                w.hide()
            self.last_job = 0
        elif job_id == self.last_job:
            self._follow(max(self.jobs))  # back to the latest started of those still running

    def _follow(self, job_id: int) -> None:
        """Show ``job_id`` (and let the cancel button cancel it)."""
        self.last_job = job_id
        rec = self.engine.records.get(job_id)
        # Esc cancels the quick jobs only: a training run is cancelled by its own button
        self.cancel_button.setToolTip("Cancel this job" if rec is not None and rec.lane == "long" else "Cancel (Esc)")
        self._show(job_id)

    def _show(self, job_id: int) -> None:
        _, text, fraction, cancellable = self.jobs[job_id]
        self.job_label.setText(text)
        self.cancel_button.setEnabled(cancellable)
        if fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
