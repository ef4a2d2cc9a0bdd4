"""Project files (atomic zip of JSON + arrays) and the headless ``render-project`` command."""
from __future__ import annotations

import errno
import json
import os
import stat
import struct
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


# ---- saving keeps what the user set up (safe_io.atomic_write) ---------------------------------------


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_project_gets_the_umask_mode(tmp_path, umask_022):
    path = tmp_path / "new.stylestudio"
    save_project(path, sample_doc())
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_resaving_keeps_the_files_mode(tmp_path, umask_022, mode):
    path = tmp_path / "kept.stylestudio"
    save_project(path, sample_doc())
    os.chmod(path, mode)
    save_project(path, sample_doc(model="other"))
    assert stat.S_IMODE(path.stat().st_mode) == mode and load_project(path).model == "other"


def test_saving_through_a_symlink_updates_its_target(tmp_path):
    target = tmp_path / "real.stylestudio"
    save_project(target, sample_doc())
    link = tmp_path / "link.stylestudio"
    link.symlink_to(target)
    save_project(link, sample_doc(model="through-link"))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert load_project(target).model == "through-link"


def test_hard_links_stay_joined(tmp_path):
    a = tmp_path / "a.stylestudio"
    save_project(a, sample_doc())
    b = tmp_path / "b.stylestudio"
    os.link(a, b)
    save_project(a, sample_doc(model="joined"))
    assert os.path.samefile(a, b) and load_project(b).model == "joined"


def test_a_failed_save_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "t.stylestudio"

    def failing_writestr(self, *args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing_writestr)
    with pytest.raises(InputError, match="t.stylestudio"):
        save_project(path, sample_doc())
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    assert not list(tmp_path.glob(".t.stylestudio.*.tmp"))


# ---- loading: read-only arrays, only referenced arrays, headers before data ------------------------


def test_loaded_arrays_are_read_only(tmp_path):
    from stylestudio.engine.edits.transfer import TransferEdit

    mask = np.zeros((16, 16), np.uint8)
    mask[4:9, 4:9] = 255
    wplus = np.random.RandomState(1).randn(1, 6, 16).astype(np.float32)
    doc = EditDocument(model="m", source=LatentSource(wplus=wplus),
                       edits=(TransferEdit(reference=LatentSource(wplus=wplus), mask=mask, id="t"),))
    save_project(tmp_path / "r.stylestudio", doc)
    back = load_project(tmp_path / "r.stylestudio")
    for arr in (back.source.wplus, back.edits[0].mask, back.edits[0].reference.wplus):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 1


def test_only_the_arrays_the_document_uses_are_read(tmp_path, monkeypatch):
    wplus = np.zeros((1, 6, 16), np.float32)
    path = tmp_path / "u.stylestudio"
    save_project(path, EditDocument(model="m", source=LatentSource(wplus=wplus)))
    members = {}
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(members["manifest.json"])
    manifest["arrays"].append("unused")
    members["manifest.json"] = json.dumps(manifest).encode()
    members["arrays/unused.npy"] = b"\x93NUMPY garbage that would not parse"
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    read = []
    real = project_mod._read_npy
    monkeypatch.setattr(project_mod, "_read_npy", lambda zf, info, key: read.append(key) or real(zf, info, key))
    assert np.array_equal(load_project(path).source.wplus, wplus)
    assert read == ["source.wplus"]


def test_an_array_header_is_checked_before_its_data_is_read(tmp_path):
    path = tmp_path / "h.stylestudio"
    save_project(path, EditDocument(model="m", source=LatentSource(wplus=np.zeros((1, 6, 16), np.float32))))
    header = repr({"descr": "<f4", "fortran_order": False, "shape": (1, 18, 2 ** 40)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    _rewrite(path, "arrays/source.wplus.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    with pytest.raises(InputError, match=r"h.stylestudio: arrays/source.wplus.npy: holds a latent of shape"):
        load_project(path)


def test_field_errors_name_the_file_and_the_field(tmp_path):
    path = tmp_path / "f.stylestudio"
    save_project(path, sample_doc())
    body = json.loads(zipfile.ZipFile(path).read("document.json"))
    body["edits"][0]["amount"] = "abc"
    _rewrite(path, "document.json", json.dumps(body).encode())
    with pytest.raises(InputError) as info:
        load_project(path)
    assert str(info.value) == "f.stylestudio: edits[0].amount: expected a finite number, got 'abc'"


def test_attribute_switches_are_saved_in_the_project(tmp_path):
    from stylestudio.engine.document import AttributeSettings

    doc = sample_doc().with_attributes(AttributeSettings(keep_others=False, pins=("smile",)))
    save_project(tmp_path / "k.stylestudio", doc)
    assert load_project(tmp_path / "k.stylestudio").attributes == doc.attributes
    path = tmp_path / "bad.stylestudio"
    save_project(path, doc)
    body = json.loads(zipfile.ZipFile(path).read("document.json"))
    body["attributes"]["keep_others"] = "no"
    _rewrite(path, "document.json", json.dumps(body).encode())
    with pytest.raises(InputError) as info:
        load_project(path)
    assert str(info.value) == "bad.stylestudio: attributes.keep_others: expected true or false, got 'no'"


def test_pti_weight_deltas_are_judged_by_the_delta_limit_not_the_generic_one() -> None:
    """A photo project's fine-tuned weights (``source.delta:<parameter>``, names with dots) are legal
    up to the delta limit; a generic array of that size would be refused."""
    import numpy as np

    from stylestudio.engine.project import MAX_DELTA_ELEMENTS, _kind_limits

    f32 = np.dtype(np.float32)
    assert _kind_limits("source.delta:stages.b4.conv1.weight", (512, 512, 3, 3), f32) is None
    assert _kind_limits("source.delta:stages.b4.conv1.weight", (MAX_DELTA_ELEMENTS + 1,), f32)
    assert _kind_limits("source.something", (512, 512, 3, 3), f32)
