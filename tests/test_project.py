"""Project files (atomic zip of JSON + arrays) and the headless ``render-project`` command."""
from __future__ import annotations

import errno
import zipfile

import numpy as np
import pytest
from PIL import Image

from stylestudio.cli import main as cli_main
from stylestudio.engine import project as project_mod
from stylestudio.engine.document import EditDocument, LatentSource, SeedSource
from stylestudio.engine.edits.direction import DirectionEdit
from stylestudio.engine.imageio import read_recipe
from stylestudio.engine.project import load_project, project_thumbnail, save_project
from stylestudio.errors import InputError

from test_gui_support import TINY, ensure_test_model, reference_frame


def sample_doc(model: str = TINY) -> EditDocument:
    return EditDocument(model=model, source=SeedSource(seed=12, psi=0.6),
                        edits=(DirectionEdit(library="sefa", name="factor2", amount=-1.5, id="sefa:factor2"),),
                        title="sample")


def test_round_trip_with_arrays_and_thumbnail(tmp_path):
    wplus = np.random.RandomState(1).randn(1, 6, 16).astype(np.float32)
    doc = EditDocument(model="m", source=LatentSource(wplus=wplus, name="w"), edits=sample_doc().edits)
    thumb = np.random.RandomState(2).randint(0, 255, (64, 64, 3), dtype=np.uint8)
    path = tmp_path / "a.stylestudio"
    save_project(path, doc, thumb)
    back = load_project(path)
    assert back.edits == doc.edits and np.array_equal(back.source.wplus, wplus)
    assert np.array_equal(np.asarray(project_thumbnail(path)), thumb)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    assert {"manifest.json", "document.json", "arrays/source.wplus.npy", "thumbnail.png"} <= names


def test_a_crash_mid_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.stylestudio"
    first = sample_doc()
    save_project(path, first)
    before = path.read_bytes()

    def exploding_save(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    wplus = np.zeros((1, 6, 16), np.float32)
    monkeypatch.setattr(project_mod.np, "save", exploding_save)
    with pytest.raises(InputError, match="keep.stylestudio: the disk is full"):
        save_project(path, EditDocument(model="m", source=LatentSource(wplus=wplus)))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_project(path).edits == first.edits
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.stylestudio"]  # no temporary left


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "damaged or truncated"),
    (lambda p: p.write_bytes(b"not a zip at all"), "damaged or truncated"),
    (lambda p: _rewrite(p, "manifest.json", b'{"format": "something-else"}'), "not a StyleStudio project"),
    (lambda p: _rewrite(p, "manifest.json",
                        b'{"format": "stylestudio-project", "format_version": 99, "arrays": []}'), "newer"),
    (lambda p: _rewrite(p, "document.json", b'{"model": "m"}'), "damaged or incomplete"),
])
def test_damaged_projects_raise_one_clear_error(tmp_path, damage, message):
    path = tmp_path / "d.stylestudio"
    save_project(path, sample_doc())
    damage(path)
    with pytest.raises(InputError, match=message):
        load_project(path)


def test_missing_project_file(tmp_path):
    with pytest.raises(InputError, match="no such project"):
        load_project(tmp_path / "nowhere.stylestudio")


def _rewrite(path, member: str, data: bytes) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[member] = data
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)


def test_render_project_cli_matches_the_renderer(tmp_path, capsys):
    ensure_test_model(TINY)
    doc = sample_doc()
    proj = tmp_path / "p.stylestudio"
    save_project(proj, doc)
    out = tmp_path / "out.png"
    assert cli_main(["render-project", str(proj), "-o", str(out)]) == 0
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(pixels, reference_frame(doc))
    assert read_recipe(out) == doc.to_json()[0]
    # other formats and sizes
    tif = tmp_path / "out.tif"
    assert cli_main(["render-project", str(proj), "-o", str(tif), "--size", "64"]) == 0
    assert Image.open(tif).size == (64, 64) and read_recipe(tif)["model"] == TINY


def test_render_project_cli_errors_are_one_line(tmp_path, capsys):
    proj = tmp_path / "p.stylestudio"
    save_project(proj, sample_doc(model="not-installed"))
    assert cli_main(["render-project", str(proj), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not-installed" in err and "\n" not in err
    bad = tmp_path / "bad.stylestudio"
    bad.write_bytes(b"garbage")
    assert cli_main(["render-project", str(bad), "-o", str(tmp_path / "y.png")]) == 2
    assert "damaged" in capsys.readouterr().err
