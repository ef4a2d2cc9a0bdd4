"""Editor preferences, kept as a small JSON file in the user's config folder.

JSON (not QSettings' native backends) so the file is the same on every platform, readable by
people, and redirected wholesale by ``STYLESTUDIO_HOME`` in tests. Unknown keys are kept, bad
values fall back to defaults: a damaged settings file must never stop the editor from starting.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from .. import paths

MAX_RECENT = 10
PREVIEW_SIZES = (128, 256, 512)
THEMES = ("system", "dark", "light")


@dataclass
class Settings:
    device: str = "auto"  #: auto | cpu | cuda | cuda:N | mps
    preview_size: int = 256  #: longest side of the images rendered while a slider moves
    #: adaptive previews pick the sharpest coarse stage that renders within this time
    preview_budget_ms: int = 60
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
        s = cls()
        try:
            data = json.loads(cls.path().read_text())
        except (OSError, ValueError):
            return s
        if not isinstance(data, dict):
            return s
        defaults = asdict(s)
        for f in fields(cls):
            if f.name == "extra" or f.name not in data:
                continue
            value, default = data[f.name], defaults[f.name]
            if isinstance(default, bool) or type(value) is type(default) or (
                    isinstance(default, float) and isinstance(value, int)):
                setattr(s, f.name, value)
        s.extra = {k: v for k, v in data.items() if k not in defaults}
        s.validate()
        return s

    def validate(self) -> None:
        if self.preview_size not in PREVIEW_SIZES:
            self.preview_size = 256
        if self.theme not in THEMES:
            self.theme = "system"
        self.autosave_interval_s = max(10, min(3600, int(self.autosave_interval_s)))
        self.thumbnail_size = max(48, min(256, int(self.thumbnail_size)))
        self.preview_budget_ms = max(10, min(2000, int(self.preview_budget_ms)))
        self.threads = max(0, min(256, int(self.threads)))
        self.last_psi = max(0.0, min(1.5, float(self.last_psi)))
        self.recent_files = [str(p) for p in self.recent_files if isinstance(p, str)][:MAX_RECENT]

    def save(self) -> None:
        """Atomic write (temporary file + rename), like projects."""
        if not self.persist:
            return
        data = asdict(self)
        extra = data.pop("extra")
        data.update({k: v for k, v in extra.items() if k not in data})
        target = self.path()
        fd, tmp = tempfile.mkstemp(prefix=".settings.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add_recent(self, path: Path | str) -> None:
        p = str(Path(path).resolve())
        self.recent_files = [p] + [r for r in self.recent_files if r != p]
        del self.recent_files[MAX_RECENT:]

    def model_name(self) -> str:
        from ..engine.model_store import DEFAULT_MODEL

        return self.default_model or DEFAULT_MODEL
