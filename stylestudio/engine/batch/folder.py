"""The photos of a batch: which files, in which order, where each result goes.

The order is the sorted relative path, so every process of a batch (``--jobs`` workers,
``torchrun`` ranks) sees the same list and a share is a set of indices. Sub-folders are
walked and mirrored in the output folder; hidden files and folders, and the output folder
itself when it lies inside the input, are left out.
"""
from __future__ import annotations

import os
from pathlib import Path

from ...errors import InputError
from ..limits import PHOTO_SUFFIXES

OUTPUT_SUFFIXES = {"jpg": ".jpg", "jpeg": ".jpg", "png": ".png", "tif": ".tif", "tiff": ".tif"}
STATE_DIR = ".stylestudio-batch"  #: per-photo records and thumbnails, inside the output folder


def find_photos(input_dir: Path, output_dir: Path | None = None) -> tuple[list[Path], list[Path]]:
    """(photos, other files) under ``input_dir`` as sorted relative paths."""
    root = Path(input_dir)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    skip = Path(os.path.realpath(output_dir)) if output_dir is not None else None
    photos: list[Path] = []
    others: list[Path] = []
    for folder, dirs, files in os.walk(root, onerror=None):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (skip is None or Path(os.path.realpath(here / d)) != skip))
        for name in files:
            if name.startswith("."):
                continue
            rel = (here / name).relative_to(root)
            (photos if rel.suffix.lower() in PHOTO_SUFFIXES else others).append(rel)
    key = lambda p: p.as_posix()  # noqa: E731  (one order on every OS and file system)
    return sorted(photos, key=key), sorted(others, key=key)


def output_names(photos: list[Path], fmt: str) -> dict[Path, Path]:
    """Photo → relative output file. ``a.png`` and ``a.jpg`` side by side would both become
    ``a.<fmt>``: such photos keep their suffix in the name (``a-png.jpg``, ``a-jpg.jpg``)."""
    suffix = OUTPUT_SUFFIXES[fmt]
    stems: dict[Path, int] = {}
    for p in photos:
        stems[p.with_suffix("")] = stems.get(p.with_suffix(""), 0) + 1
    out = {}
    for p in photos:
        stem = p.with_suffix("")
        name = f"{stem.name}-{p.suffix[1:].lower()}" if stems[stem] > 1 else stem.name
        out[p] = stem.with_name(name + suffix)
    return out


def share(count: int, rank: int, world: int) -> list[int]:
    """The indices rank ``rank`` of ``world`` processes: every ``world``-th, so shares are disjoint,
    cover everything and stay balanced when photos of one kind are grouped in the listing."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} of {world}")
    return list(range(rank, count, world))
