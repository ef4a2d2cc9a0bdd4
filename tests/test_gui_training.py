"""Models ▸ Train Model… and Models ▸ Model Report…: the dialogs build requests, the jobs run in the job
thread, the trained model appears in the Models menu and the report shows values with intervals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from test_gui_support import TINY, close_window, make_window

pytestmark = pytest.mark.gui


@pytest.fixture
def pictures(tmp_path) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return folder


@pytest.mark.slow  # a training job and a PPL job on the shared machine: ≈30 s
def test_train_dialog_fine_tunes_and_the_report_measures(qtbot, pictures: Path) -> None:
    from stylestudio.app.training_dialogs import ModelReport, TrainDialog
    from stylestudio.engine.model_store import ModelStore

    w = make_window(qtbot)
    try:
        seen: dict = {}

        def drive() -> None:
            dlg = QApplication.activeModalWidget()
            assert isinstance(dlg, TrainDialog)
            ok = dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
            ok.click()  # nothing filled in: one line says what is missing, the dialog stays
            seen["error"] = dlg.error_label.text()
            dlg.data_edit.setText(str(pictures))
            dlg.name_edit.setText("gui-trained")
            dlg.from_box.setCurrentIndex(dlg.from_box.findData(TINY))
            dlg.hsr_box.setChecked(False)
            dlg.kimg_box.setValue(0.004)
            dlg.batch_box.setValue(4)
            ok.click()

        before = set(w.engine.records)
        QTimer.singleShot(0, drive)
        w.actions_by_name["train_model"].trigger()
        assert "folder of pictures" in seen["error"]
        new = set(w.engine.records) - before
        assert len(new) == 1
        rec = w.engine.records[new.pop()]
        assert rec.lane == "long" and rec.request.from_model == TINY and rec.request.hsr == "none"
        qtbot.waitUntil(lambda: rec.state in ("finished", "failed", "cancelled"), timeout=180000)
        assert rec.state == "finished", rec.result
        assert "gui-trained" in rec.result and "1 steps" in rec.result
        assert ModelStore().has("gui-trained")
        w.models.fill()
        assert any(a.text().startswith("gui-trained") for a in w.models.actions)

        w.actions_by_name["model_report"].trigger()
        report = next(d for d in w.findChildren(ModelReport))
        assert report.model == TINY
        report.samples_box.setValue(6)
        job = report.measure_ppl()
        rec = w.engine.records[job]
        assert rec.finish is not None  # the Jobs panel offers Finish now: the value of the samples so far
        qtbot.waitUntil(lambda: rec.state in ("finished", "failed", "cancelled"), timeout=120000)
        assert rec.state == "finished", rec.result
        qtbot.waitUntil(lambda: report.table.rowCount() == 1, timeout=5000)
        assert report.table.item(0, 0).text() == "ppl_wend"
        value = report.results["ppl_wend"]
        assert np.isfinite(value.value) and value.low <= value.value <= value.high
        assert "…" in report.table.item(0, 2).text()
        report.close()
    finally:
        close_window(w)


@pytest.mark.slow  # a short fine-tuning job on the shared machine: ≈20-40 s
def test_train_dialog_opens_a_grid_of_fakes_that_updates_as_it_learns(qtbot, pictures: Path) -> None:
    from stylestudio.app.training_dialogs import TrainDialog
    from stylestudio.app.training_fakes import TrainingFakes

    w = make_window(qtbot)
    try:
        def drive() -> None:
            dlg = QApplication.activeModalWidget()
            assert isinstance(dlg, TrainDialog)
            dlg.data_edit.setText(str(pictures))
            dlg.name_edit.setText("gui-fakes")
            dlg.from_box.setCurrentIndex(dlg.from_box.findData(TINY))
            dlg.hsr_box.setChecked(False)
            dlg.kimg_box.setValue(0.008)  # two steps of 4
            dlg.batch_box.setValue(4)
            dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()

        before = set(w.engine.records)
        QTimer.singleShot(0, drive)
        w.actions_by_name["train_model"].trigger()
        rec = w.engine.records[(set(w.engine.records) - before).pop()]
        window = w.training_fakes
        assert isinstance(window, TrainingFakes) and window.isVisible() and not window.isModal()
        qtbot.waitUntil(lambda: window.grids >= 1, timeout=120000)  # the faces the run starts from
        assert window.caption.text().startswith("step 0,")
        first = window.image.pixmap().toImage()
        assert not first.isNull() and first.width() >= 384
        window.close()  # closing the window does not stop the training
        qtbot.waitUntil(lambda: rec.state in ("finished", "failed", "cancelled"), timeout=180000)
        assert rec.state == "finished", rec.result
        qtbot.waitUntil(lambda: window.grids >= 2, timeout=5000)
        assert window.caption.text().startswith("step 2,") and "fakes.png" in window.caption.text()
        assert window.image.pixmap().toImage() != first  # the model learned: new faces
    finally:
        close_window(w)


def test_train_dialog_asks_for_face_alignment(qtbot, pictures: Path) -> None:
    from stylestudio.app.training_dialogs import TrainDialog

    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    dlg.data_edit.setText(str(pictures))
    dlg.name_edit.setText("portraits")
    assert dlg.request().align_faces is False  # off by default: the central square, as before
    dlg.align_box.click()
    assert dlg.request().align_faces is True and "FFHQ" in dlg.align_box.text()


def test_train_dialog_takes_a_time_limit_beside_the_images(qtbot, pictures: Path) -> None:
    """As the CLI's --kimg and --minutes: training stops at whichever comes first."""
    from stylestudio.app.training_dialogs import TrainDialog

    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    dlg.data_edit.setText(str(pictures))
    dlg.name_edit.setText("budgeted")
    assert dlg.minutes_box.text() == "no limit" and dlg.request().minutes is None
    dlg.minutes_box.setValue(45)
    request = dlg.request()
    assert request.minutes == 45 and request.kimg == 100


