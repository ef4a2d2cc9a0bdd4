"""Face detection, landmarks and FFHQ alignment: real photos, synthetic geometry, hostile files."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from stylestudio.engine.face.align import (MAX_PHOTO_PIXELS, Alignment, align_face, ffhq_quad, load_photo,
                                           warp_to_photo)
from stylestudio.engine.face.landmarks import detect_faces
from stylestudio.errors import InputError

skdata = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def astronaut_face(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    return faces[0]


def eye_mouth(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return lm[36:42].mean(0), lm[42:48].mean(0), (lm[48] + lm[54]) / 2


def test_astronaut_has_one_face_with_sensible_landmarks(astronaut_face) -> None:
    x0, y0, x1, y1 = astronaut_face.box
    lm = astronaut_face.landmarks
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    # the face is at (175..265, 76..166) in the 512² picture; eyes above the mouth, left eye left
    assert 150 < x0 < 200 and 60 < y0 < 100 and 240 < x1 < 290 and 140 < y1 < 190
    le, re, mouth = eye_mouth(lm)
    assert le[0] < re[0] and max(le[1], re[1]) < mouth[1]
    assert x0 - 10 < lm[:, 0].min() and lm[:, 0].max() < x1 + 10


def test_no_face_in_a_landscape() -> None:
    yy, xx = np.mgrid[0:300, 0:400]
    sky = np.stack([xx * 0.5, yy * 0.6 + 40, 200 - yy * 0.3], -1).clip(0, 255).astype(np.uint8)
    assert detect_faces(sky) == []


def test_many_faces_listed_largest_first(astronaut) -> None:
    crop = astronaut[40:240, 120:320]
    small = np.asarray(Image.fromarray(crop).resize((140, 140), Image.LANCZOS))
    canvas = np.full((260, 420, 3), 200, np.uint8)
    canvas[20:220, 10:210] = crop
    canvas[60:200, 260:400] = small
    faces = detect_faces(canvas)
    assert len(faces) == 2
    big, little = faces
    assert (big.box[2] - big.box[0]) > (little.box[2] - little.box[0])
    assert big.box[0] < 210 <= little.box[0] + 60


@pytest.mark.parametrize("angle", [90, 180, -90])
def test_sideways_photo_found_and_mapped_back(astronaut, astronaut_face, angle: int) -> None:
    turned = np.asarray(Image.fromarray(astronaut).rotate(angle, expand=True))
    faces = detect_faces(turned)
    assert len(faces) == 1
    # where the upright landmarks land in the turned picture (PIL turns counter-clockwise)
    a = np.deg2rad(angle)
    c = np.array([256.0, 256.0])
    p = astronaut_face.landmarks + 0.5 - c
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    expected = p @ rot.T + c - 0.5
    err = np.abs(faces[0].landmarks - expected).mean()
    assert err < 3.0, err


def test_large_photo_detected_on_a_downscaled_copy(astronaut, astronaut_face) -> None:
    big = np.asarray(Image.fromarray(astronaut).resize((3072, 3072), Image.BILINEAR))
    faces = detect_faces(big)
    assert len(faces) == 1
    assert np.abs(faces[0].landmarks / 6 - astronaut_face.landmarks).mean() < 4.0


def synthetic_face(angle: float, scale: float, centre: tuple[float, float], size=(640, 480)):
    """A canvas with coloured dots at known eye/mouth positions (a face turned by ``angle``)."""
    base = {"le": (-30.0, -20.0), "re": (30.0, -20.0), "ml": (-22.0, 45.0), "mr": (22.0, 45.0)}
    a = np.deg2rad(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = {k: np.asarray(centre) + rot @ (np.asarray(v) * scale) for k, v in base.items()}
    img = Image.new("RGB", size, (90, 90, 90))
    d = ImageDraw.Draw(img)
    colours = {"le": (255, 0, 0), "re": (0, 0, 255), "ml": (0, 255, 0), "mr": (255, 255, 0)}
    r = 3 * scale
    for k, (x, y) in pts.items():
        d.ellipse([x + 0.5 - r, y + 0.5 - r, x + 0.5 + r, y + 0.5 + r], fill=colours[k])
    lm = np.zeros((68, 2), np.float64)
    lm[36:42] = pts["le"]
    lm[42:48] = pts["re"]
    lm[48:60] = (pts["ml"] + pts["mr"]) / 2
    lm[48], lm[54] = pts["ml"], pts["mr"]
    return np.asarray(img), lm, colours


def blob_centre(img: np.ndarray, colour) -> np.ndarray:
    close = np.abs(img.astype(int) - np.asarray(colour)).sum(-1) < 90
    ys, xs = np.nonzero(close)
    assert xs.size, f"no {colour} blob"
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("angle,scale", [(0, 1.0), (25, 1.5), (-70, 0.6), (180, 2.0)])
def test_alignment_puts_known_landmarks_where_ffhq_wants_them(angle: float, scale: float) -> None:
    img, lm, colours = synthetic_face(angle, scale, (300, 220))
    size = 256
    aligned, al = align_face(img, lm, size)
    assert aligned.shape == (size, size, 3)
    le, re = blob_centre(aligned, colours["le"]), blob_centre(aligned, colours["re"])
    ml, mr = blob_centre(aligned, colours["ml"]), blob_centre(aligned, colours["mr"])
    # eyes level and left of right, mouth below, whatever the photo's rotation and scale
    assert abs(le[1] - re[1]) < 1.0 and le[0] < re[0] and ml[1] > le[1] + 20
    # FFHQ geometry: the crop side is max(2·eye distance·2, 1.8·eye-to-mouth·2); centre 10% below the eyes
    e2e, e2m = 60.0, 65.0
    side = max(2 * e2e * 2, 1.8 * e2m * 2)
    px = size / side
    eye_y = size / 2 - 0.1 * e2m * px
    assert abs((le[1] + re[1]) / 2 - eye_y) < 1.0
    assert abs(re[0] - le[0] - e2e * px) < 1.0
    assert abs((le[0] + re[0]) / 2 - size / 2) < 1.0
    # the stored transform agrees with the pixels, both ways
    to_aligned = al.to_aligned()
    pred = lm[36:42].mean(0) + 0.5
    pred = to_aligned[:, :2] @ pred + to_aligned[:, 2] - 0.5
    assert np.abs(pred - le).max() < 1.0
    back = al.to_photo()
    assert np.allclose(back[:, :2] @ (to_aligned[:, :2] @ [10.0, 20.0] + to_aligned[:, 2]) + back[:, 2], [10, 20])


def test_face_at_the_edge_is_padded_not_cropped() -> None:
    img, lm, colours = synthetic_face(0, 1.5, (70, 60))  # the crop reaches far past the top-left corner
    aligned, _ = align_face(img, lm, 256)
    assert aligned.shape == (256, 256, 3)
    # FFHQ softens the photo near its border too, so find the red eye by its redness, not its exact colour
    a = aligned.astype(float)
    red = a[..., 0] - np.maximum(a[..., 1], a[..., 2])
    ys, xs = np.nonzero(red > 0.6 * red.max())
    assert red.max() > 60
    px = 256 / 360  # crop side = 4 × eye distance (90 px) here
    assert abs(xs.mean() - (128 - 45 * px)) < 1.5 and abs(ys.mean() - (128 - 0.1 * 97.5 * px)) < 1.5


def test_warp_back_inverts_alignment() -> None:
    rng = np.random.RandomState(0)
    smooth = np.asarray(Image.fromarray((rng.rand(10, 10, 3) * 255).astype(np.uint8)).resize((480, 480), Image.BICUBIC))
    _, lm, _ = synthetic_face(20, 1.7, (240, 230), size=(480, 480))
    aligned, al = align_face(smooth, lm, 512)
    back = warp_to_photo(aligned, al, (0, 0, 480, 480))
    ok = ~np.isnan(back[..., 0])
    assert ok.mean() > 0.3
    assert np.abs(back[ok] - smooth[ok]).mean() < 1.5


def test_ffhq_quad_rejects_bad_landmarks() -> None:
    with pytest.raises(InputError):
        ffhq_quad(np.zeros((5, 2)))
    with pytest.raises(InputError):
        ffhq_quad(np.full((68, 2), np.nan))


# ---- files ---------------------------------------------------------------------------------


def test_huge_image_refused_before_decoding(tmp_path: Path) -> None:
    side = int(np.sqrt(MAX_PHOTO_PIXELS)) + 100
    path = tmp_path / "huge.png"
    Image.new("1", (side, side)).save(path)  # a few kB on disk, >100 MP decoded
    assert path.stat().st_size < 5_000_000
    with pytest.raises(InputError, match="megapixels"):
        load_photo(path)


def test_truncated_jpeg_is_an_input_error(tmp_path: Path, astronaut) -> None:
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match="cut.jpg"):
        load_photo(path)


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("hello")
    with pytest.raises(InputError):
        load_photo(path)
    with pytest.raises(InputError, match="no such file"):
        load_photo(tmp_path / "missing.jpg")


def test_exif_orientation_is_applied(tmp_path: Path, astronaut) -> None:
    # store the pixels turned sideways with "rotate 90° CW to display" (orientation 6)
    stored = np.ascontiguousarray(np.rot90(astronaut, k=1))  # counter-clockwise on disk
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, format="JPEG", quality=95, exif=exif.tobytes())
    photo = load_photo(path)
    assert photo.shape == astronaut.shape
    assert np.abs(photo.astype(int) - astronaut).mean() < 6
    faces = detect_faces(photo)
    assert len(faces) == 1 and faces[0].angle == 0.0


def test_detect_rejects_non_images() -> None:
    with pytest.raises(InputError):
        detect_faces(np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError):
        detect_faces(np.zeros((4, 4, 3), np.uint8))


def test_alignment_object_scale() -> None:
    quad = np.array([[0, 0], [0, 200], [200, 200], [200, 0]], float)
    al = Alignment(quad=quad, size=100)
    assert al.scale == pytest.approx(2.0)
