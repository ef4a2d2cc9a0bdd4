"""Renaming and removing text paths, and removing text path libraries, in the user data folder.

As for direction libraries (:mod:`..discovery.store`), a shipped library is read-only: renaming or
removing one of its paths saves the user's copy (which then hides the shipped one), and the
shipped library itself is never deleted. A renamed path keeps its earlier name (:mod:`..renames`),
so projects that named it still find it. Deleting the user's library of a shipped name brings the shipped
one back.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import InputError
from .. import renames
from .library import TextPathLibrary, check_path_name, find_library, library_file, shipped_library


def _find(model: str, library: str) -> tuple[Path, TextPathLibrary]:
    path = find_library(model, library)
    if path is None:
        raise InputError(f"no text path library {library!r} for model {model!r}")
    return path, TextPathLibrary.load(path)


def replaced_by_training(model: str, library: str) -> tuple[TextPathLibrary | None, Path | None]:
    """What a training saved as ``library`` replaces or hides: the user's library of that name (None
    when there is none, or it is too damaged to hold anything), and a shipped library of that name
    (which the user's then hides)."""
    mine, lib = library_file(model, library), None
    if mine.is_file():
        try:
            lib = TextPathLibrary.load(mine)
        except InputError:
            pass
    return lib, shipped_library(model, library)


def path_name(lib: TextPathLibrary, text: str) -> str:
    """The path called ``text``: its name, or its label, case and spacing ignored."""
    if text in lib:
        return lib.paths[lib.index(text)].name
    key = renames.normal(text)
    for p in lib.paths:
        if key and key in (p.name, renames.normal(p.label)):
            return p.name
    raise InputError(f"no text path {text!r} (have: {', '.join(lib.names())})")


def remove_path(model: str, library: str, name: str) -> tuple[Path, TextPathLibrary]:
    """Remove path ``name`` (its name or label); the library is saved in the user data folder.
    Returns where, and the library as saved."""
    _, lib = _find(model, library)
    gone = path_name(lib, name)
    if len(lib.paths) == 1:
        raise InputError(f"{gone!r} is the only path of text path library {library!r}: remove the library instead")
    rest = lib.subset([n for n in lib.names() if n != gone])
    renames.forget(rest.meta, gone)
    runs = rest.meta.get("runs")
    if isinstance(runs, list):  # a library joined from several trainings: each names the paths it made
        kept = [{**r, "paths": [p for p in r.get("paths") or [] if p != gone]} for r in runs if isinstance(r, dict)]
        rest.meta["runs"] = [r for r in kept if r["paths"]]
    return rest.save(library_file(model, library)), rest


def rename_path(model: str, library: str, old: str, new: str) -> tuple[Path, str]:
    """Rename path ``old`` (its name or label) to ``new`` as typed ("Big smile" → ``big_smile``); the
    library is saved in the user data folder. Returns where, and the new name."""
    where, lib = _find(model, library)
    name = path_name(lib, old)
    key = renames.slider_key(new, "text path")
    if key == name:
        return where, key  # nothing to rename (and a shipped library is not copied for nothing)
    lib.rename(name, check_path_name(key))
    return lib.save(library_file(model, library)), key


def remove_library(model: str, library: str) -> tuple[Path, bool]:
    """Delete the user's library ``library``; returns its path and whether a shipped library of
    that name is used again. A shipped library cannot be deleted."""
    path = library_file(model, library)
    shipped = shipped_library(model, library)
    if not path.is_file():
        if shipped is not None:
            raise InputError(f"text path library {library!r} ships with StyleStudio and cannot be removed")
        raise InputError(f"no text path library {library!r} for model {model!r}")
    path.unlink()
    return path, shipped is not None
