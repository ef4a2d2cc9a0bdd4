"""``stylestudio metrics ppl | als | fd --model NAME``: how smooth and editable a model is.

Runs unchanged under ``torchrun --nproc_per_node N -m stylestudio.cli metrics …``: the samples
are split across the processes and rank 0 prints the merged value with its 95 % interval.
"""
from __future__ import annotations

import argparse
import contextlib
import json
from dataclasses import fields, replace
from pathlib import Path

from .common import bounded, finish_on_ctrl_c, progress_printer, seed_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics", help="measure a model: perceptual path length, attribute linearity, FD-VGG")
    msub = p.add_subparsers(dest="metrics_command", metavar="METRIC")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])

    def common(q: argparse.ArgumentParser, samples: int) -> None:
        q.add_argument("--model", default=None, help="model name (default: the built-in face model)")
        q.add_argument("--device", default="auto")
        q.add_argument("--samples", type=bounded(int, 2, 10_000_000, "--samples"), default=samples,
                       help=f"samples (default {samples})")
        q.add_argument("--seed", type=seed_arg, default=0)
        q.add_argument("--json", action="store_true", help="print the result as JSON")

    ppl = msub.add_parser("ppl", help="perceptual path length (NVlabs ppl2_wend by default)")
    common(ppl, 50_000)
    ppl.add_argument("--space", choices=("w", "z"), default="w")
    ppl.add_argument("--sampling", choices=("end", "full"), default="end")
    ppl.add_argument("--crop", action="store_true", help="measure the central face crop only")
    ppl.add_argument("--batch", type=bounded(int, 1, 1024, "--batch"), default=8)
    ppl.set_defaults(func=cmd_ppl)

    als = msub.add_parser("als", help="attribute linearity score along the model's attribute sliders",
                          description="Needs the attribute sliders of the model (`stylestudio directions build`).")
    common(als, 100)
    als.add_argument("--psi", type=bounded(float, 0.0, 1.0, "--psi"), default=0.7)
    als.add_argument("--steps", type=bounded(int, 3, 101, "--steps"), default=11)
    als.add_argument("--span", type=bounded(float, 0.1, 10.0, "--span"), default=2.0,
                     help="slider units either side of the face (default 2)")
    als.add_argument("--direction", action="append", default=[], help="measure only this direction (repeatable)")
    als.set_defaults(func=cmd_als)

    fd = msub.add_parser("fd", help="Fréchet distance in VGG16 feature space (FD-VGG; not FID)")
    common(fd, 10_000)
    fd.add_argument("--data", type=Path, required=True, help="a prepared dataset (.npz) or a folder of pictures")
    fd.add_argument("--psi", type=bounded(float, 0.0, 1.0, "--psi"), default=1.0)
    fd.add_argument("--size", type=bounded(int, 32, 512, "--size"), default=224,
                    help="side the images are resized to for VGG16 (default 224)")
    fd.add_argument("--batch", type=bounded(int, 1, 1024, "--batch"), default=8)
    fd.add_argument("--resamples", type=bounded(int, 2, 10_000, "--resamples"), default=50,
                    help="bootstrap resamples for the interval (default 50)")
    fd.set_defaults(func=cmd_fd)


def _run(args: argparse.Namespace, make_request) -> int:
    import torch

    from ..engine import tasks
    from ..engine.distributed import current_world, process_device
    from ..engine.model_store import DEFAULT_MODEL
    from ..engine.session import Session

    torch.set_grad_enabled(False)
    world = current_world("cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    session = Session(device=process_device(args.device, world) or "auto")
    name = args.model or DEFAULT_MODEL
    request = make_request(name)
    can_finish = "finish" in {f.name for f in fields(request)}  # PPL: the samples so far are reported
    with finish_on_ctrl_c("the measurement") if can_finish else contextlib.nullcontext() as finish:
        if finish is not None:
            request = replace(request, finish=finish)
        result = tasks.run(session, request, progress_printer if world.is_main else None)
    if world.is_main:
        print(json.dumps(result.to_dict()) if args.json else result.line(), flush=True)
    return 0


def cmd_ppl(args: argparse.Namespace) -> int:
    from ..engine.tasks.metrics import MeasurePPL

    return _run(args, lambda name: MeasurePPL(name, args.samples, args.seed, args.space, args.sampling, args.crop,
                                              batch=args.batch))


def cmd_als(args: argparse.Namespace) -> int:
    from ..engine.tasks.metrics import MeasureALS

    return _run(args, lambda name: MeasureALS(name, args.samples, args.seed, args.psi, args.steps, args.span,
                                              directions=tuple(args.direction)))


def cmd_fd(args: argparse.Namespace) -> int:
    from ..engine.tasks.metrics import MeasureFD

    return _run(args, lambda name: MeasureFD(name, args.data, args.samples, args.seed, args.psi, args.size,
                                             args.batch, args.resamples))
