"""Running a batch: in this process, in ``jobs`` worker processes, and across ``torchrun`` ranks.

Each photo is computed the same way wherever it runs (same settings, fixed seeds, the same
number of torch threads per process), so the files do not depend on how the folder was split.
Worker processes are *spawned* (a forked copy of a process that already runs torch threads can
deadlock) and each loads the model once. Under ``torchrun`` every rank takes its own disjoint
share of the sorted list (every ``world``-th photo), writes into the same output folder, and
rank 0 gathers every rank's records over gloo and writes the report.
"""
from __future__ import annotations

import datetime
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ...errors import InputError
from ..progress import Cancel, Progress, check_cancel, is_cancelled, no_progress
from .folder import find_photos, output_names, share
from .process import DONE, FAILED, NO_FACE, RESUMED, BatchJob, PhotoRecord, process_photo
from .report import summary, write_contact_sheets, write_csv, write_html

Log = Callable[[str], None]
DIST_TIMEOUT = datetime.timedelta(hours=24)  #: ranks may finish their shares hours apart


@dataclass
class BatchResult:
    records: list[PhotoRecord]  #: every photo on rank 0 (merged), this rank's share elsewhere
    ignored: list[str] = field(default_factory=list)  #: files that are not photos
    reports: list[Path] = field(default_factory=list)  #: written by rank 0
    rank: int = 0
    world: int = 1

    def counts(self) -> dict[str, int]:
        return summary(self.records)

    @property
    def done(self) -> int:
        return sum(1 for r in self.records if r.status == DONE)

    @property
    def resumed(self) -> int:
        return sum(1 for r in self.records if r.status == RESUMED)

    @property
    def skipped(self) -> int:
        return sum(1 for r in self.records if r.status in (NO_FACE, FAILED))

    def line(self) -> str:
        """The one-line summary."""
        parts = [f"{self.done} photo{'s' if self.done != 1 else ''} edited"]
        if self.resumed:
            parts.append(f"{self.resumed} already done")
        for status in (NO_FACE, FAILED):
            n = sum(1 for r in self.records if r.status == status)
            if n:
                parts.append(f"{n} skipped ({status})")
        if self.ignored:
            parts.append(f"{len(self.ignored)} other file{'s' if len(self.ignored) != 1 else ''} ignored")
        faces = sum(r.faces_edited for r in self.records if r.status == DONE)
        secs = sum(r.seconds for r in self.records if r.status == DONE)
        tail = f"; {faces} face{'s' if faces != 1 else ''} in {secs:.0f} s of work" if faces else ""
        return ", ".join(parts) + tail

    @property
    def anything_done(self) -> bool:
        return any(r.ok for r in self.records)


# ---- distribution --------------------------------------------------------------------------


def world_from_env() -> tuple[int, int]:
    """(rank, world size) that ``torchrun`` gives this process ((0, 1) when not under it)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        raise InputError("RANK and WORLD_SIZE must be whole numbers (they are set by torchrun)") from None
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"RANK {rank} does not fit WORLD_SIZE {world}")
    return rank, world


def _join_group(world: int) -> bool:
    """Join torchrun's process group (gloo: CPU tensors, any machine); True when this call made it."""
    import torch.distributed as dist

    if world == 1 or dist.is_initialized():
        return False
    dist.init_process_group(backend="gloo", timeout=DIST_TIMEOUT)
    return True


