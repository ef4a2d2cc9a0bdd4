"""The worker thread: newest-request-wins rendering, jobs with progress and cancellation."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from stylestudio.engine.edits.direction import DirectionEdit

from test_gui_support import (SMALL, assert_same_picture, canvas_array, close_window, make_window, reference_frame,
                              wait_final, wait_sliders)

pytestmark = pytest.mark.gui


def test_500_rapid_slider_moves_leave_no_backlog(qtbot):
    """A drag far faster than the worker can render: superseded requests are dropped, never queued."""
    w = make_window(qtbot, model=SMALL)
    engine = w.engine.worker.engine
    original = engine.render

    def heavy(*args, **kwargs):  # a frame takes ≥ 60 ms, as on a big model: the drag outruns it
        time.sleep(0.06)
        return original(*args, **kwargs)

    try:
        group = wait_sliders(qtbot, w)
        row = group.row("Factor 1")
        stats = w.engine.worker.stats
        qtbot.waitUntil(lambda: not w.engine.busy(), timeout=10000)
        engine.render = heavy
        req0, ren0, drop0 = stats["render_requests"], stats["renders"], stats["dropped"]
        slider = row.slider
        slider.setSliderDown(True)  # what a mouse press on the handle does
        values = [((i * 37) % 601) - 300 for i in range(1, 500)] + [123]
        t0 = time.perf_counter()
        for v in values:
            slider.setValue(v)  # one value change, exactly as a drag delivers it
            QApplication.processEvents()  # the GUI stays live: frames arriving are shown
        post_s = time.perf_counter() - t0
        renders_at_release = stats["renders"]
        slider.setSliderDown(False)  # release: the final frame
        requests = stats["render_requests"] - req0
        assert requests == 501, requests  # 500 moves + the final
        assert w.undo_stack.count() == 1, "one drag, one undo step"
        assert w.holder.doc.edit("sefa:factor1").amount == pytest.approx(1.23)
        wait_final(qtbot, w)
        renders = stats["renders"] - ren0
        dropped = stats["dropped"] - drop0
        print(f"500 moves: {requests} requests, {renders} renders, {dropped} dropped, posted in {post_s:.2f} s")
        assert renders + dropped == requests, "every request is either rendered or dropped: nothing waits"
        assert renders < requests / 4, (renders, requests, post_s)
        # no backlog: after the release only the frame in flight and the final one were drawn
        assert stats["renders"] - renders_at_release <= 2
        assert_same_picture(canvas_array(w), reference_frame(w.holder.doc))
        assert w.last_result.seq == w._latest_seq and w.last_result.quality == "final"
    finally:
        engine.render = original
        close_window(w)


def test_stale_frames_are_never_shown_over_newer_ones(qtbot):
    """Frames arrive in request order from one worker, so the guard is tested directly: a frame of
    an older request delivered late (a slow job's render, a second worker) and a preview that
    arrives after its request's final are both ignored."""
    import dataclasses

    from PySide6.QtGui import QImage

    w = make_window(qtbot, model=SMALL)
    try:
        shown: list[int] = []
        w.canvas.frame_shown.connect(lambda seq, q, t: shown.append(seq))
        for seed in range(20, 40):
            w.panel("faces").pick(seed)
        wait_final(qtbot, w)
        assert shown == sorted(shown)
        assert w.holder.doc.source.seed == 39
        current = canvas_array(w)
        assert_same_picture(current, reference_frame(w.holder.doc))
        latest = w.last_result
        assert latest.quality == "final" and w.canvas.frame_seq == latest.seq
        blank = QImage(latest.image.size(), latest.image.format())
        blank.fill(0)  # a frame that would be plain to see if it got through
        late_older = dataclasses.replace(latest, seq=latest.seq - 1, image=blank)
        late_preview = dataclasses.replace(latest, quality="preview", image=blank)
        for stale in (late_older, late_preview):
            w.engine.rendered.emit(stale)  # the real path: the window's slot for worker frames
            QApplication.processEvents()
            assert w.last_result is latest and w.canvas.frame_seq == latest.seq
            assert all(seq <= latest.seq for seq in shown)
            assert_same_picture(canvas_array(w), current, tol=0)
        assert w.frame_is_current()
        # a newer frame still gets through
        newer = dataclasses.replace(latest, seq=latest.seq + 1, image=blank)
        w.engine.rendered.emit(newer)
        QApplication.processEvents()
        assert w.last_result is newer and int(canvas_array(w).max()) == 0
    finally:
        close_window(w)


def test_previews_while_dragging_final_on_release(qtbot):
    w = make_window(qtbot, model=SMALL)
    try:
        group = wait_sliders(qtbot, w)
        row = group.row("Factor 2")
        frames: list[tuple[str, int, int]] = []  # (quality, width, seq) as the worker sends them
        # A callable connected without a receiver runs in the render thread as the frame is sent,
        # not in step with the window (whose queued slot may show the frame first): so the test
        # waits on this list itself, never on the window's state (that raced once under load).
        w.engine.rendered.connect(lambda r: frames.append((r.quality, r.image.width(), r.seq)))
        row.slider.setSliderDown(True)
        row.slider.setValue(80)
        drag = w._latest_seq
        qtbot.waitUntil(lambda: any(f[2] >= drag for f in frames), timeout=5000)
        during = [f for f in frames if f[2] >= drag]
        assert len(during) == 1 and during[0][0] == "preview" and during[0][1] < 128 and during[0][2] == drag, frames
        row.slider.setSliderDown(False)
        release = w._latest_seq
        assert release > drag, "the release asks for a final frame"
        qtbot.waitUntil(lambda: any(f[2] >= release for f in frames), timeout=10000)
        assert frames[-1] == ("final", 128, release), frames
        wait_final(qtbot, w)
        assert w.last_result.seq == release and w.last_result.quality == "final"
    finally:
        close_window(w)


def test_long_job_progress_and_cancel(qtbot):
    w = make_window(qtbot)
    try:
        started = threading.Event()

        def long_job(engine, ctx):
            started.set()
            for i in range(1000):
                ctx.progress(f"step {i}", i / 1000)
                time.sleep(0.01)
            return "finished"

        results: list = []
        job = w.run_job("Long job", long_job, results.append)
        qtbot.waitUntil(lambda: w.progress.isVisible() and w.progress.value() > 0, timeout=5000)
        assert w.cancel_button.isVisible() and w.job_label.text().startswith("step")
        w.cancel_button.click()
        qtbot.waitUntil(lambda: not w.progress.isVisible(), timeout=5000)
        assert results == [] and "cancelled" in w.statusBar().currentMessage()
        assert job not in w.status.jobs
        # the worker carries on with new work
        w.panel("faces").pick(17)
        wait_final(qtbot, w)
        # a job's own failure is shown, not raised
        w.run_job("Failing job", lambda e, c: 1 / 0)
        qtbot.waitUntil(lambda: any("ZeroDivisionError" in e for e in w.errors), timeout=5000)
    finally:
        close_window(w)


def test_engine_is_only_touched_by_the_worker_thread(qtbot):
    """Every render and job runs in the worker's QThread, never in the GUI thread."""
    w = make_window(qtbot)
    try:
        gui = threading.get_ident()
        seen: list[int] = []
        engine = w.engine.worker.engine
        original = engine.render

        def spy(*a, **k):
            seen.append(threading.get_ident())
            return original(*a, **k)

        engine.render = spy
        w.panel("faces").pick(23)
        wait_final(qtbot, w)
        ran_in: list[int] = []
        w.run_job("where", lambda e, c: ran_in.append(threading.get_ident()))
        qtbot.waitUntil(lambda: bool(ran_in), timeout=5000)
        assert seen and all(t != gui for t in seen) and ran_in[0] != gui
        engine.render = original
    finally:
        close_window(w)


def test_document_changes_while_rendering_do_not_reach_the_frame_in_flight(qtbot):
    """The worker renders the snapshot it was given: the GUI moves a slider and picks another face
    while that frame is being drawn, and the frame still shows the document as it was asked for."""
    from stylestudio.app.qimage_arrays import array_from_qimage

    w = make_window(qtbot, model=SMALL)
    engine = w.engine.worker.engine
    original = engine.render
    entered, release = threading.Event(), threading.Event()

    def gated(*args, **kwargs):  # hold the render in flight until the GUI has changed the document
        entered.set()
        assert release.wait(20), "the test never released the render"
        return original(*args, **kwargs)

    try:
        group = wait_sliders(qtbot, w)
        wait_final(qtbot, w)
        results: list = []
        w.engine.rendered.connect(results.append)
        engine.render = gated
        group.row("Factor 1").spin.setValue(2.0)
        asked, seq = w.holder.doc, w._latest_seq
        qtbot.waitUntil(entered.is_set, timeout=10000)  # the worker now holds ``asked``
        group.row("Factor 1").spin.setValue(-2.0)  # the user moves on meanwhile
        w.panel("faces").pick(31)
        moved_on = w.holder.doc
        assert moved_on.source.seed == 31 and moved_on.edit("sefa:factor1").amount == -2.0
        assert asked.edit("sefa:factor1").amount == 2.0 and asked.source != moved_on.source
        release.set()
        wait_final(qtbot, w)
        frames = [r for r in results if r.seq == seq]
        assert frames, "the frame in flight is delivered"
        expected = reference_frame(asked)
        final = [r for r in frames if r.quality == "final"]
        assert final, [r.quality for r in frames]
        assert_same_picture(array_from_qimage(final[-1].image), expected)
        # and the screen ends on the document as it is now
        assert_same_picture(canvas_array(w), reference_frame(moved_on))
        assert np.abs(expected.astype(int) - reference_frame(moved_on).astype(int)).max() > 10
    finally:
        release.set()
        engine.render = original
        close_window(w)


def test_adaptive_preview_stage_follows_the_time_budget():
    """Previews use the sharpest coarse stage that renders within the budget (Qt-free engine logic)."""
    from stylestudio.engine.session import Engine

    from test_gui_support import ensure_test_model

    ensure_test_model(SMALL)
    e = Engine(device="cpu", preview_budget_ms=60)
    e.MIN_PREVIEW_PX = 16
    m = e.model(SMALL)
    assert m.stop_scale == 1.0  # StyleGAN2: a stage at r px previews an r-px image
    assert e.stop_for(m, 256) == 64 and e.stop_for(m, 40) == 32
    assert e.stop_for(m, 256, adaptive=True) == 64  # not measured yet: try the sharpest
    m.preview_times[64] = 0.100  # too slow for 60 ms
    assert e.stop_for(m, 256, adaptive=True) == 32
    m.preview_times[32] = 0.050
    assert all(e.stop_for(m, 256, adaptive=True) == 32 for _ in range(40)), "no retries while struggling"
    m.preview_times[32] = 0.010  # the machine got faster: now and then the sharper stage is retried
    picks = [e.stop_for(m, 256, adaptive=True) for _ in range(40)]
    assert picks.count(64) == 2 and picks.count(32) == 38
    # a real preview render records its time
    from stylestudio.engine.document import EditDocument, SeedSource

    m.preview_times.clear()
    img = e.render(EditDocument(SMALL, SeedSource(seed=1)), "preview", 256)
    assert img.shape[-1] == 64 and 64 in m.preview_times
    assert e.render(EditDocument(SMALL, SeedSource(seed=1)), "final", 256).shape[-1] == 128


def test_previews_never_drop_below_256_px_however_slow():
    """A busy machine gets 256-px previews, never the 64-px blocks a photographer cannot judge;
    the budget only decides whether 512 px is affordable (Qt-free engine logic, a fake 1024-px
    stage layout: no model is rendered)."""
    from types import SimpleNamespace

    from stylestudio.engine.session import Engine, LoadedModel

    e = Engine(device="cpu", preview_budget_ms=60)
    layout = [SimpleNamespace(resolution=r) for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)]
    gen = SimpleNamespace(style_layout=layout, resolution=1024)
    m = LoadedModel("big", gen, None, {}, None, stop_scale=1.0)  # type: ignore[arg-type]
    for r in (4, 8, 16, 32, 64, 128, 256, 512):
        m.preview_times[r] = 5.0  # every stage far over the budget
    assert all(e.stop_for(m, 512, adaptive=True) == 256 for _ in range(40))
    assert e.stop_for(m, 256, adaptive=True) == 256
    m.preview_times[512] = 0.030  # a fast machine: the sharper preview fits the budget
    assert e.stop_for(m, 512, adaptive=True) == 512
