"""The network photo encoder (issue 19): its file, the fallback to the ridge encoder, training it
from the command line, the inversion using it, and the shipped one against the ridge one."""
from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch

from stylestudio.cli import main as cli_main
from stylestudio.engine.inversion import InversionSettings, iter_inversion, model_encoder
from stylestudio.engine.inversion.encoder import FeatureEncoder
from stylestudio.engine.inversion.encoder_training import NetTraining, fit_net_encoder
from stylestudio.engine.inversion.net_encoder import Inputs, NetConfig, NetEncoder, NetHead
from stylestudio.engine.resources import Resources
from stylestudio.errors import InputError

from test_encoder import make_encoder

torch.set_num_threads(1)  # tiny tensors: a second thread only waits on a busy machine

TINY = NetConfig(num_ws=4, w_dim=8, components=3, grid3=2, grid4=1, ch3=4, ch4=2, hidden=16, offset_components=4)


def tiny_net(seed: int = 0, model: str = "test-model") -> NetEncoder:
    torch.manual_seed(seed)
    head = NetHead(TINY)
    with torch.no_grad():  # a head that does something: offsets and the residual are zero at init
        for p in (head.to_w.weight, head.to_offsets.weight):
            p.normal_(0, 0.3)
    return NetEncoder(model, head.eval(), {"training": {"faces": 3}})


def random_inputs(n: int, cfg: NetConfig = TINY, seed: int = 1) -> Inputs:
    g = torch.Generator().manual_seed(seed)
    return Inputs(torch.randn(n, cfg.stats_dim, generator=g), torch.rand(n, 512, cfg.grid3, cfg.grid3, generator=g),
                  torch.rand(n, 512, cfg.grid4, cfg.grid4, generator=g))


# ---------------------------------------------------------------------------------------------
# the file


def test_save_load_round_trip(tmp_path) -> None:
    enc = tiny_net()
    enc.save(tmp_path / "default.pt")
    back = NetEncoder.load(tmp_path / "default.pt")
    assert back.model == "test-model" and back.head.cfg == TINY and back.meta["training"]["faces"] == 3
    x = random_inputs(5)
    w, wplus = enc.predict_inputs(x)
    w2, wplus2 = back.predict_inputs(x)
    assert w.shape == (5, 8) and wplus.shape == (5, 4, 8)
    assert np.abs(wplus - w[:, None]).max() > 1e-3  # the rows really differ
    np.testing.assert_allclose(wplus2, wplus, atol=2e-2)  # weights are stored as float16
    raw = torch.load(tmp_path / "default.pt", weights_only=True)  # plain tensors and numbers only
    assert raw["format"] == "stylestudio-net-encoder"


def _damage(path, how: str) -> None:
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "not a model":
        path.write_bytes(b"hello, I am a text file\n")
    elif how == "another format":
        torch.save({"format": "something-else"}, path)
    elif how == "newer version":
        blob = torch.load(path, weights_only=True)
        torch.save({**blob, "format_version": 99}, path)
    elif how == "wrong shape":
        blob = torch.load(path, weights_only=True)
        blob["state"]["to_w.weight"] = torch.zeros(3, 3)
        torch.save(blob, path)
    elif how == "not finite":
        blob = torch.load(path, weights_only=True)
        blob["state"]["linear.weight"][0, 0] = float("nan")
        torch.save(blob, path)
    elif how == "absurd config":
        blob = torch.load(path, weights_only=True)
        torch.save({**blob, "config": {**blob["config"], "num_ws": 10 ** 9}}, path)
    elif how == "malicious pickle":
        class Evil:
            def __reduce__(self):
                return (print, ("executed!",))
        path.write_bytes(pickle.dumps({"format": "stylestudio-net-encoder", "evil": Evil()}))


@pytest.mark.parametrize("how", ["truncated", "not a model", "another format", "newer version", "wrong shape",
                                 "not finite", "absurd config", "malicious pickle"])
def test_a_damaged_file_is_one_clear_error(tmp_path, capsys, how) -> None:
    path = tmp_path / "default.pt"
    tiny_net().save(path)
    _damage(path, how)
    with pytest.raises(InputError) as err:
        NetEncoder.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert "executed!" not in capsys.readouterr().out


def test_model_encoder_prefers_the_network_and_falls_back_to_the_ridge(tmp_path, monkeypatch, caplog) -> None:
    from stylestudio import paths

    monkeypatch.setenv(paths.ENV_HOME, str(tmp_path))
    gen = type("G", (), {"w_dim": 8, "num_ws": 4})()
    folder = tmp_path / "encoder" / "no-such-model"
    make_encoder(model="no-such-model").save(folder / "default.json")
    assert isinstance(model_encoder(Resources(gen, "no-such-model")), FeatureEncoder)
    tiny_net(model="no-such-model").save(folder / "default.pt")
    assert isinstance(model_encoder(Resources(gen, "no-such-model")), NetEncoder)
    tiny_net(model="another-model").save(folder / "default.pt")  # made for another model: refused
    with caplog.at_level(logging.WARNING):
        res = Resources(gen, "no-such-model")
        assert isinstance(model_encoder(res), FeatureEncoder)
        assert isinstance(model_encoder(res), FeatureEncoder)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "another-model" in lines[0] and "ridge" in lines[0]  # once, not per photo
    (folder / "default.pt").write_bytes(b"garbage")
    assert isinstance(model_encoder(Resources(gen, "no-such-model")), FeatureEncoder)


