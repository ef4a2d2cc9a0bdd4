"""Editing panels: a registry the main window builds its dock widgets from.

Adding a panel takes one call, anywhere that is imported before the window is built (e.g. at
the bottom of the module defining the panel, plus an import in :func:`builtin_panels`)::

    from stylestudio.app.panels import PanelSpec, register_panel

    register_panel(PanelSpec("regions", "Regions", lambda ctx: RegionsPanel(ctx), area="right", order=40))

The factory receives an :class:`~stylestudio.app.context.EditorContext` and returns a QWidget;
the window wraps it in a dock (toggle under View ▸ Panels, position remembered between runs).

A slider panel for a direction library is one line, using the generic slider machinery of
:mod:`.sliders` (one slider per direction; drags are merged undo steps, previews while dragging,
final frame on release; the panel says so when the current model has no such library)::

    register_slider_library("interfacegan", "Attributes", order=20)

A library is whatever the engine's ``"directions"`` resource loader finds under that name for
the current model (``sefa`` is computed for any model; others are ``.ssdir`` files in the data
folder or ``resources/directions/<model>/``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from ..context import EditorContext

AREAS = ("left", "right", "bottom")


@dataclass(frozen=True)
class PanelSpec:
    key: str  #: stable id (the dock's objectName, so saved layouts find it again)
    title: str
    factory: "Callable[[EditorContext], QWidget]"
    area: str = "right"  #: left | right | bottom
    order: int = 100  #: top-to-bottom order within an area
    icon: str = ""  #: name of an icon in resources/icons
    shortcut: str = ""  #: toggles the panel
    tab_with: str = ""  #: key of a panel to share a tabbed dock with
    visible: bool = True  #: shown on first start
    #: narrowest dock that shows the panel whole (e.g. full-length sliders in the narrow left
    #: column): the dock widens to it when the panel is brought forward; 0: any width
    min_dock_px: int = 0


PANELS: dict[str, PanelSpec] = {}


def register_panel(spec: PanelSpec) -> PanelSpec:
    if spec.area not in AREAS:
        raise ValueError(f"panel area must be one of {AREAS}, got {spec.area!r}")
    PANELS[spec.key] = spec
    return spec


def register_slider_library(library: str, title: str, *, order: int = 50, key: str = "", area: str = "right",
                            minimum: float = -3.0, maximum: float = 3.0, icon: str = "sliders",
                            shortcut: str = "") -> PanelSpec:
    """A panel of sliders, one per direction of ``library`` (see :mod:`.sliders`)."""

    def factory(ctx: "EditorContext") -> "QWidget":
        from .sliders import DirectionSlidersPanel

        return DirectionSlidersPanel(ctx, library, title, minimum=minimum, maximum=maximum)

    return register_panel(PanelSpec(key or f"sliders-{library}", title, factory, area=area, order=order,
                                    icon=icon, shortcut=shortcut))


def builtin_panels() -> list[PanelSpec]:
    """All registered panels (importing the built-in ones first), in display order."""
    from . import browser, history, sliders  # noqa: F401  (each registers itself)
    from . import attributes  # noqa: F401  (after sliders: it tabs with the factors)
    from . import regions  # noqa: F401
    from . import jobs  # noqa: F401
    from . import discover  # noqa: F401
    from . import textpaths  # noqa: F401

    return sorted(PANELS.values(), key=lambda s: (AREAS.index(s.area), s.order, s.key))
