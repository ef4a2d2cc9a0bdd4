"""``stylestudio render-project P.stylestudio -o out.png``: a saved document rendered headless."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError, ModelFormatError, UnknownModelError
from .common import (add_installed_sliders_option, add_model_options, cli_session, output_path, prepare_sliders,
                     progress_printer)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render-project", help="render a saved project file")
    p.add_argument("project", type=Path)
    add_model_options(p)
    add_installed_sliders_option(p)
    p.set_defaults(func=cmd_render_project)


def cmd_render_project(args: argparse.Namespace) -> int:
    """Render the project; a failure the project causes (its model, a resource it names, values
    that cannot be drawn) is one line naming the project file."""
    from ..engine.export import export_document
    from ..engine.project import load_project
    from ..engine.tasks.regions import fit_transfers

    output_path(args.output, args.project)  # a bad -o (or -o the project itself) is found first
    doc = load_project(args.project)
    label = args.project.name
    from_project = args.model is None
    if from_project:
        args.model = doc.model or None
    try:
        name, session = cli_session(args)
    except (UnknownModelError, ModelFormatError) as exc:
        if not from_project:
            raise
        raise InputError(f"{label}: model: {exc}") from None
    m = session.model(name)
    gen, renderer = m.generator, m.renderers["final"]
    try:
        doc = prepare_sliders(session, doc, label, args.installed_sliders)
        renderer.document_styles(doc)  # the latent, the resources and the edits: the project's part
        # a transfer saved with "fit to this face" but no fit yet (e.g. saved while it ran) is
        # fitted here, by the same job the editor runs: renders only use fits
        doc = fit_transfers(session, doc, progress_printer)
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None
    export_document(gen, name, doc, args.output, size=args.size, renderer=renderer)
    print(args.output)
    return 0
