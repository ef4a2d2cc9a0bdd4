"""A library of trained text paths for one model, stored without pickle (zip of JSON + .npy).

It lives at ``<data>/textpaths/<model>/<name>.sstp`` (shipped ones under ``resources/textpaths/``),
is loaded by name through the renderer's resources (kind ``"textpaths"``) and moves a face with
:meth:`TextPathLibrary.move`, the one function the document's PathEdit and the CLI call.
"""
from __future__ import annotations

import copy
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor

from ... import paths as app_paths
from ...errors import InputError
from ...safe_io import atomic_write_bytes, write_member
from .. import renames
from ..resources import Resources, check_resource_name, register_kept_reader, register_resource_loader
from .contraclip import METHODS, LatentPaths, follow

FORMAT, VERSION, SUFFIX = "stylestudio-textpaths", 1, ".sstp"
MAX_PATHS, MAX_DIM, MAX_DIPOLES = 256, 1 << 16, 64


@dataclass(frozen=True)
class TextPath:
    name: str  #: lower-case CLI name, e.g. ``"smile"``
    positive: str  #: the sentence + moves towards
    negative: str
    #: latent distance of this path's slider unit; None: the library's. The shipped library sets it so
    #: that ±1 changes the attribute as much as the attribute slider's ±1 (scripts/train_starter_textpaths.py)
    unit: float | None = None
    #: W+ rows 0 … rows−1 this path moves; None: the library's. A path trained on fewer rows (e.g. the
    #: shipped ``age``, kept off the fine layers that hold colour) sits in a library of longer paths
    rows: int | None = None
    #: latent distance of one unit on the − side; None: ``unit``. A curved path can be weaker one way
    #: (the shipped age path makes a face younger more slowly than older), so each side is calibrated
    unit_negative: float | None = None

    def unit_for(self, amount: float, default: float) -> float:
        """The latent distance of one slider unit on the side of ``amount``."""
        if amount < 0 and self.unit_negative is not None:
            return self.unit_negative
        return self.unit or default

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


