"""Native model format: a round trip gives the same images; damage is reported, not crashed on."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stylestudio.engine.model_store import ModelStore, load_native, read_checkpoint
from stylestudio.errors import ModelFormatError, UnknownModelError


@pytest.fixture(scope="module")
def tiny(oracle_dir: Path):
    gen, fmt = read_checkpoint(oracle_dir / "stylegan2_tiny/network-snapshot.pkl")
    assert fmt == "nvlabs-pkl"
    return gen


def test_native_round_trip_is_exact(tiny, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    info = store.add(tiny, "tiny", {"format": "nvlabs-pkl"})
    assert info.arch == "stylegan2" and info.resolution == 32
    again = store.load("tiny")
    z = torch.randn(2, tiny.z_dim)
    with torch.no_grad():
        assert torch.equal(tiny.generate(z, 0.7), again.generate(z, 0.7))
    assert store.names() == ["tiny"]


def test_damaged_weights_are_detected(tiny, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    info = store.add(tiny, "tiny", {})
    weights = info.path / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="hash"):
        load_native(info.path)


def test_unknown_and_invalid_names(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    with pytest.raises(UnknownModelError):
        store.load("nope")
    with pytest.raises(ModelFormatError):
        store.folder("../escape")