def test_the_model_report_shows_a_value_and_its_interval_alike_and_every_column(qtbot) -> None:
    from types import SimpleNamespace

    from stylestudio.app.training_dialogs import ModelReport, figure

    assert [figure(x, 132.24) for x in (132.24, 92.706, 179.11)] == ["132", "93", "179"]
    assert [figure(x, 0.6521) for x in (0.6521, 0.629, 0.6764)] == ["0.652", "0.629", "0.676"]
    assert figure(float("nan"), 1.0) == "nan" and figure(0.0, 0.0) == "0.000"
    w = make_window(qtbot)
    try:
        report = ModelReport(w)
        qtbot.addWidget(report)
        report.show()
        report.show_result(SimpleNamespace(metric="ppl_wend", value=132.24, low=92.706, high=179.11, samples=40))
        report.show_result(SimpleNamespace(metric="als", value=0.6521, low=0.629, high=0.6764, samples=100))
        report.resize(report.minimumSize().expandedTo(report.minimumSizeHint()))  # as narrow as it goes
        qtbot.wait(50)
        texts = [[report.table.item(r, c).text() for c in range(4)] for r in range(2)]
        assert texts == [["ppl_wend", "132", "93 … 179", "40"], ["als", "0.652", "0.629 … 0.676", "100"]]
        header = report.table.horizontalHeader()
        assert header.length() <= report.table.viewport().width()  # "Samples" on screen, nothing scrolled
        # a PPL finished early (the Jobs panel's Finish now) says so in its row
        report.show_result(SimpleNamespace(metric="ppl_wend", value=130.0, low=90.0, high=170.0, samples=38,
                                           settings={"samples": 40}, details={"asked": 50000}))
        assert report.table.rowCount() == 2 and report.table.item(0, 3).text() == "38 (finished early)"
        assert report.table.item(0, 1).toolTip() == "Finished early: 40 of 50000 samples measured"
    finally:
        close_window(w)
