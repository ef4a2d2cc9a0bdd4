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

Priority: render > jobs > "before" images > thumbnails. Everything the worker sends back
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

from ..engine.device import pick_device
from ..engine.document import EditDocument, seed_to_z
from ..engine.generator import Generator
from ..engine.model_store import ModelStore
from ..engine.render import Renderer, Resources, to_uint8
from ..errors import Cancelled, StyleStudioError

log = logging.getLogger(__name__)

QUALITIES = ("preview", "final")


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


@dataclass(frozen=True)
class ModelDescription:
    name: str
    arch: str
    resolution: int
    num_ws: int
    w_dim: int
    device: str
    parameters: int
    style_layers: int


class JobContext:
    """Handed to a job: report progress, learn about cancellation."""

    def __init__(self, job_id: int, worker: "EngineWorker", cancel: threading.Event) -> None:
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


@dataclass
class Job:
    id: int
    title: str
    fn: Callable[["Engine", JobContext], Any]
    cancellable: bool = True
    quiet: bool = False  #: no progress bar (short bookkeeping jobs)
    cancel: threading.Event = field(default_factory=threading.Event)


# ---------------------------------------------------------------------------------------------
# the engine proper (no Qt): loaded models, renderers


@dataclass
class LoadedModel:
    name: str
    generator: Generator
    resources: Resources
    renderers: dict[str, Renderer]
    description: ModelDescription
    #: output pixels per unit of ``stop_resolution`` (1 for StyleGAN2, 2 for wavelet models)
    stop_scale: float | None = None
    #: smoothed seconds of a preview render per ``stop_resolution`` (for adaptive previews)
    preview_times: dict[int, float] = field(default_factory=dict)
    previews: int = 0


