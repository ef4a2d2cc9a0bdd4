"""Read an NVlabs stylegan2-ada-pytorch snapshot (``network-snapshot-*.pkl``) without running it.

An official snapshot is a pickle of ``dict(training_set_kwargs, G, D, G_ema, augment_pipe)``
where every network is a "persistent class" object: it pickles as a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` and ``meta`` carries the *source
code* of its module, which NVIDIA's loader ``exec``s. A pickle is a program; loading one with
``pickle.load`` lets the file call any importable function. So we never use NVIDIA's code, never
look at the embedded source and never resolve a global that is not on a short allow-list:

* the persistent-object constructor is replaced by :func:`_reconstruct_persistent_obj`, which
  only records the class name and the object's ``__dict__`` (parameters, buffers, submodules,
  ``_init_kwargs``);
* tensors are rebuilt by stand-ins that accept only storages read back through
  ``torch.load(weights_only=True)`` (PyTorch's own restricted unpickler);
* plain containers (``OrderedDict``, ``set``, ``dnnlib.util.EasyDict`` as a dict) and numpy
  scalars/dtypes (NVlabs stores some gains as ``np.float64``) are the only other globals.

Everything else, including persistent-id references, raises :class:`ModelFormatError`.
"""
from __future__ import annotations

import collections
import io
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ...errors import ModelFormatError
from .network import DEFAULT_FILTER, StyleGAN2Generator, taps_from_kernel

__all__ = ["load_nvlabs_pickle", "read_snapshot", "PersistentRecord", "RestrictedUnpickler"]


def one_line(exc: BaseException | str, limit: int = 240) -> str:
    """An exception's message squeezed onto one short line (user-facing errors are one line)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")
_TORCH_BOILERPLATE = ("Weights only load failed", "Check the documentation", "Please file an issue")


def explain_safe_load_error(exc: BaseException) -> tuple[bool, str]:
    """Digest a ``torch.load(weights_only=True)`` failure: (was it a refused global?, reason).

    torch's own message advises retrying with ``weights_only=False``, exactly what must never be
    done with an untrusted model, so only the diagnostic part is kept.
    """
    text = str(exc)
    found = _GLOBAL_RE.search(text)
    if found:
        return True, f"it references {found.group(1)}, which a weights file has no need for"
    parts = [p for p in re.split(r"\n\s*\n", text) if p.strip() and not p.strip().startswith(_TORCH_BOILERPLATE)]
    return False, one_line(" ".join(parts) if parts else text)


# ---- stand-ins for the few globals a snapshot may name ------------------------------------------

class PersistentRecord:
    """What a persistent-class object becomes: its class name and its ``__dict__``, inert."""

    __slots__ = ("class_name", "state", "version")

    def __init__(self, class_name: str, state: dict[str, Any], version: Any) -> None:
        self.class_name = class_name
        self.state = state
        self.version = version

    def __setstate__(self, state: Any) -> None:  # a BUILD opcode aimed at a record
        raise ModelFormatError("malformed persistent object (unexpected state update)")

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name!r})"


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    """Stand-in for ``torch_utils.persistence._reconstruct_persistent_obj``: records, never execs."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise ModelFormatError("malformed persistent object (meta is not a class description)")
    name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(name, str) or not isinstance(state, dict):
        raise ModelFormatError("malformed persistent object (no class name or state)")
    return PersistentRecord(name, state, meta.get("version"))


class _EasyDict(dict):
    """Inert stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access)."""


