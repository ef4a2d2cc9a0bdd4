"""Malformed and hostile project files through ``stylestudio render-project``.

Each case starts from a valid project made with the real API (a seed face with a slider and a
painted-region transfer, and a photo face), damages one thing — a document field, an array's
header, the manifest, the zip itself — and checks the answer the way a user would judge it
(``tests/fuzz/harness.py``): exit 2, one ``error: <file>: …`` line, bounded memory, the project
unchanged, no picture written.
"""
from __future__ import annotations

import copy
import io
import json
import random
import struct
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from stylestudio.engine.document import EditDocument, SeedSource
from stylestudio.engine.edits.direction import DirectionEdit
from stylestudio.engine.edits.transfer import TransferEdit
from stylestudio.engine.project import save_project

from fuzz.harness import Case, check, problems, run_cases
from test_gui_support import TINY, ensure_test_model

Members = dict[str, bytes]


# ---- building projects ----------------------------------------------------------------------------


def painted_mask(side: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side]
    return (((yy - side * 0.6) ** 2 + (xx - side * 0.5) ** 2) < (side * 0.2) ** 2).astype(np.uint8) * 255


def seed_document() -> EditDocument:
    return EditDocument(
        model=TINY, source=SeedSource(seed=12, psi=0.6), title="fuzz",
        edits=(DirectionEdit(library="sefa", name="factor2", amount=-1.5, id="sefa:factor2"),
               TransferEdit(reference=SeedSource(seed=3, psi=0.5), mask=painted_mask(), strength=0.8, id="t1")))


def read_members(path: Path) -> Members:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def write_members(path: Path, members: Members) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    return path


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npy_header_only(shape: tuple[int, ...], dtype: str = "<f4", data: bytes = b"\0" * 64) -> bytes:
    """A .npy header claiming ``shape`` followed by a few bytes: what a hostile file can declare."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def with_document(members: Members, change: Callable[[dict], Any]) -> Members:
    body = json.loads(members["document.json"])
    change(body)
    out = dict(members)
    out["document.json"] = json.dumps(body).encode()
    return out


def with_raw(members: Members, name: str, data: bytes | None) -> Members:
    out = dict(members)
    if data is None:
        out.pop(name, None)
    else:
        out[name] = data
    return out


def listing(members: Members, *names: str) -> Members:
    """``members`` whose manifest also lists the arrays ``names`` (whose members the caller adds)."""
    manifest = json.loads(members["manifest.json"])
    manifest["arrays"] = sorted(set(manifest["arrays"]) | set(names))
    return with_raw(members, "manifest.json", json.dumps(manifest).encode())


def set_path(body: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        body = body[key]
    body[path[-1]] = value


def del_path(body: Any, path: tuple) -> None:
    for key in path[:-1]:
        body = body[key]
    del body[path[-1]]


def patch_zip_flags(path: Path, member: str, *, flag: int | None = None, method: int | None = None,
                    central: bool = True, local: bool = True) -> None:
    """Set a member's general-purpose flag bits or compression method in its local and/or central header."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    if local:
        at = data.find(b"PK\x03\x04" + b"", 0)
        while at >= 0:
            n = struct.unpack_from("<H", data, at + 26)[0]
            if bytes(data[at + 30: at + 30 + n]) == name:
                if flag is not None:
                    struct.pack_into("<H", data, at + 6, struct.unpack_from("<H", data, at + 6)[0] | flag)
                if method is not None:
                    struct.pack_into("<H", data, at + 8, method)
            at = data.find(b"PK\x03\x04", at + 4)
    if central:
        at = data.find(b"PK\x01\x02")
        while at >= 0:
            n = struct.unpack_from("<H", data, at + 28)[0]
            if bytes(data[at + 46: at + 46 + n]) == name:
                if flag is not None:
                    struct.pack_into("<H", data, at + 8, struct.unpack_from("<H", data, at + 8)[0] | flag)
                if method is not None:
                    struct.pack_into("<H", data, at + 10, method)
            at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def patch_declared_size(path: Path, member: str, size: int) -> None:
    """Make the central directory claim ``size`` uncompressed bytes for ``member`` (a zip bomb's lie)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        n = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46: at + 46 + n]) == member.encode():
            struct.pack_into("<I", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def zeros_member(zf: zipfile.ZipFile, name: str, header: bytes, nbytes: int) -> None:
    """A deflated member of ``header`` + ``nbytes`` zeros, streamed (never all in memory)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as f:
        f.write(header)
        chunk = b"\0" * (8 << 20)
        left = nbytes
        while left > 0:
            f.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)


