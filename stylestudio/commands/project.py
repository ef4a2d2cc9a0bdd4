"""``stylestudio render-project P.stylestudio -o out.png``: a saved document rendered headless."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_model_options, load_generator, write_image


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render-project", help="render a saved project file")
    p.add_argument("project", type=Path)
    add_model_options(p)
    p.set_defaults(func=cmd_render_project)


def cmd_render_project(args: argparse.Namespace) -> int:
    from ..engine.export import export_document
    from ..engine.project import load_project

    doc = load_project(args.project)
    if args.model is None:
        args.model = doc.model or None
    name, gen = load_generator(args)
    export_document(gen, name, doc, args.output, size=args.size)
    print(args.output)
    return 0