def default_threads(jobs: int) -> int:
    """torch threads per process: the cores divided among this machine's processes."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, jobs * local))


# ---- worker processes ----------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(job: BatchJob, device: str, threads: int, name: str) -> None:
    import torch

    from ..session import Session

    _WORKER.update(job=job, key=job.key(), name=name, error="")
    try:
        torch.set_num_threads(threads)
        session = Session(device=device, threads=threads)
        session.model(job.recipe.model)  # once per worker, before its first photo
        _WORKER["session"] = session
    except Exception as exc:  # a failing initializer would be restarted forever: say it per photo instead
        _WORKER["error"] = f"the worker could not start ({type(exc).__name__}: {exc})"


def _work(photo: Path, output: Path) -> PhotoRecord:
    worker = f"{_WORKER['name']} pid {os.getpid()}"
    if _WORKER["error"]:
        return PhotoRecord(photo=Path(photo).as_posix(), status=FAILED, reason=_WORKER["error"], worker=worker)
    return process_photo(_WORKER["session"], _WORKER["job"], photo, output, _WORKER["key"], worker=worker)


def _run_pool(job: BatchJob, items: list[tuple[Path, Path]], jobs: int, device: str, threads: int, name: str,
              done: Callable[[PhotoRecord], None], cancel: Cancel) -> None:
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(processes=min(jobs, len(items)), initializer=_init_worker, initargs=(job, device, threads, name))
    try:
        pending = [pool.apply_async(_work, item) for item in items]
        while pending:
            if is_cancelled(cancel):
                pool.terminate()
                check_cancel(cancel, "batch cancelled")
            ready = [p for p in pending if p.ready()]
            if not ready:
                pending[0].wait(0.2)
                continue
            for p in ready:
                pending.remove(p)
                done(p.get())
        pool.close()
    finally:
        pool.terminate()
        pool.join()


# ---- the batch -----------------------------------------------------------------------------


def run_batch(job: BatchJob, session: Any = None, jobs: int = 1, threads: int = 0, device: str = "auto",
              progress: Progress = no_progress, cancel: Cancel = None, log: Log | None = None,
              on_photo: Callable[[PhotoRecord], None] | None = None) -> BatchResult:
    """Process this process's share of the folder; rank 0 also writes the report.

    ``session`` is used when ``jobs`` is 1 (else each worker makes its own); ``threads`` is the
    torch threads of each process (0: the cores divided among the processes of this machine;
    with a ``session``, 0 leaves its threads as they are). ``log`` gets one line per photo.
    """
    log = log or (lambda line: None)
    photos, others = find_photos(job.input_dir, job.output_dir)
    names = output_names(photos, job.format)
    rank, world = world_from_env()
    made_group = _join_group(world)
    try:
        mine = [photos[i] for i in share(len(photos), rank, world)]
        tag = f"rank {rank}" if world > 1 else "main"
        pool_threads = threads or default_threads(jobs)
        records: dict[str, PhotoRecord] = {}
        total = len(mine)

        def done(rec: PhotoRecord) -> None:
            records[rec.photo] = rec
            log(rec.line() if world == 1 else f"[rank {rank}] {rec.line()}")
            if on_photo is not None:
                on_photo(rec)
            progress(f"{len(records)}/{total} photos · {rec.line()}", len(records) / max(1, total))

        progress(f"{total} photos to do" + (f" (rank {rank} of {world})" if world > 1 else ""), 0.0 if total else 1.0)
        if jobs > 1 and total > 1:
            _run_pool(job, [(p, names[p]) for p in mine], jobs, device, pool_threads, tag, done, cancel)
        else:
            import torch

            if session is None:
                from ..session import Session

                session = Session(device=device)
                threads = pool_threads
            if threads:  # the same count as every other process: the same sums, the same files
                torch.set_num_threads(threads)
            key = job.key()
            for photo in mine:
                check_cancel(cancel, "batch cancelled")
                n = len(records) + 1
                sub = (lambda msg, frac, n=n: progress(f"{n}/{total} · {msg}", (n - 1 + max(0.0, frac)) / total))
                done(process_photo(session, job, photo, names[photo], key, sub, cancel, worker=tag))
        mine_records = [records[p.as_posix()] for p in mine]
        if world > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * world if rank == 0 else []
            dist.gather_object(mine_records, gathered if rank == 0 else None, dst=0)
            if rank == 0:
                merged = {r.photo: r for part in gathered for r in part}
                mine_records = [merged[p.as_posix()] for p in photos if p.as_posix() in merged]
            dist.barrier()
        result = BatchResult(mine_records, [o.as_posix() for o in others], rank=rank, world=world)
        if rank == 0:
            result.reports = write_reports(job, result)
        return result
    finally:
        if made_group:
            from ..distributed import leave

            leave()


def write_reports(job: BatchJob, result: BatchResult) -> list[Path]:
    out = Path(job.output_dir)
    notes = [f"Recipe: {job.recipe.name} (model {job.recipe.model}): " + "; ".join(job.recipe.describe())]
    if result.ignored:
        notes.append("Not photos, ignored: " + ", ".join(result.ignored))
    write_csv(out / "report.csv", result.records)
    write_html(out / "report.html", result.records, f"Batch: {Path(job.input_dir).name} → {out.name}", notes)
    return [out / "report.csv", out / "report.html", *write_contact_sheets(out, result.records)]
