"""``stylestudio discover`` and ``stylestudio directions list|show|rename|remove`` end to end on a
tiny model, and ``stylestudio edit --library`` with the discovered directions."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stylestudio.cli import main
from stylestudio.engine.directions.library import DirectionLibrary

from test_gui_support import TINY, ensure_test_model

MODEL = ["--model", TINY]


@pytest.fixture(scope="module", autouse=True)
def tiny():
    import torch

    torch.set_num_threads(1)
    return ensure_test_model(TINY)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_discover_then_use_rename_and_remove(capsys, tmp_path):
    rc, out, err = run(capsys, "discover", *MODEL, "--steps", "3", "--size", "32", "--directions", "3",
                       "--seed", "4", "--sensor", "generator", "--q", "8", "--name", "clitest")
    assert rc == 0, err
    assert "step 1/3" in err and "step 3/3" in err and "loss" in err  # progress lines
    assert "3 directions (contrafeat)" in out and "clitest.ssdir" in out
    path = out.strip().splitlines()[-1].split("→")[-1].strip()
    lib = DirectionLibrary.load(path)
    assert lib.names() == ["direction_1", "direction_2", "direction_3"] and lib.kind == "discovered"
    assert all(len(lib[n].row_weights) == 8 and lib[n].layers for n in lib.names())

    rc, out, _ = run(capsys, "directions", "list", *MODEL)
    assert rc == 0 and "clitest" in out and "discovered" in out and "3 directions" in out
    rc, out, _ = run(capsys, "directions", "show", "clitest", *MODEL)
    assert rc == 0 and "direction_2" in out and "rows" in out and "|" in out
    rc, out, err = run(capsys, "directions", "show", "sefa", *MODEL)  # computed by the model, not a file
    assert rc == 0, err
    assert "computed from the model" in out and "factor1" in out and "eigenvalue" in out

    plain, moved = tmp_path / "plain.png", tmp_path / "moved.png"
    assert run(capsys, "edit", *MODEL, "--source", "seed:7", "--library", "clitest", "--set", "direction_3=0",
               "-o", str(plain))[0] == 0
    rc, _, err = run(capsys, "edit", *MODEL, "--source", "seed:7", "--library", "clitest", "--set", "direction_3=+2",
                     "-o", str(moved))
    assert rc == 0, err
    a = np.asarray(Image.open(plain), np.float32)
    b = np.asarray(Image.open(moved), np.float32)
    assert np.abs(a - b).mean() > 0.5

    project = tmp_path / "before_rename.stylestudio"  # saved while the direction had its first name
    assert run(capsys, "edit", *MODEL, "--source", "seed:7", "--library", "clitest", "--set", "direction_3=+2",
               "-o", str(tmp_path / "p.png"), "--save-project", str(project))[0] == 0
    rc, out, _ = run(capsys, "directions", "rename", "clitest", "direction_3", "Hair volume", *MODEL)
    assert rc == 0 and "hair_volume" in out
    assert DirectionLibrary.load(path).names() == ["direction_1", "direction_2", "hair_volume"]
    rc, out, _ = run(capsys, "directions", "rename", "clitest", "hair_volume", "Hair  Volume", *MODEL)
    assert rc == 0 and out.startswith("hair_volume is now labelled 'Hair Volume'")
    assert DirectionLibrary.load(path).directions["hair_volume"].label == "Hair Volume"
    rc, out, _ = run(capsys, "directions", "show", "clitest", *MODEL)
    assert rc == 0 and [ln for ln in out.splitlines() if ln.startswith("hair_volume")][0].endswith(
        "(formerly direction_3)")
    renamed, old_name, reopened = (tmp_path / f"{n}.png" for n in ("renamed", "old_name", "reopened"))
    rc, _, err = run(capsys, "edit", *MODEL, "--source", "seed:7", "--library", "clitest", "--set",
                     "Hair volume=+2", "-o", str(renamed))
    assert rc == 0, err
    # the former name still names it, and the project saved before the rename renders as before
    rc, _, err = run(capsys, "edit", *MODEL, "--source", "seed:7", "--library", "clitest", "--set",
                     "direction_3=+2", "-o", str(old_name))
    assert rc == 0, err
    rc, _, err = run(capsys, "render-project", str(project), "-o", str(reopened))
    assert rc == 0, err
    for p in (old_name, reopened):
        assert np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(renamed))), p.name
    assert np.array_equal(np.asarray(Image.open(renamed)), np.asarray(Image.open(moved)))

    rc, out, _ = run(capsys, "directions", "remove", "clitest", "direction_1", *MODEL)
    assert rc == 0 and DirectionLibrary.load(path).names() == ["direction_2", "hair_volume"]
    rc, out, _ = run(capsys, "directions", "remove", "clitest", *MODEL)
    assert rc == 0 and "removed" in out
    rc, _, err = run(capsys, "directions", "show", "clitest", *MODEL)
    assert rc == 2 and "no direction library 'clitest'" in err


def test_discover_is_reproducible_from_the_seed(capsys, tmp_path):
    libs = []
    for i, seed in enumerate(("9", "9", "10")):
        out = tmp_path / f"r{i}.ssdir"
        rc, _, err = run(capsys, "discover", *MODEL, "--steps", "2", "--size", "32", "--directions", "2", "--seed", seed,
                         "--sensor", "generator", "--q", "6", "--name", f"rep{i}", "-o", str(out))
        assert rc == 0, err
        libs.append(DirectionLibrary.load(out))
    v = [np.stack([lib[n].vector for n in lib.names()]) for lib in libs]
    assert np.array_equal(v[0], v[1]) and not np.allclose(v[0], v[2])
    assert libs[0]["direction_1"].row_weights == libs[1]["direction_1"].row_weights


@pytest.mark.parametrize("method", ["pca", "sefa"])
def test_instant_baselines(capsys, method):
    rc, out, err = run(capsys, "discover", *MODEL, "--method", method, "--directions", "4", "--name", f"b_{method}")
    assert rc == 0, err
    assert "step" not in err  # nothing to train
    assert f"4 directions ({method})" in out


@pytest.mark.parametrize("argv, message", [
    (["--name", "attributes"], "taken by StyleStudio"),
    (["--name", "../evil"], "direction library"),
    (["--name", "x", "--steps", "2", "--minutes", "1"], "not allowed with"),
    (["--name", "x", "--directions", "0"], "--directions must be between 1 and 64"),
    (["--name", "x", "--method", "contrafeat-proto", "--sensor", "generator", "--steps", "1"], "needs an image sensor"),
    (["--name", "x", "--model", "no-such-model", "--steps", "1"], "no-such-model"),
])
def test_bad_discover_arguments_are_one_line(capsys, argv, message):
    rc, out, err = run(capsys, "discover", *argv)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_directions_errors_are_one_line(capsys):
    rc, _, err = run(capsys, "directions", "rename", "nolib", "a", "b", *MODEL)
    assert rc == 2 and "no direction library 'nolib'" in err
    assert run(capsys, "discover", *MODEL, "--method", "pca", "--directions", "2", "--name", "two")[0] == 0
    rc, _, err = run(capsys, "directions", "rename", "two", "direction_1", "direction 2", *MODEL)
    assert rc == 2 and "already has a direction 'direction_2'" in err
    rc, _, err = run(capsys, "directions", "rename", "two", "direction_1", "!!!", *MODEL)
    assert rc == 2 and "cannot name a direction" in err
    rc, _, err = run(capsys, "directions", "remove", "two", "nothing", *MODEL)
    assert rc == 2 and "no direction 'nothing'" in err


def test_discovery_replaces_only_a_discovered_library_and_says_so(capsys, tmp_path):
    """Discovering under a name that exists: a discovered library is replaced with a note said
    before the job; sliders of another kind (built from labelled faces, a user's) are refused."""
    from stylestudio.engine.directions.library import DirectionLibrary
    from test_kept_libraries import _user_directions

    built, found = _user_directions("mine_built"), _user_directions("mine_found", seed=6, kind="discovered")
    try:
        rc, out, err = run(capsys, "discover", *MODEL, "--method", "pca", "--directions", "2", "--name", "mine_built")
        assert rc == 2 and "'mine_built' is already a direction library of 2 attributes directions" in err
        assert "a discovery never replaces it: choose another name" in err
        assert DirectionLibrary.load(built).names() == ["bend", "twist"]
        rc, out, err = run(capsys, "discover", *MODEL, "--method", "pca", "--directions", "2", "--name", "mine_found")
        assert rc == 0 and out.startswith("note: replaces your discovered library 'mine_found' (2 directions: bend, "
                                          "twist);")
        assert DirectionLibrary.load(found).names() == ["direction_1", "direction_2"]
    finally:
        built.unlink(missing_ok=True)
        found.unlink(missing_ok=True)


def test_ctrl_c_finishes_the_discovery_early_and_twice_aborts(capsys, press_ctrl_c):
    """The first Ctrl+C is the panels' Finish now (the directions learnt so far are saved), a second
    one aborts and saves nothing; either way Ctrl+C is an abort again afterwards."""
    import signal

    from stylestudio.commands import discover
    from stylestudio.engine.discovery.store import user_path

    argv = ["discover", *MODEL, "--steps", "40", "--size", "32", "--directions", "2", "--seed", "4", "--sensor",
            "generator", "--q", "8"]
    pressed = press_ctrl_c(discover, "step 2/40")
    rc, out, err = run(capsys, *argv, "--name", "ctrlc_once")
    assert pressed and rc == 0, err
    assert "finishing the discovery after the current step" in err and "step 4/40" not in err
    assert "2 directions (contrafeat) (finished early)" in out
    lib = DirectionLibrary.load(out.strip().splitlines()[-1].split("→")[-1].strip())
    assert lib.meta["finished_early"] and lib.names() == ["direction_1", "direction_2"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    pressed = press_ctrl_c(discover, "step 2/40", times=2)
    rc, out, err = run(capsys, *argv, "--name", "ctrlc_twice")
    assert pressed and rc == 130 and "error: interrupted" in err and "directions" not in out
    assert not user_path(TINY, "ctrlc_twice").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_is_left_alone_where_it_is_ignored_or_under_torchrun(monkeypatch):
    """A job started in the background (SIGINT ignored) or one rank of several keeps Ctrl+C as it was."""
    import signal

    from stylestudio.commands.common import finish_on_ctrl_c

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with finish_on_ctrl_c() as finish:
            assert finish is None and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.signal(signal.SIGINT, signal.default_int_handler)
        monkeypatch.setenv("WORLD_SIZE", "2")
        with finish_on_ctrl_c() as finish:
            assert finish is None and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        monkeypatch.setenv("WORLD_SIZE", "1")
        with finish_on_ctrl_c() as finish:
            assert finish is not None and not finish()
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
