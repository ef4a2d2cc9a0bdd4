"""Malformed and hostile image files: read right when they are images, one clear line when not.

Unit tests pin the decoding rules (16-bit and float images scaled, not clipped; corrupt EXIF; pixel
limits checked before decoding; transparency; pipes and folders refused without opening them) and
that a failed export leaves the previous file whole. The fuzz cases run each bad file through the
real command line (``invert``, ``edit --source``, ``transfer --mask``) with the fuzz harness; none
of them needs a model, because every file is read and refused before a model is loaded.
"""
from __future__ import annotations

import errno
import io
import os
import random
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from stylestudio.engine import imageio
from stylestudio.engine.face.align import load_photo
from stylestudio.engine.imageio import image_size, load_rgb, save_image
from stylestudio.engine.limits import MAX_IMAGE_PIXELS, MAX_MASK_PIXELS, MAX_MASK_SIDE, PHOTO_SUFFIXES
from stylestudio.engine.regions.masks import load_mask
from stylestudio.errors import InputError
from tests.fuzz.harness import MARKER_NAME, Case, check, run_cases

ROOT = os.geteuid() == 0


# ---- crafting files --------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A few dozen bytes of PNG whose header claims ``width`` × ``height`` 8-bit RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def encoded(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def picture(h: int = 48, w: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), (xx + yy) % 256], -1).astype(np.uint8)


def with_exif_app1(jpeg: bytes, payload: bytes) -> bytes:
    """``jpeg`` with an APP1 Exif segment holding ``payload`` right after the SOI marker."""
    seg = b"Exif\x00\x00" + payload
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(seg) + 2) + seg + jpeg[2:]


#: A TIFF header whose orientation tag claims more data than the file holds (Pillow warns twice).
CORRUPT_EXIF = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x7f\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00"


def bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, what its error line must say after the name). Refused before any model runs."""
    folder.mkdir(parents=True, exist_ok=True)
    png = encoded(picture(), "PNG")
    jpg = encoded(picture(), "JPEG", quality=90)
    gif = encoded(picture(), "GIF")
    out: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, needle: str) -> None:
        p = folder / name
        p.write_bytes(data)
        out[name] = (p, needle)

    put("truncated.png", png[: len(png) // 2], "not a readable")
    put("truncated.jpg", jpg[: len(jpg) // 3], "not a readable")
    put("truncated.gif", gif[: len(gif) // 2], "not a readable")
    flipped = bytearray(png)
    for i in range(40, len(flipped) - 20, 7):
        flipped[i] ^= 0xFF
    put("flipped.png", bytes(flipped), "not a readable")
    put("wrong-suffix.png", b"\x93NUMPY" + b"\x00" * 100, "not a readable")
    put("text.jpg", b"hello, this is not a picture\n" * 20, "not a readable")
    put("empty.png", b"", "empty")
    put("bomb.png", png_claiming(100_000, 100_000), "megapixels")
    put("bomb-mid.png", png_claiming(12_000, 12_000), "megapixels")  # 144 MP: over the limit, under Pillow's
    put("transparent.png", encoded(np.zeros((40, 40, 4), np.uint8), "PNG"), "fully transparent")
    put("no-pixels.png", png_claiming(0, 10), "")
    fifo = folder / "fifo.png"
    os.mkfifo(fifo)
    out["fifo.png"] = (fifo, "is a pipe")
    d = folder / "folder.png"
    d.mkdir()
    out["folder.png"] = (d, "is a folder")
    out["missing.png"] = (folder / "missing.png", "no such file")
    if not ROOT:  # root reads every file, so there is nothing to refuse
        p = folder / "unreadable.png"
        p.write_bytes(png)
        p.chmod(0)
        out["unreadable.png"] = (p, "permission denied")
    return out


# ---- decoding rules (unit) ---------------------------------------------------------------------------


def test_16bit_greyscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (8, 1))
    path = tmp_path / "grey16.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I")  # Pillow keeps the 16 bits
    rgb = load_rgb(path)
    assert rgb.shape == (8, 256, 3) and rgb.dtype == np.uint8
    want = np.rint(ramp.astype(np.float64) * 255 / 65535)
    assert np.abs(rgb[..., 0].astype(int) - want).max() <= 1
    assert (rgb[..., 0] == rgb[..., 2]).all()
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255 and abs(int(rgb[0, 128, 0]) - 128) <= 1


def test_32bit_integer_and_float_images_are_scaled(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 1, 100, dtype=np.float32), (4, 1))
    path = tmp_path / "float.tif"
    Image.fromarray(ramp).save(path)
    rgb = load_rgb(path)
    assert abs(int(rgb[0, 0, 0])) == 0 and rgb[0, -1, 0] == 255 and abs(int(rgb[0, 50, 0]) - 129) <= 2
    wide = np.tile(np.linspace(-1000, 3000, 100, dtype=np.float32), (4, 1))
    Image.fromarray(wide).save(path)
    rgb = load_rgb(path)
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255  # stretched, not clipped to black and white
    assert 0 < rgb[0, 50, 0] < 255
    ints = Image.fromarray(np.tile(np.linspace(0, 65535, 64).astype(np.int32), (4, 1)), "I")
    ints.save(tmp_path / "int.tif")
    rgb = load_rgb(tmp_path / "int.tif")
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255 and 100 < rgb[0, 32, 0] < 160


def test_16bit_mask_is_scaled(tmp_path: Path) -> None:
    mask = np.zeros((32, 32), np.uint16)
    mask[8:24, 8:24] = 65535
    mask[0:4, 0:4] = 32768
    Image.fromarray(mask).save(tmp_path / "m16.png")
    m = load_mask(tmp_path / "m16.png")
    assert m[10, 10] == 255 and abs(int(m[1, 1]) - 128) <= 1 and m[30, 30] == 0


def test_corrupt_exif_reads_the_picture_without_warnings(tmp_path: Path) -> None:
    path = tmp_path / "exif.jpg"
    path.write_bytes(with_exif_app1(encoded(picture(), "JPEG", quality=95), CORRUPT_EXIF))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rgb = load_rgb(path)
    assert rgb.shape == (48, 64, 3)
    assert not caught, [str(w.message) for w in caught]


def test_exif_that_breaks_the_transpose_falls_back_to_the_stored_picture(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(encoded(picture(), "JPEG", quality=95))

    def broken(img):
        raise SyntaxError("damaged EXIF orientation")

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    assert load_rgb(path).shape == (48, 64, 3)


def test_pixel_limits_are_checked_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(200_000, 200_000))  # far above Pillow's own bomb limit
    with pytest.raises(InputError, match="bomb.png: .*megapixels"):
        load_rgb(path)
    path.write_bytes(png_claiming(11_000, 10_000))  # 110 MP: above ours, below Pillow's error
    with pytest.raises(InputError, match="megapixels"):
        load_photo(path)
    side = int(MAX_MASK_PIXELS**0.5) + 1
    path.write_bytes(png_claiming(side, side))
    with pytest.raises(InputError, match="megapixels"):
        load_mask(path)
    path.write_bytes(png_claiming(MAX_MASK_SIDE + 1, 16))  # few pixels, but wider than any mask
    with pytest.raises(InputError, match="at most"):
        load_mask(path)


def test_a_large_photo_under_the_limit_prints_no_pillow_warning(tmp_path: Path) -> None:
    w, h = 10_000, (MAX_IMAGE_PIXELS - 5_000_000) // 10_000  # 95 MP: above Pillow's warning level
    assert w * h > Image.MAX_IMAGE_PIXELS
    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(w, h))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert image_size(path) == (w, h)
    assert not caught, [str(x.message) for x in caught]


def test_fully_transparent_photo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clear.png"
    Image.fromarray(np.zeros((16, 16, 4), np.uint8)).save(path)
    with pytest.raises(InputError, match="clear.png: .*fully transparent"):
        load_rgb(path)
    half = np.zeros((16, 16, 4), np.uint8)
    half[4:12, 4:12] = 200
    Image.fromarray(half).save(path)
    assert load_rgb(path).shape == (16, 16, 3)


def test_pipes_folders_and_empty_files_are_refused_without_opening(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening it would block until a writer comes
    with pytest.raises(InputError, match="pipe.jpg: is a pipe"):
        load_rgb(fifo)
    with pytest.raises(InputError, match="pipe.jpg: is a pipe"):
        load_mask(fifo)
    with pytest.raises(InputError, match="is a folder"):
        load_rgb(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty.png: the file is empty"):
        load_rgb(tmp_path / "empty.png")


@pytest.mark.skipif(ROOT, reason="root reads every file")
def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(encoded(picture(), "PNG"))
    path.chmod(0)
    with pytest.raises(InputError, match="secret.png: permission denied"):
        load_rgb(path)


def test_photo_types_are_the_same_for_invert_and_source(tmp_path: Path) -> None:
    from stylestudio.cli import parse_source
    from stylestudio.commands.invert import check_photo_suffix

    assert ".gif" in PHOTO_SUFFIXES
    for suffix in PHOTO_SUFFIXES:
        check_photo_suffix(Path("x" + suffix))  # invert takes it …
        path = tmp_path / ("broken" + suffix)
        path.write_bytes(b"not an image at all")
        with pytest.raises(InputError, match="not a readable"):  # … and --source reads it as a photo
            parse_source(str(path))
    with pytest.raises(InputError, match="not a photo type"):
        check_photo_suffix(Path("x.heic"))


# ---- writing (unit) ----------------------------------------------------------------------------------


def test_a_failed_export_leaves_the_previous_file_whole(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "export.png"
    save_image(path, picture())
    before = path.read_bytes()
    real_save = Image.Image.save

    def disk_full(self, fp, format=None, **kwargs):  # noqa: A002 - Pillow's name
        real_save(self, io.BytesIO(), format=format, **kwargs)
        fp.write(b"\x89PNG\r\n\x1a\n partial")  # some bytes reach the disk, then it is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(InputError, match="export.png: the disk is full"):
        save_image(path, np.zeros((48, 64, 3), np.uint8))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["export.png"]  # no temporary left behind


def test_save_image_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        save_image(tmp_path / "nope" / "x.png", picture())
    assert not (tmp_path / "nope").exists()


# ---- through the command line ------------------------------------------------------------------------


def _cases(files: dict[str, tuple[Path, str]], work: Path) -> list[Case]:
    cases = []
    for name, (path, _) in files.items():
        needle = f"{name}: "
        inputs = [str(path)] if path.is_file() else []
        timeout = 10  # a FIFO must be refused, not opened and waited on
        cases.append(Case(f"invert {name}", ["invert", str(path), "-o", str(work / "out.stylestudio")],
                          needle, inputs, timeout_s=timeout))
        cases.append(Case(f"edit --source {name}",
                          ["edit", "--source", str(path), "--set", "age=1", "-o", str(work / "out.png")],
                          needle, inputs, timeout_s=timeout))
        cases.append(Case(f"transfer --mask {name}",
                          ["transfer", "--target", "seed:1", "--reference", "seed:2", "--mask", str(path),
                           "-o", str(work / "out.png")], needle, inputs, timeout_s=timeout))
    return cases


def test_bad_images_through_the_cli(tmp_path: Path) -> None:
    files = bad_files(tmp_path / "files")
    work = tmp_path / "work"
    work.mkdir()
    results = run_cases(_cases(files, work), work)
    check(results, work / MARKER_NAME)
    for r in results:
        command, name = r["name"].split()[0], r["name"].split()[-1]
        reason = files[name][1]
        if command == "transfer" and name == "transparent.png":
            reason = "the mask is empty"  # a clear mask paints nothing
        assert f"{name}: " in r["stderr"] and reason in r["stderr"], (r["name"], r["stderr"])
    assert not (work / "out.png").exists() and not (work / "out.stylestudio").exists()


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:  # truncate
        return bytes(b[: rng.randrange(1, len(b))])
    if kind == 1:  # flip bytes
        for _ in range(rng.randrange(1, 32)):
            b[rng.randrange(8, len(b))] ^= rng.randrange(1, 256)
    elif kind == 2:  # overwrite a run with junk
        at = rng.randrange(8, len(b) - 1)
        n = rng.randrange(1, min(64, len(b) - at))
        b[at : at + n] = bytes(rng.randrange(256) for _ in range(n))
    else:  # a header's numbers set large
        at = rng.randrange(8, min(64, len(b) - 4))
        b[at : at + 4] = b"\x7f\xff\xff\xff"
    return bytes(b)


@pytest.mark.slow
def test_random_image_mutations_through_the_cli(tmp_path: Path) -> None:
    """Many mutated PNG/JPEG/GIF/TIFF/WebP/BMP files as masks: each is a mask or one clear line."""
    rng = random.Random(1234)
    folder = tmp_path / "files"
    folder.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    sources = {fmt: encoded(picture(), fmt) for fmt in ("PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP")}
    cases = []
    for i in range(150):
        fmt = rng.choice(sorted(sources))
        name = f"m{i:03d}.{fmt.lower()}"
        path = folder / name
        path.write_bytes(_mutate(sources[fmt], rng))
        cases.append(Case(f"mask {name}", ["transfer", "--target", "seed:1", "--reference", "seed:2",
                                           "--mask", str(path), "--model", "no-such-model",
                                           "-o", str(work / "out.png")], "", [str(path)], timeout_s=20))
    results = run_cases(cases, work)
    # A mutated file may still decode (then the unknown model is the one error); either way one line.
    check(results, work / MARKER_NAME)
    for r in results:
        name = r["name"].split()[-1]
        assert name in r["stderr"] or "no-such-model" in r["stderr"], r["stderr"]
