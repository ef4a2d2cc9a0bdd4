"""Hostile and mistaken command-line arguments: each is one clear line, found before any long work.

Numbers out of range (ψ, size, seed, counts; NaN and infinities), outputs that cannot be written or
that would overwrite an input, latent files that are not latents (NaN, a header claiming terabytes,
pickled objects), an unusable data folder. Almost all are refused before a model is loaded; the
latent shape cases and the memory test use the default model.
"""
from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from stylestudio.cli import load_latent, main
from stylestudio.engine.limits import MAX_LATENT_VALUES, PSI_MAX, PSI_MIN, SEED_MAX
from stylestudio.errors import InputError
from tests.fuzz.harness import MARKER_NAME, Case, check, run_cases

ROOT = os.geteuid() == 0


class Payload:
    """Pickled into an object .npy: loading it would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def npy_with_header(path: Path, header: str, body: bytes = b"\x00" * 64) -> Path:
    """A .npy file with a hand-written header (version 1.0), for headers numpy would never write."""
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + body)
    return path


def latent_files(folder: Path, marker: Path) -> dict[str, tuple[Path, str]]:
    """name → (.npy file, what the error must say)."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, str]] = {}

    def save(name: str, arr: np.ndarray, reason: str, **kw) -> None:
        np.save(folder / name, arr, **kw)
        out[name] = (folder / name, reason)

    z = np.random.RandomState(0).randn(2, 512).astype(np.float32)
    nan = z.copy()
    nan[1, 7] = np.nan
    save("nan.npy", nan, "NaN or infinite")
    inf = z.copy()
    inf[0, 0] = -np.inf
    save("inf.npy", inf, "NaN or infinite")
    save("overflow.npy", np.full((1, 512), 1e300), "NaN or infinite")  # float64 beyond float32
    save("huge-values.npy", np.full((1, 512), 1e30, np.float32), "beyond")
    save("object.npy", np.array([Payload(str(marker)), 1], dtype=object), "plain numeric", allow_pickle=True)
    save("structured.npy", np.zeros(4, dtype=[("a", "<f4"), ("b", "<i4")]), "plain numeric")
    save("complex.npy", np.zeros((1, 512), np.complex64), "plain numeric")
    save("strings.npy", np.array(["a", "b"]), "plain numeric")
    save("four-d.npy", np.zeros((1, 1, 1, 512), np.float32), "dimensions")
    save("empty-array.npy", np.zeros((0, 512), np.float32), "empty")
    out["claims-4tb.npy"] = (npy_with_header(folder / "claims-4tb.npy",
                                             "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1024), }"),
                             "too large")
    out["many-latents.npy"] = (npy_with_header(folder / "many-latents.npy",
                                               "{'descr': '<f4', 'fortran_order': False, 'shape': (20000, 1), }"),
                               "too large")
    out["truncated.npy"] = (npy_with_header(folder / "truncated.npy",
                                            "{'descr': '<f4', 'fortran_order': False, 'shape': (100, 512), }"),
                            "truncated")
    out["bad-header.npy"] = (npy_with_header(folder / "bad-header.npy", "{'descr': __import__('os'), }"),
                             "not a readable .npy")
    out["not-npy.npy"] = (folder / "not-npy.npy", "not a readable .npy")
    (folder / "not-npy.npy").write_bytes(b"this is not numpy" * 4)
    fifo = folder / "fifo.npy"
    os.mkfifo(fifo)
    out["fifo.npy"] = (fifo, "is a pipe")
    return out


def test_latent_header_checks_come_before_loading(tmp_path: Path, monkeypatch) -> None:
    marker = tmp_path / MARKER_NAME
    files = latent_files(tmp_path / "f", marker)
    loads = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    for name in ("claims-4tb.npy", "many-latents.npy", "object.npy", "truncated.npy", "four-d.npy"):
        path, reason = files[name]
        with pytest.raises(InputError, match=reason):
            load_latent(path)
    assert not loads  # refused from the header alone
    assert not marker.exists()
    assert load_latent(_ok(tmp_path)).shape == (3, 512)
    assert MAX_LATENT_VALUES >= 1800 * 18 * 512


