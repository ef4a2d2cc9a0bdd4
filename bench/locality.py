"""How local is regional transfer? Measured against plain style mixing of the same layers.

For N target/reference pairs (seeds 10000+2i and 10000+2i+1, ψ 0.7) and every named region of
the model's catalog:

* the region is taken from the *target's own* cluster map, dilated by ``--dilate`` pixels
  (boundaries are soft, a halo of change right at the edge is not a leak);
* ``in`` / ``out``: mean absolute pixel change (0–255 scale, RGB mean) inside / outside it;
* ``moved``: how far the inside moved toward the reference, 1 − |G − R|_in / |T − R|_in (1: the
  region now matches the reference pixel for pixel, 0: unchanged);
* the **baseline** swaps the *whole* style vectors of the same layers (every layer where the
  query chose any channel) by a fraction t of the way: σ_S + t·(σ_R − σ_S). Its out-change is read
  off at the transfer's in-change (piecewise linear in t through t = 0, ½, 1, extrapolated
  proportionally beyond t = 1), so both are compared at equal inside change.

Goals: ``out ≤ base_out / 3`` and ``out ≤ 0.15 · in``.

``--measure boxes`` judges by a measure the project's cluster maps do not decide: fixed face-part
boxes of the FFHQ-aligned layout (``stylestudio.engine.regions.boxes``: mouth, eyes, nose, hair,
placed from the standard FFHQ alignment landmarks), mean |change| outside the box ÷ inside it, for
the transfer of that part. It also times the query (the fit, with ``--fit``) of every transfer
against an anchor measured in the same run (one plain render at the measuring size), so the
figures compare across machines and loads. Goal: ``out ≤ 0.15 · in``.

A second table compares the two ways of turning a *painted* mask into a region (clusters it
covers vs. the target's own activations inside the mask), with masks painted as generous blobs
around each named region (dilated by ``--mask-dilate``); the more local one is the default
(``stylestudio.engine.regions.masks.DEFAULT_MASK_MODE``).

To fit the CPU budget (100 pairs × every region × 3 renders) the measurement uses by default the
generator's coarse output after the 128-px stage (``--stop-resolution 128``: MobileStyleGAN's
256-px preview), so the two finest stages' style layers are not rendered for either method;
``--stop-resolution 0`` measures on full 1024-px renders box-downsampled to ``--size`` (spot
checks at full size gave the same ratios within a few hundredths). The contact sheet is always
rendered at full resolution.

    python bench/locality.py                       # default model, 100 pairs, contact sheet
    python bench/locality.py --pairs 20 --stop-resolution 0
    python bench/locality.py --fit --pairs 10 --mask-pairs 0 \
        --contact docs/regions_contact_sheet_fitted.png    # the editor's "fit to this face"
    python bench/locality.py --measure boxes --pairs 20 --contact '' --threads 2   # the box measure
    python bench/locality.py --measure boxes --fit --pairs 20 --contact '' --threads 2
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)
import torch  # noqa: E402

from stylestudio.engine.regions.boxes import FACE_BOXES, box_change, box_mask  # noqa: E402
from stylestudio.engine.regions.catalog import Catalog  # noqa: E402
from stylestudio.engine.regions.fit import FAST, FitSettings, fit_named_region  # noqa: E402
from stylestudio.engine.regions.locality import change, measure, pair_styles, prepare_pair, render_rgb  # noqa: E402
from stylestudio.engine.regions.masks import dilate, mask_clusters, mask_rows  # noqa: E402
from stylestudio.engine.regions.queries import QUERY_KINDS, QueryParams, blend_styles, query_layers  # noqa: E402
from stylestudio.engine.resources import Resources  # noqa: E402

render = render_rgb  # the contact sheet and mask table render the same way


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model name (default: the built-in one)")
    ap.add_argument("--catalog", default="default")
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--first-pair", type=int, default=0,
                    help="start at this pair (a long run split in parts; join them with --table-from A,B)")
    ap.add_argument("--mask-pairs", type=int, default=10, help="pairs for the painted-mask comparison (0: skip)")
    ap.add_argument("--regions", default=None,
                    help="comma-separated (default: every named region; with --measure boxes, every boxed part)")
    ap.add_argument("--measure", choices=("clusters", "boxes"), default="clusters",
                    help="clusters (default): each region on the target's own cluster map, against style mixing; "
                         "boxes: fixed FFHQ-layout face-part boxes (mouth, eyes, nose, hair), with query/fit times")
    ap.add_argument("--size", type=int, default=256, help="measuring resolution (default 256)")
    ap.add_argument("--stop-resolution", type=int, default=128,
                    help="measure on the generator's coarse output of this stage (default 128: the 256-px "
                         "preview; 0 = full render, about 3x slower on a CPU)")
    ap.add_argument("--dilate", type=float, default=0.03, help="region margin, fraction of the size (default 0.03)")
    ap.add_argument("--mask-dilate", type=float, default=0.06, help="painted blob margin, fraction of size (default 0.06)")
    ap.add_argument("--seed-base", type=int, default=10000)
    ap.add_argument("--query", default="tuned", choices=("tuned",) + QUERY_KINDS,
                    help="tuned (default): each region's settings stored in the catalog, as the editor uses them; "
                         "or one query for every region with the settings below")
    ap.add_argument("--lam", type=float, default=QueryParams.lam)
    ap.add_argument("--eps", type=float, default=QueryParams.eps)
    ap.add_argument("--rho", type=float, default=QueryParams.rho)
    ap.add_argument("--tau", type=float, default=QueryParams.tau)
    ap.add_argument("--fit", action="store_true",
                    help="measure the editor's \"fit to this face\" instead: q fitted per pair (regions.fit), "
                         "seconds per region and pair, so use fewer --pairs")
    ap.add_argument("--fit-start", choices=("both", "generous", "tuned"), default="both",
                    help="with --fit: start from the generous query and the region's tuned one, keeping the more "
                         "local fit (the editor's way), or from one of them only")
    ap.add_argument("--fit-preset", choices=("default", "fast"), default="default",
                    help="with --fit: the editor's fit (default) or the cheaper one (regions.fit.FAST); "
                         "the --fit-* flags below change single settings of it")
    ap.add_argument("--fit-beta", type=float, default=None, help="with --fit: weight of the leak")
    ap.add_argument("--fit-steps", type=int, default=None, help="with --fit: Adam steps per start")
    ap.add_argument("--fit-resolution", type=int, default=None, help="with --fit: the preview stage the fit renders")
    ap.add_argument("--fit-colour-steps", type=int, default=None,
                    help="with --fit: Adam steps of the colour fit (0: never)")
    ap.add_argument("--fit-lr", type=float, default=None, help="with --fit: Adam's step on q")
    ap.add_argument("--fit-one-start", action=argparse.BooleanOptionalAction, default=None,
                    help="with --fit: fit only the start whose unfitted transfer leaks least (or every start)")
    ap.add_argument("--fit-strips", action="store_true",
                    help="with --fit: fit as before whole stages (the generator keeps its memory-saving strips "
                         "under autograd), to time the difference")
    ap.add_argument("--save-rows", default=None,
                    help="keep every pair's measurements in this JSON file (rewritten every 10 pairs)")
    ap.add_argument("--table-from", default=None,
                    help="print the table of --save-rows files (an interrupted run; parts of a split one, comma-separated, are joined) and stop")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--contact", default=str(REPO / "docs" / "regions_contact_sheet.png"),
                    help="contact sheet PNG ('' to skip)")
    ap.add_argument("--contact-pairs", type=int, default=4)
    ap.add_argument("--thumb", type=int, default=192, help="contact sheet tile size (default 192)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.table_from:
        joined: dict[str, list] = {}
        for part in args.table_from.split(","):
            saved = json.loads(Path(part).read_text())
            print(f"{saved['pairs']} pairs from {part}" + (f" (pairs {saved['first']}–{saved['first'] + saved['pairs'] - 1})"
                                                          if "first" in saved else ""))
            for n, r in saved["rows"].items():
                joined.setdefault(n, []).extend(r)
        table(joined, list(joined), time.time())
        return 0

    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore

    model = args.model or DEFAULT_MODEL
    gen = ModelStore().load(model)
    cat: Catalog = Resources(gen, model).get("catalog", args.catalog)
    if args.fit_strips:
        import contextlib

        gen.whole_stages = contextlib.nullcontext  # the fit then renders in the generator's strips
    names = args.regions.split(",") if args.regions else (
        [n for n in FACE_BOXES if n in cat.region_names()] if args.measure == "boxes" else cat.region_names())
    if args.measure == "boxes" and set(names) - set(FACE_BOXES):
        ap.error(f"--measure boxes: no box for {', '.join(sorted(set(names) - set(FACE_BOXES)))} "
                 f"(boxes: {', '.join(FACE_BOXES)})")
    if not names:
        names = [f"c{i}" for i in range(cat.k)]
    fixed = None if args.query == "tuned" else QueryParams(args.query, args.lam, args.eps, args.rho, args.tau)
    params = {n: fixed or region_params(cat, n) for n in names}
    size, stop = args.size, (args.stop_resolution or None)
    margin = max(1, round(args.dilate * size))
    qs = {n: query_layers(cat.rows(cat.resolve(n)), params[n], cat.effect_rows(cat.resolve(n))) for n in names}
    chosen = {n: {k: int(v.astype(bool).sum()) for k, v in q.items()} for n, q in qs.items()}

    changed = {k: v for k, v in (("steps", args.fit_steps), ("beta", args.fit_beta), ("resolution", args.fit_resolution),
                                 ("colour_steps", args.fit_colour_steps), ("lr", args.fit_lr),
                                 ("one_start", args.fit_one_start)) if v is not None}
    fit_settings = dataclasses.replace(FAST if args.fit_preset == "fast" else FitSettings(), **changed)
    print(f"model {model}, catalog {args.catalog} ({cat.k} clusters of {cat.layer}), "
          f"query {'fitted to each pair (' + str(fit_settings) + ', start ' + args.fit_start + ')' if args.fit else 'per region, as tuned in the catalog' if fixed is None else fixed}")
    print(f"{args.pairs} pairs from pair {args.first_pair}, measured at {size}px" + (f" from stop_resolution={stop}" if stop else " (full render, box-downsampled)")
          + f", region margin {margin}px, threads {args.threads}")
    for n in names:
        layers = [k for k, c in chosen[n].items() if c]
        print(f"  {n:12s} clusters {cat.resolve(n)}  channels {sum(chosen[n].values()):5d} in {len(layers)} layers"
              f"  {describe(params[n])}")

    def query_for(name: str, target, reference) -> dict:
        """The region's catalog query, or with ``--fit`` the editor's fit to this pair."""
        if not args.fit:
            return qs[name]
        settings = dataclasses.replace(fit_settings, start=params[name]) if args.fit_start == "tuned" else fit_settings
        also = params[name] if args.fit_start == "both" else None
        return fit_named_region(gen, cat, target, reference, cat.resolve(name), settings, also=also)

    if args.measure == "boxes":
        box_table(gen, query_for, names, args, size, stop)
        return 0
    rows = {n: [] for n in names}
    t0 = time.time()
    for i in range(args.pairs):
        pair = prepare_pair(gen, cat, *pair_styles(gen, args.first_pair + i, args.seed_base), size, stop)
        for n in names:
            m = measure(gen, pair, cat.resolve(n), query_for(n, pair.target_styles, pair.reference_styles),
                        size, stop, margin)
            if m is not None:
                rows[n].append((m.inside, m.outside, m.moved, m.baseline_outside, m.area))
        if (i + 1) % 10 == 0 or i + 1 == args.pairs:
            el = time.time() - t0
            if args.save_rows:
                Path(args.save_rows).write_text(json.dumps({"pairs": i + 1, "first": args.first_pair, "rows": rows}))
            print(f"  … {i + 1}/{args.pairs} pairs, {el:.0f} s", file=sys.stderr, flush=True)

    if args.pairs > 0:
        table(rows, names, t0)
    if args.mask_pairs > 0:
        mask_table(gen, cat, names, fixed or QueryParams(), args, size, stop, margin)
    if args.contact and args.contact_pairs > 0:
        contact_sheet(gen, query_for, names, args)
    return 0


def region_params(cat: Catalog, name: str) -> QueryParams:
    tuned = cat.region_query(name)
    return QueryParams.from_mapping(tuned) if tuned else QueryParams()


def describe(p: QueryParams) -> str:
    return {"sequential": f"sequential ε={p.eps:g} ρ={p.rho:g}", "simple": f"simple λ={p.lam:g}",
            "effect": f"effect τ={p.tau:g}"}[p.kind]


def table(rows: dict, names: list[str], t0: float) -> None:
    print()
    header = f"{'region':12s} {'area':>6s} {'in':>6s} {'out':>6s} {'moved':>6s} {'base_out':>8s} {'out/in':>7s} {'out/base':>8s}  goal"
    print(header)
    print("-" * len(header))
    summary = []
    for n in names:
        a = np.array(rows[n])
        if not len(a):
            print(f"{n:12s}  (never present)")
            continue
        cin, cout, moved, bout, area = a.mean(0)
        r_in, r_base = cout / max(cin, 1e-9), cout / max(bout, 1e-9)
        ok = r_in <= 0.15 and r_base <= 1 / 3
        summary.append((r_in, r_base, ok))
        print(f"{n:12s} {area * 100:5.1f}% {cin:6.2f} {cout:6.2f} {moved:6.2f} {bout:8.2f} {r_in:7.3f} {r_base:8.3f}  {'yes' if ok else 'NO'}")
    if summary:
        s = np.array([(x, y) for x, y, _ in summary])
        print(f"{'mean':12s} {'':6s} {'':6s} {'':6s} {'':6s} {'':8s} {s[:, 0].mean():7.3f} {s[:, 1].mean():8.3f}  "
              f"{sum(ok for *_, ok in summary)}/{len(summary)} regions meet both goals")
    print(f"(in/out/base_out: mean |Δ| on 0–255, {time.time() - t0:.0f} s)")


def box_table(gen, query_for, names: list[str], args, size: int, stop: int | None) -> None:
    """Each part's transfer judged on its FFHQ-layout box; the query (or fit) of every transfer timed
    against an anchor (one plain render at the measuring size) measured in the same run."""
    rows: dict[str, list] = {n: [] for n in names}
    secs: list[float] = []
    part_secs: dict[str, list[float]] = {n: [] for n in names}
    anchors: list[float] = []
    t0, load0 = time.time(), os.getloadavg()[0]
    for i in range(args.pairs):
        s, r = pair_styles(gen, args.first_pair + i, args.seed_base)
        a0 = time.perf_counter()
        timg = render(gen, [s], size, stop)[0]
        anchors.append(time.perf_counter() - a0)
        for n in names:
            q0 = time.perf_counter()
            q = query_for(n, s, r)
            secs.append(time.perf_counter() - q0)
            part_secs[n].append(secs[-1])
            img = render(gen, [blend_styles(s, r, q, 1.0)], size, stop)[0]
            rows[n].append(box_change(timg, img, n, args.dilate) + box_change(timg, img, n, args.dilate, True)[1:])
        if (i + 1) % 5 == 0 or i + 1 == args.pairs:
            print(f"  … {i + 1}/{args.pairs} pairs, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print()
    print(f"face-part boxes of the FFHQ layout (margin {args.dilate:g} of the side; face: the outside on the inner "
          f"face box only), {args.pairs} pairs from "
          f"seed {args.seed_base + 2 * args.first_pair}, {'fitted' if args.fit else 'unfitted'} transfers")
    header = f"{'part':8s} {'box':>6s} {'in':>6s} {'out':>6s} {'face':>6s} {'out/in':>7s} {'face/in':>7s}  goal ≤ 0.15"
    print(header)
    print("-" * len(header))
    ratios = []
    for n in names:
        cin, cout, cface = np.array(rows[n]).mean(0)
        ratios.append(cout / max(cin, 1e-9))
        print(f"{n:8s} {box_mask(n, size).mean() * 100:5.1f}% {cin:6.2f} {cout:6.2f} {cface:6.2f} {ratios[-1]:7.3f} "
              f"{cface / max(cin, 1e-9):7.3f}  "
              f"{'yes' if ratios[-1] <= 0.15 else 'NO'}")
    print(f"{'mean':8s} {'':6s} {'':6s} {'':6s} {'':6s} {np.mean(ratios):7.3f} {'':7s}  {sum(x <= 0.15 for x in ratios)}/{len(ratios)} parts")
    anchor = float(np.median(anchors))
    what = "fit" if args.fit else "query"
    print(f"{what} per transfer: median {np.median(secs):.3f} s, max {np.max(secs):.3f} s; anchor (one plain render "
          f"at {size}px) {anchor:.3f} s; {what}/anchor {np.median(secs) / anchor:.1f}x (threads {args.threads}, "
          f"{time.time() - t0:.0f} s in all)")
    for n in names:
        ratio = np.array(part_secs[n]) / np.array(anchors)
        print(f"  {n:8s} {what}: median {np.median(part_secs[n]):.3f} s, {np.median(ratio):.1f}x the anchor "
              f"(max {ratio.max():.1f}x)")
    print(f"machine load (1-min average) at the start {load0:.1f}, at the end {os.getloadavg()[0]:.1f}")


def contact_sheet(gen, query_for, names: list[str], args) -> None:
    """Target, reference and the transfer of every region, rendered at full resolution."""
    sheet = []
    thumb = args.thumb
    for i in range(args.contact_pairs):
        s, r = pair_styles(gen, i, args.seed_base)
        row = list(render(gen, [s], thumb, None)) + list(render(gen, [r], thumb, None))
        for n in names:
            row += list(render(gen, [blend_styles(s, r, query_for(n, s, r), 1.0)], thumb, None))
        sheet.append(row)
    save_sheet(Path(args.contact), sheet, ["target", "reference"] + names, thumb)


def mask_table(gen, cat: Catalog, names: list[str], params: QueryParams, args, size: int, stop: int | None,
               margin: int) -> None:
    """Painted blobs around each region: clusters-it-covers vs. target-activations, same measure."""
    blob = max(1, round(args.mask_dilate * size))
    res = {m: {n: [] for n in names} for m in ("clusters", "activations")}
    t0 = time.time()
    for i in range(args.mask_pairs):
        s, r = pair_styles(gen, i, args.seed_base)
        timg = render(gen, [s], size, stop)[0]
        with torch.no_grad():
            labels = cat.cluster_map(gen, s, size)[0].cpu().numpy()
        for n in names:
            core = np.isin(labels, cat.resolve(n))
            if not core.any() or core.all():
                continue
            painted = dilate(core, blob)  # what a user paints: a generous blob over the part
            region = dilate(core, margin)
            outs = []
            for mode in ("clusters", "activations"):
                with torch.no_grad():
                    if mode == "clusters":
                        clusters = mask_clusters(cat, gen, s, painted)
                        rows, eff = cat.rows(clusters), cat.effect_rows(clusters)
                    else:
                        rows, eff = mask_rows(cat, gen, s, painted), None
                outs.append(blend_styles(s, r, query_layers(rows, params, eff), 1.0))
            imgs = render(gen, outs, size, stop)
            for mode, img in zip(("clusters", "activations"), imgs):
                res[mode][n].append(change(img, timg, region))
    print()
    print(f"painted masks ({args.mask_pairs} pairs, blob margin {blob}px; ratio = out/in, lower is more local)")
    print(f"{'region':12s} {'clusters in':>11s} {'out':>6s} {'ratio':>6s}   {'activations in':>14s} {'out':>6s} {'ratio':>6s}")
    tot = {"clusters": [], "activations": []}
    for n in names:
        line = f"{n:12s}"
        for mode, w in (("clusters", 11), ("activations", 14)):
            a = np.array(res[mode][n])
            if not len(a):
                line += f" {'-':>{w}s} {'-':>6s} {'-':>6s}  "
                continue
            cin, cout = a.mean(0)
            tot[mode].append(cout / max(cin, 1e-9))
            line += f" {cin:{w}.2f} {cout:6.2f} {cout / max(cin, 1e-9):6.3f}  "
        print(line)
    mc, ma = (float(np.mean(tot[m])) if tot[m] else float("nan") for m in ("clusters", "activations"))
    print(f"{'mean ratio':12s} {'':11s} {'':6s} {mc:6.3f}   {'':14s} {'':6s} {ma:6.3f}   "
          f"→ more local: {'clusters' if mc <= ma else 'activations'} ({time.time() - t0:.0f} s)")


def save_sheet(path: Path, sheet: list[list[np.ndarray]], labels: list[str], thumb: int = 160) -> None:
    from PIL import Image, ImageDraw

    cols = max(len(r) for r in sheet)
    pad, head = 4, 18
    W = cols * (thumb + pad) + pad
    H = head + len(sheet) * (thumb + pad) + pad
    canvas = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(labels[:cols]):
        draw.text((pad + c * (thumb + pad) + 4, 3), label, fill=(0, 0, 0))
    for rr, row in enumerate(sheet):
        for c, img in enumerate(row):
            im = Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8))
            canvas.paste(im, (pad + c * (thumb + pad), head + pad + rr * (thumb + pad)))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    print(f"contact sheet: {path}")


if __name__ == "__main__":
    sys.exit(main())
