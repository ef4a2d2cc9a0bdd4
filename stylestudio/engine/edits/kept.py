"""Copies of the slider libraries a project's sliders use, kept inside the project.

A direction or text path edit names its library, and that library lives in the user's data
folder (or ships with StyleStudio). Without a copy, removing a discovered library, renaming a path
away, or opening the project on another computer leaves a project that cannot be drawn. Saving
therefore keeps, beside the document, the bytes of every library its sliders read (a text path
library: only the paths used, bit-for-bit; a direction library: whole, because holding other
attributes still reads their directions). A slider the project keeps a copy of draws with that
copy (:meth:`~..resources.Resources.library`), so a project reopens exactly as it was saved
whatever is installed now; the user is told where the installed library would draw otherwise or
not at all, and *Use Installed Sliders* (``--installed-sliders``) lets go of the copies that
differ. Sliders added since draw with the installed library, and the next save keeps it.

A picture being edited, saved or not, is just as safe: when a library its sliders use is removed
or retrained while it is open, the session draws those sliders with the version it drew before
(:meth:`~..resources.Resources.library`), as a copy that the next save keeps.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ...errors import InputError
from ..document import EditDocument, KeptLibrary
from .direction import DirectionEdit
from .path import PathEdit
from .versions import fingerprint_in, listing, phrase

INSTALLED, NOT_INSTALLED, AS_SAVED = "installed", "not installed", "as saved"
#: the library is installed but lacks the entry (renamed away, removed): installing the copy would overwrite it
ENTRY_MISSING = "entry missing"
SLIDER_KINDS = ("directions", "textpaths")  #: the kinds of library a slider edit reads (:func:`kind_of`)
#: libraries derived from the model itself: always available, never copied
DERIVED = {("directions", "sefa")}

SliderEdit = DirectionEdit | PathEdit


def kind_of(edit: SliderEdit) -> str:
    return "textpaths" if isinstance(edit, PathEdit) else "directions"


def slider_edits(doc: EditDocument) -> list[SliderEdit]:
    return [e for e in doc.edits if isinstance(e, (DirectionEdit, PathEdit))]


def resolve(edit: SliderEdit, resources: Any, kept: tuple[KeptLibrary, ...]) -> tuple[Any, KeptLibrary | None]:
    """The library ``edit`` draws with, and the project's copy it is (None: the installed library)."""
    if isinstance(edit, PathEdit):
        from ..text import library  # noqa: F401  (registers the "textpaths" loader and reader)
    return resources.library(kind_of(edit), edit.library, edit.name, kept)


def installed_differs(edit: SliderEdit, drawn: Any, copy: KeptLibrary, resources: Any, version: str = "") -> str:
    """For an edit drawn from ``copy`` (read as ``drawn``): NOT_INSTALLED (no such library here),
    ENTRY_MISSING (the library lacks the entry), AS_SAVED (the installed entry is another version)
    or INSTALLED (the same). ``version``: the drawn entry's fingerprint
    when already known. Every final frame asks, so the usual answer (the copy is byte for byte what
    the installed library would be copied as) is found without fingerprinting."""
    kind = kind_of(edit)
    try:
        installed = resources.get(kind, edit.library)
    except InputError:
        return NOT_INSTALLED
    if edit.name not in installed:
        return ENTRY_MISSING
    try:
        entries = set(drawn.names()) if kind == "textpaths" else set()
        if _copy_of(resources, kind, edit.library, installed, entries).data == copy.data:
            return INSTALLED
    except InputError:  # the copy holds paths the installed library lacks: compare the entry itself
        pass
    num_ws = resources.generator.num_ws
    version = version or fingerprint_in(drawn, edit, num_ws)
    return INSTALLED if fingerprint_in(installed, edit, num_ws) == version else AS_SAVED


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


def drawn_from_copies(doc: EditDocument, resources: Any, versions: dict[str, str] | None = None) -> dict[str, str]:
    """Edit id → NOT_INSTALLED, ENTRY_MISSING or AS_SAVED, for the sliders of ``doc`` drawn from its own copies
    that the installed libraries would draw otherwise (or not at all). ``versions``: the drawn
    entries' fingerprints when already known (:func:`.versions.current_versions`)."""
    out = {}
    for e in slider_edits(doc):
        try:
            lib, copy = resolve(e, resources, doc.libraries)
            known = (versions or {}).get(e.id, "")
            why = INSTALLED if copy is None else installed_differs(e, lib, copy, resources, known)
        except Exception:  # noqa: BLE001  (drawing it reports the error)
            continue
        if why != INSTALLED:
            out[e.id] = why
    return out


