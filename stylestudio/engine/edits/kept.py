"""Copies of the slider libraries a project's sliders use, kept inside the project.

A direction or text path edit names its library, and that library lives in the user's data
folder (or ships with StyleStudio). Without a copy, removing a discovered library, renaming a path
away, or opening the project on another computer leaves a project that cannot be drawn. Saving
therefore keeps, beside the document, the bytes of every library its sliders read (a text path
library: only the paths used, bit-for-bit; a direction library: whole, because holding other
attributes still reads their directions). Drawing prefers the installed library and falls back to
the copy only where the installed one lacks the entry (:meth:`~..resources.Resources.library`);
that an installed entry *changed* is reported by :mod:`.versions`, not overridden.
"""
from __future__ import annotations

from typing import Any

from ...errors import InputError
from ..document import EditDocument, KeptLibrary
from .direction import DirectionEdit
from .path import PathEdit

#: libraries derived from the model itself: always available, never copied
DERIVED = {("directions", "sefa")}

SliderEdit = DirectionEdit | PathEdit


def kind_of(edit: SliderEdit) -> str:
    return "textpaths" if isinstance(edit, PathEdit) else "directions"


def slider_edits(doc: EditDocument) -> list[SliderEdit]:
    return [e for e in doc.edits if isinstance(e, (DirectionEdit, PathEdit))]


def resolve(edit: SliderEdit, resources: Any, kept: tuple[KeptLibrary, ...]) -> tuple[Any, KeptLibrary | None]:
    """The library ``edit`` draws with and the kept copy it came from (None: the installed one)."""
    if isinstance(edit, PathEdit):
        from ..text import library  # noqa: F401  (registers the "textpaths" loader and reader)
    return resources.library(kind_of(edit), edit.library, edit.name, kept)


def installed_or_kept(resources: Any, doc: EditDocument, kind: str, name: str) -> Any:
    """Library ``name`` as the user picks sliders from it: the installed one, else the document's
    copy (the CLI can still move the sliders of a project whose library is not installed here)."""
    if kind == "textpaths":
        from ..text import library  # noqa: F401  (registers the "textpaths" loader and reader)
    try:
        return resources.get(kind, name)
    except InputError:
        copy = next((k for k in doc.libraries if (k.kind, k.name) == (kind, name)), None)
        if copy is None:
            raise
        return resources.kept(copy)


def drawn_from_copies(doc: EditDocument, resources: Any) -> list[str]:
    """One phrase per slider drawn from the project's copy, e.g. "direction_1 (slider of library mine)"."""
    out = []
    for e in slider_edits(doc):
        try:
            _, copy = resolve(e, resources, doc.libraries)
        except Exception:  # noqa: BLE001  (drawing it reports the error)
            continue
        if copy is not None:
            phrase = f"{e.name} ({'text path' if isinstance(e, PathEdit) else 'slider'} of library {e.library})"
            if phrase not in out:
                out.append(phrase)
    return out


def copies_message(name: str, phrases: list[str]) -> str:
    """The one line a user reads when a project draws sliders from its own copies."""
    one = len(phrases) == 1
    them = phrases[0] if one else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return (f"{name}: {them} {'is' if one else 'are'} not installed here (library removed, or entry renamed "
            f"or removed); the project draws {'it' if one else 'them'} with the {'copy' if one else 'copies'} "
            f"it keeps.")


def copies_to_keep(doc: EditDocument, resources: Any) -> tuple[KeptLibrary, ...]:
    """What a save of ``doc`` keeps: for each library its sliders use, the copy they draw with.

    Installed libraries are copied as they are now (text paths: only the used paths); copies the
    project already keeps stay as they are. A slider that cannot be drawn at all keeps whatever
    copies of its library the project had, so saving never throws one away.
    """
    installed: dict[tuple[str, str], tuple[Any, set[str]]] = {}
    out: dict[str, KeptLibrary] = {}
    for e in slider_edits(doc):
        key = (kind_of(e), e.library)
        if key in DERIVED:
            continue
        try:
            lib, copy = resolve(e, resources, doc.libraries)
        except Exception:  # noqa: BLE001  (not drawable: keep what the project had of it)
            out.update({k.digest: k for k in doc.libraries if (k.kind, k.name) == key})
            continue
        if copy is not None:
            out[copy.digest] = copy
        else:
            installed.setdefault(key, (lib, set()))[1].add(e.name)
    for (kind, name), (lib, entries) in installed.items():
        copy = _copy_of(resources, kind, name, lib, entries)
        out[copy.digest] = copy
    return tuple(out.values())


def _copy_of(resources: Any, kind: str, name: str, lib: Any, entries: set[str]) -> KeptLibrary:
    """A copy of installed library ``lib`` (cached while the library object and the entries are the same)."""
    key = ("copy:" + kind, f"{name}\0{chr(0).join(sorted(entries))}")
    cached = resources.cached(*key)
    if cached is not None and cached[0] is lib:
        return cached[1]
    data = lib.subset(sorted(entries)).to_bytes() if kind == "textpaths" else lib.to_bytes()
    copy = KeptLibrary(kind, name, data)
    resources.put(*key, (lib, copy))
    return copy


def with_copies(doc: EditDocument, copies: tuple[KeptLibrary, ...]) -> EditDocument:
    """``doc`` keeping ``copies`` (and, of the copies it had, those of libraries ``copies`` does not
    cover and its sliders still name: a copy is dropped only when a newer one replaces it or no
    slider uses its library)."""
    import dataclasses

    covered = {(k.kind, k.name) for k in copies}
    used = {(kind_of(e), e.library) for e in slider_edits(doc)}
    keep = {k.digest: k for k in copies if (k.kind, k.name) in used}
    for k in doc.libraries:
        if (k.kind, k.name) in used and (k.kind, k.name) not in covered:
            keep.setdefault(k.digest, k)
    new = tuple(keep.values())
    if [k.digest for k in new] == [k.digest for k in doc.libraries]:
        return doc
    return dataclasses.replace(doc, libraries=new)
