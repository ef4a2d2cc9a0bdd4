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
import math
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ...errors import ModelFormatError
from ..model_store import build_generator, check_tensor_data, check_weights, plan_state
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
    """Inert stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access).

    The unpickler hands each load a fresh subclass (see :meth:`RestrictedUnpickler.find_class`),
    and a BUILD opcode aimed at the class or an instance is refused, so no file can change the
    class another load uses.
    """

    @classmethod
    def __setstate__(cls, state: Any) -> None:  # a classmethod: refuses BUILD on the class and on instances
        raise ModelFormatError("malformed file (it tries to change a settings dictionary's type)")


class _StandIn:
    """A fresh, attribute-less callable wrapping one allow-listed function for one reference.

    ``find_class`` never returns a shared function or class: a pickle can aim BUILD/setattr at
    whatever ``find_class`` returns, and a shared object changed by one file would poison every
    later load in the process.
    """

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def __setstate__(self, state: Any) -> None:
        raise ModelFormatError("malformed file (it tries to change a reference to a function)")

    def __reduce__(self) -> Any:
        raise TypeError("a stand-in is not picklable")


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
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: a view of a safely loaded storage.

    The view may not declare more elements than its storage holds: a zero-stride view of one
    number could otherwise claim any shape and cost gigabytes once converted.
    """
    if isinstance(storage, torch.TypedStorage):
        dtype, untyped = storage.dtype, storage._untyped_storage
    else:
        raise ModelFormatError("malformed tensor (storage is not a typed storage)")
    if not isinstance(offset, int) or offset < 0 or not _is_int_tuple(size) or not _is_int_tuple(stride) \
            or len(size) != len(stride) or len(size) > 8:
        raise ModelFormatError("malformed tensor (bad offset, size or stride)")
    if math.prod(size) > untyped.nbytes() // max(1, torch.empty((), dtype=dtype).element_size()):
        raise ModelFormatError(f"malformed tensor (shape {tuple(size)} declares more values than its storage holds)")
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


class _DTypeSpec:
    """What ``numpy.dtype(code)`` becomes: the code and byte order, a fresh object per reference.

    Returning a real ``np.dtype`` would hand the file numpy's shared built-in dtype objects, whose
    state a BUILD opcode could then change; the dtype is made only when a scalar needs it.
    """

    __slots__ = ("code", "byteorder")

    def __init__(self, code: str) -> None:
        self.code, self.byteorder = code, "="

    def __setstate__(self, state: Any) -> None:  # numpy pickles (version, byteorder, ...)
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "=", "|"):
            raise ModelFormatError("refusing a numpy dtype with an unusual state")
        self.byteorder = state[1]

    def dtype(self) -> np.dtype:
        try:
            dtype = np.dtype(self.code)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"refusing numpy dtype {self.code[:20]!r} ({one_line(exc, 80)})") from None
        if dtype.kind not in "biufc" or dtype.itemsize > 16:
            raise ModelFormatError(f"refusing numpy dtype {self.code[:20]!r}, which is not a plain number type")
        return dtype.newbyteorder(self.byteorder) if self.byteorder in "<>" else dtype


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """Stand-in for ``numpy.core.multiarray.scalar`` restricted to plain numeric dtypes."""
    if not isinstance(dtype, _DTypeSpec):
        raise ModelFormatError("refusing a numpy scalar that is not a plain number")
    real = dtype.dtype()
    if not isinstance(data, bytes) or len(data) != real.itemsize:
        raise ModelFormatError("refusing a numpy scalar that is not a plain number")
    return np.frombuffer(data, dtype=real)[0]


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = False) -> _DTypeSpec:
    if not isinstance(spec, str) or len(spec) > 8:
        raise ModelFormatError("refusing a numpy dtype that is not a plain type code")
    return _DTypeSpec(spec)


_EASYDICT = object()  #: marks the names that resolve to a fresh :class:`_EasyDict` subclass

_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("dnnlib.util", "EasyDict"): _EASYDICT,
    ("dnnlib", "EasyDict"): _EASYDICT,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`_ALLOWED` globals and no persistent ids.

    Every name resolves to a fresh object (a :class:`_StandIn` around the allowed function, or a
    new :class:`_EasyDict` subclass per load), never to a shared function or class a pickle could
    change with BUILD: one hostile file must not break the loads that follow it.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            target = _ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise ModelFormatError(
                f"refusing to load: the file references {str(module)[:80]}.{str(name)[:80]}, "
                f"which a model file has no need for"
            ) from None
        if target is _EASYDICT:
            easydict = getattr(self, "_easydict", None)
            if easydict is None:
                easydict = self._easydict = type("EasyDict", (_EasyDict,), {"__slots__": ()})
            return easydict
        return _StandIn(target)

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


def _present(value: Any, default: Any) -> Any:
    """``value`` unless it is None (never ``value or default``: truth-testing a tensor can raise)."""
    return default if value is None else value


#: how deep sub-networks may nest (a StyleGAN2 generator nests 4 deep) and how many there may be
MAX_MODULE_DEPTH = 16
MAX_MODULES = 10_000


def _short_key(prefix: str, key: Any) -> str:
    text = f"{prefix}{key}"
    return text if len(text) <= 80 else text[:79] + "…"


def flatten_state(rec: PersistentRecord, prefix: str = "") -> dict[str, Tensor]:
    """The record tree's parameters and buffers under NVlabs ``state_dict`` names.

    Walked without recursion and with bounded depth and size, so a deeply nested or cyclic file
    is refused with one line instead of a RecursionError or an endless loop.
    """
    out: dict[str, Tensor] = {}
    todo: list[tuple[PersistentRecord, str, int]] = [(rec, prefix, 0)]
    seen = 0
    while todo:
        rec, prefix, depth = todo.pop()
        seen += 1
        if depth > MAX_MODULE_DEPTH or seen > MAX_MODULES:
            raise ModelFormatError(f"malformed network: sub-networks nest deeper than {MAX_MODULE_DEPTH} levels "
                                   f"or number more than {MAX_MODULES}")
        state = rec.state
        for group in ("_parameters", "_buffers"):
            tensors = _present(state.get(group), {})
            if not isinstance(tensors, dict):
                raise ModelFormatError(f"malformed network {prefix or 'G_ema'} ({group} is not a dict)")
            for key, value in tensors.items():
                if value is None:
                    continue
                if not isinstance(key, str) or not isinstance(value, Tensor):
                    raise ModelFormatError(f"malformed network: {_short_key(prefix, key)} is not a named tensor")
                out[prefix + key] = value
        modules = _present(state.get("_modules"), {})
        if not isinstance(modules, dict):
            raise ModelFormatError(f"malformed network {prefix or 'G_ema'} (_modules is not a dict)")
        for key, sub in modules.items():
            if sub is None:
                continue
            if not isinstance(key, str) or not isinstance(sub, PersistentRecord):
                raise ModelFormatError(f"malformed network: submodule {_short_key(prefix, key)} "
                                       f"is not a network object")
            todo.append((sub, f"{prefix}{key}.", depth + 1))
    return out


_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
#: keys that only affect training or speed, never the output of an fp32 forward pass
_IGNORED = {"num_fp16_res", "fp16_channels_last", "channels_last", "fused_modconv_default", "w_avg_beta"}


def _init_kwargs(rec: PersistentRecord) -> dict[str, Any]:
    args = _present(rec.state.get("_init_args"), ())
    kwargs = _present(rec.state.get("_init_kwargs"), {})
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict) or len(args) > len(_POSITIONAL):
        raise ModelFormatError("G_ema carries no readable constructor arguments")
    merged = dict(zip(_POSITIONAL, args))
    merged.update(kwargs)
    return merged


def _kwargs_dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ModelFormatError(f"G_ema's {what} are not a table of named settings")
    return dict(value)


def _setting(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def config_from_init_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """Map NVlabs ``Generator(**init_kwargs)`` onto :class:`StyleGAN2Generator` arguments.

    Values are passed on as they are; :meth:`StyleGAN2Generator.check_config` (run through
    ``plan_state`` before anything is allocated) checks their types and bounds.
    """
    kw = _kwargs_dict(kw, "constructor arguments")
    mapping = _kwargs_dict(kw.pop("mapping_kwargs", None), "mapping_kwargs")
    synthesis = _kwargs_dict(kw.pop("synthesis_kwargs", None), "synthesis_kwargs")
    missing = [k for k in ("z_dim", "w_dim", "img_resolution", "img_channels") if k not in kw]
    if missing:
        raise ModelFormatError(f"G_ema's constructor arguments lack {', '.join(missing)}")
    z_dim, c_dim, w_dim = kw.pop("z_dim"), kw.pop("c_dim", 0), kw.pop("w_dim")
    img_resolution, img_channels = kw.pop("img_resolution"), kw.pop("img_channels")
    synthesis.update(kw)  # stylegan3's networks_stylegan2 takes synthesis kwargs flattened

    def named(table: dict[str, Any], key: str, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise ModelFormatError(f"G_ema's setting {key} is {_setting(value)}, not a name")
        return value

    if isinstance(c_dim, bool) or not isinstance(c_dim, int):
        raise ModelFormatError(f"G_ema's setting c_dim is {_setting(c_dim)}, not a whole number")
    if c_dim != 0:
        raise ModelFormatError("conditional (class-label) generators are not supported")
    if named(mapping, "activation", "lrelu") != "lrelu" or named(synthesis, "activation", "lrelu") != "lrelu":
        raise ModelFormatError("only leaky-ReLU StyleGAN2 generators are supported")
    if named(synthesis, "architecture", "skip") != "skip":
        raise ModelFormatError(f"synthesis architecture {_setting(synthesis['architecture'])} is not supported "
                               f"(only 'skip')")
    kernel_size = synthesis.get("kernel_size", 3)
    if isinstance(kernel_size, bool) or kernel_size != 3:
        raise ModelFormatError("only 3×3 synthesis convolutions are supported")
    if "w_avg_beta" in mapping and mapping["w_avg_beta"] is None:
        raise ModelFormatError("the generator tracks no average latent (w_avg_beta=None)")
    if mapping.get("embed_features") is not None and c_dim == 0:
        mapping.pop("embed_features")
    resample_filter = synthesis.pop("resample_filter", DEFAULT_FILTER)
    if not isinstance(resample_filter, (list, tuple)):
        raise ModelFormatError(f"G_ema's setting resample_filter is {_setting(resample_filter)}, not a list")
    cfg: dict[str, Any] = dict(
        z_dim=z_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
        num_mapping_layers=mapping.pop("num_layers", 8),
        mapping_lr_multiplier=mapping.pop("lr_multiplier", 0.01),
        mapping_layer_features=mapping.pop("layer_features", None),
        channel_base=synthesis.pop("channel_base", 32768),
        channel_max=synthesis.pop("channel_max", 512),
        conv_clamp=synthesis.pop("conv_clamp", None),
        use_noise=synthesis.pop("use_noise", True),
        resample_filter=list(resample_filter),
    )
    for known in ("activation", "architecture", "kernel_size"):
        mapping.pop(known, None)
        synthesis.pop(known, None)
    unknown = sorted((set(mapping) | set(synthesis)) - _IGNORED)
    if unknown:
        shown = ", ".join(k[:40] for k in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise ModelFormatError(f"G_ema uses settings StyleStudio does not implement: {shown}")
    return cfg


_FILTER_KEY = re.compile(r"^synthesis\.b\d+\.(?:conv[01]\.)?resample_filter$")


def convert_state(nv: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[float] | None]:
    """NVlabs ``G_ema.state_dict()`` → ours; returns the state and the resampling taps found.

    Tensors keep their dtype here; shapes are checked against the planned model before any is
    converted or copied.
    """
    out: dict[str, Tensor] = {}
    taps: list[float] | None = None
    for key, value in nv.items():
        check_tensor_data(key, value)
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
        out[new] = value.detach()
    return out, taps


def generator_from_record(rec: PersistentRecord) -> StyleGAN2Generator:
    """Settings → checked plan (bounded memory) → weights checked against it → the generator."""
    cfg = config_from_init_kwargs(_init_kwargs(rec))
    state, taps = convert_state(flatten_state(rec))
    if taps is not None:
        cfg["resample_filter"] = taps
    try:
        shapes = plan_state(StyleGAN2Generator, cfg)
    except ModelFormatError as exc:
        raise ModelFormatError(f"G_ema: {exc}") from None
    check_weights(state, shapes)
    gen = build_generator(StyleGAN2Generator, cfg, state)
    return gen  # type: ignore[return-value]


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
    except _READ_ERRORS + (ArithmeticError,) as exc:  # odd values the checks above did not foresee
        raise ModelFormatError(f"{path.name}: not a usable NVlabs snapshot ({one_line(exc)})") from None
