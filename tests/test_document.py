"""Edit documents and the renderer: immutable values, exact serialisation, pure rendering."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from stylestudio.engine.directions.library import Direction, DirectionLibrary
from stylestudio.engine.document import (DOCUMENT_VERSION, EditDocument, ExportSettings, LatentSource, SeedSource,
                                         seed_to_z)
from stylestudio.engine.edits.direction import DirectionEdit
from stylestudio.engine.render import Renderer, to_uint8
from stylestudio.errors import InputError

from test_gui_support import TINY, ensure_test_model


@pytest.fixture(scope="module")
def gen():
    torch.set_num_threads(1)
    return ensure_test_model(TINY)


def edit(name="factor1", amount=1.0, **kw):
    return DirectionEdit(library="sefa", name=name, amount=amount, id=kw.pop("id", f"sefa:{name}"), **kw)


def test_seed_mapping_is_the_nvlabs_convention():
    z = seed_to_z(42, 8)
    assert torch.equal(z, torch.from_numpy(np.random.RandomState(42).randn(1, 8).astype(np.float32)))
    with pytest.raises(InputError):
        seed_to_z(-1, 8)
    with pytest.raises(InputError):
        seed_to_z(2**32, 8)


def test_documents_are_immutable_and_edits_keep_their_place():
    doc = EditDocument(model="m", source=SeedSource(seed=1))
    a, b = edit("factor1", 1.0), edit("factor2", -0.5)
    d1 = doc.with_edit(a).with_edit(b)
    assert doc.edits == () and [e.id for e in d1.edits] == ["sefa:factor1", "sefa:factor2"]
    d2 = d1.with_edit(dataclasses.replace(a, amount=2.0))
    assert [e.id for e in d2.edits] == ["sefa:factor1", "sefa:factor2"]  # replaced in place
    assert d2.edit("sefa:factor1").amount == 2.0 and d1.edit("sefa:factor1").amount == 1.0
    assert d2.without_edit("sefa:factor1").edits == (b,)
    assert d2.edit("nope") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        d2.model = "other"  # type: ignore[misc]


def test_json_round_trip_with_arrays():
    wplus = np.random.RandomState(0).randn(1, 4, 8).astype(np.float32)
    doc = EditDocument(model="m", source=LatentSource(wplus=wplus, name="mine"),
                       edits=(edit("factor1", 1.25), edit("factor3", -2.0, keep=("factor1",), enabled=False)),
                       export=ExportSettings(format="jpeg", size=512, quality=88), title="Portrait")
    body, arrays = doc.to_json()
    body = json.loads(json.dumps(body))  # really JSON
    assert body["document_version"] == DOCUMENT_VERSION and list(arrays) == ["source.wplus"]
    back = EditDocument.from_json(body, arrays)
    assert back.edits == doc.edits and back.export == doc.export and back.title == "Portrait"
    assert np.array_equal(back.source.wplus, wplus) and back.source.key() == doc.source.key()


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b.update(document_version=DOCUMENT_VERSION + 1), "newer"),
    (lambda b: b["edits"].append({"kind": "no-such-edit"}), "unknown edit kind"),
    (lambda b: b["source"].update(kind="nowhere"), "unknown face source"),
    (lambda b: b.pop("model"), "damaged"),
])
def test_bad_documents_are_refused_clearly(mutate, message):
    body, arrays = EditDocument(model="m", source=SeedSource(seed=1), edits=(edit(),)).to_json()
    mutate(body)
    with pytest.raises(InputError, match=message):
        EditDocument.from_json(body, arrays)


def test_rendering_is_a_pure_function_of_the_document(gen):
    doc = EditDocument(model=TINY, source=SeedSource(seed=5), edits=(edit("factor1", 1.5),))
    a = Renderer(gen, TINY).render(doc)
    r = Renderer(gen, TINY)
    r.render(EditDocument(model=TINY, source=SeedSource(seed=9)))  # unrelated state in the caches
    b = r.render(doc)
    assert torch.equal(a, b)
    plain = Renderer(gen, TINY).render(EditDocument(model=TINY, source=SeedSource(seed=5)))
    assert (a - plain).abs().max() > 0.05  # the edit does something
    # a disabled or zero edit is no edit
    off = doc.with_edit(dataclasses.replace(doc.edits[0], enabled=False))
    zero = doc.with_edit(dataclasses.replace(doc.edits[0], amount=0.0))
    assert torch.equal(Renderer(gen, TINY).render(off), plain)
    assert torch.equal(Renderer(gen, TINY).render(zero), plain)


def test_edits_apply_in_document_order_and_compose(gen):
    base = EditDocument(model=TINY, source=SeedSource(seed=2))
    ab = base.with_edit(edit("factor1", 1.0)).with_edit(edit("factor2", -1.0))
    ba = base.with_edit(edit("factor2", -1.0)).with_edit(edit("factor1", 1.0))
    # direction edits are offsets in style space: the order does not matter for them
    torch.testing.assert_close(Renderer(gen, TINY).render(ab), Renderer(gen, TINY).render(ba), atol=1e-5, rtol=0)


def test_stage_cache_restarts_late_and_changes_nothing(gen):
    """An edit of late W+ rows only reuses the early stages — with identical pixels."""
    last_rows = tuple(range(gen.num_ws - 2, gen.num_ws))
    vec = np.random.RandomState(3).randn(gen.w_dim).astype(np.float32)
    lib = DirectionLibrary(TINY, [Direction("fine", "Fine", vec / np.linalg.norm(vec), last_rows, unit=4.0)])
    r = Renderer(gen, TINY)
    r.resources.put("directions", "test", lib)
    doc = EditDocument(model=TINY, source=SeedSource(seed=4))
    r.render(doc)
    reused0 = r.stats["reused_stages"]
    moved = doc.with_edit(DirectionEdit(library="test", name="fine", amount=1.0, id="f"))
    img = r.render(moved)
    assert r.stats["reused_stages"] > reused0
    fresh = Renderer(gen, TINY)
    fresh.resources.put("directions", "test", lib)
    assert torch.equal(img, fresh.render(moved))
    assert not torch.equal(img, fresh.render(doc))


def test_stop_resolution_gives_a_coarse_preview(gen):
    doc = EditDocument(model=TINY, source=SeedSource(seed=6))
    r = Renderer(gen, TINY)
    full = r.render(doc)
    preview = r.render(doc, stop_resolution=16)
    assert full.shape[-1] == 32 and preview.shape[-1] == 16
    # the preview is a coarse version of the same picture
    down = torch.nn.functional.avg_pool2d(full, 2)
    corr = np.corrcoef(down.flatten().numpy(), preview.flatten().numpy())[0, 1]
    assert corr > 0.5


def test_full_frame_continues_from_its_preview_and_stays_exact(gen):
    """Previews and full frames share one stage cache: the release of a slider runs only the
    stages past the preview, a preview of changed styles never reuses stale later stages, and
    every frame equals a fresh render of the same document."""
    doc = EditDocument(model=TINY, source=SeedSource(seed=6))
    moved = doc.with_edit(edit("factor1", 2.0))
    r = Renderer(gen, TINY)

    def fresh(d, stop=None):
        return Renderer(gen, TINY).render(d, stop_resolution=stop)

    preview = r.render(moved, stop_resolution=16)
    before = r.stats["reused_stages"]
    full = r.render(moved)
    assert r.stats["reused_stages"] - before == gen.stage_of_resolution(16) + 1
    assert torch.equal(full, fresh(moved)) and torch.equal(preview, fresh(moved, 16))
    # a change of every layer: nothing of the old cache may survive into the next frames
    assert torch.equal(r.render(doc, stop_resolution=16), fresh(doc, 16))
    assert torch.equal(r.render(doc), fresh(doc))
    assert torch.equal(r.render(moved), fresh(moved))


def test_a_coarser_preview_drops_the_later_stages_it_made_stale(gen):
    """Full frame of A, then a coarse preview of B (B differs from A in middle stages only), then
    the full frame of B: the stages past the preview are B's, not A's left-overs."""
    early_rows = {l.w_index for l in gen.style_layout if l.stage < 2}
    rows = tuple(sorted({l.w_index for l in gen.style_layout} - early_rows))  # B differs from stage 2 on
    late = [l for l in gen.style_layout if l.w_index in rows]
    vec = np.random.RandomState(5).randn(gen.w_dim).astype(np.float32)
    lib = DirectionLibrary(TINY, [Direction("mid", "Mid", vec / np.linalg.norm(vec), rows, unit=4.0)])
    a = EditDocument(model=TINY, source=SeedSource(seed=8))
    b = a.with_edit(DirectionEdit(library="test", name="mid", amount=2.0, id="m"))

    def renderer():
        r = Renderer(gen, TINY)
        r.resources.put("directions", "test", lib)
        return r

    r = renderer()
    assert gen.first_stage_of([l.name for l in late]) == 2 and len(gen.stage_names) > 3
    coarse = max(l.resolution for l in gen.style_layout if l.stage == 1)  # stops before stage 2
    r.render(a)
    r.render(b, stop_resolution=coarse)
    assert torch.equal(r.render(b), renderer().render(b))


def test_to_uint8_clamps_and_rounds():
    img = torch.tensor([[[[-2.0, -1.0], [0.0, 1.5]]]]).repeat(1, 3, 1, 1)
    out = to_uint8(img)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[..., 0].tolist() == [[0, 0], [128, 255]]


# ---- nothing black: non-finite latents and styles are refused ---------------------------------------


def test_render_refuses_a_nan_latent(gen):
    wplus = np.zeros((gen.num_ws, gen.w_dim), np.float32)
    wplus[1, 3] = np.nan
    doc = EditDocument(model=TINY, source=LatentSource(wplus=wplus, name="bad"))
    with pytest.raises(InputError, match="latent of 'bad' holds NaN or infinite values"):
        Renderer(gen, TINY).render(doc)


def test_render_refuses_non_finite_styles(gen):
    r = Renderer(gen, TINY)
    styles = r.document_styles(EditDocument(model=TINY, source=SeedSource(seed=1)))
    name = next(iter(styles))
    bad = dict(styles, **{name: styles[name].clone().fill_(float("inf"))})
    with pytest.raises(InputError, match="NaN or infinite"):
        r.render_styles(bad)


def test_an_edit_that_gives_nan_is_refused(gen):
    vec = np.full(gen.w_dim, np.nan, np.float32)
    lib = DirectionLibrary(TINY, [Direction("broken", "Broken", vec, (), unit=1.0)])
    r = Renderer(gen, TINY)
    r.resources.put("directions", "test", lib)
    doc = EditDocument(model=TINY, source=SeedSource(seed=4),
                       edits=(DirectionEdit(library="test", name="broken", amount=1.0, id="b"),))
    with pytest.raises(InputError, match=r"edit 1 \(direction\) holds NaN"):
        r.render(doc)


# ---- decoding checks every field ---------------------------------------------------------------


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b["source"].update(psi=float("nan")), r"source\.psi: expected a finite number, got nan"),
    (lambda b: b["source"].update(psi=3.0), r"source\.psi: must be between -1 and 2"),
    (lambda b: b["source"].update(seed="abc"), r"source\.seed: expected a whole number, got 'abc'"),
    (lambda b: b["source"].update(cutoff="x"), r"source\.cutoff: expected a whole number"),
    (lambda b: b["source"].update(psi=-1.5), r"source\.psi: must be between -1 and 2"),
    (lambda b: b["edits"][0].update(amount=1e6), r"edits\[0\]\.amount: must be between -100 and 100"),
    (lambda b: b["edits"][0].update(enabled="false"), r"edits\[0\]\.enabled: expected true or false, got 'false'"),
    (lambda b: b["edits"][0].update(library="../../x"), r"edits\[0\]\.library: invalid direction library name"),
    (lambda b: b["export"].update(size="x"), r"export\.size: expected a whole number, got 'x'"),
    (lambda b: b["export"].update(size=10 ** 6), r"export\.size: must be between 1 and 8192"),
    (lambda b: b.update(edits={}), r"edits: expected a list"),
])
def test_bad_fields_are_refused_with_their_path(mutate, message):
    body, arrays = EditDocument(model="m", source=SeedSource(seed=1), edits=(edit(),)).to_json()
    mutate(body)
    with pytest.raises(InputError, match=message):
        EditDocument.from_json(body, arrays)


def test_a_nan_latent_is_refused_on_decode():
    body, arrays = EditDocument(model="m", source=LatentSource(wplus=np.zeros((1, 4, 8), np.float32))).to_json()
    arrays["source.wplus"] = np.full((1, 4, 8), np.nan, np.float32)
    with pytest.raises(InputError, match=r"source\.wplus: holds NaN"):
        EditDocument.from_json(body, arrays)


def test_psi_range_holds_for_every_seed_face():
    with pytest.raises(InputError, match="finite number"):
        SeedSource(seed=1, psi=float("inf"))
    with pytest.raises(InputError, match="between -1 and 2"):
        SeedSource(seed=1, psi=2.5)
    assert SeedSource(seed=1, psi=-0.5).psi == -0.5


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", ".hidden", "a\\b", "", "x\n", "c:evil"])
def test_resources_refuse_names_that_leave_their_folder(gen, name):
    r = Renderer(gen, TINY)
    for kind in ("directions", "catalog", "encoder"):
        with pytest.raises(InputError, match="invalid"):
            r.resources.get(kind, name)


# ---------------------------------------------------------------------------------------------
# the attribute switches (Keep others, pins) are document state


def test_attribute_switches_round_trip_and_default_for_old_documents():
    from stylestudio.engine.document import AttributeSettings

    doc = EditDocument(model="m", source=SeedSource(seed=1),
                       attributes=AttributeSettings(keep_others=False, pins=("smile", "age", "smile")))
    assert doc.attributes.pins == ("age", "smile"), "one spelling for one state: sorted, unique"
    body, arrays = doc.to_json()
    body = json.loads(json.dumps(body))
    assert body["attributes"] == {"keep_others": False, "pins": ["age", "smile"]}
    assert EditDocument.from_json(body, arrays).attributes == doc.attributes
    del body["attributes"]  # a project saved before the switches were document state
    assert EditDocument.from_json(body, arrays).attributes == AttributeSettings()
    assert AttributeSettings().keep_others and AttributeSettings().pins == ()
    # what a move holds still: every other name (Keep others), else the pinned ones
    names = ["age", "gender", "smile", "yaw"]
    assert AttributeSettings().keep_for(names, "age") == ("gender", "smile", "yaw")
    assert doc.attributes.keep_for(names, "age") == ("smile",)
    assert doc.attributes.keep_for(names, "yaw") == ("age", "smile")
    assert doc.attributes.keep_for(names, "unknown") == ()
    # the switches survive the document's own updates
    assert doc.with_edit(edit()).with_source(SeedSource(seed=2)).attributes == doc.attributes


@pytest.mark.parametrize("value, message", [
    ({"keep_others": "false"}, "attributes.keep_others: expected true or false, got 'false'"),
    ({"keep_others": 0}, "attributes.keep_others: expected true or false, got 0"),
    ({"pins": [1]}, "attributes.pins[0]: expected text, got 1"),
    ({"pins": {"a": 1}}, "attributes.pins: expected a list of names"),
    ({"pins": ["x"] * 65}, "attributes.pins: more than 64 names"),
    ([], "attributes: expected an object"),
])
def test_bad_attribute_switches_are_refused_naming_the_field(value, message):
    body, arrays = EditDocument(model="m", source=SeedSource(seed=1)).to_json()
    body["attributes"] = value
    with pytest.raises(InputError) as info:
        EditDocument.from_json(body, arrays)
    assert str(info.value).startswith(message), str(info.value)


# ---------------------------------------------------------------------------------------------
# a document's arrays can never change, so nothing cached from them goes stale


def test_document_arrays_can_never_be_made_writable_again():
    from stylestudio.engine.edits.transfer import TransferEdit

    wplus = np.random.RandomState(0).randn(1, 4, 8).astype(np.float32)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:5] = 255
    src = LatentSource(wplus=wplus)
    t = TransferEdit(reference=LatentSource(wplus=wplus), mask=mask, id="t")
    key, mask_key = src.key(), t._mask_key()
    wplus[:] = 0  # the caller's own array changes: the document took a copy
    mask[:] = 0
    for arr in (src.wplus, t.mask):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr.setflags(write=True)  # not even on request
        with pytest.raises(ValueError):
            arr.flat[0] = 1
    assert src.key() == key and t._mask_key() == mask_key
    body, arrays = EditDocument(model="m", source=src, edits=(t,)).to_json()
    back = EditDocument.from_json(body, {k: np.array(v) for k, v in arrays.items()})
    with pytest.raises(ValueError):
        back.source.wplus.setflags(write=True)


def test_a_photo_sources_cached_digest_cannot_go_stale():
    """PhotoSource.digest is a cached property over its arrays and PTI deltas: they are immutable."""
    from stylestudio.engine.photo import PhotoSource

    quad = np.array([[0, 0], [0, 10], [10, 10], [10, 0]], np.float64)
    deltas = {"w": np.ones(3, np.float32)}
    wplus = np.zeros((4, 8), np.float32)
    src = PhotoSource(photo_bytes=np.arange(16, dtype=np.uint8), quad=quad, wplus=wplus, weight_deltas=deltas)
    digest = src.digest
    wplus[:] = 1  # what the caller still holds
    deltas["w"][:] = 5
    deltas["x"] = np.zeros(1, np.float32)
    for arr in (src.photo_bytes, src.landmarks, src.quad, src.wplus, src.weight_deltas["w"]):
        with pytest.raises(ValueError):
            arr.setflags(write=True)
    with pytest.raises(TypeError):
        src.weight_deltas["y"] = np.zeros(1)  # type: ignore[index]
    assert list(src.weight_deltas) == ["w"]
    fresh = PhotoSource(photo_bytes=np.arange(16, dtype=np.uint8), quad=quad, wplus=np.zeros((4, 8), np.float32),
                        weight_deltas={"w": np.ones(3, np.float32)})
    assert fresh.digest == digest == src.digest
    import pickle

    assert pickle.loads(pickle.dumps(src)).digest == digest  # a document can go to a worker process
