"""The edit document: the single source of truth for one picture.

A document says how the face was obtained (its *source*), the ordered list of *edits*, and the
export settings. Documents are immutable values: the GUI's undo stack moves between them, a
project file is a serialised document, and rendering is a pure function of one
(:mod:`stylestudio.engine.render`).

Sources and edits are small frozen dataclasses registered by ``kind``. Large data (latents,
masks, photos) lives in numpy arrays which serialise beside the JSON; each object writes its
arrays under keys it chooses, prefixed by its position so nothing collides.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Mapping, Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .limits import MAX_LATENT_ABS, MAX_SIZE, MIN_SIZE, PSI_MAX, PSI_MIN, SEED_MAX

DOCUMENT_VERSION = 1
#: Truncation ψ accepted everywhere (CLI, GUI, projects): the bounds of :mod:`.limits`.
PSI_RANGE = (PSI_MIN, PSI_MAX)
MAX_SEED = SEED_MAX + 1
MAX_TEXT = 1000  #: characters of a title, a name or an id
MAX_EDITS = 1000
MAX_NAMES = 64  #: entries of a list of names (regions, kept attributes)
MAX_KEPT_LIBRARIES = 64  #: library copies one project keeps (one per library its sliders use)
MAX_KEPT_BYTES = 64 << 20  #: bytes of one kept library (the shipped text paths are 0.6 MB)

Arrays = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------
# decoding: every value read from a project is checked for type and range, and a bad one is
# refused with the path of the field (``edits[2].amount: expected a finite number, got 'abc'``)


def show(value: Any) -> str:
    """A short repr of a value for an error message."""
    r = repr(value)
    return r if len(r) <= 40 else r[:37] + "..."


def at(where: str, name: str) -> str:
    """The path of field ``name`` inside ``where`` (``edits[2]`` + ``amount``)."""
    return f"{where}.{name}" if where else name


def field_error(where: str, what: str) -> InputError:
    return InputError(f"{where}: {what}" if where else what)


def as_number(value: Any, where: str, lo: float | None = None, hi: float | None = None) -> float:
    """A finite float within [lo, hi] (booleans and text are refused, not converted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise field_error(where, f"expected a finite number, got {show(value)}")
    try:
        f = float(value)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise field_error(where, f"expected a finite number, got {show(value)}")
    if (lo is not None and f < lo) or (hi is not None and f > hi):
        raise field_error(where, f"must be between {lo:g} and {hi:g}, got {f:g}")
    return f


def as_int(value: Any, where: str, lo: int, hi: int) -> int:
    """A whole number within [lo, hi] (a float such as 3.0 is accepted, 3.5 is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise field_error(where, f"expected a whole number, got {show(value)}")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or not float(value).is_integer():
            raise field_error(where, f"expected a whole number, got {show(value)}")
    i = int(value)
    if not lo <= i <= hi:
        raise field_error(where, f"must be between {lo} and {hi}, got {show(i)}")
    return i


def as_bool(value: Any, where: str) -> bool:
    """Strictly ``true`` or ``false``: the text "false" is not quietly read as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise field_error(where, f"expected true or false, got {show(value)}")
    return bool(value)


def as_text(value: Any, where: str, max_len: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise field_error(where, f"expected text, got {show(value)}")
    if len(value) > max_len:
        raise field_error(where, f"text longer than {max_len} characters")
    return value


_VERSION = re.compile(r"^[0-9a-f]{0,64}$")


def as_version(value: Any, where: str) -> str:
    """A library entry's version stamp (:mod:`stylestudio.engine.edits.versions`): empty or hex digits."""
    if not isinstance(value, str) or not _VERSION.match(value):
        raise field_error(where, "expected a library version (up to 64 hex digits)")
    return value


def as_names(value: Any, where: str) -> tuple[str, ...]:
    """A list of names (or one name) as a tuple of strings."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise field_error(where, f"expected a list of names, got {show(value)}")
    if len(value) > MAX_NAMES:
        raise field_error(where, f"more than {MAX_NAMES} names")
    return tuple(as_text(v, f"{where}[{i}]", 200) for i, v in enumerate(value))


def as_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise field_error(where, f"expected an object {{…}}, got {show(value)}")
    return value


def as_choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise field_error(where, f"must be one of {', '.join(choices)}, got {show(value)}")
    return value


def optional(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """``check`` that lets ``null`` through as None."""
    return lambda value, where: None if value is None else check(value, where)


def is_frozen(arr: np.ndarray) -> bool:
    """Is ``arr`` a view of immutable bytes (so that nothing can ever write to it)?"""
    if arr.flags.writeable:
        return False
    base: Any = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, bytes)


def frozen_array(value: Any) -> np.ndarray:
    """``value`` as an array over its own immutable bytes.

    ``setflags(write=False)`` alone is a request: whoever holds the array (or its base) may switch
    writing back on and change a document, and with it the digests cached from it. An array over
    a ``bytes`` object can never be made writable, so a document's arrays are values for good.
    """
    arr = np.asarray(value)
    if is_frozen(arr):
        return arr
    arr = np.ascontiguousarray(arr)
    return np.frombuffer(arr.tobytes(), dtype=arr.dtype).reshape(arr.shape)


class FrozenArrays(Mapping):
    """A read-only name → frozen array mapping (a document's dict of arrays, e.g. PTI deltas);
    unlike ``MappingProxyType`` it pickles, so a document can go to a worker process."""

    def __init__(self, arrays: Mapping[str, Any]) -> None:
        self._arrays = {str(k): frozen_array(v) for k, v in arrays.items()}

    def __getitem__(self, key: str) -> np.ndarray:
        return self._arrays[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        return f"FrozenArrays({sorted(self._arrays)})"


def as_array(value: Any, where: str, finite: bool = True) -> np.ndarray:
    """A numeric array, copied and made immutable (a document is a value: nobody may change it)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf" or arr.dtype.fields is not None:
        raise field_error(where, f"expected a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    if finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise field_error(where, "holds NaN or infinite values")
    return frozen_array(arr)


def check_latent(arr: np.ndarray, where: str) -> np.ndarray:
    """A latent's values: finite and within ±MAX_LATENT_ABS (beyond, the generator overflows to NaN)."""
    if arr.size and not (np.isfinite(arr).all() and float(np.abs(arr).max()) <= MAX_LATENT_ABS):
        raise field_error(where, f"holds NaN, infinite or absurd values (a latent lies within ±{MAX_LATENT_ABS:g})")
    return arr


class _Prefixed(Mapping):
    """The arrays under ``prefix`` with the prefix removed; reads nothing until an array is asked for
    (a project's arrays load lazily, so only those the document refers to are ever read)."""

    def __init__(self, base: Mapping[str, np.ndarray], prefix: str) -> None:
        self._base, self._prefix = base, prefix

    def __getitem__(self, key: str) -> np.ndarray:
        return self._base[self._prefix + key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (self._prefix + key) in self._base

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return (k[n:] for k in list(self._base) if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def sub_arrays(arrays: Mapping[str, np.ndarray], prefix: str) -> Mapping[str, np.ndarray]:
    """The arrays whose keys start with ``prefix``, keyed without it (lazily)."""
    return _Prefixed(arrays, prefix)


def construct(cls: type[T], kwargs: dict[str, Any], where: str) -> T:
    """``cls(**kwargs)``, its own validation errors given the path of the entry."""
    try:
        return cls(**kwargs)
    except InputError as exc:
        raise field_error(where, str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise field_error(where, f"bad {getattr(cls, 'kind', cls.__name__)} entry ({exc})") from None


class EditContext(Protocol):
    """What an edit may ask of the renderer while it is applied."""

    generator: Any  #: the :class:`~stylestudio.engine.generator.Generator`
    source_ws: Tensor  #: W+ of the document's source, [1, num_ws, w_dim]
    base_styles: "dict[str, Tensor]"  #: styles of ``source_ws`` before any edit

    def resource(self, kind: str, name: str) -> Any:
        """Load (and cache) a named resource: a direction library, a catalog, …"""

    def library_for(self, edit: "Edit") -> Any:
        """The slider library a direction or text path ``edit`` draws with: the document's kept copy
        of it, else the installed one (:mod:`.edits.kept`)."""

    def source_styles(self, source: "Source") -> "dict[str, Tensor]":
        """Styles of another source (a reference face), cached."""


# ---------------------------------------------------------------------------------------------
# registries

_SOURCES: dict[str, type["Source"]] = {}
_EDITS: dict[str, type["Edit"]] = {}
T = TypeVar("T")


def register_source(cls: type[T]) -> type[T]:
    _SOURCES[cls.kind] = cls  # type: ignore[attr-defined]
    return cls


def register_edit(cls: type[T]) -> type[T]:
    _EDITS[cls.kind] = cls  # type: ignore[attr-defined]
    return cls


def _plain_fields(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(obj):
        if f.name in skip:
            continue
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            continue
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


class Serialisable:
    """JSON fields + numpy arrays. Subclasses with arrays override the two array hooks."""

    kind: ClassVar[str]
    array_fields: ClassVar[tuple[str, ...]] = ()
    #: field name → ``check(value, where)`` returning the checked value; fields read from a file
    #: without a check are refused, so every value a project can set is validated
    field_checks: ClassVar[dict[str, Callable[[Any, str], Any]]] = {}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **_plain_fields(self, self.array_fields)}

    def arrays(self) -> Arrays:
        return {name: np.asarray(getattr(self, name)) for name in self.array_fields
                if getattr(self, name) is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str = ""):
        """Decode one entry; ``where`` is its path in the document, for error messages."""
        data = as_mapping(data, where)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        for k, v in data.items():
            if k == "kind" or k not in names or k in cls.array_fields:
                continue  # unknown keys: written by a later version, ignored
            check = cls.field_checks.get(k)
            if check is None:
                raise field_error(at(where, k), "cannot be set from a file")
            kwargs[k] = check(v, at(where, k))
        for name in cls.array_fields:
            if name in arrays:
                kwargs[name] = as_array(arrays[name], at(where, name))
        return construct(cls, kwargs, where)


# ---------------------------------------------------------------------------------------------
# sources


class Source(Serialisable, ABC):
    """Where the face comes from. ``latent(generator)`` gives its W+ [1, num_ws, w_dim]."""

    @abstractmethod
    def latent(self, generator: Any) -> Tensor:
        """W+ of this face for ``generator``."""

    def latent_with(self, generator: Any, resources: Any = None) -> Tensor:
        """W+ when the model's resources are at hand (the renderer's way in): a source that must
        still be computed can use them (a photo never inverted starts from the model's encoder)."""
        return self.latent(generator)

    def key(self) -> tuple:
        """Hashable identity used to cache the latent."""
        return (self.kind, tuple(sorted(self.to_json().items(), key=lambda kv: kv[0])).__repr__())

    def label(self) -> str:
        return self.kind


def seed_to_z(seed: int, z_dim: int) -> Tensor:
    """The documented seed → z mapping: ``numpy.random.RandomState(seed).randn(1, z_dim)``.

    This is the NVlabs ``generate.py`` convention, so seeds mean the same faces there and here,
    on every machine (the Mersenne Twister + Box–Muller stream of NumPy's legacy RandomState is
    platform independent).
    """
    if not 0 <= int(seed) < MAX_SEED:
        raise InputError(f"seed must be in [0, 2^32), got {seed}")
    return torch.from_numpy(np.random.RandomState(int(seed)).randn(1, z_dim).astype(np.float32))


@register_source
@dataclass(frozen=True)
class SeedSource(Source):
    kind: ClassVar[str] = "seed"
    field_checks: ClassVar[dict[str, Callable[[Any, str], Any]]] = {
        "seed": lambda v, w: as_int(v, w, 0, MAX_SEED - 1),
        "psi": lambda v, w: as_number(v, w, *PSI_RANGE),
        "cutoff": optional(lambda v, w: as_int(v, w, 0, 1024)),
    }
    seed: int = 0
    psi: float = 0.7
    cutoff: int | None = None

    def __post_init__(self) -> None:
        as_int(self.seed, "seed", 0, MAX_SEED - 1)
        as_number(self.psi, "ψ (psi)", *PSI_RANGE)
        if self.cutoff is not None:
            as_int(self.cutoff, "cutoff", 0, 1024)

    def latent(self, generator: Any) -> Tensor:
        z = seed_to_z(self.seed, generator.z_dim).to(generator.device)
        return generator.mapping(z, self.psi, self.cutoff)

    def key(self) -> tuple:
        return (self.kind, self.seed, self.psi, self.cutoff)

    def label(self) -> str:
        return f"seed {self.seed} (ψ {self.psi:g})"


@register_source
@dataclass(frozen=True, eq=False)
class LatentSource(Source):
    """An explicit W+ latent (an imported .npy, an inverted face without its photo)."""

    kind: ClassVar[str] = "latent"
    array_fields: ClassVar[tuple[str, ...]] = ("wplus",)
    field_checks: ClassVar[dict[str, Callable[[Any, str], Any]]] = {"name": as_text}
    wplus: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    name: str = "latent"

    def __post_init__(self) -> None:
        object.__setattr__(self, "wplus", frozen_array(self.wplus))  # a document is a value

    @classmethod
    def from_json(cls, data: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str = ""):
        if "wplus" not in arrays:
            raise field_error(at(where, "wplus"), "missing: the project lacks the face's latent")
        src = super().from_json(data, arrays, where)
        check_latent(src.wplus, at(where, "wplus"))
        return src

    def latent(self, generator: Any) -> Tensor:
        wp = torch.tensor(np.asarray(self.wplus, np.float32))
        if wp.dim() == 2:
            wp = wp[None]
        if wp.shape[1:] == (generator.w_dim,):
            wp = generator.broadcast_w(wp)
        if tuple(wp.shape[1:]) != (generator.num_ws, generator.w_dim):
            raise InputError(
                f"latent has shape {tuple(wp.shape)}, model needs [1, {generator.num_ws}, {generator.w_dim}]"
            )
        return wp.to(generator.device)

    def key(self) -> tuple:
        return (self.kind, self.name, np.asarray(self.wplus, np.float32).tobytes())

    def label(self) -> str:
        return self.name


def source_from_json(data: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str = "source") -> Source:
    data = as_mapping(data, where)
    kind = data.get("kind")
    cls = _SOURCES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise field_error(at(where, "kind"), f"unknown face source kind {show(kind)}")
    return cls.from_json(data, arrays, where)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# edits


def new_edit_id() -> str:
    return uuid.uuid4().hex[:12]


class Edit(Serialisable, ABC):
    """One step of the edit list. ``apply`` maps styles → styles (all edits act in StyleSpace).

    Subclasses are frozen dataclasses with an ``id`` (stable across value changes, so a slider
    drag replaces its own edit) and an ``enabled`` flag.
    """

    id: str
    enabled: bool

    @abstractmethod
    def apply(self, ctx: EditContext, styles: "dict[str, Tensor]") -> "dict[str, Tensor]":
        """Return new styles; never modify ``styles`` in place."""

    def describe(self) -> str:
        return self.kind


def edit_from_json(data: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str = "edit") -> Edit:
    data = as_mapping(data, where)
    kind = data.get("kind")
    cls = _EDITS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise field_error(at(where, "kind"), f"unknown edit kind {show(kind)}")
    return cls.from_json(data, arrays, where)  # type: ignore[return-value]


def edit_kinds() -> list[str]:
    return sorted(_EDITS)


# ---------------------------------------------------------------------------------------------
# the document


EXPORT_FORMATS = ("png", "jpeg", "jpg", "tiff", "tif")


@dataclass(frozen=True)
class ExportSettings:
    format: str = "png"  #: png | jpeg | tiff
    size: int | None = None  #: None: the model's full resolution
    quality: int = 95  #: JPEG quality
    paste_back: bool = True  #: photos: export the whole photo with the face blended back

    field_checks: ClassVar[dict[str, Callable[[Any, str], Any]]] = {
        "format": lambda v, w: as_choice(v, w, EXPORT_FORMATS),
        "size": optional(lambda v, w: as_int(v, w, MIN_SIZE, MAX_SIZE)),
        "quality": lambda v, w: as_int(v, w, 1, 100),
        "paste_back": as_bool,
    }

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "export") -> "ExportSettings":
        data = as_mapping(data, where)
        return cls(**{k: check(data[k], at(where, k)) for k, check in cls.field_checks.items() if k in data})


@dataclass(frozen=True)
class AttributeSettings:
    """How the named attribute sliders hold each other still (conditional editing).

    With ``keep_others`` (the default) a move of one attribute holds every other named attribute
    still; a *pinned* attribute is held still by every move even with ``keep_others`` off. Part of
    the document, so the switches are undoable, saved and reopened with the edits they shaped.
    """

    keep_others: bool = True
    pins: tuple[str, ...] = ()  #: attribute names (of the ``attributes`` library), sorted, unique

    field_checks: ClassVar[dict[str, Callable[[Any, str], Any]]] = {
        "keep_others": as_bool,
        "pins": as_names,
    }

    def __post_init__(self) -> None:
        as_bool(self.keep_others, "keep_others")
        pins = as_names(self.pins, "pins")
        object.__setattr__(self, "keep_others", bool(self.keep_others))
        object.__setattr__(self, "pins", tuple(sorted(set(pins))))  # one spelling for one state

    def keep_for(self, names: "list[str] | tuple[str, ...]", name: str) -> tuple[str, ...]:
        """What a move of ``name`` holds still among ``names`` (the library's, in its order)."""
        if name not in names:
            return ()
        return tuple(n for n in names if n != name and (self.keep_others or n in self.pins))

    def with_pin(self, name: str, on: bool) -> "AttributeSettings":
        pins = set(self.pins) | {name} if on else set(self.pins) - {name}
        return dataclasses.replace(self, pins=tuple(pins))

    def to_json(self) -> dict[str, Any]:
        return {"keep_others": self.keep_others, "pins": list(self.pins)}

    @classmethod
    def from_json(cls, data: Any, where: str = "attributes") -> "AttributeSettings":
        data = as_mapping(data, where)
        return construct(cls, {k: check(data[k], at(where, k)) for k, check in cls.field_checks.items()
                               if k in data}, where)


@dataclass(frozen=True)
class KeptLibrary:
    """A copy of a slider library (its file's bytes) that a project keeps, so its sliders still
    draw where that library was removed, renamed or never installed (:mod:`.edits.kept`).

    The bytes are data from a file like any other: they are parsed (never executed) only when an
    edit needs them, by the library's own checked reader.
    """

    kind: str  #: ``directions`` | ``textpaths``
    name: str  #: the library's name, as the edits name it
    data: bytes = field(repr=False)

    KINDS: ClassVar[tuple[str, ...]] = ("directions", "textpaths")

    def __post_init__(self) -> None:
        from .resources import check_resource_name  # (resources imports this module)

        as_choice(self.kind, "kind", self.KINDS)
        check_resource_name(self.name, "library", "name")  # it may become a file name (edits.kept.install_missing)
        if not isinstance(self.data, bytes) or not 0 < len(self.data) <= MAX_KEPT_BYTES:
            raise InputError(f"a kept {self.kind} library {self.name!r} must be 1 byte to "
                             f"{MAX_KEPT_BYTES >> 20} MiB, got {len(self.data) if isinstance(self.data, bytes) else self.data!r}")

    @functools.cached_property
    def digest(self) -> str:
        """Names this copy among others of the same library; computed once (every render looks it up)."""
        import hashlib

        return hashlib.sha256(self.data).hexdigest()[:16]

    @classmethod
    def from_json(cls, data: Any, arrays: Mapping[str, np.ndarray], where: str) -> "KeptLibrary":
        data = as_mapping(data, where)
        if "data" not in arrays:
            raise field_error(at(where, "data"), "missing from the project (damaged or incomplete)")
        raw = arrays["data"]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise field_error(at(where, "data"), f"expected bytes, got a {raw.dtype} array of shape {raw.shape}")
        kind = as_choice(data.get("kind"), at(where, "kind"), cls.KINDS)
        name = as_text(data.get("name"), at(where, "name"), 200)
        return construct(cls, {"kind": kind, "name": name, "data": raw.tobytes()}, where)


@dataclass(frozen=True, eq=False)
class EditDocument:
    model: str
    source: Source
    edits: tuple[Edit, ...] = ()
    export: ExportSettings = ExportSettings()
    title: str = "Untitled"
    attributes: AttributeSettings = AttributeSettings()  #: Keep others and pins
    #: copies of the slider libraries the edits use, kept so the project draws without them installed
    libraries: tuple[KeptLibrary, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.attributes, AttributeSettings):
            raise InputError(f"attributes: expected AttributeSettings, got {show(self.attributes)}")
        object.__setattr__(self, "edits", tuple(self.edits))  # a list passed in could change under us
        object.__setattr__(self, "libraries", tuple(self.libraries))
        if not all(isinstance(k, KeptLibrary) for k in self.libraries) or len(self.libraries) > MAX_KEPT_LIBRARIES:
            raise InputError(f"libraries: expected at most {MAX_KEPT_LIBRARIES} kept libraries")

    # -- immutable updates (each returns a new document) -----------------------------------
    def with_source(self, source: Source) -> "EditDocument":
        return dataclasses.replace(self, source=source)

    def with_edit(self, edit: Edit) -> "EditDocument":
        """Append ``edit``, or replace the edit with the same id in place."""
        edits = list(self.edits)
        for i, e in enumerate(edits):
            if e.id == edit.id:
                edits[i] = edit
                return dataclasses.replace(self, edits=tuple(edits))
        return dataclasses.replace(self, edits=tuple(edits + [edit]))

    def without_edit(self, edit_id: str) -> "EditDocument":
        return dataclasses.replace(self, edits=tuple(e for e in self.edits if e.id != edit_id))

    def edit(self, edit_id: str) -> Edit | None:
        return next((e for e in self.edits if e.id == edit_id), None)

    def with_attributes(self, attributes: AttributeSettings) -> "EditDocument":
        return dataclasses.replace(self, attributes=attributes)

    # -- serialisation ------------------------------------------------------------------------
    def to_json(self) -> tuple[dict[str, Any], Arrays]:
        arrays: Arrays = {}
        src = self.source.to_json()
        for k, v in self.source.arrays().items():
            arrays[f"source.{k}"] = v
        edits = []
        for i, e in enumerate(self.edits):
            edits.append(e.to_json())
            for k, v in e.arrays().items():
                arrays[f"edit{i}.{k}"] = v
        doc = {
            "document_version": DOCUMENT_VERSION,
            "model": self.model,
            "title": self.title,
            "source": src,
            "edits": edits,
            "export": self.export.to_json(),
            "attributes": self.attributes.to_json(),
        }
        if self.libraries:
            doc["libraries"] = [{"kind": k.kind, "name": k.name} for k in self.libraries]
            for i, k in enumerate(self.libraries):
                arrays[f"library{i}.data"] = np.frombuffer(k.data, np.uint8)
        return doc, arrays

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> "EditDocument":
        """Decode a document, checking every field; ``arrays`` may be lazy (only referenced ones are read).

        Raises :class:`InputError` naming the bad field, e.g. ``edits[2].amount: expected a finite
        number, got 'abc'``.
        """
        doc = as_mapping(doc, "the document")
        version = as_int(doc.get("document_version", 0), "document_version", 0, 2**31)
        if version > DOCUMENT_VERSION:
            raise InputError(f"saved by a newer StyleStudio (document version {version}; this version reads "
                             f"up to {DOCUMENT_VERSION}): update StyleStudio to open it")
        for key in ("model", "source"):
            if key not in doc:
                raise field_error(key, "missing from the document (damaged or incomplete)")
        model = as_text(doc["model"], "model", 200)
        source = source_from_json(doc["source"], sub_arrays(arrays, "source."), "source")
        raw_edits = doc.get("edits", [])
        if not isinstance(raw_edits, list):
            raise field_error("edits", f"expected a list, got {show(raw_edits)}")
        if len(raw_edits) > MAX_EDITS:
            raise field_error("edits", f"more than {MAX_EDITS} edits")
        edits = tuple(edit_from_json(e, sub_arrays(arrays, f"edit{i}."), f"edits[{i}]")
                      for i, e in enumerate(raw_edits))
        raw_kept = doc.get("libraries", [])
        if not isinstance(raw_kept, list) or len(raw_kept) > MAX_KEPT_LIBRARIES:
            raise field_error("libraries", f"expected a list of at most {MAX_KEPT_LIBRARIES} kept libraries")
        kept = tuple(KeptLibrary.from_json(k, sub_arrays(arrays, f"library{i}."), f"libraries[{i}]")
                     for i, k in enumerate(raw_kept))
        return cls(model=model, source=source, edits=edits, libraries=kept,
                   export=ExportSettings.from_json(doc.get("export", {}), "export"),
                   title=as_text(doc.get("title", "Untitled"), "title"),
                   attributes=AttributeSettings.from_json(doc.get("attributes", {}), "attributes"))
