"""Choosing the compute device: CUDA, then Apple MPS, else CPU; an explicit choice wins."""
from __future__ import annotations

import torch

from ..errors import StyleStudioError


def pick_device(requested: str | None = None) -> torch.device:
    if requested and requested != "auto":
        try:
            dev = torch.device(requested)
        except RuntimeError as exc:
            raise StyleStudioError(f"unknown device {requested!r} (use auto, cpu, cuda, cuda:N or mps)") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise StyleStudioError("CUDA was requested but no CUDA GPU is available")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise StyleStudioError("MPS was requested but is not available on this machine")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