def _load_storage(data: Any) -> torch.TypedStorage | torch.UntypedStorage:
    """Stand-in for ``torch.storage._load_from_bytes``: the bytes go through torch's safe loader."""
    if not isinstance(data, (bytes, bytearray)):
        raise ModelFormatError("malformed tensor storage (not bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure of the restricted loader means a bad or hostile file
        hostile, reason = explain_safe_load_error(exc)
        what = "refusing to load an embedded tensor storage" if hostile else "an embedded tensor storage is damaged"
        raise ModelFormatError(f"{what}: {reason}") from None
    if not isinstance(obj, (torch.TypedStorage, torch.UntypedStorage)):
        raise ModelFormatError("an embedded tensor storage holds something other than a storage")
    return obj


def _is_int_tuple(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and all(isinstance(i, int) and i >= 0 for i in v)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    backward_hooks: Any = None, metadata: Any = None) -> Tensor:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: a view of a safely loaded storage."""
    if isinstance(storage, torch.TypedStorage):
        dtype, untyped = storage.dtype, storage._untyped_storage
    else:
        raise ModelFormatError("malformed tensor (storage is not a typed storage)")
    if not isinstance(offset, int) or offset < 0 or not _is_int_tuple(size) or not _is_int_tuple(stride) \
            or len(size) != len(stride):
        raise ModelFormatError("malformed tensor (bad offset, size or stride)")
    if backward_hooks:
        raise ModelFormatError("refusing a tensor that carries hooks")
    try:
        return torch.empty((0,), dtype=dtype).set_(untyped, offset, tuple(size), tuple(stride))
    except RuntimeError as exc:
        raise ModelFormatError(f"malformed tensor ({one_line(exc)})") from None


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None,
                       state: Any = None) -> Tensor:
    """Stand-in for ``torch._utils._rebuild_parameter[_with_state]``: keep just the data."""
    if not isinstance(data, Tensor):
        raise ModelFormatError("malformed parameter (no tensor data)")
    if backward_hooks:
        raise ModelFormatError("refusing a parameter that carries hooks")
    return data


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """Stand-in for ``numpy.core.multiarray.scalar`` restricted to plain numeric dtypes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes) \
            or len(data) != dtype.itemsize:
        raise ModelFormatError("refusing a numpy scalar that is not a plain number")
    return np.frombuffer(data, dtype=dtype)[0]


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    if not isinstance(spec, str):
        raise ModelFormatError("refusing a numpy dtype that is not a plain type code")
    dtype = np.dtype(spec)
    if dtype.hasobject:
        raise ModelFormatError("refusing a numpy object dtype")
    return dtype


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`_ALLOWED` globals and no persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ModelFormatError(
                f"refusing to load: the file references {module}.{name}, which a model file has no need for"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise ModelFormatError("refusing to load: the file uses persistent references")


# ---- reading a snapshot -------------------------------------------------------------------------

_READ_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                KeyError, RuntimeError, OverflowError, MemoryError, RecursionError, UnicodeDecodeError)


def read_snapshot(path: Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (networks come back as records)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f).load()
    except ModelFormatError as exc:
        raise ModelFormatError(f"{path.name}: {exc}") from None
    except OSError as exc:
        raise ModelFormatError(f"{path.name}: cannot be read ({one_line(exc)})") from None
    except _READ_ERRORS as exc:
        raise ModelFormatError(
            f"{path.name}: not a readable NVlabs snapshot, the file is truncated or damaged ({one_line(exc)})"
        ) from None


def _generator_record(data: Any) -> PersistentRecord:
    if isinstance(data, PersistentRecord):
        rec = data
    elif isinstance(data, dict) and "G_ema" in data:
        rec = data["G_ema"]
    else:
        raise ModelFormatError("not an NVlabs network snapshot (no G_ema network in it)")
    if not isinstance(rec, PersistentRecord) or rec.class_name != "Generator":
        raise ModelFormatError("not an NVlabs network snapshot (G_ema is not a Generator network)")
    return rec


def flatten_state(rec: PersistentRecord, prefix: str = "") -> dict[str, Tensor]:
    """The record tree's parameters and buffers under NVlabs ``state_dict`` names."""
    out: dict[str, Tensor] = {}
    state = rec.state
    for group in ("_parameters", "_buffers"):
        tensors = state.get(group) or {}
        if not isinstance(tensors, dict):
            raise ModelFormatError(f"malformed network {prefix or 'G_ema'} ({group} is not a dict)")
        for key, value in tensors.items():
            if value is None:
                continue
            if not isinstance(value, Tensor):
                raise ModelFormatError(f"malformed network: {prefix}{key} is not a tensor")
            out[prefix + str(key)] = value
    modules = state.get("_modules") or {}
    if not isinstance(modules, dict):
        raise ModelFormatError(f"malformed network {prefix or 'G_ema'} (_modules is not a dict)")
    for key, sub in modules.items():
        if sub is None:
            continue
        if not isinstance(sub, PersistentRecord):
            raise ModelFormatError(f"malformed network: submodule {prefix}{key} is not a network object")
        out.update(flatten_state(sub, f"{prefix}{key}."))
    return out


_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
#: keys that only affect training or speed, never the output of an fp32 forward pass
_IGNORED = {"num_fp16_res", "fp16_channels_last", "channels_last", "fused_modconv_default", "w_avg_beta"}


def _init_kwargs(rec: PersistentRecord) -> dict[str, Any]:
    args = rec.state.get("_init_args") or ()
    kwargs = rec.state.get("_init_kwargs") or {}
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict) or len(args) > len(_POSITIONAL):
        raise ModelFormatError("G_ema carries no readable constructor arguments")
    merged = dict(zip(_POSITIONAL, args))
    merged.update(kwargs)
    return merged


