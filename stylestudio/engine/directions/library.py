"""A direction library: named W-space directions for one model, stored without pickle.

A direction is a unit vector in W, the W+ rows it acts on, and ``unit``: the W-space distance of
one slider unit (chosen so one unit means a measurable attribute change). A discovered direction
also carries per-row weights (its learned attention over the W+ rows); a library holding any is
written as format version 2, so an older StyleStudio refuses it instead of ignoring the weights. Conditional editing
("keep others") removes from a direction its components along the normals of the attributes the
user wants kept, solved jointly for several at once (InterFaceGAN §3.3 generalised).
"""
from __future__ import annotations

import json
import zipfile
import dataclasses
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from ...safe_io import atomic_write_bytes, write_member
from .. import renames

LIBRARY_FORMAT = "stylestudio-directions"
LIBRARY_VERSION = 2
#: the most W+ rows a direction may weight (released models have at most 18)
MAX_ROWS = 64


@dataclass
class Direction:
    name: str  #: lower-case CLI name, e.g. ``"age"``
    label: str  #: shown on the slider
    vector: np.ndarray  #: [w_dim], unit length
    layers: tuple[int, ...]  #: W+ rows the edit acts on (empty: all rows)
    unit: float = 1.0  #: W-space step of one slider unit
    meta: dict[str, Any] = field(default_factory=dict)  #: offset, score scale, accuracy, …
    #: weight of each W+ row (empty: 1 on ``layers``); a discovered direction's attention
    row_weights: tuple[float, ...] = ()


def project_out(vector: np.ndarray, normals: Sequence[np.ndarray]) -> np.ndarray:
    """Remove from ``vector`` its component in the span of ``normals`` (joint least squares).

    For one normal this is InterFaceGAN's ``d - (d·n) n``; for several, projecting one at a time
    is wrong when the normals are correlated, so solve ``d - N (NᵀN)⁻¹ Nᵀ d`` at once.
    """
    v = np.asarray(vector, np.float64)
    if not normals:
        return v.astype(np.float32)
    n = np.stack([np.asarray(x, np.float64) for x in normals], axis=1)  # [w_dim, k]
    coeff, *_ = np.linalg.lstsq(n, v, rcond=None)
    return (v - n @ coeff).astype(np.float32)


def check_library_name(name: object, where: str = "") -> str:
    """A direction library's name, checked like every resource name (it becomes ``<name>.ssdir``
    under the data folder, and projects carry it)."""
    from ..resources import check_resource_name

    return check_resource_name(name, "direction library", where)