class Engine:
    """Loaded models and their renderers. Lives in (and is only touched by) the worker thread."""

    MAX_LOADED = 2
    MIN_PREVIEW_PX = 64  #: adaptive previews never get smaller than this
    PREVIEW_RETRY = 20  #: every Nth preview may retry a stage once found too slow

    def __init__(self, device: str = "auto", threads: int = 0, store: ModelStore | None = None,
                 preview_budget_ms: float = 60.0) -> None:
        self.store = store or ModelStore()
        self.preview_budget_s = preview_budget_ms / 1000
        self.device_name = device
        self.device = pick_device(device)
        if threads > 0:
            torch.set_num_threads(threads)
        self.models: OrderedDict[str, LoadedModel] = OrderedDict()

    def set_device(self, device: str) -> None:
        dev = pick_device(device)
        self.device_name = device
        if dev != self.device:
            self.device = dev
            self.models.clear()

    def is_loaded(self, name: str) -> bool:
        return name in self.models

    def model(self, name: str, progress: Callable[[str, float], None] | None = None) -> LoadedModel:
        if name in self.models:
            self.models.move_to_end(name)
            return self.models[name]
        gen = self.store.load(name, device=self.device, progress=progress)
        resources = Resources(gen, name)
        renderers = {q: Renderer(gen, name, resources) for q in (*QUALITIES, "before")}
        d = gen.describe()
        desc = ModelDescription(name, d["arch"], d["resolution"], d["num_ws"], d["w_dim"], str(self.device),
                                d["parameters"], d["style_layers"])
        loaded = LoadedModel(name, gen, resources, renderers, desc)
        loaded.stop_scale = self._probe_stop_scale(gen)
        self.models[name] = loaded
        while len(self.models) > self.MAX_LOADED:
            self.models.popitem(last=False)
        return loaded

    @staticmethod
    @torch.no_grad()
    def _probe_stop_scale(gen: Generator) -> float | None:
        """Output pixels per unit of ``stop_resolution`` (1 for StyleGAN2, 2 for wavelet models),
        learned from a synthesis stopped at the coarsest stage (costs next to nothing)."""
        coarsest = min(l.resolution for l in gen.style_layout)
        try:
            styles = gen.styles(gen.broadcast_w(gen.w_avg[None]))
            img = gen.synthesize(styles, stop_resolution=coarsest).image
        except Exception:  # a generator without previews: full frames only
            return None
        return img.shape[-1] / coarsest

    def generator(self, name: str) -> Generator:
        return self.model(name).generator

    def renderer(self, name: str, quality: str = "final") -> Renderer:
        return self.model(name).renderers[quality]

    def stop_for(self, m: LoadedModel, size: int, adaptive: bool = False) -> int | None:
        """The ``stop_resolution`` for a quick frame of at most ``size`` px (None: no coarse frames).

        With ``adaptive``, the largest such stage whose measured render time fits
        ``preview_budget_s`` (never below ``MIN_PREVIEW_PX``): a fast GPU gets sharp previews, a
        busy laptop CPU small ones, and both stay fluid. Stages not measured yet are tried, and a
        stage found too slow is retried now and then (the machine may have been busy).
        """
        gen, scale = m.generator, m.stop_scale
        if scale is None:
            return None
        coarser = sorted(r for r in {l.resolution for l in gen.style_layout} if r * scale < gen.resolution)
        if not coarser:
            return None
        fit = [r for r in coarser if r * scale <= size] or coarser[:1]
        usable = [r for r in fit if r * scale >= min(self.MIN_PREVIEW_PX, size)] or fit[-1:]
        if not adaptive:
            return usable[-1]
        m.previews += 1
        chosen = usable[0]
        for r in reversed(usable):
            t = m.preview_times.get(r)
            if t is None or t <= self.preview_budget_s:
                chosen = r
                break
        # A stage once too slow is retried only when the current one is far inside the budget
        # (each stage costs 2–3× the one before, so the next may fit now that the machine got
        # faster), never while it struggles: a retry costs a slow frame.
        larger = [r for r in usable if r > chosen]
        fast = m.preview_times.get(chosen, 1e9) <= self.preview_budget_s / 3
        if larger and fast and m.previews % self.PREVIEW_RETRY == 0:
            return larger[0]
        return chosen

    def thumbnail_stop(self, m: LoadedModel, size: int) -> int | None:
        """The coarsest stage whose image is at least ``size`` px (downscaling keeps it crisp)."""
        gen, scale = m.generator, m.stop_scale
        if scale is None:
            return None
        enough = sorted(r for r in {l.resolution for l in gen.style_layout}
                        if size <= r * scale < gen.resolution)
        return enough[0] if enough else None

    @torch.no_grad()
    def render(self, doc: EditDocument, quality: str, preview_size: int) -> torch.Tensor:
        m = self.model(doc.model)
        stop = self.stop_for(m, preview_size, adaptive=True) if quality == "preview" else None
        renderer = m.renderers["before" if quality == "before" else quality]
        if quality == "before":
            doc = EditDocument(doc.model, doc.source)
        t0 = time.perf_counter()
        image = renderer.render(doc, stop_resolution=stop)
        if stop is not None:
            dt = time.perf_counter() - t0
            old = m.preview_times.get(stop)
            m.preview_times[stop] = dt if old is None else 0.7 * old + 0.3 * dt
        return image

    @torch.no_grad()
    def thumbnails(self, model: str, seeds: tuple[int, ...], psi: float, size: int) -> list[np.ndarray]:
        m = self.model(model)
        gen = m.generator
        z = torch.cat([seed_to_z(s, gen.z_dim) for s in seeds]).to(gen.device)
        ws = gen.mapping(z, psi)
        stop = self.thumbnail_stop(m, size)
        img = gen.synthesize(gen.styles(ws), stop_resolution=stop).image
        img = torch.nn.functional.interpolate(img.float(), size=(size, size), mode="bilinear",
                                              antialias=True, align_corners=False)
        return [to_uint8(img[i : i + 1]) for i in range(img.shape[0])]


