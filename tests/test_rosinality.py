"""rosinality/stylegan2-pytorch checkpoints: architecture inference, rosinality's own outputs, bad files."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from stylestudio.engine.model_store import read_checkpoint
from stylestudio.engine.stylegan2.network import StyleGAN2Generator
from stylestudio.engine.stylegan2.rosinality import load_rosinality
from stylestudio.errors import ModelFormatError

ORACLE = Path(__file__).resolve().parents[1].parent / "shared" / "oracle"
WIDE = ORACLE / "stylegan2_wide32"
CKPT = WIDE / "rosinality-g_ema.pt"
needs_oracle = pytest.mark.skipif(not CKPT.is_file(),
                                  reason=f"oracle folder {ORACLE} is absent (it sits beside the repo in CI)")
TOL = 1e-4


@pytest.fixture(scope="module")
def ckpt() -> dict[str, Any]:
    return torch.load(CKPT, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def gen() -> StyleGAN2Generator:
    torch.set_num_threads(1)
    return load_rosinality(CKPT)


def _refused(path: Path) -> str:
    with pytest.raises(ModelFormatError) as info:
        load_rosinality(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(path.name + ":"), message
    return message


@needs_oracle
def test_architecture_is_inferred_from_the_keys(gen: StyleGAN2Generator, ckpt: dict[str, Any]) -> None:
    cfg = gen.config
    assert (cfg["img_resolution"], cfg["z_dim"], cfg["w_dim"], cfg["num_mapping_layers"]) == (32, 512, 512, 2)
    assert cfg["resample_filter"] == [0.125, 0.375, 0.375, 0.125]
    assert gen.num_ws == 8 and all(l.channels == 512 for l in gen.style_layout)
    assert gen.w_avg.dtype == torch.float32
    assert torch.equal(gen.w_avg, ckpt["latent_avg"].float())
    assert all(t.dtype == torch.float32 for t in gen.state_dict().values())


@needs_oracle
def test_reproduces_rosinality_forward_pass(gen: StyleGAN2Generator) -> None:
    gold = np.load(WIDE / "golden.npz")
    ros = np.load(WIDE / "golden_rosinality.npz")
    with torch.no_grad():
        images = {
            "img_w_psi07": gen.synthesis(torch.from_numpy(gold["ws_psi07"][:, 0])),
            "img_z_psi07": gen.generate(torch.from_numpy(gold["z"]), psi=0.7),
            "img_wplus": gen.synthesis(torch.from_numpy(gold["wplus"])),
        }
    for key, img in images.items():
        assert float((img - torch.from_numpy(ros[key])).abs().max()) <= TOL, key


@needs_oracle
def test_model_store_dispatches_torch_archives_here() -> None:
    gen, fmt = read_checkpoint(CKPT)
    assert fmt == "rosinality" and gen.arch == "stylegan2"


@needs_oracle
def test_checkpoint_without_latent_avg_estimates_it(tmp_path: Path, ckpt: dict[str, Any],
                                                    gen: StyleGAN2Generator) -> None:
    path = tmp_path / "no-avg.pt"
    torch.save({"g_ema": ckpt["g_ema"]}, path)
    other = load_rosinality(path)
    with torch.no_grad():
        sample = other.map_z(torch.randn(2048, other.z_dim, generator=torch.Generator().manual_seed(1))).mean(0)
    # the estimate is the mean of the mapped latents, so an independent sample lands close to it
    assert float((other.w_avg - sample).norm() / sample.norm()) < 0.1
    for name, value in gen.state_dict().items():
        if name != "w_avg":
            assert torch.equal(other.state_dict()[name], value), name


@needs_oracle
@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.99])
def test_truncated_checkpoint_is_a_format_error(tmp_path: Path, fraction: float) -> None:
    data = CKPT.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: int(len(data) * fraction)])
    _refused(path)


@needs_oracle
def test_missing_weights_are_a_format_error(tmp_path: Path, ckpt: dict[str, Any]) -> None:
    state = dict(ckpt["g_ema"])
    del state["convs.3.conv.modulation.weight"]
    path = tmp_path / "incomplete.pt"
    torch.save({"g_ema": state, "latent_avg": ckpt["latent_avg"]}, path)
    assert "convs.3.conv.modulation.weight" in _refused(path)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch '{self.marker}'",)


def test_executable_content_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}, "latent_avg": _Payload(marker)}, path)
    assert "refused" in _refused(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", random.Random(1).randbytes(2048), b"PK\x03\x04 not really a zip"],
                         ids=["empty", "random", "fake-zip"])
def test_garbage_is_a_format_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    _refused(path)


@pytest.mark.parametrize("obj", [torch.zeros(3), {"g_ema": {"foo": torch.zeros(1)}}, [1, 2]],
                         ids=["tensor", "foreign-state-dict", "list"])
def test_other_torch_files_are_format_errors(tmp_path: Path, obj: Any) -> None:
    path = tmp_path / "other.pt"
    torch.save(obj, path)
    _refused(path)


@needs_oracle
def test_training_checkpoint_with_options_namespace_loads(tmp_path: Path, ckpt: dict[str, Any]) -> None:
    """rosinality's train.py saves ``args`` (an argparse.Namespace) beside the weights."""
    import argparse

    path = tmp_path / "050000.pt"
    torch.save({**ckpt, "args": argparse.Namespace(size=32, latent=512, n_mlp=2)}, path)
    assert load_rosinality(path).resolution == 32
