"""Starting the editor where it cannot run: one ``error:`` line and exit 2, never Qt's abort (134)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stylestudio.app import display_check as dc

REPO = Path(__file__).resolve().parents[1]


def all_present(_soname: str) -> bool:
    return True


def missing(*sonames: str):
    return lambda s: s not in sonames


@pytest.mark.parametrize("env", [
    {},
    {"DISPLAY": "", "WAYLAND_DISPLAY": " "},
    {"QT_QPA_PLATFORM": ""},
    {"QT_QPA_PLATFORM": "xcb"},
])
def test_no_display_is_one_line(env):
    msg = dc.diagnose(env, "linux", all_present)
    assert msg and msg.startswith("no display:") and "\n" not in msg
    assert "desktop session" in msg and "QT_QPA_PLATFORM=offscreen" in msg


@pytest.mark.parametrize("platform", ["offscreen", "minimal", "vnc", "eglfs", "linuxfb", "offscreen:size=10x10",
                                      "wayland;offscreen"])
def test_headless_platforms_need_no_display(platform):
    assert dc.diagnose({"QT_QPA_PLATFORM": platform}, "linux", missing(*dc.XCB_LIBRARIES)) is None


def test_other_systems_are_not_checked():
    assert dc.diagnose({}, "win32", all_present) is None
    assert dc.diagnose({}, "darwin", all_present) is None


def test_x11_with_every_library_starts():
    assert dc.diagnose({"DISPLAY": ":0"}, "linux", all_present) is None


def test_missing_xcb_libraries_name_the_packages():
    msg = dc.diagnose({"DISPLAY": ":0"}, "linux", missing("libxcb-cursor.so.0", "libxcb-icccm.so.4"))
    assert msg and "\n" not in msg
    assert msg.endswith("sudo apt-get install libxcb-cursor0 libxcb-icccm4")
    assert "libxcb-cursor.so.0" in msg


def test_explicit_xcb_checks_libraries_even_on_wayland():
    env = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"}
    assert "libxcb-keysyms1" in dc.diagnose(env, "linux", missing("libxcb-keysyms.so.1"))


def test_wayland_does_not_need_xcb_libraries():
    probe = missing(*dc.XCB_LIBRARIES)
    assert dc.diagnose({"WAYLAND_DISPLAY": "wayland-0"}, "linux", probe) is None
    assert dc.diagnose({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "linux", probe) is None
    assert dc.diagnose({"QT_QPA_PLATFORM": "wayland"}, "linux", probe) is None


def test_package_lists_cover_what_qt_needs():
    assert {"libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-render-util0",
            "libxkbcommon-x11-0"} <= set(dc.XCB_LIBRARIES.values())
    assert {"libegl1", "libgl1", "libxkbcommon0", "libfontconfig1", "libdbus-1-3", "libglib2.0-0"} <= set(
        dc.GUI_PACKAGES)
    assert len(dc.GUI_PACKAGES) == len(set(dc.GUI_PACKAGES))


def test_real_probe_finds_libc_and_not_nonsense():
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux sonames")
    assert dc.library_present("libc.so.6")
    assert not dc.library_present("libstylestudio-no-such-thing.so.7")


@pytest.mark.parametrize("exc, expect", [
    (ImportError("libEGL.so.1: cannot open shared object file: No such file or directory"),
     "sudo apt-get install libegl1"),
    (ImportError("libGL.so.1: cannot open shared object file: No such file or directory"), "install libgl1"),
    (ImportError("libxkbcommon.so.0: cannot open shared object file"), "install libxkbcommon0"),
    (ImportError("libfontconfig.so.1: cannot open shared object file"), "install libfontconfig1"),
    (ImportError("libdbus-1.so.3: cannot open shared object file"), "install libdbus-1-3"),
    (ImportError("libglib-2.0.so.0: cannot open shared object file"), "install libglib2.0-0"),
    (ImportError("libweird.so.3: cannot open shared object file"), "apt-file search libweird.so.3"),
    (ModuleNotFoundError("No module named 'PySide6'", name="PySide6"), "pip install PySide6"),
])
def test_import_errors_name_the_package(exc, expect):
    assert dc.is_library_error(exc)
    msg = dc.import_error_message(exc)
    assert expect in msg and "\n" not in msg


def test_own_import_bugs_are_not_blamed_on_the_system():
    assert not dc.is_library_error(ModuleNotFoundError("No module named 'stylestudio.app.nope'",
                                                       name="stylestudio.app.nope"))


def test_launch_without_pyside_libraries_exits_2(monkeypatch, capsys):
    """PySide6 failing to import (a missing libEGL) is one line and exit 2, not the help and exit 0."""
    import builtins

    from stylestudio import cli

    monkeypatch.setattr(cli, "gui_cannot_start", lambda: None)
    monkeypatch.delitem(sys.modules, "stylestudio.app.main", raising=False)
    real_import = builtins.__import__

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name.startswith("PySide6"):
            raise ImportError("libEGL.so.1: cannot open shared object file: No such file or directory")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    rc = cli.main([])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["error: the editor cannot start: the system library libEGL.so.1 is missing; "
                                "on Debian/Ubuntu: sudo apt-get install libegl1"]


def _run_cli(env_changes: dict[str, str | None], timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    code = "import sys; from stylestudio.cli import main; sys.exit(main([]))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is for Linux")
def test_no_display_subprocess_exits_2_without_abort():
    proc = _run_cli({"DISPLAY": None, "WAYLAND_DISPLAY": None, "QT_QPA_PLATFORM": ""})
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no display:"), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_an_unusable_data_folder_is_one_line_before_the_editor_starts(tmp_path):
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("a file where the data folder should be")
    proc = _run_cli({"STYLESTUDIO_HOME": str(not_a_folder), "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(not_a_folder) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
