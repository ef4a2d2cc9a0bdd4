"""The earlier names of renamed sliders, kept inside their library (direction or text path library).

Projects, recipes and open pictures name a slider; renaming it in its library must not break them.
A library therefore keeps a table ``earlier name → name now`` in its ``meta["renamed"]`` (so it is
saved with it), and every lookup goes through :func:`canonical`. The table comes from a file a user
may have edited by hand, so a bad table reads as empty and a cycle ends instead of looping.
"""
from __future__ import annotations

import re
from typing import Any, Container

from ..errors import InputError

MAX_KEY = 64  #: the longest slider name


def normal(text: str) -> str:
    """What a person typed as a slider's name, as the name it is: "Hair volume" → ``hair_volume``."""
    return re.sub(r"[^0-9a-z]+", "_", str(text).strip().casefold()).strip("_")


def counted(n: int, what: str) -> str:
    """ "1 path", "3 paths": a number of things in a message."""
    return f"{n} {what}{'' if n == 1 else 's'}"


def holding(names: list[str], what: str, shown: int = 6) -> str:
    """A library's sliders in a few words, for a question or a note: "3 directions: jaw, hair_volume, direction_3"."""
    more = f", … ({len(names) - shown} more)" if len(names) > shown else ""
    return f"{counted(len(names), what)}: {', '.join(names[:shown])}{more}"


def slider_key(text: str, what: str) -> str:
    """:func:`normal`, refusing a name with no letters or digits or longer than :data:`MAX_KEY`
    (``what``: "direction", "text path", for the message)."""
    key = normal(text)
    if not key:
        raise InputError(f"{text!r} cannot name a {what}: use letters or digits")
    if len(key) > MAX_KEY:
        raise InputError(f"a {what} name has at most {MAX_KEY} characters, got {len(key)}")
    return key


def table(meta: dict[str, Any]) -> dict[str, str]:
    """The library's table (empty when it has none or it was hand-edited into something else)."""
    t = meta.get("renamed")
    return t if isinstance(t, dict) else {}


def canonical(meta: dict[str, Any], name: str, present: Container[str]) -> str:
    """``name`` itself, or what the slider once called ``name`` is called now (``present``: the names now)."""
    if name in present:  # every lookup of a render: no detour through the earlier names
        return name
    t = table(meta)
    for _ in range(len(t) + 1):
        if name in present or name not in t:
            return name
        name = str(t[name])
    return name


def former_names(meta: dict[str, Any], name: str) -> list[str]:
    """What slider ``name`` was called before (a slider widget still finds edits made then)."""
    return [was for was, now in table(meta).items() if now == name]


def record(meta: dict[str, Any], old: str, new: str) -> None:
    """Slider ``old`` is now called ``new``: what named ``old`` (or any of its earlier names) finds it."""
    if not isinstance(meta.get("renamed"), dict):
        meta["renamed"] = {}
    t = meta["renamed"]
    for was, now in list(t.items()):
        if now == old:
            t[was] = new
    if new != old:
        t[old] = new
    t.pop(new, None)


def forget(meta: dict[str, Any], name: str) -> None:
    """Slider ``name`` was removed: its earlier names go with it."""
    t = table(meta)
    for was in [was for was, now in t.items() if now == name]:
        del t[was]
