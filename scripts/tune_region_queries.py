"""Pick, for every named region of a catalog, the query settings that measure most local.

    python scripts/tune_region_queries.py                 # the default model's shipped catalog
    python scripts/tune_region_queries.py --pairs 12 --dry-run

One setting cannot suit every region: a small part (eyes, mouth) has channels that act almost only
there, a large smooth one (skin, cheeks) shares nearly every channel with the rest of the face.
For each region every candidate in :data:`CANDIDATES` is measured exactly as ``bench/locality.py``
measures (``stylestudio.engine.regions.locality``) on *tuning* pairs (seeds 30000+, apart from the
benchmark's 10000+ and the faces the catalog was built from), and the candidate with the lowest
outside/inside change ratio wins among those whose inside change is visible (≥ ``--min-inside``
on the 0–255 scale; a query that changes nothing is perfectly local and useless). When no
candidate is visible, the one that changes the region most wins. The choice is written into the
catalog's ``queries``; the editor and ``stylestudio transfer`` start from it for that region.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stylestudio.engine.document import SeedSource  # noqa: E402
from stylestudio.engine.regions.catalog import Catalog  # noqa: E402
from stylestudio.engine.regions.locality import measure, prepare_pair  # noqa: E402
from stylestudio.engine.regions.queries import QueryParams, query_layers  # noqa: E402

CANDIDATES: list[QueryParams] = (
    [QueryParams("effect", tau=t) for t in (0.5, 0.6, 0.7, 0.8, 0.9)]
    + [QueryParams("sequential", eps=e, rho=r) for e, r in ((5.0, 0.4), (2.0, 0.5), (5.0, 0.5), (2.0, 0.65))]
)


def as_entry(p: QueryParams) -> dict:
    keep = {"effect": ("tau", "eps", "rho"), "sequential": ("eps", "rho"), "simple": ("lam",)}[p.kind]
    return {"kind": p.kind, **{k: getattr(p, k) for k in keep}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilestylegan-ffhq")
    ap.add_argument("--catalog", type=Path, default=None, help="default: resources/catalogs/<model>/default")
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--seed-base", type=int, default=30000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--stop-resolution", type=int, default=128)
    ap.add_argument("--dilate", type=float, default=0.03)
    ap.add_argument("--min-inside", type=float, default=2.0)
    ap.add_argument("--dry-run", action="store_true", help="print the table, do not write the catalog")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from stylestudio.engine.model_store import ModelStore

    path = args.catalog or REPO / "resources" / "catalogs" / args.model / "default"
    gen = ModelStore().load(args.model)
    cat = Catalog.load(path)
    cat.check_compatible(gen)
    size, stop, margin = args.size, args.stop_resolution or None, max(1, round(args.dilate * args.size))
    names = cat.region_names()
    qs = {(n, i): query_layers(cat.rows(cat.resolve(n)), c, cat.effect_rows(cat.resolve(n)))
          for n in names for i, c in enumerate(CANDIDATES)}
    sums = {key: [] for key in qs}
    t0 = time.time()
    for p in range(args.pairs):
        with torch.no_grad():
            s = gen.styles(SeedSource(args.seed_base + 2 * p, 0.7).latent(gen))
            r = gen.styles(SeedSource(args.seed_base + 2 * p + 1, 0.7).latent(gen))
        pair = prepare_pair(gen, cat, s, r, size, stop)
        for (n, i), q in qs.items():
            if not any(np.any(v) for v in q.values()):
                continue
            m = measure(gen, pair, cat.resolve(n), q, size, stop, margin)
            if m is not None:
                sums[(n, i)].append((m.inside, m.outside, m.baseline_outside))
        print(f"  … {p + 1}/{args.pairs} pairs, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)

    chosen = {}
    for n in names:
        rows = []
        for i, c in enumerate(CANDIDATES):
            a = np.array(sums[(n, i)]).mean(0) if sums[(n, i)] else np.zeros(3)
            rows.append((i, *a))
        visible = [r for r in rows if r[1] >= args.min_inside]
        best = (min(visible, key=lambda r: r[2] / r[1]) if visible else max(rows, key=lambda r: r[1]))[0]
        chosen[n] = CANDIDATES[best]
        print(f"\n{n}")
        for i, cin, cout, base in rows:
            ratio = f"{cout / cin:6.3f} {cout / max(base, 1e-9):6.3f}" if cin > 0 else f"{'-':>6s} {'-':>6s}"
            print(f"  {'*' if i == best else ' '} {as_entry(CANDIDATES[i])!s:55s} in {cin:6.2f} out {cout:5.2f} "
                  f"out/in, out/base {ratio}")
    if not args.dry_run:
        meta = dict(cat.meta, queries_tuned=dict(pairs=args.pairs, seed_base=args.seed_base, size=size,
                                                 stop_resolution=stop, min_inside=args.min_inside))
        cat = dataclasses.replace(cat, queries={n: as_entry(c) for n, c in chosen.items()}, meta=meta)
        print(f"\nsaved {cat.save(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
