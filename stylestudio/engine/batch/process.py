"""One photo of a batch: find the faces, invert each, apply the recipe, paste back, write.

Everything a photo does goes through the existing pieces: the ``FindFaces`` and ``InvertPhoto``
tasks, the renderer, the photo compositor's :func:`~stylestudio.engine.photo.paste_back` and
the export's writer (:func:`~stylestudio.engine.imageio.save_image`: sRGB ICC profile, the
photo's EXIF with orientation 1, the recipe in the file, atomic). A photo's outcome is a
:class:`PhotoRecord`, written beside the results so that a re-run skips finished photos and
the report can be made from all of them, whichever process did each.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...errors import Cancelled, StyleStudioError
from ...safe_io import atomic_write
from ..progress import Cancel, Progress, check_cancel, no_progress
from .folder import STATE_DIR
from .recipe import Recipe

RECORD_VERSION = 1
THUMB_PX = 192  #: side of the before/after thumbnails kept for the contact sheet and the report
FACES = ("all", "largest")
FORMATS = ("jpg", "png", "tif")

DONE, RESUMED, NO_FACE, FAILED = "done", "done earlier", "no face", "failed"


@dataclass(frozen=True, eq=False)
class BatchJob:
    """What every photo of a batch gets (the same in every process)."""

    recipe: Recipe
    input_dir: Path
    output_dir: Path
    faces: str = "all"  #: ``all`` or ``largest``
    format: str = "jpg"
    quality: int = 95
    save_projects: bool = False
    inversion: Any = None  #: :class:`~stylestudio.engine.inversion.InversionSettings` (None: defaults)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_dir", Path(self.input_dir))
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        if self.faces not in FACES:
            raise ValueError(f"faces must be one of {FACES}, got {self.faces!r}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")

    def settings(self):
        from ..inversion import InversionSettings

        return self.inversion or InversionSettings()

    def key(self) -> str:
        """Identity of the results: a finished photo is reused only when this is unchanged."""
        s = self.settings()
        knobs = {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.compare}
        text = json.dumps([RECORD_VERSION, self.recipe.digest(), self.faces, self.format, self.quality,
                           self.save_projects, repr(sorted(knobs.items()))])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class PhotoRecord:
    """The outcome of one photo (JSON-able)."""

    photo: str  #: relative to the input folder, POSIX
    status: str  #: done | done earlier | no face | failed
    reason: str = ""
    output: str = ""  #: relative to the output folder
    faces_found: int = 0
    faces_edited: int = 0
    lpips: list[float] = field(default_factory=list)  #: per edited face: the inversion's reconstruction LPIPS
    #: per edited face where it could be measured: face-embedding similarity, photo vs reconstruction
    identity: list[float] = field(default_factory=list)
    seconds: float = 0.0
    projects: list[str] = field(default_factory=list)
    thumbs: list[str] = field(default_factory=list)  #: before, after (relative to the output folder)
    key: str = ""
    worker: str = ""  #: which process did it (rank / pid)
    peak_mib: float = 0.0  #: that process's peak resident memory after this photo

    @property
    def ok(self) -> bool:
        return self.status in (DONE, RESUMED)

    def line(self) -> str:
        """The log line of this photo."""
        if self.status == DONE:
            lp = f", LPIPS {np.mean(self.lpips):.3f}" if self.lpips else ""
            faces = f"{self.faces_edited} of {self.faces_found} faces" if self.faces_edited != self.faces_found \
                else f"{self.faces_edited} face{'s' if self.faces_edited != 1 else ''}"
            return f"{self.photo}: {faces}{lp}, {self.seconds:.1f} s → {self.output}"
        if self.status == RESUMED:
            return f"{self.photo}: already done ({self.output}), skipped"
        return f"{self.photo}: skipped, {self.status}: {self.reason}"


def record_path(output_dir: Path, photo: Path) -> Path:
    return Path(output_dir) / STATE_DIR / "records" / (Path(photo).as_posix().replace("/", "%") + ".json")


def read_record(path: Path) -> PhotoRecord | None:
    """A record written by an earlier run (None when absent or unreadable: the photo is redone)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        names = {f.name for f in dataclasses.fields(PhotoRecord)}
        rec = PhotoRecord(**{k: v for k, v in data.items() if k in names})
        return rec if isinstance(rec.photo, str) and isinstance(rec.status, str) else None
    except (OSError, ValueError, TypeError):
        return None


def write_record(output_dir: Path, rec: PhotoRecord) -> None:
    path = record_path(output_dir, Path(rec.photo))
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(dataclasses.asdict(rec), indent=1).encode()
    atomic_write(path, lambda f: f.write(text))


def finished(job: BatchJob, photo: Path, output: Path, key: str) -> PhotoRecord | None:
    """The earlier record of ``photo`` when its result is there and was made the same way."""
    rec = read_record(record_path(job.output_dir, photo))
    if rec is None or rec.status != DONE or rec.key != key or not (Path(job.output_dir) / output).is_file():
        return None
    return dataclasses.replace(rec, status=RESUMED)


