"""The batch task: a recipe applied to every face of every photo of a folder."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from ..batch import BatchJob, BatchResult, PhotoRecord, run_batch
from ..progress import Cancel, Progress
from . import task


@dataclass(frozen=True, eq=False)
class ApplyToFolder:
    """Run ``job`` (in this session, or ``jobs`` worker processes); the result is a
    :class:`~stylestudio.engine.batch.BatchResult`.

    ``on_photo`` and ``log`` (not part of the request's identity) receive each finished photo's
    record and log line in the task's thread, e.g. for a live strip of results.
    """

    job: BatchJob
    jobs: int = 1
    threads: int = 0  #: torch threads per worker process (0: the cores divided among them)
    device: str = "auto"  #: for worker processes (``jobs`` > 1)
    on_photo: Callable[[PhotoRecord], None] | None = field(default=None, compare=False, repr=False)
    log: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    lane: ClassVar[str] = "long"

    def title(self) -> str:
        return f"Apply {self.job.recipe.name} to {self.job.input_dir.name}"


@task(ApplyToFolder)
def apply_to_folder(session: Any, req: ApplyToFolder, progress: Progress, cancel: Cancel) -> BatchResult:
    return run_batch(req.job, session=session if req.jobs <= 1 else None, jobs=req.jobs, threads=req.threads,
                     device=req.device, progress=progress, cancel=cancel, log=req.log, on_photo=req.on_photo)
