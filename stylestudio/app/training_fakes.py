"""The live grid of a training run: the model's faces for fixed latents, refreshed as it learns.

Losses and kimg/s say little to an artist about whether a run is going anywhere; the same 16
faces turning from blobs into portraits do. The trainer renders the grid (and writes
``fakes.png``) and hands it to the request's ``on_fakes`` from the job thread; this window only
shows the latest one. Closing it hides it: the training job goes on (cancel it in the Jobs panel).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

from .qimage_arrays import qimage_from_array

if TYPE_CHECKING:
    from .main_window import MainWindow

SHOWN_PX = 384  #: the grid is shown at least this big (a 16 px run's grid is 64 px)


class TrainingFakes(QDialog):
    """A non-modal window with the newest grid of fakes of one training run."""

    grid_ready = Signal(object)  #: a FakesGrid, emitted from the job thread, shown in the GUI thread

    def __init__(self, name: str, window: "MainWindow", parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle(f"Training {name} — faces as it learns")
        self.setModal(False)
        self.grids = 0  #: grids shown so far
        self.caption = QLabel("Waiting for the first faces (the pictures are prepared first)…")
        self.caption.setWordWrap(True)
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(SHOWN_PX, SHOWN_PX)
        self.image.setToolTip("The same latents all run long, drawn by the averaged (EMA) generator; "
                              "also saved as fakes.png in the run's folder")
        lay = QVBoxLayout(self)
        lay.addWidget(self.caption)
        lay.addWidget(self.image, 1)
        self.grid_ready.connect(self.show_grid, Qt.ConnectionType.QueuedConnection)

    def sender_for_job(self) -> Callable[[Any], None]:
        """What the request's ``on_fakes`` calls (in the job thread); harmless once this window is gone."""

        def send(grid: Any) -> None:
            try:
                self.grid_ready.emit(grid)
            except RuntimeError:  # the window was deleted (the app is closing): training goes on
                pass

        return send

    def show_grid(self, grid: Any) -> None:
        pix = QPixmap.fromImage(qimage_from_array(grid.image))
        side = max(SHOWN_PX, pix.width())
        self.image.setPixmap(pix.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.FastTransformation))  # crisp pixels
        self.grids += 1
        self.caption.setText(f"{grid.caption()} — {grid.path}")