def peak_mib() -> float:
    """This process's peak resident memory (MiB)."""
    try:
        import resource
        import sys

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024
    except (ImportError, OSError):
        return 0.0


def _thumb(picture: np.ndarray) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray(picture)
    img.thumbnail((THUMB_PX, THUMB_PX), Image.LANCZOS)
    return np.asarray(img)


def process_photo(session: Any, job: BatchJob, photo: Path, output: Path, key: str | None = None,
                  progress: Progress = no_progress, cancel: Cancel = None, worker: str = "") -> PhotoRecord:
    """Do one photo (or reuse its earlier result). Bad input and failures become the record's
    status and reason; only a cancel goes through."""
    key = key or job.key()
    earlier = finished(job, photo, output, key)
    if earlier is not None:
        return earlier
    start = time.perf_counter()
    rec = PhotoRecord(photo=Path(photo).as_posix(), status=FAILED, key=key, worker=worker or f"pid {os.getpid()}")
    try:
        _process(session, job, Path(photo), Path(output), rec, progress, cancel)
    except Cancelled:
        raise
    except StyleStudioError as exc:  # the photo's fault: one line, the batch goes on
        rec.status, rec.reason = FAILED, str(exc).splitlines()[0]
    except MemoryError:
        rec.status, rec.reason = FAILED, "out of memory"
    except Exception as exc:  # a bug met on this photo: said, and the batch goes on
        rec.status, rec.reason = FAILED, f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    rec.seconds = round(time.perf_counter() - start, 2)
    rec.peak_mib = round(peak_mib(), 1)
    try:
        write_record(job.output_dir, rec)
    except StyleStudioError as exc:
        if rec.status == DONE:
            rec.status, rec.reason = FAILED, f"its record could not be written ({exc})"
    return rec


def _process(session: Any, job: BatchJob, photo: Path, output: Path, rec: PhotoRecord, progress: Progress,
             cancel: Cancel) -> None:
    from PIL import Image

    from .. import tasks
    from ..export import recipe as recipe_json, source_exif
    from ..imageio import save_image
    from ..photo import paste_back
    from ..project import save_project
    from ..render import Renderer, to_uint8
    from ..tasks.regions import fit_transfers

    path = Path(job.input_dir) / photo
    faces, _ = tasks.run(session, tasks.FindFaces(path, thumb_px=16), progress, cancel)
    rec.faces_found = len(faces)
    if not faces:
        rec.status, rec.reason = NO_FACE, "no face found"
        return
    chosen = list(range(len(faces))) if job.faces == "all" else [0]  # FindFaces gives the largest first
    loaded = session.model(job.recipe.model)
    renderer = Renderer(loaded.generator, job.recipe.model, loaded.resources)  # per photo: no cache outlives it
    settings = job.settings()
    docs = []
    picture = None
    for n, index in enumerate(chosen):
        check_cancel(cancel)
        source = tasks.run(session, tasks.InvertPhoto(job.recipe.model, path, faces[index].landmarks, index, settings),
                           progress, cancel)
        # the inversion's wall time would make every file differ from run to run: it goes in the report
        source = dataclasses.replace(source, inversion={k: v for k, v in source.inversion.items() if k != "seconds"})
        doc = job.recipe.apply(source, title=photo.stem if len(chosen) == 1 else f"{photo.stem} face {n + 1}")
        # a transfer the recipe fits "to this face" is fitted to this one (renders only use fits)
        doc = fit_transfers(session, doc, progress, cancel)
        face = to_uint8(renderer.render(doc))
        if picture is None:
            picture = source.photo
            before = _thumb(picture)
        picture = paste_back(picture, face, source.landmarks, source.quad)
        docs.append(doc)
        lp = source.inversion.get("lpips")
        if lp is not None:
            rec.lpips.append(float(lp))
        if source.inversion.get("identity") is not None:
            rec.identity.append(float(source.inversion["identity"]))
    out = Path(job.output_dir) / output
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, picture, recipe_json(docs[0]), quality=job.quality, exif=source_exif(docs[0]))
    rec.output = output.as_posix()
    if job.save_projects:
        for n, doc in enumerate(docs):
            name = output.with_suffix(".stylestudio") if len(docs) == 1 else \
                output.with_name(f"{output.stem}.face{n + 1}.stylestudio")
            thumb = np.asarray(Image.fromarray(to_uint8(renderer.render(doc))).resize((256, 256), Image.LANCZOS))
            # stamped with the library versions it was drawn with, their libraries kept (edits/versions.py, kept.py)
            save_project(Path(job.output_dir) / name, session.for_saving(doc), thumbnail=thumb)
            rec.projects.append(name.as_posix())
    thumbs = Path(STATE_DIR) / "thumbs" / photo.as_posix().replace("/", "%")
    for tag, img in (("before", before), ("after", _thumb(picture))):
        rel = thumbs.with_name(f"{thumbs.name}.{tag}.jpg")
        (Path(job.output_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
        save_image(Path(job.output_dir) / rel, img, quality=85, icc=False)
        rec.thumbs.append(rel.as_posix())
    rec.faces_edited = len(docs)
    rec.status = DONE
