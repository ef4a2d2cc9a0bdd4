"""Attribute predictors: the PyTorch rebuilds against their reference runtimes, the face chips,
geometry and colour measurements, and (slow) the whole labeller on faces of the default model."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from stylestudio.engine.attributes import align, assets, colour, geometry
from stylestudio.engine.attributes.graphs import OnnxNet, TFJSNet, read_tfjs_weights
from stylestudio.errors import ModelFormatError

DATA = Path(__file__).parent / "data"
REF = DATA / "attribute_reference.npz"

# Same inputs as scripts/attribute_reference.py (which computed the stored reference outputs with
# OpenVINO for the ONNX graphs and TensorFlow.js for the TF.js ones).
INPUTS = {
    "age": ((2, 3, 64, 64), 10, 1.0, -0.5),
    "gender": ((2, 3, 32, 32), 11, 1.0, -0.5),
    "emotion": ((2, 64, 64, 1), 12, 2.0, -1.0),
    "mobilefacenet": ((2, 112, 112, 3), 13, 1.0, 0.0),
}


def _input(name: str) -> torch.Tensor:
    shape, seed, scale, shift = INPUTS[name]
    return torch.from_numpy((np.random.RandomState(seed).rand(*shape) * scale + shift).astype(np.float32))


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REF) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("name,spec", [("age", assets.AGE_ONNX), ("gender", assets.GENDER_ONNX)])
def test_onnx_rebuild_matches_reference(name, spec, reference):
    pytest.importorskip("onnx", reason="the ONNX reader needs the onnx package (pip install '.[test]')")
    net = OnnxNet.load(assets.onnx_file(spec))
    out = net(_input(name)).numpy()
    assert out.shape == reference[name].shape
    np.testing.assert_allclose(out, reference[name], atol=2e-6, rtol=1e-4)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)  # softmax in the graph


@pytest.mark.parametrize("name,key", [("emotion", "Identity"), ("mobilefacenet", "embeddings")])
def test_tfjs_rebuild_matches_reference(name, key, reference):
    net = TFJSNet.load(assets.human_model(name))
    out = net(_input(name))[key].numpy()
    np.testing.assert_allclose(out, reference[name], atol=2e-6, rtol=1e-4)


def test_onnx_refuses_unknown_ops(tmp_path):
    onnx = pytest.importorskip("onnx", reason="the ONNX reader needs the onnx package (pip install '.[test]')")
    from onnx import TensorProto, helper

    node = helper.make_node("Sin", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "sin.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ModelFormatError, match="Sin"):
        OnnxNet.load(path)


def test_tfjs_weights_dequantise(tmp_path):
    """float16 and uint8-affine quantised weights decode; a short shard is refused."""
    half = np.array([1.5, -2.25, 65504.0], np.float16)
    q = np.array([0, 128, 255], np.uint8)
    raw = np.array([[7, -3]], np.int32)
    (tmp_path / "w.bin").write_bytes(half.tobytes() + q.tobytes() + raw.tobytes())
    manifest = [{"paths": ["w.bin"], "weights": [
        {"name": "h", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16", "original_dtype": "float32"}},
        {"name": "q", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        {"name": "i", "shape": [1, 2], "dtype": "int32"},
    ]}]
    w = read_tfjs_weights(manifest, tmp_path)
    np.testing.assert_array_equal(w["h"], half.astype(np.float32))
    np.testing.assert_allclose(w["q"], [-1.0, 63.0, 126.5])
    np.testing.assert_array_equal(w["i"], raw)
    (tmp_path / "w.bin").write_bytes(half.tobytes() + q.tobytes() + raw.tobytes() + b"\0\0\0\0")
    with pytest.raises(ModelFormatError):
        read_tfjs_weights(manifest, tmp_path)


def test_tfjs_same_padding_is_tensorflows():
    """TF 'SAME' puts the odd padding pixel after; a 2-stride 3×3 conv on 4 px pads (0, 1)."""
    from stylestudio.engine.attributes.graphs import _same_pad

    assert _same_pad(4, 3, 2) == (0, 1)
    assert _same_pad(5, 3, 2) == (1, 1)
    assert _same_pad(7, 3, 1) == (1, 1)


def test_similarity_recovers_a_known_transform():
    rng = np.random.RandomState(0)
    src = torch.from_numpy(rng.rand(1, 5, 2) * 100)
    ang, s, t = 0.3, 1.7, np.array([12.0, -4.0])
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]]) * s
    dst = torch.from_numpy(src.numpy()[0] @ rot.T + t)[None]
    a = align.similarity(src, dst)[0].double().numpy()
    np.testing.assert_allclose(a[:, :2], rot, atol=1e-5)
    np.testing.assert_allclose(a[:, 2], t, atol=1e-3)


def test_warp_maps_pixel_centres():
    """An identity chip of an image is the image; a shifted one is shifted by whole pixels."""
    img = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8)
    eye = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]])
    torch.testing.assert_close(align.warp(img, eye, 8), img)
    shift = torch.tensor([[[1.0, 0, 2.0], [0, 1.0, 1.0]]])
    torch.testing.assert_close(align.warp(img, shift, 4), img[:, :, 1:5, 2:6])


def _frontal_landmarks() -> np.ndarray:
    """A symmetric, frontal 68-point face (dlib order) built from dlib's mean face shape."""
    lm = np.zeros((68, 2))
    jaw_x = np.linspace(-1, 1, 17)
    lm[0:17] = np.stack([jaw_x, 0.1 + 0.9 * np.sqrt(1 - jaw_x ** 2)], 1)  # chin (8) at y = 1
    lm[17:27] = np.stack([np.r_[np.linspace(-0.8, -0.2, 5), np.linspace(0.2, 0.8, 5)], np.full(10, -0.35)], 1)
    lm[27:31] = np.stack([np.zeros(4), np.linspace(-0.2, 0.25, 4)], 1)  # nose bridge → tip (30)
    lm[31:36] = np.stack([np.linspace(-0.15, 0.15, 5), np.full(5, 0.32)], 1)
    for base, cx in ((36, -0.4), (42, 0.4)):  # eyes: corners 0/3, lids 1,2 (top) and 5,4 (bottom)
        lm[base:base + 6] = [[cx - 0.15, 0], [cx - 0.05, -0.05], [cx + 0.05, -0.05], [cx + 0.15, 0],
                             [cx + 0.05, 0.05], [cx - 0.05, 0.05]]
    mouth_x = np.linspace(-0.3, 0.3, 7)
    lm[48:55] = np.stack([mouth_x, np.full(7, 0.55)], 1)
    lm[55:60] = np.stack([mouth_x[5:0:-1], np.full(5, 0.62)], 1)
    lm[60:65] = np.stack([np.linspace(-0.25, 0.25, 5), np.full(5, 0.56)], 1)
    lm[65:68] = np.stack([np.linspace(0.125, -0.125, 3), np.full(3, 0.58)], 1)
    return lm * 100 + 200


