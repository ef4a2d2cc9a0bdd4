"""``stylestudio textpaths train | list | show | rename | remove``: sliders from pairs of sentences (ContraCLIP)."""
from __future__ import annotations

import argparse
from dataclasses import replace

from ..errors import InputError
from .common import bounded, cli_session, finish_on_ctrl_c, progress_printer, psi_arg, seed_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("textpaths", help="train sliders from pairs of contrasting sentences (ContraCLIP)")
    tsub = p.add_subparsers(dest="textpaths_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])

    t = tsub.add_parser("train", help="turn sentence pairs into curved latent paths (a long job)",
                        description="Each --pair \"POSITIVE|NEGATIVE\" becomes a slider whose + end moves the face "
                                    "towards POSITIVE. Uses the imported CLIP (`stylestudio encoders import FILE`), "
                                    "or the built-in face-text encoder (minilm) when none is imported.")
    t.add_argument("--model", default=None, help="model name (default: the built-in face model)")
    t.add_argument("--device", default="auto")
    t.add_argument("--pair", dest="pairs", action="append", default=[], metavar="POS|NEG", required=True)
    t.add_argument("--as", dest="names", action="append", default=[], metavar="NAME",
                   help="the name of the path of the pair in the same place (default: from the sentences)")
    budget = t.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=bounded(int, 1, 10_000_000, "--steps"), default=None)
    budget.add_argument("--minutes", type=bounded(float, 0.01, 100_000, "--minutes"), default=None)
    t.add_argument("--encoder", default=None,
                   help="an imported CLIP or minilm (default: the only CLIP imported, else minilm)")
    t.add_argument("--name", required=True, help="the library's name (its sliders: --library NAME)")
    t.add_argument("--method", choices=("contraclip", "linear", "styleclip"), default="contraclip",
                   help="contraclip (default); linear and styleclip are the paper's ablations")
    t.add_argument("--loss", choices=("contrastive", "cossim"), default="contrastive")
    t.add_argument("--batch", type=bounded(int, 1, 1024, "--batch"), default=8)
    t.add_argument("--lr", type=bounded(float, 1e-8, 1.0, "--lr"), default=1e-3)
    t.add_argument("--psi", type=psi_arg, default=0.7)
    t.add_argument("--seed", type=seed_arg, default=0)
    t.add_argument("--rows", type=bounded(int, 1, 64, "--rows"), default=None, metavar="N",
                   help="move W+ rows 0…N−1 only (default: the first two thirds); fewer rows keep a path off "
                        "the fine layers, which hold colour and texture")
    t.set_defaults(func=cmd_train)

    ls = tsub.add_parser("list", help="the text path libraries of a model")
    ls.add_argument("--model", default=None)
    ls.set_defaults(func=cmd_list)

    sh = tsub.add_parser("show", help="the paths of one library, their sentences and training")
    sh.add_argument("library")
    sh.add_argument("--model", default=None)
    sh.set_defaults(func=cmd_show)

    rn = tsub.add_parser("rename", help="rename a path (projects that use its old name keep working)")
    rn.add_argument("library")
    rn.add_argument("old", help="its name or label")
    rn.add_argument("new", help="the new name, as typed (\"big smile\" names it big_smile)")
    rn.add_argument("--model", default=None)
    rn.set_defaults(func=cmd_rename)

    rm = tsub.add_parser("remove", help="remove one path, or without NAME your whole library (a shipped "
                                        "library of that name is then used again)")
    rm.add_argument("library")
    rm.add_argument("name", nargs="?", default=None, help="the path's name or label")
    rm.add_argument("--model", default=None)
    rm.set_defaults(func=cmd_remove)


def parse_pairs(pairs: list[str], names: list[str]) -> tuple[tuple[str, str, str], ...]:
    from ..engine.text.library import parse_pairs as parse

    if len(names) > len(pairs):
        raise InputError(f"{len(names)} --as names for {len(pairs)} --pair options")
    return parse(pairs, names)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from ..engine import tasks
    from ..engine.resources import check_resource_name
    from ..engine.tasks.textpaths import TrainTextPaths

    check_resource_name(args.name, "text path library")
    pairs = parse_pairs(args.pairs, args.names)
    from ..engine import renames
    from ..engine.text.store import replaced_by_training

    mine, shipped = replaced_by_training(_model(args), args.name)  # said before the long job
    if mine is not None:
        print(f"note: replaces your text path library {args.name!r} ({renames.holding(mine.names(), 'path')}); "
              f"pictures and projects that use its paths keep drawing them from a copy")
    elif shipped is not None:
        print(f"note: {args.name!r} is also a library shipped with StyleStudio; yours is saved in your data folder "
              f"and hides it (delete yours to use the shipped one again)")
    from ..engine.text.encoders import default_encoder_name, load_encoder

    encoder = args.encoder or default_encoder_name()  # no encoder, or a wrong name: said before the model loads
    load_encoder(encoder)
    torch.set_grad_enabled(True)
    name, session = cli_session(args)
    request = TrainTextPaths(name, pairs, args.name, encoder, args.steps, args.minutes, args.method, args.loss,
                             args.batch, args.lr, args.psi, args.seed, rows=args.rows)
    with finish_on_ctrl_c("the training") as finish:
        lib, path = tasks.run(session, replace(request, finish=finish), progress_printer)
    m = lib.meta
    early = " (finished early)" if m.get("finished_early") else ""
    print(f"{renames.counted(len(lib.paths), 'path')} ({', '.join(lib.names())}), {m['steps']} steps{early} in {m['seconds']:.0f} s, "
          f"loss {m['eval_loss_start']:.4f} → {m['eval_loss_end']:.4f} → {path}")
    return 0


