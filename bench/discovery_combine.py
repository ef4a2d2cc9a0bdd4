"""Put together the measurements of several ``bench/discovery.py --save`` runs on the same faces.

    python bench/discovery_combine.py a.npz b.npz

With many faces the libraries are evaluated in separate processes (``--methods``/``--seeds`` split
between them, the same ``--faces`` and ``--eval-seed``); each process saves its measurements. This
checks that the runs measured the same faces with the same units, then prints the summary and the
paired bootstrap of every learned run against PCA and SeFa, as one run evaluating all of them
would: the bootstrap resamples are drawn the same way in every run (``RandomState(0)``, the same
number of faces), so a row of one file and a row of another come from the same resampled faces.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.discovery import print_paired, print_seed_means, scores, shift_matrix  # noqa: E402


def load(files: list[Path]) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """The shared arrays (faces, units) and, per library key, its attrs/embs/boot."""
    shared: dict[str, np.ndarray] = {}
    runs: dict[str, dict[str, np.ndarray]] = {}
    for f in files:
        with np.load(f, allow_pickle=False) as d:
            for name in ("w_eval", "spread", "centre", "id_unit"):
                if name in shared and not np.array_equal(shared[name], d[name]):
                    raise SystemExit(f"{f}: its {name} differs from the first file's: not the same faces or units")
                shared[name] = d[name]
            for entry in d.files:
                if "/" in entry:
                    key, what = entry.split("/", 1)
                    if key in runs and what in runs[key]:
                        raise SystemExit(f"{f}: {key} is in two files")
                    runs.setdefault(key, {})[what] = d[entry]
    return shared, runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", type=Path, nargs="+")
    args = ap.parse_args()
    shared, runs = load(args.files)
    faces = len(shared["w_eval"])
    print(f"{faces} faces, {len(runs)} libraries from {len(args.files)} files")
    results: dict[str, tuple[float, int, float]] = {}
    print(f"{'method':34s} {'score':>7s} {'±se':>6s} {'found':>6s} {'90% int':>8s} {'purity':>7s}")
    for key, r in runs.items():
        shift = shift_matrix(r["attrs"], r["embs"], shared["spread"], shared["centre"], float(shared["id_unit"]))
        score, found, purity = scores(shift)
        lo, hi = np.percentile(r["boot"][:, 1], [5, 95])
        print(f"{key:34s} {score:7.3f} {r['boot'][:, 0].std():6.3f} {found:6d} {f'{lo:.0f}–{hi:.0f}':>8s} {purity:7.3f}")
        results[key] = (score, found, purity)
    print_seed_means(results, 34)
    print_paired({k: r["boot"] for k, r in runs.items()}, 34)
    return 0


if __name__ == "__main__":
    sys.exit(main())
