"""Hostile and malformed model files through ``stylestudio models import``, and the model store's
guarantees (no poisoning between loads, the reserved default name, atomic re-import).

Every file is generated here from a tiny StyleGAN2 built with the project's own network, so the
tests need neither the oracle folder nor the default model. Each CLI case must end with exit 2 and
one ``error: <file>: …`` line, within its memory bound, without running any payload.
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import stat
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import torch

from stylestudio.engine.model_store import (DEFAULT_MODEL, MAX_WEIGHT_BYTES, ModelStore, load_native, plan_state,
                                            read_checkpoint)
from stylestudio.engine.stylegan2.network import StyleGAN2Generator
from stylestudio.engine.stylegan2.nvlabs_pickle import load_nvlabs_pickle
from stylestudio.engine.stylegan2.rosinality import load_rosinality
from stylestudio.errors import ModelFormatError
from tests.fuzz.harness import MARKER_NAME, Case, check, problems, run_cases

TINY = dict(z_dim=8, w_dim=8, img_resolution=8, img_channels=3, num_mapping_layers=2, channel_base=64, channel_max=8)
NV_KWARGS = {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 8, "img_channels": 3,
             "mapping_kwargs": {"num_layers": 2}, "synthesis_kwargs": {"channel_base": 64, "channel_max": 8}}
SIZE_RSS_MB = 500.0


# ---- writing NVlabs snapshots the way NVIDIA's persistence module pickles them -----------------------

class _Reduce:
    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.fn, self.args


def _reconstruct_persistent_obj(meta: dict[str, Any]) -> Any:  # pickled by name only, never called
    raise AssertionError("never called")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"


class EasyDict(dict):
    """Pickles like ``dnnlib.util.EasyDict`` (NVlabs keeps its settings in these)."""


EasyDict.__module__ = "dnnlib.util"


@contextlib.contextmanager
def _fake_persistence() -> Iterator[Callable[[dict[str, Any]], Any]]:
    """``make(meta)`` → an object that pickles as ``torch_utils.persistence._reconstruct_persistent_obj(meta)``."""
    mods = {name: types.ModuleType(name) for name in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")}
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    mods["dnnlib.util"].EasyDict = EasyDict
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield lambda meta: _Reduce(_reconstruct_persistent_obj, meta)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _easy(value: Any) -> Any:
    """Settings tables as EasyDicts, the way NVlabs' training code stores them."""
    if isinstance(value, dict):
        return EasyDict({k: _easy(v) for k, v in value.items()})
    return value


def _module(make: Callable[..., Any], class_name: str, params: dict[str, Any], modules: dict[str, Any],
            init_kwargs: Any = None) -> Any:
    state: dict[str, Any] = {"_parameters": params, "_buffers": {}, "_modules": modules}
    if init_kwargs is not None:
        state["_init_kwargs"] = init_kwargs
    return make(dict(type="class", version=6, module_src="# never run", class_name=class_name, state=state))


def nvlabs_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The tiny generator's weights under NVlabs ``G_ema.state_dict()`` names."""
    torch.manual_seed(seed)
    gen = StyleGAN2Generator(**TINY)
    out = {}
    for key, value in gen.state_dict().items():
        key = ("mapping.w_avg" if key == "w_avg" else
               "mapping." + key[len("mapper."):] if key.startswith("mapper.") else
               "synthesis." + key[len("blocks."):])
        out[key] = value.detach().clone()
    return out


