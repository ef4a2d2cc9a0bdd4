"""Project files: one zip holding the document JSON, its arrays (.npy, no pickle) and a thumbnail.

Saving goes through :func:`stylestudio.safe_io.atomic_write`, so a crash mid-save never destroys
the previous project, a new project gets the user's umask, a re-saved one keeps its permissions,
a symlink keeps pointing at the (updated) project and hard links stay joined.

Loading treats the file as hostile until proven otherwise, and turns any damage into one
:class:`~stylestudio.errors.InputError` line naming the file (and the field, for the document):

- the zip's declared sizes are checked first: each JSON member, the total of all members, and
  how well they claim to compress (a zip bomb expands a thousandfold);
- encrypted members and compression methods other than stored/deflate are refused up front;
- arrays are read lazily, only those the document refers to, and each ``.npy`` header (dtype,
  shape, byte count) is checked against the limits of its kind BEFORE its data is read;
- every document field is checked for type and range (:mod:`stylestudio.engine.document`).
"""
from __future__ import annotations

import io
import json
import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

import numpy as np
from PIL import Image

from ..errors import InputError
from ..safe_io import atomic_write, os_error_message
from .document import MAX_KEPT_BYTES, EditDocument, show

PROJECT_FORMAT = "stylestudio-project"
PROJECT_VERSION = 1
SUFFIX = ".stylestudio"
MAX_MEMBER_BYTES = 1 << 30  #: no single member above 1 GiB uncompressed
MAX_TOTAL_BYTES = 1 << 30  #: nor all members together (a photo, its PTI deltas and masks fit easily)
MAX_JSON_BYTES = 16 << 20  #: manifest.json and document.json
MAX_MEMBERS = 20_000
#: Above this many uncompressed bytes, a project must not claim to compress better than
#: MAX_RATIO:1 (real projects are dominated by an already compressed photo and noisy floats).
RATIO_CHECK_ABOVE = 64 << 20
MAX_RATIO = 100
MAX_NPY_HEADER = 10_000

#: Per kind of array (the last part of its key), the most elements and dimensions it may have.
MAX_WS, MAX_W_DIM = 64, 4096  #: a latent: at most 64 W+ rows of at most 4096 values
MAX_PHOTO_FILE_BYTES = 200 << 20  #: the photo file kept in a project (its pixels are checked on decode)
MAX_DELTA_ELEMENTS = 1 << 24  #: one PTI weight delta (StyleGAN2's largest conv has 2.4 M weights)
MAX_OTHER_ELEMENTS = 1 << 20


