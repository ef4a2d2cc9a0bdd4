"""The default model's k×k preview heads (issue #15): how they are fitted, that they beat 1×1 heads
on held-out faces, and that a model store written with 1×1 heads loads and is brought up to date."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from stylestudio.engine.mobilestylegan import provision
from stylestudio.engine.mobilestylegan.network import MobileStyleGAN
from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore, load_native, save_native


def _faces(gen: MobileStyleGAN, seed: int, n: int):
    rng = torch.Generator().manual_seed(seed)
    return [gen.styles(gen.mapping(torch.randn(1, gen.z_dim, generator=rng), 0.7)) for _ in range(n)]


def test_the_fit_folds_back_into_the_conv_it_solved_for() -> None:
    """The design matrix's columns (centre channels, principal components at each off-centre tap)
    and the k×k conv assembled from the solution are the same function: a target that *is* a
    3×3 conv of the features is reproduced, with all channels and with fewer components."""
    torch.manual_seed(0)
    feat = torch.randn(4, 24, 20, 20)
    feat[:, 12:] = feat[:, :12] * 0.5 + 0.1 * feat[:, 12:]  # correlated channels, as real ones are
    true_w, true_b = torch.randn(12, 24, 3, 3) * 0.2, torch.randn(12)
    target = F.conv2d(feat, true_w, true_b, padding=1)
    for components, tol in ((24, 1e-3), (16, 0.15)):
        fit = provision._HeadFit(24, 3, components)
        rng = torch.Generator().manual_seed(1)
        fit.set_projection(feat, 400, rng)
        for n in range(4):
            fit.add(feat[n], target[n], 400, rng)
        weight, bias, rms = fit.solve()
        pred = F.conv2d(feat, weight, bias, padding=1)
        err = float((pred - target).square().mean().sqrt() / target.std())
        assert err < tol, (components, err)
        assert abs(rms - float((pred - target).square().mean().sqrt())) < 0.05 * target.std() + 1e-3


@pytest.mark.slow  # fits 1×1 heads on the 32 provisioning faces
def test_kxk_heads_beat_1x1_heads_on_held_out_faces(default_generator) -> None:
    """The shipped heads against 1×1 heads fitted the same way (same faces, same pixels per face):
    LPIPS to the final frame area-downsampled, on faces the fit never saw."""
    from stylestudio.engine.perceptual import load_lpips

    gen = default_generator
    assert gen.preview_kernels == provision.PREVIEW_KERNELS
    # the 128-, 256- and 512-px previews, and how much better each must be (12 faces in
    # bench/preview_heads.py: 0.86, 0.78, 0.55 of the 1×1 heads' LPIPS)
    stops = {64: ("b64", 0.97), 128: ("b128", 0.92), 256: ("b256", 0.8)}
    old = provision.with_preview_kernels(gen, None)
    provision.fit_preview_heads(old, stages=tuple(name for name, _ in stops.values()))
    lpips = load_lpips(size=None)
    scores: dict[tuple[int, str], float] = {}
    with torch.no_grad():
        for styles in _faces(gen, 90000, 3):
            final = gen.synthesize(styles).image
            for stop in stops:
                ref = F.adaptive_avg_pool2d(final, 2 * stop).clamp(-1, 1)
                for key, model in (("1x1", old), ("kxk", gen)):
                    img = model.synthesize(styles, stop_resolution=stop).image.clamp(-1, 1)
                    scores[stop, key] = scores.get((stop, key), 0.0) + float(lpips(img, ref).mean()) / 3
    for stop, (_, ratio) in stops.items():
        assert scores[stop, "kxk"] < ratio * scores[stop, "1x1"], (stop, scores)


def _write_old_store(gen: MobileStyleGAN, root: Path) -> Path:
    """The default model as a store written before issue #15: 1×1 heads, no ``preview_kernels``."""
    old = provision.with_preview_kernels(gen, None)
    provision.fit_preview_heads(old, samples=4)
    folder = root / DEFAULT_MODEL
    save_native(old, folder, {"package": provision.PACKAGE, "preview_heads": {"samples": 4, "seed": 1}})
    meta = json.loads((folder / "model.json").read_text())
    del meta["config"]["preview_kernels"]
    (folder / "model.json").write_text(json.dumps(meta, indent=2))
    (folder / "notes.txt").write_text("kept")
    return folder


def test_an_old_store_loads_and_ends_with_the_new_heads(default_generator, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(provision, "PREVIEW_SAMPLES", 4)  # the refit itself, kept short for the test
    folder = _write_old_store(default_generator, tmp_path)
    as_stored = load_native(folder)  # the old format still loads strictly, as 1×1 heads
    assert as_stored.preview_kernels == (1,) * 7
    assert as_stored.stages["b128"].preview.weight.shape[-1] == 1

    messages: list[tuple[str, float]] = []
    gen = ModelStore(tmp_path).load(progress=lambda m, f: messages.append((m, f)))
    assert gen.preview_kernels == provision.PREVIEW_KERNELS
    assert any("preview heads" in m for m, _ in messages) and messages[-1][1] == 1.0
    assert float(gen.stages["b128"].preview.weight[:, :, 0, 0].abs().sum()) > 0  # an off-centre tap is used
    meta = json.loads((folder / "model.json").read_text())
    assert meta["config"]["preview_kernels"] == list(provision.PREVIEW_KERNELS)
    assert meta["source"]["preview_heads"]["kernels"] == list(provision.PREVIEW_KERNELS)
    assert meta["source"]["package"] == provision.PACKAGE  # the rest of the metadata is kept
    assert (folder / "notes.txt").read_text() == "kept"
    assert not [p for p in tmp_path.iterdir() if p.name != DEFAULT_MODEL]  # no temporaries left

    again: list[tuple[str, float]] = []
    reloaded = ModelStore(tmp_path).load(progress=lambda m, f: again.append((m, f)))
    assert not any("preview heads" in m for m, _ in again)  # stored: no second refit
    styles = _faces(gen, 7, 1)[0]
    with torch.no_grad():
        assert torch.equal(gen.synthesize(styles, stop_resolution=128).image,
                           reloaded.synthesize(styles, stop_resolution=128).image)


def test_a_small_model_with_3x3_heads_keeps_the_preview_contract() -> None:
    torch.manual_seed(0)
    gen = MobileStyleGAN(z_dim=32, w_dim=32, resolution=64, channels=(32, 32, 16, 8), mapping_layers=2,
                         preview_kernels=(1, 3, 3)).eval().requires_grad_(False)
    for p in gen.buffers():
        if p.dim() == 4 and p.shape[0] == 12:
            p.normal_()
    styles = gen.styles(gen.broadcast_w(gen.w_avg[None]))
    for r in (4, 8, 16):
        img = gen.synthesize(styles, stop_resolution=r).image
        assert img.shape[-1] == gen.preview_size(r)
    clone = MobileStyleGAN(**json.loads(json.dumps(gen.config)))
    clone.load_state_dict(gen.state_dict(), strict=True)
    for bad in ((1, 2, 3), (1, 3), "3"):
        with pytest.raises(ValueError):
            MobileStyleGAN(z_dim=32, w_dim=32, resolution=64, channels=(32, 32, 16, 8), mapping_layers=2,
                           preview_kernels=bad)
