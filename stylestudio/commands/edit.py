"""``stylestudio edit``: move named attribute sliders on a face and export the result."""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ..engine.limits import PSI_MAX, PSI_MIN
from ..errors import InputError
from .common import (add_installed_sliders_option, add_model_options, cli_session, output_path, parse_source,
                     prepare_sliders, progress_printer, psi_arg, save_stamped_project)

if TYPE_CHECKING:
    from ..engine.document import AttributeSettings

SLIDER_RANGE = 3.0
_SET = re.compile(r"^\s*([^=]*?)\s*=\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*$")
ATTRIBUTES = "attributes"  #: the library whose Keep others / pins are document state


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edit", help="move attribute sliders (age, gender, smile, …) on a face",
                       description="Each --set NAME=VALUE moves one slider (−3 … +3; one unit ≈ half the "
                                   "attribute's spread across faces). NAME is the slider's name in the "
                                   "direction library (age, yaw, eyes_open) or its label in the editor's "
                                   "Attributes panel (Age, \"Head yaw\", \"Eyes open\"). With --keep all (the "
                                   "default for a new face) every other attribute is held still.")
    p.add_argument("--source", required=True, help="seed:N, a .stylestudio project or a W/W+ .npy")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   help="slider value, e.g. age=+2 or \"Head yaw=-1\" (repeatable)")
    p.add_argument("--keep", default=None,
                   help="all, none, or comma-separated attribute names held still by every slider (pins); "
                        "default: the project's own Keep others and pins, else all")
    p.add_argument("--library", default=ATTRIBUTES, help="direction library (default: attributes)")
    p.add_argument("--psi", type=psi_arg, default=0.7, help=f"truncation ψ for seed:N, {PSI_MIN:g} … {PSI_MAX:g} (default 0.7)")
    p.add_argument("--save-project", default=None, help="also save the edited document as a .stylestudio project")
    add_installed_sliders_option(p)
    add_model_options(p)
    p.set_defaults(func=cmd_edit)


def parse_sets(items: list[str]) -> list[tuple[str, float]]:
    """``NAME=VALUE`` pairs in order (the name as typed: a library name or an editor label)."""
    out: dict[str, float] = {}
    for item in items:
        m = _SET.match(item)
        if not m or not m.group(1):
            raise InputError(f"bad --set {item!r}: expected NAME=VALUE, e.g. age=+2")
        value = float(m.group(2))
        if abs(value) > SLIDER_RANGE:
            raise InputError(f"{m.group(1)}={value:g} is outside the slider range −3 … +3")
        out[m.group(1)] = value
    return list(out.items())


def slider_key(text: str) -> str:
    """How a slider name is compared: case, spaces, '-' and '_' do not matter (Eyes open = eyes_open)."""
    return re.sub(r"[\s_-]+", " ", text.strip().casefold())


def resolve_name(text: str, labels: Mapping[str, str], what: str = "slider") -> str:
    """The library name of the slider called ``text`` by its name or by the editor's label.

    ``labels`` maps the library's names to their labels (the direction library is the one list
    both the CLI and the Attributes panel read).
    """
    if text in labels:
        return text
    key = slider_key(text)
    for name, label in labels.items():
        if key in (slider_key(name), slider_key(label)):
            return name
    have = ", ".join(n if slider_key(n) == slider_key(l) else f"{n} ({l})" for n, l in labels.items())
    shown = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
    raise InputError(f"no {what} {shown} (have: {have})")


def keep_settings(spec: str, labels: Mapping[str, str]) -> AttributeSettings:
    """``--keep``: all = Keep others on; none = off; a list = off with those attributes pinned."""
    from ..engine.document import AttributeSettings

    low = spec.strip().lower()
    if low == "all":
        return AttributeSettings(keep_others=True)
    if low in ("none", ""):
        return AttributeSettings(keep_others=False)
    pins = [resolve_name(k.strip(), labels, "attribute") for k in spec.split(",") if k.strip()]
    return AttributeSettings(keep_others=False, pins=tuple(pins))


def keep_list(spec: str, names: list[str], target: str, labels: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """What a move of ``target`` holds still under ``--keep spec`` (the editor's rule, the same code)."""
    labels = labels if labels is not None else {n: n for n in names}
    return keep_settings(spec, labels).keep_for(names, target)


def apply_sliders(doc, library, library_name: str, sets: list[tuple[str, float]], keep: str | None):
    """The document with one DirectionEdit per slider (an existing edit of that slider is replaced).

    ``keep`` None uses the document's own switches (a project keeps its Keep others and pins); on
    the attributes library a given ``--keep`` becomes the document's switches, so a saved project
    opens in the editor with the switches that shaped its edits.
    """
    from ..engine.edits.direction import DirectionEdit

    names = library.names()
    labels = {n: library[n].label for n in names}
    settings = doc.attributes if keep is None else keep_settings(keep, labels)
    if library_name == ATTRIBUTES:
        doc = doc.with_attributes(settings)
    for text, value in sets:
        name = resolve_name(library.canonical(text), labels)  # a renamed direction's former name still works
        existing = next((e for e in doc.edits if isinstance(e, DirectionEdit)
                         and e.library == library_name and library.canonical(e.name) == name), None)
        kw = {"id": existing.id} if existing is not None else {}
        doc = doc.with_edit(DirectionEdit(library=library_name, name=name, amount=value,
                                          keep=settings.keep_for(names, name), **kw))
    return doc


def cmd_edit(args: argparse.Namespace) -> int:
    import dataclasses

    from ..engine.export import export_document
    from ..engine.tasks.regions import fit_transfers

    sets = parse_sets(args.sets)
    if not sets:
        raise InputError("nothing to do: give at least one --set NAME=VALUE")
    output_path(args.output, args.source)
    output_path(args.save_project, args.source)
    doc = parse_source(args.source, psi=args.psi)
    if args.model is None and doc.model:
        args.model = doc.model
    name, session = cli_session(args)
    m = session.model(name)
    gen, renderer = m.generator, m.renderers["final"]
    if not doc.model:
        doc = dataclasses.replace(doc, model=name)
    doc = prepare_sliders(session, doc, Path(args.source).name, args.installed_sliders)
    from .textpaths import apply_path_sliders, is_path_library

    from ..engine.edits.kept import installed_or_kept

    if is_path_library(renderer, args.library, doc):  # trained by `stylestudio textpaths`: curved paths
        doc = apply_path_sliders(doc, renderer, args.library, sets)
    else:  # installed, else the copy a project keeps
        library = installed_or_kept(renderer.resources, doc, "directions", args.library)
        doc = apply_sliders(doc, library, args.library, sets, args.keep)
    doc = fit_transfers(session, doc, progress_printer)  # a project's transfer waiting for its fit
    export_document(gen, name, doc, args.output, size=args.size, renderer=renderer)
    if args.save_project:
        save_stamped_project(args.save_project, session, doc)
    print(args.output)
    return 0
