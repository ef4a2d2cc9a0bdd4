"""One contract, checked against both generators: the argument checks live in the base class, every
generator answers an unknown tap with the same exception, ``preview_size`` says what a stopped
synthesis returns, and ``whole_stages`` changes speed, never pixels."""
from __future__ import annotations

import pytest
import torch

from stylestudio.engine.generator import Generator, UnknownTapError


def _stylegan2() -> Generator:
    from stylestudio.engine.stylegan2.network import StyleGAN2Generator

    torch.manual_seed(0)
    return StyleGAN2Generator(z_dim=32, w_dim=32, img_resolution=32, num_mapping_layers=2, channel_base=512,
                              channel_max=32).eval().requires_grad_(False)


def _mobilestylegan() -> Generator:
    from stylestudio.engine.mobilestylegan.network import MobileStyleGAN

    torch.manual_seed(0)
    return MobileStyleGAN(z_dim=32, w_dim=32, resolution=64, channels=(32, 32, 16, 8), mapping_layers=2).eval().requires_grad_(False)


@pytest.fixture(params=["stylegan2", "mobilestylegan"], scope="module")
def gen(request) -> Generator:
    try:
        return {"stylegan2": _stylegan2, "mobilestylegan": _mobilestylegan}[request.param]()
    except TypeError as exc:  # pragma: no cover - constructor signature drift shows up here
        pytest.fail(f"cannot build a small {request.param}: {exc}")


def _styles(gen: Generator):
    return gen.styles(gen.broadcast_w(gen.w_avg[None]))


def test_unknown_tap_is_the_same_exception_everywhere(gen) -> None:
    with pytest.raises(UnknownTapError, match="unknown taps"):
        gen.synthesize(_styles(gen), taps=("no-such-tap",))
    assert issubclass(UnknownTapError, KeyError) and issubclass(UnknownTapError, ValueError)


@pytest.mark.parametrize("kwargs,needle", [
    ({"noise_mode": "loud"}, "noise_mode"),
    ({"start": 99}, "start stage"),
    ({"start": -1}, "start stage"),
    ({"start": 1}, "cache"),
])
def test_bad_arguments_are_refused_by_the_base_class(gen, kwargs, needle) -> None:
    with pytest.raises(ValueError, match=needle):
        gen.synthesize(_styles(gen), **kwargs)


def test_preview_size_is_what_a_stopped_synthesis_returns(gen) -> None:
    styles = _styles(gen)
    for r in sorted({layer.resolution for layer in gen.style_layout}):
        img = gen.synthesize(styles, stop_resolution=r).image
        assert img.shape[-1] == img.shape[-2] == gen.preview_size(r), (r, tuple(img.shape))
    assert gen.synthesize(styles).image.shape[-1] == gen.resolution


def test_whole_stages_changes_no_pixel(gen, monkeypatch) -> None:
    if hasattr(gen, "tile_bytes"):  # force strips on this small model, so "whole" differs in how
        monkeypatch.setattr(gen, "tile_bytes", 1, raising=False)
    styles = _styles(gen)
    before = gen.synthesize(styles).image
    with gen.whole_stages():
        if hasattr(gen, "tile_bytes"):
            assert gen.tile_bytes == 0
        inside = gen.synthesize(styles).image
    if hasattr(gen, "tile_bytes"):
        assert gen.tile_bytes == 1  # the strip setting comes back
    after = gen.synthesize(styles).image
    assert torch.allclose(before, inside, atol=1e-5) and torch.equal(before, after)
