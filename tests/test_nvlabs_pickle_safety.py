"""The NVlabs snapshot reader loads real snapshots and refuses to run anything a pickle asks for.

Every hostile file here would create ``marker`` if it were unpickled with ``pickle.load`` (one
control test proves that for the simplest payload); the loader must raise ModelFormatError and
the marker must not appear.
"""
from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from stylestudio.engine.model_store import read_checkpoint
from stylestudio.engine.stylegan2.nvlabs_pickle import (PersistentRecord, RestrictedUnpickler, _EasyDict,
                                                        load_nvlabs_pickle, read_snapshot)
from stylestudio.errors import ModelFormatError

ORACLE = Path(__file__).resolve().parents[1].parent / "shared" / "oracle"
SNAPSHOT = ORACLE / "stylegan2_tiny" / "network-snapshot.pkl"
needs_oracle = pytest.mark.skipif(not SNAPSHOT.is_file(),
                                  reason=f"oracle folder {ORACLE} is absent (it sits beside the repo in CI)")


class Reduce:
    """Pickles as ``fn(*args)``: the classic way a pickle runs code on load."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.fn, self.args


def _write(path: Path, obj: Any) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def _assert_refused(path: Path, marker: Path | None = None) -> ModelFormatError:
    with pytest.raises(ModelFormatError) as info:
        load_nvlabs_pickle(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(path.name + ":"), message
    if marker is not None:
        assert not marker.exists(), "the payload ran"
    return info.value


def _global_only(module: str, name: str) -> bytes:
    """A pickle whose only content is a reference to ``module.name``."""
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n."


def _getattr_chain(command: str) -> bytes:
    """``getattr(__import__('os'), 'system')(command)`` using only builtins-module globals."""
    return (b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n(X\x02\x00\x00\x00ostRX\x06\x00\x00\x00systemtR"
            b"(X" + len(command).to_bytes(4, "little") + command.encode() + b"tR.")


# ---- a fake torch_utils.persistence, to write snapshots the way NVIDIA's code does ----------------

@pytest.fixture
def persistence(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Any]:
    """Return ``make(meta)``: an object that pickles exactly like an NVlabs persistent object."""
    package = types.ModuleType("torch_utils")
    module = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta: dict[str, Any]) -> Any:  # only pickled by name, never called
        raise AssertionError("the loader must not call NVIDIA's reconstructor")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    package.persistence = module
    monkeypatch.setitem(sys.modules, "torch_utils", package)
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", module)
    return lambda meta: Reduce(_reconstruct_persistent_obj, meta)


def _repickle(value: Any, make: Callable[[dict[str, Any]], Any], module_src: str) -> Any:
    """Turn records read back from a snapshot into persistent objects carrying ``module_src``."""
    if isinstance(value, PersistentRecord):
        state = _repickle(value.state, make, module_src)
        return make(dict(type="class", version=value.version, module_src=module_src,
                         class_name=value.class_name, state=state))
    if isinstance(value, _EasyDict):
        return {k: _repickle(v, make, module_src) for k, v in value.items()}
    if isinstance(value, dict):
        return type(value)((k, _repickle(v, make, module_src)) for k, v in value.items())
    return value


# ---- the real snapshot ----------------------------------------------------------------------------

@needs_oracle
def test_oracle_snapshot_loads_and_reproduces_golden() -> None:
    torch.set_num_threads(1)
    gen = load_nvlabs_pickle(SNAPSHOT)
    gold = np.load(ORACLE / "stylegan2_tiny" / "golden.npz")
    assert gen.config["channel_base"] == 1024 and gen.config["channel_max"] == 64
    with torch.no_grad():
        img = gen.generate(torch.from_numpy(gold["z"]), psi=0.7)
    assert float((img - torch.from_numpy(gold["img_const_psi07"])).abs().max()) <= 1e-4
    assert not any(p.requires_grad for p in gen.parameters())


@needs_oracle
def test_model_store_dispatches_pickles_here() -> None:
    gen, fmt = read_checkpoint(SNAPSHOT)
    assert fmt == "nvlabs-pkl" and gen.arch == "stylegan2" and gen.resolution == 32


@needs_oracle
def test_embedded_module_source_is_never_executed(tmp_path: Path, persistence: Callable[..., Any]) -> None:
    marker = tmp_path / "source-ran"
    data = read_snapshot(SNAPSHOT)
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    hostile = {k: _repickle(v, persistence, src) for k, v in data.items()}
    path = _write(tmp_path / "snapshot-with-source.pkl", hostile)
    gen = load_nvlabs_pickle(path)
    assert not marker.exists()
    assert gen.resolution == 32


# ---- hostile pickles ------------------------------------------------------------------------------

def test_control_the_marker_payload_really_runs_under_plain_pickle(tmp_path: Path) -> None:
    """Proves the payloads below are live: plain pickle would run them (harmless ``touch`` here)."""
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(Reduce(os.system, f"touch '{marker}'")))
    assert marker.exists()


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                                  "getattr-chain"])
def test_code_execution_payloads_are_refused(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / f"{kind}.pkl"
    if kind == "os.system":
        _write(path, {"G_ema": Reduce(os.system, f"touch '{marker}'")})
    elif kind == "builtins.eval":
        _write(path, Reduce(eval, f"open({str(marker)!r}, 'w').close()"))
    elif kind == "builtins.exec":
        _write(path, [1, Reduce(exec, f"open({str(marker)!r}, 'w').close()")])
    elif kind == "subprocess.Popen":
        _write(path, Reduce(subprocess.Popen, ["touch", str(marker)]))
    else:
        path.write_bytes(_getattr_chain(f"touch '{marker}'"))
    err = _assert_refused(path, marker)
    assert "refusing" in str(err)


@pytest.mark.parametrize("module,name", [("builtins", "getattr"), ("builtins", "__import__"),
                                         ("numpy", "load"), ("torch._utils", "_import_dotted_name"),
                                         ("torch.storage", "TypedStorage"), ("collections", "namedtuple"),
                                         ("torch_utils.persistence", "import_hook"), ("torch", "load")])
def test_unlisted_names_in_allowed_modules_are_refused(tmp_path: Path, module: str, name: str) -> None:
    path = tmp_path / "global.pkl"
    path.write_bytes(_global_only(module, name))
    assert f"{module}.{name}" in str(_assert_refused(path))


def test_payload_nested_in_g_ema_state_is_refused(tmp_path: Path, persistence: Callable[..., Any]) -> None:
    marker = tmp_path / "nested"
    state = {"_parameters": {}, "_buffers": {}, "_modules": {},
             "_init_kwargs": {"z_dim": 8, "w_dim": 8, "c_dim": 0, "img_resolution": 4, "img_channels": 3,
                              "mapping_kwargs": {"deep": {"deeper": Reduce(os.system, f"touch '{marker}'")}}}}
    g = persistence(dict(type="class", version=6, module_src="", class_name="Generator", state=state))
    path = _write(tmp_path / "nested.pkl", {"training_set_kwargs": {}, "G": g, "D": None, "G_ema": g})
    assert "system" in str(_assert_refused(path, marker))


def test_persistent_id_references_are_refused(tmp_path: Path) -> None:
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            return ("storage", "FloatStorage", "0", "cpu", 4) if obj == "tensor-data" else None

    path = tmp_path / "persid.pkl"
    with open(path, "wb") as f:
        Pickler(f, protocol=2).dump({"G_ema": "tensor-data"})
    assert "persistent" in str(_assert_refused(path))


def test_hostile_bytes_inside_an_embedded_storage_are_refused(tmp_path: Path) -> None:
    """``torch.storage._load_from_bytes`` is allowed, but its bytes go through torch's safe loader."""
    marker = tmp_path / "storage"
    inner = pickle.dumps(Reduce(os.system, f"touch '{marker}'"), protocol=2)
    path = _write(tmp_path / "storage.pkl", {"G_ema": Reduce(torch.storage._load_from_bytes, inner)})
    assert "storage" in str(_assert_refused(path, marker))


