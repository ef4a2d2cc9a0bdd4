"""The default model's display heads (issue #15): k×k preview heads used only for previews that are
shown. How they are fitted, that they beat the 1×1 heads on held-out faces, that the editor's
previews use them while every measurement keeps the 1×1 heads bit for bit, and that a store
written before them loads and is brought up to date once."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from stylestudio.engine.document import EditDocument, SeedSource, seed_to_z
from stylestudio.engine.mobilestylegan import display_heads, provision
from stylestudio.engine.mobilestylegan.network import MobileStyleGAN
from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore, load_native, save_native


def _faces(gen: MobileStyleGAN, seed: int, n: int):
    rng = torch.Generator().manual_seed(seed)
    return [gen.styles(gen.mapping(torch.randn(1, gen.z_dim, generator=rng), 0.7)) for _ in range(n)]


def _without_display_heads(gen: MobileStyleGAN) -> MobileStyleGAN:
    """``gen`` as stored before display heads existed: same weights, no display heads."""
    config = {k: v for k, v in gen.config.items() if k != "display_kernels"}
    old = MobileStyleGAN(**config)
    old.load_state_dict({k: v for k, v in gen.state_dict().items() if ".display." not in k}, strict=True)
    return old.eval().requires_grad_(False)


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
        fit = display_heads.HeadFit(24, 3, components)
        rng = torch.Generator().manual_seed(1)
        fit.set_projection(feat, 400, rng)
        for n in range(4):
            fit.add(feat[n], target[n], 400, rng)
        weight, bias, rms = fit.solve()
        pred = F.conv2d(feat, weight, bias, padding=1)
        err = float((pred - target).square().mean().sqrt() / target.std())
        assert err < tol, (components, err)
        assert abs(rms - float((pred - target).square().mean().sqrt())) < 0.05 * target.std() + 1e-3


def test_display_heads_beat_the_analysis_heads_on_held_out_faces(default_generator) -> None:
    """LPIPS of each preview to the final frame area-downsampled, on faces neither fit saw."""
    from stylestudio.engine.perceptual import load_lpips

    gen = default_generator
    assert gen.display_kernels == display_heads.DISPLAY_KERNELS
    # how much better each must be (12 faces in bench/preview_heads.py: 0.86, 0.78, 0.55)
    ratios = {64: 0.97, 128: 0.92, 256: 0.8}
    lpips = load_lpips(size=None)
    scores: dict[tuple[int, bool], float] = {}
    with torch.no_grad():
        for styles in _faces(gen, 90000, 3):
            final = gen.synthesize(styles).image
            for stop in ratios:
                ref = F.adaptive_avg_pool2d(final, 2 * stop).clamp(-1, 1)
                for display in (False, True):
                    img = gen.synthesize(styles, stop_resolution=stop, display=display).image.clamp(-1, 1)
                    scores[stop, display] = scores.get((stop, display), 0.0) + float(lpips(img, ref).mean()) / 3
    for stop, ratio in ratios.items():
        assert scores[stop, True] < ratio * scores[stop, False], (stop, scores)


def test_measurements_keep_the_analysis_heads_and_the_editor_shows_the_display_heads(default_generator) -> None:
    """Coarse renders without ``display`` are those of the model without display heads, bit for bit
    (labels, the face-text encoder and region fits were calibrated on them); the editor's drag
    preview and thumbnails are drawn with the display heads."""
    from stylestudio.engine.render import to_uint8
    from stylestudio.engine.session import Engine

    gen = default_generator
    old = _without_display_heads(gen)
    styles = _faces(gen, 11, 1)[0]
    with torch.no_grad():
        for stop in (64, 128, 256):
            assert torch.equal(gen.synthesize(styles, stop_resolution=stop).image,
                               old.synthesize(styles, stop_resolution=stop).image)
            assert torch.equal(gen.synthesize(styles, stop_resolution=stop, display=True).image,
                               old.synthesize(styles, stop_resolution=stop, display=True).image) is False
        assert torch.equal(gen.synthesize(styles, display=True).image, gen.synthesize(styles).image)

    engine = Engine(device="cpu", fast_previews=False)  # exact previews: the heads are compared bit for bit
    m = engine.model(DEFAULT_MODEL)
    assert m.generator is gen or m.generator.display_kernels == gen.display_kernels
    doc = EditDocument(DEFAULT_MODEL, SeedSource(seed=5, psi=0.7))
    image = engine.render(doc, "preview", 256)
    stop = image.shape[-1] // 2  # MobileStyleGAN's preview is twice its stage's resolution
    with torch.no_grad():
        styles = m.renderers["preview"].document_styles(doc)
        shown = m.generator.synthesize(styles, stop_resolution=stop, display=True).image
        measured = m.generator.synthesize(styles, stop_resolution=stop).image
    assert torch.equal(image, shown) and not torch.equal(image, measured)

    thumb = engine.thumbnails(DEFAULT_MODEL, (5,), 0.7, 128)[0]
    with torch.no_grad():
        ws = m.generator.mapping(seed_to_z(5, m.generator.z_dim), 0.7)
        thumbs = {}
        for display in (False, True):
            img = m.generator.synthesize(m.generator.styles(ws), stop_resolution=engine.thumbnail_stop(m, 128),
                                         display=display).image
            img = F.interpolate(img.float(), size=(128, 128), mode="bilinear", antialias=True, align_corners=False)
            thumbs[display] = to_uint8(img)
    assert (thumb == thumbs[True]).all() and not (thumb == thumbs[False]).all()


def _write_old_store(gen: MobileStyleGAN, root: Path) -> Path:
    """The default model as a store written before display heads: no ``display_kernels``."""
    folder = root / DEFAULT_MODEL
    save_native(_without_display_heads(gen), folder,
                {"package": provision.PACKAGE, "preview_heads": {"samples": 16, "seed": 1}})
    (folder / "notes.txt").write_text("kept")
    return folder


def test_an_old_store_loads_and_gets_display_heads_once(default_generator, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(display_heads, "DISPLAY_SAMPLES", 4)  # the fit itself, kept short for the test
    folder = _write_old_store(default_generator, tmp_path)
    meta = json.loads((folder / "model.json").read_text())
    assert "display_kernels" not in meta["config"]
    as_stored = load_native(folder)  # the old format still loads strictly, without display heads
    assert not any(as_stored.display_kernels) and not hasattr(as_stored.stages["b128"], "display")

    messages: list[tuple[str, float]] = []
    gen = ModelStore(tmp_path).load(progress=lambda m, f: messages.append((m, f)))
    assert gen.display_kernels == display_heads.DISPLAY_KERNELS
    assert any("drag previews" in m for m, _ in messages) and messages[-1][1] == 1.0
    assert float(gen.stages["b128"].display.weight[:, :, 0, 0].abs().sum()) > 0  # an off-centre tap is used
    for name in gen.stage_names[:-1]:  # the analysis heads are untouched
        assert torch.equal(gen.stages[name].preview.weight, as_stored.stages[name].preview.weight)
    meta = json.loads((folder / "model.json").read_text())
    assert meta["config"]["display_kernels"] == list(display_heads.DISPLAY_KERNELS)
    assert meta["source"]["display_heads"]["kernels"] == list(display_heads.DISPLAY_KERNELS)
    assert meta["source"]["package"] == provision.PACKAGE  # the rest of the metadata is kept
    assert (folder / "notes.txt").read_text() == "kept"
    assert not [p for p in tmp_path.iterdir() if p.name != DEFAULT_MODEL]  # no temporaries left

    again: list[tuple[str, float]] = []
    reloaded = ModelStore(tmp_path).load(progress=lambda m, f: again.append((m, f)))
    assert not any("drag previews" in m for m, _ in again)  # stored: no second fit
    styles = _faces(gen, 7, 1)[0]
    with torch.no_grad():
        assert torch.equal(gen.synthesize(styles, stop_resolution=128, display=True).image,
                           reloaded.synthesize(styles, stop_resolution=128, display=True).image)


def test_a_small_model_with_display_heads_keeps_the_preview_contract() -> None:
    torch.manual_seed(0)
    gen = MobileStyleGAN(z_dim=32, w_dim=32, resolution=64, channels=(32, 32, 16, 8), mapping_layers=2,
                         display_kernels=(0, 3, 3)).eval().requires_grad_(False)
    for p in gen.buffers():
        if p.dim() == 4 and p.shape[0] == 12:
            p.normal_()
    styles = gen.styles(gen.broadcast_w(gen.w_avg[None]))
    for r in (4, 8, 16):
        for display in (False, True):
            img = gen.synthesize(styles, stop_resolution=r, display=display).image
            assert img.shape[-1] == gen.preview_size(r)
    clone = MobileStyleGAN(**json.loads(json.dumps(gen.config)))
    clone.load_state_dict(gen.state_dict(), strict=True)
    for bad in ((0, 2, 3), (0, 3), "3", (0, 3, 9)):
        with pytest.raises(ValueError):
            MobileStyleGAN(z_dim=32, w_dim=32, resolution=64, channels=(32, 32, 16, 8), mapping_layers=2,
                           display_kernels=bad)
