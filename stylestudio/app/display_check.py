"""Can the editor start here? Answered BEFORE PySide6 is imported (this module never imports Qt).

Without a display, or without the X11 libraries Qt's xcb platform plugin links against, Qt prints
several lines and aborts the process (exit status 134). StyleStudio instead says in one line what
is missing and how to get it, and exits with status 2.

The library lists come from the installed PySide6 6.12 wheel (``objdump -p`` / ``ldd`` of
``Qt/plugins/platforms/libqxcb.so`` and ``Qt/lib/libQt6XcbQpa.so.6``); the package names are
Debian's and Ubuntu's (checked with ``dpkg -S`` on Debian 12).
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Callable, Mapping

#: Qt platforms that draw without a desktop display (Qt's headless and framebuffer plugins).
HEADLESS_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb",
                                "vkkhrdisplay", "directfb"})

#: Libraries Qt 6's xcb plugin needs (besides libc/libstdc++ and Qt's own), with the Debian/Ubuntu
#: package of each: the sonames ``libqxcb.so`` and ``libQt6XcbQpa.so.6`` list as NEEDED.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}

#: Libraries PySide6's QtCore/QtGui/QtWidgets load at import, with their Debian/Ubuntu packages.
QT_LIBRARIES: dict[str, str] = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libOpenGL.so.0": "libopengl0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libX11.so.6": "libx11-6",
    "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
    "libpng16.so.16": "libpng16-16",
    "libexpat.so.1": "libexpat1",
}

#: Every package the editor needs on Debian/Ubuntu beyond Python (for the README):
#: ``sudo apt-get install`` these and both the X11 (xcb) and the Wayland/headless paths work.
GUI_PACKAGES: tuple[str, ...] = tuple(dict.fromkeys(
    ["libegl1", "libgl1", "libopengl0", "libxkbcommon0", "libfontconfig1", "libfreetype6", "libdbus-1-3",
     "libglib2.0-0", *XCB_LIBRARIES.values()]))

NO_DISPLAY = ("no display: run StyleStudio in a desktop session (DISPLAY and WAYLAND_DISPLAY are both unset),"
              " or set QT_QPA_PLATFORM=offscreen for headless use")

SONAME_RE = re.compile(r"(lib[A-Za-z0-9_+.-]*?\.so(?:\.[0-9]+)*)")


def _platforms(env: Mapping[str, str]) -> list[str]:
    """Qt's platform choice from ``QT_QPA_PLATFORM`` (``"wayland;xcb"``, ``"xcb:option=1"``); [] if unset."""
    value = env.get("QT_QPA_PLATFORM", "").strip()
    return [p.split(":", 1)[0].strip().lower() for p in value.split(";") if p.strip()]


def _qt_lib_dir() -> Path | None:
    """PySide6's own library folder, found without importing PySide6 (its bundled libs are not missing)."""
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "Qt" / "lib"


def library_present(soname: str) -> bool:
    """Can the dynamic loader find ``soname``? (A try-load, as Qt itself would load it.)"""
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        pass
    qt_lib = _qt_lib_dir()
    return qt_lib is not None and (qt_lib / soname).exists()


def apt_hint(packages: list[str]) -> str:
    return "sudo apt-get install " + " ".join(dict.fromkeys(packages))


def diagnose(env: Mapping[str, str] | None = None, platform: str | None = None,
             present: Callable[[str], bool] = library_present) -> str | None:
    """Why the editor cannot start here, in one line (without ``error: ``); None if it should start.

    ``env``, ``platform`` and ``present`` (the library probe) are parameters so tests can fake them.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None  # Windows and macOS always have their native platform plugin
    chosen = _platforms(env)
    if any(p in HEADLESS_PLATFORMS for p in chosen):
        return None
    has_x = bool(env.get("DISPLAY", "").strip())
    has_wayland = bool(env.get("WAYLAND_DISPLAY", "").strip())
    if chosen and chosen[0] == "xcb":
        if not has_x:
            return ("no display: QT_QPA_PLATFORM=xcb but DISPLAY is unset; run StyleStudio in a desktop session,"
                    " or set QT_QPA_PLATFORM=offscreen for headless use")
        uses_xcb = True
    elif chosen:
        return None  # an explicit other platform (wayland, …): Qt knows where to look
    else:
        if not has_x and not has_wayland:
            return NO_DISPLAY
        uses_xcb = has_x and not has_wayland
    if uses_xcb:
        missing = [soname for soname in XCB_LIBRARIES if not present(soname)]
        if missing:
            return (f"the X11 display needs libraries that are not installed ({', '.join(missing)}); on Debian/Ubuntu: "
                    f"{apt_hint([XCB_LIBRARIES[s] for s in missing])}")
    return None


def import_error_message(exc: ImportError) -> str:
    """One line for a failed ``import PySide6…``: which package provides the missing library."""
    text = str(exc)
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "PySide6":
        return ("the editor needs PySide6, which is not installed: pip install PySide6-Essentials"
                " (the command-line tools work without it: stylestudio --help)")
    match = SONAME_RE.search(text)
    if match:
        soname = match.group(1)
        package = QT_LIBRARIES.get(soname) or XCB_LIBRARIES.get(soname)
        if package:
            return (f"the editor cannot start: the system library {soname} is missing; on Debian/Ubuntu: "
                    f"{apt_hint([package])}")
        return (f"the editor cannot start: the system library {soname} is missing; install the package that "
                f"provides it (Debian/Ubuntu: apt-file search {soname})")
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"the editor cannot start: PySide6 failed to load ({first})"


def is_library_error(exc: ImportError) -> bool:
    """Is this a missing PySide6 or a missing system library (not a bug in StyleStudio's own imports)?"""
    if isinstance(exc, ModuleNotFoundError):
        return (exc.name or "").split(".")[0] == "PySide6"
    return bool(SONAME_RE.search(str(exc))) or "PySide6" in str(exc) or "shiboken" in str(exc).lower()
