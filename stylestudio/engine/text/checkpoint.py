"""Read the tensors of a user's CLIP file, executing nothing it contains.

Accepted: ``torch.save`` archives and legacy pickles (read with ``torch.load(weights_only=True)``:
OpenAI state dicts, open_clip ``.pt``/``.bin`` including training checkpoints with
``{"state_dict": {"module.…"}}``), ``.safetensors`` files (Hugging Face ``transformers`` CLIPs are
renamed into OpenAI's layout), and TorchScript archives (OpenAI's
released ``ViT-B-32.pt`` …). A TorchScript archive's ``code/`` is Python that ``torch.jit.load``
would compile and run; here only its ``data.pkl`` is unpickled, by :class:`TensorOnlyUnpickler`,
which rebuilds tensors and turns every scripted-module object into an inert record, so the file's
code is never looked at.
"""
from __future__ import annotations

import io
import pickle
import struct
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...errors import ModelFormatError
from ...safe_io import regular_file_status
from ..model_store import LEGACY_TORCH_MAGIC, check_torch_archive, one_line
from ..stylegan2.nvlabs_pickle import explain_safe_load_error

#: the largest CLIP file accepted (ViT-bigG in fp32 is ~10 GB; ViT-L/14 in fp32 1.7 GB)
MAX_CLIP_BYTES = 12 << 30
_STORAGE_DTYPES = {"FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
                   "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
                   "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                   "BoolStorage": torch.bool}


class ScriptRecord:
    """A scripted module or object from a TorchScript ``data.pkl``: its class name and state, inert."""

    class_name = "?"

    def __init__(self) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _rebuild_tensor(storage: Tensor, offset: int, size: Any, stride: Any, *_rest: Any) -> Tensor:
    try:
        return storage.as_strided(tuple(size), tuple(stride), int(offset))
    except (RuntimeError, TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"a tensor reaches outside its storage ({one_line(exc)})") from None


def _rebuild_parameter(data: Tensor, *_rest: Any) -> Tensor:
    return data


class TensorOnlyUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl``: tensors, containers and inert records, nothing callable."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self.archive, self.prefix = archive, prefix
        self.records: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        if module.startswith("__torch__.") or module == "__torch__":
            key = f"{module}.{name}"
            if key not in self.records:  # a fresh inert class per scripted class, for its name only
                self.records[key] = type(name, (ScriptRecord,), {"class_name": key})
            return self.records[key]
        raise pickle.UnpicklingError(f"refusing {module}.{name}: a weights file has no need for it")

    def persistent_load(self, pid: Any) -> Tensor:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and pid[1] in _STORAGE_DTYPES):
            raise pickle.UnpicklingError(f"unexpected persistent id {str(pid)[:60]}")
        dtype = _STORAGE_DTYPES[pid[1]]
        try:
            raw = self.archive.read(f"{self.prefix}data/{pid[2]}")
        except KeyError:
            raise pickle.UnpicklingError(f"storage {pid[2]!r} is missing from the archive") from None
        return torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)


def _collect(obj: Any, prefix: str, out: dict[str, Tensor], depth: int = 0) -> None:
    """Every tensor reachable through records' states and dicts, named by its attribute path."""
    if depth > 64:
        raise ModelFormatError("the TorchScript module tree is nested absurdly deep")
    if isinstance(obj, ScriptRecord):
        obj = obj.state
    if isinstance(obj, Tensor):
        out[prefix[:-1]] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str):
                _collect(v, f"{prefix}{k}.", out, depth + 1)


def read_torchscript(path: Path) -> dict[str, Tensor]:
    """The parameters and buffers of a TorchScript archive, from ``data.pkl`` only."""
    try:
        with zipfile.ZipFile(path) as zf:
            data = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if not data:
                raise ModelFormatError("a TorchScript archive without data.pkl")
            prefix = data[0][: -len("data.pkl")]
            up = TensorOnlyUnpickler(io.BytesIO(zf.read(data[0])), zf, prefix)
            root = up.load()
    except ModelFormatError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError, KeyError, AttributeError,
            IndexError, RuntimeError, MemoryError, RecursionError, struct.error, OverflowError) as exc:
        raise ModelFormatError(f"TorchScript archive refused or damaged ({one_line(exc)})") from None
    out: dict[str, Tensor] = {}
    _collect(root, "", out)
    return out


def is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise ModelFormatError(f"not a readable .safetensors file ({one_line(exc)})") from None


def _read_torch(path: Path) -> Any:
    check_torch_archive(path, MAX_CLIP_BYTES) if zipfile.is_zipfile(path) else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, KeyError, AttributeError,
            IndexError, zipfile.BadZipFile, MemoryError, UnicodeDecodeError, RecursionError, OverflowError,
            struct.error) as exc:
        hostile, reason = explain_safe_load_error(exc)
        if hostile:
            raise ModelFormatError(f"refused: {reason} (a file that could run code when loaded)") from None
        raise ModelFormatError(f"not a readable PyTorch checkpoint, truncated or damaged ({reason})") from None


def _unwrap(obj: Any) -> dict[str, Tensor]:
    """A plain name → tensor dict from a state dict or an open_clip training checkpoint."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise ModelFormatError(f"holds a {type(obj).__name__}, not a state dict of tensors")
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, Tensor):
            continue
        out[k[len("module."):] if k.startswith("module.") else k] = v
    if not out:
        raise ModelFormatError("holds no tensors")
    if any(k.startswith(("text_model.", "vision_model.")) for k in out):  # Hugging Face transformers
        from .clip_model import from_hf_layout

        return from_hf_layout(out)
    return out


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The name → tensor dict of a CLIP file of any accepted kind; ModelFormatError names the file."""
    path = Path(path)
    st = regular_file_status(path, "a CLIP weights file", ModelFormatError)
    if st.st_size > MAX_CLIP_BYTES:
        raise ModelFormatError(f"{path}: {st.st_size / 2**30:.1f} GB is larger than any CLIP StyleStudio reads")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot be read ({one_line(exc)})") from None
    try:
        if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < st.st_size:
            return _unwrap(_read_safetensors(path))
        if zipfile.is_zipfile(path) and is_torchscript(path):
            check_torch_archive(path, MAX_CLIP_BYTES)
            return _unwrap(read_torchscript(path))
        if zipfile.is_zipfile(path) or head.startswith(LEGACY_TORCH_MAGIC[:2]):
            return _unwrap(_read_torch(path))
    except ModelFormatError as exc:
        raise ModelFormatError(f"{path}: {exc}") from None
    raise ModelFormatError(f"{path}: not a CLIP weights file (neither a PyTorch checkpoint nor .safetensors)")
