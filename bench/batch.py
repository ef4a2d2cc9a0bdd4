"""Batch throughput (issue 20): photos per minute of a batch over one folder, run as one
process, as ``--jobs 2`` worker processes and as two ``torchrun`` ranks (gloo), with each run's
peak memory per process and whether the runs wrote the same files.

    python bench/batch.py [--photos 20] [--steps 0] [--estimate-steps 2] [--runs 1,1t1,2,torchrun2] [--keep DIR]

The folder: ``--photos`` − 2 faces of the default model (seeds 3000…, ψ 0.7) rendered at 512 px
to JPEG with a camera EXIF block, plus the real photos the project has (scikit-image's
astronaut, and a mirrored copy so the face differs). The recipe: the default model's ``age``
slider +1.5 and its first SeFa factor +1.

Each run is a fresh process (or two under torchrun) doing what ``stylestudio batch`` does — the
same :func:`~stylestudio.engine.batch.run_batch`, model loading and worker start-up included,
timed from start to exit — but with a cheap inversion (``--steps`` W+ steps, ``--estimate-steps``
W steps after the encoder's estimate) so that a shared 2-core machine gets through 20 photos
several times: it measures the batch machinery (processes, detection, estimate, render,
paste-back, writing) and how it scales, not the inversion, which bench/inversion.py measures.

Runs: ``1`` = one process (torch threads: all cores), ``1t1`` = one process with one thread,
``2`` = ``--jobs 2`` (one thread each), ``torchrun2`` = ``torchrun --nproc_per_node 2`` (one
thread each). Runs with the same threads per process must write byte-identical images.

Anchor, measured in the same run before and after: one plain 1024-px synthesis of the default
model on one thread; each run is also given as seconds per photo ÷ anchor.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)


def make_folder(folder: Path, photos: int) -> None:
    import torch
    from PIL import Image
    from skimage import data

    from stylestudio.engine.document import EditDocument, SeedSource
    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
    from stylestudio.engine.render import Renderer, to_uint8

    folder.mkdir(parents=True)
    gen = ModelStore().load(DEFAULT_MODEL, device="cpu")
    renderer = Renderer(gen, DEFAULT_MODEL)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "BenchCam", "B1"
    with torch.no_grad():
        for i in range(photos - 2):
            face = to_uint8(renderer.render(EditDocument(DEFAULT_MODEL, SeedSource(seed=3000 + i, psi=0.7))))
            Image.fromarray(face).resize((512, 512), Image.LANCZOS).save(folder / f"gen{i:02d}.jpg", quality=92,
                                                                         exif=exif.tobytes())
    astro = data.astronaut()
    Image.fromarray(astro).save(folder / "astronaut.jpg", quality=92, exif=exif.tobytes())
    Image.fromarray(np.ascontiguousarray(astro[:, ::-1])).save(folder / "astronaut-mirrored.png")


def make_recipe(path: Path) -> None:
    from stylestudio.engine.document import EditDocument, SeedSource
    from stylestudio.engine.edits.direction import DirectionEdit
    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.project import save_project

    save_project(path, EditDocument(DEFAULT_MODEL, SeedSource(seed=1), title="bench look", edits=(
        DirectionEdit(library="attributes", name="age", amount=1.5),
        DirectionEdit(library="sefa", name="factor1", amount=1.0))))


def anchor(repeats: int = 3) -> float:
    """Seconds of one plain full synthesis on one thread (median)."""
    code = f"""
import time, torch
torch.set_num_threads(1)
from stylestudio.engine.model_store import ModelStore
gen = ModelStore().load(device="cpu")
ws = gen.w_avg[None, None].expand(1, gen.num_ws, -1)
with torch.no_grad():
    gen.synthesis(ws)
    ts = []
    for _ in range({repeats}):
        t = time.perf_counter(); gen.synthesis(ws); ts.append(time.perf_counter() - t)
