"""The Build Region Catalog dialog: how many clusters and sample faces a new catalog gets."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox, QWidget

from ...engine.regions.catalog import DEFAULT_K


class BuildCatalogDialog(QDialog):
    """K and the number of sample faces for a new catalog."""

    def __init__(self, model: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Build Region Catalog")
        self.k = QSpinBox()
        self.k.setRange(2, 64)
        self.k.setValue(DEFAULT_K)
        self.samples = QSpinBox()
        self.samples.setRange(8, 5000)
        self.samples.setValue(200)
        form = QFormLayout(self)
        info = QLabel(f"Sample faces of {model}, cluster one of its layers into K semantic parts and measure "
                      "which style channels act on each. Takes a while on a CPU; it can be cancelled.")
        info.setWordWrap(True)
        form.addRow(info)
        form.addRow("Clusters (K)", self.k)
        form.addRow("Sample faces", self.samples)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
