"""Photo documents: paste-back, the PhotoSource in projects and renders (PTI deltas), the CLI."""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylestudio.cli import main, parse_source
from stylestudio.engine.document import EditDocument
from stylestudio.engine.export import export_document
from stylestudio.engine.face.align import align_face
from stylestudio.engine.face.landmarks import detect_faces
from stylestudio.engine.inversion import apply_weight_deltas, synthesis_parameters
from stylestudio.engine.photo import PhotoSource, face_mask, paste_back, photo_source_from_file
from stylestudio.engine.project import load_project, save_project
from stylestudio.engine.render import Renderer, to_uint8
from stylestudio.errors import InputError

skdata = pytest.importorskip("skimage.data")
TINY = "stylegan2_tiny/network-snapshot.pkl"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def landmarks(astronaut) -> np.ndarray:
    return detect_faces(astronaut)[0].landmarks


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory, astronaut) -> Path:
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path


@pytest.fixture(scope="module")
def tiny(oracle_dir):
    from stylestudio.engine.stylegan2.nvlabs_pickle import load_nvlabs_pickle

    torch.set_num_threads(1)
    return load_nvlabs_pickle(oracle_dir / TINY).eval().requires_grad_(False)


def far_from_face(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels more than one face height away from every landmark's bounding box."""
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    d = max(x1 - x0, y1 - y0)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return (xx < x0 - d) | (xx > x1 + d) | (yy < y0 - d) | (yy > y1 + d)


# ---- paste-back --------------------------------------------------------------------------------


def test_paste_back_leaves_far_pixels_exactly_untouched(astronaut, landmarks) -> None:
    magenta = np.zeros((1024, 1024, 3), np.uint8)
    magenta[..., 0] = magenta[..., 2] = 255
    out = paste_back(astronaut, magenta, landmarks)
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    far = far_from_face(landmarks, astronaut.shape[:2])
    assert far.mean() > 0.3
    assert np.array_equal(out[far], astronaut[far])
    # … and the face itself was replaced (nose tip: landmark 30)
    nx, ny = np.round(landmarks[30]).astype(int)
    assert out[ny, nx, 1] < 0.5 * astronaut[ny, nx, 1] + 10
    # the mask is zero wherever nothing changed
    mask, (x0, y0, x1, y1) = face_mask(landmarks, astronaut.shape[:2])
    changed = np.any(out != astronaut, axis=-1)
    outside = np.ones_like(changed)
    outside[y0:y1, x0:x1] = mask == 0
    assert not np.any(changed & outside)


def test_paste_back_of_the_photo_itself_is_nearly_invisible(astronaut, landmarks) -> None:
    from stylestudio.engine.photo import gaussian_blur

    aligned, _ = align_face(astronaut, landmarks, 1024)
    mask, (x0, y0, x1, y1) = face_mask(landmarks, astronaut.shape[:2])
    face = mask > 0.5
    plain = paste_back(astronaut, aligned, landmarks, grain=False)
    diff = np.abs(plain.astype(int) - astronaut)
    assert diff.mean() < 0.5  # over the whole picture
    assert diff[y0:y1, x0:x1][face].mean() < 4  # resampling there and back softens edges a little
    # grain puts back the fine texture the two resamplings smoothed away, without moving the picture
    grainy = paste_back(astronaut, aligned, landmarks)

    def crop(a):
        return a[y0:y1, x0:x1].astype(np.float32)

    def texture(a):
        return np.abs(crop(a) - gaussian_blur(crop(a), 1.0))[face].mean()

    assert abs(texture(grainy) - texture(astronaut)) < abs(texture(plain) - texture(astronaut))
    low = np.abs(gaussian_blur(crop(grainy), 3.0) - gaussian_blur(crop(astronaut), 3.0))[face].mean()
    assert low < 3


def test_colour_matching_hides_a_lighting_shift(astronaut, landmarks) -> None:
    aligned, _ = align_face(astronaut, landmarks, 1024)
    brighter = np.clip(aligned.astype(int) + 40, 0, 255).astype(np.uint8)
    out = paste_back(astronaut, brighter, landmarks)
    mask, (x0, y0, x1, y1) = face_mask(landmarks, astronaut.shape[:2])
    band = (mask > 0.2) & (mask < 0.8)  # the seam
    region = astronaut[y0:y1, x0:x1].astype(float)
    seam_err = np.abs(out[y0:y1, x0:x1].astype(float) - region)[band].mean()
    assert seam_err < 12  # 40 levels brighter before matching


def test_grain_is_added_to_a_smooth_face_in_a_noisy_photo(landmarks) -> None:
    rng = np.random.RandomState(0)
    noisy = np.clip(128 + rng.randn(512, 512, 3) * 12, 0, 255).astype(np.uint8)
    flat = np.full((256, 256, 3), 128, np.uint8)
    out = paste_back(noisy, flat, landmarks)
    again = paste_back(noisy, flat, landmarks)
    assert np.array_equal(out, again)  # deterministic
    nx, ny = np.round(landmarks[30]).astype(int)
    patch = out[ny - 8:ny + 8, nx - 8:nx + 8].astype(float)
    assert patch.std() > 6  # not a flat grey hole in a grainy photo
    far = far_from_face(landmarks, noisy.shape[:2])
    assert np.array_equal(out[far], noisy[far])


# ---- the document source -----------------------------------------------------------------------


def make_source(astronaut_png: Path, landmarks, gen, deltas=False, seed=0) -> PhotoSource:
    g = torch.Generator().manual_seed(seed)
    wplus = (gen.w_avg[None].repeat(gen.num_ws, 1) + 0.3 * torch.randn(gen.num_ws, gen.w_dim, generator=g)).numpy()
    src = photo_source_from_file(astronaut_png, landmarks)
    d = None
    if deltas:
        params = dict(gen.named_parameters())
        d = {n: (0.02 * torch.randn(params[n].shape, generator=g)).numpy() for n in synthesis_parameters(gen)}
    return dataclasses.replace(src, wplus=wplus.astype(np.float32), weight_deltas=d, inversion={"steps": 3})


def test_project_round_trip_keeps_photo_alignment_latent_and_deltas(tmp_path, astronaut_png, landmarks, tiny) -> None:
    src = make_source(astronaut_png, landmarks, tiny, deltas=True)
    doc = EditDocument(model="tiny", source=src, title="astronaut")
    save_project(tmp_path / "p.stylestudio", doc)
    back = load_project(tmp_path / "p.stylestudio").source
    assert isinstance(back, PhotoSource)
    assert back.photo_bytes.tobytes() == astronaut_png.read_bytes()
    assert np.array_equal(back.landmarks, src.landmarks) and np.array_equal(back.quad, src.quad)
    assert np.array_equal(back.wplus, src.wplus)
    assert sorted(back.weight_deltas) == sorted(src.weight_deltas)
    # (project files store 0-d arrays as shape (1,): values must survive, shapes are the model's)
    assert all(np.array_equal(back.weight_deltas[k].ravel(), v.ravel()) for k, v in src.weight_deltas.items())
    assert back.inversion == {"steps": 3}
    # the reopened project renders exactly as before (scalar deltas such as noise strengths included)
    r = Renderer(tiny, "tiny")
    assert torch.equal(r.render(EditDocument(model="tiny", source=back)), r.render(doc))
    assert np.array_equal(back.photo, np.asarray(Image.open(astronaut_png).convert("RGB")))


def test_damaged_photo_entry_is_an_input_error(tmp_path, astronaut_png, landmarks, tiny) -> None:
    src = make_source(astronaut_png, landmarks, tiny, deltas=True)
    body, arrays = EditDocument(model="tiny", source=src).to_json()
    lost = dict(arrays)
    del lost[next(k for k in arrays if k.startswith("source.delta:"))]
    with pytest.raises(InputError, match="fine-tuned"):
        EditDocument.from_json(body, lost)
    bad = dict(arrays)
    bad["source.landmarks"] = np.zeros((5, 2), np.float32)
    with pytest.raises(InputError):
        EditDocument.from_json(body, bad)


def test_renderer_applies_the_photos_fine_tuned_weights(astronaut_png, landmarks, tiny) -> None:
    plain = make_source(astronaut_png, landmarks, tiny, deltas=False)
    tuned = make_source(astronaut_png, landmarks, tiny, deltas=True)
    r = Renderer(tiny, "tiny")
    ws = torch.from_numpy(tuned.wplus)[None]
    with torch.no_grad():
        expect_plain = tiny.synthesis(ws)
        expect_tuned = apply_weight_deltas(tiny, tuned.weight_deltas).synthesis(ws)
    got_tuned = r.render(EditDocument(model="tiny", source=tuned))
    got_plain = r.render(EditDocument(model="tiny", source=plain))
    assert torch.allclose(got_tuned, expect_tuned, atol=1e-5)
    assert torch.allclose(got_plain, expect_plain, atol=1e-5)
    assert not torch.allclose(got_tuned, got_plain, atol=1e-3)
    # the model itself was not changed by rendering the tuned photo
    assert torch.allclose(r.render(EditDocument(model="tiny", source=plain)), expect_plain, atol=1e-5)


def test_export_writes_the_whole_photo(tmp_path, astronaut, astronaut_png, landmarks, tiny) -> None:
    doc = EditDocument(model="tiny", source=make_source(astronaut_png, landmarks, tiny))
    export_document(tiny, "tiny", doc, tmp_path / "out.png")
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    assert out.shape == astronaut.shape
    far = far_from_face(landmarks, astronaut.shape[:2])
    assert np.array_equal(out[far], astronaut[far])
    assert not np.array_equal(out, astronaut)
    crop = dataclasses.replace(doc, export=dataclasses.replace(doc.export, paste_back=False))
    export_document(tiny, "tiny", crop, tmp_path / "crop.png")
    assert Image.open(tmp_path / "crop.png").size == (tiny.resolution, tiny.resolution)


def test_export_dimensions_are_those_of_the_written_file(tmp_path, astronaut_png, landmarks, tiny) -> None:
    """The export preview states the file's size before it is written: it must be the file's."""
    from stylestudio.engine.export import export_dimensions

    wide = tmp_path / "wide.png"
    photo = np.asarray(Image.open(astronaut_png).convert("RGB"))
    Image.fromarray(np.concatenate([photo, photo[:, :101]], axis=1)).save(wide)  # 613 × 512
    doc = EditDocument(model="tiny", source=make_source(wide, landmarks, tiny))
    for export in (doc.export, dataclasses.replace(doc.export, size=300),
                   dataclasses.replace(doc.export, paste_back=False), dataclasses.replace(doc.export, size=17)):
        d = dataclasses.replace(doc, export=export)
        export_document(tiny, "tiny", d, tmp_path / "out.png")
        assert Image.open(tmp_path / "out.png").size == export_dimensions(d, tiny.resolution), export
    assert export_dimensions(doc, tiny.resolution) == (613, 512)


# ---- CLI ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(oracle_dir) -> str:
    assert main(["models", "import", str(oracle_dir / TINY), "--name", "tiny"]) == 0
    return "tiny"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_invert_then_render_the_full_photo(capsys, tmp_path, astronaut, astronaut_png, landmarks, tiny_model) -> None:
    proj = tmp_path / "a.stylestudio"
    rc, out, err = run(capsys, "invert", str(astronaut_png), "-o", str(proj), "--model", tiny_model,
                       "--steps", "8", "--pti", "--pti-steps", "3", "--device", "cpu",
                       "--reconstruction", str(tmp_path / "rec.png"))
    assert rc == 0, err
    assert "LPIPS" in out and "%]" in err
    doc = load_project(proj)
    assert isinstance(doc.source, PhotoSource) and doc.model == "tiny"
    assert doc.source.wplus.shape == (8, 64) and doc.source.weight_deltas
    assert Image.open(tmp_path / "rec.png").size == (64, 32)
    rc, _, err = run(capsys, "render-project", str(proj), "-o", str(tmp_path / "full.png"))
    assert rc == 0, err
    full = np.asarray(Image.open(tmp_path / "full.png").convert("RGB"))
    assert full.shape == astronaut.shape
    far = far_from_face(landmarks, astronaut.shape[:2])
    assert np.array_equal(full[far], astronaut[far])


@pytest.mark.parametrize("flags", [[], ["--no-pti"]])
def test_cli_far_face_gets_pti_unless_told_not_to(capsys, tmp_path, astronaut_png, tiny_model, flags) -> None:
    """The tiny test model cannot fit a photo: by default PTI joins, and the result line says why."""
    proj = tmp_path / "a.stylestudio"
    rc, out, err = run(capsys, "invert", str(astronaut_png), "-o", str(proj), "--model", tiny_model,
                       "--steps", "8", "--pti-steps", "3", "--time-budget", "0", "--device", "cpu", *flags)
    assert rc == 0, err
    source = load_project(proj).source
    tuned = not flags
    assert bool(source.weight_deltas) is tuned and source.inversion["pti"] is tuned
    assert source.inversion["pti_steps"] == (3 if tuned else 0)
    assert ("with PTI: a face far from the model's range" in out) is tuned, out


def test_cli_many_faces_asks_which(capsys, tmp_path, astronaut, tiny_model) -> None:
    crop = astronaut[40:240, 120:320]
    canvas = np.full((260, 440, 3), 200, np.uint8)
    canvas[20:220, 10:210] = crop
    canvas[20:220, 230:430] = crop[:, ::-1]
    Image.fromarray(canvas).save(tmp_path / "two.png")
    rc, _, err = run(capsys, "invert", str(tmp_path / "two.png"), "-o", str(tmp_path / "t.stylestudio"),
                     "--model", tiny_model, "--steps", "2")
    assert rc == 2 and "2 faces" in err and "--face 1" in err
    assert not (tmp_path / "t.stylestudio").exists()
    rc, _, err = run(capsys, "invert", str(tmp_path / "two.png"), "-o", str(tmp_path / "t.stylestudio"),
                     "--model", tiny_model, "--steps", "2", "--face", "5")
    assert rc == 2 and "--face 5" in err
    rc, _, err = run(capsys, "invert", str(tmp_path / "two.png"), "-o", str(tmp_path / "t.stylestudio"),
                     "--model", tiny_model, "--steps", "2", "--face", "1")
    assert rc == 0, err
    assert load_project(tmp_path / "t.stylestudio").source.face_index == 1


def test_cli_no_face_and_bad_files(capsys, tmp_path, tiny_model) -> None:
    Image.new("RGB", (300, 200), (40, 120, 200)).save(tmp_path / "sky.png")
    rc, _, err = run(capsys, "invert", str(tmp_path / "sky.png"), "-o", str(tmp_path / "s.stylestudio"),
                     "--model", tiny_model)
    assert rc == 2 and "no face found" in err
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (40, 120, 200)).save(buf, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[:200])
    rc, _, err = run(capsys, "invert", str(tmp_path / "cut.jpg"), "-o", str(tmp_path / "s.stylestudio"))
    assert rc == 2 and "cut.jpg" in err and err.count("\n") == 1
    rc, _, err = run(capsys, "invert", str(tmp_path / "sky.png"), "-o", str(tmp_path / "s.png"))
    assert rc == 2 and ".stylestudio" in err


