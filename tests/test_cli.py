"""The CLI contract: model import/list, generate, render, one-line errors on bad input."""
from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylestudio.cli import main
from stylestudio.engine.document import seed_to_z

TINY = "stylegan2_tiny/network-snapshot.pkl"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def tiny_model(oracle_dir: Path) -> str:
    """The oracle's tiny NVlabs snapshot imported as model "tiny" (once per module)."""
    rc = main(["models", "import", str(oracle_dir / TINY), "--name", "tiny"])
    assert rc == 0
    return "tiny"


def test_seed_convention_is_numpy_randomstate() -> None:
    z = seed_to_z(42, 4).numpy()
    assert np.allclose(z[0], [0.49671415, -0.1382643, 0.64768854, 1.52302986])


def test_help_lists_the_commands(capsys) -> None:
    assert main(["--help"]) == 0  # main returns argparse's exit status instead of raising it
    assert "generate" in capsys.readouterr().out


def test_every_command_has_help(capsys) -> None:
    """``--help`` of every command and sub-command prints (a stray ``%`` in a help text breaks argparse)."""
    import argparse

    from stylestudio.cli import build_parser

    def walk(parser: argparse.ArgumentParser, path: list[str]):
        yield path
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, path + [name])

    paths = list(walk(build_parser(), []))
    assert ["invert"] in paths and len(paths) > 20
    for path in paths:
        assert main(path + ["--help"]) == 0, path
        assert "usage" in capsys.readouterr().out, path


def test_bad_argument_is_one_line_and_returns_2(capsys) -> None:
    assert main(["generate", "--seed", "1", "--psi", "5", "-o", "x.png"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--psi" in err[0] and "usage" not in err[0]


def test_import_list_and_generate_is_deterministic(capsys, tiny_model: str, tmp_path: Path) -> None:
    rc, out, _ = run(capsys, "models", "list")
    assert rc == 0 and "tiny" in out and "stylegan2" in out
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run(capsys, "generate", "--model", tiny_model, "--seed", "5", "-o", str(a))[0] == 0
    assert run(capsys, "generate", "--model", tiny_model, "--seed", "5", "-o", str(b))[0] == 0
    pa, pb = np.asarray(Image.open(a)), np.asarray(Image.open(b))
    assert pa.shape == (32, 32, 3) and np.array_equal(pa, pb)
    c = tmp_path / "c.png"
    run(capsys, "generate", "--model", tiny_model, "--seed", "6", "--size", "64", "-o", str(c))
    pc = np.asarray(Image.open(c))
    assert pc.shape == (64, 64, 3)
    assert np.abs(np.asarray(Image.open(c).resize((32, 32))).astype(int) - pa).mean() > 5  # another face


def test_render_npy_matches_oracle_unclamped(capsys, tiny_model: str, oracle_dir: Path, tmp_path: Path) -> None:
    golden = np.load(oracle_dir / "stylegan2_tiny/golden.npz")
    np.save(tmp_path / "z.npy", golden["z"])
    out = tmp_path / "img.npy"
    rc, _, err = run(capsys, "render", "--model", tiny_model, "--z", str(tmp_path / "z.npy"), "--psi", "0.7",
                     "--noise", "const", "-o", str(out))
    assert rc == 0, err
    img = np.load(out)
    assert img.dtype == np.float32 and img.shape == golden["img_const_psi07"].shape
    assert np.abs(img - golden["img_const_psi07"]).max() < 1e-4
    np.save(tmp_path / "wp.npy", golden["wplus"])
    rc, _, _ = run(capsys, "render", "--model", tiny_model, "--wplus", str(tmp_path / "wp.npy"), "-o", str(out))
    assert rc == 0 and np.abs(np.load(out) - golden["img_const_wplus"]).max() < 1e-4


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["generate", "--model", "no-such-model", "--seed", "1", "-o", "{tmp}/x.png"], "no model named"),
        (["render", "--model", "tiny", "--w", "{tmp}/missing.npy", "-o", "{tmp}/x.npy"], "no such file"),
        (["render", "--model", "tiny", "--w", "{tmp}/bad_shape.npy", "-o", "{tmp}/x.npy"], "shape"),
        (["render", "--model", "tiny", "--wplus", "{tmp}/not_npy.npy", "-o", "{tmp}/x.npy"], "not a readable"),
        (["generate", "--model", "tiny", "--seed", "1", "-o", "{tmp}/x.bmpx"], "unsupported image type"),
        (["models", "import", "{tmp}/garbage.pkl"], "not a recognised checkpoint"),
        (["models", "import", "{tmp}/truncated.pkl"],
         "truncated.pkl: not a readable NVlabs snapshot, the file is truncated"),
        (["models", "import", "{tmp}/missing.pkl"], "no such file"),
        (["render-project", "{tmp}/missing.stylestudio", "-o", "{tmp}/x.png"], "no such project file"),
        (["render-project", "{tmp}/not_npy.npy", "-o", "{tmp}/x.png"], "damaged"),
    ],
)
def test_bad_input_is_one_line(capsys, tiny_model: str, oracle_dir: Path, tmp_path: Path, argv, needle) -> None:
    np.save(tmp_path / "bad_shape.npy", np.zeros((2, 7), np.float32))
    (tmp_path / "not_npy.npy").write_bytes(b"this is not numpy")
    (tmp_path / "garbage.pkl").write_bytes(b"GARBAGE" * 10)
    data = (oracle_dir / TINY).read_bytes()
    (tmp_path / "truncated.pkl").write_bytes(data[: len(data) // 3])
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert needle, "an empty needle is in every message: each case must say what it expects"
    rc, _, err = run(capsys, *argv)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    assert needle in lines[0]


def test_hostile_pickle_import_runs_nothing(capsys, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(marker)],))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil()}))
    rc, _, err = run(capsys, "models", "import", str(path))
    assert rc == 2 and err.startswith("error: ")
    assert not marker.exists()


