"""File ▸ Apply to Folder…: the current document's edits on every portrait of a folder.

The dialog only builds a request (:class:`~stylestudio.engine.tasks.batch.ApplyToFolder`): the
recipe is the document's edits the user leaves ticked (its face is not part of it), plus the
folders, which faces, the inversion's time budget and fine-tuning, the output format and how
many worker processes. :func:`apply_to_folder` submits it to the job thread, so the batch shows
in the Jobs panel with progress, time left and cancel while editing goes on; each finished photo
is named in the status bar and shown, before → after, in a live strip (:mod:`.batch_strip`).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QSpinBox, QWidget)

from .batch_strip import BatchStrip
from .modal import modal
from ..engine.document import EditDocument
from ..errors import InputError

if TYPE_CHECKING:
    from .main_window import MainWindow

FORMATS = (("jpg", "JPEG"), ("png", "PNG — lossless"), ("tif", "TIFF — lossless"))
FACES = (("all", "Every face in each photo"), ("largest", "The largest face in each photo"))


#: an edit's kind as the dialog names it
EDIT_KINDS = {"direction": "Slider", "textpath": "Text path", "transfer": "Region"}


class ApplyToFolderDialog(QDialog):
    """What to apply, where, and how; :meth:`request` builds the engine request."""

    def __init__(self, doc: EditDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Apply to Folder")
        self.doc = doc
        form = QFormLayout(self)
        info = QLabel("Every face of every photo in the folder (sub-folders too) is inverted into "
                      f"{doc.model}, gets the ticked edits, and is pasted back into the whole photo. "
                      "Photos already done are skipped when the same batch runs again.")
        info.setWordWrap(True)
        form.addRow(info)

        self.edit_list = QListWidget()
        self.edit_list.setAccessibleName("Edits to apply")
        for e in doc.edits:
            if not e.enabled:
                continue
            text = f"{EDIT_KINDS.get(e.kind, e.kind)}: {e.describe()}"
            item = QListWidgetItem(text)
            item.setToolTip(text)
            item.setData(Qt.ItemDataRole.UserRole, e.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.edit_list.addItem(item)
        # long descriptions ("… keeping age, gender, yaw, …") wrap instead of scrolling sideways
        self.edit_list.setWordWrap(True)
        self.edit_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.edit_list.setMaximumHeight(120)
        form.addRow("Edits", self.edit_list)

        self.input_edit, row = self._folder_row("Photos")
        form.addRow("Photos", row)
        self.output_edit, row = self._folder_row("Results")
        form.addRow("Results", row)

        self.faces_box = QComboBox()
        for key, text in FACES:
            self.faces_box.addItem(text, key)
        form.addRow("Faces", self.faces_box)

        self.budget_box = QDoubleSpinBox()
        self.budget_box.setRange(0, 3600)
        self.budget_box.setDecimals(0)
        self.budget_box.setSuffix(" s")
        self.budget_box.setSpecialValueText("no limit (fixed steps: the same result every time)")
        self.budget_box.setToolTip("Seconds per face for the whole inversion (the best likeness in that time "
                                   "is kept); a limit makes results depend on the machine's speed")
        form.addRow("Time per face", self.budget_box)
        self.steps_box = QSpinBox()
        self.steps_box.setRange(0, 10000)
        from ..engine.inversion import PTI_CHOICES, InversionSettings

        self.steps_box.setValue(InversionSettings().steps)
        self.steps_box.setToolTip("Refinement steps per face (0: the first estimate only, fastest)")
        form.addRow("Steps per face", self.steps_box)
        self.pti_box = QComboBox()
        for key, text in PTI_CHOICES:
            self.pti_box.addItem(text, key)
        self.pti_box.setToolTip("Fine-tuning the generator around a face (PTI) gives a closer likeness to a face far "
                                "from the model's range (small, blurred, unusual), in the same time; a face near "
                                "it gains nothing")
        form.addRow("Fine-tune for identity", self.pti_box)

        self.format_box = QComboBox()
        for key, text in FORMATS:
            self.format_box.addItem(text, key)
        self.quality_box = QSpinBox()
        self.quality_box.setRange(1, 100)
        self.quality_box.setValue(doc.export.quality)
        self.quality_box.setToolTip("JPEG quality")
        fmt = QHBoxLayout()
        fmt.addWidget(self.format_box, 1)
        fmt.addWidget(QLabel("quality"))
        fmt.addWidget(self.quality_box)
        form.addRow("Format", fmt)
        self.projects_box = QCheckBox("Also save a project per face (to open and tweak)")
        form.addRow("", self.projects_box)
        self.jobs_box = QSpinBox()
        self.jobs_box.setRange(1, max(1, os.cpu_count() or 1))
        self.jobs_box.setToolTip("Worker processes, each with its own copy of the model")
        form.addRow("Processes", self.jobs_box)

        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #c33")
        self.error_label.setWordWrap(True)
        form.addRow(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("&Start")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _folder_row(self, what: str) -> tuple[QLineEdit, QHBoxLayout]:
        edit = QLineEdit()
        edit.setMinimumWidth(320)
        edit.setAccessibleName(f"{what} folder")
        browse = QPushButton("Browse…")

        def pick() -> None:
            folder = QFileDialog.getExistingDirectory(self, f"{what} folder", edit.text())
            if folder:
                edit.setText(folder)

        browse.clicked.connect(pick)
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(browse)
        return edit, row

    def chosen_edits(self) -> list[str]:
        items = (self.edit_list.item(i) for i in range(self.edit_list.count()))
        return [it.data(Qt.ItemDataRole.UserRole) for it in items if it.checkState() == Qt.CheckState.Checked]

    def request(self) -> Any:
        """The batch request for what is chosen; :class:`InputError` says what is missing."""
        from ..engine.batch import BatchJob, Recipe
        from ..engine.inversion import InversionSettings, with_pti
        from ..engine.tasks.batch import ApplyToFolder

        ids = self.chosen_edits()
        if not ids:
            raise InputError("tick at least one edit to apply")
        src, out = self.input_edit.text().strip(), self.output_edit.text().strip()
        if not src or not Path(src).is_dir():
            raise InputError("choose the folder of photos")
        if not out:
            raise InputError("choose a folder for the results")
        if os.path.realpath(src) == os.path.realpath(out):
            raise InputError("the results need another folder than the photos (the originals stay untouched)")
        steps = self.steps_box.value()
        settings = with_pti(dataclasses.replace(InversionSettings(), steps=steps, optimise=steps > 0,
                                                    time_budget=self.budget_box.value() or None),
                                self.pti_box.currentData())
        job = BatchJob(Recipe.from_document(self.doc, ids), Path(src), Path(out), faces=self.faces_box.currentData(),
                       format=self.format_box.currentData(), quality=self.quality_box.value(),
                       save_projects=self.projects_box.isChecked(), inversion=settings)
        return ApplyToFolder(job, jobs=self.jobs_box.value())

    def _accept(self) -> None:
        try:
            self.request()
        except InputError as exc:
            self.error_label.setText(str(exc))
            return
        self.accept()


class BatchRunner(QObject):
    """Submits batches and reports each finished photo (from the job thread) in the status bar."""

    photo_done = Signal(object)  #: a PhotoRecord, delivered in the GUI thread

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.results: list[Any] = []  #: finished batches' results, newest last
        self.strip: BatchStrip | None = None  #: the live results of the batch submitted last
        self.photo_done.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def submit(self, request: Any) -> int:
        request = dataclasses.replace(request, on_photo=self.photo_done.emit)
        output = request.job.output_dir

        def done(result: Any) -> None:
            self.results.append(result)
            self.window.statusBar().showMessage(f"Batch finished: {result.line()} — report in {output}", 15000)

        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from ..safe_io import os_error_message

            self.window.report_error("Apply to Folder", os_error_message(output, exc))
            return 0
        if self.strip is not None:  # the previous batch's strip makes room for this one's
            self.strip.hide()
            self.strip.deleteLater()
        self.strip = BatchStrip(output, None, self.window)
        self.strip.show()
        return self.window.run_task(request, done, "Apply to Folder failed")

    def _show(self, rec: Any) -> None:
        self.window.statusBar().showMessage(f"Batch: {rec.line()}", 8000)
        if self.strip is not None:
            self.strip.add(rec)


def apply_to_folder(window: "MainWindow") -> int:
    """File ▸ Apply to Folder…: ask, then submit (0 when cancelled or nothing to apply)."""
    doc = window.renders.stamped(window.holder.doc)  # with its sliders' library copies, as a save keeps them
    if not any(e.enabled for e in doc.edits):
        window.report_error("Apply to Folder", "This document has no edits yet: edit a face first, then apply "
                                               "its edits to a folder.")
        return 0
    dlg = ApplyToFolderDialog(doc, window)
    with modal(dlg) as accepted:
        if not accepted:
            return 0
        request = dlg.request()
    return batch_runner(window).submit(request)


def batch_runner(window: "MainWindow") -> BatchRunner:
    runner = getattr(window, "_batch_runner", None)
    if runner is None:
        runner = window._batch_runner = BatchRunner(window)
    return runner
