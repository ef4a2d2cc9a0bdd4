"""How local can *any* channel query be? Fit ``q`` per face pair by gradient descent and measure.

    python scripts/query_limit.py --regions nose,forehead,cheeks,skin,neck --pairs 8

The transfer ``σ_G = σ_S + diag(q)·(σ_R − σ_S)`` can only be as local as some ``q ∈ [0, 1]^C``
allows. The catalog's queries pick ``q`` from averaged statistics; this script asks what the
best ``q`` for one particular pair achieves, as evidence of where the limit lies (it is an
experiment; the editor's "fit to this face", ``stylestudio.engine.regions.fit``, is the same fit
with its defaults, and this script calls it).

For each tuning pair (seeds 30000+) and region, starting from a generous query (``--start``,
default the effect query at τ 0.3) and only over the channels it picked, ``q`` is fitted so the
render approaches the ideal composite: the start's result inside the region and the untouched
target outside it (a band of the bench's margin around the region is left free):

    loss = mean_in (G(q) − G(q₀))² + β · mean_out ρ(G(q) − T)

``ρ`` is a Charbonnier (smooth L1) penalty, since ``bench/locality.py`` measures mean absolute
change. Where that fit still leaks more than ``FitSettings.local_enough``, the fit's colour goal
(the reference's mean colour inside, over every channel) joins, as in the editor; ``--colour-steps 0``
leaves it out. Both the start and the fitted ``q`` are measured exactly as the benchmark measures
(``stylestudio.engine.regions.locality``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)
import torch  # noqa: E402

from stylestudio.engine.regions.catalog import Catalog  # noqa: E402
from stylestudio.engine.regions.fit import FitSettings, fit_query  # noqa: E402
from stylestudio.engine.regions.locality import measure, pair_styles, prepare_pair  # noqa: E402
from stylestudio.engine.regions.queries import QueryParams, query_layers  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilestylegan-ffhq")
    ap.add_argument("--regions", default="nose,forehead,cheeks,skin,neck")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--seed-base", type=int, default=30000)
    ap.add_argument("--start", default="effect:0.3", help="effect:TAU or sequential:EPS/RHO")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--beta", default="1,4", help="comma-separated outside weights to try")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--colour-steps", type=int, default=FitSettings.colour_steps,
                    help="steps of the colour fit tried when the start's fit leaks (0: never)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--stop-resolution", type=int, default=128)
    ap.add_argument("--dilate", type=float, default=0.03)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from stylestudio.engine.model_store import ModelStore

    gen = ModelStore().load(args.model)
    cat = Catalog.load(REPO / "resources" / "catalogs" / args.model / "default")
    kind, value = args.start.split(":")
    start = (QueryParams("effect", tau=float(value)) if kind == "effect" else
             QueryParams("sequential", eps=float(value.split("/")[0]), rho=float(value.split("/")[1])))
    betas = [float(b) for b in args.beta.split(",")]
    size, stop, margin = args.size, args.stop_resolution or None, max(1, round(args.dilate * args.size))
    names = args.regions.split(",")
    rows: dict = {(n, b): [] for n in names for b in [None] + betas}
    t0 = time.time()
    for p in range(args.pairs):
        s, r = pair_styles(gen, p, args.seed_base)
        pair = prepare_pair(gen, cat, s, r, size, stop)
        for n in names:
            clusters = cat.resolve(n)
            region = np.isin(pair.labels, list(clusters))
            q0 = query_layers(cat.rows(clusters), start, cat.effect_rows(clusters))
            for b in [None] + betas:
                fit = FitSettings(steps=args.steps, beta=b or 1.0, lr=args.lr, resolution=stop or gen.resolution,
                                  margin=args.dilate, start=start, colour_steps=args.colour_steps)
                q = q0 if b is None else fit_query(gen, s, r, region, q0, fit)
                m = measure(gen, pair, clusters, q, size, stop, margin)
                if m is not None:
                    rows[(n, b)].append((m.inside, m.outside, m.baseline_outside))
        print(f"  … {p + 1}/{args.pairs} pairs, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print(f"start: {args.start}; {args.pairs} pairs from seed {args.seed_base}; {args.steps} steps")
    print(f"{'region':10s} {'q':10s} {'in':>6s} {'out':>6s} {'out/in':>7s} {'out/base':>8s}")
    for n in names:
        for b in [None] + betas:
            cin, cout, base = np.mean(rows[(n, b)], 0)
            label = "start" if b is None else f"fit β {b:g}"
            print(f"{n:10s} {label:10s} {cin:6.2f} {cout:6.2f} {cout / cin:7.3f} {cout / base:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
