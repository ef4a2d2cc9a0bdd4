"""A project remembers which version of each slider's library entry it was saved with
(engine/edits/versions.py): saving stamps, and opening a project whose entry has since changed
(a retrained library of the same name, a newer shipped one) says so in one line, in the CLI and in
the editor, instead of silently drawing another face."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from stylestudio.cli import main
from stylestudio.engine.directions.library import Direction, DirectionLibrary
from stylestudio.engine.document import EditDocument, SeedSource
from stylestudio.engine.edits.direction import DirectionEdit
from stylestudio.engine.edits.path import PathEdit
from stylestudio.engine.edits.versions import changed_entries, changed_message, entry_version, stamped
from stylestudio.engine.project import load_project, save_project
from stylestudio.errors import InputError

from test_gui_support import TINY, close_window, ensure_test_model, make_window, wait_final
from zip_json import edit_zip_json


class _Resources:
    def __init__(self, **libs) -> None:
        self.libs = libs

    def get(self, kind: str, name: str):
        return self.libs[name]

    def library(self, kind: str, name: str, entry: str, kept=()):
        return self.libs[name], None


def _directions(scale: float = 1.0, unit: float = 1.0) -> DirectionLibrary:
    rng = np.random.RandomState(0)
    vec = [v / np.linalg.norm(v) for v in rng.randn(2, 8).astype(np.float32)]
    return DirectionLibrary("m", [Direction("a", "A", vec[0] * scale / np.linalg.norm(vec[0] * scale), (0, 1), unit),
                                  Direction("b", "B", vec[1], (), 1.0)])


def test_a_direction_version_follows_what_the_edit_reads(tmp_path: Path):
    edit = DirectionEdit(library="lib", name="a", amount=2.0)
    v = entry_version(edit, _Resources(lib=_directions()), 4)
    assert len(v) == 16 and v == entry_version(dataclasses.replace(edit, amount=-1.0), _Resources(lib=_directions()), 4)
    lib = _directions()
    lib.save(tmp_path / "l.ssdir")
    assert entry_version(edit, _Resources(lib=DirectionLibrary.load(tmp_path / "l.ssdir")), 4) == v  # saved and loaded
    assert entry_version(edit, _Resources(lib=_directions(unit=1.5)), 4) != v  # another unit
    assert entry_version(dataclasses.replace(edit, keep=("b",)), _Resources(lib=_directions()), 4) != v  # holds b still
    other = _directions()
    other.directions["a"] = dataclasses.replace(other.directions["a"], layers=(0,))
    assert entry_version(edit, _Resources(lib=other), 4) != v  # other rows


def test_a_text_path_version_survives_copying_and_changes_with_its_units(tmp_path: Path):
    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.text.library import TextPathLibrary, shipped_library

    lib = TextPathLibrary.load(shipped_library(DEFAULT_MODEL, "textpaths"))
    prints = {n: lib.fingerprint(n) for n in lib.names()}
    assert len(set(prints.values())) == len(prints)
    assert lib.subset(["age"]).fingerprint("age") == prints["age"]
    # age moves 12 of the library's 15 rows: in a library of its own 12 rows (as trained) it is the same path
    k, age = lib.index("age"), lib.paths[lib.index("age")]
    own = TextPathLibrary(lib.model, [dataclasses.replace(age, rows=None)], lib.latent.restricted(k, age.rows * lib.w_dim),
                          age.rows, lib.w_dim, lib.radius, lib.unit, lib.encoder)
    assert age.rows == 12 < lib.rows and own.fingerprint("age") == prints["age"]
    lib.save(tmp_path / "t.sstp")
    assert {n: TextPathLibrary.load(tmp_path / "t.sstp").fingerprint(n) for n in lib.names()} == prints
    lib.set_path_units({}, negative={"smile": 2.0})
    assert lib.fingerprint("smile") != prints["smile"] and lib.fingerprint("gender") == prints["gender"]


def test_stamps_are_compared_only_where_a_project_has_them(tmp_path: Path):
    edits = (DirectionEdit(library="attributes", name="age", amount=1.0), PathEdit(library="textpaths", name="smile",
                                                                                  amount=0.5))
    doc = EditDocument("m", SeedSource(seed=3, psi=0.7), edits=edits)
    now = {edits[0].id: "00000000000000aa", edits[1].id: "00000000000000bb"}
    assert changed_entries(doc, now) == []  # saved before stamps existed: nothing to say
    saved = stamped(doc, now)
    assert [e.version for e in saved.edits] == ["00000000000000aa", "00000000000000bb"]
    save_project(tmp_path / "p.stylestudio", saved)
    back = load_project(tmp_path / "p.stylestudio")
    assert [e.version for e in back.edits] == ["00000000000000aa", "00000000000000bb"]
    assert changed_entries(back, now) == []
    later = {**now, edits[1].id: "00000000000000cc"}
    assert changed_entries(back, later) == ["smile (text path of library textpaths)"]
    line = changed_message("p.stylestudio", changed_entries(back, later))
    assert line.startswith("p.stylestudio: smile (text path of library textpaths) has changed since the project "
                           "was saved.") and "\n" not in line
    assert stamped(back, now) is back  # nothing to stamp anew


def test_a_hand_edited_stamp_is_one_line(tmp_path: Path):
    doc = EditDocument("m", SeedSource(seed=3, psi=0.7), edits=(DirectionEdit(library="attributes", name="age",
                                                                              amount=1.0, version="ab12"),))
    good = tmp_path / "good.stylestudio"
    save_project(good, doc)
    bad = edit_zip_json(good, tmp_path / "bad.stylestudio", lambda body: body["edits"][0].update(version="<script>"),
                        member="document.json")
    with pytest.raises(InputError) as err:
        load_project(bad)
    assert "version" in str(err.value) and "\n" not in str(err.value)


def _user_directions(model: str, name: str, vector: np.ndarray) -> Path:
    from stylestudio.engine.directions.builder import user_library_path

    path = user_library_path(model, name)
    DirectionLibrary(model, [Direction("bend", "Bend", vector / np.linalg.norm(vector), (), 1.0)]).save(path)
    return path


def test_the_cli_says_when_a_projects_slider_changed(tmp_path: Path, capsys):
    gen = ensure_test_model(TINY)
    rng = np.random.RandomState(5)
    library = _user_directions(TINY, "versions_cli", rng.randn(gen.w_dim).astype(np.float32))
    try:
        project = tmp_path / "p.stylestudio"
        assert main(["edit", "--model", TINY, "--source", "seed:7", "--library", "versions_cli", "--set", "bend=+2",
                     "-o", str(tmp_path / "a.png"), "--save-project", str(project)]) == 0
        (edit,) = load_project(project).edits
        assert len(edit.version) == 16  # stamped when saved
        # as a project saved before projects kept their libraries (tests/test_kept_libraries.py)
        save_project(project, dataclasses.replace(load_project(project), libraries=()))
        capsys.readouterr()
        assert main(["render-project", str(project), "-o", str(tmp_path / "b.png")]) == 0
        assert "warning" not in capsys.readouterr().err  # unchanged: nothing to say
        _user_directions(TINY, "versions_cli", rng.randn(gen.w_dim).astype(np.float32))  # retrained, same name
        assert main(["render-project", str(project), "-o", str(tmp_path / "c.png")]) == 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("warning: p.stylestudio: bend (slider of library versions_cli) has "
                                                   "changed since the project was saved."), err
        assert main(["edit", "--source", str(project), "--set", "bend=+1", "--library", "versions_cli",
                     "-o", str(tmp_path / "d.png")]) == 0
        assert "bend (slider of library versions_cli)" in capsys.readouterr().err
    finally:
        library.unlink()


def test_the_editor_stamps_on_save_and_warns_on_open(qtbot, tmp_path: Path):
    from stylestudio.engine.session import Engine

    w = make_window(qtbot)
    try:
        doc = w.holder.doc.with_edit(DirectionEdit(library="sefa", name="factor1", amount=1.5))
        w.holder.set(doc)
        wait_final(qtbot, w)
        path = tmp_path / "p.stylestudio"
        assert w.save_to(path)
        (edit,) = load_project(path).edits
        with torch.no_grad():
            assert edit.version == Engine(device="cpu").library_versions(doc)[edit.id]
        assert w.files.open_path(path, ask=False)
        wait_final(qtbot, w)
        assert not any("changed since" in e for e in w.errors)  # the same entry: no message
        old = dataclasses.replace(load_project(path), edits=(dataclasses.replace(edit, version="0123456789abcdef"),))
        save_project(tmp_path / "old.stylestudio", old)
        assert w.files.open_path(tmp_path / "old.stylestudio", ask=False)
        qtbot.waitUntil(lambda: any("changed since" in e for e in w.errors), timeout=10000)
        (message,) = [e for e in w.errors if "changed since" in e]
        assert message.startswith("old.stylestudio: factor1 (slider of library sefa) has changed since the project "
                                  "was saved.")
        assert w.windowTitle() == "StyleStudio — old[*]"  # opened, drawn, nothing lost
    finally:
        close_window(w)


def test_a_stamp_does_not_change_what_a_batch_recipe_is():
    """The batch's resume check compares recipe digests: re-saving a recipe (new stamps) must not redo photos."""
    from stylestudio.engine.batch.recipe import Recipe

    doc = EditDocument("m", SeedSource(seed=3, psi=0.7), edits=(DirectionEdit(library="attributes", name="age",
                                                                              amount=1.0, id="a"),))
    plain = Recipe.from_document(doc)
    assert Recipe.from_document(stamped(doc, {"a": "00000000000000aa"})).digest() == plain.digest()
    assert Recipe.from_document(doc.with_edit(DirectionEdit(library="attributes", name="age", amount=2.0,
                                                            id="a"))).digest() != plain.digest()
