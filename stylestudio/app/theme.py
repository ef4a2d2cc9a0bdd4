"""Dark and light themes that follow the system, and theme-coloured icons.

Fusion + a palette gives the same look on every platform (a photo editor must not change its
greys with the desktop's style). "system" follows ``QStyleHints.colorScheme`` and re-applies
when the desktop switches; where the platform cannot tell (Xvfb, some Linux desktops) the
editor is dark, as image editors conventionally are, because a bright frame changes how a
picture's tones are judged.

Icons are monochrome SVGs drawn with ``currentColor``; :func:`icon` recolours them for the
active palette so they stay legible in both themes.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from .. import paths

ACCENT = "#4f8cff"


def icons_dir() -> Path:
    return paths.resources_dir() / "icons"


def system_is_dark(app: QGuiApplication) -> bool | None:
    scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    return None


def dark_palette() -> QPalette:
    p = QPalette()
    c = {
        "window": QColor(0x26, 0x27, 0x2b), "base": QColor(0x1c, 0x1d, 0x20), "alt": QColor(0x2b, 0x2c, 0x31),
        "text": QColor(0xe4, 0xe5, 0xe8), "button": QColor(0x32, 0x34, 0x39), "mid": QColor(0x3c, 0x3e, 0x44),
        "dim": QColor(0x8b, 0x8e, 0x96), "accent": QColor(ACCENT),
    }
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        p.setColor(group, QPalette.ColorRole.Window, c["window"])
        p.setColor(group, QPalette.ColorRole.WindowText, c["text"])
        p.setColor(group, QPalette.ColorRole.Base, c["base"])
        p.setColor(group, QPalette.ColorRole.AlternateBase, c["alt"])
        p.setColor(group, QPalette.ColorRole.ToolTipBase, QColor(0x33, 0x35, 0x3b))
        p.setColor(group, QPalette.ColorRole.ToolTipText, c["text"])
        p.setColor(group, QPalette.ColorRole.Text, c["text"])
        p.setColor(group, QPalette.ColorRole.Button, c["button"])
        p.setColor(group, QPalette.ColorRole.ButtonText, c["text"])
        p.setColor(group, QPalette.ColorRole.BrightText, QColor("#ff6b6b"))
        p.setColor(group, QPalette.ColorRole.Highlight, c["accent"])
        p.setColor(group, QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
        p.setColor(group, QPalette.ColorRole.Link, c["accent"])
        p.setColor(group, QPalette.ColorRole.PlaceholderText, c["dim"])
        p.setColor(group, QPalette.ColorRole.Mid, c["mid"])
        p.setColor(group, QPalette.ColorRole.Midlight, QColor(0x44, 0x46, 0x4d))
        p.setColor(group, QPalette.ColorRole.Dark, QColor(0x18, 0x19, 0x1b))
        p.setColor(group, QPalette.ColorRole.Shadow, QColor(0x0e, 0x0e, 0x10))
        p.setColor(group, QPalette.ColorRole.Light, QColor(0x4a, 0x4c, 0x53))
    dis = QPalette.ColorGroup.Disabled
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(dis, role, QColor(0x6c, 0x6f, 0x76))
    p.setColor(dis, QPalette.ColorRole.Window, c["window"])
    p.setColor(dis, QPalette.ColorRole.Base, c["window"])
    p.setColor(dis, QPalette.ColorRole.Button, c["window"])
    p.setColor(dis, QPalette.ColorRole.Highlight, QColor(0x44, 0x46, 0x4d))
    return p


def light_palette() -> QPalette:
    p = QPalette()
    window, base, text = QColor(0xef, 0xf0, 0xf2), QColor(0xff, 0xff, 0xff), QColor(0x1e, 0x1f, 0x23)
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        p.setColor(group, QPalette.ColorRole.Window, window)
        p.setColor(group, QPalette.ColorRole.WindowText, text)
        p.setColor(group, QPalette.ColorRole.Base, base)
        p.setColor(group, QPalette.ColorRole.AlternateBase, QColor(0xf6, 0xf7, 0xf9))
        p.setColor(group, QPalette.ColorRole.Text, text)
        p.setColor(group, QPalette.ColorRole.Button, QColor(0xf8, 0xf8, 0xfa))
        p.setColor(group, QPalette.ColorRole.ButtonText, text)
        p.setColor(group, QPalette.ColorRole.Highlight, QColor(ACCENT))
        p.setColor(group, QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
        p.setColor(group, QPalette.ColorRole.PlaceholderText, QColor(0x80, 0x83, 0x8a))
        p.setColor(group, QPalette.ColorRole.ToolTipBase, QColor(0xff, 0xff, 0xf4))
        p.setColor(group, QPalette.ColorRole.ToolTipText, text)
        p.setColor(group, QPalette.ColorRole.Mid, QColor(0xc8, 0xca, 0xcf))
        p.setColor(group, QPalette.ColorRole.Link, QColor(ACCENT))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(0xa0, 0xa2, 0xa8))
    return p


def stylesheet(dark: bool) -> str:
    border = "#3a3c42" if dark else "#c9cbd0"
    header = "#2d2f34" if dark else "#e3e4e8"
    groove = "#45484f" if dark else "#c4c7cd"
    handle = "#e4e5e8" if dark else "#ffffff"
    dim = "#9a9da5" if dark else "#6b6e75"
    hover = "#34363c" if dark else "#dfe1e6"
    accent_soft = "rgba(79, 140, 255, 0.28)"  # (Qt reads #RRGGBBAA as #AARRGGBB: spell alpha out)
    icons = icons_dir().as_posix()
    return f"""