def _ok(folder: Path) -> Path:
    np.save(folder / "ok.npy", np.zeros((3, 512), np.float64))
    return folder / "ok.npy"


def _argument_cases(tmp: Path) -> list[Case]:
    out = str(tmp / "out.png")
    gen = ["generate", "--seed", "1", "-o", out]
    cases = []
    for v in ("5", "nan", "inf", "-inf", "-1.5", "abc", "1e400"):
        cases.append(Case(f"generate --psi {v}", gen + ["--psi", v], "--psi"))
        cases.append(Case(f"render --psi {v}", ["render", "--z", str(tmp / "z.npy"), "--psi", v, "-o", out], "--psi"))
        cases.append(Case(f"edit --psi {v}", ["edit", "--source", "seed:1", "--set", "age=1", "--psi", v, "-o", out],
                          "--psi"))
    for v in ("0", "-1", "100000", "8193", "1.5", "nan"):
        cases.append(Case(f"generate --size {v}", gen + ["--size", v], "--size"))
    for v in ("-1", str(2**40), str(SEED_MAX + 1), "abc", "1.5", ""):
        cases.append(Case(f"generate --seed {v!r}", ["generate", "--seed", v, "-o", out], "--seed"))
    cases += [
        Case("edit seed:-1", ["edit", "--source", "seed:-1", "--set", "age=1", "-o", out], "seed:-1"),
        Case("edit seed:2**40", ["edit", "--source", f"seed:{2**40}", "--set", "age=1", "-o", out], str(2**40)),
        Case("generate --cutoff -1", gen + ["--cutoff", "-1"], "--cutoff"),
        Case("transfer --strength nan", ["transfer", "--target", "seed:1", "--reference", "seed:2", "--region", "mouth",
                                         "--strength", "nan", "-o", out], "--strength"),
        Case("transfer --coverage inf", ["transfer", "--target", "seed:1", "--reference", "seed:2", "--mask", "m.png",
                                         "--coverage", "inf", "-o", out], "--coverage"),
        Case("invert --time-budget nan", ["invert", "p.png", "--time-budget", "nan", "-o", str(tmp / "x.stylestudio")],
             "--time-budget"),
        Case("invert --steps -5", ["invert", "p.png", "--steps", "-5", "-o", str(tmp / "x.stylestudio")], "--steps"),
        Case("catalog build --samples 0", ["catalog", "build", "--samples", "0"], "--samples"),
        Case("catalog build --seed -3", ["catalog", "build", "--seed", "-3"], "--seed"),
        Case("directions build --psi inf", ["directions", "build", "--psi", "inf"], "--psi"),
        Case("generate no -o", ["generate", "--seed", "1"], "--output"),
    ]
    return cases


def _output_cases(tmp: Path, photo: Path, latent: Path) -> list[Case]:
    missing = tmp / "no-such-folder" / "x.png"
    cases = [
        Case("generate -o missing folder", ["generate", "--seed", "1", "-o", str(missing)], "no-such-folder"),
        Case("render -o missing folder", ["render", "--z", str(latent), "-o", str(missing.with_suffix(".npy"))],
             "no-such-folder"),
        Case("edit -o missing folder", ["edit", "--source", "seed:1", "--set", "age=1", "-o", str(missing)],
             "no-such-folder"),
        Case("edit --save-project missing folder", ["edit", "--source", "seed:1", "--set", "age=1", "-o",
                                                    str(tmp / "ok.png"), "--save-project",
                                                    str(tmp / "no-such-folder" / "p.stylestudio")], "no-such-folder"),
        Case("transfer -o missing folder", ["transfer", "--target", "seed:1", "--reference", "seed:2", "--region",
                                            "mouth", "-o", str(missing)], "no-such-folder"),
        Case("catalog map -o missing folder", ["catalog", "map", "--target", "seed:1", "-o", str(missing)],
             "no-such-folder"),
        Case("directions build -o missing folder", ["directions", "build", "-o", str(tmp / "no-such-folder" / "a.ssdir")],
             "no-such-folder"),
        # the output is checked before the photo is even read, so a face-less photo never reaches detection
        Case("invert -o missing folder", ["invert", str(photo), "-o", str(tmp / "no-such-folder" / "x.stylestudio")],
             "no-such-folder", [str(photo)]),
        Case("invert --reconstruction missing folder",
             ["invert", str(photo), "-o", str(tmp / "x.stylestudio"), "--reconstruction", str(missing)],
             "no-such-folder", [str(photo)]),
        Case("invert -o is the photo's folder", ["invert", str(photo), "-o", str(tmp / "dir.stylestudio")],
             "dir.stylestudio", [str(photo)]),
        Case("render -o the input", ["render", "--wplus", str(latent), "-o", str(latent)], "the output is the input",
             [str(latent)]),
        Case("render -o the input via ./", ["render", "--z", str(latent), "-o", str(tmp / "." / latent.name)],
             "the output is the input", [str(latent)]),
        Case("generate -o a folder", ["generate", "--seed", "1", "-o", str(tmp / "dir.stylestudio")], "is a folder"),
        Case("generate -o name too long", ["generate", "--seed", "1", "-o", str(tmp / ("n" * 300 + ".png"))],
             "too long"),
        Case("generate 300-character model", ["generate", "--seed", "1", "--model", "m" * 300, "-o",
                                             str(tmp / "ok.png")], "model"),
    ]
    return cases