def save_project(path: Path, doc: EditDocument, thumbnail: np.ndarray | None = None) -> None:
    """Atomically write ``doc`` (and an optional HxWx3 uint8 thumbnail) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body, arrays = doc.to_json()
    manifest = {"format": PROJECT_FORMAT, "format_version": PROJECT_VERSION, "arrays": sorted(arrays)}

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=2))
            zf.writestr("document.json", json.dumps(body, indent=2))
            for name, arr in arrays.items():
                buf = io.BytesIO()
                np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
                zf.writestr(f"arrays/{name}.npy", buf.getvalue())
            if thumbnail is not None:
                buf = io.BytesIO()
                Image.fromarray(thumbnail).save(buf, format="PNG")
                zf.writestr("thumbnail.png", buf.getvalue())

    atomic_write(path, write)


def _kind_limits(key: str, shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    """Why array ``key`` of ``shape``/``dtype`` is implausible for its kind (None: plausible)."""
    from .edits.transfer import MAX_MASK_SIDE

    n = math.prod(shape)
    owner, _, field_name = key.partition(".")
    if field_name.startswith("delta:"):  # PTI: ``source.delta:<parameter name with dots>``
        return None if n <= MAX_DELTA_ELEMENTS else f"a weight delta of {n} values"
    kind = key.rsplit(".", 1)[-1]
    if kind == "wplus":
        if n == 0 and len(shape) <= 2:
            return None  # a photo not inverted yet
        if len(shape) == 3 and shape[0] != 1:
            return f"a latent of shape {shape}: expected one face"
        if len(shape) not in (1, 2, 3) or shape[-1] > MAX_W_DIM or (len(shape) > 1 and shape[-2] > MAX_WS):
            return f"a latent of shape {shape}: expected at most [{MAX_WS}, {MAX_W_DIM}]"
        return None
    if kind == "mask":
        if len(shape) not in (2, 3) or max(shape[:2]) > MAX_MASK_SIDE or (len(shape) == 3 and shape[2] > 4):
            return f"a mask of shape {shape}: painted masks are at most {MAX_MASK_SIDE}×{MAX_MASK_SIDE}"
        return None
    if kind == "photo_bytes":
        if dtype != np.uint8 or n > MAX_PHOTO_FILE_BYTES:
            return f"a photo of {n} {dtype} values: expected at most {MAX_PHOTO_FILE_BYTES >> 20} MiB of bytes"
        return None
    if kind == "data" and owner.startswith("library"):  # a kept slider library's file bytes
        if dtype != np.uint8 or len(shape) != 1 or n > MAX_KEPT_BYTES:
            return f"a library copy of {n} {dtype} values: expected at most {MAX_KEPT_BYTES >> 20} MiB of bytes"
        return None
    if kind in ("landmarks", "quad"):
        return None if n <= 1000 else f"{kind} of shape {shape}"
    return None if n <= MAX_OTHER_ELEMENTS else f"an array of {n} values"


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    """One ``.npy`` member: header checked (dtype, shape, byte count, kind limits) before the data is read."""
    member = info.filename
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_NPY_HEADER)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_NPY_HEADER)
            else:
                raise ValueError(f"unknown .npy version {version}")
        except (ValueError, SyntaxError, TypeError) as exc:
            raise InputError(f"{member}: not a readable .npy array ({exc})") from None
        if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf" or dtype.itemsize > 8:
            raise InputError(f"{member}: expected a numeric array, got dtype {dtype}")
        if any(not isinstance(s, int) or s < 0 for s in shape) or len(shape) > 8:
            raise InputError(f"{member}: bad array shape {shape}")
        why = _kind_limits(key, tuple(shape), dtype)
        if why is not None:
            raise InputError(f"{member}: holds {why}, which no project needs")
        nbytes = math.prod(shape) * dtype.itemsize
        header = f.tell()
        if header + nbytes != info.file_size:
            raise InputError(f"{member}: its header says {nbytes} bytes of data, the member holds "
                             f"{info.file_size - header}")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise InputError(f"{member}: truncated")
    arr = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
    return arr


class _ProjectArrays(Mapping):
    """The manifest's arrays, each read (and checked) only when the document asks for it."""

    def __init__(self, zf: zipfile.ZipFile, names: list[str]) -> None:
        self._zf = zf
        self._names = dict.fromkeys(names)
        self._loaded: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._names:
            raise KeyError(key)
        if key not in self._loaded:
            member = f"arrays/{key}.npy"
            try:
                info = self._zf.getinfo(member)
            except KeyError:
                raise InputError(f"{member} is listed in the manifest but missing") from None
            self._loaded[key] = _read_npy(self._zf, info, key)
        return self._loaded[key]

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _check_zip(zf: zipfile.ZipFile) -> None:
    """Declared sizes, encryption and compression methods, before anything is decompressed."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise InputError(f"holds {len(infos)} members; a project has a handful")
    total = compressed = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise InputError(f"member {info.filename} is encrypted; StyleStudio projects never are")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InputError(f"member {info.filename} uses compression method {info.compress_type}; "
                             "StyleStudio projects use deflate")
        if info.file_size > MAX_MEMBER_BYTES:
            raise InputError(f"member {info.filename} is implausibly large ({info.file_size} bytes)")
        total += info.file_size
        compressed += info.compress_size
    _check_local_headers(zf, infos)
    if total > MAX_TOTAL_BYTES:
        raise InputError(f"its members add up to {total} bytes uncompressed; the limit is {MAX_TOTAL_BYTES}")
    if total > RATIO_CHECK_ABOVE and total > MAX_RATIO * max(compressed, 1):
        raise InputError(f"its members claim to expand {total // max(compressed, 1)}-fold; refusing a zip bomb")


def _check_local_headers(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Each member's local header must agree with the central directory on encryption and method:
    zipfile trusts the central one, so a member encrypted or compressed otherwise only locally would
    be read as garbage (or raise errors nobody asked for)."""
    fp = zf.fp
    if fp is None:
        return
    for info in infos:
        fp.seek(info.header_offset)
        head = fp.read(30)
        if len(head) < 30 or head[:4] != b"PK\x03\x04":
            raise InputError(f"member {info.filename}: its local header is missing or damaged")
        flags, method = struct.unpack_from("<HH", head, 6)
        if flags & 0x41:
            raise InputError(f"member {info.filename} is encrypted; StyleStudio projects never are")
        if method != info.compress_type:
            raise InputError(f"member {info.filename} uses compression method {method}; "
                             "StyleStudio projects use deflate")