# ---------------------------------------------------------------------------------------------
# training


def test_fitting_starts_at_the_ridge_and_learns_what_it_cannot() -> None:
    """A target the linear path cannot express (a product of two inputs) is learned by the head's
    shared w (what the inversion uses); at epoch 0 the head answers exactly as the ridge encoder
    it starts from."""
    from test_gui_support import TINY as TINY_MODEL, ensure_test_model

    gen = ensure_test_model(TINY_MODEL)
    torch.manual_seed(0)
    cfg = NetConfig(gen.num_ws, gen.w_dim, components=8, hidden=64, offset_components=4, dropout=0.0)
    basis = torch.linalg.qr(torch.randn(gen.w_dim, 8))[0].T

    def faces(n: int, seed: int) -> tuple[Inputs, torch.Tensor]:
        x = random_inputs(n, cfg, seed=seed)
        x.tap3.zero_()
        x.tap4[:, 2:] = 0  # few inputs besides the two that matter: learnable from 270 faces
        x.tap4[:, :2] = x.tap4[:, :2, :1, :1]
        a, b = x.tap4[:, 0, 0, 0] - 0.5, x.tap4[:, 1, 0, 0] - 0.5
        coef = torch.stack([x.stats[:, 0], x.stats[:, 1], 8 * a * b] + [torch.zeros(n)] * 5, 1)
        return x, gen.w_avg + coef @ basis * 0.4

    x, w = faces(300, 3)
    wplus = w[:, None].repeat(1, gen.num_ws, 1).numpy()
    # a "ridge" that gets the linear part exactly right and cannot see the product
    ridge = make_encoder(w_dim=gen.w_dim, k=8, spec=cfg.spec)
    ridge.x_mean[:], ridge.x_scale[:], ridge.coef[:], ridge.intercept[:] = 0, 1, 0, 0
    ridge.coef[0, 0] = ridge.coef[1, 1] = 1
    ridge.w_basis, ridge.w_mean = (basis * 0.4).numpy(), gen.w_avg.numpy().copy()
    enc = fit_net_encoder(gen, "m", x, wplus, np.arange(300), cfg, NetTraining(epochs=0), ridge)
    np.testing.assert_allclose(enc.predict_inputs(x[:4])[0], ridge.predict_features(x.stats[:4].numpy()), atol=1e-4)

    trained = fit_net_encoder(gen, "m", x, wplus, np.arange(300), cfg, NetTraining(epochs=20, lr=3e-3, batch=16),
                              ridge)
    hist = trained.meta["training"]["history"]
    assert hist[0]["epoch"] == 0 and len(hist) == 21
    x_new, w_new = faces(100, 4)  # faces neither fit saw
    err_ridge = float(np.square(ridge.predict_features(x_new.stats.numpy()) - w_new.numpy()).mean())
    err_net = float(np.square(trained.predict_inputs(x_new)[0] - w_new.numpy()).mean())
    assert err_net < 0.5 * err_ridge, (err_net, err_ridge)


