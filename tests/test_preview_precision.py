"""Drag previews in reduced precision: only coarse display frames, never a frame that is kept."""
from __future__ import annotations

import pytest
import torch

from stylestudio.engine import precision
from stylestudio.engine.document import EditDocument, SeedSource
from stylestudio.engine.edits.direction import DirectionEdit
from stylestudio.engine.render import Renderer

from test_gui_support import TINY, ensure_test_model

BF16 = torch.bfloat16


@pytest.fixture(scope="module")
def gen():
    torch.set_num_threads(1)
    return ensure_test_model(TINY)


def moved(seed: int, amount: float) -> EditDocument:
    doc = EditDocument(model=TINY, source=SeedSource(seed=seed))
    return doc.with_edit(DirectionEdit(library="sefa", name="factor1", amount=amount, id="s"))


def test_the_choice_follows_the_preference_the_hardware_and_the_override(monkeypatch, caplog) -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv(precision.ENV, raising=False)
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: device.type == "cpu")
    assert precision.preview_dtype(cpu) == BF16
    assert precision.preview_dtype(cpu, enabled=False) is None, "the user's 'no' wins under auto"
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: False)
    assert precision.preview_dtype(cpu) is None, "emulated bfloat16 is slower: stay exact"
    monkeypatch.setenv(precision.ENV, "bfloat16")
    assert precision.preview_dtype(cpu, enabled=False) == BF16
    monkeypatch.setenv(precision.ENV, "float32")
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: True)
    assert precision.preview_dtype(cpu) is None
    monkeypatch.setenv(precision.ENV, "half please")
    assert precision.preview_dtype(cpu) == BF16
    assert "half please" in caplog.text
    monkeypatch.undo()
    assert precision.native_bfloat16(gpu) is False, "GPU previews stay exact (not measured)"


def test_a_reduced_preview_is_close_and_every_kept_frame_stays_exact(gen) -> None:
    doc = moved(6, 1.5)
    coarse = max(l.resolution for l in gen.style_layout if l.stage == len(gen.stage_names) - 2)
    r = Renderer(gen, TINY)
    exact = Renderer(gen, TINY).render(doc, stop_resolution=coarse, display=True)
    fast = r.render(doc, stop_resolution=coarse, display=True, precision=BF16)
    assert fast.dtype == torch.float32 and fast.shape == exact.shape
    assert 0 < (fast - exact).abs().mean() < 0.02, "a bfloat16 picture, a fraction of a grey level off"
    copy = r.reduced(gen, BF16)
    assert all(p.dtype == BF16 for p in copy.parameters())
    assert all(p.dtype == torch.float32 for p in gen.parameters()), "the model itself is untouched"
    # the full frame after it (the slider's release) is exact: nothing of the copy leaks into it
    assert torch.equal(r.render(doc), Renderer(gen, TINY).render(doc))
    # full frames, and coarse frames that are measured (display=False), ignore the request
    assert torch.equal(r.render(doc, precision=BF16), Renderer(gen, TINY).render(doc))
    assert torch.equal(r.render(doc, stop_resolution=coarse, precision=BF16),
                       Renderer(gen, TINY).render(doc, stop_resolution=coarse))
    # drags keep reusing the copy's own early stages, and match a fresh reduced render
    other = moved(6, -1.0)
    again = r.render(other, stop_resolution=coarse, display=True, precision=BF16)
    assert r.reduced(gen, BF16) is copy
    assert torch.equal(again, Renderer(gen, TINY).render(other, stop_resolution=coarse, display=True,
                                                           precision=BF16))


def test_the_engine_draws_drag_previews_reduced_only_when_asked(gen, monkeypatch) -> None:
    from stylestudio.engine.session import Engine

    monkeypatch.setenv(precision.ENV, "bfloat16")
    e = Engine(device="cpu")
    e.MIN_PREVIEW_PX = 8
    assert e.preview_precision == BF16
    doc = moved(9, 1.0)
    e.render(doc, "preview", 16)
    renderer = e.model(TINY).renderers["preview"]
    assert renderer._reduced is not None and renderer._reduced[1] == BF16
    final = e.render(doc, "final", 16)
    assert torch.equal(final, Renderer(gen, TINY).render(doc))
    monkeypatch.setenv(precision.ENV, "auto")
    e.set_fast_previews(False)
    assert e.preview_precision is None and e.fast_previews is False
    e.model(TINY).renderers["preview"]._reduced = None
    e.render(moved(9, 2.0), "preview", 16)
    assert e.model(TINY).renderers["preview"]._reduced is None


def test_the_default_models_reduced_preview_is_within_a_grey_level(default_generator) -> None:
    gen = default_generator
    doc = EditDocument(model="mobilestylegan-ffhq", source=SeedSource(seed=77, psi=0.7))
    exact = Renderer(gen, "m").render(doc, stop_resolution=128, display=True)
    fast = Renderer(gen, "m").render(doc, stop_resolution=128, display=True, precision=BF16)
    assert fast.shape[-1] == 256
    grey_levels = (fast - exact).abs() * 127.5
    assert 0 < grey_levels.mean() < 1.0 and grey_levels.max() < 16


def test_a_fine_tuned_photos_preview_is_drawn_by_a_copy_of_its_own_weights(gen) -> None:
    """A PTI-tuned source is drawn by its tuned generator; its reduced preview copies those weights."""
    from stylestudio.engine.inversion import apply_weight_deltas, synthesis_parameters

    doc = moved(12, 0.5)
    coarse = max(l.resolution for l in gen.style_layout if l.stage == len(gen.stage_names) - 2)
    params = dict(gen.named_parameters())
    name = synthesis_parameters(gen)[0]
    deltas = {name: (0.5 * torch.randn(params[name].shape, generator=torch.Generator().manual_seed(1))).numpy()}
    tuned = apply_weight_deltas(gen, deltas)
    r = Renderer(gen, TINY)
    styles = r.document_styles(doc)
    exact = Renderer(gen, TINY).render_styles(styles, coarse, tuned, display=True)
    base = Renderer(gen, TINY).render_styles(styles, coarse, gen, display=True)
    fast = r.render_styles(styles, coarse, tuned, display=True, precision=BF16)
    assert (fast - exact).abs().mean() < 0.02 < (base - exact).abs().mean()
    first = r.reduced(tuned, BF16)
    assert id(first) in r._last
    other = apply_weight_deltas(gen, {name: -deltas[name]})
    r.render_styles(styles, coarse, other, display=True, precision=BF16)
    assert r.reduced(other, BF16) is not first and id(first) not in r._last, "the old copy is let go"