class DirectionLibrary:
    def __init__(self, model: str, directions: Iterable[Direction] = (), kind: str = "attributes",
                 meta: dict[str, Any] | None = None) -> None:
        self.model = model
        self.kind = kind
        self.directions: dict[str, Direction] = {d.name: d for d in directions}
        self.meta = dict(meta or {})

    def __contains__(self, name: str) -> bool:
        return self.canonical(name) in self.directions

    def __getitem__(self, name: str) -> Direction:
        try:
            return self.directions[self.canonical(name)]
        except KeyError:
            raise InputError(f"no direction {name!r} (have: {', '.join(self.directions)})") from None

    @property
    def renamed(self) -> dict[str, str]:
        """Earlier names of renamed directions → their names now (:mod:`..renames`, kept in ``meta``)."""
        return renames.table(self.meta)

    def canonical(self, name: str) -> str:
        """``name`` itself, or what the direction once called ``name`` is called now."""
        return renames.canonical(self.meta, name, self.directions)

    def former_names(self, name: str) -> list[str]:
        """What direction ``name`` was called before (a slider still finds edits made then)."""
        return renames.former_names(self.meta, name)

    def rename(self, old: str, new: str, label: str | None = None) -> None:
        """Rename ``old`` to ``new``, remembering ``old`` so what named it still finds it."""
        d = self[old]
        if new != d.name and new in self.directions:
            raise InputError(f"there is already a direction {new!r}")
        self.directions = {(new if n == d.name else n): (dataclasses.replace(v, name=new, label=label or v.label)
                                                          if n == d.name else v)
                           for n, v in self.directions.items()}
        renames.record(self.meta, d.name, new)

    def remove(self, name: str) -> None:
        """Remove a direction; its earlier names go with it."""
        gone = self[name].name
        del self.directions[gone]
        renames.forget(self.meta, gone)

    def names(self) -> list[str]:
        return list(self.directions)

    def conditioned(self, name: str, keep: Iterable[str] = ()) -> np.ndarray:
        """Unit direction for ``name`` with the kept attributes' normals projected out."""
        d = self[name]
        normals = [self[k].vector for k in keep if k != name]
        v = project_out(d.vector, normals)
        norm = float(np.linalg.norm(v))
        if norm < 1e-6:
            raise InputError(f"{name!r} cannot move while keeping {', '.join(keep)}: nothing is left of it")
        # Scale so the step along the attribute's own normal is unchanged: the linear attribute
        # score moves by the same amount per slider unit with or without conditioning.
        along = float(v @ d.vector)
        return (v / along).astype(np.float32) if along > 1e-6 else (v / norm).astype(np.float32)

    def delta(self, name: str, amount: float, num_ws: int, keep: Iterable[str] = ()) -> Tensor:
        """W+ offset [num_ws, w_dim] for moving ``name`` by ``amount`` slider units."""
        d = self[name]
        v = torch.from_numpy(self.conditioned(name, keep)) * float(amount) * d.unit
        if d.row_weights:
            if len(d.row_weights) != num_ws:
                raise InputError(f"direction {name!r} weights {len(d.row_weights)} W+ rows; this model has {num_ws}")
            return torch.tensor(d.row_weights, dtype=torch.float32)[:, None] * v[None]
        rows = torch.zeros(num_ws, 1)
        rows[list(d.layers) if d.layers else slice(None)] = 1.0
        return rows * v[None]

    # -- storage: one zip of JSON + .npy, never pickle ---------------------------------------
    def save(self, path: Path) -> None:
        atomic_write_bytes(Path(path), self.to_bytes())

    def to_bytes(self) -> bytes:
        """The library file's bytes (what :meth:`save` writes; a project keeps them, :mod:`..edits.kept`)."""
        meta = {
            "format": LIBRARY_FORMAT,
            "format_version": 2 if any(d.row_weights for d in self.directions.values()) else 1,
            "model": self.model,
            "kind": self.kind,
            "meta": self.meta,
            "directions": [
                {"name": d.name, "label": d.label, "layers": list(d.layers), "unit": d.unit, "meta": d.meta,
                 **({"row_weights": list(d.row_weights)} if d.row_weights else {})}
                for d in self.directions.values()
            ],
        }
        out = BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            write_member(zf, "library.json", json.dumps(meta, indent=2))
            for d in self.directions.values():
                buf = BytesIO()
                np.save(buf, np.asarray(d.vector, np.float32), allow_pickle=False)
                write_member(zf, f"vectors/{d.name}.npy", buf.getvalue())
        return out.getvalue()

    @classmethod
    def load(cls, path: Path) -> "DirectionLibrary":
        return cls.read(path, str(path))

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> "DirectionLibrary":
        return cls.read(BytesIO(data), where)

    @classmethod
    def read(cls, source: "Path | BinaryIO", where: str) -> "DirectionLibrary":
        """Parse a library file (a path or an open binary file); damage is one line naming ``where``."""
        path = where
        try:
            with zipfile.ZipFile(source) as zf:
                meta = json.loads(zf.read("library.json"))
                if meta.get("format") != LIBRARY_FORMAT:
                    raise InputError(f"{path}: not a direction library")
                if int(meta.get("format_version", 0)) > LIBRARY_VERSION:
                    raise InputError(f"{path}: made by a newer StyleStudio")
                dirs = []
                for d in meta["directions"]:
                    if not isinstance(d.get("name"), str) or not d["name"]:
                        raise ValueError(f"a direction without a name: {str(d)[:40]}")
                    vec = np.load(BytesIO(zf.read(f"vectors/{d['name']}.npy")), allow_pickle=False)
                    dirs.append(Direction(d["name"], d.get("label", d["name"]), vec.astype(np.float32),
                                          tuple(int(i) for i in d.get("layers", ())), float(d.get("unit", 1.0)),
                                          dict(d.get("meta", {})), _row_weights(d.get("row_weights", ()))))
                model, kind, extra = str(meta["model"]), str(meta.get("kind", "attributes")), dict(meta.get("meta", {}))
        except (OSError, KeyError, ValueError, TypeError, AttributeError, RecursionError, NotImplementedError,
                RuntimeError, OverflowError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: damaged direction library ({type(exc).__name__}: {exc})") from None
        return cls(model, dirs, kind, extra)


def _row_weights(value: Any) -> tuple[float, ...]:
    """Per-row weights read from a file: a short list of finite, non-negative numbers."""
    if not isinstance(value, (list, tuple)) or len(value) > MAX_ROWS:
        raise ValueError(f"row_weights must be a list of at most {MAX_ROWS} numbers")
    out = tuple(float(x) for x in value)
    if not all(np.isfinite(x) and 0.0 <= x <= 1e3 for x in out):
        raise ValueError("row_weights must be finite numbers between 0 and 1000")
    return out
