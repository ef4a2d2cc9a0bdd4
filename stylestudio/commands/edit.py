"""``stylestudio edit``: move named attribute sliders on a face and export the result."""
from __future__ import annotations

import argparse
import re

from ..cli import add_model_options, load_generator, output_path, parse_source, psi_arg
from ..engine.limits import PSI_MAX, PSI_MIN
from ..errors import InputError

SLIDER_RANGE = 3.0
_SET = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*=\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edit", help="move attribute sliders (age, gender, smile, …) on a face",
                       description="Each --set NAME=VALUE moves one slider (−3 … +3; one unit ≈ half the "
                                   "attribute's spread across faces). With --keep all (the default) every "
                                   "other attribute is held still.")
    p.add_argument("--source", required=True, help="seed:N, a .stylestudio project or a W/W+ .npy")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   help="slider value, e.g. age=+2 (repeatable)")
    p.add_argument("--keep", default="all", help="all (default), none, or comma-separated attribute names")
    p.add_argument("--library", default="attributes", help="direction library (default: attributes)")
    p.add_argument("--psi", type=psi_arg, default=0.7, help=f"truncation ψ for seed:N, {PSI_MIN:g} … {PSI_MAX:g} (default 0.7)")
    p.add_argument("--save-project", default=None, help="also save the edited document as a .stylestudio project")
    add_model_options(p)
    p.set_defaults(func=cmd_edit)


def parse_sets(items: list[str]) -> list[tuple[str, float]]:
    out: dict[str, float] = {}
    for item in items:
        m = _SET.match(item)
        if not m:
            raise InputError(f"bad --set {item!r}: expected NAME=VALUE with a lower-case name, e.g. age=+2")
        value = float(m.group(2))
        if abs(value) > SLIDER_RANGE:
            raise InputError(f"{m.group(1)}={value:g} is outside the slider range −3 … +3")
        out[m.group(1)] = value
    return list(out.items())


def keep_list(spec: str, names: list[str], target: str) -> tuple[str, ...]:
    spec = spec.strip().lower()
    if spec == "all":
        return tuple(n for n in names if n != target)
    if spec in ("none", ""):
        return ()
    keep = [k.strip() for k in spec.split(",") if k.strip()]
    unknown = [k for k in keep if k not in names]
    if unknown:
        raise InputError(f"--keep names unknown attributes {', '.join(unknown)} (have: {', '.join(names)})")
    return tuple(k for k in keep if k != target)


def apply_sliders(doc, library, library_name: str, sets: list[tuple[str, float]], keep: str):
    """The document with one DirectionEdit per slider (an existing edit of that slider is replaced)."""
    from ..engine.edits.direction import DirectionEdit

    names = library.names()
    for name, value in sets:
        if name not in names:
            raise InputError(f"no slider {name!r} (have: {', '.join(names)})")
        existing = next((e for e in doc.edits if isinstance(e, DirectionEdit)
                         and e.library == library_name and e.name == name), None)
        kw = {"id": existing.id} if existing is not None else {}
        doc = doc.with_edit(DirectionEdit(library=library_name, name=name, amount=value,
                                          keep=keep_list(keep, names, name), **kw))
    return doc


def cmd_edit(args: argparse.Namespace) -> int:
    import dataclasses

    from ..engine.export import export_document
    from ..engine.project import save_project
    from ..engine.render import Renderer

    sets = parse_sets(args.sets)
    if not sets:
        raise InputError("nothing to do: give at least one --set NAME=VALUE")
    output_path(args.output, args.source)
    output_path(args.save_project, args.source)
    doc = parse_source(args.source, psi=args.psi)
    if args.model is None and doc.model:
        args.model = doc.model
    name, gen = load_generator(args)
    if not doc.model:
        doc = dataclasses.replace(doc, model=name)
    renderer = Renderer(gen, name)
    library = renderer.resources.get("directions", args.library)
    doc = apply_sliders(doc, library, args.library, sets, args.keep)
    export_document(gen, name, doc, args.output, size=args.size, renderer=renderer)
    if args.save_project:
        save_project(args.save_project, doc)
    print(args.output)
    return 0
