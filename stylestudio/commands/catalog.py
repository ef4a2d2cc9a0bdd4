"""``stylestudio catalog build | show | label | map``: the semantic region catalog of a model."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ..errors import InputError
from .common import (add_model_options, bounded, cli_session, load_generator, output_path, parse_source,  # noqa: F401
                     progress_printer, psi_arg, seed_arg)  # (cli_session: also imported from here)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("catalog", help="build and inspect region catalogs (semantic clusters of a model)")
    csub = p.add_subparsers(dest="catalog_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])

    b = csub.add_parser("build", help="sample faces, cluster a layer, measure every style channel",
                        description="Saved per model in the user data folder (catalogs/<model>/<name>.json); "
                                    "it then takes precedence over a shipped catalog of the same name.")
    b.add_argument("--k", type=bounded(int, 2, 64, "--k"), default=14, help="number of clusters (default 14)")
    b.add_argument("--layer", default=None, help="synthesis layer to cluster (default: the last 32-px feature layer)")
    b.add_argument("--samples", type=bounded(int, 1, 1_000_000, "--samples"), default=200, help="faces sampled (default 200)")
    b.add_argument("--fit-samples", type=bounded(int, 1, 1_000_000, "--fit-samples"), default=None, help="faces used for k-means (default: --samples)")
    b.add_argument("--psi", type=psi_arg, default=0.7, help="truncation ψ of the sampled faces (default 0.7)")
    b.add_argument("--seed", type=seed_arg, default=0)
    b.add_argument("--batch", type=bounded(int, 1, 1024, "--batch"), default=4)
    b.add_argument("--effect-samples", type=bounded(int, 0, 100_000, "--effect-samples"), default=16,
                   help="faces for the pixel-effect matrices used by the effect query (default 16; 0 = skip)")
    b.add_argument("--name", default="default", help="catalog name (default: default)")
    add_model_options(b, output=False)
    b.set_defaults(func=cmd_build)

    s = csub.add_parser("show", help="list a catalog's clusters and named regions")
    s.add_argument("--model", default=None)
    s.add_argument("--name", default="default")
    s.set_defaults(func=cmd_show)

    lb = csub.add_parser("label", help="name a region: one or more clusters (empty list removes the name)")
    lb.add_argument("region", help="region name, e.g. mouth")
    lb.add_argument("clusters", nargs="*", type=bounded(int, 0, 63, "a cluster number"), help="cluster numbers, e.g. 3 7")
    lb.add_argument("--model", default=None)
    lb.add_argument("--name", default="default")
    lb.set_defaults(func=cmd_label)

    m = csub.add_parser("map", help="draw a face's cluster map (for naming clusters by eye)")
    m.add_argument("--target", required=True, help="seed:N, a project or a .npy latent")
    m.add_argument("--psi", type=psi_arg, default=0.7)
    m.add_argument("--name", default="default")
    add_model_options(m)
    m.set_defaults(func=cmd_map)


def _model_name(args: argparse.Namespace) -> str:
    from ..engine.model_store import DEFAULT_MODEL

    return args.model or DEFAULT_MODEL


def _load(model: str, name: str):
    from ..engine.regions.catalog import Catalog, find_catalog

    path = find_catalog(model, name)
    if path is None:
        raise InputError(f"no region catalog {name!r} for model {model!r}; build one with "
                         f"`stylestudio catalog build --model {model}`")
    return path, Catalog.load(path)


def cmd_build(args: argparse.Namespace) -> int:
    from ..engine import tasks
    from ..engine.regions.catalog import shipped_catalog_path

    if args.samples < 1 or args.batch < 1:
        raise InputError("--samples and --batch must be positive")
    name, session = cli_session(args)
    request = tasks.BuildCatalog(name, k=args.k, samples=args.samples, name=args.name, layer=args.layer,
                                 fit_samples=args.fit_samples, psi=args.psi, seed=args.seed, batch=args.batch,
                                 effect_samples=max(0, args.effect_samples))
    built = tasks.run(session, request, progress_printer)
    cat, path = built.catalog, built.path
    print(f"saved {path} ({cat.k} clusters of {cat.layer}, {args.samples} faces, {cat.meta['seconds']} s)")
    if shipped_catalog_path(name, args.name).is_file():
        print(f"note: it now takes precedence over the shipped catalog {args.name!r} and its region names; "
              f"name clusters with `stylestudio catalog label`, or delete {path.name} to go back", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    path, cat = _load(_model_name(args), args.name)
    print(f"{path}: {cat.k} clusters of layer {cat.layer} ({cat.meta.get('samples', '?')} faces)")
    for i in range(cat.k):
        names = [n for n, members in cat.names.items() if i in members]
        print(f"  c{i:<3d} {cat.area[i] * 100:5.1f}% of the picture  {', '.join(names)}")
    for n, members in cat.names.items():
        if len(members) > 1:
            print(f"  {n} = {' + '.join(f'c{c}' for c in members)}")
    if cat.effects:
        eff = cat.meta.get("effects", {})
        print(f"pixel effects: {len(cat.effects)} of {len(cat.style_layers)} style layers"
              + (f", {eff['samples']} faces" if "samples" in eff else ""))
    for n, q in cat.queries.items():
        print(f"  {n}: query " + ", ".join(f"{k}={v}" for k, v in q.items()))
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from ..engine.regions.catalog import user_catalog_path

    model = _model_name(args)
    _, cat = _load(model, args.name)
    cat = cat.with_name(args.region, args.clusters)
    path = cat.save(user_catalog_path(model, args.name))
    what = " + ".join(f"c{c}" for c in cat.names[args.region.strip().lower()]) if args.clusters else "removed"
    print(f"{args.region}: {what} ({path})")
    return 0


#: A fixed, well-separated palette for cluster maps (tab20-like).
PALETTE = np.array([
    [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75],
    [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207], [174, 199, 232], [255, 187, 120],
    [152, 223, 138], [255, 152, 150], [197, 176, 213], [196, 156, 148], [247, 182, 210], [199, 199, 199],
    [219, 219, 141], [158, 218, 229]], np.uint8)


def colour_map(labels: np.ndarray) -> np.ndarray:
    return PALETTE[labels % len(PALETTE)]


def cmd_map(args: argparse.Namespace) -> int:
    import torch

    from ..engine.imageio import image_format as save_image_format
    from ..engine.imageio import save_image
    from ..engine.render import Renderer, to_uint8

    output_path(args.output, args.target)
    save_image_format(args.output)
    doc = parse_source(args.target, args.psi)
    if args.model is None:
        args.model = doc.model or None
    name, gen = load_generator(args)
    renderer = Renderer(gen, name)
    cat = renderer.resources.get("catalog", args.name)
    size = args.size or 512
    with torch.no_grad():
        styles = renderer.document_styles(doc)
        face = to_uint8(torch.nn.functional.interpolate(renderer.render_styles(styles), size=(size, size),
                                                        mode="bilinear", antialias=True, align_corners=False))
        labels = cat.cluster_map(gen, styles, size)[0].cpu().numpy()
    blend = (0.45 * face + 0.55 * colour_map(labels)).astype(np.uint8)
    save_image(args.output, np.concatenate([face, blend], axis=1))
    for i in range(cat.k):
        share = float((labels == i).mean())
        if share > 0:
            names = ", ".join(n for n, members in cat.names.items() if i in members) or "-"
            print(f"c{i:<3d} {share * 100:5.1f}%  rgb{tuple(int(v) for v in PALETTE[i % len(PALETTE)])}  {names}")
    print(args.output)
    return 0
