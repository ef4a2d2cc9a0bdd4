"""Named per-model resources (direction libraries, region catalogs, encoders, text paths): the
registry of their loaders, the one name validator, and the per-model cache.

Its own module, below everything that loads or names a resource: renders, edits and the modules
that register loaders (``regions.catalog``, ``text.library``) all import it, and it imports none
of them (loaders that need a package import it when called), so no import cycle runs through it.
"""
from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any, Callable

from .. import paths
from ..errors import InputError
from .generator import Generator

ResourceLoader = Callable[["Resources", str], Any]
_LOADERS: dict[str, ResourceLoader] = {}
MAX_NAME_LENGTH = 100


def check_resource_name(name: Any, what: str = "resource", where: str = "") -> str:
    """``name`` if it can name a resource file (a direction library, a region catalog, an encoder).

    Names become file names under ``<data>/<kind>/<model>/``, and they may come from a project
    file, so anything that could leave that folder or hide a file (a path separator, a leading
    dot, a control character) is refused. The one validator for every kind of resource name.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(name, str):
        raise InputError(f"{prefix}invalid {what} name {str(name)[:40]!r}: expected text")
    if (not name or len(name) > MAX_NAME_LENGTH or name.startswith(".") or name != name.strip()
            or any(ch in "/\\:" or unicodedata.category(ch)[0] == "C" for ch in name)):
        raise InputError(f"{prefix}invalid {what} name {name[:MAX_NAME_LENGTH]!r}: use at most "
                         f"{MAX_NAME_LENGTH} characters, no path separators, no leading dot")
    return name


def register_resource_loader(kind: str) -> Callable[[ResourceLoader], ResourceLoader]:
    """Register how to load resources of ``kind`` (``"directions"``, ``"catalog"``…) by name."""

    def deco(fn: ResourceLoader) -> ResourceLoader:
        _LOADERS[kind] = fn
        return fn

    return deco


class Resources:
    """Named, per-model resources, loaded once: user data folder first, then shipped ones."""

    def __init__(self, generator: Generator, model: str) -> None:
        self.generator = generator
        self.model = model
        self._cache: dict[tuple[str, str], Any] = {}

    def get(self, kind: str, name: str) -> Any:
        key = (kind, name)
        if key not in self._cache:
            check_resource_name(name, {"directions": "direction library"}.get(kind, kind))
            loader = _LOADERS.get(kind)
            if loader is None:
                raise InputError(f"no loader for resources of kind {kind!r}")
            self._cache[key] = loader(self, name)
        return self._cache[key]

    def put(self, kind: str, name: str, value: Any) -> None:
        self._cache[(kind, name)] = value

    def forget(self, kind: str, name: str) -> None:
        """Drop a loaded resource (it is loaded again when next asked for)."""
        self._cache.pop((kind, name), None)

    def find_file(self, kind: str, filename: str) -> Path | None:
        """``<data>/<kind>/<model>/<filename>``, else ``resources/<kind>/<model>/<filename>``."""
        return self._file(paths.data_home(), kind, filename) or self.shipped_file(kind, filename)

    def shipped_file(self, kind: str, filename: str) -> Path | None:
        """``resources/<kind>/<model>/<filename>`` only: the read-only one a user's file may hide."""
        return self._file(paths.resources_dir(), kind, filename)

    def _file(self, root: Path, kind: str, filename: str) -> Path | None:
        check_resource_name(filename, "resource file")
        check_resource_name(self.model, "model")
        p = Path(root) / kind / self.model / filename
        return p if p.is_file() else None


@register_resource_loader("directions")
def _load_directions(res: Resources, name: str):
    from .directions.library import DirectionLibrary, check_library_name
    from .directions.sefa import sefa_library

    check_library_name(name)
    if name == "sefa":
        return sefa_library(res.generator, res.model)
    path = res.find_file("directions", f"{name}.ssdir")
    if path is None:
        raise InputError(f"no direction library {name!r} for model {res.model!r}")
    return DirectionLibrary.load(path)


@register_resource_loader("encoder")
def _load_encoder(res: Resources, name: str):
    """The photo-inversion encoder trained for this model (scripts/train_encoder.py)."""
    from .inversion.encoder import FeatureEncoder

    path = res.find_file("encoder", f"{name}.json")
    if path is None:
        raise InputError(f"no encoder {name!r} for model {res.model!r}")
    enc = FeatureEncoder.load(path)
    if enc.model != res.model or enc.w_dim != res.generator.w_dim:
        raise InputError(f"{path}: an encoder for {enc.model!r} ({enc.w_dim}-d W), not for {res.model!r} "
                         f"({res.generator.w_dim}-d W)")
    return enc
