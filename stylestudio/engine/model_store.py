"""The user's converted models: a native, code-free format kept in the user data folder.

A model is a folder ``<data>/models/<name>/`` holding ``model.json`` (architecture, constructor
arguments, where it was converted from) and ``weights.pt`` (a plain state dict, read with
``torch.load(weights_only=True)`` so loading can never execute anything). Foreign checkpoints
(NVlabs ``.pkl``, rosinality ``.pt``) are converted into this format once, on import.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import Tensor

from ..errors import ModelFormatError, UnknownModelError
from .. import paths
from ..safe_io import atomic_install_dir, os_error_message, regular_file_status, remove_stale_temporaries
from .generator import Generator

FORMAT_VERSION = 1
DEFAULT_MODEL = "mobilestylegan-ffhq"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: the most weight memory a model may need; checked from its settings before anything is
#: allocated (the default model needs 40 MB, a 1024 px StyleGAN2 130 MB)
MAX_WEIGHT_BYTES = 1 << 30
#: the first bytes of a legacy (pre-1.6, not zip) ``torch.save`` file: a pickled magic number
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")

from .progress import Progress  # noqa: E402  (the engine's one convention: (message, fraction 0..1 or < 0 busy))


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


def one_line(exc: BaseException | str, limit: int = 200) -> str:
    """An exception's message squeezed onto one short line (user-facing errors are one line)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        shown = repr(name) if len(str(name)) <= 40 else repr(str(name)[:40]) + f"… ({len(str(name))} characters)"
        raise ModelFormatError(
            f"invalid model name {shown}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    return name


# ---- checks of a model's settings and weights before they are used -------------------------------

def plan_state(cls: type[Generator], config: Any) -> dict[str, torch.Size]:
    """The state-dict shapes ``cls(**config)`` will have, found without allocating its weights.

    The constructor checks its arguments' types and bounds; it then runs on the ``meta`` device
    (shapes only), and a model needing more than :data:`MAX_WEIGHT_BYTES` is refused, so a tiny
    file declaring a huge model costs nothing. Raises :class:`ModelFormatError` (one line).
    """
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ModelFormatError("the model's settings are not a table of named values")
    try:
        planner = getattr(cls, "planned_shapes", None)
        if planner is not None:  # computed directly (the meta device's first use imports a lot)
            shapes = {k: torch.Size(v) for k, v in planner(**config).items()}
        else:
            with torch.device("meta"):
                shapes = {k: v.shape for k, v in cls(**config).state_dict().items()}
    except (TypeError, ValueError, ArithmeticError, RuntimeError, IndexError, KeyError) as exc:
        raise ModelFormatError(f"the settings are not a valid {cls.arch} generator ({one_line(exc)})") from None
    need = sum(4 * s.numel() for s in shapes.values())
    if need > MAX_WEIGHT_BYTES:
        raise ModelFormatError(f"the settings describe a model with {need / 2**20:.0f} MB of weights, more than "
                               f"the {MAX_WEIGHT_BYTES // 2**20} MB StyleStudio accepts")
    return shapes


def check_tensor_data(key: str, value: Any) -> Tensor:
    """A floating tensor whose elements are all present in its storage (no zero-stride giant views)."""
    if not isinstance(value, Tensor):
        raise ModelFormatError(f"weight {key} is not a tensor")
    if not (value.is_floating_point() and value.element_size() <= 8):
        raise ModelFormatError(f"weight {key} holds {str(value.dtype).replace('torch.', '')} values, "
                               f"not floating-point numbers")
    if value.numel() * value.element_size() > value.untyped_storage().nbytes():
        raise ModelFormatError(f"weight {key} declares shape {tuple(value.shape)}, more values than the file holds")
    return value


def check_weights(state: Any, shapes: Mapping[str, torch.Size], optional: Iterable[str] = ()) -> None:
    """``state`` has exactly the planned keys and shapes, and only finite values.

    ``optional`` keys may be absent (the caller fills them in). One line naming the first tensor
    that is wrong.
    """
    if not isinstance(state, dict):
        raise ModelFormatError("the weights are not a table of named tensors")
    missing = [k for k in shapes if k not in state and k not in set(optional)]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ModelFormatError(f"missing weight {', '.join(missing[:3])}{more}")
    extra = [str(k) for k in state if k not in shapes]
    if extra:
        more = f" and {len(extra) - 3} more" if len(extra) > 3 else ""
        raise ModelFormatError(f"unexpected weight {', '.join(e[:80] for e in extra[:3])}{more}")
    for key, value in state.items():
        check_tensor_data(key, value)
        if value.shape != shapes[key]:
            raise ModelFormatError(f"weight {key} has shape {tuple(value.shape)}, expected {tuple(shapes[key])}")
    for key, value in state.items():
        if not bool(torch.isfinite(value).all()):
            raise ModelFormatError(f"weight {key} holds NaN or infinite values")


def check_torch_archive(path: Path, limit: int = MAX_WEIGHT_BYTES + (64 << 20)) -> None:
    """Refuse a ``torch.save`` zip archive whose members would unpack to more than ``limit`` bytes."""
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise ModelFormatError(f"not a readable PyTorch archive, the file is truncated or damaged "
                               f"({one_line(exc)})") from None
    if total > limit:
        raise ModelFormatError(f"the archive unpacks to {total / 2**20:.0f} MB, more than a model "
                               f"StyleStudio accepts ({limit // 2**20} MB)")


def build_generator(cls: type[Generator], config: dict[str, Any], state: dict[str, Tensor]) -> Generator:
    """Construct ``cls(**config)`` and load ``state`` (already checked against :func:`plan_state`)."""
    try:
        gen = cls(**config)
        gen.load_state_dict({k: v.detach().to(torch.float32) for k, v in state.items()}, strict=True)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise ModelFormatError(f"the weights do not fit the described architecture ({one_line(exc)})") from None
    return gen.eval().requires_grad_(False)


# ---- the native format ---------------------------------------------------------------------------

def save_native(gen: Generator, folder: Path, source: dict[str, Any], keep_other_files: bool = False) -> None:
    """Write ``gen`` as a native model folder; an existing one stays until the new one is complete.
    ``keep_other_files`` carries the old folder's other files over (e.g. a discriminator)."""
    def fill(tmp: Path) -> None:
        if keep_other_files and Path(folder).is_dir():
            for item in Path(folder).iterdir():
                if item.name not in ("weights.pt", "model.json") and item.is_file() and not item.is_symlink():
                    shutil.copy2(item, tmp / item.name)
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

    try:
        atomic_install_dir(Path(folder), fill)
    except OSError as exc:
        raise ModelFormatError(f"cannot install the model: {os_error_message(Path(folder), exc)}") from None


def load_native(folder: Path, device: torch.device | str = "cpu") -> Generator:
    """Read a native model folder; its ``model.json`` may have been edited, so everything is checked
    (settings, weight memory, shapes, finite values) before the model is built."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{folder}: not a StyleStudio model folder ({one_line(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format") != "stylestudio-model":
        raise ModelFormatError(f"{folder}: model.json is not a StyleStudio model description")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFormatError(f"{folder}: model.json has an unreadable format_version")
    if version > FORMAT_VERSION:
        raise ModelFormatError(f"{folder}: made by a newer StyleStudio (format {version})")
    weights = folder / "weights.pt"
    expected = meta.get("weights_sha256")
    try:
        if expected and sha256_file(weights) != expected:
            raise ModelFormatError(f"{folder}: weights.pt does not match its recorded hash (damaged file)")
    except OSError as exc:
        raise ModelFormatError(f"{folder}: weights.pt cannot be read ({os_error_message(weights, exc)})") from None
    arch = meta.get("arch")
    try:
        cls = architecture(arch if isinstance(arch, str) else repr(arch)[:40])
        config = meta.get("config")
        shapes = plan_state(cls, config)
        check_torch_archive(weights)
        state = _load_weights(weights)
        check_weights(state, shapes)
        gen = build_generator(cls, config, state)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{folder}: {exc}") from None
    return gen.to(device)


def _load_weights(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ModelFormatError(f"weights.pt cannot be read ({one_line(exc)})") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, KeyError, AttributeError,
            IndexError, zipfile.BadZipFile, MemoryError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFormatError(f"weights.pt is damaged ({one_line(exc)})") from None


class ModelStore:
    """The set of models in the user data folder."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else paths.models_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.root)  # half-written models of a killed import

    def folder(self, name: str) -> Path:
        return self.root / validate_name(name)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir()
                      if _NAME_RE.match(p.name) and (p / "model.json").is_file())

    def info(self, name: str) -> ModelInfo:
        folder = self.folder(name)
        if not (folder / "model.json").is_file():
            raise UnknownModelError(f"no model named {name!r} (installed: {', '.join(self.names()) or 'none'})")
        try:
            meta = json.loads((folder / "model.json").read_text())
        except (OSError, ValueError, RecursionError) as exc:
            raise ModelFormatError(f"{folder / 'model.json'}: unreadable ({one_line(exc)})") from None
        meta = meta if isinstance(meta, dict) else {}
        cfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
        res = cfg.get("resolution", cfg.get("img_resolution", 0))
        source = meta.get("source") if isinstance(meta.get("source"), dict) else {}
        return ModelInfo(name, str(meta.get("arch", "?")), res if isinstance(res, int) else 0, source, folder)

    def has(self, name: str) -> bool:
        """Whether ``name`` is installed (an invalid name, e.g. 300 characters, is simply not)."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            return False
        return (self.root / name / "model.json").is_file()

    def check_name_free(self, name: str, provisioning: bool = False) -> str:
        """``name`` if a model may be stored under it: the default model's name is reserved."""
        validate_name(name)
        if name == DEFAULT_MODEL and not provisioning:
            raise ModelFormatError(f"the name {DEFAULT_MODEL!r} is reserved for the built-in model; "
                                   f"choose another --name")
        return name

    def add(self, gen: Generator, name: str, source: dict[str, Any], *, provisioning: bool = False) -> ModelInfo:
        """Store ``gen`` as ``name``; a model already there is replaced only once the new one is
        complete. ``provisioning`` is for the code that installs the default model."""
        save_native(gen, self.folder(self.check_name_free(name, provisioning)), source)
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
        gen = load_native(self.folder(name), device)
        if name == DEFAULT_MODEL:
            gen = self._with_display_heads(gen, progress)
        return gen

    def _with_display_heads(self, gen: Generator, progress: Progress | None) -> Generator:
        """The default model as stored before display heads existed shows grid-like drag previews:
        fit its display heads once, as a progress step, and store it again (atomically, other files
        kept). Its 1×1 analysis heads stay as they were. If it cannot be stored, the fitted model
        is still used (and the fit repeats next time)."""
        from .mobilestylegan import display_heads, provision

        if gen.arch != "mobilestylegan" or any(getattr(gen, "display_kernels", (1,))) \
                or tuple(gen.config.get("channels", ())) != provision.CHANNELS:
            return gen
        say = progress or (lambda message, fraction: None)
        say("Fitting sharper drag previews for the default model (once)…", 0.0)
        device = next(gen.buffers()).device  # the fit keeps its sums on the CPU
        new, record = display_heads.with_display_heads(gen.cpu(), progress=say, span=(0.0, 0.95))  # type: ignore[arg-type]
        new = new.to(device)
        source = dict(self.info(DEFAULT_MODEL).source, display_heads=record)
        try:
            save_native(new, self.folder(DEFAULT_MODEL), source, keep_other_files=True)
        except ModelFormatError as exc:
            warnings.warn(f"the fitted display heads could not be stored ({exc}); they are fitted again next time")
        say("The drag previews are ready", 1.0)
        return new

    def fetch_default(self, progress: Progress | None = None, force: bool = False) -> ModelInfo:
        from .mobilestylegan.provision import provision_default

        if self.has(DEFAULT_MODEL) and not force:
            return self.info(DEFAULT_MODEL)
        gen, source = provision_default(progress)
        return self.add(gen, DEFAULT_MODEL, source, provisioning=True)

    def import_file(self, path: Path, name: str | None = None) -> ModelInfo:
        """Convert a foreign checkpoint into the native format (the name is checked first)."""
        path = Path(path)
        try:
            name = self.check_name_free(name or re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:64].lstrip("._-")
                                        or "model")
        except ModelFormatError as exc:
            raise ModelFormatError(f"{path.name}: {exc}") from None
        gen, fmt = read_checkpoint(path)
        try:
            digest = sha256_file(path) if path.is_file() else ""
        except OSError as exc:
            raise ModelFormatError(os_error_message(path, exc)) from None
        source = {"format": fmt, "file": path.name, "sha256": digest}
        info = self.add(gen, name, source)
        if fmt == "nvlabs-pkl":  # its D too, so `train --from` fine-tunes with it (kept out when unusable)
            from .training.nvlabs_discriminator import import_snapshot_discriminator

            import_snapshot_discriminator(path, info.path)
        return info


