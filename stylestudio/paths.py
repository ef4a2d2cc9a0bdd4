"""Where StyleStudio keeps user data: appdirs' user data folder, or ``$STYLESTUDIO_HOME``.

A folder that cannot be used (``$STYLESTUDIO_HOME`` naming a file, a read-only or unwritable
place) is one :class:`~stylestudio.errors.InputError` line naming it, not an OS traceback.
"""
from __future__ import annotations

import os
from pathlib import Path

import appdirs

from .errors import InputError

APP_NAME = "StyleStudio"
ENV_HOME = "STYLESTUDIO_HOME"


def _usable_dir(root: Path, what: str) -> Path:
    """``root``, created when missing; one line when it is not a writable folder."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{root}: {what} is not a folder") from None
    except OSError as exc:
        from .safe_io import os_error_message

        raise InputError(f"{what} cannot be created: {os_error_message(root, exc)}") from None
    if not root.is_dir():
        raise InputError(f"{root}: {what} is not a folder")
    if not os.access(root, os.W_OK | os.X_OK):
        raise InputError(f"{root}: {what} is not writable")
    return root


def _home_label(override: str | None, default: str) -> str:
    return f"the data folder (${ENV_HOME})" if override else default


def data_home() -> Path:
    """Root of the user's data (models, catalogs, directions, autosaves)."""
    override = os.environ.get(ENV_HOME)
    root = Path(override) if override else Path(appdirs.user_data_dir(APP_NAME, appauthor=False))
    return _usable_dir(root, _home_label(override, "the user data folder"))


def config_home() -> Path:
    override = os.environ.get(ENV_HOME)
    if override:
        data_home()  # a bad $STYLESTUDIO_HOME is named as such
    root = Path(override) / "config" if override else Path(appdirs.user_config_dir(APP_NAME, appauthor=False))
    return _usable_dir(root, "the settings folder")


def models_dir() -> Path:
    return _usable_dir(data_home() / "models", "the models folder")


def cache_dir() -> Path:
    """Downloads and other things that can be rebuilt."""
    return _usable_dir(data_home() / "cache", "the cache folder")


def resources_dir() -> Path:
    """Data shipped with the app (directions, catalogs, icons)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "resources", here.parent / "resources"):
        if candidate.is_dir():
            return candidate
    return here.parent / "resources"
