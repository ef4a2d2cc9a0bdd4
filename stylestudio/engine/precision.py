"""Reduced precision for drag previews, where the hardware computes it natively.

A drag preview is only looked at, never measured or saved, and is replaced by the exact frame
when the slider is released. On CPUs with native bfloat16 arithmetic (AVX512-BF16, AMX) oneDNN
runs the generator's convolutions about twice as fast in bfloat16 as in float32, with errors of
a fraction of a grey level on a 256-px preview (``bench/preview_precision.py`` measures both).
Elsewhere bfloat16 is emulated and slower, so previews stay in float32. Final frames, exports,
thumbnails stored in projects and everything measured always run in the model's own precision.

``STYLESTUDIO_PREVIEW_PRECISION`` = ``auto`` (default), ``float32`` or ``bfloat16`` overrides the
choice (``bfloat16`` forces it even where it is emulated, for tests and comparisons).
"""
from __future__ import annotations

import copy
import logging
import os

import torch

from .generator import Generator

log = logging.getLogger(__name__)

ENV = "STYLESTUDIO_PREVIEW_PRECISION"
CHOICES = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16}


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively (only CPUs are checked: GPU
    previews are fast in float32 and reduced precision there has not been measured)."""
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        probe = getattr(torch.cpu, name, None)  # private probes of torch.cpu; absent in some builds
        try:
            if probe is not None and probe():
                return True
        except Exception:  # noqa: BLE001 — a failing probe means "unknown", i.e. not native
            continue
    return False


def preview_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """The dtype drag previews on ``device`` are drawn in, or None for the model's own.

    ``enabled`` is the user's preference (Preferences → "Faster drag previews"); the environment
    variable :data:`ENV` overrides both it and the hardware check.
    """
    choice = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        log.warning("%s=%r is not one of %s; using auto", ENV, choice, ", ".join(CHOICES))
        choice = "auto"
    if choice != "auto":
        dtype = CHOICES[choice]
        return None if dtype == torch.float32 else dtype
    if enabled and native_bfloat16(device):
        return torch.bfloat16
    return None


def reduced_copy(generator: Generator, dtype: torch.dtype) -> Generator:
    """A frozen copy of ``generator`` whose weights and buffers are in ``dtype``."""
    dup = copy.deepcopy(generator).to(dtype)
    dup.eval()
    dup.requires_grad_(False)
    return dup