def _check_model_file(path: Path) -> os.stat_result:
    """The file's status, or one line saying why it cannot be a model file (checked before opening,
    so a FIFO never blocks the import)."""
    return regular_file_status(path, "a model file", ModelFormatError)


def read_checkpoint(path: Path) -> tuple[Generator, str]:
    """Read any supported checkpoint without executing its contents; returns (generator, format)."""
    path = Path(path)
    try:
        if path.is_dir() and (path / "model.json").is_file():
            return load_native(path), "stylestudio"
    except OSError as exc:
        raise ModelFormatError(os_error_message(path, exc)) from None
    _check_model_file(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(LEGACY_TORCH_MAGIC))
    except OSError as exc:
        raise ModelFormatError(os_error_message(path, exc)) from None
    if head[:2] == b"PK" or head.startswith(LEGACY_TORCH_MAGIC):  # torch.save archive (zip or legacy)
        from .stylegan2.rosinality import load_rosinality

        return load_rosinality(path), "rosinality"
    if head[:1] == b"\x80":  # a raw pickle stream: NVlabs snapshot
        from .stylegan2.nvlabs_pickle import load_nvlabs_pickle

        return load_nvlabs_pickle(path), "nvlabs-pkl"
    raise ModelFormatError(
        f"{path.name}: not a recognised checkpoint (expected an NVlabs .pkl snapshot or a rosinality .pt)"
    )