# ---------------------------------------------------------------------------------------------
# the worker object (lives in the worker thread)


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
        self._ids = itertools.count(1)
        #: counters read by tests and the benchmark
        self.stats = {"render_requests": 0, "renders": 0, "dropped": 0, "previews": 0, "finals": 0}
        self._wake.connect(self._drain, Qt.ConnectionType.QueuedConnection)

    # -- posting (any thread) -------------------------------------------------------------------
    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

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

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job (or the running one): a queued job is dropped, a running one is told."""
        dropped: list[Job] = []
        with self._lock:
            for job in list(self._jobs):
                if job_id is not None and job.id == job_id:
                    self._jobs.remove(job)
                    dropped.append(job)
            cur = self._current_job
        if cur is not None and (job_id is None or cur.id == job_id) and cur.cancellable:
            cur.cancel.set()
        for job in dropped:
            self.job_failed.emit(job.id, "cancelled", True)

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
            result = job.fn(self._ensure_engine(), ctx)
        except Cancelled:
            self.job_failed.emit(job.id, "cancelled", True)
        except Exception as exc:
            log.error("job %r failed:\n%s", job.title, traceback.format_exc())
            self.job_failed.emit(job.id, error_text(exc), False)
        else:
            self.job_finished.emit(job.id, result)


# ---------------------------------------------------------------------------------------------
# the GUI-side handle


class EngineClient(QObject):
    """Owns the worker thread; the only way the GUI reaches the engine.

    Job callbacks (``on_done(result)``, ``on_error(message, cancelled)``) run in the GUI thread.
    """

    job_started = Signal(int, str, bool, bool)
    job_progress = Signal(int, str, float)
    job_ended = Signal(int)

    def __init__(self, engine_factory: Callable[[], Engine], preview_size: int = 256,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("stylestudio-engine")
        self.worker = EngineWorker(engine_factory, preview_size)
        self.worker.moveToThread(self.thread)
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._seq = itertools.count(1)
        w = self.worker
        w.job_started.connect(self.job_started)
        w.job_progress.connect(self.job_progress)
        w.job_finished.connect(self._on_job_finished)
        w.job_failed.connect(self._on_job_failed)
        # convenience re-exports
        self.rendered = w.rendered
        self.render_failed = w.render_failed
        self.before_ready = w.before_ready
        self.thumbnails_ready = w.thumbnails_ready
        self.model_loaded = w.model_loaded
        self.idle = w.idle
        self.thread.start()

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
               on_error: Callable | None = None, cancellable: bool = True, quiet: bool = False) -> int:
        job = Job(self.worker.next_id(), title, fn, cancellable, quiet)
        self._callbacks[job.id] = (on_done, on_error)
        self.worker.post_job(job)
        return job.id

    def cancel(self, job_id: int | None = None) -> None:
        self.worker.cancel(job_id)

    def set_preview_size(self, size: int, budget_ms: float | None = None) -> None:
        self.worker.preview_size = int(size)
        if budget_ms is not None:
            self.worker.preview_budget_ms = float(budget_ms)

    def busy(self) -> bool:
        return self.worker.pending()

    def _on_job_finished(self, job_id: int, result: Any) -> None:
        on_done, _ = self._callbacks.pop(job_id, (None, None))
        self.job_ended.emit(job_id)
        if on_done is not None:
            on_done(result)

    def _on_job_failed(self, job_id: int, message: str, cancelled: bool) -> None:
        _, on_error = self._callbacks.pop(job_id, (None, None))
        self.job_ended.emit(job_id)
        if on_error is not None:
            on_error(message, cancelled)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel what runs, stop the thread (pending work is abandoned)."""
        with self.worker._lock:
            self.worker._render = None
            self.worker._thumbs = None
            self.worker._jobs.clear()
            self.worker._before.clear()
        self.worker.cancel(None)
        self.thread.quit()
        self.thread.wait(timeout_ms)
