"""The render thread's worker: it owns the render session (models, the device, every tensor it draws).

It keeps mailboxes, drained in this priority: render > jobs > "before" images > thumbnails.

* render requests (a document snapshot, ``"preview"`` or ``"final"`` quality, a sequence
  number). Only the newest request is kept: while the worker renders frame *n*, requests
  *n+1 … n+k* overwrite each other in a one-slot mailbox and only *n+k* is rendered next. A
  slider dragged at 60 Hz therefore never builds a backlog, and the last frame always shows
  the last value.
* thumbnail requests for the face browser (newest wins too, rendered in small chunks so a
  render request never waits long behind them);
* quick jobs on the render session (switching device, installing what the job thread made).

Everything it sends back arrives through queued signals in the GUI thread. An exception never
escapes it: it becomes a ``render_failed``/``job_failed`` message that the window shows.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict
from typing import Any, Callable

import torch
from PySide6.QtCore import QObject, Qt, Signal, Slot

from ..engine.document import EditDocument
from ..engine.edits.kept import SLIDER_KINDS
from ..engine.render import to_uint8
from ..engine.session import Engine, LoadedModel, ModelDescription
from ..errors import Cancelled
from .qimage_arrays import qimage_from_array
from .thread_priority import PROCESS_TORCH_THREADS
from .work_items import (BeforeImage, Job, JobContext, RenderRequest, RenderResult, ThumbnailRequest,
                         cancel_queued_job, error_text, next_job_id)

log = logging.getLogger(__name__)


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
    libraries_changed = Signal(object)  # [(model, kind, name)] of slider libraries made current, renamed or deleted
    idle = Signal()
    _wake = Signal()

    THUMB_CHUNK = 2  #: faces per thumbnail batch: a render request waits at most for one batch

    def __init__(self, engine_factory: Callable[[], Engine], preview_size: int = 256) -> None:
        super().__init__()
        self._engine_factory = engine_factory
        self.engine: Engine | None = None
        self.preview_size = preview_size
        self.preview_budget_ms: float | None = None  #: a new budget for the engine, set from the GUI
        self.fast_previews: bool | None = None  #: a new "faster drag previews" choice, set from the GUI
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
                    engine.install(model, kind, name, value)

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
        if self.fast_previews is not None:
            if self.fast_previews != self.engine.fast_previews:
                self.engine.set_fast_previews(self.fast_previews)
            self.fast_previews = None
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
        versions: dict[str, str] = {}
        copies: tuple = ()
        from_copies: dict[str, str] = {}
        if quality == "final":
            try:  # what a save stamps and keeps (engine/edits/versions.py, kept.py)
                engine = self._ensure_engine()
                versions = engine.library_versions(req.doc)
                copies = engine.library_copies(req.doc)
                from_copies = engine.drawn_from_copies(req.doc, versions)
            except Exception:  # the frame matters more than its stamps
                log.error("library versions of render %d failed:\n%s", req.seq, traceback.format_exc())
        self.rendered.emit(RenderResult(req.seq, quality, qimg, m.name, m.generator.resolution,
                                        req.doc.source.key(), now - t0, req.posted_at, now, has_edits, versions,
                                        copies, from_copies))

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
            # already current in this (the render) session; the editor draws again with slider libraries that changed
            changed = [(m, k, n) for m, k, n, _ in engine.take_published() if k in SLIDER_KINDS]
            if changed:
                self.libraries_changed.emit(changed)
        except Cancelled:
            self.job_failed.emit(job.id, "cancelled", True)
        except Exception as exc:
            log.error("job %r failed:\n%s", job.title, traceback.format_exc())
            self.job_failed.emit(job.id, error_text(exc), False)
        else:
            self.job_finished.emit(job.id, result)
