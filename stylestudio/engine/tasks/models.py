"""Model store tasks: importing a checkpoint (converting a big one takes a while: the job thread)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..progress import Cancel, Progress, check_cancel
from . import task


@dataclass(frozen=True)
class ImportCheckpoint:
    """Convert a StyleGAN2 checkpoint (NVlabs .pkl or rosinality .pt) into the model store; the
    result is the model's name (``name``, or one made from the file's)."""

    path: Path
    name: str | None = None
    lane: ClassVar[str] = "jobs"

    def title(self) -> str:
        return f"Import {Path(self.path).name}"

    def describe_result(self, result: str) -> str:
        return f"model “{result}”"


@task(ImportCheckpoint)
def import_checkpoint(session: Any, req: ImportCheckpoint, progress: Progress, cancel: Cancel) -> str:
    progress(f"Converting {Path(req.path).name}…", -1)
    check_cancel(cancel)
    return session.store.import_file(Path(req.path), req.name).name