def test_console_script_runs(tmp_path: Path) -> None:
    exe = shutil.which("stylestudio")
    cmd = [exe] if exe else [sys.executable, "-m", "stylestudio.cli"]
    res = subprocess.run(cmd + ["models", "list"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


# ---------------------------------------------------------------------------------------------
# `stylestudio edit`: the editor's attribute names, and its Keep others / pins

def _write_attributes(model: str, w_dim: int) -> dict[str, str]:
    """A small ``attributes`` library for ``model`` in the private data folder; name → label."""
    from stylestudio import paths
    from stylestudio.engine.directions.library import Direction, DirectionLibrary

    labels = {"age": "Age", "smile": "Smile", "yaw": "Head yaw", "eyes_open": "Eyes open"}
    rng = np.random.default_rng(0)
    dirs = []
    for name, label in labels.items():
        v = rng.standard_normal(w_dim).astype(np.float32)
        dirs.append(Direction(name, label, v / np.linalg.norm(v), (), 0.5, {}))
    folder = paths.data_home() / "directions" / model
    folder.mkdir(parents=True, exist_ok=True)
    DirectionLibrary(model, dirs).save(folder / "attributes.ssdir")
    return labels


def test_edit_takes_the_editors_labels_and_its_keep_rule(capsys, tmp_path: Path) -> None:
    from stylestudio.engine.document import AttributeSettings
    from stylestudio.engine.project import load_project

    from test_gui_support import TINY as TINY_MODEL, ensure_test_model

    _write_attributes(TINY_MODEL, ensure_test_model(TINY_MODEL).w_dim)

    def edit(name: str, *argv: str):
        project = tmp_path / f"{name}.stylestudio"
        rc, _, err = run(capsys, "edit", "--model", TINY_MODEL, *argv, "-o", str(tmp_path / f"{name}.png"),
                         "--save-project", str(project))
        assert rc == 0, err
        return load_project(project)

    by_label = edit("labels", "--source", "seed:3", "--set", "Head yaw=1", "--set", "Eyes open=-0.5",
                    "--keep", "Smile")
    by_name = edit("names", "--source", "seed:3", "--set", "yaw=1", "--set", "eyes_open=-0.5", "--keep", "smile")
    as_typed = edit("typed", "--source", "seed:3", "--set", "head_yaw=1", "--set", "EYES-OPEN=-0.5",
                    "--keep", "SMILE")
    for doc in (by_label, by_name, as_typed):
        assert [(e.name, e.amount, e.keep) for e in doc.edits] == [("yaw", 1.0, ("smile",)),
                                                                   ("eyes_open", -0.5, ("smile",))]
        # --keep a list = Keep others off with those pinned, saved for the editor to show
        assert doc.attributes == AttributeSettings(keep_others=False, pins=("smile",))
    # a project's own switches apply when --keep is not given; a new face keeps all others
    again = edit("again", "--source", str(tmp_path / "labels.stylestudio"), "--set", "Age=2")
    assert again.edits[-1].keep == ("smile",) and again.attributes == by_label.attributes
    fresh = edit("fresh", "--source", "seed:4", "--set", "Age=2")
    assert fresh.edits[0].keep == ("smile", "yaw", "eyes_open") and fresh.attributes == AttributeSettings()
    rc, _, err = run(capsys, "edit", "--model", TINY_MODEL, "--source", "seed:3", "--set", "beard=1",
                     "-o", str(tmp_path / "x.png"))
    assert rc == 2 and err.strip().splitlines() == [
        "error: no slider 'beard' (have: age, smile, yaw (Head yaw), eyes_open)"]