def test_train_encoder_command_and_the_inversion_uses_it(tmp_path, capsys) -> None:
    """``stylestudio train-encoder`` on a tiny model: renders, caches, fits, installs; a second run
    reuses the cached renders; the photo inversion then starts from the trained encoder."""
    from test_gui_support import TINY as TINY_MODEL, ensure_test_model

    gen = ensure_test_model(TINY_MODEL)
    cache = tmp_path / "faces"
    args = ["train-encoder", "--model", TINY_MODEL, "--faces", "8", "--epochs", "2", "--cache", str(cache)]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "encoder trained on 8 faces (16 images)" in out
    cached = sorted(cache.glob("train*.npz"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    assert cli_main(args) == 0
    assert cached[0].stat().st_mtime_ns == stamp  # nothing rendered again
    cached[0].write_bytes(cached[0].read_bytes()[:1000])  # a run killed while writing its cache
    assert cli_main(args) == 0
    with np.load(cached[0], allow_pickle=False) as f:  # rendered again, whole
        assert f["wplus"].shape[0] == 8 and "degraded_tap4" in f.files
    assert cli_main(args[:-1] + [str(cached[0])]) == 2  # a file where the cache folder should be
    assert "must be a folder" in capsys.readouterr().err

    res = Resources(gen, TINY_MODEL)
    enc = model_encoder(res)
    assert isinstance(enc, NetEncoder) and enc.meta["training"]["faces"] == 8
    with torch.no_grad():
        target = ((gen.synthesis(gen.mapping(torch.randn(1, gen.z_dim), 0.7)).clamp(-1, 1) + 1) * 127.5)
    target = target[0].permute(1, 2, 0).round().byte().numpy()
    # the estimate's first candidate is the trained encoder's prediction (its public interface)
    from stylestudio.engine.inversion.invert import _candidates, to_tensor_image
    from stylestudio.engine.perceptual import load_lpips

    settings = InversionSettings(estimate_steps=1, estimate_resolution=16, optimise=False)
    lp = load_lpips(size=None)
    cands, kinds = _candidates(gen, gen.w_avg, to_tensor_image(target), lp, settings, enc)
    assert kinds[0] == "encoder"
    np.testing.assert_allclose(cands[0].numpy(), enc.predict(target, lp), atol=1e-5)
    assert list(iter_inversion(gen, target, settings, lp, encoder=enc))[-1].result is not None


def test_train_encoder_refuses_bad_arguments(capsys) -> None:
    assert cli_main(["train-encoder", "--faces", "0"]) == 2
    assert "error:" in capsys.readouterr().err


def test_render_minutes_stops_rendering_and_trains_on_what_was_made(tmp_path, monkeypatch) -> None:
    """``--render-minutes``: no chunk is started once the budget is spent (here: after the first,
    on a clock that runs a minute per call); cached chunks count as made and cost nothing."""
    from stylestudio.engine.inversion import encoder_training as et
    from test_gui_support import TINY as TINY_MODEL, ensure_test_model

    gen = ensure_test_model(TINY_MODEL)
    from stylestudio.engine.perceptual import load_lpips

    monkeypatch.setattr(et, "CHUNK", 4)  # small chunks: the test is about when rendering stops
    lp = load_lpips(size=None)
    cfg = NetConfig.for_generator(gen)
    ticks = iter(range(0, 10_000, 60))
    faces = 2 * et.CHUNK + 5
    _, wplus, groups = et.prepare_faces(gen, lp, cfg, tmp_path, faces, render_seconds=30,
                                        clock=lambda: float(next(ticks)))
    assert len(np.unique(groups)) == et.CHUNK and len(wplus) == 2 * et.CHUNK  # one chunk, sharp + degraded
    assert [p.name for p in sorted(tmp_path.glob("train*.npz"))] == ["train000.npz"]
    # without a budget the rest is rendered; the cached chunk is read, not rendered again
    stamp = (tmp_path / "train000.npz").stat().st_mtime_ns
    _, wplus, groups = et.prepare_faces(gen, lp, cfg, tmp_path, faces)
    assert len(np.unique(groups)) == faces and (tmp_path / "train000.npz").stat().st_mtime_ns == stamp


def test_training_chunks_never_reuse_the_benchmarks_held_out_seeds() -> None:
    """bench/encoder_heldout.py draws its faces from seed 500 000 (w) and 500 001 (ψ), and
    bench/inversion.py from 1000–1049: no chunk of the 50 000 faces a run may render uses them
    for any of its three draws (w, ψ = seed + 1, the mixing face = seed + 7919)."""
    from stylestudio.engine.inversion.encoder_training import CHUNK, MAX_FACES, chunk_seed

    held_out = {500_000, 500_001, *range(1000, 1050)}
    for seed in (0, 1, 2):
        used = {chunk_seed(seed, k) + d for k in range(MAX_FACES // CHUNK) for d in (0, 1, 7919)}
        assert not used & held_out


@pytest.mark.parametrize("rows", [3, 4000])
def test_the_heads_w_basis_costs_memory_in_the_rows_not_their_square(monkeypatch, rows) -> None:
    """init_head needs all w_dim principal directions; the full SVD made a rows × rows matrix too,
    38 GB for 16 500 training faces (the fit then failed). Few rows (fewer than w_dim) still give
    every direction, with no spread on the missing ones."""
    from stylestudio.engine.inversion import encoder_training

    sizes: list[int] = []
    svd = torch.linalg.svd

    def spy(a, full_matrices=True):
        u, s, vt = svd(a, full_matrices=full_matrices)
        sizes.append(u.numel())
        return u, s, vt

    monkeypatch.setattr(torch.linalg, "svd", spy)
    cfg = TINY
    n = max(1, rows * 7 // cfg.num_ws)  # init_head keeps every 7th W+ row
    wplus = torch.randn(n, cfg.num_ws, cfg.w_dim)
    head = encoder_training.init_head(cfg, torch.randn(n, random_inputs(1).stats.shape[1]), wplus, None)
    assert sizes and max(sizes) <= max(cfg.w_dim, (n * cfg.num_ws + 6) // 7) * cfg.w_dim
    assert all(torch.isfinite(p).all() for p in head.parameters())
