"""The job thread's worker: long jobs (building a catalog, inverting a photo, exporting…) beside the renders.

It has its own session and so its own copy of each model it uses: a catalog build that takes
minutes never delays a frame. Renders keep priority over it: the thread lowers its own OS
priority and torch thread count (:mod:`.thread_priority`). Resources a job makes (a new catalog
or slider library) are handed to the render session when the job ends.
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import TYPE_CHECKING, Any, Callable

import torch
from PySide6.QtCore import QObject, Qt, Signal, Slot

from ..engine.session import Engine
from ..errors import Cancelled
from .thread_priority import lower_this_thread_priority
from .work_items import Job, JobContext, cancel_queued_job, error_text, next_job_id

if TYPE_CHECKING:
    from .render_worker import EngineWorker

log = logging.getLogger(__name__)


class JobWorker(QObject):
    """A queue of long jobs run one after the other in their own thread and session.

    Same job signals as :class:`EngineWorker`; the session is made on first use from the same
    factory (its own model copies, loaded the first time a job needs them).
    """

    job_started = Signal(int, str, bool, bool)
    job_progress = Signal(int, str, float)
    job_finished = Signal(int, object)
    job_failed = Signal(int, str, bool)
    installs = Signal(object)  #: [(model, kind, name, value)] a finished job made
    _wake = Signal()

    def __init__(self, engine_factory: Callable[[], Engine], render_worker: "EngineWorker | None" = None) -> None:
        super().__init__()
        self._engine_factory = engine_factory
        self._render_worker = render_worker  #: its session's device is followed (Models ▸ Device)
        self.engine: Engine | None = None
        self._lock = threading.Lock()
        self._jobs: list[Job] = []
        self._current_job: Job | None = None
        self._in_flight = False
        self.priority: dict[str, Any] | None = None  #: what :func:`lower_this_thread_priority` did
        self.stats = {"jobs": 0}
        self._wake.connect(self._drain, Qt.ConnectionType.QueuedConnection)

    def next_id(self) -> int:
        return next_job_id()

    def post_job(self, job: Job) -> None:
        with self._lock:
            self._jobs.append(job)
        self._wake.emit()

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job (None: the running one): a queued job is dropped, a running one is told."""
        cancel_queued_job(self, job_id)

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()

    def pending(self) -> bool:
        with self._lock:
            return bool(self._in_flight or self._jobs)

    @Slot()
    def _drain(self) -> None:
        if self.priority is None:
            self.priority = lower_this_thread_priority()
        while True:
            with self._lock:
                if not self._jobs:
                    self._in_flight = False
                    return
                self._in_flight = True
                job = self._current_job = self._jobs.pop(0)
            try:
                self._do_job(job)
            finally:
                with self._lock:
                    self._current_job = None

    def _follow_device(self) -> None:
        """Run on the device the user chose for the renders (a string read across threads: atomic)."""
        render = self._render_worker.engine if self._render_worker is not None else None
        assert self.engine is not None
        if render is not None and render.device_name != self.engine.device_name:
            self.engine.set_device(render.device_name)

    def _do_job(self, job: Job) -> None:
        self.job_started.emit(job.id, job.title, job.cancellable, job.quiet)
        ctx = JobContext(job.id, self, job.cancel)
        try:
            ctx.check()
            if self.engine is None:
                self.engine = self._engine_factory()
                if self.priority and "torch_threads" in self.priority:  # the factory may have set its own
                    torch.set_num_threads(self.priority["torch_threads"])
            self._follow_device()
            result = job.fn(self.engine, ctx)
        except Cancelled:
            self.job_failed.emit(job.id, "cancelled", True)
        except Exception as exc:
            log.error("job %r failed:\n%s", job.title, traceback.format_exc())
            self.job_failed.emit(job.id, error_text(exc), False)
        else:
            self._hand_over()  # before the result: the render session learns first
            self.stats["jobs"] += 1
            self.job_finished.emit(job.id, result)
        finally:
            self._hand_over()  # a job that failed after saving something still made it

    def _hand_over(self) -> None:
        """Resources the job made go to the render session, which owns them from now on."""
        published = self.engine.take_published() if self.engine is not None else []
        if published:
            self.engine.release(published)  # type: ignore[union-attr]
            self.installs.emit(published)
