"""``stylestudio`` command line: the same engine as the GUI, for batch work, scripts and tests.

Every subcommand lives in :mod:`stylestudio.commands` and registers itself here. Bad input ends
with one ``error: …`` line and a non-zero exit, never a traceback (set ``STYLESTUDIO_DEBUG=1`` to
see one).
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import __version__
from .errors import InputError, StyleStudioError

COMMAND_MODULES = ("models", "generate", "project", "transfer", "catalog", "invert", "edit", "directions")


def add_model_options(p: argparse.ArgumentParser, output: bool = True) -> None:
    """The options every image-writing command shares."""
    p.add_argument("--model", default=None, help="model name (default: the built-in face model)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N, mps")
    if output:
        p.add_argument("--size", type=int, default=None, help="output size in pixels (default: model resolution)")
        p.add_argument("-o", "--output", type=Path, required=True, help="output file (.png .jpg .tif, or .npy)")


def progress_printer(message: str, fraction: float) -> None:
    print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)


def load_generator(args: argparse.Namespace):
    """(model name, generator) for ``--model``/``--device``; the default model is fetched on first use."""
    from .engine.device import pick_device
    from .engine.model_store import DEFAULT_MODEL, ModelStore

    device = pick_device(getattr(args, "device", None))
    name = args.model or DEFAULT_MODEL
    return name, ModelStore().load(name, device=device, progress=progress_printer)


def parse_source(spec: str, psi: float = 0.7):
    """A face given on the command line: ``seed:N``, a ``.stylestudio`` project or a W/W+ ``.npy``.

    Returns an :class:`~stylestudio.engine.document.EditDocument` (``model`` left empty for a
    bare latent or seed; the caller fills it in).
    """
    from .engine.document import EditDocument, LatentSource, SeedSource
    from .engine.project import SUFFIX, load_project

    if spec.startswith("seed:"):
        try:
            seed = int(spec[5:])
        except ValueError:
            raise InputError(f"bad seed in {spec!r}: expected seed:N with an integer N") from None
        return EditDocument(model="", source=SeedSource(seed=seed, psi=psi), title=f"seed {seed}")
    path = Path(spec)
    if path.suffix == SUFFIX:
        return load_project(path)
    if path.suffix == ".npy":
        return EditDocument(model="", source=LatentSource(wplus=load_latent(path), name=path.stem), title=path.stem)
    from .commands import invert  # noqa: F401  (registers the photo hook, also when no command ran)

    for hook in SOURCE_HOOKS:
        doc = hook(spec)
        if doc is not None:
            return doc
    raise InputError(f"cannot use {spec!r} as a face: give seed:N, a .stylestudio project or a .npy latent")


#: Further source parsers (e.g. photos) registered by command modules: spec → document or None.
SOURCE_HOOKS: list = []


def load_latent(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from exc
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{path}: expected a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float32)


def write_image(path: Path, image: torch.Tensor, size: int | None = None, recipe: dict | None = None,
                quality: int = 95) -> None:
    """``.npy``: the raw float32 NCHW batch, unclamped; image types: the first image, 8-bit."""
    from .engine.imageio import resize, save_image
    from .engine.render import to_uint8

    path = Path(path)
    if path.suffix.lower() == ".npy":
        img = image.detach().float()
        if size is not None and size != img.shape[-1]:
            img = torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear", antialias=True,
                                                  align_corners=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, img.cpu().numpy().astype(np.float32))
        return
    if image.shape[0] > 1:
        stem, suf = path.stem, path.suffix
        for i in range(image.shape[0]):
            save_image(path.with_name(f"{stem}-{i}{suf}"), resize(to_uint8(image[i : i + 1]), size), recipe, quality)
        return
    save_image(path, resize(to_uint8(image), size), recipe, quality)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="stylestudio", description="StyleStudio portrait editor")
    parser.add_argument("--version", action="version", version=f"StyleStudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or (len(argv) == 1 and argv[0].endswith(".stylestudio") and not argv[0].startswith("-")):
        return launch_gui(parser, argv)  # no command, or a project to open (file managers pass one)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    grad_mode = torch.is_grad_enabled()
    try:
        return int(args.func(args) or 0)
    except StyleStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("STYLESTUDIO_DEBUG"):
            traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {exc} (set STYLESTUDIO_DEBUG=1 for details)",
              file=sys.stderr)
        return 1
    finally:
        torch.set_grad_enabled(grad_mode)  # a command may switch autograd off; callers keep theirs


def gui_cannot_start() -> str | None:
    """Why the editor cannot start on this machine (no display, missing X11 libraries), checked
    before PySide6 is imported: Qt would otherwise print several lines and abort the process."""
    from .app.display_check import diagnose

    return diagnose()


def launch_gui(parser: argparse.ArgumentParser, files: Sequence[str] = ()) -> int:
    """Open the editor (on ``files`` when given); where it cannot run, say why in one line, exit 2."""
    problem = gui_cannot_start()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        from .app.main import run_app
    except ImportError as exc:
        from .app.display_check import import_error_message, is_library_error

        if not is_library_error(exc):
            raise  # a bug in StyleStudio's own imports
        if os.environ.get("STYLESTUDIO_DEBUG"):
            traceback.print_exc()
        print(f"error: {import_error_message(exc)}", file=sys.stderr)
        return 2
    return run_app(list(files))


if __name__ == "__main__":
    sys.exit(main())