def _read_json(zf: zipfile.ZipFile, member: str) -> Any:
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise InputError(f"{member} is missing (not a StyleStudio project, or damaged)") from None
    if info.file_size > MAX_JSON_BYTES:
        raise InputError(f"{member} is implausibly large ({info.file_size} bytes)")
    raw = zf.read(info)
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise InputError(f"{member} is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{member} is not valid JSON ({exc})") from None


def _check_manifest(manifest: Any) -> list[str]:
    """The manifest's array names; refuses another format or a newer version with a clear line."""
    if not isinstance(manifest, dict):
        raise InputError(f"manifest.json: expected an object, got {show(manifest)} (not a StyleStudio project)")
    if manifest.get("format") != PROJECT_FORMAT:
        raise InputError("not a StyleStudio project")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, (int, float)) or not math.isfinite(version) \
            or not float(version).is_integer():
        raise InputError(f"manifest.json: format_version: expected a whole number, got {show(version)}")
    if version > PROJECT_VERSION:
        raise InputError(f"saved by a newer StyleStudio (project format {int(version)}; this version reads up "
                         f"to {PROJECT_VERSION}): update StyleStudio to open it")
    if version < 1:
        raise InputError(f"manifest.json: format_version: unknown project format {int(version)}")
    names = manifest.get("arrays", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and 0 < len(n) <= 300 for n in names):
        raise InputError("manifest.json: arrays: expected a list of array names")
    if len(names) > MAX_MEMBERS:
        raise InputError(f"manifest.json: arrays: {len(names)} arrays; a project has a handful")
    return names


def load_project(path: Path) -> EditDocument:
    """The document in project ``path``; any damage is one :class:`InputError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such project file")
    from . import edits, photo  # noqa: F401  (edit and source kinds must be registered before decoding)

    try:
        with zipfile.ZipFile(path) as zf:
            _check_zip(zf)
            names = _check_manifest(_read_json(zf, "manifest.json"))
            body = _read_json(zf, "document.json")
            return EditDocument.from_json(body, _ProjectArrays(zf, names))
    except InputError as exc:
        raise InputError(f"{path.name}: {exc}") from None
    except RecursionError:
        raise InputError(f"{path.name}: the document is nested too deeply") from None
    except NotImplementedError as exc:
        raise InputError(f"{path.name}: uses a zip feature StyleStudio does not read ({exc})") from None
    except RuntimeError as exc:  # zipfile: "File … is encrypted, password required"
        raise InputError(f"{path.name}: unreadable project ({exc})") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, KeyError, ValueError, EOFError,
            OverflowError, MemoryError) as exc:
        raise InputError(f"{path.name}: damaged or truncated project file ({type(exc).__name__}: {exc})") from None
    except OSError as exc:  # unreadable: permissions, an I/O error
        raise InputError(os_error_message(path, exc)) from None


def project_thumbnail(path: Path) -> Image.Image | None:
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("thumbnail.png")
            if info.flag_bits & 0x1 or info.file_size > 16 << 20:
                return None
            return Image.open(io.BytesIO(zf.read(info))).convert("RGB")
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, RuntimeError, NotImplementedError, EOFError,
            zlib.error, Image.DecompressionBombError):
        return None
