"""Read a rosinality/stylegan2-pytorch checkpoint into a :class:`StyleGAN2Generator`.

rosinality's ``Generator(size, style_dim, n_mlp, channel_multiplier)`` computes the same function
as NVlabs' StyleGAN2 (it is the same paper's network), only with other parameter names and
shapes. The correspondences that matter:

* ``EqualLinear`` keeps ``weight / lr_mul`` and scales by ``lr_mul/√fan_in`` at run time, exactly
  like NVlabs' ``FullyConnectedLayer``; ``fused_leaky_relu(x, b·lr_mul)`` is NVlabs'
  ``bias_act(lrelu)`` (gain √2). So ``style.{i+1}`` → ``fc{i}`` and ``modulation`` → ``affine``
  copy unchanged.
* ``ModulatedConv2d`` folds ``1/√fan_in`` into the weight *after* modulation; NVlabs applies it
  only for toRGB (``ToRGBLayer.weight_gain``) because demodulation cancels it elsewhere. Both
  keep the raw weight, so weights copy unchanged and the affine output equals NVlabs' style.
* ``NoiseInjection.weight`` is ``noise_strength``; ``noises.noise_i`` are the const noise maps.
* the stored blur / upsample kernels are the [1,3,3,1] outer products (×4 when upsampling);
  the taps are recovered from them. ``latent_avg`` becomes ``w_avg``.

Checkpoints are read with ``torch.load(weights_only=True)``: nothing in them is executed.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...errors import ModelFormatError
from ..model_store import LEGACY_TORCH_MAGIC, check_tensor_data, check_torch_archive, check_weights, plan_state
from .network import StyleGAN2Generator, taps_from_kernel
from .nvlabs_pickle import explain_safe_load_error, one_line

__all__ = ["load_rosinality", "convert_rosinality"]

#: rosinality's EqualLinear default for the mapping network; it is not stored in checkpoints
LR_MLP = 0.01
#: samples used to estimate ``w_avg`` when a checkpoint carries no ``latent_avg``
W_AVG_SAMPLES = 8192


def _allow_training_args() -> contextlib.AbstractContextManager[Any]:
    """Also accept ``argparse.Namespace``, the (inert) training options rosinality's train.py
    saves beside the weights; torch < 2.5 lacks the switch and then refuses such files."""
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    return safe_globals([argparse.Namespace]) if safe_globals else contextlib.nullcontext()


#: bytes per element of the storage classes a legacy ``torch.save`` file names
_ELEMENT_SIZE = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
                 "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1}


def _inert(*args: Any, **kwargs: Any) -> None:
    return None


class _LegacyScan(pickle.Unpickler):
    """Reads a legacy checkpoint's pickles only to total the storage sizes they declare.

    torch's legacy reader allocates each storage at its declared size before reading its bytes,
    so a tiny file could declare gigabytes. Every global resolves to a fresh, empty class of our
    own (nothing of the file runs) and persistent ids are only recorded.
    """

    def __init__(self, f: Any) -> None:
        super().__init__(f)
        self.storages: dict[str, int] = {}

    def find_class(self, module: str, name: str) -> Any:
        return type("Inert", (), {"__init__": _inert, "__setstate__": _inert, "__setitem__": _inert,
                                  "append": _inert, "extend": _inert, "storage_name": str(name)[:40]})

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage"):
            numel = pid[4]
            if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
                raise ModelFormatError("a tensor storage declares an invalid size")
            self.storages[repr(pid[2])[:80]] = numel * _ELEMENT_SIZE.get(getattr(pid[1], "storage_name", ""), 8)
        return None


def _check_legacy(path: Path) -> None:
    """Refuse a legacy (pre-1.6) checkpoint whose storages declare more bytes than the file holds."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            scan = _LegacyScan(f)
            for _ in range(4):  # magic number, protocol version, system info, the object itself
                scan.load()
    except ModelFormatError as exc:
        raise ModelFormatError(f"{path.name}: legacy PyTorch checkpoint: {exc}") from None
    except OSError as exc:
        raise ModelFormatError(f"{path.name}: cannot be read ({one_line(exc)})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, OverflowError, MemoryError, RecursionError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path.name}: not a readable legacy PyTorch checkpoint, the file is truncated "
                               f"or damaged ({one_line(exc)})") from None
    declared = sum(scan.storages.values())
    if declared > size:
        raise ModelFormatError(f"{path.name}: legacy PyTorch checkpoint declares {declared:,} bytes of tensors "
                               f"but the file holds {size:,} bytes (damaged or hostile)")