def test_geometry_frontal_and_turned():
    lm = _frontal_landmarks()
    g = geometry.measure(lm)
    assert abs(g["yaw"]) < 1e-6
    assert g["eyes_open"] == pytest.approx(0.1 / 0.3, rel=1e-6)
    assert g["mouth_open"] == pytest.approx(2.0 / 60, rel=1e-6)
    turned = lm.copy()
    turned[27:36, 0] += 20  # the nose moves towards the image's right: a head turned that way
    assert geometry.yaw(turned) > 5
    mirrored = lm.copy()
    mirrored[27:36, 0] -= 20
    assert geometry.yaw(mirrored) == pytest.approx(-geometry.yaw(turned), rel=1e-6)
    up = lm.copy()
    up[27:36, 1] -= 10  # nose tip higher between eyes and chin: head tilted up
    assert geometry.pitch(up) > geometry.pitch(lm)
    # invariant to position, scale and in-plane rotation
    a = 0.4
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    moved = (turned - 200) @ rot.T * 2.5 + 50
    for k, v in geometry.measure(turned).items():
        assert geometry.measure(moved)[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k


def test_lab_conversion_known_values():
    rgb = torch.tensor([1.0, 0.5, 0.0, 1.0, 0.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5).clone()
    rgb[0, :, 0, 3] = torch.tensor([1.0, 0.0, 0.0])  # pure red
    rgb[0, :, 0, 4] = torch.tensor([0.0, 0.0, 1.0])  # pure blue
    lab = colour.srgb_to_lab(rgb.double())[0, :, 0].T.numpy()
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[1], [53.39, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[2], [0, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[3], [53.24, 80.09, 67.20], atol=0.2)
    np.testing.assert_allclose(lab[4], [32.30, 79.19, -107.86], atol=0.3)


def test_colour_regions_read_the_right_places():
    """Paint hair, skin and a lit right half on a synthetic face: each measure reads its own region."""
    lm = torch.from_numpy(_frontal_landmarks()).float()[None]
    img = torch.zeros(1, 3, 400, 400)
    base = colour.measure(img - 0.5, lm)
    lighter = img - 0.5
    lighter[:, :, :, 200:] += 0.6  # the image's right half brighter
    lit = colour.measure(lighter, lm)
    assert lit["lighting"][0] > base["lighting"][0] + 10
    hair = img - 0.5
    hair[:, :, :100] = 0.9  # everything well above the eyes (y < 100 px; eyes at y = 200)
    h = colour.measure(hair, lm)
    assert h["hair_lightness"][0] > base["hair_lightness"][0] + 30
    assert h["skin_tone"][0] == pytest.approx(base["skin_tone"][0], abs=1e-3)


@pytest.mark.slow
def test_labeller_on_default_model_faces(default_generator):
    """On generated faces every attribute is found, ages are plausible, and a mirrored face keeps
    its age and gender while yaw and lighting change sign (what a correct chip and a correct
    geometry must do; a wrong normalisation or landmark order breaks it)."""
    from stylestudio.engine.attributes import AttributePredictor
    from stylestudio.engine.directions.labels import render_small, sample_w

    torch.set_num_threads(2)
    g = default_generator
    w = sample_w(g, 6, seed=3, psi=0.7)
    imgs = torch.cat([render_small(g, torch.from_numpy(w[i:i + 1]), 128) for i in range(6)])
    pred = AttributePredictor()
    m = pred.measure(imgs)
    f = pred.measure(imgs.flip(3))
    assert np.isfinite(m["age"]).all() and np.isfinite(f["age"]).all()
    assert ((m["age"] > 5) & (m["age"] < 80)).all()
    np.testing.assert_allclose(f["age"], m["age"], atol=6)
    assert (np.sign(f["gender"]) == np.sign(m["gender"]))[np.abs(m["gender"]) > 2].all()
    np.testing.assert_allclose(f["yaw"], -m["yaw"], atol=4)
    np.testing.assert_allclose(f["lighting"], -m["lighting"], atol=2)
