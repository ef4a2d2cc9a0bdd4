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
    lane: ClassVar[str] = "jobs"

    def title(self) -> str:
        s = self.settings
        return f"Discover {s.directions} directions ({s.method}) for {self.model} → {self.name}"

    def describe_result(self, result: tuple[Any, Path]) -> str:
        lib, path = result
        steps = lib.meta.get("steps")
        return f"{len(lib.names())} directions → {Path(path).name}" + (f" ({steps} steps)" if steps else "")


@task(Discover)
def discover_directions(session: Any, req: Discover, progress: Progress, cancel: Cancel) -> tuple[Any, Path]:
    from ..directions.builder import user_library_path
    from ..discovery.trainer import discover

    check_discovery_name(req.name)
    path = Path(req.output) if req.output is not None else user_library_path(req.model, req.name)
    m = session.model(req.model, progress=checking(progress, cancel))
    lib = discover(m.generator, req.model, req.settings, progress, cancel, req.on_update, req.strip_seconds)
    path.parent.mkdir(parents=True, exist_ok=True)
    lib.save(path)
    progress(f"saved {len(lib.names())} directions to {path}", 1.0)
    if req.output is None:
        session.install(req.model, "directions", req.name, lib)
    return lib, path
