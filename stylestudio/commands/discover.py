"""``stylestudio discover``: find new editing directions of a model without labels (ContraFeat,
or the PCA / SeFa baselines) and keep them as a direction library in the user data folder."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import bounded, finish_on_ctrl_c, output_path, progress_printer, seed_arg


def register(sub: argparse._SubParsersAction) -> None:
    from ..engine.discovery.sensor import SENSORS
    from ..engine.discovery.trainer import BASES, METHODS

    p = sub.add_parser("discover", help="discover new slider directions of a model (ContraFeat, PCA, SeFa)",
                       description="Trains ContraFeat's navigator (or computes PCA / SeFa at once) and saves the "
                                   "directions direction_1 … direction_K as library NAME of the model; use them "
                                   "with `stylestudio edit --library NAME --set direction_3=+2` and rename them "
                                   "with `stylestudio directions rename`.")
    p.add_argument("--model", default=None, help="model name (default: the built-in face model)")
    p.add_argument("--device", default="auto")
    p.add_argument("--method", choices=METHODS, default="contrafeat",
                   help="contrafeat (binary contrast, default), contrafeat-proto (prototype contrast), pca, sefa")
    p.add_argument("--directions", type=bounded(int, 1, 64, "--directions"), default=10,
                   help="how many directions (default 10)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=bounded(float, 0.01, 43200, "--minutes"), default=None,
                        help="training time budget (default 20)")
    budget.add_argument("--steps", type=bounded(int, 1, 10_000_000, "--steps"), default=None,
                        help="training steps instead of a time budget")
    p.add_argument("--size", type=bounded(int, 8, 1024, "--size"), default=128,
                   help="render size in pixels while training (default 128)")
    p.add_argument("--seed", type=seed_arg, default=0, help="the run is reproducible from its seed (default 0)")
    p.add_argument("--name", required=True, help="name of the direction library to save")
    p.add_argument("--sensor", choices=SENSORS, default="vgg16-relu3_3",
                   help="features compared: the LPIPS VGG16 up to relu3_3 / relu4_3, or the generator's own")
    p.add_argument("--basis", choices=BASES, default="pca", help="span of the directions (default: top-q PCA of W)")
    p.add_argument("--q", type=bounded(int, 1, 4096, "--q"), default=30, help="basis size (default 30)")
    p.add_argument("--pairs", type=bounded(int, 1, 256, "--pairs"), default=2, help="sample pairs per step (default 2)")
    p.add_argument("--smooth", action="store_true", help="smooth the row attention across neighbouring rows")
    p.add_argument("--scale", type=bounded(float, 0.001, 100, "--scale"), default=None,
                   help="training step s ~ U[-1, 1]·scale standard deviations per row under uniform attention "
                        "(default 2 / live rows: a one-row direction moves its row by at most 2)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="library file (default: the user data folder, where the editor finds it)")
    p.set_defaults(func=cmd_discover)


def cmd_discover(args: argparse.Namespace) -> int:
    from ..engine import tasks
    from ..engine.discovery.trainer import DiscoverySettings
    from ..engine.tasks.discover import Discover, check_discovery_name
    from ..errors import InputError
    from .common import cli_session

    check_discovery_name(args.name)
    output_path(args.output)
    minutes = args.minutes if args.minutes is not None or args.steps is not None else 20.0
    try:
        settings = DiscoverySettings(method=args.method, directions=args.directions, steps=args.steps,
                                     minutes=minutes, size=args.size, sensor=args.sensor, basis=args.basis,
                                     q=args.q, pairs=args.pairs, smooth=args.smooth, scale=args.scale, seed=args.seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    from ..engine.device import pick_device
    from ..engine.distributed import current_world, process_device
    from ..engine.progress import no_progress

    # under torchrun every process trains on its own samples and DDP averages the gradients
    world = current_world(pick_device(args.device))
    args.device = process_device(args.device, world) or args.device
    name, session = cli_session(args)
    if args.output is None and world.is_main:
        from ..engine import renames
        from ..engine.discovery.store import replaced_by_discovery

        old = replaced_by_discovery(name, args.name)  # said before the long job
        if old is not None:
            print(f"note: replaces your discovered library {args.name!r} ({renames.holding(old.names(), 'direction')}); pictures and "
                  f"projects that use its directions keep drawing them from a copy", flush=True)
    with finish_on_ctrl_c("the discovery") as finish:
        lib, path = tasks.run(session, Discover(name, args.name, settings, output=args.output, finish=finish),
                              progress_printer if world.is_main else no_progress)
    if not world.is_main:
        return 0
    for d in lib.directions.values():
        weights = d.row_weights or ()
        top = sorted(range(len(weights)), key=lambda r: -weights[r])[:3]
        rows = ", ".join(f"{r}:{weights[r]:.2f}" for r in top) if weights else "all"
        print(f"{d.name:14s} rows {rows}")
    early = " (finished early)" if lib.meta.get("finished_early") else ""
    print(f"{len(lib.names())} directions ({args.method}){early} → {path}")
    return 0