def _read(path: Path) -> Any:
    with open(path, "rb") as f:
        legacy = f.read(len(LEGACY_TORCH_MAGIC)) == LEGACY_TORCH_MAGIC
    try:
        if legacy:
            _check_legacy(path)
        else:
            check_torch_archive(path)
    except ModelFormatError as exc:
        if str(exc).startswith(path.name + ":"):
            raise
        raise ModelFormatError(f"{path.name}: {exc}") from None
    try:
        with _allow_training_args(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ModelFormatError(f"{path.name}: cannot be read ({one_line(exc)})") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, KeyError, AttributeError,
            IndexError, zipfile.BadZipFile, MemoryError, UnicodeDecodeError, RecursionError, OverflowError,
            struct.error) as exc:
        hostile, reason = explain_safe_load_error(exc)
        if hostile:
            raise ModelFormatError(f"{path.name}: refused, {reason}") from None
        raise ModelFormatError(f"{path.name}: not a readable PyTorch checkpoint, the file is truncated "
                               f"or damaged ({reason})") from None


def _count(state: dict[str, Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def _get(state: dict[str, Tensor], key: str) -> Tensor:
    try:
        value = state[key]
    except KeyError:
        raise ModelFormatError(f"missing weight {key!r}") from None
    return check_tensor_data(key, value).detach().to(torch.float32)


def _dim(state: dict[str, Tensor], key: str, index: int) -> int:
    """One dimension of a weight, or one line saying its shape is not what rosinality saves."""
    value = _get(state, key)
    if value.dim() <= index:
        raise ModelFormatError(f"weight {key} has shape {tuple(value.shape)}, not that of a rosinality layer")
    return int(value.shape[index])


def infer_config(state: dict[str, Tensor]) -> dict[str, Any]:
    """Recover ``size``/``style_dim``/``n_mlp``/``channel_multiplier`` from the key set."""
    n_mlp = _count(state, r"^style\.(\d+)\.weight$")
    n_rgbs = _count(state, r"^to_rgbs\.(\d+)\.conv\.weight$")
    if n_mlp == 0 or "input.input" not in state or "conv1.conv.weight" not in state:
        raise ModelFormatError("not a rosinality StyleGAN2 generator (no style.N / input / conv1 weights)")
    if n_rgbs > 10:  # 4096 px; 2 ** (n_rgbs + 2) must stay a sane number
        raise ModelFormatError(f"the checkpoint has {n_rgbs} toRGB layers, more than a 4096 px generator")
    style_dim = _dim(state, "style.1.weight", 0)
    size = 2 ** (n_rgbs + 2)
    img_channels = _dim(state, "to_rgb1.conv.weight", 1)  # [1, img_channels, C4, 1, 1]
    # channels up to 32 px are 512 whatever the multiplier; at 64 px they are 256 × multiplier
    multiplier = _dim(state, "convs.6.conv.weight", 1) // 256 if size >= 64 else 2
    if n_rgbs:
        try:
            taps = taps_from_kernel(_get(state, "to_rgbs.0.upsample.kernel"))
        except ValueError as exc:
            raise ModelFormatError(f"to_rgbs.0.upsample.kernel: {exc}") from None
    else:
        taps = [1.0, 3.0, 3.0, 1.0]
    return dict(
        z_dim=style_dim, w_dim=style_dim, img_resolution=size, img_channels=img_channels,
        num_mapping_layers=n_mlp, mapping_lr_multiplier=LR_MLP, channel_base=16384 * max(multiplier, 1),
        channel_max=512, resample_filter=taps,
    )


def _check_kernels(state: dict[str, Tensor], taps: list[float]) -> None:
    for key in state:
        if key.endswith(".blur.kernel") or key.endswith(".upsample.kernel"):
            try:
                found = taps_from_kernel(_get(state, key))
            except ValueError as exc:
                raise ModelFormatError(f"{key}: {exc}") from None
            if not np.allclose(found, taps, atol=1e-6):
                raise ModelFormatError("the checkpoint uses different blur kernels in different layers")


def _styled(out: dict[str, Tensor], state: dict[str, Tensor], src: str, dst: str, noise: str | None) -> None:
    out[f"{dst}.weight"] = _get(state, f"{src}.conv.weight").squeeze(0)
    out[f"{dst}.affine.weight"] = _get(state, f"{src}.conv.modulation.weight")
    out[f"{dst}.affine.bias"] = _get(state, f"{src}.conv.modulation.bias")
    out[f"{dst}.bias"] = _get(state, f"{src}.activate.bias")
    out[f"{dst}.noise_strength"] = _get(state, f"{src}.noise.weight").reshape([])
    if noise is not None:
        out[f"{dst}.noise_const"] = _get(state, noise).reshape(_get(state, noise).shape[-2:])


def _to_rgb(out: dict[str, Tensor], state: dict[str, Tensor], src: str, dst: str) -> None:
    out[f"{dst}.weight"] = _get(state, f"{src}.conv.weight").squeeze(0)
    out[f"{dst}.affine.weight"] = _get(state, f"{src}.conv.modulation.weight")
    out[f"{dst}.affine.bias"] = _get(state, f"{src}.conv.modulation.bias")
    out[f"{dst}.bias"] = _get(state, f"{src}.bias").reshape(-1)


def convert_state(state: dict[str, Tensor], cfg: dict[str, Any]) -> dict[str, Tensor]:
    """rosinality ``g_ema`` state dict → :class:`StyleGAN2Generator` state dict (minus ``w_avg``)."""
    out: dict[str, Tensor] = {}
    for i in range(cfg["num_mapping_layers"]):
        out[f"mapper.fc{i}.weight"] = _get(state, f"style.{i + 1}.weight")
        out[f"mapper.fc{i}.bias"] = _get(state, f"style.{i + 1}.bias")
    out["blocks.b4.const"] = _get(state, "input.input").squeeze(0)
    has_noise = "noises.noise_0" in state
    _styled(out, state, "conv1", "blocks.b4.conv1", "noises.noise_0" if has_noise else None)
    _to_rgb(out, state, "to_rgb1", "blocks.b4.torgb")
    for i in range(int(math.log2(cfg["img_resolution"])) - 2):
        res = 2 ** (i + 3)
        for j, name in enumerate(("conv0", "conv1")):
            layer = 2 * i + j
            noise = f"noises.noise_{layer + 1}" if has_noise else None
            _styled(out, state, f"convs.{layer}", f"blocks.b{res}.{name}", noise)
        _to_rgb(out, state, f"to_rgbs.{i}", f"blocks.b{res}.torgb")
    return out


def convert_rosinality(ckpt: Any) -> StyleGAN2Generator:
    """Build the generator from an already loaded checkpoint object.

    Order matters: the settings are inferred and checked (bounded memory) and every weight's
    shape and values are checked before the generator is allocated.
    """
    if not isinstance(ckpt, dict):
        raise ModelFormatError("not a rosinality checkpoint (expected a dict with 'g_ema')")
    state = ckpt.get("g_ema", ckpt.get("g", ckpt))
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ModelFormatError("not a rosinality checkpoint ('g_ema' is not a state dict)")
    for key, value in state.items():
        if isinstance(value, Tensor):
            check_tensor_data(key, value)
    cfg = infer_config(state)
    _check_kernels(state, cfg["resample_filter"])
    shapes = plan_state(StyleGAN2Generator, cfg)
    try:
        converted = convert_state(state, cfg)
    except (RuntimeError, IndexError, ValueError) as exc:
        raise ModelFormatError(f"weights do not form a StyleGAN2 generator ({one_line(exc)})") from None
    optional = [k for k in shapes if k.endswith("noise_const")] + ["w_avg"]
    check_weights(converted, shapes, optional=optional)
    latent_avg = ckpt.get("latent_avg")
    if isinstance(latent_avg, Tensor):
        check_tensor_data("latent_avg", latent_avg)
        if latent_avg.numel() == cfg["w_dim"] and not bool(torch.isfinite(latent_avg).all()):
            raise ModelFormatError("latent_avg holds NaN or infinite values")
    try:
        gen = StyleGAN2Generator(**cfg)
        missing = [k for k, _ in gen.named_buffers() if k.endswith("noise_const") and k not in converted]
        if missing:  # a checkpoint saved without its noise buffers: keep fresh random maps
            converted.update({k: gen.get_buffer(k) for k in missing})
        converted["w_avg"] = gen.w_avg
        gen.load_state_dict(converted, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise ModelFormatError(f"weights do not form a StyleGAN2 generator ({one_line(exc)})") from None
    with torch.no_grad():
        if isinstance(latent_avg, Tensor) and latent_avg.numel() == gen.w_dim:
            gen.w_avg.copy_(latent_avg.detach().reshape(-1).to(torch.float32))
        else:  # rosinality itself estimates the mean latent by sampling the mapping network
            z = torch.randn(W_AVG_SAMPLES, gen.z_dim, generator=torch.Generator().manual_seed(0))
            gen.w_avg.copy_(gen.map_z(z).mean(0))
    if not bool(torch.isfinite(gen.w_avg).all()):
        raise ModelFormatError("the mapping network's mean latent is not finite (the weights overflow)")
    return gen.eval().requires_grad_(False)


def load_rosinality(path: Path | str) -> StyleGAN2Generator:
    """Read a rosinality ``.pt`` (``{'g_ema': state_dict, 'latent_avg': w}``) without executing it."""
    path = Path(path)
    try:
        return convert_rosinality(_read(path))
    except ModelFormatError as exc:
        if str(exc).startswith(path.name + ":"):
            raise
        raise ModelFormatError(f"{path.name}: {exc}") from None
    except OSError as exc:
        raise ModelFormatError(f"{path.name}: cannot be read ({one_line(exc)})") from None
    except (TypeError, ValueError, RuntimeError, ArithmeticError, IndexError, KeyError, AttributeError,
            RecursionError, MemoryError) as exc:  # odd values the checks above did not foresee
        raise ModelFormatError(f"{path.name}: not a usable rosinality checkpoint ({one_line(exc)})") from None