def write_snapshot(path: Path, state: dict[str, torch.Tensor] | None = None, init_kwargs: Any = None,
                   extra_modules: dict[str, Any] | None = None) -> Path:
    """A small valid NVlabs snapshot (or one with the given weights/settings)."""
    state = nvlabs_state() if state is None else state
    with _fake_persistence() as make:
        tree: dict[str, Any] = {}
        for key, value in state.items():
            *parents, leaf = key.split(".")
            node = tree
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value

        def build(node: dict[str, Any], name: str, kwargs: Any = None) -> Any:
            params = {k: v for k, v in node.items() if isinstance(v, torch.Tensor)}
            subs = {k: build(v, k) for k, v in node.items() if isinstance(v, dict)}
            return _module(make, name, params, subs, kwargs)

        root = build(tree, "Generator", _easy(NV_KWARGS if init_kwargs is None else init_kwargs))
        if extra_modules:
            root.args[0]["state"]["_modules"].update(extra_modules)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 100_000))  # for the deeply nested case
        try:
            path.write_bytes(pickle.dumps({"training_set_kwargs": EasyDict(resolution=8), "G": None, "D": None,
                                           "G_ema": root, "augment_pipe": None}, protocol=4))
        finally:
            sys.setrecursionlimit(limit)
    return path


def _deep_snapshot(path: Path, depth: int) -> Path:
    with _fake_persistence() as make:
        node = _module(make, "Leaf", {}, {})
        for _ in range(depth):
            node = _module(make, "Nest", {}, {"m": node})
    return write_snapshot(path, extra_modules={"nest": node})


# ---- rosinality checkpoints -----------------------------------------------------------------------

