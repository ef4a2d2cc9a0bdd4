"""Pick, for every named region of a catalog, the query settings that measure most local.

    python scripts/tune_region_queries.py                 # the default model's shipped catalog
    python scripts/tune_region_queries.py --pairs 12 --dry-run

One setting cannot suit every region: a small part (eyes, mouth) has channels that act almost only
there, a large smooth one (skin, cheeks) shares nearly every channel with the rest of the face.
For each region every candidate in :data:`CANDIDATES` is measured exactly as ``bench/locality.py``
measures (``stylestudio.engine.regions.locality``) on *tuning* pairs (seeds 30000+, apart from the
benchmark's 10000+ and the faces the catalog was built from). The rule, in order:

1. among candidates that meet the locality goals with headroom (out ≤ 0.8 × 0.15 × in and
   out ≤ 0.8 × base_out / 3) and change the region visibly (in ≥ ``--min-inside`` on 0–255),
   the one that changes the region most: as strong a transfer as stays local;
2. else, among visible candidates, the lowest out/in;
3. else the one that changes the region most (a query that changes nothing is perfectly local
   and useless).

The choice is written into the catalog's ``queries``; the editor and ``stylestudio transfer``
start from it for that region. ``--table`` keeps the measurements, ``--from-table`` re-applies the
rule to them without measuring again.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)
import torch  # noqa: E402

from stylestudio.engine.regions.catalog import Catalog  # noqa: E402
from stylestudio.engine.regions.locality import measure, pair_styles, prepare_pair  # noqa: E402
from stylestudio.engine.regions.queries import QueryParams, query_layers  # noqa: E402

HEADROOM = 0.8  #: tuning pairs are few: a chosen setting must beat the goals by this factor

CANDIDATES: list[QueryParams] = (
    [QueryParams("effect", tau=t) for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)]
    + [QueryParams("sequential", eps=e, rho=r) for e, r in ((5.0, 0.4), (2.0, 0.5), (5.0, 0.5), (2.0, 0.65))]
)


def as_entry(p: QueryParams) -> dict:
    keep = {"effect": ("tau", "eps", "rho"), "sequential": ("eps", "rho"), "simple": ("lam",)}[p.kind]
    return {"kind": p.kind, **{k: getattr(p, k) for k in keep}}


def choose(rows: list[tuple[int, float, float, float]], min_inside: float) -> int:
    """Index of the chosen candidate from (index, in, out, base_out) rows (see the module doc)."""
    visible = [r for r in rows if r[1] >= min_inside]
    local = [r for r in visible if r[2] <= HEADROOM * 0.15 * r[1] and r[2] <= HEADROOM * r[3] / 3]
    if local:
        return max(local, key=lambda r: r[1])[0]
    if visible:
        return min(visible, key=lambda r: r[2] / r[1])[0]
    return max(rows, key=lambda r: r[1])[0]


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
    ap.add_argument("--table", type=Path, default=None, help="save the measurements (JSON) here")
    ap.add_argument("--from-table", type=Path, default=None, help="choose from saved measurements, do not measure")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from stylestudio.engine.model_store import ModelStore

    path = args.catalog or REPO / "resources" / "catalogs" / args.model / "default"
    gen = ModelStore().load(args.model)
    cat = Catalog.load(path)
    cat.check_compatible(gen)
    size, stop, margin = args.size, args.stop_resolution or None, max(1, round(args.dilate * args.size))
    names = cat.region_names()
    if args.from_table:
        table = json.loads(args.from_table.read_text())
    else:
        table = measure_all(gen, cat, names, args, size, stop, margin)
    if args.table:
        args.table.write_text(json.dumps(table, indent=1))
    chosen = {}
    for n in names:
        rows = [(i, *table[n][i]) for i in range(len(CANDIDATES))]
        best = choose(rows, args.min_inside)
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


def measure_all(gen, cat: Catalog, names: list[str], args, size: int, stop: int | None,
                margin: int) -> dict[str, list[list[float]]]:
    """region → per candidate [mean in, mean out, mean base_out] over the tuning pairs."""
    qs = {(n, i): query_layers(cat.rows(cat.resolve(n)), c, cat.effect_rows(cat.resolve(n)))
          for n in names for i, c in enumerate(CANDIDATES)}
    sums: dict = {key: [] for key in qs}
    t0 = time.time()
    for p in range(args.pairs):
        pair = prepare_pair(gen, cat, *pair_styles(gen, p, args.seed_base), size, stop)
        for (n, i), q in qs.items():
            if not any(np.any(v) for v in q.values()):
                continue
            m = measure(gen, pair, cat.resolve(n), q, size, stop, margin)
            if m is not None:
                sums[(n, i)].append((m.inside, m.outside, m.baseline_outside))
        print(f"  … {p + 1}/{args.pairs} pairs, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return {n: [[float(x) for x in (np.array(sums[(n, i)]).mean(0) if sums[(n, i)] else np.zeros(3))]
                for i in range(len(CANDIDATES))] for n in names}


if __name__ == "__main__":
    sys.exit(main())
