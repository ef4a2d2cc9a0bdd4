"""The main window's actions, menu bar and toolbar, as tables.

Adding a menu entry is ONE line: an :class:`Act` in :data:`MENU_BAR`, at the place it should
appear. ``run`` receives the window; anything it needs hangs off it (``w.ctx``, ``w.engine``,
``w.run_task``, ``w.panel("…")``)::

    Act("discover", "&Discover Directions…", lambda w: DiscoverDialog(w).open(), "Ctrl+D", "", "Find new sliders"),

An action with no menu (a window-wide shortcut) goes in :data:`WINDOW_ACTIONS`; a toolbar
button is its name in :data:`TOOLBAR`. Code that adds an entry at run time (e.g. a feature
module) calls :func:`make_action` and inserts the action itself, as ``photo_open`` does.
Every action is ``window.actions_by_name[name]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Union

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QMenu, QToolButton

from .. import paths
from . import theme as theme_mod

if TYPE_CHECKING:
    from .main_window import MainWindow

Keys = Union[str, QKeySequence.StandardKey, tuple, None]


@dataclass(frozen=True)
class Act:
    """One action: ``run(window)`` when triggered; ``toggled(window, on)`` for a checkable one."""

    name: str
    text: str
    run: "Callable[[MainWindow], Any] | None" = None
    shortcut: Keys = None
    icon: str = ""
    tip: str = ""
    checkable: bool = False
    toggled: "Callable[[MainWindow, bool], Any] | None" = None


SEP = "-"  #: a separator in a menu or the toolbar
RECENT = "@recent"  #: File ▸ Open Recent (filled when shown: :class:`~.file_actions.FileActions`)
PANELS = "@panels"  #: View ▸ Panels (one toggle per dock: :mod:`.window_docks`)
THEMES = "@themes"  #: View ▸ Theme
MODELS = "@models"  #: where the installed models are listed (:class:`~.models_menu.ModelsMenu`)
HOLD_ORIGINAL = "@hold-original"  #: toolbar: shows the unedited face while held down


def _faces(w: "MainWindow") -> Any:
    return w.panel("faces")


def _open_models_folder(_w: "MainWindow") -> None:
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.models_dir())))


def _training() -> Any:
    from . import training_dialogs  # imported when used: it pulls in the training and metrics tasks

    return training_dialogs


def _export_preview() -> Any:
    from . import export_preview  # imported when used

    return export_preview


def _batch() -> Any:
    from . import batch_dialog  # imported when used: it pulls in the batch task

    return batch_dialog


#: menu title → its entries, top to bottom: :class:`Act`, :data:`SEP` or a special ``@…`` entry
MENU_BAR: dict[str, tuple[Act | str, ...]] = {
    "&File": (
        Act("new", "&New Document", lambda w: w.new_document(), QKeySequence.StandardKey.New, "new"),
        Act("open", "&Open…", lambda w: w.files.open_dialog(), QKeySequence.StandardKey.Open, "open",
            "Open a project"),
        RECENT,
        SEP,
        Act("save", "&Save", lambda w: w.save(), QKeySequence.StandardKey.Save, "save", "Save the project"),
        Act("save_as", "Save &As…", lambda w: w.files.save_as_dialog(), "Ctrl+Shift+S"),
        SEP,
        Act("export", "&Export Image…", lambda w: w.files.export_dialog(), "Ctrl+E", "export",
            "Export the picture at full resolution (PNG, JPEG, TIFF)"),
        Act("preview_export", "Pre&view Export…", lambda w: _export_preview().preview_export(w), "Ctrl+Alt+E", "",
            "See what Export writes: for a photo, the whole photo with the edited face pasted back"),
        Act("copy", "&Copy Image", lambda w: w.copy_image(), "Ctrl+Shift+C", "copy",
            "Copy the full-resolution picture"),
        Act("apply_to_folder", "Apply to &Folder…", lambda w: _batch().apply_to_folder(w), "", "",
            "Apply this document's edits to every portrait in a folder"),
        SEP,
        Act("quit", "&Quit", lambda w: w.close(), "Ctrl+Q"),
    ),
    "&Edit": (
        # own undo/redo actions with fixed texts (see build_actions)
        Act("undo", "&Undo", lambda w: w.undo_stack.undo(), "Ctrl+Z", "undo"),
        Act("redo", "&Redo", lambda w: w.undo_stack.redo(), ("Ctrl+Shift+Z", "Ctrl+Y"), "redo"),
        SEP,
        Act("reset_all", "Reset &All Edits", lambda w: w.reset_all_edits(), "Ctrl+Shift+R", "reset"),
        Act("use_installed", "Use &Installed Sliders", lambda w: w.use_installed_sliders(), "", "",
            "Draw the sliders this project keeps as saved with the versions installed now"),
        Act("install_sliders", "Ins&tall the Project's Sliders", lambda w: w.install_project_sliders(), "", "",
            "Install the slider libraries this project keeps and this computer lacks, for every project"),
        SEP,
        Act("preferences", "&Preferences…", lambda w: w.preferences_dialog(), "Ctrl+,", "settings"),
    ),
    "F&ace": (
        Act("random", "&Random Face", lambda w: _faces(w).pick_random(), "R", "random"),
        Act("prev_seed", "&Previous Seed", lambda w: _faces(w).step_seed(-1), "[", "prev"),
        Act("next_seed", "&Next Seed", lambda w: _faces(w).step_seed(+1), "]", "next"),
        Act("goto_seed", "&Go to Seed…", lambda w: w.focus_seed_box(), "Ctrl+G"),
        SEP,
        Act("prev_page", "Previous Page of Faces",
            lambda w: _faces(w).set_page(_faces(w).page_start - _faces(w).PAGE), "Alt+Left"),
        Act("next_page", "Next Page of Faces",
            lambda w: _faces(w).set_page(_faces(w).page_start + _faces(w).PAGE), "Alt+Right"),
    ),
    "&View": (
        Act("zoom_in", "Zoom &In", lambda w: w.canvas.zoom_in(), ("Ctrl++", "Ctrl+="), "zoom-in"),
        Act("zoom_out", "Zoom &Out", lambda w: w.canvas.zoom_out(), "Ctrl+-", "zoom-out"),
        Act("fit", "&Fit in Window", lambda w: w.canvas.fit(), "Ctrl+0", "fit"),
        Act("actual", "&Actual Pixels (1:1)", lambda w: w.canvas.actual_size(), "Ctrl+1", "actual-size"),
        SEP,
        Act("split", "&Split Before/After", None, "Y", "split", "Before and after side by side", checkable=True,
            toggled=lambda w, on: w.canvas.set_split(on)),
        Act("original", "Show &Original", None, "", "original", "Show the unedited face (or hold \\)",
            checkable=True, toggled=lambda w, on: w.canvas.set_hold_original(on)),
        SEP,
        PANELS,
        THEMES,
        SEP,
        Act("fullscreen", "F&ull Screen", lambda w: w.toggle_fullscreen(), "F11"),
    ),
    "&Models": (
        Act("import_model", "&Import Checkpoint…", lambda w: w.models.import_dialog(), "Ctrl+I", "import",
            "Import a StyleGAN2 checkpoint (NVlabs .pkl or rosinality .pt)"),
        Act("train_model", "&Train Model…", lambda w: _training().train_model(w), "", "", "Train a StyleGAN2 on your pictures"),
        Act("model_report", "Model &Report…", lambda w: _training().model_report(w), "", "", "PPL, FD-VGG and ALS of this model"),
        SEP,
        MODELS,
        Act("models_folder", "Open Models &Folder", _open_models_folder),
    ),
    "&Help": (
        Act("shortcuts", "&Keyboard Shortcuts", lambda w: w.shortcuts_dialog(), ("F1", "Ctrl+/")),
        Act("about", "&About StyleStudio", lambda w: w.about_dialog()),
    ),
}

#: actions in no menu: window-wide shortcuts
WINDOW_ACTIONS: tuple[Act, ...] = (
    Act("cancel_job", "&Cancel Running Job", lambda w: w.engine.cancel(None), "Esc", "cancel"),
)

#: the toolbar, left to right: action names, :data:`SEP` or :data:`HOLD_ORIGINAL`
TOOLBAR: tuple[str, ...] = ("open", "save", "export", "copy", SEP, "undo", "redo", SEP, "random", SEP,
                            "zoom_out", "zoom_in", "fit", "actual", SEP, "split", HOLD_ORIGINAL)

THEME_CHOICES = (("system", "Follow the &System"), ("dark", "&Dark"), ("light", "&Light"))


def make_action(window: "MainWindow", name: str, text: str, slot: Callable | None = None, shortcut: Keys = None,
                icon: str = "", tip: str = "", checkable: bool = False) -> QAction:
    """A window-wide action (its shortcut works wherever the focus is in the window), kept in
    ``window.actions_by_name[name]``; its tooltip names the shortcut."""
    a = QAction(text, window)
    if shortcut:
        keys = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
        a.setShortcuts([QKeySequence(k) for k in keys])
    if icon:
        a.setIcon(theme_mod.icon(icon))
        a.setProperty("icon_name", icon)
    if tip or shortcut:
        keys_text = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        a.setToolTip(f"{tip or text.replace('&', '').rstrip('…')}" + (f"  ({keys_text})" if keys_text else ""))
    a.setCheckable(checkable)
    if slot is not None:
        a.triggered.connect(slot)
    a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    window.addAction(a)
    window.actions_by_name[name] = a
    return a


def _make(window: "MainWindow", spec: Act) -> QAction:
    run = spec.run
    slot = (lambda _checked=False: run(window)) if run is not None else None
    a = make_action(window, spec.name, spec.text, slot, spec.shortcut, spec.icon, spec.tip, spec.checkable)
    if spec.toggled is not None:
        toggled = spec.toggled
        a.toggled.connect(lambda on: toggled(window, on))
    return a


def build_actions(window: "MainWindow") -> None:
    """Every action of the tables, then the undo/redo wiring."""
    for entries in MENU_BAR.values():
        for entry in entries:
            if isinstance(entry, Act):
                _make(window, entry)
    for spec in WINDOW_ACTIONS:
        _make(window, spec)
    # Own undo/redo actions with fixed texts: QUndoStack.createUndoAction renames the action on
    # every merged slider step, which re-lays out the toolbar and repaints the whole window.
    stack = window.undo_stack
    undo, redo = window.actions_by_name["undo"], window.actions_by_name["redo"]
    undo.setEnabled(False)
    redo.setEnabled(False)
    stack.canUndoChanged.connect(undo.setEnabled)
    stack.canRedoChanged.connect(redo.setEnabled)
    stack.undoTextChanged.connect(window.on_undo_text)
    stack.redoTextChanged.connect(window.on_redo_text)


def build_menus(window: "MainWindow") -> dict[str, QMenu]:
    """The menu bar from :data:`MENU_BAR` (actions made by :func:`build_actions`); the special
    entries become ``window.recent_menu``, ``window.panels_menu``, the theme choices and the
    anchor the models menu lists installed models before. Returns title → menu."""
    menus: dict[str, QMenu] = {}
    a = window.actions_by_name
    for title, entries in MENU_BAR.items():
        menu = menus[title] = window.menuBar().addMenu(title)
        for entry in entries:
            if isinstance(entry, Act):
                menu.addAction(a[entry.name])
            elif entry == SEP:
                menu.addSeparator()
            elif entry == RECENT:
                window.recent_menu = menu.addMenu("Open &Recent")
            elif entry == PANELS:
                window.panels_menu = menu.addMenu("&Panels")
            elif entry == THEMES:
                _theme_menu(window, menu.addMenu("&Theme"))
            elif entry == MODELS:
                window.models_anchor = menu.addSeparator()
                window.models_menu = menu
            else:
                raise ValueError(f"unknown menu entry {entry!r}")
    window.file_menu = menus["&File"]
    return menus


def _theme_menu(window: "MainWindow", menu: QMenu) -> None:
    group = QActionGroup(window)
    for key, label in THEME_CHOICES:
        act = menu.addAction(label)
        act.setCheckable(True)
        act.setChecked(window.settings.theme == key)
        act.triggered.connect(lambda _=False, k=key: window.set_theme(k))
        group.addAction(act)


def build_toolbar(window: "MainWindow") -> None:
    tb = window.addToolBar("Main")
    tb.setObjectName("toolbar-main")
    tb.setMovable(False)
    tb.setIconSize(QSize(20, 20))
    for name in TOOLBAR:
        if name == SEP:
            tb.addSeparator()
        elif name == HOLD_ORIGINAL:
            tb.addWidget(_hold_original_button(window))
        else:
            tb.addAction(window.actions_by_name[name])
    window.toolbar = tb


def _hold_original_button(window: "MainWindow") -> QToolButton:
    """"Original" that works while held down, like the \\ key."""
    hold = QToolButton()
    hold.setIcon(theme_mod.icon("original"))
    hold.setProperty("icon_name", "original")
    hold.setToolTip("Hold to see the unedited face (or hold \\)")
    hold.pressed.connect(lambda: window.canvas.set_hold_original(True))
    hold.released.connect(lambda: window.canvas.set_hold_original(False))
    window.hold_button = hold
    return hold