def use_installed(doc: EditDocument, drawn: dict[str, str]) -> EditDocument:
    """``doc`` drawing with the installed libraries where its copies are another version of them
    (``drawn``: :func:`drawn_from_copies`): those copies and their sliders' stamps are let go, so
    the installed entries are drawn and the next save keeps and stamps them instead. A library some
    slider finds only in its copy keeps it."""
    edits = {e.id: e for e in slider_edits(doc)}
    libs = {(kind_of(edits[i]), edits[i].library) for i, why in drawn.items() if why == AS_SAVED and i in edits}
    libs -= {(kind_of(edits[i]), edits[i].library) for i, why in drawn.items()
             if why in (NOT_INSTALLED, ENTRY_MISSING) and i in edits}
    kept = tuple(k for k in doc.libraries if (k.kind, k.name) not in libs)
    if len(kept) == len(doc.libraries):
        return doc
    # their stamps named the copies' versions: forgotten, so nothing reports the installed ones as changed
    new = tuple(dataclasses.replace(e, version="") if e.id in edits and (kind_of(e), e.library) in libs
                else e for e in doc.edits)
    return dataclasses.replace(doc, libraries=kept, edits=new)


def copies_messages(name: str, doc: EditDocument, drawn: dict[str, str], remedy: str = "Edit ▸ Use Installed Sliders",
                    install: str = " (Edit ▸ Install the Project's Sliders adds a missing library to this computer)"
                    ) -> list[str]:
    """The lines a user reads when a project draws sliders from its own copies (none: nothing to say);
    ``remedy``: how this user draws the installed versions instead, ``install``: how they install a
    missing library (the menu, or the CLI's flag; "" where there is none)."""
    lines = []
    for why, text in ((NOT_INSTALLED, "{them} {is_} not installed here (library removed); the project draws {it} "
                                      "with the {copy} it keeps{install}."),
                      (ENTRY_MISSING, "{them} {is_} not installed here (entry renamed or removed from the installed "
                                      "library); the project draws {it} with the {copy} it keeps."),
                      (AS_SAVED, "{them} {has} changed in the installed library since the project was saved; the "
                                 "project draws {it} as saved, with the {copy} it keeps ({remedy} draws the "
                                 "installed {version}).")):
        phrases = list(dict.fromkeys(phrase(e) for e in slider_edits(doc) if drawn.get(e.id) == why))
        if not phrases:
            continue
        one = len(phrases) == 1
        lines.append(f"{name}: " + text.format(them=listing(phrases), is_="is" if one else "are", has="has" if one else "have",
                                               it="it" if one else "them", copy="copy" if one else "copies",
                                               version="version" if one else "versions", remedy=remedy,
                                               install=install))
    return lines


def no_longer_installed(doc: EditDocument, ids: set[str]) -> str:
    """The line a user reads when sliders of the open picture (edit ``ids``) lost their installed
    library entry while it was open, e.g. a direction deleted in the Discover panel."""
    phrases = list(dict.fromkeys(phrase(e) for e in slider_edits(doc) if e.id in ids))
    one = len(phrases) == 1
    return (f"{listing(phrases)} {'is' if one else 'are'} no longer installed; the picture keeps drawing "
            f"{'it' if one else 'them'} as before, and saving keeps a copy in the project.")


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


def install_missing(doc: EditDocument, resources: Any) -> list[tuple[str, str, Any]]:
    """Install the libraries ``doc`` keeps copies of and this computer lacks entirely, into the
    user's data folder, so their sliders appear in the panels and every project can use them.
    Returns (kind, name, library) of each one installed. A library that is installed, even one
    that lacks an entry the project uses, is never overwritten."""
    from ...safe_io import atomic_write_bytes
    from ..directions.builder import user_library_path
    from ..text.library import library_file

    done: list[tuple[str, str, Any]] = []
    seen = set(DERIVED)
    for copy in doc.libraries:
        if (copy.kind, copy.name) in seen:
            continue
        seen.add((copy.kind, copy.name))
        try:
            resources.get(copy.kind, copy.name)
            continue  # installed: the user's own, whatever it holds
        except InputError:
            pass
        lib = resources.kept(copy)  # checked before anything is written
        path = library_file(resources.model, copy.name) if copy.kind == "textpaths" \
            else user_library_path(resources.model, copy.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, copy.data)
        resources.forget(copy.kind, copy.name)
        done.append((copy.kind, copy.name, lib))
    return done