def test_bad_arguments_and_outputs_are_one_line(tmp_path: Path) -> None:
    from PIL import Image

    work = tmp_path / "work"
    work.mkdir()
    (work / "dir.stylestudio").mkdir()
    latent = work / "w.npy"
    np.save(latent, np.zeros((1, 512), np.float32))
    np.save(work / "z.npy", np.zeros((1, 512), np.float32))
    photo = work / "plain.png"
    Image.new("RGB", (64, 64), (120, 130, 140)).save(photo)
    cases = _argument_cases(work) + _output_cases(work, photo, latent)
    results = run_cases(cases, work)
    check(results, work / MARKER_NAME)
    assert not (tmp_path / "work" / "no-such-folder").exists()  # never created on the way
    assert not (work / "out.png").exists() and not (work / "ok.png").exists()


def test_bad_latent_files_are_one_line(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    marker = work / MARKER_NAME
    files = latent_files(tmp_path / "latents", marker)
    cases = []
    for name, (path, _) in files.items():
        inputs = [str(path)] if path.is_file() else []
        for flag in ("--z", "--w", "--wplus"):
            cases.append(Case(f"render {flag} {name}", ["render", flag, str(path), "-o", str(work / "out.npy")],
                              f"{name}: ", inputs, timeout_s=20, rss_bound_mb=400))
        cases.append(Case(f"edit --source {name}", ["edit", "--source", str(path), "--set", "age=1",
                                                    "-o", str(work / "out.png")], f"{name}: ", inputs, timeout_s=20,
                          rss_bound_mb=400))
    results = run_cases(cases, work)
    check(results, marker)
    for r in results:
        name = r["name"].split()[-1]
        assert files[name][1] in r["stderr"], (r["name"], r["stderr"])
    assert not (work / "out.npy").exists()


def test_unusable_data_folder_is_one_line(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("x")
    cases = [Case("generate with home a file", ["generate", "--seed", "1", "-o", str(work / "x.png")],
                  "home-is-a-file"),
             Case("catalog show with home a file", ["catalog", "show"], "home-is-a-file")]
    check(run_cases(cases, work, env={"STYLESTUDIO_HOME": str(not_a_folder)}), work / MARKER_NAME)
    inside = not_a_folder / "sub"
    cases = [Case("generate with home under a file", ["generate", "--seed", "1", "-o", str(work / "x.png")],
                  "home-is-a-file")]
    check(run_cases(cases, work, env={"STYLESTUDIO_HOME": str(inside)}), work / MARKER_NAME)


@pytest.mark.skipif(ROOT, reason="root writes everywhere")
def test_unwritable_data_folder_and_output_are_one_line(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        cases = [Case("generate -o unwritable folder", ["generate", "--seed", "1", "-o", str(locked / "x.png")],
                      "not writable")]
        check(run_cases(cases, work), work / MARKER_NAME)
        cases = [Case("generate with home unwritable", ["generate", "--seed", "1", "-o", str(work / "x.png")],
                      "not writable")]
        check(run_cases(cases, work, env={"STYLESTUDIO_HOME": str(locked)}), work / MARKER_NAME)
    finally:
        locked.chmod(0o700)


def test_render_writes_many_latents_one_chunk_at_a_time(default_generator, tmp_path: Path) -> None:
    """Memory holds one chunk of full-resolution frames, not the whole batch: the peak of a
    24-latent render stays near that of a 4-latent one (24 frames at 1024 px are 300 MB)."""
    work = tmp_path / "work"
    work.mkdir()
    rs = np.random.RandomState(3)
    np.save(work / "z4.npy", rs.randn(4, default_generator.z_dim).astype(np.float32))
    np.save(work / "z24.npy", rs.randn(24, default_generator.z_dim).astype(np.float32))
    np.save(work / "z12.npy", rs.randn(12, default_generator.z_dim).astype(np.float32))
    np.save(work / "z1.npy", rs.randn(1, default_generator.z_dim).astype(np.float32))
    cases = [Case(f"render {n} {suffix}", ["render", "--z", str(work / f"z{n}.npy"), "--size", "64", "--device", "cpu",
                                  "-o", str(work / f"out{n}.{suffix}")], "", expect_rc=0, timeout_s=300,
                  rss_bound_mb=3000)
             for n, suffix in ((1, "npy"), (4, "npy"), (24, "npy"), (12, "png"))]  # the first one warms up
    results = run_cases(cases, work)
    check(results)
    peak = {r["name"]: r["peak_rss_mb"] for r in results}
    base = peak["render 4 npy"]
    assert peak["render 24 npy"] < base + 100, peak  # all 24 frames would be 300 MB more, twice that joined
    assert peak["render 12 png"] < base + 100, peak
    out = np.load(work / "out24.npy")
    assert out.shape == (24, 3, 64, 64) and out.dtype == np.float32 and np.isfinite(out).all()
    assert sorted(p.name for p in work.glob("out12-*.png")) == sorted(f"out12-{i}.png" for i in range(12))


@pytest.mark.slow
def test_random_argument_values(tmp_path: Path) -> None:
    """Random numbers, words and special values for every numeric option: refused or accepted, one line."""
    rng = random.Random(99)
    work = tmp_path / "work"
    work.mkdir()
    np.save(work / "z.npy", np.zeros((1, 512), np.float32))
    specials = ["nan", "-nan", "inf", "-inf", "1e309", "-1e309", "0x10", "1_000", " 3", "", "-", "٣", "1e-320",
                str(2**64), str(-(2**63)), "9" * 400]
    cmds = {
        "generate": (["generate", "--seed", "1"], ["--psi", "--size", "--cutoff"]),
        "generate-seed": (["generate"], ["--seed"]),
        "transfer": (["transfer", "--target", "seed:1", "--reference", "seed:2", "--region", "mouth"],
                     ["--strength", "--coverage", "--lam", "--eps", "--rho", "--tau", "--psi", "--size"]),
        "invert": (["invert", str(work / "missing.png")], ["--steps", "--pti-steps", "--time-budget", "--face"]),
    }
    cases = []
    for i in range(120):
        key = rng.choice(sorted(cmds))
        base, options = cmds[key]
        opt = rng.choice(options)
        value = rng.choice(specials) if rng.random() < 0.5 else repr(rng.uniform(-1e6, 1e6))
        suffix = ".stylestudio" if key == "invert" else ".png"
        argv = base + [opt, value, "--model", "no-such-model", "-o", str(work / "missing-folder" / f"o{suffix}")]
        cases.append(Case(f"{i} {key} {opt} {value[:20]!r}", argv, "", timeout_s=20))
    results = run_cases(cases, work)
    check(results, work / MARKER_NAME)
    for r in results:  # refused as an argument or, when the value is fine, for the missing output folder
        assert "missing-folder" in r["stderr"] or "argument" in r["stderr"], (r["name"], r["stderr"])
    assert PSI_MIN < 0 < 1 < PSI_MAX
