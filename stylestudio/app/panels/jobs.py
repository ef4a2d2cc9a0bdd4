"""The Jobs panel: every long job, queued, running or ended, with progress, ETA, cancel and result.

Long jobs (a catalog build, inverting a photo, exporting) run in the engine's job thread beside
the renders, so the user keeps editing while they run; this panel is where they are watched and
stopped. It only reads :attr:`EngineClient.records <stylestudio.app.engine_client.EngineClient.records>`
and listens to ``jobs_changed``; cancelling goes through ``EngineClient.cancel``, and a training's
*Finish now* (end after this step, keep what it learnt) through ``EngineClient.finish``.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton, QToolButton,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from ..context import EditorContext
from ..engine_client import JobRecord
from . import PanelSpec, register_panel

COLUMNS = ("Job", "Progress", "Time left", "", "Result")
COL_TITLE, COL_PROGRESS, COL_ETA, COL_CANCEL, COL_RESULT = range(5)
STATE_TEXT = {"queued": "waiting", "running": "", "finished": "done", "failed": "failed", "cancelled": "cancelled"}


def eta_text(seconds: float | None) -> str:
    """"about 3 min" — plain words, rounded the way a person would."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def _row_button(text: str, tip: str, name: str, action: Callable[[], Any]) -> QToolButton:
    """One of a job row's buttons (Finish now, Cancel)."""
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setAccessibleName(name)
    button.clicked.connect(lambda _=False: action())
    return button


class JobsPanel(QWidget):
    """One row per job; the newest at the top."""

    def __init__(self, ctx: EditorContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.engine = ctx.engine
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAccessibleName("Jobs")
        header = self.tree.header()
        header.setSectionResizeMode(COL_TITLE, QHeaderView.ResizeMode.Stretch)
        for col in (COL_PROGRESS, COL_ETA, COL_CANCEL):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.empty = QLabel("No jobs yet. Long work — building a region catalog, opening a photo, "
                            "exporting — shows here and runs while you keep editing.")
        self.empty.setObjectName("Hint")
        self.empty.setWordWrap(True)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setToolTip("Remove ended jobs from the list")
        self.clear_button.clicked.connect(self.clear_finished)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.empty)
        lay.addWidget(self.tree, 1)
        lay.addLayout(buttons)
        self.items: dict[int, QTreeWidgetItem] = {}
        self.bars: dict[int, QProgressBar] = {}
        self.cancel_buttons: dict[int, QToolButton] = {}
        self.finish_buttons: dict[int, QToolButton] = {}
        self.timer = QTimer(self)  # the ETA moves on between progress reports
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._tick)
        self.engine.jobs_changed.connect(self._on_changed)
        for job_id in list(self.engine.records):
            self._on_changed(job_id)
        self._update_empty()

    # -- reading ----------------------------------------------------------------------------------
    def record(self, job_id: int) -> JobRecord | None:
        return self.engine.records.get(job_id)

    def row_text(self, job_id: int, column: int) -> str:
        item = self.items.get(job_id)
        return item.text(column) if item is not None else ""

    # -- actions ----------------------------------------------------------------------------------
    def cancel_job(self, job_id: int) -> None:
        """What the row's Cancel button does."""
        self.engine.cancel(job_id)

    def finish_job(self, job_id: int) -> None:
        """What a training row's *Finish now* button does."""
        self.engine.finish(job_id)

    def clear_finished(self) -> None:
        for job_id, rec in list(self.engine.records.items()):
            if not rec.active:
                del self.engine.records[job_id]
                item = self.items.pop(job_id, None)
                if item is not None:
                    self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
                self.bars.pop(job_id, None)
                self.cancel_buttons.pop(job_id, None)
                self.finish_buttons.pop(job_id, None)
        self._update_empty()

    # -- updates ----------------------------------------------------------------------------------
    def _on_changed(self, job_id: int) -> None:
        rec = self.engine.records.get(job_id)
        if rec is None:
            return
        item = self.items.get(job_id)
        if item is None:
            item = QTreeWidgetItem([rec.title, "", "", "", ""])
            item.setToolTip(COL_TITLE, rec.title)
            self.tree.insertTopLevelItem(0, item)
            self.items[job_id] = item
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setMaximumHeight(16)
            bar.setTextVisible(False)
            self.bars[job_id] = bar
            self.tree.setItemWidget(item, COL_PROGRESS, bar)
            button = self.cancel_buttons[job_id] = _row_button(
                "Cancel", f"Stop “{rec.title}”", f"Cancel {rec.title}", lambda i=job_id: self.cancel_job(i))
            finish = self.finish_buttons[job_id] = _row_button(
                "Finish now", f"End “{rec.title}” after its current step and keep what it has learnt",
                f"Finish {rec.title} now", lambda i=job_id: self.finish_job(i))
            cell = QWidget()
            row = QHBoxLayout(cell)
            row.setContentsMargins(0, 0, 0, 0)
            row.setSpacing(2)
            row.addWidget(finish)
            row.addWidget(button)
            self.tree.setItemWidget(item, COL_CANCEL, cell)
        self._show(rec, item)
        self._update_empty()
        if any(r.state == "running" for r in self.engine.records.values()):
            if not self.timer.isActive():
                self.timer.start()
        else:
            self.timer.stop()

    def _show(self, rec: JobRecord, item: QTreeWidgetItem) -> None:
        bar, button = self.bars[rec.id], self.cancel_buttons[rec.id]
        if rec.state == "running" and rec.fraction < 0:
            bar.setRange(0, 0)  # busy, amount unknown
        else:
            bar.setRange(0, 1000)
            bar.setValue(int(max(0.0, min(1.0, rec.fraction if rec.fraction >= 0 else 0.0)) * 1000))
        item.setText(COL_TITLE, rec.title)
        item.setToolTip(COL_TITLE, rec.message or rec.title)
        state = STATE_TEXT[rec.state]
        if rec.state == "running":
            item.setText(COL_ETA, eta_text(rec.eta_s()))
            item.setText(COL_RESULT, rec.message)
        else:
            item.setText(COL_ETA, state if rec.state == "queued" else self._took(rec))
            text = {"finished": rec.result, "failed": f"failed: {rec.result}"}.get(rec.state, state)
            item.setText(COL_RESULT, text)
        item.setToolTip(COL_RESULT, item.text(COL_RESULT))
        button.setVisible(rec.active)
        button.setEnabled(rec.active and rec.cancellable)
        self.finish_buttons[rec.id].setVisible(rec.active and rec.finish is not None)
        self.finish_buttons[rec.id].setEnabled(rec.can_finish)

    @staticmethod
    def _took(rec: JobRecord) -> str:
        if rec.started_at is None or rec.ended_at is None:
            return ""
        s = rec.ended_at - rec.started_at
        return f"took {s:.0f} s" if s < 120 else f"took {s / 60:.0f} min"

    def _tick(self) -> None:
        now = time.monotonic()
        for job_id, rec in self.engine.records.items():
            if rec.state == "running" and job_id in self.items:
                self.items[job_id].setText(COL_ETA, eta_text(rec.eta_s(now)))

    def _update_empty(self) -> None:
        has = bool(self.items)
        self.empty.setVisible(not has)
        self.clear_button.setEnabled(any(not r.active for r in self.engine.records.values()))


register_panel(PanelSpec("jobs", "Jobs", JobsPanel, area="right", order=95, icon="history",
                         shortcut="Ctrl+Shift+J", tab_with="history"))
