"""Which version of a library entry a project's slider edits were saved with.

Saving stamps each direction or text path edit with a short fingerprint of exactly what it reads
(:func:`stamped`). Projects now also keep copies of those libraries and draw with them
(:mod:`.kept`), so the stamp of such a project always matches what it draws. For a project saved
before it kept copies, the edit names its library and entry only, and re-renders differently when
that entry changes (a newer StyleStudio ships a retrained ``textpaths`` or refitted ``attributes``
library, or the user retrains their own library under the same name): opening compares the stamp
with the installed entry (:func:`changed_entries`), so the user is told which sliders now draw
something else instead of finding a different face. Projects saved before stamps existed have
none and are never reported.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Mapping

import numpy as np

from ..document import EditDocument, KeptLibrary
from .direction import DirectionEdit
from .path import PathEdit

VERSION_CHARS = 16  #: hex digits kept of the SHA-256: a change, not an attacker, is what is detected


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:VERSION_CHARS]


def fingerprint_in(lib: Any, edit: DirectionEdit | PathEdit, num_ws: int) -> str:
    """The fingerprint of what ``edit`` reads from library ``lib`` (a direction library or a text path one)."""
    if isinstance(edit, DirectionEdit):
        # the W+ offset of one unit, conditioning on ``keep`` included: vector, unit, rows and weights
        delta = lib.delta(edit.name, 1.0, num_ws, edit.keep)
        return digest("direction", np.ascontiguousarray(delta.numpy(), np.float32).tobytes())
    return lib.fingerprint(edit.name)


def entry_version(edit: DirectionEdit | PathEdit, resources: Any, num_ws: int,
                  kept: tuple[KeptLibrary, ...] = ()) -> str:
    """The fingerprint of what ``edit`` reads from the library it draws with now (installed, or one
    of the project's ``kept`` copies, :mod:`.kept`; raises as rendering would when neither has it)."""
    from .kept import resolve

    return fingerprint_in(resolve(edit, resources, kept)[0], edit, num_ws)


def current_versions(doc: EditDocument, resources: Any, num_ws: int) -> dict[str, str]:
    """Edit id → fingerprint of its entry now, for the document's direction and text path edits
    (an edit whose library or entry cannot be read is left out: rendering reports that)."""
    out = {}
    for e in doc.edits:
        if isinstance(e, (DirectionEdit, PathEdit)):
            try:
                out[e.id] = entry_version(e, resources, num_ws, doc.libraries)
            except Exception:  # noqa: BLE001  (a missing entry is the renderer's one-line error)
                continue
    return out


def stamped(doc: EditDocument, versions: Mapping[str, str]) -> EditDocument:
    """``doc`` with each library edit carrying the version it renders with (edits not in
    ``versions`` keep the stamp they have)."""
    edits, changed = [], False
    for e in doc.edits:
        if isinstance(e, (DirectionEdit, PathEdit)) and e.id in versions and e.version != versions[e.id]:
            e, changed = dataclasses.replace(e, version=versions[e.id]), True
        edits.append(e)
    return dataclasses.replace(doc, edits=tuple(edits)) if changed else doc


def phrase(edit: DirectionEdit | PathEdit) -> str:
    """How a message names a slider: "smile (text path of library textpaths)"."""
    return f"{edit.name} ({'text path' if isinstance(edit, PathEdit) else 'slider'} of library {edit.library})"


def listing(phrases: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def changed_entries(doc: EditDocument, versions: Mapping[str, str]) -> list[str]:
    """One phrase per stamped edit whose entry is no longer the one it was saved with, e.g.
    "smile (text path of library textpaths)"."""
    return list(dict.fromkeys(phrase(e) for e in doc.edits if isinstance(e, (DirectionEdit, PathEdit)) and e.version
                              and e.id in versions and versions[e.id] != e.version))


def changed_message(name: str, phrases: list[str]) -> str:
    """The one line a user reads when opening a project whose sliders changed."""
    them = listing(phrases)
    return (f"{name}: {them} {'has' if len(phrases) == 1 else 'have'} changed since the project was saved. The "
            f"picture is drawn with the installed {'version' if len(phrases) == 1 else 'versions'} and may differ "
            f"from the saved one; saving records {'it' if len(phrases) == 1 else 'them'}.")
