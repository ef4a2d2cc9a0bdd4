"""Photo tasks: find the faces of a photo, invert one into the model."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from ..progress import Cancel, Progress, check_cancel, checking
from . import task

CHOOSER_PX = 128  #: side of the thumbnail of each face found


@dataclass(frozen=True)
class FindFaces:
    """The photo's faces (largest first) and a square thumbnail of each: ``(faces, thumbs)``."""

    path: Path
    thumb_px: int = CHOOSER_PX
    lane: ClassVar[str] = "jobs"

    def title(self) -> str:
        return f"Open {Path(self.path).name}"

    def describe_result(self, result: tuple[list, list]) -> str:
        n = len(result[0])
        return f"{n} face{'s' if n != 1 else ''} found"


@task(FindFaces)
def find_faces(session: Any, req: FindFaces, progress: Progress, cancel: Cancel) -> tuple[list[Any], list[np.ndarray]]:
    from PIL import Image

    from ..face.align import load_photo
    from ..face.landmarks import detect_faces

    path = Path(req.path)
    progress(f"Looking for faces in {path.name}…", -1)
    photo = load_photo(path)
    faces = detect_faces(photo, checking(progress, cancel))
    thumbs = []
    for f in faces:
        x0, y0, x1, y1 = f.box
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 0.75
        box = tuple(int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
        crop = Image.fromarray(photo).crop(box).resize((req.thumb_px, req.thumb_px), Image.LANCZOS)
        thumbs.append(np.asarray(crop.convert("RGB")))
    return faces, thumbs


@dataclass(frozen=True, eq=False)
class InvertPhoto:
    """Align face ``index`` of the photo (``landmarks``) and invert it into ``model``; the result
    is the :class:`~stylestudio.engine.photo.PhotoSource` with the inversion attached.

    ``identity``: also measure whether the reconstruction is still the person
    (:mod:`~stylestudio.engine.inversion.identity`; ``source.inversion["identity"]``).

    ``on_update`` (not part of the request's identity) receives every
    :class:`~stylestudio.engine.inversion.InversionUpdate`, e.g. to show the reconstruction as it
    improves; ``describe(path_name, update)`` words the progress line (the GUI's wording). Both
    run in the task's thread.
    """

    model: str
    path: Path
    landmarks: np.ndarray
    index: int = 0
    settings: Any = None  #: :class:`~stylestudio.engine.inversion.InversionSettings` (None: defaults)
    identity: bool = True
    on_update: Callable[[Any], None] | None = field(default=None, compare=False, repr=False)
    describe: Callable[[str, Any], str] | None = field(default=None, compare=False, repr=False)
    lane: ClassVar[str] = "jobs"

    def title(self) -> str:
        return f"Invert {Path(self.path).name}"

    def describe_result(self, source: Any) -> str:
        inv = source.inversion or {}
        lp, ident = inv.get("lpips"), inv.get("identity")
        return "face inverted" + (f" (LPIPS {lp:.3f}" + (f", identity {ident:.2f}" if ident is not None else "") + ")"
                                  if lp is not None else "")


@task(InvertPhoto)
def invert_photo(session: Any, req: InvertPhoto, progress: Progress, cancel: Cancel) -> Any:
    from ..face.align import align_face, load_photo
    from ..inversion import InversionSettings, iter_inversion, model_encoder
    from ..inversion.invert import time_left
    from ..photo import photo_source_from_file

    path = Path(req.path)
    settings = req.settings or InversionSettings()
    progress(f"Aligning the face in {path.name}…", -1)
    loaded = session.model(req.model, progress=checking(progress, cancel))
    gen = loaded.generator
    began = settings.clock()  # the time budget covers aligning, not loading the model
    encoder = model_encoder(loaded.resources) if settings.estimate and settings.use_encoder else None
    source = photo_source_from_file(path, req.landmarks, req.index)
    aligned, alignment = align_face(load_photo(path), source.landmarks, gen.resolution, quad=source.quad)
    names = {"estimate": "first estimate", "optimise": "refining the latent", "pti": "fine-tuning for identity",
             "done": "done"}
    for u in iter_inversion(gen, aligned, settings, encoder=encoder, spent=settings.clock() - began):
        if req.on_update is not None:
            req.on_update(u)
        if u.result is not None:
            source = source.with_inversion(u.result, settings)
            if req.identity and u.image is not None:
                source = _with_identity(source, aligned, alignment, u.image, progress)
            return source
        text = (req.describe(path.name, u) if req.describe is not None else
                f"Inverting {path.name}: {names[u.stage]} · {max(0.0, min(1.0, u.fraction)) * 100:.0f} %"
                f"{time_left(u)}")
        progress(text, u.fraction)
        check_cancel(cancel, "inversion cancelled")
    raise RuntimeError("inversion ended without a result")  # unreachable: the iterator always finishes


def _with_identity(source: Any, aligned: np.ndarray, alignment: Any, image: Any, progress: Progress) -> Any:
    """The source with the identity measure in its inversion record (unchanged when it cannot be measured)."""
    import dataclasses

    from ...errors import InputError
    from ..inversion.identity import MIN_IDENTITY_SIDE, reconstruction_identity
    from ..render import to_uint8

    if min(aligned.shape[:2]) < MIN_IDENTITY_SIDE:
        return source
    progress("Measuring the likeness (face embeddings)…", -1)
    m = alignment.to_aligned()
    lm = np.asarray(source.landmarks, np.float64) @ m[:, :2].T + m[:, 2]
    try:
        found = reconstruction_identity(aligned, to_uint8(image), lm.astype(np.float32))
    except (InputError, OSError) as exc:  # the embedding network could not be provisioned: no measure
        progress(f"(identity not measured: {exc})", -1)
        return source
    return source if found is None else dataclasses.replace(source, inversion={**source.inversion, **found})


def aligned_photo(req: InvertPhoto, resolution: int) -> np.ndarray:
    """The aligned face the inversion fits (for a side-by-side reconstruction)."""
    from ..face.align import align_face, load_photo

    return align_face(load_photo(Path(req.path)), np.asarray(req.landmarks, np.float32), resolution)[0]

