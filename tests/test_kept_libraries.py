"""A project keeps copies of the libraries its sliders read (engine/edits/kept.py): removing a
discovered library, renaming a path away or opening the project on another computer leaves a
project that still draws exactly as saved, says so in one line, and can still be edited; a copy
is someone else's data and every way it can be damaged is one line naming it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from stylestudio.cli import main
from stylestudio.engine.directions.library import Direction, DirectionLibrary
from stylestudio.engine.document import EditDocument, KeptLibrary, SeedSource
from stylestudio.engine.edits.direction import DirectionEdit
from stylestudio.engine.edits.kept import copies_to_keep, with_copies
from stylestudio.engine.edits.path import PathEdit
from stylestudio.engine.project import load_project, save_project
from stylestudio.engine.render import Renderer, to_uint8
from stylestudio.errors import InputError

from test_gui_support import (TINY, assert_same_picture, canvas_array, close_window, ensure_test_model, make_window,
                              reference_frame, wait_final)
from zip_json import edit_zip_json, zip_bytes


def _user_directions(name: str, seed: int = 5, kind: str = "attributes") -> Path:
    """A user's direction library ``name`` with directions bend and twist (``kind`` "discovered":
    one the Discover panel lists)."""
    from stylestudio.engine.directions.builder import user_library_path

    gen = ensure_test_model(TINY)
    rng = np.random.RandomState(seed)
    vecs = [v / np.linalg.norm(v) for v in rng.randn(2, gen.w_dim).astype(np.float32)]
    path = user_library_path(TINY, name)
    DirectionLibrary(TINY, [Direction("bend", "Bend", vecs[0], (), 1.0),
                            Direction("twist", "Twist", vecs[1], (), 1.0)], kind=kind).save(path)
    return path


def _user_textpaths(name: str):
    from stylestudio.engine.text.contraclip import LatentPaths
    from stylestudio.engine.text.library import TextPath, TextPathLibrary, library_file

    gen = ensure_test_model(TINY)
    torch.manual_seed(3)
    rows = 4
    latent = LatentPaths(2, rows * gen.w_dim, radius=2.0, dipoles=2).eval().requires_grad_(False)
    lib = TextPathLibrary(TINY, [TextPath("warm", "a warm face", "a cold face"), TextPath("wide", "wide", "narrow")],
                          latent, rows, gen.w_dim, 2.0, 0.5, "test")
    return lib.save(library_file(TINY, name))


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path)).astype(int)


def test_a_project_draws_its_removed_library_from_its_copy(tmp_path: Path, capsys):
    library = _user_directions("kept_cli")
    project = tmp_path / "p.stylestudio"
    try:
        assert main(["edit", "--model", TINY, "--source", "seed:7", "--library", "kept_cli", "--set", "bend=+2",
                     "-o", str(tmp_path / "a.png"), "--save-project", str(project)]) == 0
        (copy,) = load_project(project).libraries
        assert (copy.kind, copy.name) == ("directions", "kept_cli")
        assert main(["directions", "remove", "kept_cli", "--model", TINY]) == 0
    finally:
        library.unlink(missing_ok=True)
    capsys.readouterr()
    assert main(["render-project", str(project), "-o", str(tmp_path / "b.png")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["note: p.stylestudio: bend (slider of library kept_cli) is not installed here (library removed); "
                   "the project draws it with the copy it keeps."]
    assert np.array_equal(_pixels(tmp_path / "a.png"), _pixels(tmp_path / "b.png"))  # exactly as saved
    # still editable: the library's other sliders come from the copy too, and a re-save keeps it
    again = tmp_path / "q.stylestudio"
    assert main(["edit", "--source", str(project), "--library", "kept_cli", "--set", "twist=-1",
                 "-o", str(tmp_path / "c.png"), "--save-project", str(again)]) == 0
    doc = load_project(again)
    assert [e.name for e in doc.edits] == ["bend", "twist"]
    assert [k.digest for k in doc.libraries] == [copy.digest]
    assert not np.array_equal(_pixels(tmp_path / "b.png"), _pixels(tmp_path / "c.png"))


def test_a_project_reopens_as_saved_after_its_library_changed(tmp_path: Path, capsys):
    """A library retrained under the same name: the project draws its own copy until asked not to."""
    gen = ensure_test_model(TINY)
    library = _user_directions("kept_changed")
    project = tmp_path / "p.stylestudio"
    try:
        assert main(["edit", "--model", TINY, "--source", "seed:7", "--library", "kept_changed", "--set", "bend=+2",
                     "-o", str(tmp_path / "a.png"), "--save-project", str(project)]) == 0
        _user_directions("kept_changed", seed=6)  # retrained: other vectors, same names
        capsys.readouterr()
        assert main(["render-project", str(project), "-o", str(tmp_path / "b.png")]) == 0
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["note: p.stylestudio: bend (slider of library kept_changed) has changed in the installed "
                       "library since the project was saved; the project draws it as saved, with the copy it keeps "
                       "(--installed-sliders draws the installed version)."], err
        assert np.array_equal(_pixels(tmp_path / "a.png"), _pixels(tmp_path / "b.png"))
        # --installed-sliders: the retrained slider, silently, and a save keeps the installed version
        fresh = EditDocument(TINY, load_project(project).source, edits=load_project(project).edits)
        want = to_uint8(Renderer(gen, TINY).render(fresh))
        again = tmp_path / "q.stylestudio"
        assert main(["edit", "--source", str(project), "--installed-sliders", "--library", "kept_changed", "--set",
                     "bend=+2", "-o", str(tmp_path / "c.png"), "--save-project", str(again)]) == 0
        assert capsys.readouterr().err == ""
        assert np.array_equal(_pixels(tmp_path / "c.png"), want) and not np.array_equal(want, _pixels(tmp_path / "a.png"))
        assert [k.data for k in load_project(again).libraries] == [DirectionLibrary.load(library).to_bytes()]
        assert main(["render-project", str(again), "-o", str(tmp_path / "d.png")]) == 0
        assert capsys.readouterr().err == "" and np.array_equal(_pixels(tmp_path / "d.png"), want)
    finally:
        library.unlink(missing_ok=True)


def test_a_text_path_project_keeps_only_the_paths_it_uses(tmp_path: Path):
    from stylestudio.engine.resources import Resources
    from stylestudio.engine.text.library import TextPathLibrary

    gen = ensure_test_model(TINY)
    path = _user_textpaths("kept_paths")
    try:
        installed = TextPathLibrary.load(path)
        doc = EditDocument(TINY, SeedSource(seed=2), edits=(PathEdit(library="kept_paths", name="warm", amount=1.0),))
        want = to_uint8(Renderer(gen, TINY).render(doc))
        (copy,) = copies_to_keep(doc, Resources(gen, TINY))
        kept = TextPathLibrary.from_bytes(copy.data, "copy")
        assert kept.names() == ["warm"] and kept.fingerprint("warm") == installed.fingerprint("warm")
        assert copies_to_keep(doc, Resources(gen, TINY))[0].data == copy.data  # the same bytes every save
        save_project(tmp_path / "p.stylestudio", with_copies(doc, (copy,)))
    finally:
        path.unlink()
    back = load_project(tmp_path / "p.stylestudio")
    assert np.array_equal(to_uint8(Renderer(gen, TINY).render(back)), want)
    assert copies_to_keep(back, Resources(gen, TINY)) == back.libraries  # kept as it was
    with pytest.raises(InputError, match="no text path library 'kept_paths'"):
        Renderer(gen, TINY).render(dataclasses.replace(back, libraries=()))


def test_saving_keeps_a_copy_only_while_a_slider_uses_it():
    gen = ensure_test_model(TINY)
    library = _user_directions("kept_prune")
    try:
        from stylestudio.engine.resources import Resources

        edit = DirectionEdit(library="kept_prune", name="bend", amount=1.0)
        doc = EditDocument(TINY, SeedSource(seed=2), edits=(edit, DirectionEdit(library="sefa", name="factor1",
                                                                                 amount=1.0)))
        copies = copies_to_keep(doc, Resources(gen, TINY))
        assert [(k.kind, k.name) for k in copies] == [("directions", "kept_prune")]  # sefa comes from the model
        kept = with_copies(doc, copies)
        assert with_copies(kept, copies) is kept
        assert with_copies(kept.without_edit(edit.id), ()).libraries == ()  # no slider reads it any more
        assert with_copies(kept, ()).libraries == copies  # a save before the first frame loses nothing
    finally:
        library.unlink()


def _project_with_copy(tmp_path: Path, data: bytes, name: str = "gone") -> Path:
    doc = EditDocument(TINY, SeedSource(seed=2), edits=(DirectionEdit(library=name, name="bend", amount=1.0),),
                       libraries=(KeptLibrary("directions", name, data),))
    save_project(tmp_path / "p.stylestudio", doc)
    return tmp_path / "p.stylestudio"


@pytest.mark.parametrize("data, why", [
    (b"\x00" * 10, "not a library file"),
    (zip_bytes({"library.json": b'{"format": "stylestudio-directions"'}), "damaged direction library"),
    ("bomb", "would unpack to more than 1 MiB; refused"),
    ("other-model", "sliders of model 'elsewhere', not 'tiny32'"),
    ("short-vector", "direction 'bend' is not a finite 64-d vector"),
])
def test_a_damaged_copy_is_one_line(tmp_path: Path, capsys, monkeypatch, data, why):
    from stylestudio.engine import resources

    ensure_test_model(TINY)
    if data == "bomb":  # the size is checked before anything is unpacked (limit lowered to keep the test small)
        monkeypatch.setattr(resources, "MAX_KEPT_UNPACKED", 1 << 20)
        data = zip_bytes({"library.json": b"x" * (2 << 20)})
    elif data == "other-model":
        data = DirectionLibrary("elsewhere", [Direction("bend", "B", np.ones(64, np.float32) / 8, (), 1.0)]).to_bytes()
    elif data == "short-vector":
        data = DirectionLibrary(TINY, [Direction("bend", "B", np.ones(7, np.float32), (), 1.0)]).to_bytes()
    project = _project_with_copy(tmp_path, data)
    capsys.readouterr()
    assert main(["render-project", str(project), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the project's copy of directions library 'gone'" in err[0] and why in err[0], err
    assert not (tmp_path / "x.png").exists()


def test_a_hand_edited_copy_entry_is_one_line(tmp_path: Path):
    ensure_test_model(TINY)
    good = _project_with_copy(tmp_path, DirectionLibrary(TINY, []).to_bytes())
    for change, field in ((lambda b: b["libraries"][0].update(kind="weights"), "libraries[0].kind"),
                          (lambda b: b["libraries"][0].update(name="../../escape"), "libraries[0]: name: invalid"),
                          (lambda b: b.update(libraries="all"), "libraries")):
        bad = edit_zip_json(good, tmp_path / "bad.stylestudio", change, member="document.json")
        with pytest.raises(InputError) as err:
            load_project(bad)
        assert field in str(err.value) and "\n" not in str(err.value)


def _saved_in_editor(qtbot, library: str, path: Path) -> np.ndarray:
    """A project with one slider of ``library``, made and saved in the editor; the frame it showed."""
    w = make_window(qtbot)
    try:
        w.holder.set(w.holder.doc.with_edit(DirectionEdit(library=library, name="bend", amount=2.0)))
        wait_final(qtbot, w)
        assert w.save_to(path)
        return canvas_array(w)
    finally:
        close_window(w)


def test_the_editor_draws_a_removed_library_from_the_project_and_keeps_it(qtbot, tmp_path: Path):
    library = _user_directions("kept_gui")
    path = tmp_path / "p.stylestudio"
    try:
        _saved_in_editor(qtbot, "kept_gui", path)
        assert [k.name for k in load_project(path).libraries] == ["kept_gui"]
    finally:
        library.unlink()
    w = make_window(qtbot)  # another session (or computer): the library is not installed
    try:
        assert w.files.open_path(path, ask=False)
        qtbot.waitUntil(lambda: any("not installed here" in e for e in w.errors), timeout=10000)
        wait_final(qtbot, w)
        (message,) = [e for e in w.errors if "not installed here" in e]
        assert message.startswith("p.stylestudio: bend (slider of library kept_gui) is not installed here")
        assert message.endswith("(Edit ▸ Install the Project's Sliders adds a missing library to this computer).")
        assert len(w.errors) == 1  # drawn, not failed
        assert_same_picture(canvas_array(w), reference_frame(load_project(path)), tol=0)
        assert not w.actions_by_name["use_installed"].isEnabled()  # nothing installed to use instead
        w.actions_by_name["use_installed"].trigger()  # (even when triggered anyway: the copy stays)
        assert w.holder.doc.libraries == load_project(path).libraries
        assert w.save_to(tmp_path / "again.stylestudio")
        assert load_project(tmp_path / "again.stylestudio").libraries == load_project(path).libraries
        # the colleague installs the project's library: a file in their data folder, for every project
        install = w.actions_by_name["install_sliders"]
        assert install.isEnabled() and not library.exists()
        install.trigger()
        qtbot.waitUntil(lambda: library.exists() and not install.isEnabled(), timeout=10000)
        assert library.read_bytes() == load_project(path).libraries[0].data
        assert any(m.startswith("Installed directions kept_gui") for m in [w.statusBar().currentMessage()])
    finally:
        library.unlink(missing_ok=True)
        close_window(w)


def test_the_editor_reopens_as_saved_and_uses_the_installed_sliders_on_request(qtbot, tmp_path: Path):
    library = _user_directions("kept_gui_changed")
    path = tmp_path / "p.stylestudio"
    saved = _saved_in_editor(qtbot, "kept_gui_changed", path)
    _user_directions("kept_gui_changed", seed=6)  # retrained under the same name
    w = make_window(qtbot)
    try:
        assert w.files.open_path(path, ask=False)
        qtbot.waitUntil(lambda: any("as saved" in e for e in w.errors), timeout=10000)
        wait_final(qtbot, w)
        assert_same_picture(canvas_array(w), saved, tol=0)
        (message,) = [e for e in w.errors if "as saved" in e]
        assert message.endswith("(Edit ▸ Use Installed Sliders draws the installed version).")
        opened = w.holder.doc
        use = w.actions_by_name["use_installed"]
        assert use.isEnabled()
        use.trigger()
        assert w.holder.doc.libraries == () and w.undo_stack.undoText() == "Use installed sliders"
        wait_final(qtbot, w)
        installed = reference_frame(dataclasses.replace(opened, libraries=()))
        assert_same_picture(canvas_array(w), installed, tol=0)
        assert not use.isEnabled()  # nothing left to use
        assert not np.array_equal(installed, saved)
        assert w.save_to(tmp_path / "new.stylestudio")
        assert [k.data for k in load_project(tmp_path / "new.stylestudio").libraries] == \
            [DirectionLibrary.load(library).to_bytes()]
        w.undo_stack.undo()  # back to the copy
        wait_final(qtbot, w)
        assert_same_picture(canvas_array(w), saved, tol=0)
    finally:
        library.unlink(missing_ok=True)
        close_window(w)


def test_deleting_a_direction_the_open_picture_uses_keeps_it_drawing(qtbot, tmp_path: Path):
    """An artist tries a discovered direction, then deletes it (or the whole library) in the Discover
    panel: the unsaved picture keeps drawing it as before, says so, saves a copy, and Install brings
    the deleted library back."""
    library = _user_directions("kept_open", seed=8, kind="discovered")
    w = make_window(qtbot)
    try:
        w.holder.set(w.holder.doc.with_edit(DirectionEdit(library="kept_open", name="bend", amount=2.0)))
        wait_final(qtbot, w)
        drawn = canvas_array(w)
        panel = w.panel("discover")
        w.docks["discover"].show()
        panel.confirm = lambda question: True  # "Delete …?" answered Delete
        panel.refresh(select="kept_open")
        qtbot.waitUntil(lambda: panel.library.currentText() == "kept_open" and panel.list.count() == 2, timeout=10000)
        panel.list.setCurrentRow(0)
        panel.delete_button.click()
        qtbot.waitUntil(lambda: panel.list.count() == 1, timeout=10000)
        # drawn again at once (the library changed), as before, with a note and no error
        qtbot.waitUntil(lambda: "no longer installed" in w.statusBar().currentMessage(), timeout=10000)
        assert w.statusBar().currentMessage() == ("bend (slider of library kept_open) is no longer installed; the "
                                                  "picture keeps drawing it as before, and saving keeps a copy in "
                                                  "the project.")
        wait_final(qtbot, w)
        assert w.errors == []
        assert_same_picture(canvas_array(w), drawn, tol=0)
        assert not w.actions_by_name["install_sliders"].isEnabled()  # the library is still there: nothing to install
        exported = tmp_path / "after.png"  # exported as on screen (the job thread never drew "bend")
        w.export_to(exported)
        qtbot.waitUntil(exported.exists, timeout=20000)
        assert w.errors == [] and np.array_equal(_pixels(exported), drawn.astype(int))
        # it keeps drawing through further edits and undo, and a save keeps the deleted direction
        w.holder.set(w.holder.doc.with_edit(DirectionEdit(library="kept_open", name="twist", amount=-1.0)))
        wait_final(qtbot, w)
        assert w.errors == []
        assert w.save_to(tmp_path / "p.stylestudio")
        saved = load_project(tmp_path / "p.stylestudio")
        assert any("bend" in DirectionLibrary.from_bytes(k.data, "copy").directions for k in saved.libraries)
        # the whole library deleted: still drawn; Install puts it back from the picture's copies
        panel.delete_library_button.click()
        qtbot.waitUntil(lambda: not library.exists(), timeout=10000)
        install = w.actions_by_name["install_sliders"]
        qtbot.waitUntil(install.isEnabled, timeout=10000)
        wait_final(qtbot, w)
        assert w.errors == []
        install.trigger()
        qtbot.waitUntil(library.exists, timeout=10000)
        assert list(DirectionLibrary.load(library).directions) == ["bend", "twist"]  # the deleted direction too
        wait_final(qtbot, w)
        assert w.errors == [] and not install.isEnabled()
    finally:
        library.unlink(missing_ok=True)
        close_window(w)


def test_a_session_draws_a_slider_removed_while_in_use_from_the_version_it_drew():
    """Resources remembers the slider libraries it replaced or forgot, so a picture whose slider was
    removed or retrained away keeps drawing; the version comes back as a copy a save keeps."""
    from stylestudio.engine.edits.kept import ENTRY_MISSING, NOT_INSTALLED, drawn_from_copies
    from stylestudio.engine.resources import MAX_FORMER
    from stylestudio.engine.session import Engine

    library = _user_directions("kept_session")
    try:
        engine = Engine()
        doc = EditDocument(TINY, SeedSource(4)).with_edit(
            DirectionEdit(library="kept_session", name="bend", amount=2.0))
        res = engine.model(TINY).resources
        drawn = to_uint8(engine.renderer(TINY).render(doc))
        first = res.get("directions", "kept_session")
        assert res.library("directions", "kept_session", "bend") == (first, None)  # installed: no copy
        # "bend" removed: the new library replaces the old one in the session
        res.put("directions", "kept_session", DirectionLibrary(TINY, [first["twist"]]))
        lib, copy = res.library("directions", "kept_session", "bend")
        assert lib is first and (copy.kind, copy.name) == ("directions", "kept_session")
        assert res.kept(copy) is first  # read as it is, never parsed again
        assert np.array_equal(to_uint8(engine.renderer(TINY).render(doc)), drawn)
        assert drawn_from_copies(doc, res) == {doc.edits[0].id: ENTRY_MISSING}
        assert engine.library_copies(doc) == (copy,)
        # the whole library deleted (every session forgets it): still drawn, now "not installed"
        library.unlink()
        engine.install(TINY, "directions", "kept_session", None)
        assert res.library("directions", "kept_session", "bend") == (first, copy)
        assert drawn_from_copies(doc, res) == {doc.edits[0].id: NOT_INSTALLED}
        # an entry no version this session drew ever held is an error, as before
        with pytest.raises(InputError, match="no direction library 'kept_session'"):
            res.library("directions", "kept_session", "warp")
        # only the last few versions are remembered
        for i in range(MAX_FORMER + 1):
            res.put("directions", "kept_session", DirectionLibrary(TINY, [first["twist"]]))
        with pytest.raises(InputError, match="no direction 'bend'"):
            engine.renderer(TINY).render(doc)
    finally:
        library.unlink(missing_ok=True)


def test_a_library_written_again_on_disk_is_read_again_and_the_version_drawn_stays_at_hand():
    """The CLI (another process) or another thread's session rewrites a library the session has
    cached: the next frame reads the file again; a direction it removed still draws as before."""
    from stylestudio.engine.edits.kept import ENTRY_MISSING, drawn_from_copies
    from stylestudio.engine.session import Engine

    library = _user_directions("kept_disk")
    try:
        engine = Engine()
        res = engine.model(TINY).resources
        doc = EditDocument(TINY, SeedSource(4)).with_edit(DirectionEdit(library="kept_disk", name="bend", amount=2.0))
        first = res.get("directions", "kept_disk")
        assert res.get("directions", "kept_disk") is first  # unchanged: not read again
        before = to_uint8(engine.renderer(TINY).render(doc))
        _user_directions("kept_disk", seed=6)  # `stylestudio discover --name kept_disk` again, elsewhere
        second = res.get("directions", "kept_disk")
        assert second is not first
        retrained = to_uint8(engine.renderer(TINY).render(doc))
        assert not np.array_equal(before, retrained)
        DirectionLibrary(TINY, [second["twist"]]).save(library)  # `stylestudio directions remove kept_disk bend`
        assert np.array_equal(to_uint8(engine.renderer(TINY).render(doc)), retrained)
        assert drawn_from_copies(doc, res) == {doc.edits[0].id: ENTRY_MISSING}
    finally:
        library.unlink(missing_ok=True)


def test_the_editor_draws_again_when_a_library_it_uses_is_retrained(qtbot):
    """A library made current by a job (training again under the same name) redraws a picture that
    uses it at once; nothing else is redrawn."""
    library = _user_directions("kept_retrained")
    w = make_window(qtbot)
    try:
        w.holder.set(w.holder.doc.with_edit(DirectionEdit(library="kept_retrained", name="bend", amount=2.0)))
        wait_final(qtbot, w)
        before, seq = canvas_array(w), w.renders.latest_seq
        w.engine.worker.post_install([(TINY, "directions", "unused_lib", DirectionLibrary(TINY, []))])
        qtbot.wait(500)
        assert w.renders.latest_seq == seq  # a library the picture does not use: no frame
        _user_directions("kept_retrained", seed=9)
        w.engine.worker.post_install([(TINY, "directions", "kept_retrained", DirectionLibrary.load(library))])
        qtbot.waitUntil(lambda: w.renders.latest_seq > seq, timeout=10000)
        wait_final(qtbot, w)
        assert w.errors == []
        assert_same_picture(canvas_array(w), reference_frame(w.holder.doc), tol=0)
        assert not np.array_equal(canvas_array(w), before)
    finally:
        library.unlink(missing_ok=True)
        close_window(w)


def test_an_autosave_keeps_copies_so_a_recovered_picture_draws_without_its_library(qtbot):
    from stylestudio.app.undo_commands import EditChangeCommand

    library = _user_directions("kept_autosave")
    w = make_window(qtbot)
    try:
        w.undo_stack.push(EditChangeCommand(w.holder, w.holder.doc.with_edit(
            DirectionEdit(library="kept_autosave", name="bend", amount=2.0)), "Bend"))  # unsaved work
        wait_final(qtbot, w)
        drawn = canvas_array(w)
        w.autosave.tick()
        autosaved = load_project(w.autosave.store.path)
    finally:
        library.unlink()  # deleted before the crashed session's picture is recovered
        close_window(w)
    assert [k.name for k in autosaved.libraries] == ["kept_autosave"]
    assert_same_picture(reference_frame(autosaved), drawn, tol=0)


def test_a_batch_recipe_carries_its_copies(tmp_path: Path):
    from stylestudio.engine.batch.recipe import Recipe, check_recipe
    from stylestudio.engine.session import Engine

    ensure_test_model(TINY)
    library = _user_directions("kept_batch")
    project = tmp_path / "r.stylestudio"
    try:
        assert main(["edit", "--model", TINY, "--source", "seed:7", "--library", "kept_batch", "--set", "bend=+2",
                     "-o", str(tmp_path / "a.png"), "--save-project", str(project)]) == 0
    finally:
        library.unlink()
    recipe = Recipe.load(project)
    assert [k.name for k in recipe.libraries] == ["kept_batch"]
    check_recipe(Engine(device="cpu"), recipe, "r.stylestudio")  # no library installed: the copy serves
    # resume: the copy drawn shapes the result, so it counts; its stamp only records, and does not
    assert recipe.digest() != dataclasses.replace(recipe, libraries=()).digest()
    restamped = tuple(dataclasses.replace(e, version="0123456789abcdef") for e in recipe.edits)
    assert recipe.digest() == dataclasses.replace(recipe, edits=restamped).digest()
    assert Recipe.load(project).digest() == recipe.digest()


def test_a_batch_draws_the_recipe_as_saved_or_with_the_installed_sliders(tmp_path: Path, capsys):
    from stylestudio.commands.batch import recipe_as_drawn
    from stylestudio.engine.batch.recipe import Recipe
    from stylestudio.engine.session import Engine

    gen = ensure_test_model(TINY)
    library = _user_directions("kept_batch_changed")
    project = tmp_path / "r.stylestudio"
    try:
        assert main(["edit", "--model", TINY, "--source", "seed:7", "--library", "kept_batch_changed", "--set",
                     "bend=+2", "-o", str(tmp_path / "a.png"), "--save-project", str(project)]) == 0
        _user_directions("kept_batch_changed", seed=6)  # retrained
        recipe, session = Recipe.load(project), Engine(device="cpu")
        capsys.readouterr()
        as_saved = recipe_as_drawn(session, recipe, "r.stylestudio", installed=False)
        assert "draws it as saved" in capsys.readouterr().err
        assert as_saved.libraries == recipe.libraries and as_saved.digest() == recipe.digest()
        installed = recipe_as_drawn(session, recipe, "r.stylestudio", installed=True)
        assert capsys.readouterr().err == "" and installed.libraries == ()
        assert installed.digest() != recipe.digest()  # drawn otherwise: the batch redoes its photos
        face = SeedSource(seed=3)
        draw = lambda r: to_uint8(Renderer(gen, TINY).render(r.apply(face)))  # noqa: E731
        assert not np.array_equal(draw(as_saved), draw(installed))
    finally:
        library.unlink()


def test_installing_a_projects_sliders_never_overwrites_an_installed_library(tmp_path: Path):
    from stylestudio.engine.edits.kept import install_missing
    from stylestudio.engine.resources import Resources

    gen = ensure_test_model(TINY)
    library = _user_directions("kept_install")
    try:
        doc = EditDocument(TINY, SeedSource(seed=2), edits=(DirectionEdit(library="kept_install", name="bend", amount=1),))
        copy = copies_to_keep(doc, Resources(gen, TINY))
        mine = DirectionLibrary(TINY, [Direction("twist", "Twist", np.ones(gen.w_dim, np.float32) / 8, (), 1.0)])
        mine.save(library)  # the user's own library of that name, without the project's slider
        kept = with_copies(doc, copy)
        assert install_missing(kept, Resources(gen, TINY)) == []
        assert library.read_bytes() == mine.to_bytes()
        library.unlink()
        ((kind, name, lib),) = install_missing(kept, Resources(gen, TINY))
        assert (kind, name, lib.names()) == ("directions", "kept_install", ["bend", "twist"])
        assert library.read_bytes() == copy[0].data
    finally:
        library.unlink(missing_ok=True)


def test_only_sliders_whose_own_entry_changed_are_reported():
    """A library retrained in part: its copy differs byte for byte, but only the changed entry draws otherwise."""
    from stylestudio.engine.edits.kept import AS_SAVED, drawn_from_copies
    from stylestudio.engine.resources import Resources

    gen = ensure_test_model(TINY)
    library = _user_directions("kept_partly")
    try:
        bend, twist = (DirectionEdit(library="kept_partly", name=n, amount=1.0) for n in ("bend", "twist"))
        saved = with_copies(EditDocument(TINY, SeedSource(seed=2), edits=(bend, twist)),
                            copies_to_keep(EditDocument(TINY, SeedSource(seed=2), edits=(bend,)), Resources(gen, TINY)))
        assert drawn_from_copies(saved, Resources(gen, TINY)) == {}  # the same library: nothing to say
        lib = DirectionLibrary.load(library)
        lib.directions["twist"] = dataclasses.replace(lib.directions["twist"], unit=2.0)
        lib.save(library)
        assert drawn_from_copies(saved, Resources(gen, TINY)) == {twist.id: AS_SAVED}
    finally:
        library.unlink()
