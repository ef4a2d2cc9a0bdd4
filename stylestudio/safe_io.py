"""Writing user files safely: atomically, keeping what the user set up, refusing obvious mistakes.

Every file StyleStudio writes for a user (exports, projects, autosaves, settings, installed models)
goes through :func:`atomic_write` (or :func:`atomic_install_dir` for a folder), so that

- a crash, a kill or a full disk mid-write never damages the file being replaced (the new bytes go
  to a temporary file beside it, are flushed, then renamed over it);
- a new file gets the user's umask (``mkstemp`` would make it 0600) and a replaced file keeps its
  permissions; writing through a symlink writes the file it points to, and a file with several hard
  links is updated in place once the new content is safely on disk, so the links stay joined;
- temporary files are removed on failure and stale ones left by a killed process are cleaned up
  (:func:`remove_stale_temporaries`).

:func:`check_output` refuses a missing output folder and an output that is one of the inputs, and
checks the folder is writable, before any long work starts.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from .errors import InputError, StyleStudioError

TEMP_SUFFIX = ".tmp"
#: A temporary file older than this is a leftover of a killed process, not a write in progress.
STALE_AFTER_S = 3600.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_prefix(name: str) -> str:
    return f".{name}."


def os_error_message(path: Path, exc: OSError) -> str:
    """One line for a failed write or read of ``path``, in plain words."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENAMETOOLONG: "the file name is too long",
        errno.ENOENT: "no such file or folder",
        errno.EISDIR: "it is a folder",
        errno.ENOTDIR: "a part of the path is not a folder",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return f"{path}: {reason}"


def resolve_target(path: Path) -> Path:
    """The file a write to ``path`` must replace: a symlink is followed (the link itself stays)."""
    path = Path(path)
    try:
        return Path(os.path.realpath(path)) if path.is_symlink() else path
    except OSError:
        return path


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` by calling ``write(f)`` on a temporary binary file, then replacing ``path``.

    Raises :class:`InputError` with one line (naming ``path``) for OS failures such as a full disk
    or a read-only folder; the previous ``path``, if any, is then untouched.
    """
    target = resolve_target(path)
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"{path}: the folder {folder} does not exist")
    try:
        existing = target.stat()
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise InputError(os_error_message(path, exc)) from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise InputError(f"{path}: is a folder, not a file")
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target.name), suffix=TEMP_SUFFIX, dir=folder)
        tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        mode = stat.S_IMODE(existing.st_mode) if existing is not None else (0o666 & ~_umask())
        os.chmod(tmp, mode)
        if existing is not None and existing.st_nlink > 1 and stat.S_ISREG(existing.st_mode):
            # Hard links: a rename would split them. The new bytes are safely on disk in ``tmp``;
            # copy them into the shared inode, then drop the temporary file.
            with open(tmp, "rb") as src, open(target, "r+b") as dst:
                shutil.copyfileobj(src, dst)
                dst.truncate()
                dst.flush()
                os.fsync(dst.fileno())
            tmp.unlink()
        else:
            os.replace(tmp, target)
        tmp = None
        _fsync_dir(folder)
    except OSError as exc:
        raise InputError(os_error_message(path, exc)) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_install_dir(folder: Path, fill: Callable[[Path], None]) -> None:
    """Create ``folder`` by filling a temporary sibling with ``fill(tmp)`` and renaming it in.

    An existing ``folder`` is replaced only once the new one is complete: it is renamed aside first,
    the new one renamed in, then the old one removed, so a failure at any point leaves one whole
    folder in place. New folders and files get the user's umask.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(folder.name), suffix=TEMP_SUFFIX, dir=folder.parent))
    old: Path | None = None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        fill(tmp)
        for p in tmp.rglob("*"):
            if p.is_file() and not p.is_symlink():
                os.chmod(p, 0o666 & ~_umask())
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}-{time.monotonic_ns()}{TEMP_SUFFIX}")
            os.rename(folder, old)
        os.rename(tmp, folder)
        tmp = None  # type: ignore[assignment]
    except BaseException:
        if old is not None and not folder.exists():
            os.rename(old, folder)
            old = None
        raise
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def remove_stale_temporaries(folder: Path, older_than_s: float = STALE_AFTER_S) -> int:
    """Delete ``.NAME.*.tmp`` files and folders left in ``folder`` by a killed write; their count."""
    removed = 0
    now = time.time()
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return 0
    for p in entries:
        if not (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)):
            continue
        try:
            if now - p.lstat().st_mtime < older_than_s:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed += 1
        except OSError:
            continue
    return removed


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_output(path: Path, inputs: Iterable[Path | str | None] = ()) -> Path:
    """Refuse an output whose folder is missing or not writable, or that is one of ``inputs``.

    Call before long work so a bad ``-o`` is found in a second, not after a minute of inverting.
    """
    path = Path(path)
    target = resolve_target(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise InputError(f"{path}: the output folder {folder} does not exist")
    if not folder.is_dir():
        raise InputError(f"{path}: {folder} is not a folder")
    if target.is_dir():
        raise InputError(f"{path}: is a folder, not a file")
    for inp in inputs:
        if inp is None:
            continue
        if str(inp).startswith("seed:"):
            continue
        if Path(inp).exists() and target.exists() and _same_file(target, Path(inp)):
            raise InputError(f"{path}: the output is the input file; choose another output name")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{path}: the output folder {folder} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise InputError(f"{path}: the file exists and is not writable")
    return path


def regular_file_status(path: Path, what: str, error: type[StyleStudioError] = InputError) -> os.stat_result:
    """``path``'s status, or one ``error`` line when it is missing, a folder, or a pipe or device.

    Checked before opening: ``open`` on a FIFO blocks until a writer comes, and a folder or a device
    is never ``what`` (e.g. "an image file", "a model file")."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(os_error_message(path, exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a folder, not {what}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: is a pipe, device or socket, not {what}")
    return st


def write_member(zf: "zipfile.ZipFile", name: str, data: bytes | str) -> None:
    """Write one zip member with a fixed timestamp, so the same content always gives the same
    bytes (a library kept in a project is compared and deduplicated by its bytes' digest)."""
    import zipfile

    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)
