"""The GUI's one handle on the engine: it owns the render thread and the job thread.

The GUI never calls a network. It *posts* work to :class:`EngineClient`: render requests and
thumbnails (drawn by :class:`~.render_worker.EngineWorker`, newest wins), quick jobs on the render
session, and task requests (:mod:`stylestudio.engine.tasks`); a task of lane ``"jobs"`` runs in the
job thread (:class:`~.job_worker.JobWorker`) and shows in the Jobs panel, so renders never wait for it;
one of lane ``"long"`` (training, discovery, metrics, a folder of photos) runs in a second job thread
of its own, so an export, a region fit or a photo never waits the minutes a training run takes.
"""
from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal

from ..engine.document import EditDocument
from ..engine.session import QUALITIES, Engine
from ..engine.tasks import LANES
from .job_worker import JobWorker
from .render_worker import EngineWorker
from .work_items import Job, JobContext, RenderRequest, ThumbnailRequest, next_job_id


@dataclass
class JobRecord:
    """What the Jobs panel shows of one (non-quiet) job."""

    id: int
    title: str
    lane: str  #: "render" (the render thread), "jobs" (the job thread) or "long" (the long-job thread)
    state: str = "queued"  #: queued | running | finished | failed | cancelled
    message: str = ""
    fraction: float = -1.0
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    ended_at: float | None = None
    result: str = ""  #: one line about the result, or the error
    cancellable: bool = True
    request: Any = None  #: the task request, when it was one
    #: set by :meth:`EngineClient.finish`: a training whose request reads it ends after its current
    #: step and keeps what it learnt (None: the job cannot finish early, only be cancelled)
    finish: threading.Event | None = None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def can_finish(self) -> bool:
        """Whether *Finish now* applies: a running training not yet told to finish."""
        return self.finish is not None and self.state == "running" and not self.finish.is_set()

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left, from the time so far and the fraction done (None: unknown)."""
        if self.state != "running" or self.started_at is None or not 0.02 <= self.fraction < 1:
            return None
        spent = (now if now is not None else time.monotonic()) - self.started_at
        return spent * (1 - self.fraction) / self.fraction


class EngineClient(QObject):
    """Owns the render thread and the two job threads; the only way the GUI reaches the engine.

    Job callbacks (``on_done(result)``, ``on_error(message, cancelled)``) run in the GUI thread.
    :attr:`records` keeps every non-quiet job (queued, running, ended) for the Jobs panel;
    ``jobs_changed(id)`` says one changed.
    """

    job_started = Signal(int, str, bool, bool)
    job_progress = Signal(int, str, float)
    job_ended = Signal(int)
    jobs_changed = Signal(int)
    #: False routes long tasks to the render thread as before the job thread existed (tests use it
    #: to show what the job thread is for)
    separate_job_thread = True
    MAX_RECORDS = 50  #: ended jobs kept for the panel

    def __init__(self, engine_factory: Callable[[], Engine], preview_size: int = 256,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("stylestudio-engine")
        self.worker = EngineWorker(engine_factory, preview_size)
        self.worker.moveToThread(self.thread)
        self.job_thread = QThread()
        self.job_thread.setObjectName("stylestudio-jobs")
        self.job_worker = JobWorker(engine_factory, self.worker)
        self.job_worker.moveToThread(self.job_thread)
        self.long_thread = QThread()
        self.long_thread.setObjectName("stylestudio-long-jobs")
        self.long_worker = JobWorker(engine_factory, self.worker)
        self.long_worker.moveToThread(self.long_thread)
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._describe: dict[int, Callable[[Any], str]] = {}
        self.records: OrderedDict[int, JobRecord] = OrderedDict()
        self._seq = itertools.count(1)
        for w in (self.worker, self.job_worker, self.long_worker):
            w.job_started.connect(self._on_job_started)
            w.job_progress.connect(self._on_job_progress)
            w.job_finished.connect(self._on_job_finished)
            w.job_failed.connect(self._on_job_failed)
        # direct: the install job is queued in the render thread before the job's result reaches the
        # GUI, so whatever the GUI asks for next sees the new resource (queued, it would wait until
        # the render thread's loop returns, behind a render-lane request the GUI posted meanwhile)
        self.job_worker.installs.connect(self.worker.post_install, Qt.ConnectionType.DirectConnection)
        self.long_worker.installs.connect(self.worker.post_install, Qt.ConnectionType.DirectConnection)
        w = self.worker
        # convenience re-exports
        self.rendered = w.rendered
        self.render_failed = w.render_failed
        self.before_ready = w.before_ready
        self.thumbnails_ready = w.thumbnails_ready
        self.model_loaded = w.model_loaded
        self.libraries_changed = w.libraries_changed
        self.idle = w.idle
        self.thread.start()
        self.job_thread.start()
        self.long_thread.start()

    def render(self, doc: EditDocument, quality: str = "final", progressive: bool = False) -> int:
        if quality not in QUALITIES:
            raise ValueError(f"quality must be one of {QUALITIES}")
        seq = next(self._seq)
        self.worker.post_render(RenderRequest(seq, doc, quality, progressive))
        return seq

    def thumbnails(self, model: str, seeds: list[int], psi: float, size: int) -> int:
        token = next(self._seq)
        self.worker.post_thumbnails(ThumbnailRequest(token, model, tuple(seeds), psi, size))
        return token

    def submit(self, title: str, fn: Callable[[Engine, JobContext], Any], on_done: Callable | None = None,
               on_error: Callable | None = None, cancellable: bool = True, quiet: bool = False,
               lane: str = "render", request: Any = None, finish: threading.Event | None = None) -> int:
        """Run ``fn(session, ctx)`` in the render thread (``lane="render"``: quick work on the
        render session, e.g. switching device), the job thread (``"jobs"``) or the long-job thread
        (``"long"``)."""
        if lane not in LANES:
            raise ValueError(f"lane must be one of {LANES}, got {lane!r}")
        if lane != "render" and not self.separate_job_thread:
            lane = "render"
        job = Job(next_job_id(), title, fn, cancellable, quiet)
        self._callbacks[job.id] = (on_done, on_error)
        if not quiet:
            self.records[job.id] = JobRecord(job.id, title, lane, cancellable=cancellable, request=request,
                                             finish=finish)
            self._trim_records()
            self.jobs_changed.emit(job.id)
        {"jobs": self.job_worker, "long": self.long_worker}.get(lane, self.worker).post_job(job)
        return job.id

    def submit_task(self, request: Any, on_done: Callable | None = None, on_error: Callable | None = None,
                    quiet: bool | None = None, title: str | None = None,
                    wrap: Callable[[Callable], Callable] | None = None) -> int:
        """Run an :mod:`stylestudio.engine.tasks` request on its lane; long ones show in the Jobs panel.

        ``wrap`` may wrap the job body (e.g. to make a failure message name a file)."""
        from ..engine import tasks

        lane = tasks.lane(request)
        quiet = (lane == "render") if quiet is None else quiet
        finish = None
        if getattr(request, "finish", False) is None and dataclasses.is_dataclass(request):
            finish = threading.Event()  # a training that can end early and keep what it learnt
            request = dataclasses.replace(request, finish=finish.is_set)

        def fn(session: Engine, ctx: JobContext) -> Any:
            return tasks.run(session, request, ctx.progress, ctx.cancel_token)

        job_id = self.submit(title or tasks.title(request), wrap(fn) if wrap is not None else fn, on_done, on_error,
                             quiet=quiet, lane=lane, request=request, finish=finish)
        self._describe[job_id] = lambda result: tasks.describe_result(request, result)
        return job_id

    def finish(self, job_id: int) -> bool:
        """Ask training ``job_id`` to end after its current step and keep what it has learnt (the
        Discover and Text paths panels' and the Jobs panel's *Finish now*). False when that job
        cannot finish early or is not running."""
        rec = self.records.get(job_id)
        if rec is None or not rec.can_finish:
            return False
        assert rec.finish is not None
        rec.finish.set()
        self.jobs_changed.emit(job_id)
        return True

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job, wherever it is queued or runs (None: the running quick ones, as Esc does:
        a training run of many minutes is only ever cancelled by its own id, never by a stray Esc)."""
        self.worker.cancel(job_id)
        self.job_worker.cancel(job_id)
        if job_id is not None:
            self.long_worker.cancel(job_id)

    def set_preview_size(self, size: int, budget_ms: float | None = None, fast: bool | None = None) -> None:
        """Preview settings for the render thread (applied before its next render)."""
        self.worker.preview_size = int(size)
        if budget_ms is not None:
            self.worker.preview_budget_ms = float(budget_ms)
        if fast is not None:
            self.worker.fast_previews = bool(fast)

    def busy(self) -> bool:
        return self.worker.pending() or self.job_worker.pending() or self.long_worker.pending()

    def active_jobs(self) -> list[JobRecord]:
        return [r for r in self.records.values() if r.active]

    def _trim_records(self) -> None:
        ended = [i for i, r in self.records.items() if not r.active]
        for i in ended[: max(0, len(ended) - self.MAX_RECORDS)]:
            del self.records[i]

    def _on_job_started(self, job_id: int, title: str, cancellable: bool, quiet: bool) -> None:
        rec = self.records.get(job_id)
        if rec is None and not quiet:  # started by the worker itself (loading a model)
            rec = self.records[job_id] = JobRecord(job_id, title, "render", cancellable=cancellable)
        if rec is not None:
            rec.state, rec.started_at = "running", time.monotonic()
            self.jobs_changed.emit(job_id)
        self.job_started.emit(job_id, title, cancellable, quiet)

    def _on_job_progress(self, job_id: int, message: str, fraction: float) -> None:
        rec = self.records.get(job_id)
        if rec is not None and rec.active:
            rec.message, rec.fraction = message, fraction
            self.jobs_changed.emit(job_id)
        self.job_progress.emit(job_id, message, fraction)

    def _end(self, job_id: int, state: str, text: str) -> None:
        rec = self.records.get(job_id)
        if rec is not None:
            rec.state, rec.result, rec.ended_at = state, text, time.monotonic()
            if state == "finished":
                rec.fraction = 1.0
            self.jobs_changed.emit(job_id)

    def _on_job_finished(self, job_id: int, result: Any) -> None:
        on_done, _ = self._callbacks.pop(job_id, (None, None))
        describe = self._describe.pop(job_id, None)
        try:
            text = describe(result) if describe is not None else "done"
        except Exception:  # a description must never lose the result
            text = "done"
        self._end(job_id, "finished", text)
        self.job_ended.emit(job_id)
        if on_done is not None:
            on_done(result)

    def _on_job_failed(self, job_id: int, message: str, cancelled: bool) -> None:
        _, on_error = self._callbacks.pop(job_id, (None, None))
        self._describe.pop(job_id, None)
        self._end(job_id, "cancelled" if cancelled else "failed", "cancelled" if cancelled else message)
        self.job_ended.emit(job_id)
        if on_error is not None:
            on_error(message, cancelled)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel what runs, stop the threads (pending work is abandoned)."""
        with self.worker._lock:
            self.worker._render = None
            self.worker._thumbs = None
            self.worker._jobs.clear()
            self.worker._before.clear()
        for jobs in (self.job_worker, self.long_worker):
            jobs.clear()
        for w in (self.worker, self.job_worker, self.long_worker):
            w.cancel(None)
        for t in (self.thread, self.job_thread, self.long_thread):
            t.quit()
        for t in (self.thread, self.job_thread, self.long_thread):
            t.wait(timeout_ms)

