"""The one progress-and-cancel convention of the engine (no Qt).

Every long engine function takes two optional arguments:

* ``progress(message, fraction)`` — a :data:`Progress`: ``fraction`` is 0..1, or negative for
  "busy, amount unknown". It must return quickly; it may raise :class:`~stylestudio.errors.Cancelled`
  (the GUI's job context does when the user cancelled), which the long function lets through.
* ``cancel`` — a :data:`Cancel`: a callable returning True once the user wants to stop (a
  :class:`CancelToken` is one). Long functions poll it with :func:`check_cancel` between steps,
  which raises :class:`~stylestudio.errors.Cancelled`.

Before this module there were three conventions (the catalog's ``CancelFlag`` that also took a
``threading.Event``, the inversion's ``cancelled()`` callable and the GUI worker's job context);
their names stay as aliases. :func:`is_cancelled` still accepts an Event for old callers.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from ..errors import Cancelled

#: ``progress(message, fraction)``: fraction 0..1, or < 0 for "busy, unknown amount"
Progress = Callable[[str, float], None]
#: a callable returning True when the work should stop (None: never)
Cancel = Optional[Callable[[], bool]]
#: a callable returning True once the person wants a training to end now and keep what it has learnt
#: (a panel's *Finish now*; None: never). Unlike a cancel it ends the loop normally: the result is saved.
Finish = Optional[Callable[[], bool]]
#: old names (regions/catalog.py, directions/labels.py, sdist_data.py)
CancelCheck = Callable[[], bool]
CancelFlag = Any


def no_progress(message: str, fraction: float) -> None:
    """A :data:`Progress` that reports nowhere."""


class CancelToken:
    """A thread-safe cancel request: call it to ask "cancelled?", :meth:`cancel` to request a stop.

    Also answers ``is_set()`` like the :class:`threading.Event` it wraps, so code written for an
    Event keeps working.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def __call__(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        self._event.set()

    set = cancel  #: Event compatibility

    def is_set(self) -> bool:
        return self._event.is_set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self, what: str = "cancelled") -> None:
        check_cancel(self, what)


def is_cancelled(cancel: Any) -> bool:
    """True when ``cancel`` (None, a callable, or anything with ``is_set()``) asks to stop."""
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def check_cancel(cancel: Any, what: str = "cancelled") -> None:
    """Raise :class:`Cancelled` (message ``what``) when ``cancel`` asks to stop."""
    if is_cancelled(cancel):
        raise Cancelled(what)


def checking(progress: Progress | None, cancel: Any) -> Progress:
    """A :data:`Progress` that also stops the work when ``cancel`` asks, for engine functions that
    only take a progress callback (model loading, downloads)."""

    def report(message: str, fraction: float) -> None:
        check_cancel(cancel)
        if progress is not None:
            progress(message, fraction)

    return report


def scaled(progress: Progress | None, start: float, stop: float) -> Progress:
    """Map a sub-step's 0..1 onto ``start..stop`` of the whole (negative stays "busy")."""

    def report(message: str, fraction: float) -> None:
        if progress is not None:
            progress(message, fraction if fraction < 0 else start + (stop - start) * min(1.0, fraction))

    return report