@dataclass
class TextPathLibrary:
    model: str
    paths: list[TextPath]
    latent: LatentPaths
    rows: int  #: W+ rows 0 … rows−1 are moved
    w_dim: int
    radius: float  #: mean distance of the training faces' codes from w_avg
    unit: float  #: latent distance of one slider unit
    encoder: str
    meta: dict[str, Any] = field(default_factory=dict)  #: loss curve, steps, seconds, settings

    def names(self) -> list[str]:
        return [p.name for p in self.paths]

    def index(self, name: str) -> int:
        """Where path ``name`` is (also by an earlier name of a renamed path: :mod:`..renames`)."""
        names = self.names()
        name = renames.canonical(self.meta, name, names)
        for i, p in enumerate(names):
            if p == name:
                return i
        raise InputError(f"no text path {name!r} (have: {', '.join(names)})")

    def __contains__(self, name: str) -> bool:
        names = self.names()
        return renames.canonical(self.meta, name, names) in names

    def former_names(self, name: str) -> list[str]:
        """What path ``name`` was called before (a slider still finds edits made then)."""
        return renames.former_names(self.meta, name)

    def rename(self, old: str, new: str) -> None:
        """Rename path ``old`` to ``new``, remembering ``old`` so what named it still finds it."""
        k = self.index(old)
        check_path_name(new)
        was = self.paths[k].name
        if new != was and new in self:
            raise InputError(f"there is already a text path {new!r}")
        self.paths[k] = replace(self.paths[k], name=new)
        renames.record(self.meta, was, new)

    def subset(self, names: list[str]) -> "TextPathLibrary":
        """A library of only the paths ``names`` (or earlier names of them), their trained vectors
        untouched (e.g. to ship the paths of a training that measured well)."""
        keep = list(dict.fromkeys(self.index(n) for n in names))
        latent = LatentPaths(len(keep), self.latent.dim, self.radius, max(self.dipoles, 1), self.latent.method)
        latent.load_state_dict({k: v[keep].clone() for k, v in self.latent.state_dict().items()})
        return TextPathLibrary(self.model, [self.paths[i] for i in keep], latent.eval().requires_grad_(False),
                               self.rows, self.w_dim, self.radius, self.unit, self.encoder, copy.deepcopy(self.meta))

    def set_path_units(self, units: dict[str, float], negative: dict[str, float] | None = None) -> None:
        """Give paths their own slider unit (latent distance), e.g. calibrated against an attribute slider;
        ``negative``: a different unit for the − side of some paths."""
        negative = negative or {}
        for name in {**units, **negative}:
            k = self.index(name)
            old = self.paths[k]
            unit, neg = units.get(name, old.unit), negative.get(name, old.unit_negative)
            for u in (unit, neg):
                if u is not None and not _valid_unit(u):
                    raise InputError(f"the unit of text path {name!r} must be finite and positive, got {u}")
            self.paths[k] = replace(old, unit=None if unit is None else float(unit),
                                    unit_negative=None if neg is None else float(neg))

    @torch.no_grad()
    def move(self, name: str, ws: Tensor, amount: float, w_avg: Tensor) -> Tensor:
        """W+ [B, num_ws, w_dim] moved ``amount`` slider units along path ``name`` (path following)."""
        k = self.index(name)
        if ws.shape[-1] != self.w_dim or ws.shape[1] < self.rows:
            raise InputError(f"text path library for {self.w_dim}-d W with {self.rows}+ rows cannot move a "
                             f"latent of shape {list(ws.shape)}")
        path = self.paths[k]
        rows = path.rows or self.rows
        latent = self.latent.to(ws.device)
        if rows < self.rows:
            latent, k = latent.restricted(k, rows * self.w_dim), 0
        x = (ws[:, :rows] - w_avg).reshape(ws.shape[0], -1).float()
        moved = follow(latent, x, k, float(amount), path.unit_for(float(amount), self.unit))
        out = ws.clone()
        out[:, :rows] = moved.reshape(ws.shape[0], rows, self.w_dim).to(ws.dtype) + w_avg
        return out

    def fingerprint(self, name: str) -> str:
        """A short digest of everything :meth:`move` reads for path ``name``: its vectors on its own rows,
        its rows and its units on both sides, the method (not the sentences or the other paths, so a
        path copied bit-for-bit into another library keeps its fingerprint)."""
        from ..edits.versions import digest

        k = self.index(name)
        path = self.paths[k]
        rows = path.rows or self.rows
        parts: list[bytes | str] = [self.latent.method, f"{rows} {self.w_dim} {path.unit_for(1.0, self.unit)!r} "
                                    f"{path.unit_for(-1.0, self.unit)!r}"]
        for key, v in sorted(self.latent.state_dict().items()):
            row = v[k].detach().cpu().float()
            if key in ("support", "direction"):
                row = row[..., :rows * self.w_dim]  # the zero padding of a path on fewer rows is not read
            parts += [key, row.contiguous().numpy().tobytes()]
        return digest(*parts)

    def adopt(self, other: "TextPathLibrary", names: list[str]) -> None:
        """Add ``other``'s paths ``names`` (trained on at most as many rows, same model and method) with
        their vectors zero-padded to this library's rows; each keeps its own rows and slider unit."""
        if other.model != self.model:
            raise InputError(f"paths of model {other.model!r} cannot join a library of model {self.model!r}")
        if (other.w_dim, other.latent.method, other.dipoles) != (self.w_dim, self.latent.method, self.dipoles):
            raise InputError("text paths can only join a library of the same latent size, method and dipoles")
        if other.rows > self.rows:
            raise InputError(f"paths on {other.rows} W+ rows cannot join a library of {self.rows}")
        for name in names:
            if name in self:
                raise InputError(f"the library already has a path {name!r}")
        keep = [other.index(n) for n in names]
        mine, theirs = self.latent.state_dict(), other.latent.state_dict()
        state = {}
        for key, v in mine.items():
            add = theirs[key][keep]
            if key in ("support", "direction"):
                add = torch.nn.functional.pad(add, (0, self.latent.dim - other.latent.dim))
            state[key] = torch.cat([v, add.to(v.dtype)])
        latent = LatentPaths(len(self.paths) + len(keep), self.latent.dim, self.radius, max(self.dipoles, 1),
                             self.latent.method)
        latent.load_state_dict(state)
        self.latent = latent.eval().requires_grad_(False)
        for i in keep:
            p = other.paths[i]
            self.paths.append(replace(p, unit=p.unit or other.unit, rows=p.rows or other.rows))

    # -- storage ----------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        meta = {"format": FORMAT, "format_version": VERSION, "model": self.model, "method": self.latent.method,
                "count": self.latent.count, "dim": self.latent.dim, "dipoles": self.dipoles, "rows": self.rows,
                "w_dim": self.w_dim, "radius": self.radius, "unit": self.unit, "encoder": self.encoder,
                "paths": [{"name": p.name, "positive": p.positive, "negative": p.negative,
                           **({"unit": p.unit} if p.unit is not None else {}),
                           **({"unit_negative": p.unit_negative} if p.unit_negative is not None else {}),
                           **({"rows": p.rows} if p.rows is not None else {})} for p in self.paths],
                "meta": self.meta}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            write_member(zf, "library.json", json.dumps(meta, indent=2))
            for k, v in self.latent.state_dict().items():
                arr = io.BytesIO()
                np.save(arr, v.detach().cpu().float().numpy(), allow_pickle=False)
                write_member(zf, f"arrays/{k}.npy", arr.getvalue())
        return buf.getvalue()

    @property
    def dipoles(self) -> int:
        return int(self.latent.support.shape[1] // 2) if self.latent.method != "linear" else 0

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, self.to_bytes())
        return path

    @classmethod
    def load(cls, path: Path) -> "TextPathLibrary":
        return cls.read(Path(path), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> "TextPathLibrary":
        return cls.read(io.BytesIO(data), where)

    @classmethod
    def read(cls, source: "Path | BinaryIO", where: str) -> "TextPathLibrary":
        """Parse a library file (a path or an open binary file); damage is one line naming ``where``."""
        path = where
        try:
            with zipfile.ZipFile(source) as zf:
                meta = json.loads(zf.read("library.json"))
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    raise InputError(f"{path}: not a text path library")
                if int(meta.get("format_version", 0)) > VERSION:
                    raise InputError(f"{path}: made by a newer StyleStudio")
                method = meta["method"]
                if method not in METHODS:
                    raise ValueError(f"unknown method {method!r}")
                count, dim, dipoles = int(meta["count"]), int(meta["dim"]), int(meta["dipoles"])
                rows, w_dim = int(meta["rows"]), int(meta["w_dim"])
                if not (1 <= count <= MAX_PATHS and 1 <= dim <= MAX_DIM and 0 <= dipoles <= MAX_DIPOLES
                        and rows * w_dim == dim):
                    raise ValueError(f"absurd sizes (paths {count}, dim {dim}, dipoles {dipoles}, rows {rows})")
                radius, unit = float(meta["radius"]), float(meta["unit"])
                if not (math.isfinite(radius) and radius > 0 and math.isfinite(unit) and unit > 0):
                    raise ValueError("radius and unit must be finite and positive")
                entries = meta["paths"]
                if not isinstance(entries, list) or len(entries) != count:
                    raise ValueError("the path list does not match the count")
                text_paths = [TextPath(check_path_name(str(p["name"])), str(p["positive"]), str(p["negative"]),
                                       None if p.get("unit") is None else float(p["unit"]),
                                       None if p.get("rows") is None else int(p["rows"]),
                                       None if p.get("unit_negative") is None else float(p["unit_negative"]))
                              for p in entries]
                if not all(u is None or _valid_unit(u) for p in text_paths for u in (p.unit, p.unit_negative)):
                    raise ValueError("a path's unit must be finite and positive")
                if not all(p.rows is None or 1 <= p.rows <= rows for p in text_paths):
                    raise ValueError(f"a path's rows must be 1…{rows}, the library's")
                latent = LatentPaths(count, dim, radius, max(dipoles, 1), method)
                state = {}
                for k, ref in latent.state_dict().items():
                    arr = np.load(io.BytesIO(zf.read(f"arrays/{k}.npy")), allow_pickle=False)
                    if arr.shape != tuple(ref.shape) or arr.dtype.kind != "f" or not np.isfinite(arr).all():
                        raise ValueError(f"{k} has shape {arr.shape} or bad values, expected {tuple(ref.shape)}")
                    state[k] = torch.from_numpy(arr.astype(np.float32))
                latent.load_state_dict(state)
        except InputError:
            raise
        except (OSError, KeyError, ValueError, TypeError, AttributeError, RecursionError, zipfile.BadZipFile,
                EOFError, RuntimeError, OverflowError) as exc:
            raise InputError(f"{path}: damaged text path library ({type(exc).__name__}: {str(exc)[:160]})") from None
        return cls(str(meta["model"]), text_paths, latent.eval().requires_grad_(False), rows, w_dim, radius, unit,
                   str(meta.get("encoder", "?")), dict(meta.get("meta", {})))


_PATH_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
#: words that never name a path ("a face with a big smile" | "a face with a neutral expression" → big_smile)
STOP_WORDS = frozenset("a an the of with and or to in on at for by is are his her their its face person photo "
                       "picture portrait someone somebody".split())


def name_of_pair(positive: str, negative: str) -> str:
    """A path name from its sentences: the positive's own words (not in the negative), lower-case."""
    words = lambda s: re.findall(r"[a-z0-9]+", s.lower())  # noqa: E731
    neg = set(words(negative))
    own = [w for w in words(positive) if w not in neg and w not in STOP_WORDS]
    name = "_".join(own or [w for w in words(positive) if w not in STOP_WORDS] or words(positive))[:64]
    return name.strip("_") or "path"


def parse_pairs(specs: list[str], names: list[str] = ()) -> tuple[tuple[str, str, str], ...]:
    """``"POSITIVE|NEGATIVE"`` specs → (name, positive, negative); the i-th name names the i-th pair,
    the rest are named from their sentences (the CLI's --pair/--as and the panel's lines)."""
    out = []
    for i, spec in enumerate(specs):
        parts = spec.split("|")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise InputError(f"bad pair {spec[:60]!r}: expected \"POSITIVE SENTENCE|NEGATIVE SENTENCE\"")
        pos, neg = parts[0].strip(), parts[1].strip()
        if _sentence_key(pos) == _sentence_key(neg):
            raise InputError(f"bad pair {spec[:60]!r}: both sentences say the same; a path needs two "
                             "contrasting sentences")
        name = names[i] if i < len(names) else name_of_pair(pos, neg)
        out.append((check_path_name(name), pos, neg))
    seen = [n for n, _, _ in out]
    if len(set(seen)) != len(seen):
        raise InputError(f"two pairs have the same name ({', '.join(seen)}); name them apart")
    sentences = [(_sentence_key(p), _sentence_key(q)) for _, p, q in out]
    for i, key in enumerate(sentences):
        if key in sentences[:i]:
            raise InputError(f"pair {i + 1} ({out[i][1][:40]!r} | {out[i][2][:40]!r}) repeats pair "
                             f"{sentences.index(key) + 1}; give each pair once")
    if not out:
        raise InputError("give at least one pair of sentences")
    return tuple(out)


def _sentence_key(sentence: str) -> str:
    """What the encoders read of a sentence: case and spacing do not change its meaning."""
    return " ".join(sentence.casefold().split())


def check_path_name(name: str) -> str:
    if not _PATH_NAME.match(name):
        raise InputError(f"invalid text path name {name[:64]!r}: lower-case letters, digits and '_', at most 64")
    return name


def _valid_unit(unit: float) -> bool:
    return math.isfinite(unit) and unit > 0


def library_file(model: str, name: str) -> Path:
    """Where a library the user trains is written."""
    check_resource_name(name, "text path library")
    check_resource_name(model, "model")
    return app_paths.data_home() / "textpaths" / model / f"{name}{SUFFIX}"


def shipped_library(model: str, name: str) -> Path | None:
    """The library of this name shipped with StyleStudio (read-only: training writes to
    :func:`library_file`, whose library of the same name hides it), if any."""
    return Resources(None, model).shipped_file("textpaths", f"{check_resource_name(name, 'text path library')}{SUFFIX}")  # type: ignore[arg-type]


def find_library(model: str, name: str) -> Path | None:
    """The user's library, else a shipped one."""
    return Resources(None, model).find_file("textpaths", f"{check_resource_name(name, 'text path library')}{SUFFIX}")  # type: ignore[arg-type]


def library_names(model: str) -> list[Path]:
    out: dict[str, Path] = {}
    for root in (app_paths.resources_dir(), app_paths.data_home()):  # the user's override shipped ones
        folder = Path(root) / "textpaths" / model
        if folder.is_dir():
            out.update({p.stem: p for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith(".")})
    return [out[k] for k in sorted(out)]


@register_resource_loader("textpaths", watch_suffix=SUFFIX)
def _load(res: Resources, name: str) -> TextPathLibrary:
    path = find_library(res.model, name)
    if path is None:
        raise InputError(f"no text path library {name!r} for model {res.model!r}; train one with "
                         f"`stylestudio textpaths train`")
    return _checked(res, TextPathLibrary.load(path), str(path))


@register_kept_reader("textpaths")
def _read_kept(res: Resources, data: bytes, where: str) -> TextPathLibrary:
    lib = _checked(res, TextPathLibrary.from_bytes(data, where), where)
    if lib.model != res.model:
        raise InputError(f"{where}: paths of model {lib.model!r}, not {res.model!r}")
    return lib


def _checked(res: Resources, lib: TextPathLibrary, where: str) -> TextPathLibrary:
    if res.generator is not None and lib.w_dim != res.generator.w_dim:
        raise InputError(f"{where}: paths for a {lib.w_dim}-d W, the model has {res.generator.w_dim}")
    return lib
