"""The main window's dock panels: built from the panel registry, sized, their layout restored.

Adding a dock panel is one line in the module that defines it::

    register_panel(PanelSpec("discover", "Discover", lambda ctx: DiscoverPanel(ctx), area="right", order=60))

plus its module's name in :func:`stylestudio.app.panels.builtin_panels` (see :mod:`.panels`).
Each dock gets a toggle under View ▸ Panels and keeps its place between runs.
"""
from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget

from . import theme as theme_mod
from .panels import builtin_panels

if TYPE_CHECKING:
    from .main_window import MainWindow

log = logging.getLogger(__name__)

AREA = {"left": Qt.DockWidgetArea.LeftDockWidgetArea, "right": Qt.DockWidgetArea.RightDockWidgetArea,
        "bottom": Qt.DockWidgetArea.BottomDockWidgetArea}
RIGHT_DOCK_PX = 520  #: default width of the right dock: sliders ≥ 200 px beside label, value, units, pin
LEFT_DOCK_PX = 320
HISTORY_PX = 150  #: default height of the History strip under the editing tabs
#: version of the saved dock layout: raised when the defaults change, so an old cramped layout
#: (e.g. a 380-px right dock with 64-px sliders) gives way to the new defaults once
LAYOUT_VERSION = 2


def build_panels(window: "MainWindow") -> None:
    """One dock per registered panel into ``window.panels``/``window.docks`` (a panel that fails to
    build is reported in ``window.errors`` and left out)."""
    for spec in builtin_panels():
        try:
            widget = spec.factory(window.ctx)
        except Exception as exc:  # a broken add-on panel must not take the editor down
            log.exception("panel %s failed", spec.key)
            window.errors.append(f"Panel {spec.title}: {exc}")
            continue
        dock = QDockWidget(spec.title, window)
        dock.setObjectName(f"panel-{spec.key}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        if spec.tab_with and spec.tab_with in window.docks:
            window.tabifyDockWidget(window.docks[spec.tab_with], dock)
            window.docks[spec.tab_with].raise_()  # the panel tabbed onto stays in front
        else:
            window.addDockWidget(AREA[spec.area], dock)
        dock.setVisible(spec.visible)
        toggle = dock.toggleViewAction()
        toggle.triggered.connect(_bring_forward(window, dock, spec.min_dock_px))  # shown from View ▸ Panels
        if spec.min_dock_px:  # chosen by its tab: the column widens as from the menu
            dock.visibilityChanged.connect(_widen_when_shown(window, dock, spec.min_dock_px))
        if spec.shortcut:
            toggle.setShortcut(QKeySequence(spec.shortcut))
        if spec.icon:
            toggle.setIcon(theme_mod.icon(spec.icon))
            toggle.setProperty("icon_name", spec.icon)
        window.panels_menu.addAction(toggle)
        window.addAction(toggle)
        window.panels[spec.key] = widget
        window.docks[spec.key] = dock


def _bring_forward(window: "MainWindow", dock: QDockWidget, min_px: int):
    """In front of its tab group, and at least ``min_px`` wide (when not floating)."""
    def shown(on: bool) -> None:
        if not on:
            return
        dock.raise_()
        _widen(window, dock, min_px)
    return shown


def _widen_when_shown(window: "MainWindow", dock: QDockWidget, min_px: int):
    """Widen the dock's column to ``min_px`` whenever the dock comes into view (its tab chosen, the
    window restored with it in front): its rows need that much, and a narrower column clips them.
    Deferred to the event loop: docks must not be resized from inside the tab switch."""
    def shown(on: bool) -> None:
        if on:
            QTimer.singleShot(0, lambda: _widen(window, dock, min_px))
    return shown


def _widen(window: "MainWindow", dock: QDockWidget, min_px: int) -> None:
    """At least ``min_px`` wide, when shown in the window (not floating)."""
    try:
        if dock.isVisible() and not dock.isFloating() and dock.width() < min_px:
            window.resizeDocks([dock], [min_px], Qt.Orientation.Horizontal)
    except RuntimeError:  # the window closed before the deferred call ran
        pass


def size_docks(window: "MainWindow") -> None:
    """Default dock sizes for the window's size: the right column wide enough for full-length
    sliders (value, units and pin beside them), its editing tabs (Factors, Attributes, Regions)
    tall enough for every slider, History a short strip below."""
    area = window.dockWidgetArea
    right = [d for d in window.docks.values() if area(d) == Qt.DockWidgetArea.RightDockWidgetArea
             and not d.isFloating()]
    stacked: list[QDockWidget] = []  # one per vertical slot: the first dock of each tab group
    for d in right:
        if not any(d in window.tabifiedDockWidgets(s) for s in stacked):
            stacked.append(d)
    if stacked:
        window.resizeDocks([stacked[0]], [RIGHT_DOCK_PX], Qt.Orientation.Horizontal)
    if len(stacked) > 1:
        rest = max(1, window.height() - 140 - HISTORY_PX * (len(stacked) - 1))
        window.resizeDocks(stacked, [rest] + [HISTORY_PX] * (len(stacked) - 1), Qt.Orientation.Vertical)
    left = [d for d in window.docks.values() if area(d) == Qt.DockWidgetArea.LeftDockWidgetArea]
    if left:
        window.resizeDocks([left[0]], [LEFT_DOCK_PX], Qt.Orientation.Horizontal)


def restore_layout(window: "MainWindow") -> None:
    s = window.settings
    try:
        if s.window_geometry:
            window.restoreGeometry(QByteArray(base64.b64decode(s.window_geometry)))
        if s.window_state:
            # a layout saved before the current dock defaults is dropped (Qt refuses another version)
            window.restoreState(QByteArray(base64.b64decode(s.window_state)), LAYOUT_VERSION)
    except (ValueError, TypeError):
        pass


def save_layout(window: "MainWindow") -> None:
    """Into the settings (the caller saves them)."""
    s = window.settings
    s.window_geometry = base64.b64encode(bytes(window.saveGeometry())).decode()
    s.window_state = base64.b64encode(bytes(window.saveState(LAYOUT_VERSION))).decode()
