"""Discovering directions (ContraFeat, or the PCA / SeFa baselines) as one long job whose result
is saved as a direction library of the model in the user data folder."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..discovery.trainer import DiscoverySettings, DiscoveryUpdate
from ..progress import Cancel, Progress, checking
from . import task

#: library names that belong to other machinery and are never overwritten by a discovery
RESERVED_LIBRARIES = ("attributes", "sefa", "custom")


def check_discovery_name(name: object) -> str:
    """The name a discovered library is saved under (a resource name, not a reserved one)."""
    from ...errors import InputError
    from ..directions.library import check_library_name

    checked = check_library_name(name)
    if checked in RESERVED_LIBRARIES:
        raise InputError(f"the direction library name {checked!r} is taken by StyleStudio; choose another")
    return checked


@dataclass(frozen=True)
class Discover:
    """Find ``settings.directions`` directions of ``model`` and save them as library ``name``
    (``direction_1`` … ``direction_K``). The result is ``(library, path)``.

    ``on_update`` (not part of the request's identity) receives every
    :class:`~stylestudio.engine.discovery.trainer.DiscoveryUpdate` in the task's thread (the loss
    curve and, every ``strip_seconds``, the direction strips).
    """

    model: str
    name: str
    settings: DiscoverySettings = DiscoverySettings()
    output: Path | None = None  #: None: the user data folder, where every project finds it
    strip_seconds: float = 180.0
    on_update: Callable[[DiscoveryUpdate], None] | None = field(default=None, compare=False, repr=False)
    #: True once the person wants it to end now and keep what it found (*Finish now*)
    finish: Callable[[], bool] | None = field(default=None, compare=False, repr=False)
    lane: ClassVar[str] = "long"

    def title(self) -> str:
        s = self.settings
        return f"Discover {s.directions} directions ({s.method}) for {self.model} → {self.name}"

    def describe_result(self, result: tuple[Any, Path]) -> str:
        lib, path = result
        steps = lib.meta.get("steps")
        return f"{len(lib.names())} directions → {Path(path).name}" + (f" ({steps} steps)" if steps else "")


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


@task(Discover)
def discover_directions(session: Any, req: Discover, progress: Progress, cancel: Cancel) -> tuple[Any, Path]:
    from ..directions.builder import user_library_path
    from ..discovery.trainer import discover

    check_discovery_name(req.name)
    if req.output is None:
        from ..discovery.store import replaced_by_discovery

        replaced_by_discovery(req.model, req.name)  # only a discovered library is ever replaced
    path = Path(req.output) if req.output is not None else user_library_path(req.model, req.name)
    m = session.model(req.model, progress=checking(progress, cancel))
    lib = discover(m.generator, req.model, req.settings, progress, cancel, req.on_update, req.strip_seconds,
                   finish=req.finish)
    if _rank() == 0:  # under torchrun every rank holds the same directions; one writes them
        path.parent.mkdir(parents=True, exist_ok=True)
        lib.save(path)
        progress(f"saved {len(lib.names())} directions to {path}", 1.0)
    if req.output is None:
        session.install(req.model, "directions", req.name, lib)
    return lib, path


def _describe(lib: Any) -> list[dict[str, Any]]:
    return [{"name": d.name, "label": d.label, "layers": list(d.layers), "row_weights": list(d.row_weights),
             "former": lib.former_names(d.name)} for d in lib.directions.values()]


@dataclass(frozen=True)
class DiscoveredLibraries:
    """The discovered direction libraries of ``model``: ``{library: [{name, label, layers, row_weights}]}``."""

    model: str
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return f"Discovered directions of {self.model}"


@task(DiscoveredLibraries)
def discovered_libraries(session: Any, req: DiscoveredLibraries, progress: Progress, cancel: Cancel) -> dict[str, Any]:
    from ..directions.library import DirectionLibrary
    from ..discovery.store import library_paths
    from ...errors import InputError

    out: dict[str, Any] = {}
    for name, path in library_paths(req.model).items():
        try:
            lib = DirectionLibrary.load(path)
        except InputError:
            continue  # a damaged file is reported when it is used, not while listing
        if lib.kind == "discovered":
            out[name] = _describe(lib)
    return out


@dataclass(frozen=True)
class RenameDirection:
    """Rename direction ``old`` of ``library`` to ``new`` (saved in the user data folder); the result
    is the library's new description (as :class:`DiscoveredLibraries` gives it)."""

    model: str
    library: str
    old: str
    new: str
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return f"Rename {self.old} → {self.new}"


@task(RenameDirection)
def rename_direction(session: Any, req: RenameDirection, progress: Progress, cancel: Cancel) -> list[dict[str, Any]]:
    from ..directions.library import DirectionLibrary
    from ..discovery.store import rename_direction as rename

    path, _ = rename(req.model, req.library, req.old, req.new)
    lib = DirectionLibrary.load(path)
    session.install(req.model, "directions", req.library, lib)
    return _describe(lib)


@dataclass(frozen=True)
class RemoveDirection:
    """Remove direction ``name`` of ``library`` (None: delete the whole library file). The result is
    the library's remaining description ([] when it was deleted)."""

    model: str
    library: str
    name: str | None = None
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return f"Remove {self.name or 'library'} from {self.library}"


@task(RemoveDirection)
def remove_direction(session: Any, req: RemoveDirection, progress: Progress, cancel: Cancel) -> list[dict[str, Any]]:
    from ..directions.library import DirectionLibrary
    from ..discovery.store import remove_direction as remove, remove_library

    if req.name is None:
        remove_library(req.model, req.library)
        session.install(req.model, "directions", req.library, None)  # gone: every session forgets it
        return []
    lib = DirectionLibrary.load(remove(req.model, req.library, req.name))
    session.install(req.model, "directions", req.library, lib)
    return _describe(lib)
