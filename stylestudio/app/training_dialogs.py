"""Models ▸ Train Model… and Models ▸ Model Report…: dialogs that only build engine requests.

The Train dialog builds a :class:`~stylestudio.engine.tasks.train.TrainModel` and submits it to the
job thread (the Jobs panel shows losses, kimg/s and ETA, and cancels; running the same name again
resumes from its checkpoint) and opens a :class:`~.training_fakes.TrainingFakes` window with the
model's faces refreshed as it learns. The Model report measures the current model with
:class:`MeasurePPL` / :class:`MeasureFD` / :class:`MeasureALS` jobs and lists each value with its
95 % interval as it arrives.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ..engine.model_store import ModelStore, validate_name
from ..engine.tasks.metrics import MeasureALS, MeasureFD, MeasurePPL
from ..engine.tasks.train import TrainModel
from ..errors import InputError, StyleStudioError
from .modal import modal
from .training_fakes import TrainingFakes

if TYPE_CHECKING:
    from .main_window import MainWindow

RESOLUTIONS = (32, 64, 128, 256, 512, 1024)


def _folder_row(parent: QWidget, title: str) -> tuple[QLineEdit, QWidget]:
    edit = QLineEdit()
    edit.setAccessibleName(title)
    button = QPushButton("Choose…")

    def choose() -> None:
        path = QFileDialog.getExistingDirectory(parent, title, edit.text() or str(Path.home()))
        if path:
            edit.setText(path)

    button.clicked.connect(choose)
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    lay.addWidget(button)
    return edit, row


class TrainDialog(QDialog):
    """What to train on, how big, from what, for how long; :meth:`request` builds the request."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train Model")
        form = QFormLayout(self)
        info = QLabel("A StyleGAN2 learns from a folder of your pictures (prepared once; unreadable ones are "
                      "skipped and listed). Training runs as a job beside your editing and writes a checkpoint "
                      "every few minutes: training the same name again resumes it.")
        info.setWordWrap(True)
        form.addRow(info)
        self.data_edit, row = _folder_row(self, "Pictures")
        form.addRow("Pictures", row)
        self.align_box = QCheckBox("Portraits: cut out every face as photos are imported (FFHQ alignment)")
        self.align_box.setToolTip("Pictures without a face are skipped and listed; without this, each picture's "
                                  "central square is used as it is")
        form.addRow("", self.align_box)
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName("Model name")
        form.addRow("Model name", self.name_edit)
        self.resolution_box = QComboBox()
        for r in RESOLUTIONS:
            self.resolution_box.addItem(f"{r} × {r}", r)
        self.resolution_box.setCurrentIndex(RESOLUTIONS.index(64))
        form.addRow("Resolution", self.resolution_box)
        self.from_box = QComboBox()
        self.from_box.addItem("a new model", None)
        store = ModelStore()
        for name in store.names():
            try:
                if store.info(name).arch == "stylegan2":
                    self.from_box.addItem(f"fine-tune {name}", name)
            except StyleStudioError:
                continue
        self.from_box.setToolTip("Fine-tuning keeps the model's resolution; only StyleGAN2 models can be "
                                 "fine-tuned (the built-in MobileStyleGAN has no discriminator)")
        form.addRow("Start from", self.from_box)
        self.hsr_box = QCheckBox("HSR: align the generator's features with VGG16's (smoother edits)")
        self.hsr_box.setChecked(True)
        form.addRow("", self.hsr_box)
        self.kimg_box = QDoubleSpinBox()
        self.kimg_box.setRange(0.001, 100000)
        self.kimg_box.setDecimals(3)
        self.kimg_box.setValue(100)
        self.kimg_box.setSuffix(" thousand images")
        form.addRow("Train for", self.kimg_box)
        self.minutes_box = QDoubleSpinBox()
        self.minutes_box.setRange(0, 7 * 24 * 60)
        self.minutes_box.setDecimals(1)
        self.minutes_box.setSuffix(" min")
        self.minutes_box.setSpecialValueText("no limit")
        self.minutes_box.setToolTip("Stop after this long even if the images above are not reached (a CPU "
                                    "trains slowly); training the same name again goes on from there")
        form.addRow("Or stop after", self.minutes_box)
        self.batch_box = QSpinBox()
        self.batch_box.setRange(1, 256)
        self.batch_box.setValue(16)
        form.addRow("Batch", self.batch_box)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d66")
        form.addRow(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Train")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def request(self) -> TrainModel:
        data = self.data_edit.text().strip()
        if not data or not Path(data).is_dir():
            raise InputError("choose a folder of pictures")
        name = validate_name(self.name_edit.text().strip())
        source = self.from_box.currentData()
        return TrainModel(name, Path(data), None if source else int(self.resolution_box.currentData()),
                          from_model=source, hsr="vgg16" if self.hsr_box.isChecked() else "none",
                          kimg=float(self.kimg_box.value()), minutes=self.minutes_box.value() or None,
                          batch=int(self.batch_box.value()),
                          align_faces=self.align_box.isChecked())

    def _accept(self) -> None:
        try:
            self.request()
        except StyleStudioError as exc:
            self.error_label.setText(str(exc))
            return
        self.accept()


def train_model(window: "MainWindow") -> int:
    """Models ▸ Train Model…: ask, then submit the training job (0 when cancelled)."""
    dlg = TrainDialog(window)
    with modal(dlg) as accepted:
        if not accepted:
            return 0
        request = dlg.request()
    # one window per run, parented to the main window and never deleted while its job may still send
    fakes = TrainingFakes(request.name, window)
    request = dataclasses.replace(request, on_fakes=fakes.sender_for_job())
    window.training_fakes = fakes  #: the window of the run started last

    def done(outcome: Any) -> None:
        window.models.fill()
        window.statusBar().showMessage(f"Trained {outcome.summary()}", 15000)

    job = window.run_task(request, done, "Training failed")
    fakes.show()
    return job


class ModelReport(QDialog):
    """The current model's PPL, FD-VGG and ALS with their intervals, each measured as a job."""

    COLUMNS = ("Metric", "Value", "95 % interval", "Samples")

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.model = window.holder.doc.model
        self.setWindowTitle(f"Model Report — {self.model}")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.samples_box = QSpinBox()
        self.samples_box.setRange(2, 1_000_000)
        self.samples_box.setValue(1000)
        self.samples_box.setToolTip("PPL and FD use this many samples (NVlabs: 50 000); ALS a tenth of it")
        form.addRow("Samples", self.samples_box)
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2 ** 31 - 1)
        form.addRow("Seed", self.seed_box)
        self.data_edit, row = _folder_row(self, "Pictures for FD-VGG")
        form.addRow("Pictures (FD)", row)
        lay.addLayout(form)
        buttons = QHBoxLayout()
        self.ppl_button = QPushButton("Measure PPL")
        self.ppl_button.clicked.connect(self.measure_ppl)
        self.fd_button = QPushButton("Measure FD-VGG")
        self.fd_button.clicked.connect(self.measure_fd)
        self.als_button = QPushButton("Measure ALS")
        self.als_button.clicked.connect(self.measure_als)
        for b in (self.ppl_button, self.fd_button, self.als_button):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setMinimumWidth(560)  # the four columns side by side, the interval on one line
        lay.addWidget(self.table)
        note = QLabel("PPL: NVlabs ppl2_wend (LPIPS-VGG16). FD-VGG: Fréchet distance in VGG16 features — not FID, "
                      "whose Inception weights are not available offline. ALS needs the model's attribute sliders.")
        note.setWordWrap(True)
        lay.addWidget(note)
        self.results: dict[str, Any] = {}

    def _submit(self, request: Any) -> int:
        return self.window.run_task(request, self.show_result, "Measuring the model failed")

    def measure_ppl(self) -> int:
        return self._submit(MeasurePPL(self.model, self.samples_box.value(), self.seed_box.value()))

    def measure_fd(self) -> int:
        data = self.data_edit.text().strip()
        if not data:
            self.window.report_error("Model Report", "Choose a folder of pictures (or a prepared dataset) to "
                                                     "compare the model's faces with.")
            return 0
        return self._submit(MeasureFD(self.model, Path(data), self.samples_box.value(), self.seed_box.value()))

    def measure_als(self) -> int:
        return self._submit(MeasureALS(self.model, max(2, self.samples_box.value() // 10), self.seed_box.value()))

    def show_result(self, result: Any) -> None:
        self.results[result.metric] = result
        rows = [self.table.item(r, 0).text() for r in range(self.table.rowCount())]
        row = rows.index(result.metric) if result.metric in rows else self.table.rowCount()
        if row == self.table.rowCount():
            self.table.insertRow(row)
        value, low, high = (figure(x, result.value) for x in (result.value, result.low, result.high))
        asked = getattr(result, "details", {}).get("asked")  # finished early: fewer measured than asked for
        samples = f"{result.samples} (finished early)" if asked else str(result.samples)
        for col, text in enumerate((result.metric, value, f"{low} … {high}", samples)):
            item = QTableWidgetItem(text)
            if asked:
                item.setToolTip(f"Finished early: {result.settings.get('samples')} of {asked} samples measured")
            self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()


def figure(x: float, like: float) -> str:
    """``x`` with as many decimals as three significant digits of ``like`` need (132, 0.652, 1.31):
    a value and its interval read alike, without digits the interval says are noise."""
    if not math.isfinite(x) or not math.isfinite(like):
        return f"{x:g}"
    decimals = max(0, 2 - math.floor(math.log10(abs(like)))) if like else 3
    return f"{x:.{decimals}f}"


def model_report(window: "MainWindow") -> ModelReport:
    """Models ▸ Model Report…: a non-modal report of the current model."""
    dlg = ModelReport(window)
    dlg.show()
    return dlg
