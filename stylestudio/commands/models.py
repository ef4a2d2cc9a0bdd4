"""``stylestudio models list | import FILE | fetch-default | remove NAME``."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import progress_printer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, import and fetch models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])

    ls = msub.add_parser("list", help="installed models")
    ls.set_defaults(func=cmd_list)

    imp = msub.add_parser("import", help="convert an NVlabs .pkl or rosinality .pt checkpoint (never executes it)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--name", default=None)
    imp.set_defaults(func=cmd_import)

    fd = msub.add_parser("fetch-default", help="fetch and convert the built-in face model (MobileStyleGAN)")
    fd.add_argument("--wheel", type=Path, default=None, help="use this random-face wheel file instead of downloading")
    fd.add_argument("--force", action="store_true", help="convert again even if already installed")
    fd.set_defaults(func=cmd_fetch_default)

    fa = msub.add_parser("fetch-all", help="fetch everything the app downloads on first use, now "
                                           "(for a machine that will go offline)")
    fa.set_defaults(func=cmd_fetch_all)

    rm = msub.add_parser("remove", help="delete an installed model")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)


def cmd_list(args: argparse.Namespace) -> int:
    from ..engine.model_store import DEFAULT_MODEL, ModelStore

    store = ModelStore()
    names = store.names()
    if not names:
        print(f"no models installed; the default ({DEFAULT_MODEL}) is fetched on first use")
    for name in names:
        info = store.info(name)
        mark = " (default)" if name == DEFAULT_MODEL else ""
        print(f"{name}{mark}\t{info.arch}\t{info.resolution}px\t{info.source.get('format', info.source.get('package', ''))}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ..engine.model_store import ModelStore

    info = ModelStore().import_file(args.file, args.name)
    print(f"imported {info.name} ({info.arch}, {info.resolution}px)")
    return 0


def cmd_fetch_default(args: argparse.Namespace) -> int:
    from ..engine.model_store import DEFAULT_MODEL, ModelStore
    from ..engine.mobilestylegan.provision import provision_default

    store = ModelStore()
    if store.has(DEFAULT_MODEL) and not args.force:
        print(f"{DEFAULT_MODEL} is already installed")
        return 0
    gen, source = provision_default(progress_printer, wheel=args.wheel)
    info = store.add(gen, DEFAULT_MODEL, source, provisioning=True)
    print(f"installed {info.name} ({info.arch}, {info.resolution}px) in {info.path}")
    return 0


def cmd_fetch_all(args: argparse.Namespace) -> int:
    """The default model, the face landmark model and the LPIPS weights, each converted once."""
    from ..engine.face.landmarks import predictor_path
    from ..engine.model_store import DEFAULT_MODEL, ModelStore
    from ..engine.perceptual.lpips import provide_weights

    store = ModelStore()
    if not store.has(DEFAULT_MODEL):
        store.load(DEFAULT_MODEL, progress=progress_printer)
    print(f"default model: {store.info(DEFAULT_MODEL).path}")
    print(f"face landmarks: {predictor_path(progress_printer)}")
    print(f"LPIPS weights: {provide_weights(progress_printer)}")
    print("everything the app needs is on this machine; it can now work offline")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from ..engine.model_store import ModelStore

    ModelStore().remove(args.name)
    print(f"removed {args.name}")
    return 0
