"""Where StyleStudio keeps user data: appdirs' user data folder, or ``$STYLESTUDIO_HOME``."""
from __future__ import annotations

import os
from pathlib import Path

import appdirs

APP_NAME = "StyleStudio"
ENV_HOME = "STYLESTUDIO_HOME"


def data_home() -> Path:
    """Root of the user's data (models, catalogs, directions, autosaves)."""
    override = os.environ.get(ENV_HOME)
    root = Path(override) if override else Path(appdirs.user_data_dir(APP_NAME, appauthor=False))
    root.mkdir(parents=True, exist_ok=True)
    return root


def config_home() -> Path:
    override = os.environ.get(ENV_HOME)
    root = Path(override) / "config" if override else Path(appdirs.user_config_dir(APP_NAME, appauthor=False))
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir() -> Path:
    d = data_home() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


def cache_dir() -> Path:
    """Downloads and other things that can be rebuilt."""
    d = data_home() / "cache"
    d.mkdir(parents=True, exist_ok=True)
    return d


def resources_dir() -> Path:
    """Data shipped with the app (directions, catalogs, icons)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "resources", here.parent / "resources"):
        if candidate.is_dir():
            return candidate
    return here.parent / "resources"
