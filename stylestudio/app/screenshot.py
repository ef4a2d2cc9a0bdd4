"""Reproduce ``docs/screenshot.png``: the real window, a face with a few edits, grabbed from the screen.

    xvfb-run -s "-screen 0 1600x1000x24" python -m stylestudio.app.screenshot docs/screenshot.png

It uses throw-away settings (the user's file is not touched) and the default model unless
``--model`` says otherwise. The picture is a grab of the X screen, not a widget render, so it
shows exactly what a user would see.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--edits", default="factor1=-1.2,factor3=0.8,factor5=1.0",
                    help="comma-separated sefa factor=value pairs")
    ap.add_argument("--split", action="store_true", help="show the before/after split view")
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--theme", default="dark", choices=("dark", "light"))
    ap.add_argument("--panels", default="", help="comma-separated panels to show in front, e.g. discover,textpaths")
    args = ap.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    from ..engine.model_store import DEFAULT_MODEL
    from .main_window import MainWindow
    from .settings import Settings
    from .theme import ThemeManager, app_icon
    from .undo_commands import SliderCommand, new_drag_token

    app = QApplication.instance() or QApplication(["stylestudio"])
    app.setApplicationName("StyleStudio")
    app.setWindowIcon(app_icon())
    settings = Settings.transient(default_model=args.model or DEFAULT_MODEL, last_seed=args.seed, theme=args.theme)
    window = MainWindow(settings, theme=ThemeManager(app, args.theme), autosave=False)
    w, h = (int(v) for v in args.size.split("x"))
    window.setGeometry(0, 0, w, h)
    window.show()

    def spin(cond, timeout: float) -> bool:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            app.processEvents()
            if cond():
                return True
            time.sleep(0.01)
        return False

    spin(lambda: window.frame_is_current(final=True), 600)
    panel = window.panel("sliders-sefa")
    spin(lambda: panel.group is not None, 120)
    for pair in filter(None, args.edits.split(",")):
        name, value = pair.split("=")
        row = panel.group.row(name)
        after = row.binding.apply(window.holder.doc, float(value))
        window.undo_stack.push(SliderCommand(window.holder, after, row.binding.key, row.binding.label,
                                             float(value), new_drag_token()))
    spin(lambda: window.frame_is_current(final=True), 120)
    spin(lambda: window.panel("faces").thumbnails_complete(), 300)
    if args.split:
        window.actions_by_name["split"].setChecked(True)
        window.canvas.split_pos = 0.5
        spin(window.canvas.has_before, 120)
    for key in filter(None, args.panels.split(",")):
        window.docks[key].show()
        window.docks[key].raise_()
    spin(lambda: not window.engine.busy(), 120)
    spin(lambda: False, 0.5)  # let the last paints land
    screen = window.screen()
    shot = screen.grabWindow(0, 0, 0, w, h)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    ok = shot.save(str(args.output))
    window.shutdown()
    print(args.output if ok else "error: could not save the screenshot")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
