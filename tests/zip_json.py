"""Zips for the damaged-file tests: hand-edit the JSON inside a zipped library or project (copy ``src``
to ``dst`` with ``edit`` applied to the parsed ``member``), or build a zip from members."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Callable


def edit_zip_json(src: Path, dst: Path, edit: Callable[[Any], None], member: str = "library.json") -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == member:
                meta = json.loads(data)
                edit(meta)
                data = json.dumps(meta).encode()
            zout.writestr(item, data)
    return dst


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A deflated zip holding ``members`` (name → content)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
