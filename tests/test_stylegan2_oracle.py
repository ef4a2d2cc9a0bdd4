"""StyleGAN2Generator against NVlabs' own numbers, loaded through StyleStudio's loaders.

stylegan2_tiny comes from the official snapshot pickle, stylegan2_wide32 (512 channels) from the
rosinality checkpoint of the same weights; both must reproduce NVlabs' golden.npz.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stylestudio.engine.generator import flatten_styles, unflatten_styles
from stylestudio.engine.stylegan2.network import StyleGAN2Generator

ORACLE = Path(__file__).resolve().parents[1].parent / "shared" / "oracle"
TOL = 1e-4

pytestmark = pytest.mark.skipif(not (ORACLE / "stylegan2_tiny").is_dir(),
                                reason=f"oracle folder {ORACLE} is absent (it sits beside the repo in CI)")


def _load(name: str) -> StyleGAN2Generator:
    if name == "tiny":
        from stylestudio.engine.stylegan2.nvlabs_pickle import load_nvlabs_pickle

        return load_nvlabs_pickle(ORACLE / "stylegan2_tiny" / "network-snapshot.pkl")
    from stylestudio.engine.stylegan2.rosinality import load_rosinality

    return load_rosinality(ORACLE / "stylegan2_wide32" / "rosinality-g_ema.pt")


class Case:
    """A loaded oracle model, its golden arrays and the renders every test compares."""

    def __init__(self, name: str) -> None:
        torch.set_num_threads(1)
        self.name = name
        self.gen = _load(name)
        folder = "stylegan2_tiny" if name == "tiny" else "stylegan2_wide32"
        self.gold = dict(np.load(ORACLE / folder / "golden.npz"))
        g = self.gen
        with torch.no_grad():
            self.z = torch.from_numpy(self.gold["z"])
            self.ws = torch.from_numpy(self.gold["ws_psi07"])
            self.styles = g.styles(self.ws)
            self.full = g.synthesize(self.styles, taps=g.tap_names, keep_cache=True)
            self.images = {
                "img_const_psi07": self.full.image,
                "img_none_psi07": g.synthesis(self.ws, noise_mode="none"),
                "img_const_psi1": g.generate(self.z),
                "img_const_wplus": g.synthesis(torch.from_numpy(self.gold["wplus"])),
                "img_const_cut2": g.generate(self.z, psi=0.7, cutoff=2),
            }

    def golden(self, key: str) -> torch.Tensor:
        return torch.from_numpy(self.gold[key])


@pytest.fixture(scope="module", params=["tiny", "wide32"])
def case(request: pytest.FixtureRequest) -> Case:
    return Case(request.param)


def _err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max())


@pytest.mark.parametrize("key,psi,cutoff", [("ws_psi1", 1.0, None), ("ws_psi07", 0.7, None),
                                            ("ws_psi07_cut2", 0.7, 2)])
def test_mapping(case: Case, key: str, psi: float, cutoff: int | None) -> None:
    with torch.no_grad():
        assert _err(case.gen.mapping(case.z, psi, cutoff), case.golden(key)) <= TOL


def test_style_vectors_in_execution_order(case: Case) -> None:
    names = [str(n) for n in case.gold["style_names"]]
    assert [layer.name for layer in case.gen.style_layout] == names
    assert list(case.styles) == names
    for i, (name, style) in enumerate(case.styles.items()):
        assert _err(style, case.golden(f"style{i:02d}")) <= TOL, name


def test_style_layout_matches_nvlabs(case: Case) -> None:
    g = case.gen
    assert g.num_ws == 8 and g.stage_names == ("b4", "b8", "b16", "b32")
    assert [l.w_index for l in g.style_layout] == [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7]
    assert [l.stage for l in g.style_layout] == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert [l.kind for l in g.style_layout] == ["conv", "rgb"] + ["conv", "conv", "rgb"] * 3
    assert [l.resolution for l in g.style_layout] == [4, 4] + [8] * 3 + [16] * 3 + [32] * 3
    for layer in g.style_layout:
        assert case.styles[layer.name].shape == (4, layer.channels)


@pytest.mark.parametrize("res", [4, 8, 16, 32])
def test_block_outputs(case: Case, res: int) -> None:
    stage = case.gen.stage_names.index(f"b{res}")
    x = case.full.features[f"b{res}.conv1"]
    assert _err(x, case.golden(f"block{res}_x")) <= TOL
    if stage + 1 in case.full.cache:  # the state entering the next stage is this block's output
        next_x, next_img = case.full.cache[stage + 1]
        assert torch.equal(next_x, x)
        assert _err(next_img, case.golden(f"block{res}_img")) <= TOL
    else:
        assert _err(case.full.image, case.golden(f"block{res}_img")) <= TOL


@pytest.mark.parametrize("key", ["img_const_psi07", "img_none_psi07", "img_const_psi1",
                                 "img_const_wplus", "img_const_cut2"])
def test_images(case: Case, key: str) -> None:
    assert _err(case.images[key], case.golden(key)) <= TOL


def test_stop_resolution_returns_that_blocks_skip_image(case: Case) -> None:
    with torch.no_grad():
        out = case.gen.synthesize(case.styles, stop_resolution=16, taps=["b16.conv1"])
    assert out.image.shape[-1] == 16
    assert _err(out.image, case.golden("block16_img")) <= TOL
    assert _err(out.features["b16.conv1"], case.golden("block16_x")) <= TOL
    with pytest.raises(ValueError):
        case.gen.synthesize(case.styles, stop_resolution=16, taps=["b32.conv1"])


def test_start_from_cache_equals_full_render(case: Case) -> None:
    g = case.gen
    edited = dict(case.styles)
    edited["b16.conv1"] = edited["b16.conv1"] + 0.5
    edited["b32.torgb"] = edited["b32.torgb"] * 1.5
    start = g.first_stage_of(["b16.conv1", "b32.torgb"])
    assert start == 2
    with torch.no_grad():
        full = g.synthesize(edited)
        # earlier styles are ignored when starting from the cache: garbage there must not matter
        edited["b4.conv1"] = torch.full_like(edited["b4.conv1"], 1e3)
        part = g.synthesize(edited, start=start, cache=case.full.cache, keep_cache=True)
    assert torch.equal(part.image, full.image)
    assert not torch.equal(full.image, case.full.image)
    assert set(part.cache) == {0, 1, 2, 3}
    with pytest.raises(ValueError):
        g.synthesize(edited, start=2)  # no cache


def test_noise_modes(case: Case) -> None:
    g = case.gen
    one = {k: v[:1] for k, v in case.styles.items()}
    with torch.no_grad():
        r1 = g.synthesize(one, noise_mode="random").image
        r2 = g.synthesize(one, noise_mode="random").image
    assert not torch.equal(r1, r2)
    assert not torch.allclose(r1, case.images["img_const_psi07"][:1], atol=TOL)
    with pytest.raises(ValueError):
        g.synthesize(case.styles, noise_mode="fixed")


def test_gradients_flow_to_styles_and_latents(case: Case) -> None:
    g = case.gen
    ws = case.ws[:1].clone().requires_grad_(True)
    styles = g.styles(ws)
    flat = flatten_styles(styles).detach().requires_grad_(True)
    out = g.synthesize(unflatten_styles(flat, g.style_layout), taps=["b8.conv1"], stop_resolution=8)
    (out.image.square().mean() + out.features["b8.conv1"].mean()).backward()
    assert flat.grad is not None and flat.grad.abs().sum() > 0
    g.synthesis(ws, stop_resolution=8).square().mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0


def test_config_rebuilds_the_same_generator(case: Case) -> None:
    cfg = json.loads(json.dumps(case.gen.config))
    assert cfg["img_resolution"] == 32
    clone = StyleGAN2Generator(**cfg)
    clone.load_state_dict(case.gen.state_dict())
    with torch.no_grad():
        img = clone.synthesis(case.ws[:1], stop_resolution=8)
        ref = case.gen.synthesis(case.ws[:1], stop_resolution=8)
    assert torch.equal(img, ref)


def test_any_architecture_builds_and_runs() -> None:
    torch.manual_seed(0)
    g = StyleGAN2Generator(z_dim=16, w_dim=24, img_resolution=64, img_channels=3, num_mapping_layers=3,
                           mapping_layer_features=20, channel_base=256, channel_max=32, conv_clamp=0.5)
    assert g.num_ws == 10 and len(g.style_layout) == 14
    assert g.stage_names == ("b4", "b8", "b16", "b32", "b64")
    assert [l.channels for l in g.style_layout if l.name.startswith("b64")] == [8, 4, 4]
    with torch.no_grad():
        ws = g.mapping(torch.randn(2, 16), psi=0.5)
        out = g.synthesize(g.styles(ws), taps=g.tap_names)
    assert ws.shape == (2, 10, 24)
    assert out.image.shape == (2, 3, 64, 64)
    assert all(f.abs().max() <= 0.5 for n, f in out.features.items() if not n.endswith("torgb"))
    for layer in g.style_layout:
        if layer.kind == "conv":
            assert out.features[layer.name].shape[-1] == layer.resolution


def test_native_model_store_round_trip(tmp_path: Path) -> None:
    from stylestudio.engine.model_store import ModelStore

    gen = _load("tiny")
    store = ModelStore(tmp_path)
    info = store.add(gen, "tiny", {"format": "nvlabs-pkl"})
    assert info.arch == "stylegan2" and info.resolution == 32
    again = store.load("tiny")
    z = torch.randn(2, gen.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(again.generate(z, psi=0.7), gen.generate(z, psi=0.7))
