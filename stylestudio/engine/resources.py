"""Named per-model resources (direction libraries, region catalogs, encoders, text paths): the
registry of their loaders, the one name validator, and the per-model cache.

Its own module, below everything that loads or names a resource: renders, edits and the modules
that register loaders (``regions.catalog``, ``text.library``) all import it, and it imports none
of them (loaders that need a package import it when called), so no import cycle runs through it.
"""
from __future__ import annotations

import io
import unicodedata
import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import paths
from ..errors import InputError
from .document import KeptLibrary
from .generator import Generator

ResourceLoader = Callable[["Resources", str], Any]
#: reads a kept library's bytes into the library object (kind, name and the project's own name for errors)
KeptReader = Callable[["Resources", bytes, str], Any]
_LOADERS: dict[str, ResourceLoader] = {}
#: kind → the suffix of the file a resource of that kind is read from (``<name><suffix>``), for the
#: kinds whose cached resources are read again when their file changes (:meth:`Resources.get`)
_WATCHED: dict[str, str] = {}
_KEPT_READERS: dict[str, KeptReader] = {}
MAX_NAME_LENGTH = 100
MAX_KEPT_MEMBERS = 10_000  #: files inside one kept library (a direction library has one per direction)
MAX_KEPT_UNPACKED = 256 << 20  #: what one kept library may unpack to
MAX_FORMER = 8  #: earlier versions of one library a session remembers (:meth:`Resources.library`)


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


def register_resource_loader(kind: str, watch_suffix: str | None = None) -> Callable[[ResourceLoader], ResourceLoader]:
    """Register how to load resources of ``kind`` (``"directions"``, ``"catalog"``…) by name.
    ``watch_suffix``: they are read from ``<name><suffix>`` in the user data folder or the shipped
    resources, and a cached one is read again once either file changed."""

    def deco(fn: ResourceLoader) -> ResourceLoader:
        _LOADERS[kind] = fn
        if watch_suffix is not None:
            _WATCHED[kind] = watch_suffix
        return fn

    return deco


def register_kept_reader(kind: str) -> Callable[[KeptReader], KeptReader]:
    """Register how a project's copy of a ``kind`` library is read (:meth:`Resources.kept`)."""

    def deco(fn: KeptReader) -> KeptReader:
        _KEPT_READERS[kind] = fn
        return fn

    return deco


