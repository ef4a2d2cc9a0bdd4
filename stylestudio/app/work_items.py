"""What the GUI and the two worker threads hand each other: render requests and the frames they
give, thumbnail requests, jobs with their progress/cancel context, and the job-queue helpers both
workers share."""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtGui import QImage

from ..engine.document import EditDocument, KeptLibrary
from ..engine.progress import CancelToken
from ..errors import Cancelled, StyleStudioError

if TYPE_CHECKING:
    from ..engine.session import Engine


def error_text(exc: BaseException) -> str:
    """User-facing text: our own errors speak for themselves, anything else is named."""
    if isinstance(exc, StyleStudioError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


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
    #: final frames: edit id → version of the library entry each slider edit was drawn with
    #: (engine/edits/versions.py; saving stamps them into the project)
    versions: dict[str, str] = field(default_factory=dict)
    #: final frames: the library copies a save of this document keeps (engine/edits/kept.py) …
    copies: tuple[KeptLibrary, ...] = ()
    #: … and the sliders drawn from the project's own copies: edit id → why (not installed, as saved)
    from_copies: dict[str, str] = field(default_factory=dict)


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