print(sorted(ts)[len(ts) // 2])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def command(run: str, recipe: Path, folder: Path, out: Path, steps: int, estimate_steps: int) -> list[str]:
    args = [str(Path(__file__).resolve()), "run", str(recipe), str(folder), str(out), str(steps), str(estimate_steps)]
    if run == "1":
        return [sys.executable, *args, "1", "0"]
    if run == "1t1":
        return [sys.executable, *args, "1", "1"]
    if run == "2":
        return [sys.executable, *args, "2", "0"]
    if run == "torchrun2":
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(29400 + os.getpid() % 500), *args, "1", "0"]
    raise SystemExit(f"unknown run {run!r}")


def run_one(argv: list[str]) -> None:
    """One run, as ``stylestudio batch`` does it (the command's own code, cheaper inversion settings)."""
    import dataclasses

    import torch

    from stylestudio.engine.batch import BatchJob, Recipe, run_batch
    from stylestudio.engine.batch.recipe import check_recipe
    from stylestudio.engine.batch.run import default_threads
    from stylestudio.engine.inversion import InversionSettings
    from stylestudio.engine.session import Session

    recipe_path, folder, out, steps, estimate_steps, jobs, threads = argv
    jobs, threads = int(jobs), int(threads) or default_threads(int(jobs))
    recipe = Recipe.load(Path(recipe_path))
    torch.set_num_threads(threads)
    session = Session(device="cpu")
    check_recipe(session, recipe, recipe_path)
    Path(out).mkdir(parents=True, exist_ok=True)
    settings = dataclasses.replace(InversionSettings(), steps=int(steps), optimise=int(steps) > 0,
                                   estimate_steps=int(estimate_steps))
    job = BatchJob(recipe, Path(folder), Path(out), inversion=settings)
    result = run_batch(job, session if jobs == 1 else None, jobs=jobs, threads=threads, device="cpu")
    if result.rank == 0:
        print(result.line())


def images(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".jpg" and not p.name.startswith("contact")}


def pixel_difference(a: bytes, b: bytes) -> int:
    from PIL import Image

    x = np.asarray(Image.open(io.BytesIO(a))).astype(int)
    y = np.asarray(Image.open(io.BytesIO(b))).astype(int)
    return int(np.abs(x - y).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--steps", type=int, default=0, help="W+ steps per face (0: the estimate only; default)")
    ap.add_argument("--estimate-steps", type=int, default=2, help="W steps after the encoder's estimate (default 2)")
    ap.add_argument("--runs", default="1,1t1,2,torchrun2")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    folder, recipe = work / "photos", work / "look.stylestudio"
    if not folder.is_dir():
        make_folder(folder, args.photos)
    make_recipe(recipe)
    count = sum(1 for _ in folder.iterdir())
    print(f"{count} photos ({args.photos - 2} generated 512-px JPEGs + 2 real), --steps {args.steps}, "
          f"--estimate-steps {args.estimate_steps}, "
          f"{os.cpu_count()} CPU cores, load average before: {os.getloadavg()[0]:.1f}")
    a0 = anchor()
    results = {}
    for run in args.runs.split(","):
        out = work / f"out-{run}"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        proc = subprocess.run(command(run, recipe, folder, out, args.steps, args.estimate_steps), capture_output=True,
                              text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            print(f"run {run} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
            continue
        rows = list(csv.DictReader((out / "report.csv").open()))
        done = sum(r["status"] == "done" for r in rows)
        peaks: dict[str, float] = {}
        for r in rows:
            key = r["worker"]
            peaks[key] = max(peaks.get(key, 0.0), float(r["peak_mib"] or 0))
        results[run] = images(out)
        print(f"run {run:9s}: {done}/{len(rows)} photos in {wall:6.1f} s = {done / wall * 60:5.1f} photos/min, "
              f"{wall / max(done, 1):5.2f} s/photo = {wall / max(done, 1) / a0:4.0f}× anchor; peak memory per process "
              f"{', '.join(f'{v:.0f}' for v in sorted(peaks.values()))} MiB; load {os.getloadavg()[0]:.1f}")
    a1 = anchor()
    a = statistics.mean([a0, a1])
    print(f"anchor: one plain 1024-px synthesis on one thread {a * 1000:.0f} ms (before {a0 * 1000:.0f}, after "
          f"{a1 * 1000:.0f})")
    for run, files in results.items():
        for other, theirs in results.items():
            if other <= run:
                continue
            same = sum(files.get(k) == v for k, v in theirs.items())
            worst = max((pixel_difference(files[k], v) for k, v in theirs.items() if k in files and files[k] != v),
                        default=0)
            print(f"files {run} vs {other}: {same}/{len(theirs)} byte-identical"
                  + (f", largest pixel difference {worst} levels" if worst else ""))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        run_one(sys.argv[2:])
    else:
        main()
