"""``stylestudio batch --recipe look.stylestudio --input DIR --output DIR``: one look, a whole folder.

The same command runs unchanged under ``torchrun --nproc_per_node N [--nnodes …]``: each rank
takes its own share of the folder, and rank 0 writes the report.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .common import (add_installed_sliders_option, add_pti_option, bounded, cli_session, inversion_settings,
                     prepare_sliders, steps_arg, time_budget_arg)
from ..errors import InputError

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="apply a project's edits to every face of every photo in a folder",
                       description="Finds the faces of every photo in --input (sub-folders included), inverts "
                                   "each into the recipe's model, applies the recipe's edits and writes the whole "
                                   "photo, original size, EXIF kept, sRGB profile embedded, into --output (same "
                                   "sub-folders). A photo without a face or that cannot be read is skipped with "
                                   "its reason; running the command again skips the photos already done. Ends "
                                   "with report.csv, report.html and contact-sheet.jpg in --output. Under "
                                   "torchrun each process takes its own share of the folder.")
    p.add_argument("--recipe", type=Path, required=True, help="a .stylestudio project whose edits are applied")
    p.add_argument("--input", type=Path, required=True, help="folder of photos")
    p.add_argument("--output", type=Path, required=True, help="folder for the results (created if missing)")
    p.add_argument("--jobs", type=bounded(int, 1, 256, "--jobs"), default=1,
                   help="worker processes on this machine, each with its own copy of the model (default 1)")
    p.add_argument("--threads", type=bounded(int, 0, 1024, "--threads"), default=0,
                   help="torch threads per process (default: the cores divided among the processes); the files "
                        "are identical for any --jobs and torchrun split given the same --threads")
    p.add_argument("--faces", choices=("all", "largest"), default="all", help="every face, or the largest per photo")
    p.add_argument("--time-budget", type=time_budget_arg, default=None,
                   help="seconds per face for the whole inversion (default: no limit, so every run writes the "
                        "same files; a limit makes results depend on the machine's speed)")
    p.add_argument("--steps", type=steps_arg, default=None,
                   help="latent refinement steps per face (default 80, about a minute on two CPU cores; 0: estimate only)")
    add_pti_option(p, "each face")
    p.add_argument("--format", choices=("jpg", "png", "tif"), default="jpg", help="output file type (default jpg)")
    p.add_argument("--quality", type=bounded(int, 1, 100, "--quality"), default=None,
                   help="JPEG quality (default: the recipe's export quality)")
    p.add_argument("--save-projects", action="store_true", help="also save each face as a project to open and tweak")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N, mps")
    add_installed_sliders_option(p)
    p.set_defaults(func=cmd_batch)


def device_for_rank(device: str) -> str:
    """Under torchrun on a machine with GPUs, ``auto`` gives each local rank its own GPU."""
    import os

    import torch

    if device == "auto" and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    return device


def recipe_as_drawn(session, recipe, label: str, installed: bool, say: bool = True):
    """The recipe every face is drawn with: its sliders with the library copies it keeps, or with
    the installed libraries where ``installed`` (``--installed-sliders``), as ``prepare_sliders`` says."""
    from ..engine.document import SeedSource

    doc = prepare_sliders(session, recipe.apply(SeedSource()), label, installed, say=say)
    return dataclasses.replace(recipe, edits=doc.edits, libraries=doc.libraries)


def cmd_batch(args: argparse.Namespace) -> int:
    import os

    from ..engine import tasks
    from ..engine.batch import BatchJob, Recipe, world_from_env
    from ..engine.batch.recipe import check_recipe
    from ..engine.batch.run import default_threads
    from ..engine.imageio import check_input_file
    from ..engine.project import SUFFIX
    from ..engine.tasks.batch import ApplyToFolder

    if args.recipe.suffix != SUFFIX:
        raise InputError(f"--recipe must be a {SUFFIX} project, got {args.recipe.name}")
    check_input_file(args.recipe, "project")
    if not args.input.is_dir():
        raise InputError(f"--input {args.input}: not a folder")
    if os.path.realpath(args.input) == os.path.realpath(args.output):
        raise InputError("--output must not be the --input folder (the originals stay untouched)")
    recipe = Recipe.load(args.recipe)
    rank, world = world_from_env()
    device = device_for_rank(args.device)
    args.model, args.device = recipe.model, device
    _, session = cli_session(args)
    # every process draws the recipe alike (a copy kept as saved, or the installed sliders); rank 0 says so
    recipe = recipe_as_drawn(session, recipe, args.recipe.name, args.installed_sliders, say=rank == 0)
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from ..safe_io import os_error_message

        raise InputError(os_error_message(args.output, exc)) from None
    quality = args.quality if args.quality is not None else recipe.export.quality
    job = BatchJob(recipe, args.input, args.output, faces=args.faces, format=args.format, quality=quality,
                   save_projects=args.save_projects, inversion=inversion_settings(args, unbudgeted=True))
    check_recipe(session, recipe, args.recipe.name)
    if rank == 0:
        print(f"recipe {args.recipe.name} (model {recipe.model}): {'; '.join(recipe.describe())}", flush=True)
    request = ApplyToFolder(job, jobs=args.jobs, threads=args.threads or default_threads(args.jobs), device=device,
                            log=lambda line: print(line, flush=True))
    result = tasks.run(session if args.jobs == 1 else None, request, _quiet)
    if rank != 0:
        return 0 if result.anything_done or not result.records else 1
    print(f"{result.line()}; report: {args.output / 'report.html'}", flush=True)
    if not result.records:
        print(f"error: no photos in {args.input}", file=sys.stderr)
        return 2
    if not result.anything_done:
        print("error: no photo could be done (see the reasons above)", file=sys.stderr)
        return 1
    return 0


def _quiet(message: str, fraction: float) -> None:
    """Per-photo lines are printed by the log; the inversion's step-by-step progress is not."""