def test_photo_as_source_inverts_on_first_render(capsys, astronaut_png, tiny) -> None:
    doc = parse_source(str(astronaut_png))
    assert isinstance(doc.source, PhotoSource) and not doc.source.inverted
    capsys.readouterr()
    image = Renderer(tiny, "tiny").render(dataclasses.replace(doc, model="tiny"))
    assert image.shape == (1, 3, 32, 32)
    assert parse_source("seed:3").source.kind == "seed"  # other specs still go their own way


def test_photo_inverted_on_first_render_starts_from_the_models_encoder(monkeypatch, tmp_path, astronaut_png,
                                                                     landmarks, tiny) -> None:
    from stylestudio import paths
    from stylestudio.engine import inversion
    from test_encoder import constant_encoder

    monkeypatch.setenv(paths.ENV_HOME, str(tmp_path))
    constant_encoder(np.zeros(tiny.w_dim, np.float32), "tiny").save(tmp_path / "encoder" / "tiny" / "default.json")
    seen = []
    real = inversion.invert

    def spy(gen, target, settings, **kw):
        seen.append((kw.get("encoder"), settings))
        return real(gen, target, dataclasses.replace(settings, steps=2), **kw)

    monkeypatch.setattr(inversion, "invert", spy)
    doc = EditDocument(model="tiny", source=photo_source_from_file(astronaut_png, landmarks))
    Renderer(tiny, "tiny").render(doc)
    (encoder, settings), = seen
    assert encoder is not None and encoder.w_dim == tiny.w_dim and settings.use_encoder and not settings.pti