def rosinality_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A rosinality ``g_ema`` state dict for size 8, style_dim 8, n_mlp 2 (512 channels, as
    rosinality uses up to 32 px)."""
    g = torch.Generator().manual_seed(seed)
    c, d = 512, 8
    blur = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1]))
    blur = blur / blur.sum()

    def styled(prefix: str, cin: int, cout: int, up: bool = False) -> dict[str, torch.Tensor]:
        out = {f"{prefix}.conv.weight": torch.randn(1, cout, cin, 3, 3, generator=g),
               f"{prefix}.conv.modulation.weight": torch.randn(cin, d, generator=g),
               f"{prefix}.conv.modulation.bias": torch.ones(cin),
               f"{prefix}.noise.weight": torch.zeros(1), f"{prefix}.activate.bias": torch.zeros(cout)}
        if up:
            out[f"{prefix}.conv.blur.kernel"] = blur * 4
        return out

    def rgb(prefix: str, cin: int, up: bool) -> dict[str, torch.Tensor]:
        out = {f"{prefix}.conv.weight": torch.randn(1, 3, cin, 1, 1, generator=g),
               f"{prefix}.conv.modulation.weight": torch.randn(cin, d, generator=g),
               f"{prefix}.conv.modulation.bias": torch.ones(cin), f"{prefix}.bias": torch.zeros(1, 3, 1, 1)}
        if up:
            out[f"{prefix}.upsample.kernel"] = blur * 4
        return out

    return {"style.1.weight": torch.randn(d, d, generator=g), "style.1.bias": torch.zeros(d),
            "style.2.weight": torch.randn(d, d, generator=g), "style.2.bias": torch.zeros(d),
            "input.input": torch.randn(1, c, 4, 4, generator=g),
            **styled("conv1", c, c), **rgb("to_rgb1", c, False),
            **styled("convs.0", c, c, up=True), **styled("convs.1", c, c), **rgb("to_rgbs.0", c, True),
            "noises.noise_0": torch.randn(1, 1, 4, 4, generator=g),
            "noises.noise_1": torch.randn(1, 1, 8, 8, generator=g),
            "noises.noise_2": torch.randn(1, 1, 8, 8, generator=g)}


def write_rosinality(path: Path, state: dict[str, Any] | None = None, legacy: bool = False, **extra: Any) -> Path:
    ckpt = {"g_ema": rosinality_state() if state is None else state, "latent_avg": torch.zeros(8), **extra}
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    return path


# ---- raw pickle payloads --------------------------------------------------------------------------

def _payload_os_system(marker: Path) -> bytes:
    return pickle.dumps({"G_ema": _Reduce(os.system, f"touch '{marker}'")}, protocol=2)


def _payload_getattr_chain(marker: Path) -> bytes:
    command = f"touch '{marker}'"
    return (b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n(X\x02\x00\x00\x00ostRX\x06\x00\x00\x00systemtR"
            b"(X" + len(command).to_bytes(4, "little") + command.encode() + b"tR.")


#: BUILD with slot state on the EasyDict stand-in: replaces ``__setitem__`` on the class if allowed
POISON_EASYDICT = (b"\x80\x02cdnnlib.util\nEasyDict\nN}X\x0b\x00\x00\x00__setitem__cbuiltins\nset\ns\x86b.")
#: the same aimed at an allowed function (its ``__kwdefaults__``) and at numpy's dtype
POISON_FUNCTION = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0e\x00\x00\x00__kwdefaults__}s\x86b.")
POISON_DTYPE = b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00f8\x85R(K\x03X\x01\x00\x00\x00>NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb."


def _nv_kwargs(**changes: Any) -> dict[str, Any]:
    kw = json.loads(json.dumps(NV_KWARGS))
    for key, value in changes.items():
        if key in ("mapping_kwargs", "synthesis_kwargs") and isinstance(value, dict):
            kw[key].update(value)
        else:
            kw[key] = value
    return kw


def _with(state: dict[str, torch.Tensor], key: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    out = dict(state)
    out[key] = value
    return out


# ---- the CLI cases --------------------------------------------------------------------------------

def _import(path: Path, name: str, **kw: Any) -> Case:
    return Case(name, ["models", "import", str(path), "--name", name], path.name, inputs=[str(path)], **kw)


def build_cases(d: Path) -> list[Case]:
    marker = d / MARKER_NAME
    good = write_snapshot(d / "good.pkl")
    data = good.read_bytes()
    cases: list[Case] = []

    def raw(name: str, content: bytes, **kw: Any) -> None:
        p = d / f"{name}.pkl"
        p.write_bytes(content)
        cases.append(_import(p, name, **kw))

    for frac in (0.001, 0.3, 0.7, 0.999):
        raw(f"truncated-{int(frac * 1000)}", data[: max(1, int(len(data) * frac))])
    raw("payload-os-system", _payload_os_system(marker))
    raw("payload-getattr-chain", _payload_getattr_chain(marker))
    for power in (33, 40, 62):  # a bytes opcode declaring 8 GB … 4 EB that the file does not hold
        raw(f"declared-bytes-2e{power}", b"\x80\x04\x8e" + (1 << power).to_bytes(8, "little") + b"abc",
            rss_bound_mb=SIZE_RSS_MB)
    raw("poison-easydict", POISON_EASYDICT)
    raw("poison-function", POISON_FUNCTION)

    def snap(name: str, rss: float = 1500.0, **kw: Any) -> None:
        p = write_snapshot(d / f"{name}.pkl", **kw)
        cases.append(_import(p, name, rss_bound_mb=rss))

    # huge declared sizes: refused from the settings, before anything is allocated
    snap("huge-w-dim", SIZE_RSS_MB, state={}, init_kwargs=_nv_kwargs(w_dim=16000))
    snap("huge-resolution", SIZE_RSS_MB, state={}, init_kwargs=_nv_kwargs(img_resolution=16384))
    snap("huge-channels", SIZE_RSS_MB, state={},
         init_kwargs=_nv_kwargs(img_resolution=4096, synthesis_kwargs={"channel_base": 1 << 24, "channel_max": 4096}))
    snap("huge-mapping", SIZE_RSS_MB, state={}, init_kwargs=_nv_kwargs(mapping_kwargs={"num_layers": 10 ** 6}))
    snap("zero-stride-view", SIZE_RSS_MB,
         state=_with(nvlabs_state(), "mapping.fc0.weight", torch.zeros(1).expand(60000, 60000)))
    # bad settings
    snap("negative-channels", state={}, init_kwargs=_nv_kwargs(synthesis_kwargs={"channel_base": -64}))
    snap("channel-max-zero", state={}, init_kwargs=_nv_kwargs(synthesis_kwargs={"channel_max": 0}))
    snap("kwargs-not-dict", init_kwargs=["z_dim", 8])
    snap("mapping-kwargs-string", init_kwargs=_nv_kwargs(mapping_kwargs="num_layers=2"))
    snap("z-dim-string", init_kwargs=_nv_kwargs(z_dim="8"))
    snap("z-dim-float-inf", init_kwargs=_nv_kwargs(z_dim=float("inf")))
    snap("resolution-not-pow2", init_kwargs=_nv_kwargs(img_resolution=12))
    snap("filter-not-list", init_kwargs=_nv_kwargs(synthesis_kwargs={"resample_filter": 7}))
    # bad weights
    state = nvlabs_state()
    snap("nan-weight", state=_with(state, "synthesis.b8.conv1.weight",
                                   state["synthesis.b8.conv1.weight"].clone().fill_(float("nan"))))
    snap("inf-weight", state=_with(state, "mapping.fc1.bias", torch.full((8,), float("inf"))))
    snap("wrong-shape", state=_with(state, "mapping.fc0.weight", torch.zeros(8, 9)))
    snap("int-weight", state=_with(state, "mapping.fc0.bias", torch.zeros(8, dtype=torch.int64)))
    snap("zero-kernel", state={**state, "synthesis.b8.resample_filter": torch.zeros(4, 4)})
    snap("missing-weight", state={k: v for k, v in state.items() if k != "synthesis.b8.torgb.weight"})
    cases.append(_import(_deep_snapshot(d / "deep.pkl", 5000), "deep"))

    # rosinality
    def ros(name: str, rss: float = 1500.0, **kw: Any) -> None:
        p = write_rosinality(d / f"{name}.pt", **kw)
        cases.append(_import(p, name, rss_bound_mb=rss))

    rstate = rosinality_state()
    ros("ros-zero-stride", SIZE_RSS_MB, state=_with(rstate, "style.1.weight", torch.zeros(1).expand(16000, 16000)))
    ros("ros-many-rgbs", SIZE_RSS_MB,
        state={**rstate, **{f"to_rgbs.{i}.conv.weight": torch.zeros(1) for i in range(1, 300)}})
    ros("ros-scalar-style", state=_with(rstate, "style.1.weight", torch.tensor(1.0)))
    ros("ros-flat-rgb", state=_with(rstate, "to_rgb1.conv.weight", torch.zeros(3)))
    ros("ros-noise-weight-shape", state=_with(rstate, "conv1.noise.weight", torch.zeros(5)))
    ros("ros-zero-kernel", state=_with(rstate, "to_rgbs.0.upsample.kernel", torch.zeros(4, 4)))
    ros("ros-nan", state=_with(rstate, "convs.1.conv.weight", torch.full_like(rstate["convs.1.conv.weight"], float("nan"))))
    ros("ros-nan-latent-avg", state=rstate, latent_avg=torch.full((8,), float("nan")))
    ros("ros-legacy-huge", SIZE_RSS_MB, state=_legacy_huge_marker_state(), legacy=True)

    # files that are not files, names that are not names
    fifo = d / "fifo.pkl"
    os.mkfifo(fifo)
    cases.append(Case("fifo", ["models", "import", str(fifo), "--name", "fifo"], "fifo.pkl", timeout_s=20))
    folder = d / "folder.pkl"
    folder.mkdir()
    cases.append(Case("folder", ["models", "import", str(folder), "--name", "folder"], "folder.pkl"))
    cases.append(Case("missing", ["models", "import", str(d / "absent.pkl")], "absent.pkl"))
    long_name = "m" * 300
    cases.append(Case("long-model-name", ["generate", "--seed", "1", "--model", long_name, "-o", str(d / "o.png")],
                      "invalid model name"))
    cases.append(Case("long-import-name", ["models", "import", str(good), "--name", long_name], "good.pkl",
                      inputs=[str(good)]))
    cases.append(Case("reserved-name", ["models", "import", str(good), "--name", DEFAULT_MODEL], "reserved",
                      inputs=[str(good)]))
    cases.append(Case("long-file-name", ["models", "import", str(d / ("f" * 300 + ".pkl")), "--name", "lf"],
                      "too long"))
    return cases


_LEGACY_MARK = 7777


def _legacy_huge_marker_state() -> dict[str, torch.Tensor]:
    """A state whose one odd tensor has 7777 elements; the file is patched to declare 10⁹ (below)."""
    return {"style.1.weight": torch.zeros(_LEGACY_MARK)}


def _patch_legacy_numel(path: Path) -> None:
    data = path.read_bytes()
    needle = b"M" + _LEGACY_MARK.to_bytes(2, "little")
    assert needle in data
    path.write_bytes(data.replace(needle, b"J" + (10 ** 9).to_bytes(4, "little"), 1))


def test_hostile_model_files_get_one_line_each(tmp_path: Path) -> None:
    cases = build_cases(tmp_path)
    _patch_legacy_numel(tmp_path / "ros-legacy-huge.pt")
    # a good snapshot imports in the same process after the poisoning attempts above
    good = tmp_path / "good.pkl"
    cases.append(Case("good-after-poison", ["models", "import", str(good), "--name", "fuzz-good"], "",
                      inputs=[str(good)], expect_rc=0))
    legacy = write_rosinality(tmp_path / "legacy.pt", rosinality_state(), legacy=True)
    cases.append(Case("legacy-rosinality", ["models", "import", str(legacy), "--name", "fuzz-legacy"], "",
                      inputs=[str(legacy)], expect_rc=0))
    results = run_cases(cases, tmp_path)
    check(results, tmp_path / MARKER_NAME)
    by = {r["name"]: r for r in results}
    assert "b8.conv1.weight holds NaN" in by["nan-weight"]["stderr"]
    assert "legacy" in by["ros-legacy-huge"]["stderr"]
    assert "imported fuzz-good" in by["good-after-poison"]["stdout"]


def _mutations(data: bytes, count: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(count):
        buf = bytearray(data)
        kind = rng.randrange(4)
        if kind == 0:  # flip a few bytes
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif kind == 1:  # cut a slice out
            a = rng.randrange(len(buf))
            del buf[a: a + rng.randint(1, 64)]
        elif kind == 2:  # duplicate a slice
            a = rng.randrange(len(buf))
            buf[a:a] = buf[a: a + rng.randint(1, 64)]
        else:  # overwrite a small integer opcode argument region near a pickle opcode
            a = rng.randrange(min(len(buf), 4096))
            buf[a] = rng.choice(b"JKMh\x8a(.)tRb")
        yield bytes(buf)


def _mutation_run(tmp_path: Path, count: int, seed: int) -> None:
    data = write_snapshot(tmp_path / "base.pkl").read_bytes()
    rdata = write_rosinality(tmp_path / "base.pt", rosinality_state()).read_bytes()
    cases = []
    for i, mutated in enumerate(_mutations(data, count, seed)):
        p = tmp_path / f"mut{i}.pkl"
        p.write_bytes(mutated)
        cases.append(_import(p, f"mut{i}"))
    for i, mutated in enumerate(_mutations(rdata, max(2, count // 20), seed + 1)):  # 28 MB each
        p = tmp_path / f"rmut{i}.pt"
        p.write_bytes(mutated)
        cases.append(_import(p, f"rmut{i}"))
    results = run_cases(cases, tmp_path)
    bad = []
    for r in results:
        if r["rc"] == 0:  # a byte inside a weight changed: still a valid model, imported
            r["case"]["expect_rc"] = 0
        p = problems(r, tmp_path / MARKER_NAME)
        if p:
            bad.append(f"{r['name']}: {'; '.join(p)} stderr={r['stderr'][-400:]!r}")
    assert not bad, "\n".join(bad)


def test_mutated_snapshots_are_imported_or_refused_in_one_line(tmp_path: Path) -> None:
    _mutation_run(tmp_path, 16, seed=1)


@pytest.mark.slow
def test_many_mutated_snapshots(tmp_path: Path) -> None:
    _mutation_run(tmp_path, 300, seed=2)


# ---- direct unit tests ----------------------------------------------------------------------------

def test_poisoning_attempts_do_not_change_later_loads(tmp_path: Path) -> None:
    good = write_snapshot(tmp_path / "good.pkl")
    reference = load_nvlabs_pickle(good)
    for i, content in enumerate((POISON_EASYDICT, POISON_FUNCTION, POISON_DTYPE)):
        hostile = tmp_path / f"poison{i}.pkl"
        hostile.write_bytes(content)
        with pytest.raises(ModelFormatError):
            load_nvlabs_pickle(hostile)
    again = load_nvlabs_pickle(good)
    for key, value in reference.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    import numpy as np

    assert np.dtype("f8").byteorder == "=" and np.float64(0.5) == 0.5


def test_the_default_models_name_is_reserved(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    good = write_snapshot(tmp_path / "mobilestylegan-ffhq.pkl")
    for name in (DEFAULT_MODEL, None):  # given, or derived from the file's name
        with pytest.raises(ModelFormatError, match="reserved"):
            store.import_file(good, name)
    assert not store.has(DEFAULT_MODEL)
    gen = load_nvlabs_pickle(good)
    store.add(gen, DEFAULT_MODEL, {"package": "test"}, provisioning=True)
    assert store.has(DEFAULT_MODEL)


def test_reimport_keeps_the_old_model_until_the_new_one_is_complete(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store = ModelStore(tmp_path / "models")
    first = store.import_file(write_snapshot(tmp_path / "a.pkl"), "same")
    before = (first.path / "weights.pt").read_bytes()
    second = write_snapshot(tmp_path / "b.pkl", nvlabs_state(seed=1))
    real_save = torch.save

    def failing_save(obj: Any, f: Any, *a: Any, **k: Any) -> None:
        real_save(obj, f, *a, **k)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(ModelFormatError):
        store.import_file(second, "same")
    monkeypatch.undo()
    assert (first.path / "weights.pt").read_bytes() == before
    # the new folder is complete but cannot be moved into place: the old one must still be there
    real_rename = os.rename

    def failing_rename(src: Any, dst: Any) -> None:
        if Path(dst) == first.path and Path(src).name.startswith(".same.") and ".old-" not in Path(src).name:
            raise OSError(5, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises((ModelFormatError, OSError)):
        store.import_file(second, "same")
    monkeypatch.undo()
    assert (first.path / "weights.pt").read_bytes() == before
    assert store.names() == ["same"] and load_native(first.path) is not None
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]
    store.import_file(second, "same")
    assert (first.path / "weights.pt").read_bytes() != before


def test_stale_temporary_folders_are_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "models"
    stale = root / ".half.abc123.tmp"
    stale.mkdir(parents=True)
    (stale / "model.json").write_text("{}")
    fresh = root / ".busy.def456.tmp"
    fresh.mkdir()
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    store = ModelStore(root)
    assert not stale.exists() and fresh.exists()
    assert store.names() == []


def test_hand_edited_native_config_is_checked_before_allocating(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    info = store.import_file(write_snapshot(tmp_path / "tiny.pkl"), "tiny")
    meta_path = info.path / "model.json"
    meta = json.loads(meta_path.read_text())
    for change, words in (({"w_dim": 16000}, "w_dim"), ({"img_resolution": 16384}, "img_resolution"),
                          ({"channel_max": 0}, "channel_max"), ({"z_dim": "8"}, "z_dim"),
                          ({"img_resolution": 4096, "channel_base": 1 << 24, "channel_max": 4096}, "MB"),
                          ({"z_dim": 16}, "shape")):
        meta_path.write_text(json.dumps({**meta, "config": {**meta["config"], **change}}))
        with pytest.raises(ModelFormatError, match=words) as err:
            load_native(info.path)
        assert "\n" not in str(err.value) and str(info.path) in str(err.value)
    meta_path.write_text(json.dumps({**meta, "config": "nope"}))
    with pytest.raises(ModelFormatError):
        load_native(info.path)
    meta_path.write_text("[1, 2]")
    with pytest.raises(ModelFormatError):
        load_native(info.path)


def test_native_weights_with_nan_are_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    info = store.import_file(write_snapshot(tmp_path / "tiny.pkl"), "tiny")
    state = torch.load(info.path / "weights.pt", weights_only=True)
    state["blocks.b8.conv1.bias"][0] = float("nan")
    torch.save(state, info.path / "weights.pt")
    meta = json.loads((info.path / "model.json").read_text())
    meta.pop("weights_sha256")
    (info.path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="blocks.b8.conv1.bias holds NaN"):
        load_native(info.path)


def test_plan_matches_the_real_model_and_bounds_memory() -> None:
    from stylestudio.engine.mobilestylegan.network import MobileStyleGAN

    for cfg in (TINY, dict(TINY, img_resolution=32, channel_base=1024, channel_max=64, use_noise=False),
                dict(TINY, img_resolution=4, img_channels=1, mapping_layer_features=5, num_mapping_layers=3),
                dict(z_dim=4, w_dim=6, img_resolution=16, channel_base=40)):
        shapes = plan_state(StyleGAN2Generator, cfg)
        assert shapes == {k: v.shape for k, v in StyleGAN2Generator(**cfg).state_dict().items()}
    small = dict(z_dim=16, w_dim=16, resolution=32, channels=[16, 8, 4], mapping_layers=2)
    assert plan_state(MobileStyleGAN, small) == {k: v.shape for k, v in MobileStyleGAN(**small).state_dict().items()}
    for bad in (dict(small, channels=[4096] * 12, resolution=16384), dict(small, channels=[-4, 8, 4]),
                dict(small, mapping_layers=10 ** 6), dict(small, z_dim=16000, w_dim=16000)):
        with pytest.raises(ModelFormatError):
            plan_state(MobileStyleGAN, bad)
    big = dict(z_dim=512, w_dim=512, img_resolution=1024, img_channels=3)
    assert sum(4 * s.numel() for s in plan_state(StyleGAN2Generator, big).values()) < MAX_WEIGHT_BYTES
    with pytest.raises(ModelFormatError, match="MB"):
        plan_state(StyleGAN2Generator, dict(big, img_resolution=4096, channel_base=1 << 24, channel_max=4096))


def test_legacy_rosinality_checkpoints_import(tmp_path: Path) -> None:
    state = rosinality_state()
    new = load_rosinality(write_rosinality(tmp_path / "new.pt", state))
    gen, fmt = read_checkpoint(write_rosinality(tmp_path / "old.pt", state, legacy=True))
    assert fmt == "rosinality"
    for key, value in new.state_dict().items():
        if "noise_const" not in key:
            assert torch.equal(gen.state_dict()[key], value), key


def test_unreadable_file_is_one_line_even_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from stylestudio.engine import model_store

    path = write_snapshot(tmp_path / "locked.pkl")

    def denied(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(model_store, "open", denied, raising=False)
    with pytest.raises(ModelFormatError, match="locked.pkl: permission denied"):
        ModelStore(tmp_path / "models").import_file(path, "locked")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "locked.pkl")
    path.chmod(0)
    try:
        with pytest.raises(ModelFormatError, match="permission denied"):
            ModelStore(tmp_path / "models").import_file(path, "locked")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