# ---- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_project(tmp_path_factory) -> tuple[Path, Members]:
    """A valid seed project for the test model (a region catalog installed so the transfer renders)."""
    from stylestudio.engine.regions.builder import build_catalog
    from stylestudio.engine.regions.catalog import user_catalog_path

    gen = ensure_test_model(TINY)
    cat_path = user_catalog_path(TINY)
    if not cat_path.exists():
        build_catalog(gen, TINY, k=5, samples=12, batch=4, seed=3).save(cat_path)
    folder = tmp_path_factory.mktemp("fuzz-projects")
    path = folder / "valid.stylestudio"
    save_project(path, seed_document())
    return path, read_members(path)


@pytest.fixture(scope="module")
def photo_members(tmp_path_factory) -> Members | None:
    """A valid photo project (astronaut, the face found by the detector, a made-up inversion)."""
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    from stylestudio.engine.face.landmarks import detect_faces
    from stylestudio.engine.photo import photo_source_from_file

    import dataclasses

    gen = ensure_test_model(TINY)
    folder = tmp_path_factory.mktemp("fuzz-photo")
    photo = skdata.astronaut()
    png = folder / "astronaut.png"
    Image.fromarray(photo).save(png)
    landmarks = detect_faces(photo)[0].landmarks
    wplus = (gen.w_avg[None].repeat(gen.num_ws, 1)).numpy().astype(np.float32)
    src = dataclasses.replace(photo_source_from_file(png, landmarks), wplus=wplus)
    path = folder / "photo.stylestudio"
    save_project(path, EditDocument(model=TINY, source=src, title="photo"))
    return read_members(path)


