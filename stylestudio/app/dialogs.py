"""Small dialogs: preferences, keyboard shortcuts, about, and the Yes/Cancel questions asked before
something is lost (deleting or replacing a trained library, quitting while jobs run)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QMessageBox, QSpinBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget, QHeaderView)

from .settings import PREVIEW_SIZES, Settings

DEVICES = ("auto", "cpu", "cuda", "mps")


class PreferencesDialog(QDialog):
    """Device, preview size and speed, default model, autosave interval, theme, CPU threads."""

    def __init__(self, settings: Settings, models: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.device = QComboBox()
        self.device.setEditable(True)
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.device)
        self.device.setToolTip("auto: CUDA, then Apple MPS, else the CPU. Also cuda:N.")
        self.preview = QComboBox()
        for s in PREVIEW_SIZES:
            self.preview.addItem(f"{s} px", s)
        self.preview.setCurrentIndex(PREVIEW_SIZES.index(settings.preview_size))
        self.preview.setToolTip("Largest quick frame drawn while a slider moves (never below 256 px: the budget "
                                "below picks 256 when 512 would take longer)")
        self.budget = QSpinBox()
        self.budget.setRange(10, 2000)
        self.budget.setSuffix(" ms")
        self.budget.setValue(settings.preview_budget_ms)
        self.budget.setToolTip("While a slider moves, previews are drawn at the sharpest size that renders "
                               "within this time")
        self.fast = QCheckBox("Faster drag previews")
        self.fast.setChecked(settings.fast_previews)
        self.fast.setToolTip("Draw the previews shown while a slider moves in reduced precision (bfloat16) on "
                             "processors that compute it natively: about twice as fast, with differences of a "
                             "fraction of a grey level. The picture drawn when the slider is released is always exact.")
        self.model = QComboBox()
        self.model.addItems(models)
        self.model.setCurrentText(settings.model_name())
        self.autosave = QSpinBox()
        self.autosave.setRange(10, 3600)
        self.autosave.setSuffix(" s")
        self.autosave.setValue(settings.autosave_interval_s)
        self.theme = QComboBox()
        for label, key in (("Follow the system", "system"), ("Dark", "dark"), ("Light", "light")):
            self.theme.addItem(label, key)
        self.theme.setCurrentIndex(max(0, self.theme.findData(settings.theme)))
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("automatic")
        self.threads.setValue(settings.threads)
        self.threads.setToolTip("CPU threads for rendering (takes effect at the next start)")

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow("Compute device", self.device)
        form.addRow("CPU threads", self.threads)
        form.addRow("Largest preview", self.preview)
        form.addRow("Preview time budget", self.budget)
        form.addRow("", self.fast)
        form.addRow("Model for new documents", self.model)
        form.addRow("Autosave every", self.autosave)
        form.addRow("Theme", self.theme)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def apply_to(self, s: Settings) -> None:
        s.device = self.device.currentText().strip() or "auto"
        s.preview_size = int(self.preview.currentData())
        s.preview_budget_ms = int(self.budget.value())
        s.fast_previews = self.fast.isChecked()
        s.default_model = self.model.currentText()
        s.autosave_interval_s = int(self.autosave.value())
        s.theme = str(self.theme.currentData())
        s.threads = int(self.threads.value())
        s.validate()


class ShortcutsDialog(QDialog):
    """Every action with a shortcut, read from the actions themselves (so it is never stale)."""

    def __init__(self, actions: list[QAction], extra: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        rows = [(a.text().replace("&", "").rstrip("…").rstrip("."),
                 ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in a.shortcuts()))
                for a in actions if a.shortcuts()]
        rows += extra
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        for i, (name, keys) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(name))
            table.setItem(i, 1, QTableWidgetItem(keys))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        lay = QVBoxLayout(self)
        lay.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(460, 560)


ABOUT_HTML = """
<h3>StyleStudio {version}</h3>
<p>An offline portrait editor built on style-based face generators.</p>
<p>Everything runs on this computer; nothing is uploaded.</p>
<p><b>Default model.</b> MobileStyleGAN (Belousov 2021), distilled from NVIDIA's StyleGAN2-FFHQ.
The package is Apache-2.0, but the weights derive from StyleGAN2 (NVIDIA Source Code Licence,
non-commercial) and the FFHQ data set (CC BY-NC-SA 4.0): pictures made with the default model are
for non-commercial use.</p>
"""


def about_text() -> str:
    from .. import __version__

    return ABOUT_HTML.format(version=__version__)


def make_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    return label


def stop_jobs_question(jobs: list[str]) -> str:
    """What a person reads before quitting stops ``jobs`` (their titles with progress)."""
    listed = "\n".join(f"• {j}" for j in jobs[:8]) + (f"\n• … and {len(jobs) - 8} more" if len(jobs) > 8 else "")
    return (f"{'A job is' if len(jobs) == 1 else f'{len(jobs)} jobs are'} still running:\n{listed}\n\nQuitting stops "
            f"{'it' if len(jobs) == 1 else 'them'}: what is not saved yet is lost (a model training resumes from its "
            f"last checkpoint when started again).")


def confirm_dialog(parent: QWidget, question: str, action: str = "Delete") -> bool:
    """Ask ``question``: ``action`` / Cancel, Cancel the default (what would be lost — a trained
    library, a running training — took minutes to make)."""
    box = QMessageBox(QMessageBox.Icon.Question, action, question,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    box.button(QMessageBox.StandardButton.Yes).setText(action)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    try:
        return box.exec() == QMessageBox.StandardButton.Yes
    finally:
        box.deleteLater()  # never left alive as the parent's child (app/modal.py)
