"""Editor preferences, kept as a small JSON file in the user's config folder.

JSON (not QSettings' native backends) so the file is the same on every platform, readable by
people, and redirected wholesale by ``STYLESTUDIO_HOME`` in tests. Unknown keys are kept, bad
values fall back to defaults: a damaged settings file must never stop the editor from starting.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from .. import paths
from ..errors import StyleStudioError
from ..safe_io import atomic_write_text, remove_stale_temporaries

log = logging.getLogger(__name__)

MAX_RECENT = 10
MAX_SETTINGS_BYTES = 1 << 20  #: ours are ~2 KB; a larger file is not read (defaults instead)
MAX_TEXT = 4096  #: longest model name, device or recent path kept
MAX_SEED = 2**32 - 1  #: seeds are numpy RandomState seeds
#: the largest preview drawn while a slider moves; never below 256 px, where skin and wrinkles
#: can still be judged (the budget picks 256 when 512 would be too slow)
PREVIEW_SIZES = (256, 512)
THEMES = ("system", "dark", "light")


@dataclass
class Settings:
    device: str = "auto"  #: auto | cpu | cuda | cuda:N | mps
    preview_size: int = 512  #: longest side of the images rendered while a slider moves
    #: adaptive previews pick the sharpest coarse stage (never below 256 px) that renders within this time
    preview_budget_ms: int = 60
    #: drag previews in bfloat16 where the CPU computes it natively (about 2× faster; see
    #: engine/precision.py); the frame drawn on release is always exact
    fast_previews: bool = True
    thumbnail_size: int = 96  #: face browser thumbnails
    default_model: str = ""  #: empty: the built-in default model
    autosave_interval_s: int = 60
    threads: int = 0  #: CPU threads for the engine; 0 = let torch decide
    theme: str = "system"
    last_seed: int = 1
    last_psi: float = 0.7
    recent_files: list[str] = field(default_factory=list)
    window_geometry: str = ""  #: base64 of QWidget.saveGeometry()
    window_state: str = ""  #: base64 of QMainWindow.saveState()
    extra: dict[str, Any] = field(default_factory=dict)  #: keys written by newer versions, kept

    #: False for throw-away settings (benchmarks, scripted sessions): ``save`` writes nothing
    persist: ClassVar[bool] = True

    @classmethod
    def transient(cls, **values: Any) -> "Settings":
        """Settings that never touch the user's settings file."""
        s = cls(**values)
        s.persist = False  # instance attribute shadows the class default
        s.validate()
        return s

    @staticmethod
    def path() -> Path:
        return paths.config_home() / "settings.json"

    @classmethod
    def load(cls) -> "Settings":
        """The user's settings; a missing, damaged or hostile file gives defaults (never an exception)."""
        s = cls()
        try:
            path = cls.path()
        except OSError as exc:  # the config folder cannot even be made
            log.warning("settings folder unusable (%s), using default settings", exc)
            return s
        remove_stale_temporaries(path.parent)  # left by a save that was killed
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_SETTINGS_BYTES + 1)
            if len(raw) > MAX_SETTINGS_BYTES:
                log.warning("%s: larger than %d KiB, using default settings", path, MAX_SETTINGS_BYTES // 1024)
                return s
            data = json.loads(raw.decode("utf-8"))
        except FileNotFoundError:
            return s
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("%s: unreadable (%s), using default settings", path, type(exc).__name__)
            return s
        if not isinstance(data, dict):
            return s
        defaults = asdict(s)
        for f in fields(cls):
            if f.name == "extra" or f.name not in data:
                continue
            value, default = data[f.name], defaults[f.name]
            if type(value) is type(default) or (
                    isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)):
                setattr(s, f.name, value)
        s.extra = {k: v for k, v in data.items() if k not in defaults}
        s.validate()
        return s

    def validate(self) -> None:
        if self.preview_size not in PREVIEW_SIZES:
            self.preview_size = 256 if self.preview_size in (64, 128) else PREVIEW_SIZES[-1]
        if self.theme not in THEMES:
            self.theme = "system"
        self.autosave_interval_s = max(10, min(3600, int(self.autosave_interval_s)))
        self.thumbnail_size = max(48, min(256, int(self.thumbnail_size)))
        self.preview_budget_ms = max(10, min(2000, int(self.preview_budget_ms)))
        self.threads = max(0, min(256, int(self.threads)))
        psi = float(self.last_psi)
        self.last_psi = max(0.0, min(1.5, psi)) if math.isfinite(psi) else 0.7
        if not 0 <= int(self.last_seed) <= MAX_SEED:
            self.last_seed = 1
        self.recent_files = [p for p in self.recent_files if _plain_text(p)][:MAX_RECENT]
        if not _plain_text(self.default_model) or "/" in self.default_model or "\\" in self.default_model:
            self.default_model = ""
        if not _plain_text(self.device):
            self.device = "auto"
        for name in ("window_geometry", "window_state"):
            if len(getattr(self, name)) > 1 << 16:
                setattr(self, name, "")

    def save(self) -> bool:
        """Atomic write (temporary file + rename; the file keeps its permissions). A failure (full
        disk, read-only folder) is logged in one line and returns False: settings never stop the editor."""
        if not self.persist:
            return True
        data = asdict(self)
        extra = data.pop("extra")
        data.update({k: v for k, v in extra.items() if k not in data})
        try:
            target = self.path()
            atomic_write_text(target, json.dumps(data, indent=2))
        except (StyleStudioError, OSError, ValueError) as exc:
            log.warning("settings not saved: %s", exc)
            return False
        return True

    def add_recent(self, path: Path | str) -> None:
        """Put ``path`` first in the recent files (resolved, so one file is listed once)."""
        p = str(Path(path).resolve())
        self.recent_files = [p] + [r for r in self.recent_files if r != p]
        del self.recent_files[MAX_RECENT:]

    def model_name(self) -> str:
        from ..engine.model_store import DEFAULT_MODEL

        return self.default_model or DEFAULT_MODEL


def _plain_text(value: object) -> bool:
    """A string a path or a name can be made of: bounded, no NUL (which makes ``Path`` calls raise)."""
    return isinstance(value, str) and len(value) <= MAX_TEXT and "\x00" not in value