def _model(args: argparse.Namespace) -> str:
    from ..engine.model_store import DEFAULT_MODEL

    return args.model or DEFAULT_MODEL


def cmd_list(args: argparse.Namespace) -> int:
    from ..engine import renames
    from ..engine.text.library import TextPathLibrary, library_names, shipped_library

    model = _model(args)
    files = library_names(model)
    if not files:
        print(f"no text path libraries for {model}; train one with `stylestudio textpaths train`")
    for path in files:
        shipped = shipped_library(model, path.stem)
        where = ("  [shipped, read-only]" if shipped == path else
                 "  [yours; hides the shipped library of this name]" if shipped is not None else "")
        try:
            lib = TextPathLibrary.load(path)
            print(f"{path.stem:20s} {renames.counted(len(lib.paths), 'path')} ({', '.join(lib.names())}), {lib.meta.get('method', '?')}, "
                  f"encoder {lib.encoder}{where}")
        except InputError as exc:
            print(f"{path.stem:20s} unreadable: {exc}{where}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from ..engine.text.library import TextPathLibrary, find_library, shipped_library

    model = _model(args)
    path = find_library(model, args.library)
    if path is None:
        raise InputError(f"no text path library {args.library!r} for model {model!r}")
    lib = TextPathLibrary.load(path)
    m = lib.meta
    shipped = "  (shipped, read-only)" if shipped_library(model, args.library) == path else ""
    runs = [r for r in m.get("runs", []) if isinstance(r, dict)] if isinstance(m.get("runs"), list) else []
    print(f"{path}{shipped}\n  encoder {lib.encoder}, method {m.get('method')}, loss {m.get('loss')}", end="")
    if not runs:
        print(f", {m.get('steps')} steps in {m.get('seconds')} s, fixed-batch loss "
              f"{m.get('eval_loss_start', float('nan')):.4f} → {m.get('eval_loss_end', float('nan')):.4f}; "
              f"W+ rows 0–{lib.rows - 1}")
    else:  # a library joined from several trainings (the shipped one: age on fewer rows)
        print(f"; its paths come from {len(runs)} trainings:")
    for run in runs:
        rows = run.get("rows") if isinstance(run.get("rows"), int) else lib.rows
        print(f"    {', '.join(map(str, run.get('paths') or []))}: {run.get('steps')} steps, seed {run.get('seed')}, "
              f"W+ rows 0–{rows - 1}")
    for p in lib.paths:
        unit = f"   (unit {p.unit / lib.unit:.3g}× the library's" if p.unit is not None else ""
        if p.unit_negative is not None:
            unit += f"{'; ' if unit else '   ('}{p.unit_negative / lib.unit:.3g}× on the − side"
        unit += ")" if unit else ""
        rows = f"   (W+ rows 0–{p.rows - 1} only)" if p.rows is not None and p.rows != lib.rows else ""
        former = lib.former_names(p.name)
        was = f"   (formerly {', '.join(former)})" if former else ""
        print(f"  {p.name:20s} + {p.positive!r}   − {p.negative!r}{unit}{rows}{was}")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    from ..engine import renames
    from ..engine.text.store import rename_path

    path, key = rename_path(_model(args), args.library, args.old, args.new)
    if renames.slider_key(args.old, "text path") == key:
        print(f"{key} already has that name; nothing changed ({path})")
    else:
        print(f"{args.old} → {key} ({path})")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from ..engine.text.store import remove_library, remove_path

    model = _model(args)
    if args.name is None:
        path, shipped_again = remove_library(model, args.library)
        print(f"removed {path}" + ("; the shipped library of that name is used again" if shipped_again else ""))
    else:
        path, lib = remove_path(model, args.library, args.name)
        print(f"removed {args.name} from {path} ({len(lib.paths)} paths left: {', '.join(lib.names())})")
    return 0


def is_path_library(renderer, name: str, doc=None) -> bool:
    """Is ``name`` a text path library of the renderer's model (and not a direction library)? One
    only kept in project ``doc`` counts too (engine/edits/kept.py)."""
    from ..engine.text.library import SUFFIX

    if name == "sefa" or renderer.resources.find_file("directions", f"{name}.ssdir") is not None:
        return False
    if renderer.resources.find_file("textpaths", f"{name}{SUFFIX}") is not None:
        return True
    return doc is not None and any((k.kind, k.name) == ("textpaths", name) for k in doc.libraries)


def apply_path_sliders(doc, renderer, library_name: str, sets: list[tuple[str, float]]):
    """The document with one PathEdit per ``--set NAME=VALUE`` (an existing one of that path is replaced)."""
    from ..engine.edits.kept import installed_or_kept
    from ..engine.edits.path import PathEdit
    from .edit import resolve_name

    lib = installed_or_kept(renderer.resources, doc, "textpaths", library_name)
    labels = {p.name: p.label for p in lib.paths}
    for text, value in sets:
        name = resolve_name(text, labels, "text path")
        existing = next((e for e in doc.edits if isinstance(e, PathEdit) and e.library == library_name
                         and e.name == name), None)
        kw = {"id": existing.id} if existing is not None else {}
        doc = doc.with_edit(PathEdit(library=library_name, name=name, amount=value, **kw))
    return doc
