"""``stylestudio invert photo.jpg -o face.stylestudio``: a face from a photo, ready to edit.

Also registers a source hook so any command taking ``--source`` accepts a photo directly (it is
then inverted with the default settings on the fly; ``invert`` once and reuse the project to
avoid paying for that every time).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import cli
from ..cli import add_model_options, bounded, output_path
from ..engine.limits import PHOTO_SUFFIXES
from ..errors import InputError

steps_arg = bounded(int, 0, 100000, "the number of steps")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("invert", help="find the face in a photo and invert it into the model",
                       description="Detects the faces, aligns the chosen one as the model's training data was "
                                   "aligned, inverts it (estimate, W+ optimisation, optionally PTI fine-tuning) "
                                   "and saves a project that keeps the photo, so exports paste the edited face "
                                   "back into the full photo.")
    p.add_argument("photo", type=Path, help=f"a photo ({' '.join(PHOTO_SUFFIXES)}; EXIF orientation is honoured; "
                                            "up to 100 MP)")
    p.add_argument("--face", type=bounded(int, 0, 10000, "--face"), default=None, help="which face when the photo has several (see the list)")
    p.add_argument("--steps", type=steps_arg, default=None,
                   help="W+ optimisation steps (default 80, about a minute on two CPU cores; 0: estimate only)")
    p.add_argument("--time-budget", type=bounded(float, 0.0, None, "--time-budget"), default=None, help="stop the W+ optimisation after this many seconds")
    p.add_argument("--pti", action="store_true", help="also fine-tune the generator around the latent (identity)")
    p.add_argument("--pti-steps", type=steps_arg, default=None, help="fine-tuning steps with --pti (default 30)")
    p.add_argument("--no-estimate", action="store_true", help="start from the average face instead")
    p.add_argument("--no-encoder", action="store_true",
                   help="estimate from random faces only, without the model's trained encoder")
    p.add_argument("--reconstruction", type=Path, default=None,
                   help="also write the aligned reconstruction beside the aligned photo (.png/.jpg)")
    add_model_options(p, output=False)
    p.add_argument("-o", "--output", type=Path, required=True, help="project file to write (.stylestudio)")
    p.set_defaults(func=cmd_invert)


def check_photo_suffix(path: Path) -> None:
    """The same photo types everywhere: ``invert`` takes what ``--source`` takes."""
    if path.suffix.lower() not in PHOTO_SUFFIXES:
        raise InputError(f"{path}: not a photo type StyleStudio reads (use {' '.join(PHOTO_SUFFIXES)})")


def choose_face(path: Path, index: int | None):
    """(photo array, faces, chosen face) with the user-facing errors for none / several."""
    from ..engine.face.align import load_photo
    from ..engine.face.landmarks import detect_faces
    from ..cli import progress_printer

    photo = load_photo(path)
    faces = detect_faces(photo, progress_printer)
    if not faces:
        raise InputError(f"no face found in {path.name} (faces need to be at least ~40 pixels tall and "
                         "turned roughly towards the camera)")
    if index is None:
        if len(faces) > 1:
            listing = "\n".join(f"  --face {i}: {f.describe()}" for i, f in enumerate(faces))
            raise InputError(f"{path.name} has {len(faces)} faces (largest first); choose one:\n{listing}")
        index = 0
    if not 0 <= index < len(faces):
        raise InputError(f"--face {index}: {path.name} has {len(faces)} face{'s' if len(faces) > 1 else ''} "
                         f"(0…{len(faces) - 1})")
    return photo, faces, faces[index]


class _ThrottledProgress:
    """Prints stage changes and every ~5% — an inversion reports every step."""

    def __init__(self) -> None:
        self.last = (None, -1.0)

    def __call__(self, message: str, fraction: float) -> None:
        stage = message.split(" (")[0]
        if stage != self.last[0] or fraction - self.last[1] >= 0.05 or fraction >= 1.0:
            cli.progress_printer(message, fraction)
            self.last = (stage, fraction)


def cmd_invert(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np
    from PIL import Image

    from ..engine import tasks
    from ..engine.document import EditDocument
    from ..engine.imageio import image_format, save_image
    from ..engine.inversion import InversionSettings
    from ..engine.project import SUFFIX, save_project
    from ..engine.render import to_uint8
    from ..engine.tasks.photo import aligned_photo
    from .catalog import cli_session

    if args.output.suffix != SUFFIX:
        raise InputError(f"-o must name a {SUFFIX} project file, got {args.output.name}")
    output_path(args.output, args.photo)  # before the minute of inverting, not after it
    output_path(args.reconstruction, args.photo)
    if args.reconstruction is not None:
        image_format(args.reconstruction)
    check_photo_suffix(args.photo)
    photo, faces, face = choose_face(args.photo, args.face)
    index = faces.index(face)

    settings = InversionSettings()
    changes: dict = {"estimate": not args.no_estimate, "pti": args.pti, "use_encoder": not args.no_encoder}
    if args.steps is not None:
        changes.update(steps=args.steps, optimise=args.steps > 0)
    if args.time_budget is not None:
        changes["time_budget"] = args.time_budget
    if args.pti_steps is not None:
        changes["pti_steps"] = args.pti_steps
    settings = dataclasses.replace(settings, **changes)
    name, session = cli_session(args)
    request = tasks.InvertPhoto(name, args.photo, face.landmarks, index, settings)
    source = tasks.run(session, request, _ThrottledProgress())

    doc = EditDocument(model=name, source=source, title=args.photo.stem)
    renderer = session.renderer(name, "final")
    recon = to_uint8(renderer.render(doc))
    thumb = np.asarray(Image.fromarray(recon).resize((256, 256), Image.LANCZOS))
    save_project(args.output, doc, thumbnail=thumb)
    if args.reconstruction is not None:
        aligned = aligned_photo(request, renderer.generator.resolution)
        save_image(args.reconstruction, np.concatenate([aligned, recon], axis=1))
    final = {"lpips": source.inversion.get("lpips", float("nan"))}
    seconds = source.inversion.get("seconds", 0.0)
    print(f"{args.output}: face {index} of {len(faces)}, LPIPS {final['lpips']:.3f} "
          f"after {seconds:.0f} s{' (with PTI)' if settings.pti else ''}")
    return 0


def photo_hook(spec: str):
    """``--source photo.jpg`` for every command: one face, inverted on first render (no PTI)."""
    path = Path(spec)
    if path.suffix.lower() not in PHOTO_SUFFIXES:
        return None
    from ..engine.document import EditDocument
    from ..engine.photo import photo_source_from_file

    _, faces, face = choose_face(path, None)
    print(f"note: inverting {path.name} now; `stylestudio invert` saves the result for reuse", file=sys.stderr)
    return EditDocument(model="", source=photo_source_from_file(path, face.landmarks, 0), title=path.stem)


if photo_hook not in cli.SOURCE_HOOKS:
    cli.SOURCE_HOOKS.append(photo_hook)