def config_from_init_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """Map NVlabs ``Generator(**init_kwargs)`` onto :class:`StyleGAN2Generator` arguments."""
    kw = dict(kw)
    mapping = dict(kw.pop("mapping_kwargs", None) or {})
    synthesis = dict(kw.pop("synthesis_kwargs", None) or {})
    try:
        z_dim, c_dim, w_dim = int(kw.pop("z_dim")), int(kw.pop("c_dim", 0)), int(kw.pop("w_dim"))
        img_resolution, img_channels = int(kw.pop("img_resolution")), int(kw.pop("img_channels"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"G_ema's constructor arguments lack {one_line(exc)}") from None
    synthesis.update(kw)  # stylegan3's networks_stylegan2 takes synthesis kwargs flattened
    if c_dim != 0:
        raise ModelFormatError("conditional (class-label) generators are not supported")
    if mapping.get("activation", "lrelu") != "lrelu" or synthesis.get("activation", "lrelu") != "lrelu":
        raise ModelFormatError("only leaky-ReLU StyleGAN2 generators are supported")
    if synthesis.get("architecture", "skip") != "skip":
        raise ModelFormatError(f"synthesis architecture {synthesis['architecture']!r} is not supported (only 'skip')")
    if int(synthesis.get("kernel_size", 3)) != 3:
        raise ModelFormatError("only 3×3 synthesis convolutions are supported")
    if "w_avg_beta" in mapping and mapping["w_avg_beta"] is None:
        raise ModelFormatError("the generator tracks no average latent (w_avg_beta=None)")
    if mapping.get("embed_features") is not None and c_dim == 0:
        mapping.pop("embed_features")
    cfg: dict[str, Any] = dict(
        z_dim=z_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
        num_mapping_layers=int(mapping.pop("num_layers", 8)),
        mapping_lr_multiplier=float(mapping.pop("lr_multiplier", 0.01)),
        mapping_layer_features=mapping.pop("layer_features", None),
        channel_base=int(synthesis.pop("channel_base", 32768)),
        channel_max=int(synthesis.pop("channel_max", 512)),
        conv_clamp=synthesis.pop("conv_clamp", None),
        use_noise=bool(synthesis.pop("use_noise", True)),
        resample_filter=list(synthesis.pop("resample_filter", DEFAULT_FILTER)),
    )
    for known in ("activation", "architecture", "kernel_size"):
        mapping.pop(known, None)
        synthesis.pop(known, None)
    unknown = sorted((set(mapping) | set(synthesis)) - _IGNORED)
    if unknown:
        raise ModelFormatError(f"G_ema uses settings StyleStudio does not implement: {', '.join(unknown)}")
    return cfg


_FILTER_KEY = re.compile(r"^synthesis\.b\d+\.(?:conv[01]\.)?resample_filter$")


def convert_state(nv: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[float] | None]:
    """NVlabs ``G_ema.state_dict()`` → ours; returns the state and the resampling taps found."""
    out: dict[str, Tensor] = {}
    taps: list[float] | None = None
    for key, value in nv.items():
        if _FILTER_KEY.match(key):
            try:
                found = taps_from_kernel(value)
            except ValueError as exc:
                raise ModelFormatError(f"{key}: {exc}") from None
            if taps is not None and not np.allclose(found, taps, atol=1e-6):
                raise ModelFormatError("the synthesis blocks use different resampling filters")
            taps = found
            continue
        if key.startswith("mapping.embed."):
            raise ModelFormatError("conditional (class-label) generators are not supported")
        if key == "mapping.w_avg":
            new = "w_avg"
        elif key.startswith("mapping."):
            new = "mapper." + key[len("mapping."):]
        elif key.startswith("synthesis."):
            new = "blocks." + key[len("synthesis."):]
        else:
            new = key
        out[new] = value.detach().to(torch.float32)
    return out, taps


def generator_from_record(rec: PersistentRecord) -> StyleGAN2Generator:
    cfg = config_from_init_kwargs(_init_kwargs(rec))
    state, taps = convert_state(flatten_state(rec))
    if taps is not None:
        cfg["resample_filter"] = taps
    try:
        gen = StyleGAN2Generator(**cfg)
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"G_ema's settings are not a valid StyleGAN2 generator ({one_line(exc)})") from None
    try:
        gen.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFormatError(f"G_ema's weights do not match a StyleGAN2 generator ({one_line(exc)})") from None
    return gen.eval().requires_grad_(False)


def load_nvlabs_pickle(path: Path | str) -> StyleGAN2Generator:
    """Read the ``G_ema`` of an NVlabs snapshot ``.pkl`` as a :class:`StyleGAN2Generator`.

    Nothing the file contains is executed; any refusal or damage raises ``ModelFormatError``.
    """
    path = Path(path)
    data = read_snapshot(path)
    try:
        return generator_from_record(_generator_record(data))
    except ModelFormatError as exc:
        raise ModelFormatError(f"{path.name}: {exc}") from None