QMainWindow::separator {{ background: {border}; width: 1px; height: 1px; }}
QDockWidget {{ titlebar-close-icon: url("{icons}/dock-close.svg"); titlebar-normal-icon: url("{icons}/dock-float.svg");
               font-weight: 600; }}
QDockWidget::close-button, QDockWidget::float-button {{ border: none; background: transparent; padding: 1px; }}
QDockWidget::close-button:hover, QDockWidget::float-button:hover {{ background: {hover}; border-radius: 3px; }}
QDockWidget::title {{ background: {header}; padding: 6px 10px; border-bottom: 1px solid {border}; }}
QToolBar {{ border: none; border-bottom: 1px solid {border}; spacing: 2px; padding: 3px 6px; }}
QToolBar::separator {{ background: {border}; width: 1px; margin: 5px 6px; }}
QToolButton {{ border: 1px solid transparent; border-radius: 5px; padding: 4px; }}
QToolButton:hover {{ background: {hover}; border-color: {border}; }}
QToolButton:checked, QToolButton:pressed {{ background: {accent_soft}; border-color: {ACCENT}; }}
QStatusBar {{ border-top: 1px solid {border}; }}
QStatusBar QLabel {{ color: {dim}; padding: 0 6px; }}
QSlider::groove:horizontal {{ height: 4px; background: {groove}; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {groove}; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {handle}; border: 1px solid {border}; width: 14px; height: 14px;
                              margin: -6px 0; border-radius: 7px; }}
QSlider::handle:horizontal:hover {{ border-color: {ACCENT}; }}
QSlider::handle:horizontal:focus {{ border: 2px solid {ACCENT}; }}
QLabel#SectionTitle {{ color: {dim}; font-size: 8pt; font-weight: 700; letter-spacing: 1px; }}
QLabel#Hint {{ color: {dim}; }}
QListView#FaceGrid {{ border: none; background: transparent; }}
QListView#FaceGrid::item {{ border-radius: 6px; padding: 3px; }}
QListView#FaceGrid::item:selected {{ background: {accent_soft}; border: 1px solid {ACCENT}; color: palette(text); }}
QListView#FaceGrid::item:hover {{ background: {hover}; }}
QUndoView {{ border: none; }}
QProgressBar {{ border: 1px solid {border}; border-radius: 3px; text-align: center; max-height: 14px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 2px; }}
QScrollArea {{ border: none; }}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 0; }}
QScrollBar:horizontal {{ background: transparent; height: 10px; margin: 0; }}
QScrollBar::handle:vertical {{ background: {groove}; border-radius: 3px; min-height: 28px; margin: 2px; }}
QScrollBar::handle:horizontal {{ background: {groove}; border-radius: 3px; min-width: 28px; margin: 2px; }}
QScrollBar::handle:hover {{ background: {dim}; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; }}
QScrollBar::add-page, QScrollBar::sub-page {{ background: none; }}
QMenu::separator {{ height: 1px; background: {border}; margin: 4px 8px; }}
QUndoView::item {{ padding: 3px 4px; }}
"""


class ThemeManager(QObject):
    """Applies a theme ("system" | "dark" | "light") and follows the system while set to "system"."""

    theme_changed = Signal(bool)  # dark?

    def __init__(self, app: QApplication, mode: str = "system") -> None:
        super().__init__(app)
        self.app = app
        self.mode = mode
        self.dark = True
        app.setStyle("Fusion")
        app.styleHints().colorSchemeChanged.connect(self._on_system_change)
        self.apply(mode)

    def apply(self, mode: str) -> None:
        self.mode = mode
        if mode == "system":
            sys_dark = system_is_dark(self.app)
            dark = True if sys_dark is None else sys_dark
        else:
            dark = mode == "dark"
        self.dark = dark
        self.app.setPalette(dark_palette() if dark else light_palette())
        self.app.setStyleSheet(stylesheet(dark))
        _svg_pixmap.cache_clear()
        self.theme_changed.emit(dark)

    def _on_system_change(self, _scheme) -> None:
        if self.mode == "system":
            self.apply("system")


@lru_cache(maxsize=512)
def _svg_pixmap(name: str, color: str, size: int, ratio: float) -> QPixmap:
    path = icons_dir() / f"{name}.svg"
    try:
        data = path.read_text().replace("currentColor", color)
    except OSError:
        return QPixmap()
    renderer = QSvgRenderer(QByteArray(data.encode()))
    pm = QPixmap(QSize(round(size * ratio), round(size * ratio)))
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    renderer.render(p, QRectF(0, 0, pm.width(), pm.height()))
    p.end()
    pm.setDevicePixelRatio(ratio)
    return pm


def icon(name: str) -> QIcon:
    """A theme-coloured icon from ``resources/icons/<name>.svg`` (normal, active and disabled)."""
    app = QApplication.instance()
    pal = app.palette() if app is not None else QPalette()
    ratio = app.devicePixelRatio() if app is not None else 1.0
    normal = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText).name()
    disabled = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText).name()
    ic = QIcon()
    for size in (16, 20, 24, 32):
        ic.addPixmap(_svg_pixmap(name, normal, size, ratio), QIcon.Mode.Normal)
        ic.addPixmap(_svg_pixmap(name, disabled, size, ratio), QIcon.Mode.Disabled)
    return ic


def app_icon() -> QIcon:
    path = icons_dir() / "app.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()