def check_archive(data: bytes, where: str) -> None:
    """A library copy from a project is someone else's file: its zip's declared sizes, count,
    encryption and methods are checked before anything in it is unpacked (zipfile never unpacks
    a member past its declared size, so this bounds what reading it costs)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise InputError(f"{where}: not a library file ({exc})") from None
    if len(infos) > MAX_KEPT_MEMBERS:
        raise InputError(f"{where}: holds {len(infos)} files; a library has a few dozen")
    if sum(i.file_size for i in infos) > MAX_KEPT_UNPACKED:
        raise InputError(f"{where}: would unpack to more than {MAX_KEPT_UNPACKED >> 20} MiB; refused")
    for i in infos:
        if i.flag_bits & 0x1 or i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InputError(f"{where}: member {i.filename} is encrypted or compressed in a way libraries never are")


class Resources:
    """Named, per-model resources, loaded once: user data folder first, then shipped ones."""

    def __init__(self, generator: Generator, model: str) -> None:
        self.generator = generator
        self.model = model
        self._cache: dict[tuple[str, str], Any] = {}
        #: slider libraries replaced or dropped in this session, oldest first: [library, its copy or None]
        self._former: dict[tuple[str, str], list[list[Any]]] = {}
        #: for a cached resource of a watched kind: its two possible files, and their state when it was read
        self._files: dict[tuple[str, str], tuple[tuple[Path, Path], tuple]] = {}

    def get(self, kind: str, name: str) -> Any:
        """Resource ``name`` of ``kind``, loaded once; a library of a watched kind is read again
        when its file changed since (the CLI, another window or another thread's session wrote
        it), the version drawn so far staying at hand (:meth:`library`)."""
        key = (kind, name)
        if key in self._cache and key in self._files:
            files, state = self._files[key]
            if _state(files) != state:
                self._remember(key, None)
                del self._cache[key], self._files[key]
        if key not in self._cache:
            check_resource_name(name, {"directions": "direction library"}.get(kind, kind))
            loader = _LOADERS.get(kind)
            if loader is None:
                raise InputError(f"no loader for resources of kind {kind!r}")
            watched = self._watch(kind, name)  # before reading: a change while it loads is seen next time
            self._cache[key] = loader(self, name)
            if watched is not None:
                self._files[key] = watched
        return self._cache[key]

    def _watch(self, kind: str, name: str) -> tuple[tuple[Path, Path], tuple] | None:
        """The user's and the shipped file resource ``name`` of ``kind`` is read from, and their state."""
        suffix = _WATCHED.get(kind)
        if suffix is None:
            return None
        files = (self._path(paths.data_home(), kind, f"{name}{suffix}"),
                 self._path(paths.resources_dir(), kind, f"{name}{suffix}"))
        return files, _state(files)

    def kept(self, copy: KeptLibrary) -> Any:
        """The library a project keeps a copy of, read (once per distinct copy) by its kind's reader."""
        key = ("kept:" + copy.kind, copy.digest)
        if key not in self._cache:
            where = f"the project's copy of {copy.kind} library {copy.name!r}"
            reader = _KEPT_READERS.get(copy.kind)
            if reader is None:
                raise InputError(f"{where}: StyleStudio keeps no libraries of kind {copy.kind!r}")
            check_archive(copy.data, where)
            self._cache[key] = reader(self, copy.data, where)
        return self._cache[key]

    def library(self, kind: str, name: str, entry: str, kept: Sequence[KeptLibrary] = ()) -> tuple[Any, KeptLibrary | None]:
        """The library ``name`` that draws ``entry``, and the project's copy it is (None: installed).

        A copy the project keeps that holds the entry comes first, so a project draws exactly as
        it was saved whatever is installed now (:mod:`.edits.kept`); then the installed library;
        then an earlier version of it that this session drew and that still holds the entry, as a
        copy (:meth:`_former_with`).
        """
        for copy in kept:
            if copy.kind == kind and copy.name == name:
                held = self.kept(copy)
                if entry in held:
                    return held, copy
        try:
            lib = self.get(kind, name)
        except InputError:
            former = self._former_with(kind, name, entry)
            if former is None:
                raise
            return former
        if entry not in lib:  # the library's own lookup says what is missing, unless an earlier version holds it
            return self._former_with(kind, name, entry) or (lib, None)
        return lib, None

    def _former_with(self, kind: str, name: str, entry: str) -> tuple[Any, KeptLibrary] | None:
        """The newest earlier version of library ``name`` this session drew that holds ``entry``, as
        a copy: removing or retraining a library while a picture uses it must not stop that picture
        from drawing, and its next save keeps the copy (:mod:`.edits.kept`)."""
        for held in reversed(self._former.get((kind, name), [])):
            lib, copy = held
            if entry not in lib:
                continue
            if copy is None:
                copy = held[1] = KeptLibrary(kind, name, lib.to_bytes())
                self._cache[("kept:" + kind, copy.digest)] = lib  # read as it is, never parsed again
            return lib, copy
        return None

    def cached(self, kind: str, name: str) -> Any:
        """What :meth:`put` stored under (kind, name), else None (nothing is loaded)."""
        return self._cache.get((kind, name))

    def put(self, kind: str, name: str, value: Any) -> None:
        """Make ``value`` resource ``name`` (a task just made and saved it: its file is as it is now)."""
        self._remember((kind, name), value)
        self._cache[(kind, name)] = value
        watched = self._watch(kind, name)
        if watched is not None:
            self._files[(kind, name)] = watched

    def forget(self, kind: str, name: str) -> None:
        """Drop a loaded resource (it is loaded again when next asked for)."""
        self._remember((kind, name), None)
        self._cache.pop((kind, name), None)
        self._files.pop((kind, name), None)

    def _remember(self, key: tuple[str, str], new: Any) -> None:
        """Keep the slider library ``key`` held before ``new`` replaces it (:meth:`_former_with`)."""
        old = self._cache.get(key)
        if old is None or old is new or key[0] not in _KEPT_READERS:
            return
        former = self._former.setdefault(key, [])
        former.append([old, None])
        del former[:-MAX_FORMER]

    def find_file(self, kind: str, filename: str) -> Path | None:
        """``<data>/<kind>/<model>/<filename>``, else ``resources/<kind>/<model>/<filename>``."""
        return self._file(paths.data_home(), kind, filename) or self.shipped_file(kind, filename)

    def shipped_file(self, kind: str, filename: str) -> Path | None:
        """``resources/<kind>/<model>/<filename>`` only: the read-only one a user's file may hide."""
        return self._file(paths.resources_dir(), kind, filename)

    def _file(self, root: Path, kind: str, filename: str) -> Path | None:
        p = self._path(root, kind, filename)
        return p if p.is_file() else None

    def _path(self, root: Path, kind: str, filename: str) -> Path:
        check_resource_name(filename, "resource file")
        check_resource_name(self.model, "model")
        return Path(root) / kind / self.model / filename


def _state(files: tuple[Path, ...]) -> tuple:
    """What tells a file was written since: size, time and inode (an atomic write replaces the inode)."""
    out = []
    for f in files:
        try:
            st = f.stat()
            out.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


@register_resource_loader("directions", watch_suffix=".ssdir")
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


@register_kept_reader("directions")
def _read_kept_directions(res: Resources, data: bytes, where: str):
    from .directions.library import DirectionLibrary

    lib = DirectionLibrary.from_bytes(data, where)
    if lib.model != res.model:
        raise InputError(f"{where}: sliders of model {lib.model!r}, not {res.model!r}")
    w_dim = res.generator.w_dim if res.generator is not None else None
    for d in lib.directions.values():  # the installed loader trusts the user's own files; this is a project's
        if d.vector.ndim != 1 or (w_dim is not None and d.vector.shape[0] != w_dim) or not np.isfinite(d.vector).all():
            raise InputError(f"{where}: direction {d.name!r} is not a finite {w_dim}-d vector")
    return lib


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
