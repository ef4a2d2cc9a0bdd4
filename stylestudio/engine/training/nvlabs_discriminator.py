"""The discriminator of an NVlabs stylegan2-ada-pytorch snapshot, as this trainer's :class:`Discriminator`.

A snapshot carries ``D`` beside ``G_ema``; fine-tuning with it (``train --from``) keeps what it
learnt instead of starting a new critic from noise. The snapshot is read with the same restricted
unpickler as the generator (:mod:`..stylegan2.nvlabs_pickle`: nothing in it runs). Only the
residual, unconditional, single-mbstd-channel discriminator every official config uses is
converted; NVlabs' ``conv_clamp`` (±256, a float16 overflow guard) and fp16 settings are not
applied. Anything else is reported as a reason, and the model is imported without a discriminator.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...errors import ModelFormatError
from ..stylegan2.network import DEFAULT_FILTER, taps_from_kernel
from ..stylegan2.nvlabs_pickle import PersistentRecord, flatten_state, one_line, read_snapshot
from .discriminator import Discriminator

_FILTER = re.compile(r"^b\d+\.(?:(?:conv[01]|skip|fromrgb|conv)\.)?resample_filter$")
_IGNORED = {"num_fp16_res", "conv_clamp", "cmap_dim", "mapping_kwargs"}
_IGNORED_BLOCK = {"activation", "resample_filter", "freeze_layers", "fp16_channels_last"}


def _settings(rec: PersistentRecord) -> dict[str, Any]:
    """NVlabs ``Discriminator(**init_kwargs)`` → our constructor's keywords (or a reason it does not fit)."""
    args, kw = rec.state.get("_init_args") or (), rec.state.get("_init_kwargs")
    if not isinstance(kw, dict) or not isinstance(args, (tuple, list)):
        raise ModelFormatError("D carries no readable constructor arguments")
    kw = {**dict(zip(("c_dim", "img_resolution", "img_channels"), args)), **kw}
    if kw.pop("c_dim", 0) != 0:
        raise ModelFormatError("D is conditional (class labels), which the trainer does not support")
    if kw.pop("architecture", "resnet") != "resnet":
        raise ModelFormatError("D is not the residual ('resnet') architecture")
    block = kw.pop("block_kwargs", None) or {}
    epilogue = kw.pop("epilogue_kwargs", None) or {}
    if not isinstance(block, dict) or not isinstance(epilogue, dict):
        raise ModelFormatError("D's block or epilogue settings are not tables")
    if block.get("activation", "lrelu") != "lrelu" or list(block.get("resample_filter", DEFAULT_FILTER)) != \
            list(DEFAULT_FILTER):
        raise ModelFormatError("D uses another activation or resampling filter than StyleGAN2's")
    if epilogue.pop("mbstd_num_channels", 1) != 1:
        raise ModelFormatError("D's minibatch-std layer has more than one channel")
    group = epilogue.pop("mbstd_group_size", 4)
    unknown = sorted((set(kw) - _IGNORED - {"img_resolution", "img_channels", "channel_base", "channel_max"})
                     | (set(block) - _IGNORED_BLOCK) | (set(epilogue) - {"activation"}))
    if unknown:
        raise ModelFormatError(f"D uses settings the trainer does not implement: {', '.join(map(str, unknown[:5]))}")
    return {"img_resolution": kw.get("img_resolution"), "channel_base": kw.get("channel_base", 32768),
            "channel_max": kw.get("channel_max", 512), "img_channels": kw.get("img_channels", 3),
            "mbstd_group": group}


def _convert(nv: dict[str, Tensor], top: int) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for key, value in nv.items():
        if _FILTER.match(key):
            try:
                taps = taps_from_kernel(value)
            except ValueError as exc:
                raise ModelFormatError(f"D {key}: {exc}") from None
            if not np.allclose(taps, np.asarray(DEFAULT_FILTER) / sum(DEFAULT_FILTER), atol=1e-6):
                raise ModelFormatError(f"D {key} is not StyleGAN2's [1, 3, 3, 1] filter")
            continue
        if key.startswith(f"b{top}.fromrgb."):
            new = "from_rgb." + key.split(".", 2)[2]
        elif key.startswith("b4."):
            new = key[len("b4."):]
        elif key.startswith("b"):
            new = "blocks." + key
        else:
            raise ModelFormatError(f"D has a tensor {key[:60]} the residual discriminator does not")
        out[new] = value.detach().to(torch.float32)
    return out


def discriminator_from_snapshot(path: Path) -> tuple[Discriminator | None, str]:
    """The snapshot's D converted, or (None, one line saying why there is none)."""
    data = read_snapshot(path)
    rec = data.get("D") if isinstance(data, dict) else None
    if not isinstance(rec, PersistentRecord) or rec.class_name != "Discriminator":
        return None, f"{Path(path).name} holds no discriminator (D)"
    try:
        cfg = _settings(rec)
        with torch.device("meta"):  # the shapes first: a hostile size allocates nothing
            planned = Discriminator(**cfg).state_dict()
        state = _convert(flatten_state(rec), cfg["img_resolution"])
        wrong = sorted(set(planned) ^ set(state)) or \
            [k for k in planned if tuple(planned[k].shape) != tuple(state[k].shape)]
        if wrong:
            raise ModelFormatError(f"D's weights do not fit its settings ({', '.join(wrong[:3])})")
        if not all(bool(torch.isfinite(v).all()) for v in state.values()):
            raise ModelFormatError("D has weights that are not finite")
        D = Discriminator(**cfg)
        D.load_state_dict(state)
    except ModelFormatError as exc:
        return None, f"{Path(path).name}: {exc}"
    except Exception as exc:  # noqa: BLE001 - odd values of a hostile file: the import stands, without D
        return None, f"{Path(path).name}: D is not usable ({one_line(exc, 160)})"
    return D.requires_grad_(False), ""


def import_snapshot_discriminator(path: Path, model_folder: Path) -> str:
    """Save the snapshot's D beside its imported generator (what ``train --from`` looks for).

    Returns "" when saved, else the one-line reason the model has none (the import still stands).
    """
    from .run import DISCRIMINATOR_FILE, save_torch

    D, reason = discriminator_from_snapshot(path)
    if D is None:
        return reason
    save_torch(Path(model_folder) / DISCRIMINATOR_FILE, {"config": D.config, "state": D.state_dict()})
    return ""
