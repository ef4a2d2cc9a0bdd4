"""The inversion encoder: its file format, the shipped one's quality, and that the estimate uses it."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from stylestudio.engine.inversion import InversionSettings, iter_inversion, model_encoder
from stylestudio.engine.inversion.encoder import FeatureEncoder, FeatureSpec, expected_feature_dim
from stylestudio.engine.render import to_uint8
from stylestudio.engine.resources import Resources
from stylestudio.errors import InputError

SMALL = FeatureSpec(size=32, stats=(0,), grid_layer=0, grid=1, pixels=1)


def make_encoder(w_dim: int = 8, k: int = 3, seed: int = 0, model: str = "test-model",
                 spec: FeatureSpec = SMALL) -> FeatureEncoder:
    rng = np.random.RandomState(seed)
    d = expected_feature_dim(spec)
    basis = np.linalg.qr(rng.randn(w_dim, k))[0].T
    return FeatureEncoder(model, spec, rng.randn(d).astype(np.float32), rng.uniform(0.5, 2, d).astype(np.float32),
                          rng.randn(k, d).astype(np.float32) * 0.1, rng.randn(k).astype(np.float32),
                          rng.randn(w_dim).astype(np.float32), basis.astype(np.float32),
                          {"training": {"faces": 7}, "validation": {"encoder": {"lpips": 0.5}}})


def constant_encoder(w: np.ndarray, model: str, spec: FeatureSpec = SMALL) -> FeatureEncoder:
    """An encoder that predicts ``w`` whatever the photo (zero weights): a spy for the estimate."""
    d = expected_feature_dim(spec)
    w_dim = w.shape[0]
    return FeatureEncoder(model, spec, np.zeros(d, np.float32), np.ones(d, np.float32), np.zeros((1, d), np.float32),
                          np.zeros(1, np.float32), np.asarray(w, np.float32),
                          np.eye(1, w_dim, dtype=np.float32))


# ---------------------------------------------------------------------------------------------
# the file format


def test_save_load_round_trip(tmp_path) -> None:
    enc = make_encoder()
    enc.save(tmp_path / "default.json")
    back = FeatureEncoder.load(tmp_path / "default.json")
    assert back.model == "test-model" and back.spec == SMALL and back.w_dim == 8
    assert back.meta["training"]["faces"] == 7 and back.meta["validation"]["encoder"]["lpips"] == 0.5
    x = np.random.RandomState(1).randn(4, enc.feature_dim).astype(np.float32)
    # coefficients and basis are stored as float16: predictions agree to well under a w-std
    np.testing.assert_allclose(back.predict_features(x), enc.predict_features(x), atol=2e-2)
    header = json.loads((tmp_path / "default.json").read_text())
    assert header["format"] == "stylestudio-encoder" and header["arrays"] == "default.npz"
    with np.load(tmp_path / "default.npz", allow_pickle=False) as f:
        assert set(f.files) == {"x_mean", "x_scale", "coef", "intercept", "w_mean", "w_basis"}


def test_predict_takes_an_aligned_photo(tmp_path) -> None:
    enc = make_encoder()
    img = (np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)
    w = enc.predict(img)
    assert w.shape == (8,) and w.dtype == np.float32 and np.all(np.isfinite(w))
    with pytest.raises(InputError):
        enc.predict(img.astype(np.float32))


def _rewrite(path, **changes) -> None:
    header = json.loads(path.read_text())
    header.update(changes)
    path.write_text(json.dumps(header))


@pytest.mark.parametrize("damage", ["not json", "foreign json", "newer version", "missing arrays", "wrong shape",
                                    "object array", "truncated npz", "spec mismatch", "path escape"])
def test_corrupt_or_foreign_files_are_refused(tmp_path, damage: str) -> None:
    path = tmp_path / "default.json"
    make_encoder().save(path)
    npz = tmp_path / "default.npz"
    if damage == "not json":
        path.write_bytes(b"\x80\x04\x95 a pickle, not json")
    elif damage == "foreign json":
        path.write_text(json.dumps({"format": "stylestudio-directions", "format_version": 1}))
    elif damage == "newer version":
        _rewrite(path, format_version=99)
    elif damage == "missing arrays":
        npz.unlink()
    elif damage == "wrong shape":
        with np.load(npz) as f:
            arrays = dict(f)
        arrays["coef"] = arrays["coef"][:, :-1]
        np.savez(npz, **arrays)
    elif damage == "object array":
        with np.load(npz) as f:
            arrays = dict(f)
        arrays["coef"] = np.array([{"x": 1}], dtype=object)
        np.savez(npz, **arrays)
    elif damage == "truncated npz":
        npz.write_bytes(npz.read_bytes()[:100])
    elif damage == "spec mismatch":
        _rewrite(path, features={**dataclasses.asdict(SMALL), "grid": 2})
    elif damage == "path escape":
        _rewrite(path, arrays="../elsewhere.npz")
    with pytest.raises(InputError):
        FeatureEncoder.load(path)


def test_resources_find_user_encoder_and_refuse_another_models(tmp_path, monkeypatch) -> None:
    from stylestudio import paths

    monkeypatch.setenv(paths.ENV_HOME, str(tmp_path))
    gen = type("G", (), {"w_dim": 8})()
    res = Resources(gen, "no-such-model")
    assert model_encoder(res) is None  # nothing shipped or trained: the estimate goes on without
    make_encoder(model="no-such-model").save(tmp_path / "encoder" / "no-such-model" / "default.json")
    assert model_encoder(res).w_dim == 8
    make_encoder(model="another-model").save(tmp_path / "encoder" / "third-model" / "default.json")
    with pytest.raises(InputError, match="another-model"):
        model_encoder(Resources(gen, "third-model"))


# ---------------------------------------------------------------------------------------------
# the estimate uses it (tiny StyleGAN2: fast)


@pytest.fixture(scope="module")
def tiny(oracle_dir):
    from stylestudio.engine.stylegan2.nvlabs_pickle import load_nvlabs_pickle

    torch.set_num_threads(1)
    return load_nvlabs_pickle(oracle_dir / "stylegan2_tiny" / "network-snapshot.pkl").eval().requires_grad_(False)


def test_estimate_starts_from_the_encoder(tiny) -> None:
    with torch.no_grad():
        w_true = tiny.mapping(torch.from_numpy(np.random.RandomState(5).randn(1, tiny.z_dim).astype(np.float32)), 0.9)
        target = to_uint8(tiny.synthesis(w_true))
    spy = constant_encoder(w_true[0, 0].numpy(), "tiny")
    # the untrained tiny model renders far outside [-1, 1], so against the clamped target only
    # LPIPS ranks the candidates sensibly: no pixel term here
    settings = InversionSettings(estimate_candidates=4, estimate_steps=2, estimate_resolution=32, optimise=False,
                                 pixel_weight=0.0)

    with_enc = list(iter_inversion(tiny, target, settings, encoder=spy))
    first = with_enc[0]
    assert first.stage == "estimate" and first.step == 0
    np.testing.assert_allclose(first.wplus[0, 0].numpy(), w_true[0, 0].numpy(), atol=1e-5)  # the encoder's w
    assert with_enc[-1].result.origin == "encoder"

    without = list(iter_inversion(tiny, target, dataclasses.replace(settings, use_encoder=False), encoder=spy))
    assert without[-1].result.origin in ("average face", "random face")
    assert first.loss < without[0].loss  # the true latent scores better than any random face

    with pytest.raises(InputError):
        next(iter_inversion(tiny, target, settings, encoder=constant_encoder(np.zeros(tiny.w_dim + 1), "tiny")))


# ---------------------------------------------------------------------------------------------
# the shipped encoder on the default model


@pytest.fixture(scope="module")
def shipped(default_generator):
    enc = model_encoder(Resources(default_generator, "mobilestylegan-ffhq"))
    if enc is None:
        pytest.fail("resources/encoder/mobilestylegan-ffhq/default.json is missing")
    return enc


def test_shipped_encoder_beats_the_average_face(default_generator, shipped) -> None:
    from stylestudio.engine.inversion.encoder import downsample
    from stylestudio.engine.inversion.invert import w_statistics
    from stylestudio.engine.perceptual import load_lpips

    gen = default_generator
    lp = load_lpips(size=None)
    _, w_std = w_statistics(gen, samples=500)
    assert shipped.meta["training"]["faces"] >= 1000
    z = torch.from_numpy(np.random.RandomState(123).randn(3, gen.z_dim).astype(np.float32))
    with torch.no_grad():
        w_true = gen.w_avg.lerp(gen.map_z(z), 0.8)  # seeds the encoder never saw
        targets = gen.synthesize(gen.styles(gen.broadcast_w(w_true))).image
        w_pred = torch.from_numpy(np.stack([shipped.predict(to_uint8(t[None])) for t in targets]))
        ws = torch.cat([w_pred, gen.w_avg[None]])
        recs = downsample(gen.synthesize(gen.styles(gen.broadcast_w(ws))).image, 256)
        small = downsample(targets, 256)
        lp_enc = lp(recs[:3], small)
        lp_avg = lp(recs[3:].expand(3, -1, -1, -1), small)
    err_enc = (w_pred - w_true).square().mean(1).sqrt() / w_std
    err_avg = (gen.w_avg[None] - w_true).square().mean(1).sqrt() / w_std
    assert torch.all(err_enc < err_avg), (err_enc, err_avg)
    assert torch.all(lp_enc < lp_avg), (lp_enc, lp_avg)
    assert float(lp_enc.mean()) < float(lp_avg.mean()) - 0.05


def test_estimate_uses_the_shipped_encoder(default_generator, shipped) -> None:
    gen = default_generator
    with torch.no_grad():
        z = torch.from_numpy(np.random.RandomState(321).randn(1, gen.z_dim).astype(np.float32))
        target = to_uint8(gen.synthesis(gen.broadcast_w(gen.w_avg.lerp(gen.map_z(z), 0.7)[:1])))
    settings = InversionSettings(estimate_steps=0, optimise=False)
    with_enc = list(iter_inversion(gen, target, settings, encoder=shipped))
    without = list(iter_inversion(gen, target, dataclasses.replace(settings, use_encoder=False), encoder=shipped))
    assert with_enc[-1].result.origin == "encoder" and without[-1].result.origin != "encoder"
    # the encoder's guess alone scores better than the best of the 17 faces the estimate used to try
    assert with_enc[0].loss < without[0].loss
    assert with_enc[-1].lpips < without[-1].lpips