class Builder:
    """Collects cases: each writes its own project file and names its own output."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cases: list[Case] = []

    def add(self, name: str, members: Members | None = None, *, raw: bytes | None = None,
            after: Callable[[Path], None] | None = None, expect_rc: int = 2, rss_bound_mb: float = 1500.0,
            fill: Callable[[Path], None] | None = None) -> None:
        path = self.folder / f"{name}.stylestudio"
        if fill is not None:
            fill(path)
        elif raw is not None:
            path.write_bytes(raw)
        else:
            write_members(path, members or {})
        if after is not None:
            after(path)
        out = self.folder / f"{name}.out.png"
        self.cases.append(Case(name, ["render-project", str(path), "-o", str(out)], names=path.name,
                               inputs=[str(path)], expect_rc=expect_rc, rss_bound_mb=rss_bound_mb))

    def output(self, case: Case) -> Path:
        return Path(case.argv[-1])


def run_and_check(b: Builder) -> list[dict]:
    results = run_cases(b.cases, b.folder)
    check(results)
    for c in b.cases:
        if c.expect_rc != 0:
            assert not b.output(c).exists(), f"{c.name}: an output was written"
    return results


# ---- the named findings ----------------------------------------------------------------------------


def finding_cases(b: Builder, m: Members) -> None:
    doc = lambda f: with_document(m, f)  # noqa: E731
    # 1: sizes. A mask header claiming 16000² (whose zeros compress a thousandfold), a header
    # claiming 4 TB, unused arrays declaring gigabytes, a latent of an impossible shape.
    b.add("mask_16000", rss_bound_mb=400, fill=lambda p: _big_mask_project(p, m, 16000))
    b.add("mask_5000", rss_bound_mb=400, fill=lambda p: _big_mask_project(p, m, 5000))
    b.add("npy_header_4tb_mask", with_raw(m, "arrays/edit1.mask.npy", npy_header_only((2_000_000, 2_000_000), "|u1")))
    b.add("npy_header_4tb_latent", with_raw(listing(doc(lambda d: d.update(source={"kind": "latent"})), "source.wplus"),
                                            "arrays/source.wplus.npy", npy_header_only((1, 18, 2 ** 40))))
    b.add("npy_header_lies_about_size", with_raw(listing(doc(lambda d: d.update(source={"kind": "latent"})),
                                                         "source.wplus"),
                                                 "arrays/source.wplus.npy", npy_header_only((1, 8, 64))))
    b.add("npy_object_dtype", with_raw(m, "arrays/edit1.mask.npy", npy_header_only((4, 4), "|O")))
    b.add("npy_bad_magic", with_raw(m, "arrays/edit1.mask.npy", b"not an npy file at all"))
    b.add("latent_wrong_shape", with_raw(listing(doc(lambda d: d.update(source={"kind": "latent"})), "source.wplus"),
                                         "arrays/source.wplus.npy", npy_bytes(np.zeros((5, 100, 64), np.float32))))
    b.add("unused_arrays_declare_gigabytes", listing(m, *[f"junk{i}" for i in range(4)]) | {
        f"arrays/junk{i}.npy": npy_bytes(np.zeros(1000, np.uint8)) for i in range(4)},
          after=lambda p: [patch_declared_size(p, f"arrays/junk{i}.npy", 1_300_000_000) for i in range(4)])
    b.add("member_declares_4gb", m, after=lambda p: patch_declared_size(p, "arrays/edit1.mask.npy", 0xFFFFFFF0))
    b.add("mask_member_missing", with_raw(m, "arrays/edit1.mask.npy", None))
    # 2: non-finite and absurd values that used to render black
    b.add("psi_nan", doc(lambda d: set_path(d, ("source", "psi"), float("nan"))))
    b.add("psi_inf", doc(lambda d: set_path(d, ("source", "psi"), float("inf"))))
    b.add("psi_1e308", doc(lambda d: set_path(d, ("source", "psi"), 1e308)))
    b.add("psi_text", doc(lambda d: set_path(d, ("source", "psi"), "abc")))
    b.add("amount_nan", doc(lambda d: set_path(d, ("edits", 0, "amount"), float("nan"))))
    b.add("amount_inf", doc(lambda d: set_path(d, ("edits", 0, "amount"), float("-inf"))))
    b.add("amount_1e6", doc(lambda d: set_path(d, ("edits", 0, "amount"), 1e6)))
    b.add("amount_text", doc(lambda d: set_path(d, ("edits", 0, "amount"), "abc")))
    b.add("strength_nan", doc(lambda d: set_path(d, ("edits", 1, "strength"), float("nan"))))
    b.add("strength_5", doc(lambda d: set_path(d, ("edits", 1, "strength"), 5)))
    nan_latent = np.full((1, 8, 64), np.nan, np.float32)
    b.add("latent_nan", with_raw(listing(doc(lambda d: d.update(source={"kind": "latent"})), "source.wplus"),
                                 "arrays/source.wplus.npy", npy_bytes(nan_latent)))
    b.add("reference_latent_inf", with_raw(
        listing(doc(lambda d: set_path(d, ("edits", 1, "reference"), {"kind": "latent"})), "edit1.reference.wplus"),
        "arrays/edit1.reference.wplus.npy", npy_bytes(np.full((8, 64), np.inf, np.float32))))
    # 3: a direction library (or catalog) name that leaves the data folder
    b.add("library_traversal", doc(lambda d: set_path(d, ("edits", 0, "library"), "../../../../../tmp/evil")))
    b.add("library_absolute", doc(lambda d: set_path(d, ("edits", 0, "library"), "/etc/passwd")))
    b.add("library_hidden", doc(lambda d: set_path(d, ("edits", 0, "library"), ".hidden")))
    b.add("library_absent", doc(lambda d: set_path(d, ("edits", 0, "library"), "nosuchlibrary")))
    b.add("model_absent", doc(lambda d: d.update(model="no-such-model")))
    b.add("model_traversal", doc(lambda d: d.update(model="../../models/x")))
    b.add("catalog_traversal", doc(lambda d: set_path(d, ("edits", 1, "catalog"), "..\\..\\x")))
    # 4: causes that reached the catch-all
    b.add("manifest_list", with_raw(m, "manifest.json", b"[1, 2, 3]"))
    b.add("manifest_int", with_raw(m, "manifest.json", b"7"))
    for label, text in (("inf", b"1e999"), ("float", b"1.5"), ("string", b'"1"'), ("null", b"null"),
                        ("newer", b"2"), ("zero", b"0")):
        b.add(f"format_version_{label}", with_raw(m, "manifest.json",
                                                  b'{"format": "stylestudio-project", "format_version": ' + text
                                                  + b', "arrays": ["edit1.mask"]}'))
    b.add("manifest_arrays_not_list", with_raw(m, "manifest.json",
                                               b'{"format": "stylestudio-project", "format_version": 1, "arrays": 5}'))
    b.add("document_nested_deeply", with_raw(m, "document.json", b"[" * 200_000 + b"]" * 200_000))
    b.add("field_nested_deeply", with_raw(m, "document.json", m["document.json"].replace(
        b'"title": "fuzz"', b'"title": ' + b"[" * 50_000 + b"]" * 50_000)))
    b.add("document_not_json", with_raw(m, "document.json", b"{not json"))
    b.add("document_not_utf8", with_raw(m, "document.json", b"\xff\xfe\x00{"))
    b.add("document_list", with_raw(m, "document.json", b"[]"))
    b.add("document_newer", doc(lambda d: d.update(document_version=9)))
    b.add("document_version_text", doc(lambda d: d.update(document_version="one")))
    b.add("seed_text", doc(lambda d: set_path(d, ("source", "seed"), "abc")))
    b.add("seed_negative", doc(lambda d: set_path(d, ("source", "seed"), -4)))
    b.add("seed_huge", doc(lambda d: set_path(d, ("source", "seed"), 10 ** 40)))
    b.add("cutoff_text", doc(lambda d: set_path(d, ("source", "cutoff"), "x")))
    b.add("export_size_text", doc(lambda d: set_path(d, ("export", "size"), "x")))
    b.add("export_quality_bool", doc(lambda d: set_path(d, ("export", "quality"), True)))
    b.add("export_not_object", doc(lambda d: d.update(export=[1])))
    b.add("region_int", doc(lambda d: (set_path(d, ("edits", 1, "region"), 5))))
    b.add("enabled_text", doc(lambda d: set_path(d, ("edits", 0, "enabled"), "false")))
    b.add("keep_int", doc(lambda d: set_path(d, ("edits", 0, "keep"), 5)))
    b.add("edits_object", doc(lambda d: d.update(edits={"a": 1})))
    b.add("edit_list", doc(lambda d: set_path(d, ("edits", 0), [1, 2])))
    b.add("edit_kind_unknown", doc(lambda d: set_path(d, ("edits", 0, "kind"), "explode")))
    b.add("edit_kind_list", doc(lambda d: set_path(d, ("edits", 0, "kind"), ["direction"])))
    b.add("source_list", doc(lambda d: d.update(source=[1])))
    b.add("source_missing", doc(lambda d: d.pop("source")))
    b.add("model_missing", doc(lambda d: d.pop("model")))
    b.add("model_int", doc(lambda d: d.update(model=5)))
    b.add("title_object", doc(lambda d: d.update(title={"a": 1})))
    b.add("reference_missing", doc(lambda d: del_path(d, ("edits", 1, "reference"))))
    b.add("mask_mode_int", doc(lambda d: set_path(d, ("edits", 1, "mask_mode"), 3)))
    b.add("rho_two", doc(lambda d: set_path(d, ("edits", 1, "rho"), 2.0)))
    b.add("query_unknown", doc(lambda d: set_path(d, ("edits", 1, "query"), "nope")))
    # 5: a project's export size is named as the project's field, not as --size
    b.add("export_size_huge", doc(lambda d: set_path(d, ("export", "size"), 99999)))
    # zip-level damage
    whole = _zip_bytes(m)
    b.add("not_a_zip", raw=b"this is not a zip file")
    b.add("empty_file", raw=b"")
    b.add("truncated_half", raw=whole[: len(whole) // 2])
    b.add("truncated_tail", raw=whole[:-10])
    b.add("manifest_missing", with_raw(m, "manifest.json", None))
    b.add("document_missing", with_raw(m, "document.json", None))
    b.add("encrypted_central", m, after=lambda p: patch_zip_flags(p, "document.json", flag=0x1, local=False))
    b.add("encrypted_local", m, after=lambda p: patch_zip_flags(p, "document.json", flag=0x41, central=False))
    b.add("encrypted_both", m, after=lambda p: patch_zip_flags(p, "arrays/edit1.mask.npy", flag=0x1))
    b.add("deflate64_both", m, after=lambda p: patch_zip_flags(p, "document.json", method=9))
    b.add("deflate64_local", m, after=lambda p: patch_zip_flags(p, "document.json", method=9, central=False))
    b.add("method_99", m, after=lambda p: patch_zip_flags(p, "manifest.json", method=99))
    rng = random.Random(5)
    for i in range(4):
        data = bytearray(whole)
        for _ in range(8):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        b.add(f"flipped_bytes_{i}", raw=bytes(data), expect_rc=-99)  # may still be readable: judged below


def photo_cases(b: Builder, m: Members) -> None:
    def arr(name: str, value: np.ndarray) -> Members:
        return with_raw(m, f"arrays/source.{name}.npy", npy_bytes(value))

    lm = np.load(io.BytesIO(m["arrays/source.landmarks.npy"]))
    quad = np.load(io.BytesIO(m["arrays/source.quad.npy"]))
    wplus = np.load(io.BytesIO(m["arrays/source.wplus.npy"]))
    bad_lm = lm.copy()
    bad_lm[30] = np.nan
    b.add("photo_landmarks_nan", arr("landmarks", bad_lm))
    bad_quad = quad.copy()
    bad_quad[0] = np.inf
    b.add("photo_quad_inf", arr("quad", bad_quad))
    b.add("photo_quad_singular", arr("quad", np.repeat(quad[:1], 4, axis=0)))
    b.add("photo_quad_flat", arr("quad", np.stack([quad[0], quad[0] + [0, 100], quad[0] + [1e-3, 200], quad[0] + [0, 300]])))
    nan_ws = wplus.copy()
    nan_ws[2, 5] = np.nan
    b.add("photo_latent_nan", arr("wplus", nan_ws))
    b.add("photo_landmarks_shape", arr("landmarks", lm[:5]))
    b.add("photo_bytes_float", arr("photo_bytes", np.full(100, np.nan)))
    b.add("photo_bytes_not_image", arr("photo_bytes", np.frombuffer(b"not a picture" * 10, np.uint8)))
    b.add("photo_face_index_text", with_document(m, lambda d: set_path(d, ("source", "face_index"), "x")))
    b.add("photo_inversion_nested", with_document(m, lambda d: set_path(d, ("source", "inversion"), {"a": [[[1]]]})))
    b.add("photo_deltas_missing", with_document(m, lambda d: set_path(d, ("source", "weight_deltas"), ["w0"])))
    b.add("photo_bytes_4tb", with_raw(m, "arrays/source.photo_bytes.npy", npy_header_only((4 * 10 ** 12,), "|u1")))


def _zip_bytes(members: Members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    return buf.getvalue()


def _big_mask_project(path: Path, members: Members, side: int) -> None:
    """The valid project whose painted mask is ``side``² zeros (a few hundred KB on disk)."""
    header = npy_bytes(np.zeros((0, side), np.uint8))
    header = header.replace(b"(0, %d)" % side, b"(%d, %d)" % (side, side))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in members.items():
            if n != "arrays/edit1.mask.npy":
                zf.writestr(n, d)
        zeros_member(zf, "arrays/edit1.mask.npy", header, side * side)


def judge(results: list[dict], b: Builder) -> None:
    """Cases whose answer may be a picture (random damage can leave a readable file): either a good
    picture with exit 0, or exit 2 with one clear line; never the catch-all or a traceback."""
    for r in results:
        if r["case"]["expect_rc"] == -99:
            r["case"]["expect_rc"] = 0 if r["rc"] == 0 else 2
    check(results)
    for c, r in zip(b.cases, results):
        if r["rc"] != 0:
            assert not b.output(c).exists(), f"{c.name}: an output was written"


# ---- tests -----------------------------------------------------------------------------------------


def test_named_findings_answer_with_one_line(valid_project, photo_members, tmp_path):
    path, members = valid_project
    b = Builder(tmp_path)
    b.add("valid", members, expect_rc=0)
    b.add("unused_broken_array_is_never_read", listing(members, "junk") | {
        "arrays/junk.npy": npy_header_only((10 ** 12,))}, expect_rc=0)
    finding_cases(b, members)
    b.add("photo_valid", photo_members, expect_rc=0)
    photo_cases(b, photo_members)
    results = run_cases(b.cases, tmp_path)
    judge(results, b)
    by_name = {r["name"]: r for r in results}
    assert b.output(b.cases[0]).is_file() and Path(b.folder / "photo_valid.out.png").is_file()
    # the line names the project's field, not a CLI option (finding 5), and the field's path (finding 4)
    assert "export.size" in by_name["export_size_huge"]["stderr"]
    assert "--size" not in by_name["export_size_huge"]["stderr"]
    assert "edits[0].amount: expected a finite number, got 'abc'" in by_name["amount_text"]["stderr"]
    assert "edits[0].enabled: expected true or false" in by_name["enabled_text"]["stderr"]
    assert "source.psi" in by_name["psi_nan"]["stderr"] and "source.seed" in by_name["seed_text"]["stderr"]
    assert "edits[0].library" in by_name["library_traversal"]["stderr"]
    assert "nosuchlibrary" in by_name["library_absent"]["stderr"]
    assert "newer StyleStudio" in by_name["format_version_newer"]["stderr"]
    assert "newer StyleStudio" in by_name["document_newer"]["stderr"]
    for name in ("mask_16000", "npy_header_4tb_mask", "npy_header_4tb_latent", "unused_arrays_declare_gigabytes"):
        assert by_name[name]["peak_rss_mb"] < 400, name


MUTATIONS: list[Any] = ["x", "", [], {}, None, True, False, 0, -1, 1e308, -1e308, float("nan"), float("inf"),
                        10 ** 30, 0.5, [1, 2], {"kind": "seed"}, "../../etc", "false"]


DEEP = "@@deeply nested@@"  #: replaced in the JSON text by 5000 nested lists


def leaf_paths(body: Any, prefix: tuple = ()) -> list[tuple]:
    out = []
    if isinstance(body, dict):
        for k, v in body.items():
            out.append(prefix + (k,))
            out.extend(leaf_paths(v, prefix + (k,)))
    elif isinstance(body, list):
        for i, v in enumerate(body):
            out.append(prefix + (i,))
            out.extend(leaf_paths(v, prefix + (i,)))
    return out


def random_cases(b: Builder, members: Members, count: int, seed: int, prefix: str) -> None:
    rng = random.Random(seed)
    body = json.loads(members["document.json"])
    paths = leaf_paths(body)
    for i in range(count):
        mutated = copy.deepcopy(body)
        for _ in range(rng.choice((1, 1, 2, 3))):
            path = rng.choice(paths)
            try:
                if rng.random() < 0.15:
                    del_path(mutated, path)
                elif rng.random() < 0.05:
                    set_path(mutated, path, DEEP)
                else:
                    set_path(mutated, path, copy.deepcopy(rng.choice(MUTATIONS)))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier mutation removed or replaced the parent
        text = json.dumps(mutated).replace(json.dumps(DEEP), "[" * 5000 + "]" * 5000).encode()
        b.add(f"{prefix}{i}", with_raw(members, "document.json", text), expect_rc=-99)
    whole = _zip_bytes(members)
    for i in range(count // 4):
        data = bytearray(whole)
        cut = rng.random() < 0.3
        for _ in range(rng.randrange(1, 16)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        raw = bytes(data[: rng.randrange(len(data))]) if cut else bytes(data)
        b.add(f"{prefix}zip{i}", raw=raw, expect_rc=-99)


def test_random_document_mutations_answer_well(valid_project, tmp_path):
    _, members = valid_project
    b = Builder(tmp_path)
    random_cases(b, members, 16, seed=1, prefix="mut")
    judge(run_cases(b.cases, tmp_path), b)


@pytest.mark.slow
def test_many_random_mutations_answer_well(valid_project, photo_members, tmp_path):
    _, members = valid_project
    b = Builder(tmp_path)
    random_cases(b, members, 240, seed=2, prefix="seedmut")
    random_cases(b, photo_members, 80, seed=3, prefix="photomut")
    # real zip bombs: gigabytes of zeros that compress to a few megabytes
    b.add("mask_20000_real", rss_bound_mb=400, fill=lambda p: _big_mask_project(p, members, 20000))

    def unused_real(p: Path) -> None:
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
            for n, d in listing(members, *[f"junk{i}" for i in range(4)]).items():
                zf.writestr(n, d)
            for i in range(4):
                zeros_member(zf, f"arrays/junk{i}.npy", npy_bytes(np.zeros(0, np.uint8)), 300 << 20)

    b.add("unused_arrays_real", rss_bound_mb=400, fill=unused_real)
    judge(run_cases(b.cases, tmp_path), b)
