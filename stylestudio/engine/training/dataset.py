"""A folder of the user's pictures prepared once into one training dataset file.

Every picture is read with the same hostile-file checks as a photo (``imageio.load_rgb``), cut to
its central square and resized (Lanczos) to the training resolution. Pictures that cannot be
read are listed with one line each and skipped; pictures whose resized pixels equal an earlier
one are dropped as duplicates. The result is an ``.npz`` (uint8 [N, R, R, 3] and the source
names), written atomically and read back with ``allow_pickle=False``: data, never code.

With ``align_faces`` each picture is instead cut the way the photo import cuts a face (dlib's
landmarks, the FFHQ square: :mod:`..face.align`), so a folder of ordinary portraits trains a model
whose faces sit where the editor expects them. Every face found becomes a training image (a group
photo gives several: more data, and no guess about which one the user meant); pictures with no face
are listed and skipped like unreadable ones.
"""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ...errors import InputError
from ...safe_io import atomic_write
from ..generator import check_resolution
from ..imageio import load_rgb
from ..limits import PHOTO_SUFFIXES
from ..progress import Cancel, Progress, check_cancel, no_progress

DATASET_SUFFIX = ".npz"
FORMAT = "stylestudio-dataset-1"
MIN_IMAGES = 2
MAX_IMAGES = 2_000_000


@dataclass
class PreparedDataset:
    path: Path
    count: int
    resolution: int
    skipped: list[str] = field(default_factory=list)  #: one line per unreadable picture
    duplicates: list[str] = field(default_factory=list)  #: names dropped as copies of an earlier one
    smallest: tuple[int, int] = (0, 0)  #: (width, height) of the smallest kept original
    largest: tuple[int, int] = (0, 0)

    def summary(self) -> str:
        return (f"{self.count} images at {self.resolution} px → {self.path} ({len(self.skipped)} skipped, "
                f"{len(self.duplicates)} duplicates; originals {self.smallest[0]}×{self.smallest[1]} … "
                f"{self.largest[0]}×{self.largest[1]})")


def image_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of images")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith("."))


def square(rgb: np.ndarray, resolution: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = Image.fromarray(rgb[top: top + side, left: left + side])
    return np.asarray(img.resize((resolution, resolution), Image.LANCZOS), dtype=np.uint8)


def aligned_faces(rgb: np.ndarray, resolution: int, progress: Progress = no_progress) -> list[np.ndarray]:
    """Every face of a picture as the FFHQ-aligned square the photo import makes, largest first."""
    from ..face.align import align_face
    from ..face.landmarks import detect_faces

    return [align_face(rgb, face.landmarks, resolution)[0] for face in detect_faces(rgb, progress)]


def prepare_dataset(folder: Path, output: Path, resolution: int, *, align_faces: bool = False,
                    progress: Progress = no_progress, cancel: Cancel = None) -> PreparedDataset:
    """Read every picture under ``folder`` into ``output`` (see the module docstring)."""
    try:
        resolution = check_resolution("the resolution", resolution, 4, 1024)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    files = image_files(folder)
    if not files:
        raise InputError(f"{folder}: no pictures ({' '.join(PHOTO_SUFFIXES)}) in this folder")
    result = PreparedDataset(Path(output), 0, resolution)
    images: list[np.ndarray] = []
    names: list[str] = []
    seen: dict[bytes, str] = {}
    sizes: list[tuple[int, int]] = []
    for k, path in enumerate(files):
        check_cancel(cancel)
        name = str(path.relative_to(folder))
        try:
            rgb = load_rgb(path)
            crops = aligned_faces(rgb, resolution, progress) if align_faces else [square(rgb, resolution)]
        except InputError as exc:
            result.skipped.append(f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
            continue
        if not crops:
            result.skipped.append(f"{path}: no face found")
            continue
        for i, img in enumerate(crops):
            label = f"{name} face {i + 1}" if len(crops) > 1 else name
            digest = hashlib.sha256(img.tobytes()).digest()
            if digest in seen:
                result.duplicates.append(f"{label} (same as {seen[digest]})")
                continue
            seen[digest] = label
            images.append(img)
            names.append(label)
            sizes.append((rgb.shape[1], rgb.shape[0]))
        progress(f"preparing {name}", (k + 1) / len(files))
    if len(images) < MIN_IMAGES:
        raise InputError(f"{folder}: only {len(images)} readable distinct pictures; training needs at least "
                         f"{MIN_IMAGES}")
    stack = np.stack(images)
    atomic_write(Path(output), lambda f: np.savez(f, images=stack, names=np.asarray(names), format=np.asarray(FORMAT)))
    result.count = len(images)
    areas = [w * h for w, h in sizes]
    result.smallest, result.largest = sizes[int(np.argmin(areas))], sizes[int(np.argmax(areas))]
    return result


def load_dataset(path: Path) -> np.ndarray:
    """The uint8 [N, R, R, 3] images of a prepared dataset; one line naming the file if it is not one."""
    path = Path(path)
    if path.is_file() and not zipfile.is_zipfile(path):  # numpy's own message would suggest unsafe loading
        raise InputError(f"{path}: not a prepared dataset (the .npz `stylestudio train --data FOLDER` makes) "
                         "nor a folder of pictures")
    try:
        with np.load(path, allow_pickle=False) as f:
            if "format" not in f.files or str(f["format"]) != FORMAT or "images" not in f.files:
                raise InputError(f"{path}: not a StyleStudio dataset (prepare one with `stylestudio train --data FOLDER`)")
            images = f["images"]
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"{path}: damaged or not a dataset file ({str(exc)[:120]})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise InputError(f"{path}: the images have shape {images.shape} {images.dtype}, expected uint8 [N, R, R, 3]")
    if not MIN_IMAGES <= images.shape[0] <= MAX_IMAGES:
        raise InputError(f"{path}: holds {images.shape[0]} images, expected {MIN_IMAGES} … {MAX_IMAGES}")
    try:
        check_resolution("the dataset resolution", int(images.shape[1]), 4, 1024)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
    return images


def dataset_for(data: Path, resolution: int | None, cache: Path, progress: Progress = no_progress,
                cancel: Cancel = None) -> tuple[np.ndarray, PreparedDataset | None]:
    """A dataset file as is, or a folder prepared into ``cache`` first (needs ``resolution``)."""
    data = Path(data)
    if data.is_dir():
        if resolution is None:
            raise InputError("--resolution is needed to prepare a folder of pictures")
        prepared = prepare_dataset(data, cache, resolution, progress=progress, cancel=cancel)
        return load_dataset(cache), prepared
    return load_dataset(data), None
