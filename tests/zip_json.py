"""Hand-edit the JSON header inside a zipped library file (the damaged-file tests of direction and text
path libraries): copy ``src`` to ``dst`` with ``edit`` applied to the parsed ``member``."""
from __future__ import annotations

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