@pytest.mark.slow
def test_cli_default_model_end_to_end(capsys, tmp_path, astronaut, astronaut_png, landmarks, default_generator) -> None:
    """invert → edit (issue 5's smile slider) → the whole photo, with the default model."""
    proj = tmp_path / "d.stylestudio"
    rc, out, err = run(capsys, "invert", str(astronaut_png), "-o", str(proj), "--steps", "4",
                       "--pti", "--pti-steps", "2", "--device", "cpu")
    assert rc == 0, err
    doc = load_project(proj)
    assert doc.model == "mobilestylegan-ffhq" and doc.source.weight_deltas
    face = to_uint8(Renderer(default_generator, doc.model).render(doc))
    assert face.shape == (1024, 1024, 3)
    rc, _, err = run(capsys, "edit", "--source", str(proj), "--set", "smile=-2", "-o", str(tmp_path / "edited.png"))
    assert rc == 0, err
    full = np.asarray(Image.open(tmp_path / "edited.png").convert("RGB"))
    assert full.shape == astronaut.shape
    far = far_from_face(landmarks, astronaut.shape[:2])
    assert np.array_equal(full[far], astronaut[far])  # PNG: lossless, so exactly the photo away from the face
    assert not np.array_equal(full, astronaut)



def test_exported_files_keep_the_photos_exif_upright_with_an_srgb_profile(tmp_path, astronaut) -> None:
    from stylestudio.engine.imageio import photo_exif, read_recipe, save_image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "TestCam", "Model 7", 6
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"  # DateTimeOriginal, in the Exif sub-block
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, "JPEG", exif=exif.tobytes())
    kept = photo_exif(buf.getvalue())
    assert kept is not None and kept[0x0112] == 1
    for suffix in (".jpg", ".png", ".tif"):
        out = tmp_path / f"out{suffix}"
        save_image(out, astronaut[:40, :30], {"model": "m"}, quality=80, exif=kept)
        with Image.open(out) as im:
            got = im.getexif()
            assert im.info.get("icc_profile"), f"{suffix}: no sRGB profile"
            assert (got.get(0x010F), got.get(0x0110), got.get(0x0112)) == ("TestCam", "Model 7", 1), suffix
            assert got.get_ifd(0x8769).get(0x9003) == "2024:05:06 07:08:09"
        assert read_recipe(out) == {"model": "m"}, "the recipe is still there"
    # no EXIF, or a damaged block: nothing to keep, and never an error
    assert photo_exif(np.frombuffer(b"not an image", np.uint8)) is None
    plain = io.BytesIO()
    Image.fromarray(astronaut).save(plain, "PNG")
    assert photo_exif(plain.getvalue()) is None
