"""``stylestudio transfer``: take a region's look from a reference face (Editing in Style)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_model_options, finite_float, output_path, parse_source, progress_printer, psi_arg
from ..engine.limits import PSI_MAX, PSI_MIN
from ..errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    from ..engine.regions.masks import DEFAULT_COVERAGE, DEFAULT_MASK_MODE, MASK_MODES
    from ..engine.regions.fit import NEW_TRANSFER_PRESET, PRESETS
    from ..engine.regions.queries import QUERY_KINDS, QueryParams

    p = sub.add_parser(
        "transfer", help="transfer a region (mouth, eyes, hair…) from a reference face",
        description="Moves the style channels that act on one region of the target towards the "
                    "reference's, so that region takes the reference's look and the rest stays put. "
                    "Faces: seed:N, a .stylestudio project or a W/W+ .npy latent.")
    p.add_argument("--target", required=True, help="the face to edit")
    p.add_argument("--reference", required=True, help="the face to take the region's look from")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--region", action="append", metavar="NAME",
                       help="named region of the catalog (repeat or join with + for several; c3 = cluster 3)")
    where.add_argument("--mask", type=Path, help="painted region: an image, white (or opaque) = region")
    p.add_argument("--strength", type=finite_float, default=1.0, help="0 = nothing, 1 = the reference's look (default 1)")
    fit = p.add_mutually_exclusive_group()
    fit.add_argument("--fit", nargs="?", choices=tuple(PRESETS), const="full", default=NEW_TRANSFER_PRESET,
                     metavar="{" + ",".join(PRESETS) + "}",
                     help="how the transfer is fitted to this target and reference (kept in --save-project): "
                          "quick (the default: about a second on a CPU, more local than no fit) or full "
                          "(seconds: stronger and the most local; a bare --fit means full, as it always did)")
    fit.add_argument("--no-fit", dest="fit", action="store_const", const=None,
                     help="no fit: the catalog's query for the region, as the editor's 'Fit to this face' off")
    p.add_argument("--psi", type=psi_arg, default=0.7,
                   help=f"truncation ψ for seed faces, {PSI_MIN:g} … {PSI_MAX:g} (default 0.7)")
    p.add_argument("--catalog", default="default", help="region catalog name (default: default)")
    p.add_argument("--mask-mode", choices=MASK_MODES, default=DEFAULT_MASK_MODE,
                   help=f"painted region → clusters it covers, or → the target's own activations (default {DEFAULT_MASK_MODE})")
    p.add_argument("--coverage", type=finite_float, default=DEFAULT_COVERAGE,
                   help=f"clusters mode: share of a cluster the mask must cover (default {DEFAULT_COVERAGE})")
    adv = p.add_argument_group(
        "query (advanced)", "A named region uses the settings measured to be the most local for it (stored in "
                            "the catalog, see `stylestudio catalog show`); otherwise the defaults below. "
                            "Any option given here overrides them.")
    adv.add_argument("--query", choices=QUERY_KINDS, default=None, help=f"default {QueryParams.kind}")
    adv.add_argument("--lam", type=finite_float, default=None, help=f"simple query gain λ (default {QueryParams.lam})")
    adv.add_argument("--eps", type=finite_float, default=None,
                     help=f"sequential: out-of-region budget ε per layer (default {QueryParams.eps})")
    adv.add_argument("--rho", type=finite_float, default=None,
                     help=f"sequential: minimum in-region share ρ of a channel (default {QueryParams.rho})")
    adv.add_argument("--tau", type=finite_float, default=None,
                     help=f"effect: minimum share τ of a channel's pixel effect inside the region (default {QueryParams.tau})")
    p.add_argument("--save-project", type=Path, default=None, help="also save the edited document as a project")
    add_model_options(p)
    p.set_defaults(func=cmd_transfer)


def cmd_transfer(args: argparse.Namespace) -> int:
    from ..engine.edits.transfer import TransferEdit, query_fields
    from ..engine.export import export_document
    from ..engine.regions.fit import NEW_TRANSFER_PRESET
    from ..engine.model_store import DEFAULT_MODEL
    from ..engine.project import SUFFIX, save_project
    from ..engine.regions.masks import load_mask
    from ..engine.render import to_uint8
    from ..engine.session import Session
    from ..engine.tasks.regions import fit_transfers

    output_path(args.output, args.target, args.reference, args.mask)
    output_path(args.save_project, args.target, args.reference, args.mask)
    target = parse_source(args.target, args.psi)
    reference = parse_source(args.reference, args.psi)
    if args.model is None:
        args.model = target.model or reference.model or None
    if reference.edits:
        print(f"note: only the face of {args.reference} is used as the reference, not its {len(reference.edits)} edit(s)",
              file=sys.stderr)
    regions = tuple(r for spec in (args.region or []) for r in spec.split("+") if r.strip())
    if args.region is not None and not regions:
        raise InputError("--region needs a name")
    mask = load_mask(args.mask) if args.mask is not None else None
    if args.save_project is not None and args.save_project.suffix != SUFFIX:
        raise InputError(f"--save-project needs a {SUFFIX} file name")
    session = Session(device=getattr(args, "device", None) or "auto")
    name = args.model or DEFAULT_MODEL
    m = session.model(name, progress=progress_printer)
    gen, renderer = m.generator, m.renderers["final"]
    cat = renderer.resources.get("catalog", args.catalog)
    if mask is None:
        cat.resolve(regions)  # unknown names fail here, before any rendering
    query = query_fields(cat.region_query(regions) if mask is None else None, query=args.query, lam=args.lam, eps=args.eps,
                         rho=args.rho, tau=args.tau)
    edit = TransferEdit(reference=reference.source, region=regions, mask=mask, mask_mode=args.mask_mode,
                        coverage=args.coverage, strength=args.strength, catalog=args.catalog,
                        fit=args.fit is not None, fit_preset=args.fit or NEW_TRANSFER_PRESET, **query)
    doc = target.with_edit(edit)
    import dataclasses

    doc = dataclasses.replace(doc, model=name)
    # the fit (unless --no-fit): the same FitRegion job the editor runs in its job thread; the render
    # only uses its result
    doc = fit_transfers(session, doc, progress_printer)
    export_document(gen, name, doc, args.output, size=args.size, renderer=renderer)
    if args.save_project is not None:
        save_project(args.save_project, doc, to_uint8(renderer.render(doc, stop_resolution=128, display=True)))
    print(args.output)
    return 0
