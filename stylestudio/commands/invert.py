"""``stylestudio invert photo.jpg -o face.stylestudio``: a face from a photo, ready to edit.

Any command taking ``--source`` also accepts a photo directly (:func:`.common.parse_source`: it is
then inverted with the default settings on the fly; ``invert`` once and reuse the project to
avoid paying for that every time).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.limits import PHOTO_SUFFIXES
from ..errors import InputError
from .common import add_model_options, add_pti_option, bounded, check_photo_suffix, choose_face, cli_session, \
    inversion_settings, output_path, progress_printer, steps_arg, time_budget_arg

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
                   help="the most W+ optimisation steps (default 80; the time budget usually ends them first "
                        "on a CPU; 0: estimate only)")
    p.add_argument("--time-budget", type=time_budget_arg, default=None, metavar="SECONDS",
                   help="seconds for the whole inversion: aligning, estimate, optimisation and --pti (default 60; "
                        "0 or none: no limit). The best result seen in that time is kept")
    add_pti_option(p, "the latent")
    p.add_argument("--no-estimate", action="store_true", help="start from the average face instead")
    p.add_argument("--no-encoder", action="store_true",
                   help="estimate from random faces only, without the model's trained encoder")
    p.add_argument("--reconstruction", type=Path, default=None,
                   help="also write the aligned reconstruction beside the aligned photo (.png/.jpg)")
    add_model_options(p, output=False)
    p.add_argument("-o", "--output", type=Path, required=True, help="project file to write (.stylestudio)")
    p.set_defaults(func=cmd_invert)


class _ThrottledProgress:
    """Prints stage changes and every ~5% — an inversion reports every step."""

    def __init__(self) -> None:
        self.last = (None, -1.0)

    def __call__(self, message: str, fraction: float) -> None:
        stage = message.split(" (")[0]
        if stage != self.last[0] or fraction - self.last[1] >= 0.05 or fraction >= 1.0:
            progress_printer(message, fraction)
            self.last = (stage, fraction)


def pti_note(settings, tuned: bool) -> str:
    """What the result line says about PTI: why it ran when the user did not ask for it."""
    if not tuned:
        return ""
    return " (with PTI)" if settings.pti else " (with PTI: a face far from the model's range; --no-pti skips it)"


def cmd_invert(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from ..engine import tasks
    from ..engine.document import EditDocument
    from ..engine.imageio import image_format, save_image
    from ..engine.project import SUFFIX, save_project
    from ..engine.render import to_uint8
    from ..engine.tasks.photo import aligned_photo

    if args.output.suffix != SUFFIX:
        raise InputError(f"-o must name a {SUFFIX} project file, got {args.output.name}")
    output_path(args.output, args.photo)  # before the minute of inverting, not after it
    output_path(args.reconstruction, args.photo)
    if args.reconstruction is not None:
        image_format(args.reconstruction)
    check_photo_suffix(args.photo)
    photo, faces, face = choose_face(args.photo, args.face)
    index = faces.index(face)

    settings = inversion_settings(args)
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
          f"after {seconds:.0f} s{pti_note(settings, source.weight_deltas is not None)}")
    if "identity" in source.inversion:
        from ..engine.inversion.identity import identity_line

        print(identity_line(source.inversion["identity"], source.inversion["identity_threshold"]))
    return 0
