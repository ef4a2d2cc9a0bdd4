"""Project files: one zip holding the document JSON, its arrays (.npy, no pickle) and a thumbnail.

Saving writes a temporary file beside the target and renames it over, so a crash mid-save never
destroys the previous project. Loading checks everything and turns any damage into one clear
:class:`~stylestudio.errors.InputError`.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from .document import EditDocument

PROJECT_FORMAT = "stylestudio-project"
PROJECT_VERSION = 1
SUFFIX = ".stylestudio"
MAX_MEMBER_BYTES = 1 << 30  # refuse zip bombs: no single member above 1 GiB uncompressed


def save_project(path: Path, doc: EditDocument, thumbnail: np.ndarray | None = None) -> None:
    """Atomically write ``doc`` (and an optional HxWx3 uint8 thumbnail) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body, arrays = doc.to_json()
    manifest = {"format": PROJECT_FORMAT, "format_version": PROJECT_VERSION, "arrays": sorted(arrays)}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
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
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_project(path: Path) -> EditDocument:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such project file")
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.file_size > MAX_MEMBER_BYTES:
                    raise InputError(f"{path.name}: member {info.filename} is implausibly large")
            manifest = json.loads(zf.read("manifest.json"))
            if manifest.get("format") != PROJECT_FORMAT:
                raise InputError(f"{path.name}: not a StyleStudio project")
            if int(manifest.get("format_version", 0)) > PROJECT_VERSION:
                raise InputError(f"{path.name}: saved by a newer StyleStudio (format {manifest['format_version']})")
            body = json.loads(zf.read("document.json"))
            arrays = {}
            for name in manifest.get("arrays", []):
                arrays[name] = np.load(io.BytesIO(zf.read(f"arrays/{name}.npy")), allow_pickle=False)
    except InputError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path.name}: damaged or truncated project file ({type(exc).__name__}: {exc})") from exc
    from . import edits, photo  # noqa: F401  (edit and source kinds must be registered before decoding)

    return EditDocument.from_json(body, arrays)


def project_thumbnail(path: Path) -> Image.Image | None:
    try:
        with zipfile.ZipFile(path) as zf:
            return Image.open(io.BytesIO(zf.read("thumbnail.png"))).convert("RGB")
    except (zipfile.BadZipFile, KeyError, OSError):
        return None
