"""Keeping direction libraries in the user data folder: list, rename a direction, remove.

A change to a shipped library is saved as the user's copy (which then takes precedence, as for
every resource); a shipped library itself is never deleted.
"""
from __future__ import annotations

from pathlib import Path

from ... import paths
from ...errors import InputError
from .. import renames
from ..directions.library import DirectionLibrary, check_library_name

SUFFIX = ".ssdir"
MAX_NAME = renames.MAX_KEY


def library_paths(model: str) -> dict[str, Path]:
    """Every direction library file of ``model``: name → path (the user's copy wins)."""
    from ..resources import check_resource_name

    check_resource_name(model, "model")
    out: dict[str, Path] = {}
    for root in (paths.resources_dir(), paths.data_home()):  # user data last: it overrides
        folder = Path(root) / "directions" / model
        if folder.is_dir():
            for p in sorted(folder.glob(f"*{SUFFIX}")):
                if p.is_file():
                    out[p.stem] = p
    return dict(sorted(out.items()))


def user_path(model: str, library: str) -> Path:
    from ..directions.builder import user_library_path

    return user_library_path(model, check_library_name(library))


def find_library(model: str, library: str) -> tuple[Path, DirectionLibrary]:
    path = library_paths(model).get(check_library_name(library))
    if path is None:
        raise InputError(f"no direction library {library!r} for model {model!r}")
    return path, DirectionLibrary.load(path)


def direction_key(text: str) -> str:
    """A direction's name from what a person typed: 'Hair volume' → 'hair_volume'."""
    return renames.slider_key(text, "direction")


def resolve(lib: DirectionLibrary, text: str) -> str:
    """The name of the direction called ``text`` (its name or label, case and spacing ignored)."""
    if text in lib:
        return lib.canonical(text)
    for name, d in lib.directions.items():
        if direction_key(text) in (direction_key(name), direction_key(d.label)):
            return name
    raise InputError(f"no direction {text!r} (have: {', '.join(lib.names())})")


def replaced_by_discovery(model: str, name: str) -> DirectionLibrary | None:
    """The discovered library a discovery saved as ``name`` would replace (None: the name is free).

    A library of another kind under that name (sliders built from labelled faces, a user's own) is
    never replaced: that is refused here, in one line, before any training."""
    path = library_paths(model).get(check_library_name(name))
    if path is None:
        return None
    try:
        lib = DirectionLibrary.load(path)
    except InputError:
        return None  # a damaged file holds nothing a replacement could lose
    if lib.kind != "discovered":
        raise InputError(f"{name!r} is already a direction library of {len(lib.names())} {lib.kind} directions "
                         f"({path}); a discovery never replaces it: choose another name")
    return lib


def rename_direction(model: str, library: str, old: str, new: str) -> tuple[Path, str]:
    """Rename direction ``old`` to ``new`` (label as typed, name its lower-case key); the library is
    saved in the user data folder. Returns (path, new name)."""
    _, lib = find_library(model, library)
    name = resolve(lib, old)
    key = direction_key(new)
    if lib.canonical(key) != name and key in lib:  # a name taken, now or once (projects use it)
        raise InputError(f"library {library!r} already has a direction {key!r}")
    lib.rename(name, key, " ".join(str(new).split())[:MAX_NAME])
    path = user_path(model, library)
    lib.save(path)
    return path, key


def remove_direction(model: str, library: str, name: str) -> Path:
    """Remove one direction (the library is saved in the user data folder)."""
    _, lib = find_library(model, library)
    lib.remove(resolve(lib, name))
    path = user_path(model, library)
    lib.save(path)
    return path


def remove_library(model: str, library: str) -> Path:
    """Delete the user's library file; a shipped library cannot be deleted."""
    path = user_path(model, library)
    if not path.is_file():
        if check_library_name(library) in library_paths(model):
            raise InputError(f"direction library {library!r} ships with StyleStudio and cannot be removed")
        raise InputError(f"no direction library {library!r} for model {model!r}")
    path.unlink()
    return path
