"""``stylestudio`` command line: the same engine as the GUI, for batch work, scripts and tests.

Every subcommand is a module of :mod:`stylestudio.commands` with ``register(subparsers)``; adding
one is its name in :data:`COMMAND_MODULES`. What the commands share (options, argument types,
progress, reading faces, writing images) is :mod:`stylestudio.commands.common`. Bad input ends
with one ``error: …`` line and a non-zero exit, never a traceback (set ``STYLESTUDIO_DEBUG=1`` to
see one).
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Sequence

import torch

from . import __version__
# the shared helpers, also reachable here for scripts and tests (command modules import them from
# commands.common, never from this module)
from .commands.common import (add_model_options, bounded, check_psi, check_seed, cli_session,  # noqa: F401
                              finite_float, load_generator, load_latent, output_path, parse_source,
                              progress_printer, psi_arg, seed_arg, size_arg, write_image, write_images)
from .errors import StyleStudioError

COMMAND_MODULES = ("models", "generate", "project", "transfer", "catalog", "invert", "edit", "directions", "batch", "metrics",
                   "encoders", "discover", "train", "textpaths", "train_encoder")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one ``error: …`` line (exit 2), not usage plus a message."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = OneLineParser(prog="stylestudio", description="StyleStudio portrait editor")
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad argument (one line printed by OneLineParser), --help, --version
        return exc.code if isinstance(exc.code, int) else 2
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
    try:  # an unusable data or settings folder is one line here, not a failure inside Qt
        from . import paths

        paths.data_home()
        paths.config_home()
    except StyleStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
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
