"""``stylestudio batch``: one recipe over a folder (good photos, a no-face photo, a corrupt file,
a sub-folder), resume, and the same files from one process, two workers and two gloo ranks.

Everything runs on the tiny StyleGAN2 of the oracle folder with the smallest inversion
(``--steps 1``) so a face costs seconds.
"""
from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylestudio.cli import main
from stylestudio.engine.batch import find_photos, output_names, share
from stylestudio.engine.document import EditDocument, SeedSource
from stylestudio.engine.project import load_project, save_project

skdata = pytest.importorskip("skimage.data")
REPO = Path(__file__).resolve().parents[1]
TINY_PKL = REPO.parent / "shared" / "oracle" / "stylegan2_tiny" / "network-snapshot.pkl"
MODEL = "tiny-batch"
FAST = ["--steps", "1", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def model(stylestudio_home: Path) -> str:
    if not TINY_PKL.is_file():
        pytest.skip("the tiny oracle model is not present")
    import torch

    from stylestudio.engine.model_store import ModelStore

    torch.set_num_threads(1)
    ModelStore().import_file(TINY_PKL, MODEL)
    assert main(["catalog", "build", "--model", MODEL, "--k", "4", "--samples", "8", "--device", "cpu"]) == 0
    return MODEL


@pytest.fixture(scope="module")
def recipe(model: str, tmp_path_factory) -> Path:
    """A look with every edit kind a project holds: a slider, a named-region and a painted transfer."""
    from stylestudio.engine.edits.direction import DirectionEdit
    from stylestudio.engine.edits.transfer import TransferEdit

    mask = np.zeros((32, 32), np.uint8)
    mask[12:24, 8:24] = 255
    doc = EditDocument(model=model, source=SeedSource(seed=5), title="look", edits=(
        DirectionEdit(library="sefa", name="factor1", amount=2.5, id="slider"),
        TransferEdit(reference=SeedSource(seed=7), region=("c1",), strength=1.0, id="region", eps=4.0),
        TransferEdit(reference=SeedSource(seed=9), mask=mask, mask_mode="activations", id="painted"),
    ))
    path = tmp_path_factory.mktemp("recipe") / "look.stylestudio"
    save_project(path, doc)
    return path


def two_faces(astro: np.ndarray) -> np.ndarray:
    """The astronaut's face twice, the left one larger."""
    crop = astro[40:240, 120:320]
    canvas = np.full((260, 480, 3), 200, np.uint8)
    canvas[20:220, 10:210] = crop
    small = np.asarray(Image.fromarray(np.ascontiguousarray(crop[:, ::-1])).resize((170, 170), Image.LANCZOS))
    canvas[30:200, 260:430] = small
    return canvas


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """astro.jpg (camera EXIF, stored sideways), sub/pair.png (two faces), sky.png (no face), broken.jpg,
    notes.txt."""
    folder = tmp_path_factory.mktemp("shoot")
    astro = skdata.astronaut()
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "TestCam", 6  # Make; orientation 6: the viewer turns it upright
    Image.fromarray(np.ascontiguousarray(np.rot90(astro, 1))).save(folder / "astro.jpg", exif=exif.tobytes(),
                                                                   quality=92)
    (folder / "sub").mkdir()
    Image.new("RGB", (300, 200), (40, 120, 200)).save(folder / "sky.png")
    Image.fromarray(two_faces(astro)).save(folder / "sub" / "pair.png")
    buf = io.BytesIO()
    Image.fromarray(astro).save(buf, format="JPEG")
    (folder / "broken.jpg").write_bytes(buf.getvalue()[:300])
    (folder / "notes.txt").write_text("not a photo")
    return folder


def batch(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["batch", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def first_run(recipe: Path, photos: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("results") / "out"
    capture = pytest.CaptureFixture  # noqa: F841  (module fixtures cannot take capsys: capture by hand)
    import contextlib

    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        rc = main(["batch", "--recipe", str(recipe), "--input", str(photos), "--output", str(out), "--format", "png",
                   "--save-projects", *FAST])
    return rc, o.getvalue(), e.getvalue(), out


def test_a_folder_gives_the_right_files_lines_and_report(first_run, photos: Path) -> None:
    rc, out, err, folder = first_run
    assert rc == 0, err
    lines = out.splitlines()
    assert any(l.startswith("astro.jpg: 1 face, LPIPS") and l.endswith("→ astro.png") for l in lines), out
    assert "sky.png: skipped, no face: no face found" in lines
    bad = [l for l in lines if l.startswith("broken.jpg: skipped, failed: ")]
    assert len(bad) == 1 and "broken.jpg" in bad[0][len("broken.jpg:"):], out  # the reason names the file
    assert any(l.startswith("sub/pair.png: 2 faces") and l.endswith("→ sub/pair.png") for l in lines), out
    assert "2 photos edited, 1 skipped (no face), 1 skipped (failed), 1 other file ignored" in lines[-1]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                  and ".stylestudio-batch" not in p.parts) == [
        "astro.png", "astro.stylestudio", "contact-sheet.jpg", "report.csv", "report.html",
        "sub/pair.face1.stylestudio", "sub/pair.face2.stylestudio", "sub/pair.png"]

    import csv

    rows = {r["photo"]: r for r in csv.DictReader((folder / "report.csv").open())}
    assert {k: r["status"] for k, r in rows.items()} == {
        "astro.jpg": "done", "broken.jpg": "failed", "sky.png": "no face", "sub/pair.png": "done"}
    assert rows["sub/pair.png"]["faces_edited"] == "2"
    assert rows["astro.jpg"]["faces_edited"] == "1" and 0 < float(rows["astro.jpg"]["lpips"]) < 2
    # "is it still them?": a column of its own (empty here: the tiny model's 32-px faces are too small
    # for the face-embedding network; the default model's are measured, see test_inversion_budget)
    assert all("identity" in r for r in rows.values()) and rows["sky.png"]["identity"] == ""
    assert rows["astro.jpg"]["identity"] == "" or -1 <= float(rows["astro.jpg"]["identity"]) <= 1
    assert rows["sky.png"]["reason"] == "no face found" and "broken.jpg" in rows["broken.jpg"]["reason"]
    html = (folder / "report.html").read_text()
    assert "sub/pair.png" in html and "no face found" in html and "notes.txt" in html
    with Image.open(folder / "contact-sheet.jpg") as sheet:
        assert sheet.width > sheet.height > 0  # two before/after pairs side by side


def test_outputs_are_the_whole_photo_upright_with_exif_and_profile(first_run, photos: Path) -> None:
    _, _, _, folder = first_run
    with Image.open(folder / "astro.png") as im:
        exif = im.getexif()
        assert im.size == (512, 512) and im.info.get("icc_profile")
        assert exif.get(0x010F) == "TestCam" and exif.get(0x0112) == 1
        got = np.asarray(im.convert("RGB")).astype(int)
    # the camera stored it sideways: the result is upright, the edit only near the face
    upright = np.asarray(Image.open(photos / "astro.jpg").transpose(Image.ROTATE_270)).astype(int)
    assert np.abs(got - upright).mean() < np.abs(got - np.rot90(upright, 1)[:512, :512]).mean()
    assert np.abs(got[-120:] - upright[-120:]).max() == 0  # far below the face: the photo's own pixels
    assert np.abs(got[150:250, 200:300] - upright[150:250, 200:300]).max() > 20  # the face changed


def test_every_face_or_the_largest(first_run, recipe: Path, photos: Path, tmp_path, capsys) -> None:
    _, _, _, folder = first_run
    original = two_faces(skdata.astronaut()).astype(int)
    both = np.asarray(Image.open(folder / "sub" / "pair.png").convert("RGB")).astype(int)
    changed = np.abs(both - original).max(axis=2) > 0
    assert changed[:, :235].any() and changed[:, 245:].any()  # each face was edited
    (tmp_path / "in").mkdir()
    shutil.copy(photos / "sub" / "pair.png", tmp_path / "in")
    rc, out, err = batch(capsys, "--recipe", recipe, "--input", tmp_path / "in", "--output", tmp_path / "out",
                         "--format", "png", "--faces", "largest", *FAST)
    assert rc == 0 and "pair.png: 1 of 2 faces" in out, err
    one = np.asarray(Image.open(tmp_path / "out" / "pair.png").convert("RGB")).astype(int)
    changed = np.abs(one - original).max(axis=2) > 0
    assert changed[:, :235].any() and not changed[:, 245:].any()  # the larger (left) face only
    assert np.array_equal(one[:, :235], both[:, :235])  # and it is the same edit as with every face


def test_projects_hold_the_recipe_and_reproduce_the_output(first_run, recipe: Path, model: str) -> None:
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.export import final_picture
    from stylestudio.engine.render import Renderer

    _, _, _, folder = first_run
    doc = load_project(folder / "astro.stylestudio")
    look = load_project(recipe)
    assert doc.source.kind == "photo" and doc.source.inverted and doc.model == model
    unstamped = lambda e: {k: v for k, v in e.to_json().items() if k != "version"}  # noqa: E731
    assert [unstamped(e) for e in doc.edits] == [unstamped(e) for e in look.edits]
    assert look.edits[0].version == "" and len(doc.edits[0].version) == 16  # the slider's library version, stamped
    renderer = Renderer(ModelStore().load(model, device="cpu"), model)
    picture = final_picture(renderer, doc)
    assert np.array_equal(picture, np.asarray(Image.open(folder / "astro.png").convert("RGB")))
    face = renderer.render(doc)
    for edit in doc.edits:  # every kind of edit of the recipe changes the face
        without = renderer.render(doc.without_edit(edit.id))
        assert (face - without).abs().max() > 1e-3, edit.kind


def test_resume_skips_finished_photos_and_redoes_changed_ones(first_run, recipe: Path, photos: Path, tmp_path,
                                                             capsys) -> None:
    _, _, _, done = first_run
    folder = tmp_path / "out"
    shutil.copytree(done, folder)
    before = (folder / "sub" / "pair.png").stat().st_mtime_ns
    (folder / "astro.png").unlink()  # as if the run had been stopped before this photo
    rc, out, err = batch(capsys, "--recipe", recipe, "--input", photos, "--output", folder, "--format", "png",
                         "--save-projects", *FAST)
    assert rc == 0, err
    assert "sub/pair.png: already done (sub/pair.png), skipped" in out.splitlines()
    assert any(l.startswith("astro.jpg: 1 face") for l in out.splitlines())
    assert "1 photo edited, 1 already done" in out and (folder / "astro.png").is_file()
    assert (folder / "sub" / "pair.png").stat().st_mtime_ns == before


def test_results_are_reused_only_when_made_the_same_way(recipe: Path, photos: Path, tmp_path) -> None:
    import dataclasses

    from stylestudio.engine.batch import BatchJob, Recipe
    from stylestudio.engine.inversion import InversionSettings

    look = Recipe.load(recipe)
    job = BatchJob(look, photos, tmp_path, inversion=InversionSettings(steps=1))
    same = BatchJob(Recipe.load(recipe), photos, tmp_path / "x", inversion=InversionSettings(steps=1))
    assert job.key() == same.key()  # where the folders are does not matter
    changed = [dataclasses.replace(job, faces="largest"), dataclasses.replace(job, format="png"),
               dataclasses.replace(job, quality=80), dataclasses.replace(job, inversion=InversionSettings(steps=2)),
               dataclasses.replace(job, recipe=Recipe.load(recipe, edit_ids=["slider", "painted"])),
               dataclasses.replace(job, recipe=dataclasses.replace(
                   look, edits=(dataclasses.replace(look.edits[0], amount=1.0), *look.edits[1:])))]
    assert len({job.key(), *(c.key() for c in changed)}) == 1 + len(changed)


def test_nothing_to_do_is_an_error(recipe: Path, model: str, tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    rc, _, err = batch(capsys, "--recipe", recipe, "--input", tmp_path / "empty", "--output", tmp_path / "o", *FAST)
    assert rc == 2 and err.strip().splitlines()[-1].startswith("error: no photos in")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"\xff\xd8 nope")
    Image.new("RGB", (64, 64)).save(tmp_path / "bad" / "dark.png")
    rc, out, err = batch(capsys, "--recipe", recipe, "--input", tmp_path / "bad", "--output", tmp_path / "o", *FAST)
    assert rc == 1 and "x.jpg: skipped, failed" in out and "error: no photo could be done" in err
    empty_look = tmp_path / "plain.stylestudio"
    save_project(empty_look, EditDocument(model=model, source=SeedSource(seed=1)))
    rc, _, err = batch(capsys, "--recipe", empty_look, "--input", tmp_path / "bad", "--output", tmp_path / "o", *FAST)
    assert rc == 2 and err.strip() == "error: plain.stylestudio: the project has no (enabled) edits to apply"
    rc, _, err = batch(capsys, "--recipe", recipe, "--input", tmp_path / "bad", "--output", tmp_path / "bad", *FAST)
    assert rc == 2 and "--output must not be the --input folder" in err


def test_folder_listing_names_and_shares(tmp_path) -> None:
    for rel in ("b.jpg", "a.png", "a.jpg", "sub/c.tif", ".hidden.jpg", "out/old.jpg", "x.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    photos, others = find_photos(tmp_path, tmp_path / "out")  # the output inside the input is left out
    assert [p.as_posix() for p in photos] == ["a.jpg", "a.png", "b.jpg", "sub/c.tif"]
    assert [p.as_posix() for p in others] == ["x.txt"]
    names = {k.as_posix(): v.as_posix() for k, v in output_names(photos, "jpg").items()}
    assert names == {"a.jpg": "a-jpg.jpg", "a.png": "a-png.jpg", "b.jpg": "b.jpg", "sub/c.tif": "sub/c.jpg"}
    for world in (1, 2, 3, 7):
        parts = [share(10, r, world) for r in range(world)]
        assert sorted(i for p in parts for i in p) == list(range(10))  # disjoint, and every photo once


def _images(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.jpg")
            if ".stylestudio-batch" not in p.parts and not p.name.startswith("contact-sheet")}


@pytest.mark.slow
def test_two_workers_and_two_gloo_ranks_write_the_same_files(recipe: Path, photos: Path, tmp_path, capsys) -> None:
    rc, out, err = batch(capsys, "--recipe", recipe, "--input", photos, "--output", tmp_path / "one", *FAST)
    assert rc == 0, err
    one = _images(tmp_path / "one")
    assert sorted(one) == ["astro.jpg", "sub/pair.jpg"]
    rc, out, err = batch(capsys, "--recipe", recipe, "--input", photos, "--output", tmp_path / "jobs", "--jobs", "2",
                         *FAST)
    assert rc == 0, err
    assert _images(tmp_path / "jobs") == one

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "stylestudio.cli", "batch", "--recipe", str(recipe), "--input", str(photos),
            "--output", str(tmp_path / "ranks"), *FAST]
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "[rank 1]" in outs[1][0] and "2 photos edited" in outs[0][0]  # rank 0 merged both shares
    assert _images(tmp_path / "ranks") == one
    import csv

    rows = list(csv.DictReader((tmp_path / "ranks" / "report.csv").open()))
    assert sorted(r["worker"] for r in rows) == ["rank 0", "rank 0", "rank 1", "rank 1"]  # every other photo


def test_a_transfer_fitted_to_the_recipe_face_is_fitted_to_each_photo(recipe: Path, photos: Path, tmp_path,
                                                                      capsys) -> None:
    """"Fit to this face" in the recipe means fit to every photo's face: each project the batch
    writes carries a fit made for its own face (renders only use fits, so without it the batch
    would draw the unfitted look)."""
    import dataclasses

    from stylestudio.engine.regions.fitted import face_key

    look = load_project(recipe)
    fitted_look = dataclasses.replace(look, edits=tuple(
        dataclasses.replace(e, fit=True) if e.id == "region" else e for e in look.edits))
    save_project(tmp_path / "fit.stylestudio", fitted_look)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photos / "astro.jpg", folder / "astro.jpg")
    rc, out, err = batch(capsys, "--recipe", tmp_path / "fit.stylestudio", "--input", folder, "--output",
                         tmp_path / "out", "--save-projects", *FAST)
    assert rc == 0, err
    doc = load_project(tmp_path / "out" / "astro.stylestudio")
    edit = next(e for e in doc.edits if e.id == "region")
    assert edit.fit and edit.fitted is not None and edit.is_fitted_for(face_key(doc.model, doc.source))


def test_the_report_gives_each_photo_the_identity_of_its_least_like_face(tmp_path):
    import csv

    from stylestudio.engine.batch.process import PhotoRecord
    from stylestudio.engine.batch.report import write_csv, write_html

    group = PhotoRecord("group.jpg", status="done", faces_found=2, faces_edited=2, lpips=[0.2, 0.3],
                        identity=[0.97, 0.91])
    sky = PhotoRecord("sky.png", status="no face", reason="no face found")
    write_csv(tmp_path / "report.csv", [group, sky])
    rows = {r["photo"]: r for r in csv.DictReader((tmp_path / "report.csv").open())}
    assert rows["group.jpg"]["identity"] == "0.910" and rows["sky.png"]["identity"] == ""
    write_html(tmp_path / "report.html", [group, sky], "t")
    html = (tmp_path / "report.html").read_text()
    assert "<th>identity</th>" in html and "<td>0.910</td>" in html
