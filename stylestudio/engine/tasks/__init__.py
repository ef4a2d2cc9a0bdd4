"""Every long engine operation as one frozen request and one ``run`` function (no Qt).

A request is a frozen dataclass saying *what* to do (model name, settings, paths); the function
registered for its type with :func:`task` does it::

    result = run(session, BuildCatalog(model="tiny32", k=6, samples=16), progress, cancel)

``session`` is an :class:`~stylestudio.engine.session.Session`; ``progress`` and ``cancel``
follow :mod:`stylestudio.engine.progress`. The CLI builds requests from its arguments and runs
them with a printing progress; the GUI builds the same requests and submits them to its job
thread (``EngineClient.submit_task``), which shows them in the Jobs panel. Neither runs engine
code itself.

``lane`` (a class attribute of each request) tells the GUI where it runs: ``"jobs"`` for work of
seconds to a minute on the job thread with its own model copy (never blocking renders: export,
fit a region, invert a photo), ``"long"`` for work of minutes to hours (training, discovery,
metrics, a folder of photos) on a thread of its own, so an export or a region fit never waits
behind a training run; ``"render"`` for quick look-ups that must see the render session's state
(a region map, a thumbnail).
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from ..progress import Cancel, Progress, check_cancel, no_progress

R = TypeVar("R")

#: request type → run function
TASKS: dict[type, Callable[..., Any]] = {}


def task(request_type: type) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Register ``fn(session, request, progress, cancel)`` as the runner of ``request_type``."""

    def register(fn: Callable[..., R]) -> Callable[..., R]:
        TASKS[request_type] = fn
        return fn

    return register


def run(session: Any, request: Any, progress: Progress | None = None, cancel: Cancel = None) -> Any:
    """Run ``request`` in ``session`` (in the calling thread)."""
    _load_builtin()
    try:
        fn = TASKS[type(request)]
    except KeyError:
        raise TypeError(f"no task runs a {type(request).__name__}") from None
    check_cancel(cancel)
    return fn(session, request, progress or no_progress, cancel)


def title(request: Any) -> str:
    """What the Jobs panel calls this request."""
    t = getattr(request, "title", None)
    return t() if callable(t) else type(request).__name__


LANES = ("render", "jobs", "long")


def lane(request: Any) -> str:
    return getattr(request, "lane", "jobs")


def describe_result(request: Any, result: Any) -> str:
    """One line about a finished request's result, for the Jobs panel: the request's
    ``describe_result``, else a result's own ``line()`` (metrics, batches), else "done"."""
    d = getattr(request, "describe_result", None)
    if callable(d):
        return d(result)
    line = getattr(result, "line", None)
    return line() if callable(line) else "done"


def _load_builtin() -> None:
    from . import catalog, directions, discover, export, faces, models, photo, regions  # noqa: F401  (each registers its tasks)


#: request name → the module that defines it. Imported on first use (``tasks.BuildCatalog``,
#: ``from ..tasks import BuildCatalog``) rather than here: each of those modules imports this
#: package for :func:`task`, so importing them here would make an import cycle (tests/test_layering.py)
_REQUESTS = {"BuildCatalog": "catalog", "CatalogInfo": "catalog", "ReferenceThumbnail": "catalog",
             "RegionMap": "catalog", "BuildDirections": "directions", "SliderFromExamples": "directions",
             "CopyPicture": "export", "ExportImage": "export", "PreviewExport": "export", "FaceThumbnails": "faces",
             "FindFaces": "photo",
             "InvertPhoto": "photo", "FitRegion": "regions", "Discover": "discover",
             "DiscoveredLibraries": "discover", "RenameDirection": "discover", "RemoveDirection": "discover",
             "ImportCheckpoint": "models", "InstallProjectLibraries": "directions"}


def __getattr__(name: str) -> Any:
    module = _REQUESTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = ["TASKS", "task", "run", "title", "lane", "describe_result", "BuildCatalog", "CatalogInfo",
           "ReferenceThumbnail", "RegionMap", "BuildDirections", "SliderFromExamples", "CopyPicture",
           "ExportImage", "PreviewExport", "FaceThumbnails", "FindFaces", "InvertPhoto", "FitRegion",
           "Discover", "DiscoveredLibraries", "RenameDirection", "RemoveDirection", "InstallProjectLibraries"]
