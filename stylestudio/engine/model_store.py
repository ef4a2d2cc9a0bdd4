"""The user's converted models: a native, code-free format kept in the user data folder.

A model is a folder ``<data>/models/<name>/`` holding ``model.json`` (architecture, constructor
arguments, where it was converted from) and ``weights.pt`` (a plain state dict, read with
``torch.load(weights_only=True)`` so loading can never execute anything). Foreign checkpoints
(NVlabs ``.pkl``, rosinality ``.pt``) are converted into this format once, on import.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import ModelFormatError, UnknownModelError
from .. import paths
from .generator import Generator

FORMAT_VERSION = 1
DEFAULT_MODEL = "mobilestylegan-ffhq"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

Progress = Callable[[str, float], None]  # (message, fraction 0..1)


def architecture(arch: str) -> type[Generator]:
    """The generator class for an architecture key (imported lazily: each is heavy)."""
    if arch == "stylegan2":
        from .stylegan2.network import StyleGAN2Generator

        return StyleGAN2Generator
    if arch == "mobilestylegan":
        from .mobilestylegan.network import MobileStyleGAN

        return MobileStyleGAN
    raise ModelFormatError(f"unknown architecture {arch!r}")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    arch: str
    resolution: int
    source: dict[str, Any]
    path: Path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ModelFormatError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    return name


def save_native(gen: Generator, folder: Path, source: dict[str, Any]) -> None:
    """Write ``gen`` atomically as a native model folder."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in gen.state_dict().items()}
        torch.save(state, tmp / "weights.pt")
        meta = {
            "format": "stylestudio-model",
            "format_version": FORMAT_VERSION,
            "arch": gen.arch,
            "config": gen.config,
            "source": source,
            "weights_sha256": sha256_file(tmp / "weights.pt"),
        }
        (tmp / "model.json").write_text(json.dumps(meta, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_native(folder: Path, device: torch.device | str = "cpu") -> Generator:
    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{folder}: not a StyleStudio model folder ({exc})") from exc
    if meta.get("format") != "stylestudio-model":
        raise ModelFormatError(f"{folder}: model.json is not a StyleStudio model description")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFormatError(f"{folder}: made by a newer StyleStudio (format {meta['format_version']})")
    weights = folder / "weights.pt"
    expected = meta.get("weights_sha256")
    if expected and sha256_file(weights) != expected:
        raise ModelFormatError(f"{folder}: weights.pt does not match its recorded hash (damaged file)")
    cls = architecture(meta["arch"])
    try:
        gen = cls(**meta["config"])
        state = torch.load(weights, map_location="cpu", weights_only=True)
        gen.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, EOFError) as exc:
        raise ModelFormatError(f"{folder}: weights do not fit the described architecture ({exc})") from exc
    return gen.eval().requires_grad_(False).to(device)


class ModelStore:
    """The set of models in the user data folder."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else paths.models_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, name: str) -> Path:
        return self.root / validate_name(name)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "model.json").is_file())

    def info(self, name: str) -> ModelInfo:
        folder = self.folder(name)
        if not (folder / "model.json").is_file():
            raise UnknownModelError(f"no model named {name!r} (installed: {', '.join(self.names()) or 'none'})")
        meta = json.loads((folder / "model.json").read_text())
        cfg = meta.get("config", {})
        return ModelInfo(name, meta.get("arch", "?"), int(cfg.get("resolution", cfg.get("img_resolution", 0))),
                         meta.get("source", {}), folder)

    def has(self, name: str) -> bool:
        return (self.root / name / "model.json").is_file()

    def add(self, gen: Generator, name: str, source: dict[str, Any]) -> ModelInfo:
        save_native(gen, self.folder(name), source)
        return self.info(name)

    def remove(self, name: str) -> None:
        folder = self.folder(name)
        if not folder.exists():
            raise UnknownModelError(f"no model named {name!r}")
        shutil.rmtree(folder)

    def load(self, name: str | None = None, device: torch.device | str = "cpu",
             progress: Progress | None = None) -> Generator:
        """Load a model; the default one is provisioned on first use."""
        name = name or DEFAULT_MODEL
        if name == DEFAULT_MODEL and not self.has(name):
            self.fetch_default(progress)
        if not self.has(name):
            self.info(name)  # raises UnknownModelError with the list of installed models
        return load_native(self.folder(name), device)

    def fetch_default(self, progress: Progress | None = None, force: bool = False) -> ModelInfo:
        from .mobilestylegan.provision import provision_default

        if self.has(DEFAULT_MODEL) and not force:
            return self.info(DEFAULT_MODEL)
        gen, source = provision_default(progress)
        return self.add(gen, DEFAULT_MODEL, source)

    def import_file(self, path: Path, name: str | None = None) -> ModelInfo:
        """Convert a foreign checkpoint into the native format."""
        path = Path(path)
        if not path.is_file():
            raise ModelFormatError(f"{path}: no such file")
        gen, fmt = read_checkpoint(path)
        name = validate_name(name or re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:64] or "model")
        source = {"format": fmt, "file": path.name, "sha256": sha256_file(path)}
        return self.add(gen, name, source)


def read_checkpoint(path: Path) -> tuple[Generator, str]:
    """Read any supported checkpoint without executing its contents; returns (generator, format)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if (path / "model.json").exists() if path.is_dir() else False:
        return load_native(path), "stylestudio"
    if head[:2] == b"PK":  # torch zip archive: rosinality (or plain state dict)
        from .stylegan2.rosinality import load_rosinality

        return load_rosinality(path), "rosinality"
    if head[:1] == b"\x80":  # a raw pickle stream: NVlabs snapshot
        from .stylegan2.nvlabs_pickle import load_nvlabs_pickle

        return load_nvlabs_pickle(path), "nvlabs-pkl"
    raise ModelFormatError(
        f"{path.name}: not a recognised checkpoint (expected an NVlabs .pkl snapshot or a rosinality .pt)"
    )