def test_tensor_views_outside_their_storage_are_refused(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage is deprecated, but it is what snapshots hold
        storage = torch.arange(4.0).storage()
    path = _write(tmp_path / "oob.pkl",
                  Reduce(torch._utils._rebuild_tensor_v2, storage, 2, (100,), (1,), False, {}))
    _assert_refused(path)


def test_restricted_unpickler_still_reads_plain_tensors() -> None:
    import io

    data = pickle.dumps({"t": torch.arange(6.0).reshape(2, 3)[:, 1:], "n": np.float64(0.5)}, protocol=4)
    out = RestrictedUnpickler(io.BytesIO(data)).load()
    assert torch.equal(out["t"], torch.tensor([[1.0, 2.0], [4.0, 5.0]])) and out["n"] == 0.5


# ---- damaged and foreign files --------------------------------------------------------------------

@needs_oracle
@pytest.mark.parametrize("fraction", [0.0001, 0.1, 0.5, 0.999])
def test_truncated_snapshot_is_a_format_error(tmp_path: Path, fraction: float) -> None:
    data = SNAPSHOT.read_bytes()
    path = tmp_path / "truncated.pkl"
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    _assert_refused(path)


@pytest.mark.parametrize("content", [
    b"", b"\x80", b"\x80\x04garbage that is not a pickle", random.Random(0).randbytes(4096),
    pickle.dumps({"a": 1}), pickle.dumps([1, 2, 3]), b"just some text\n",
], ids=["empty", "one-byte", "garbage", "random", "plain-dict", "list", "text"])
def test_garbage_and_non_snapshots_are_format_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "not-a-model.pkl"
    path.write_bytes(content)
    _assert_refused(path)


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError):
        load_nvlabs_pickle(tmp_path / "absent.pkl")


_BASE_KWARGS = {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 8, "img_channels": 3}


@pytest.mark.parametrize("change,words", [
    ({"c_dim": 10}, "conditional"),
    ({"synthesis_kwargs": {"architecture": "resnet"}}, "architecture"),
    ({"mapping_kwargs": {"activation": "relu"}}, "leaky-ReLU"),
    ({"synthesis_kwargs": {"magnitude_ema_beta": 0.999}}, "magnitude_ema_beta"),
], ids=["conditional", "resnet", "relu", "unknown-setting"])
def test_unsupported_generators_are_format_errors(change: dict[str, Any], words: str) -> None:
    from stylestudio.engine.stylegan2.nvlabs_pickle import config_from_init_kwargs

    with pytest.raises(ModelFormatError, match=words):
        config_from_init_kwargs({**_BASE_KWARGS, **change})


def test_supported_settings_map_onto_the_generator() -> None:
    from stylestudio.engine.stylegan2.network import StyleGAN2Generator
    from stylestudio.engine.stylegan2.nvlabs_pickle import config_from_init_kwargs

    cfg = config_from_init_kwargs({**_BASE_KWARGS, "mapping_kwargs": _EasyDict(num_layers=3, lr_multiplier=0.1),
                                   "synthesis_kwargs": {"channel_base": 64, "channel_max": 16, "conv_clamp": 256,
                                                        "num_fp16_res": 4}})
    assert cfg["num_mapping_layers"] == 3 and cfg["mapping_lr_multiplier"] == 0.1 and cfg["conv_clamp"] == 256
    assert StyleGAN2Generator(**cfg).num_ws == 4
