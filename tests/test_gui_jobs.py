"""Long jobs beside live editing: a catalog build runs while a slider is dragged.

The build runs in the job thread with its own model copy, so frames asked for during it keep
arriving before it ends (on the old single worker thread they all waited for the job); it then
shows its result in the Jobs panel; a second build is cancelled from the Jobs panel.
"""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from test_gui_support import TINY, close_window, make_window, wait_final, wait_sliders  # noqa: F401

pytestmark = pytest.mark.gui


def _remove_catalog() -> None:
    from stylestudio.engine.regions.catalog import user_catalog_path

    p = user_catalog_path(TINY)
    for f in (p, p.with_suffix(".npz")):
        f.unlink(missing_ok=True)


class Drag:
    """Holds a slider's handle down and moves it back and forth, one step per call."""

    def __init__(self, slider) -> None:
        self.slider = slider
        self.margin = 7
        self.width = slider.width() - 2 * self.margin
        self.steps = 0
        frac = (slider.value() - slider.minimum()) / (slider.maximum() - slider.minimum())
        QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, self.pos(frac))
        assert slider.isSliderDown(), "the press did not grab the handle"

    def pos(self, f: float) -> QPoint:
        return QPoint(round(self.margin + f * self.width), self.slider.height() // 2)

    def step(self) -> None:
        self.steps += 1
        QTest.mouseMove(self.slider, self.pos(0.35 + 0.3 * ((self.steps * 7) % 11) / 10))

    def release(self) -> None:
        QTest.mouseRelease(self.slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, self.pos(0.5))



def _training(label: str, release):
    """A stand-in for a long training job: reports "<label> i" until ``release`` is set or it is cancelled."""
    def training(session, ctx):
        for i in range(3000):
            ctx.progress(f"{label} {i}", min(0.99, i / 3000))  # raises once cancelled
            if release.wait(0.01):
                break
        return "trained"

    return training

def test_a_catalog_build_runs_while_a_slider_is_dragged_and_can_be_cancelled(qtbot):
    _remove_catalog()
    w = make_window(qtbot)
    try:
        regions, jobs = w.panel("regions"), w.panel("jobs")
        qtbot.waitUntil(lambda: regions.catalog_missing, timeout=10000)
        row = wait_sliders(qtbot, w).rows[0]
        w.docks["sliders-sefa"].raise_()
        qtbot.waitUntil(row.slider.isVisible, timeout=5000)
        frames: list = []
        w.engine.rendered.connect(frames.append)
        started: dict[int, int] = {}  # job id → the newest render seq when it started
        w.engine.job_started.connect(lambda jid, *_: started.setdefault(jid, w._latest_seq))

        job = regions.build_catalog(k=6, samples=400)  # ≈10 s of work on one job thread
        rec = w.engine.records[job]
        assert rec.lane == "jobs" and jobs.row_text(job, 0).startswith("Build region catalog")
        qtbot.waitUntil(lambda: job in started and rec.state == "running", timeout=20000)
        start_seq = started[job]

        during: list = []
        drag = Drag(row.slider)
        while rec.state == "running":  # drag for as long as the job runs: it must still finish
            drag.step()
            qtbot.wait(40)
            if rec.state == "running":
                during = [f for f in frames if f.seq > start_seq]
        drag.release()
        assert len(during) >= 4, (f"only {len(during)} frames asked for after the job started arrived "
                                  f"before it ended: the job blocked the renders")
        assert any(f.quality == "preview" for f in during)

        qtbot.waitUntil(lambda: rec.state != "running", timeout=120000)
        assert rec.state == "finished", rec.result
        assert "6 clusters" in jobs.row_text(job, 4)
        qtbot.waitUntil(lambda: regions.catalog is not None, timeout=10000)
        assert regions.catalog["k"] == 6
        assert not jobs.cancel_buttons[job].isVisible() or not jobs.cancel_buttons[job].isEnabled()
        wait_final(qtbot, w)

        # a second run, cancelled from the Jobs panel's own button
        second = regions.build_catalog(k=6, samples=5000)
        rec2 = w.engine.records[second]
        qtbot.waitUntil(lambda: rec2.state == "running" and rec2.fraction > 0, timeout=30000)
        w.docks["jobs"].show()
        w.docks["jobs"].raise_()
        button = jobs.cancel_buttons[second]
        assert button.isEnabled()
        button.click()
        qtbot.waitUntil(lambda: not rec2.active, timeout=30000)
        assert rec2.state == "cancelled"
        assert jobs.row_text(second, 4) == "cancelled"
        assert regions.catalog is not None  # the first build's catalog is still in use
    finally:
        close_window(w)


def test_the_job_thread_yields_to_the_render_thread(qtbot):
    """Jobs run with fewer torch threads and a lower OS priority than renders; renders keep theirs."""
    import os
    import sys
    import threading

    import torch

    w = make_window(qtbot)
    try:
        seen: dict[str, tuple] = {}

        def probe(lane: str):
            def fn(session, ctx):
                tid = threading.get_native_id()
                nice = os.getpriority(os.PRIO_PROCESS, tid) if sys.platform.startswith("linux") else 0
                return torch.get_num_threads(), nice, threading.current_thread().name, id(session)
            w.engine.submit(f"probe {lane}", fn, lambda r: seen.__setitem__(lane, r), lane=lane, quiet=True)

        probe("render")
        probe("jobs")
        qtbot.waitUntil(lambda: len(seen) == 2, timeout=20000)
        (r_threads, r_nice, _, r_session), (j_threads, j_nice, _, j_session) = seen["render"], seen["jobs"]
        assert r_session != j_session  # each thread has its own session (and model copies)
        if "OpenMP" in torch.__config__.parallel_info():
            from stylestudio.app.thread_priority import PROCESS_TORCH_THREADS

            # the render thread sets the process's count for itself (other tests may have
            # changed the main thread's since): it never inherits the job thread's one
            assert j_threads == 1 and r_threads == PROCESS_TORCH_THREADS
        if sys.platform.startswith("linux") and w.engine.job_worker.priority.get("nice") is not None:
            assert j_nice > r_nice
    finally:
        close_window(w)


def test_jobs_queue_in_the_panel_and_a_queued_one_is_cancelled_before_it_runs(qtbot):
    import threading

    from stylestudio.app.panels.jobs import eta_text

    w = make_window(qtbot)
    try:
        jobs = w.panel("jobs")
        release = threading.Event()
        ran: list[str] = []

        def slow(name: str):
            def fn(session, ctx):
                ran.append(name)
                for i in range(200):
                    ctx.progress(f"{name} step {i}", 0.1 + i / 400)  # raises once cancelled
                    if release.wait(0.02):
                        break
                return name
            return fn

        first = w.engine.submit("First", slow("first"), lane="jobs")
        second = w.engine.submit("Second", slow("second"), lane="jobs")
        third = w.engine.submit("Third", slow("third"), lane="jobs")
        r1, r2, r3 = (w.engine.records[i] for i in (first, second, third))
        qtbot.waitUntil(lambda: r1.state == "running" and r1.fraction > 0.1, timeout=20000)
        assert r2.state == r3.state == "queued"
        assert jobs.row_text(second, 2) == "waiting" and jobs.cancel_buttons[second].isEnabled()
        assert jobs.tree.topLevelItem(0).text(0) == "Third"  # newest first
        jobs.cancel_buttons[second].click()
        qtbot.waitUntil(lambda: r2.state == "cancelled", timeout=5000)
        assert jobs.row_text(second, 4) == "cancelled"
        assert r1.eta_s() is not None  # running with a fraction: a time left is shown
        release.set()
        qtbot.waitUntil(lambda: r3.state == "finished", timeout=20000)
        assert r1.state == "finished" and ran == ["first", "third"]  # the cancelled one never ran
        assert jobs.row_text(first, 4) == "done" and jobs.row_text(first, 2).startswith("took")
        jobs.clear_finished()
        assert not w.engine.records and jobs.tree.topLevelItemCount() == 0 and jobs.empty.isVisibleTo(jobs)
        assert eta_text(None) == "" and eta_text(5) == "about 5 s" and eta_text(300) == "about 5 min"
    finally:
        close_window(w)


def test_an_export_does_not_wait_for_a_training_run_and_esc_leaves_the_run_alone(qtbot, tmp_path):
    """Discovery, text paths and training run for minutes on their own thread (lane "long"): an
    export, a copy or a region fit submitted meanwhile runs at once on the job thread. Esc cancels
    that quick job, never the training run (only its own Cancel does); the status bar follows the
    job started last and goes back to the run when the export ends."""
    import threading

    from PySide6.QtWidgets import QApplication

    from stylestudio.engine.tasks.export import ExportImage

    w = make_window(qtbot)
    try:
        release = threading.Event()

        run = w.engine.submit("Training", _training("Training step", release), lane="long")
        rec = w.engine.records[run]
        qtbot.waitUntil(lambda: rec.state == "running" and rec.fraction > 0, timeout=20000)
        assert "Training step" in w.status.job_label.text()
        assert w.status.cancel_button.toolTip() == "Cancel this job"

        done: list = []
        export = w.engine.submit_task(ExportImage(w.holder.doc, tmp_path / "while_training.png"), done.append)
        qtbot.waitUntil(lambda: bool(done), timeout=60000)
        assert (tmp_path / "while_training.png").is_file()
        assert rec.state == "running", "the export ran beside the training run, not after it"
        assert w.engine.records[export].lane == "jobs"
        assert w.engine.records[export].finish is None and not w.engine.finish(export)  # only trainings finish early
        qtbot.waitUntil(lambda: "Training step" in w.status.job_label.text(), timeout=5000)  # back to the run

        activate = w.actions_by_name["cancel_job"]
        activate.trigger()  # Esc
        QApplication.processEvents()
        qtbot.wait(200)
        assert rec.state == "running", "Esc must not throw away a training run"
        w.engine.cancel(run)  # its own Cancel (the panel's button, the Jobs panel's)
        qtbot.waitUntil(lambda: rec.state == "cancelled", timeout=10000)
    finally:
        release.set()
        close_window(w)


def test_quitting_while_a_training_runs_asks_first(qtbot):
    """Closing the window while a job runs names it and asks (Cancel keeps the window and the job);
    Quit stops it. The job thread's frames are not jobs: an idle window closes without a question."""
    import threading

    from stylestudio.app.dialogs import stop_jobs_question

    w = make_window(qtbot)
    release = threading.Event()
    try:
        asked: list[list[str]] = []
        w.ask_stop_jobs = lambda jobs: asked.append(jobs) and False

        run = w.engine.submit("Discover 10 directions", _training("step", release), lane="long")
        rec = w.engine.records[run]
        qtbot.waitUntil(lambda: rec.state == "running" and rec.fraction > 0, timeout=20000)
        assert not w.close()
        assert w.isVisible() and rec.state == "running"
        assert len(asked) == 1 and asked[0][0].startswith("Discover 10 directions (") and asked[0][0].endswith("%)")
        assert stop_jobs_question(["Discover 10 directions (3 %)"]).startswith(
            "A job is still running:\n• Discover 10 directions (3 %)\n\nQuitting stops it: what is not saved yet is lost")

        w.ask_stop_jobs = lambda jobs: asked.append(jobs) or True
        assert w.close()
        assert len(asked) == 2
        qtbot.waitUntil(lambda: rec.state == "cancelled", timeout=10000)
    finally:
        release.set()
        close_window(w)

    idle = make_window(qtbot)
    idle.ask_stop_jobs = lambda jobs: pytest.fail(f"asked with nothing running: {jobs}")
    assert idle.close()
    close_window(idle)
