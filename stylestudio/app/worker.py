"""The one thread that owns the engine: models, the device and every tensor.

The GUI never calls a network. It *posts* work to :class:`EngineClient`:

* render requests (a document snapshot, ``"preview"`` or ``"final"`` quality, a sequence
  number). Only the newest request is kept: while the worker renders frame *n*, requests
  *n+1 … n+k* overwrite each other in a one-slot mailbox and only *n+k* is rendered next. A
  slider dragged at 60 Hz therefore never builds a backlog, and the last frame always shows
  the last value.
* thumbnail requests for the face browser (newest wins too, rendered in small chunks so a
  render request never waits long behind them);
* jobs: any callable ``fn(engine, ctx)`` run in the worker with progress and cancellation
  (loading or importing a model, exporting, copying to the clipboard, describing a library).

Long jobs (``submit_task`` with a request of lane ``"jobs"``: building a catalog, inverting a
photo, exporting…) run in a SECOND thread, :class:`JobWorker`, with its own session and so its
own copy of each model it uses: a catalog build that takes minutes never delays a frame. Renders
keep priority over it: that thread lowers its own OS priority (Linux nice values are per thread)
and runs torch with fewer intra-op threads (``JOB_TORCH_THREADS``; with torch's OpenMP backend
the count is per calling thread, so the render thread keeps all cores; with another backend it
is process-wide and is left alone). Resources a job makes (a new catalog or slider library) are
forwarded to the render session when the job ends.

Priority in the render thread: render > jobs > "before" images > thumbnails. Everything the worker sends back
arrives through queued signals in the GUI thread. An exception never escapes the worker: it
becomes a ``render_failed``/``job_failed`` message that the window shows.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QImage

from ..engine.document import EditDocument
from ..engine.render import to_uint8
# the Qt-free session moved to the engine; re-exported so old imports keep working
from ..engine.session import QUALITIES, Engine, LoadedModel, ModelDescription, Session  # noqa: F401
from ..engine.progress import CancelToken
from ..errors import Cancelled, StyleStudioError

log = logging.getLogger(__name__)

def qimage_from_array(array: np.ndarray) -> QImage:
    """HxWx3 uint8 → a QImage that owns its pixels (safe to hand to another thread)."""
    array = np.ascontiguousarray(array)
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def array_from_qimage(image: QImage) -> np.ndarray:
    """QImage → HxWx3 uint8 copy."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = img.height(), img.width()
    buf = np.frombuffer(img.constBits(), np.uint8, count=img.bytesPerLine() * h)
    return buf.reshape(h, img.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def error_text(exc: BaseException) -> str:
    """User-facing text: our own errors speak for themselves, anything else is named."""
    if isinstance(exc, StyleStudioError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------------------------
# requests and results


@dataclass(frozen=True)
class RenderRequest:
    seq: int
    doc: EditDocument
    quality: str = "final"
    #: a final request for a face the user has not seen yet: show a quick preview first
    progressive: bool = False
    posted_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class RenderResult:
    seq: int
    quality: str
    image: QImage
    model: str
    resolution: int  #: the model's full resolution: previews are shown at this logical size
    source_key: tuple
    render_s: float
    posted_at: float
    done_at: float
    has_edits: bool = False  #: False: this frame is also the "before" image of its face


@dataclass(frozen=True)
class BeforeImage:
    """The unedited face for ``(model, source_key)``, for the before/after views."""

    model: str
    source_key: tuple
    image: QImage


@dataclass(frozen=True)
class ThumbnailRequest:
    token: int
    model: str
    seeds: tuple[int, ...]
    psi: float
    size: int


_job_ids = itertools.count(1)
_job_ids_lock = threading.Lock()


def next_job_id() -> int:
    """Job ids are unique across both worker threads."""
    with _job_ids_lock:
        return next(_job_ids)


class JobContext:
    """Handed to a job: report progress, learn about cancellation (the engine's convention:
    :mod:`stylestudio.engine.progress`; ``progress`` raises Cancelled once cancelled)."""

    def __init__(self, job_id: int, worker: Any, cancel: CancelToken) -> None:
        self.job_id = job_id
        self._worker = worker
        self._cancel = cancel

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled")

    def progress(self, message: str, fraction: float) -> None:
        """Report progress (0..1, or <0 for "busy, unknown amount"); raises if cancelled."""
        self._worker.job_progress.emit(self.job_id, str(message), float(fraction))
        self.check()

    @property
    def cancel_token(self) -> CancelToken:
        """The :data:`~stylestudio.engine.progress.Cancel` callable to hand to engine code."""
        return self._cancel


@dataclass
class Job:
    id: int
    title: str
    fn: Callable[["Engine", JobContext], Any]
    cancellable: bool = True
    quiet: bool = False  #: no progress bar (short bookkeeping jobs)
    cancel: CancelToken = field(default_factory=CancelToken)


# ---------------------------------------------------------------------------------------------
# the worker object (lives in the worker thread)


def cancel_queued_job(worker: Any, job_id: int | None) -> None:
    """Cancel job ``job_id`` of a worker's queue (None: its running job): a queued job is dropped
    (and reported cancelled), a running one is told through its cancel event. ``worker`` has
    ``_lock``, ``_jobs``, ``_current_job`` and ``job_failed``: both the render and the job worker."""
    dropped: list[Job] = []
    with worker._lock:
        for job in list(worker._jobs):
            if job_id is not None and job.id == job_id:
                worker._jobs.remove(job)
                dropped.append(job)
        cur = worker._current_job
    if cur is not None and (job_id is None or cur.id == job_id) and cur.cancellable:
        cur.cancel.set()
    for job in dropped:
        worker.job_failed.emit(job.id, "cancelled", True)


class EngineWorker(QObject):
    """Mailboxes + one drain loop. Post methods are thread-safe; everything else runs in the thread."""

    rendered = Signal(object)  # RenderResult
    render_failed = Signal(int, str)  # seq, message
    before_ready = Signal(object)  # BeforeImage
    thumbnails_ready = Signal(int, object)  # token, [(seed, QImage)]
    job_started = Signal(int, str, bool, bool)  # id, title, cancellable, quiet
    job_progress = Signal(int, str, float)
    job_finished = Signal(int, object)
    job_failed = Signal(int, str, bool)  # id, message, cancelled
    model_loaded = Signal(object)  # ModelDescription
    idle = Signal()
    _wake = Signal()

    THUMB_CHUNK = 2  #: faces per thumbnail batch: a render request waits at most for one batch

    def __init__(self, engine_factory: Callable[[], Engine], preview_size: int = 256) -> None:
        super().__init__()
        self._engine_factory = engine_factory
        self.engine: Engine | None = None
        self.preview_size = preview_size
        self.preview_budget_ms: float | None = None  #: a new budget for the engine, set from the GUI
        self._lock = threading.Lock()
        self._render: RenderRequest | None = None
        self._thumbs: ThumbnailRequest | None = None
        self._jobs: list[Job] = []
        self._before: list[tuple[EditDocument, tuple]] = []
        self._before_done: OrderedDict[tuple, None] = OrderedDict()
        self._current_job: Job | None = None
        self._in_flight = False
        self._last_source: tuple | None = None
        self._announced: ModelDescription | None = None
        #: counters read by tests and the benchmark
        self.stats = {"render_requests": 0, "renders": 0, "dropped": 0, "previews": 0, "finals": 0}
        self._wake.connect(self._drain, Qt.ConnectionType.QueuedConnection)

    # -- posting (any thread) -------------------------------------------------------------------
    def next_id(self) -> int:
        return next_job_id()

    def post_render(self, req: RenderRequest) -> None:
        with self._lock:
            self.stats["render_requests"] += 1
            if self._render is not None:
                self.stats["dropped"] += 1
            self._render = req
        self._wake.emit()

    def post_thumbnails(self, req: ThumbnailRequest) -> None:
        with self._lock:
            self._thumbs = req
        self._wake.emit()

    def post_job(self, job: Job) -> None:
        with self._lock:
            self._jobs.append(job)
        self._wake.emit()

    def post_install(self, items: list[tuple[str, str, str, Any]]) -> None:
        """Resources a job made in another session (a new catalog): make them current here, ahead
        of any job posted later (so a region map asked for after a build sees the new catalog)."""

        def install(engine: Engine, ctx: JobContext) -> None:
            for model, kind, name, value in items:
                if engine.is_loaded(model):
                    engine.model(model).resources.put(kind, name, value)

        self.post_job(Job(self.next_id(), "Install resources", install, cancellable=False, quiet=True))

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job (None: the running one): a queued job is dropped, a running one is told."""
        cancel_queued_job(self, job_id)

    def pending(self) -> bool:
        """Anything queued or in progress?"""
        with self._lock:
            return bool(self._in_flight or self._render or self._jobs or self._thumbs or self._before)

    # -- the loop (worker thread) ---------------------------------------------------------------
    @Slot()
    def _drain(self) -> None:
        did_work = False
        while True:
            with self._lock:
                self._in_flight = True
                if self._render is not None:
                    kind, item, self._render = "render", self._render, None
                elif self._jobs:
                    kind, item = "job", self._jobs.pop(0)
                    self._current_job = item
                elif self._before:
                    kind, item = "before", self._before.pop()
                    self._before.clear()
                elif self._thumbs is not None:
                    kind, item, self._thumbs = "thumbs", self._thumbs, None
                else:
                    self._in_flight = False
                    break
            did_work = True
            try:
                if kind == "render":
                    self._do_render(item)
                elif kind == "job":
                    self._do_job(item)
                elif kind == "before":
                    self._do_before(*item)
                else:
                    self._do_thumbs(item)
            finally:
                with self._lock:
                    self._current_job = None
        if did_work:
            self.idle.emit()

    def _ensure_engine(self) -> Engine:
        if self.engine is None:
            # this thread's own torch thread count, not whatever the job thread set last (see
            # lower_this_thread_priority); a factory with an explicit count sets it again
            torch.set_num_threads(PROCESS_TORCH_THREADS)
            self.engine = self._engine_factory()
        if self.preview_budget_ms is not None:
            self.engine.preview_budget_s = self.preview_budget_ms / 1000
            self.preview_budget_ms = None
        return self.engine

    def _ensure_model(self, name: str) -> LoadedModel:
        """Load ``name`` if needed, as a visible, cancellable job (first use may take minutes)."""
        engine = self._ensure_engine()
        if engine.is_loaded(name):
            return engine.model(name)
        job = Job(self.next_id(), f"Loading model {name}", lambda e, c: None)
        with self._lock:
            self._current_job = job
        self.job_started.emit(job.id, job.title, True, False)
        ctx = JobContext(job.id, self, job.cancel)
        try:
            ctx.progress(f"Loading {name}…", -1.0)
            loaded = engine.model(name, progress=ctx.progress)
        except Exception as exc:
            cancelled = isinstance(exc, Cancelled)
            self.job_failed.emit(job.id, "cancelled" if cancelled else error_text(exc), cancelled)
            raise
        finally:
            with self._lock:
                self._current_job = None
        self.job_finished.emit(job.id, loaded.description)
        return loaded

    def _announce(self, m: LoadedModel) -> None:
        """Tell the GUI which model the frames now come from (panels rebuild on a change)."""
        if m.description != self._announced:
            self._announced = m.description
            self.model_loaded.emit(m.description)

    def _emit_frame(self, req: RenderRequest, quality: str, image: torch.Tensor, m: LoadedModel,
                    t0: float) -> None:
        qimg = qimage_from_array(to_uint8(image))
        now = time.perf_counter()
        has_edits = any(e.enabled for e in req.doc.edits)
        if quality == "final" and not has_edits:
            self._before_done[(m.name, req.doc.source.key())] = None
        # counted before the frame leaves: a listener that sees the frame also sees it counted
        self.stats["renders"] += 1
        self.stats["finals" if quality == "final" else "previews"] += 1
        self.rendered.emit(RenderResult(req.seq, quality, qimg, m.name, m.generator.resolution,
                                        req.doc.source.key(), now - t0, req.posted_at, now, has_edits))

    def _do_render(self, req: RenderRequest) -> None:
        try:
            m = self._ensure_model(req.doc.model)
            self._announce(m)
            engine = self._ensure_engine()
            source = (req.doc.model, req.doc.source.key())
            quality = req.quality
            if quality == "final" and req.progressive and source != self._last_source:
                t0 = time.perf_counter()
                img = engine.render(req.doc, "preview", self.preview_size)
                if img.shape[-1] < m.generator.resolution:
                    self._emit_frame(req, "preview", img, m, t0)
                    with self._lock:
                        superseded = self._render is not None
                    if superseded:
                        self._last_source = source
                        return
            t0 = time.perf_counter()
            img = engine.render(req.doc, quality, self.preview_size)
            if quality == "preview" and img.shape[-1] >= m.generator.resolution:
                quality = "final"  # the model is small enough that previews are full frames
            self._emit_frame(req, quality, img, m, t0)
            self._last_source = source
            if quality == "final" and any(e.enabled for e in req.doc.edits):
                key = (req.doc.model, req.doc.source.key())
                if key not in self._before_done:
                    with self._lock:
                        self._before.append((req.doc, key))
        except Cancelled:
            self.render_failed.emit(req.seq, "Loading was cancelled.")
        except Exception as exc:
            log.error("render %d failed:\n%s", req.seq, traceback.format_exc())
            self.render_failed.emit(req.seq, error_text(exc))

    def _do_before(self, doc: EditDocument, key: tuple) -> None:
        try:
            engine = self._ensure_engine()
            img = engine.render(doc, "before", self.preview_size)
        except Exception:
            log.warning("before image failed:\n%s", traceback.format_exc())
            return
        self._before_done[key] = None
        while len(self._before_done) > 16:
            self._before_done.popitem(last=False)
        self.before_ready.emit(BeforeImage(key[0], key[1], qimage_from_array(to_uint8(img))))

    def forget_before(self) -> None:
        """The GUI lost its before images (e.g. model switch): make them again when needed."""
        with self._lock:
            self._before_done.clear()

    def _do_thumbs(self, req: ThumbnailRequest) -> None:
        try:
            self._ensure_model(req.model)
            engine = self._ensure_engine()
            chunk, rest = req.seeds[: self.THUMB_CHUNK], req.seeds[self.THUMB_CHUNK :]
            images = engine.thumbnails(req.model, chunk, req.psi, req.size)
        except Cancelled:
            return
        except Exception as exc:
            log.error("thumbnails failed:\n%s", traceback.format_exc())
            self.render_failed.emit(-1, f"Could not draw face thumbnails: {error_text(exc)}")
            return
        self.thumbnails_ready.emit(req.token, [(s, qimage_from_array(a)) for s, a in zip(chunk, images)])
        if rest:
            with self._lock:
                if self._thumbs is None:  # not superseded: carry on after anything more urgent
                    self._thumbs = ThumbnailRequest(req.token, req.model, rest, req.psi, req.size)

    def _do_job(self, job: Job) -> None:
        self.job_started.emit(job.id, job.title, job.cancellable, job.quiet)
        ctx = JobContext(job.id, self, job.cancel)
        try:
            ctx.check()
            engine = self._ensure_engine()
            result = job.fn(engine, ctx)
            engine.take_published()  # already current in this (the render) session
        except Cancelled:
            self.job_failed.emit(job.id, "cancelled", True)
        except Exception as exc:
            log.error("job %r failed:\n%s", job.title, traceback.format_exc())
            self.job_failed.emit(job.id, error_text(exc), False)
        else:
            self.job_finished.emit(job.id, result)


# ---------------------------------------------------------------------------------------------
# the job worker (lives in the job thread): long jobs beside the renders


JOB_TORCH_THREADS = 1  #: torch intra-op threads of the job thread (renders keep the rest)
#: the process's torch thread count before any worker thread changed it (read at import, in the
#: main thread): the render thread sets it for itself, see :func:`lower_this_thread_priority`
PROCESS_TORCH_THREADS = torch.get_num_threads()
JOB_NICE = 10  #: how much lower the job thread's OS priority is (Linux: per thread)


def lower_this_thread_priority(torch_threads: int = JOB_TORCH_THREADS, nice: int = JOB_NICE) -> dict[str, Any]:
    """Give the calling thread less of the machine than the render thread; says what it did.

    * torch's intra-op thread count: with the OpenMP backend ``torch.set_num_threads`` sets the
      calling thread's own count (OpenMP's per-thread setting), so the render thread keeps all
      cores. But torch also remembers the last count set anywhere and gives it to every thread
      that starts computing *later*: so the render thread sets its own count explicitly when it
      starts (``PROCESS_TORCH_THREADS`` or the user's setting) instead of inheriting the job
      thread's. With another backend it is one process-wide pool: then it is left alone rather
      than slowing the renders too.
    * the OS priority: on Linux a nice value is per thread (``setpriority`` on the thread id); the
      OpenMP helpers this thread starts inherit it. Elsewhere it is process-wide: left alone.
    """
    import sys

    done: dict[str, Any] = {}
    if "OpenMP" in torch.__config__.parallel_info() and torch_threads > 0:
        before = torch.get_num_threads()
        torch.set_num_threads(min(before, torch_threads))
        done["torch_threads"] = torch.get_num_threads()
    if sys.platform.startswith("linux") and nice > 0:
        import os

        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
            done["nice"] = os.getpriority(os.PRIO_PROCESS, tid)
        except OSError:  # not allowed (some sandboxes): the torch threads still help
            pass
    return done


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


# ---------------------------------------------------------------------------------------------
# the GUI-side handle


@dataclass
class JobRecord:
    """What the Jobs panel shows of one (non-quiet) job."""

    id: int
    title: str
    lane: str  #: "render" (the render thread) or "jobs" (the job thread)
    state: str = "queued"  #: queued | running | finished | failed | cancelled
    message: str = ""
    fraction: float = -1.0
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    ended_at: float | None = None
    result: str = ""  #: one line about the result, or the error
    cancellable: bool = True
    request: Any = None  #: the task request, when it was one

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left, from the time so far and the fraction done (None: unknown)."""
        if self.state != "running" or self.started_at is None or not 0.02 <= self.fraction < 1:
            return None
        spent = (now if now is not None else time.monotonic()) - self.started_at
        return spent * (1 - self.fraction) / self.fraction


class EngineClient(QObject):
    """Owns the render thread and the job thread; the only way the GUI reaches the engine.

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
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._describe: dict[int, Callable[[Any], str]] = {}
        self.records: OrderedDict[int, JobRecord] = OrderedDict()
        self._seq = itertools.count(1)
        for w in (self.worker, self.job_worker):
            w.job_started.connect(self._on_job_started)
            w.job_progress.connect(self._on_job_progress)
            w.job_finished.connect(self._on_job_finished)
            w.job_failed.connect(self._on_job_failed)
        self.job_worker.installs.connect(self.worker.post_install)
        w = self.worker
        # convenience re-exports
        self.rendered = w.rendered
        self.render_failed = w.render_failed
        self.before_ready = w.before_ready
        self.thumbnails_ready = w.thumbnails_ready
        self.model_loaded = w.model_loaded
        self.idle = w.idle
        self.thread.start()
        self.job_thread.start()

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
               lane: str = "render", request: Any = None) -> int:
        """Run ``fn(session, ctx)`` in the render thread (``lane="render"``: quick work on the
        render session, e.g. switching device) or the job thread (``"jobs"``)."""
        if lane not in ("render", "jobs"):
            raise ValueError(f"lane must be 'render' or 'jobs', got {lane!r}")
        if lane == "jobs" and not self.separate_job_thread:
            lane = "render"
        job = Job(next_job_id(), title, fn, cancellable, quiet)
        self._callbacks[job.id] = (on_done, on_error)
        if not quiet:
            self.records[job.id] = JobRecord(job.id, title, lane, cancellable=cancellable, request=request)
            self._trim_records()
            self.jobs_changed.emit(job.id)
        (self.job_worker if lane == "jobs" else self.worker).post_job(job)
        return job.id

    def submit_task(self, request: Any, on_done: Callable | None = None, on_error: Callable | None = None,
                    quiet: bool | None = None, title: str | None = None,
                    wrap: Callable[[Callable], Callable] | None = None) -> int:
        """Run an :mod:`stylestudio.engine.tasks` request on its lane; long ones show in the Jobs panel.

        ``wrap`` may wrap the job body (e.g. to make a failure message name a file)."""
        from ..engine import tasks

        lane = tasks.lane(request)
        quiet = (lane == "render") if quiet is None else quiet

        def fn(session: Engine, ctx: JobContext) -> Any:
            return tasks.run(session, request, ctx.progress, ctx.cancel_token)

        job_id = self.submit(title or tasks.title(request), wrap(fn) if wrap is not None else fn, on_done, on_error,
                             quiet=quiet, lane=lane, request=request)
        self._describe[job_id] = lambda result: tasks.describe_result(request, result)
        return job_id

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job, wherever it is queued or runs (None: the running ones)."""
        self.worker.cancel(job_id)
        self.job_worker.cancel(job_id)

    def set_preview_size(self, size: int, budget_ms: float | None = None) -> None:
        self.worker.preview_size = int(size)
        if budget_ms is not None:
            self.worker.preview_budget_ms = float(budget_ms)

    def busy(self) -> bool:
        return self.worker.pending() or self.job_worker.pending()

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
        """Cancel what runs, stop both threads (pending work is abandoned)."""
        with self.worker._lock:
            self.worker._render = None
            self.worker._thumbs = None
            self.worker._jobs.clear()
            self.worker._before.clear()
        self.job_worker.clear()
        self.worker.cancel(None)
        self.job_worker.cancel(None)
        self.thread.quit()
        self.job_thread.quit()
        self.thread.wait(timeout_ms)
        self.job_thread.wait(timeout_ms)
