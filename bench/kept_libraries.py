"""What drawing a project's sliders from the library copies it keeps costs (engine/edits/kept.py).

A document of the default model with the ten attribute sliders (Keep others on) and the three
shipped text paths, drawn once with the installed libraries and once as a saved project (the same
document keeping its copies). Prints, interleaved over ``--repeats`` rounds:

* the document's styles (every edit applied, what each drag preview and final frame starts with):
  median time of each, and the copies' time as a ratio to the installed one (the anchor, measured
  in the same run);
* a final frame's bookkeeping (stamps, the copies a save keeps, which sliders differ from the
  installed libraries), against a full final render in the same run;
* what checking the installed libraries' files costs (a cached library is read again when its file
  changed): the styles with the installed libraries, files watched against not watched;
* the size of each kept copy.

    python bench/kept_libraries.py [--threads 1] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylestudio  # noqa: E402,F401 (first: it chooses passive OpenMP waiting before torch loads)

import torch  # noqa: E402

from stylestudio.engine.document import EditDocument, SeedSource  # noqa: E402
from stylestudio.engine.edits.direction import DirectionEdit  # noqa: E402
from stylestudio.engine.edits.path import PathEdit  # noqa: E402
from stylestudio.engine.model_store import DEFAULT_MODEL  # noqa: E402
from stylestudio.engine.session import Engine  # noqa: E402


def timed(fn, n: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--inner", type=int, default=10, help="styles computations per round and arm")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    engine = Engine(device="cpu", threads=args.threads)
    m = engine.model(DEFAULT_MODEL)
    names = m.resources.get("directions", "attributes").names()
    edits = [DirectionEdit(library="attributes", name=n, amount=0.5, keep=tuple(x for x in names if x != n))
             for n in names]
    edits += [PathEdit(library="textpaths", name=n, amount=0.5) for n in ("smile", "age", "gender")]
    doc = EditDocument(DEFAULT_MODEL, SeedSource(seed=3), edits=tuple(edits))
    saved = engine.for_saving(doc)
    renderer = m.renderers["final"]
    from stylestudio.engine import resources

    watched_kinds = dict(resources._WATCHED)
    installed, kept, books, finals, unwatched = [], [], [], [], []
    for _ in range(args.repeats):
        installed.append(timed(lambda: renderer.document_styles(doc), args.inner))
        resources._WATCHED.clear()
        for key in [k for k in m.resources._files if k[0] in watched_kinds]:
            del m.resources._files[key]  # as loaded before files were watched
        unwatched.append(timed(lambda: renderer.document_styles(doc), args.inner))
        resources._WATCHED.update(watched_kinds)
        for kind, name in [("directions", "attributes"), ("textpaths", "textpaths")]:
            m.resources.forget(kind, name)  # loaded again, watched
            m.resources.get(kind, name)
        engine.drawn_from_copies(saved, engine.library_versions(saved))  # its caches warm again, as in use
        kept.append(timed(lambda: renderer.document_styles(saved), args.inner))
        t0 = time.perf_counter()
        versions = engine.library_versions(saved)  # as the render thread does after each final frame
        engine.library_copies(saved), engine.drawn_from_copies(saved, versions)
        books.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        renderer.render(saved)
        finals.append(time.perf_counter() - t0)
    a, b = statistics.median(installed), statistics.median(kept)
    c, f = statistics.median(books), statistics.median(finals)
    print(f"{DEFAULT_MODEL}, {len(edits)} sliders, {args.threads} thread(s), load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"document styles: installed libraries {a * 1000:.1f} ms (anchor), kept copies {b * 1000:.1f} ms = "
          f"{b / a:.2f}× the anchor (per round: {', '.join(f'{k / i:.2f}' for i, k in zip(installed, kept))})")
    print(f"final frame bookkeeping {c * 1000:.1f} ms against a final render of {f * 1000:.0f} ms ({c / f:.1%})")
    u = statistics.median(unwatched)
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        m.resources.get("directions", "attributes")
    g = (time.perf_counter() - t0) / n
    print(f"watching the installed libraries' files: styles {a * 1000:.2f} ms against {u * 1000:.2f} ms unwatched "
          f"= {a / u:.3f}× (per round: {', '.join(f'{i / k:.3f}' for i, k in zip(installed, unwatched))}); "
          f"a cached library's check {g * 1e6:.1f} µs")
    print("kept copies: " + ", ".join(f"{k.kind} {k.name} {len(k.data) / 1024:.0f} KiB" for k in saved.libraries))


if __name__ == "__main__":
    main()
