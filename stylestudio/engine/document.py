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
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError

DOCUMENT_VERSION = 1

Arrays = dict[str, np.ndarray]


class EditContext(Protocol):
    """What an edit may ask of the renderer while it is applied."""

    generator: Any  #: the :class:`~stylestudio.engine.generator.Generator`
    source_ws: Tensor  #: W+ of the document's source, [1, num_ws, w_dim]
    base_styles: "dict[str, Tensor]"  #: styles of ``source_ws`` before any edit

    def resource(self, kind: str, name: str) -> Any:
        """Load (and cache) a named resource: a direction library, a catalog, …"""

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

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **_plain_fields(self, self.array_fields)}

    def arrays(self) -> Arrays:
        return {name: np.asarray(getattr(self, name)) for name in self.array_fields
                if getattr(self, name) is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        for k, v in data.items():
            if k == "kind" or k not in names:
                continue
            kwargs[k] = tuple(v) if isinstance(v, list) else v
        for name in cls.array_fields:
            if name in arrays:
                kwargs[name] = np.asarray(arrays[name])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise InputError(f"bad {cls.kind} entry in document: {exc}") from exc


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
    if not 0 <= int(seed) < 2**32:
        raise InputError(f"seed must be in [0, 2^32), got {seed}")
    return torch.from_numpy(np.random.RandomState(int(seed)).randn(1, z_dim).astype(np.float32))


@register_source
@dataclass(frozen=True)
class SeedSource(Source):
    kind: ClassVar[str] = "seed"
    seed: int = 0
    psi: float = 0.7
    cutoff: int | None = None

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
    wplus: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    name: str = "latent"

    def latent(self, generator: Any) -> Tensor:
        wp = torch.as_tensor(np.asarray(self.wplus, np.float32))
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


def source_from_json(data: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Source:
    cls = _SOURCES.get(str(data.get("kind")))
    if cls is None:
        raise InputError(f"unknown face source kind {data.get('kind')!r}")
    return cls.from_json(data, arrays)  # type: ignore[return-value]


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


def edit_from_json(data: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Edit:
    cls = _EDITS.get(str(data.get("kind")))
    if cls is None:
        raise InputError(f"unknown edit kind {data.get('kind')!r}")
    return cls.from_json(data, arrays)  # type: ignore[return-value]


def edit_kinds() -> list[str]:
    return sorted(_EDITS)


# ---------------------------------------------------------------------------------------------
# the document


@dataclass(frozen=True)
class ExportSettings:
    format: str = "png"  #: png | jpeg | tiff
    size: int | None = None  #: None: the model's full resolution
    quality: int = 95  #: JPEG quality
    paste_back: bool = True  #: photos: export the whole photo with the face blended back

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ExportSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, eq=False)
class EditDocument:
    model: str
    source: Source
    edits: tuple[Edit, ...] = ()
    export: ExportSettings = ExportSettings()
    title: str = "Untitled"

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
        }
        return doc, arrays

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> "EditDocument":
        try:
            version = int(doc.get("document_version", 0))
            if version > DOCUMENT_VERSION:
                raise InputError(f"document version {version} is newer than this StyleStudio supports")
            src_arrays = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("source.")}
            source = source_from_json(doc["source"], src_arrays)
            edits = []
            for i, e in enumerate(doc.get("edits", [])):
                prefix = f"edit{i}."
                edits.append(edit_from_json(e, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}))
            return cls(
                model=str(doc["model"]),
                source=source,
                edits=tuple(edits),
                export=ExportSettings.from_json(doc.get("export", {})),
                title=str(doc.get("title", "Untitled")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"the document is damaged or incomplete ({type(exc).__name__}: {exc})") from exc
