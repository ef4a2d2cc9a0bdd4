"""The task layer: one request + one run function per long operation, one progress/cancel
convention, and an engine that never loads Qt."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading

import pytest

from stylestudio.engine import tasks
from stylestudio.engine.progress import CancelToken, check_cancel, checking, is_cancelled, scaled
from stylestudio.errors import Cancelled, InputError

from test_gui_support import TINY, ensure_test_model


def test_no_engine_module_loads_qt():
    """Every module under stylestudio.engine, imported in a fresh interpreter, leaves PySide6 out."""
    code = r"""
import importlib, pkgutil, sys
import stylestudio.engine as engine
names, skipped = [], []
for m in pkgutil.walk_packages(engine.__path__, "stylestudio.engine."):
    try:
        importlib.import_module(m.name)
    except ModuleNotFoundError as exc:  # an optional third-party package (onnx…), not ours
        if (exc.name or "").startswith("stylestudio"):
            raise
        skipped.append(m.name)
        continue
    names.append(m.name)
qt = sorted(n for n in sys.modules if n.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6"))
print(len(names), len(skipped), qt)
assert not qt, qt
assert "stylestudio.engine.session" in names and "stylestudio.engine.tasks.catalog" in names
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    count = int(out.stdout.split()[0])
    assert count >= 40, out.stdout  # the walk really visited the engine


def test_one_cancel_convention():
    token = CancelToken()
    assert not token() and not is_cancelled(token) and not is_cancelled(None)
    check_cancel(token)
    token.cancel()
    assert token() and token.is_set() and token.cancelled
    with pytest.raises(Cancelled, match="stopped"):
        check_cancel(token, "stopped")
    event = threading.Event()  # the catalog's old CancelFlag also took an Event
    event.set()
    assert is_cancelled(event) and is_cancelled(lambda: True)
    seen = []
    report = checking(lambda m, f: seen.append((m, f)), CancelToken())
    report("a", 0.5)
    assert seen == [("a", 0.5)]
    with pytest.raises(Cancelled):
        checking(None, token)("b", 0.1)
    part = []
    scaled(lambda m, f: part.append(f), 0.5, 1.0)("x", 0.5)
    assert part == [0.75]


def test_the_old_names_are_the_one_convention():
    from stylestudio.engine import progress
    from stylestudio.engine.regions import builder as catalog  # the catalog builder kept the old names

    assert catalog.Progress is progress.Progress and catalog._is_cancelled is progress.is_cancelled
    import importlib

    for name in ("photo", "model_store", "sdist_data", "face.landmarks", "mobilestylegan.provision",
                 "inversion.invert", "directions.labels"):
        module = importlib.import_module(f"stylestudio.engine.{name}")
        assert module.Progress is progress.Progress, name
    with pytest.raises(Cancelled, match="catalog building"):
        catalog._check_cancel(lambda: True)


def test_every_request_is_a_frozen_dataclass_with_a_runner():
    tasks._load_builtin()
    assert {t.__name__ for t in tasks.TASKS} >= {"BuildCatalog", "CatalogInfo", "RegionMap", "ReferenceThumbnail",
                                                 "FindFaces", "InvertPhoto", "BuildDirections",
                                                 "SliderFromExamples", "ExportImage", "CopyPicture"}
    for kind in tasks.TASKS:
        assert dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen, kind
        assert kind.lane in tasks.LANES, kind
    req = tasks.BuildCatalog(TINY, k=6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.k = 7  # type: ignore[misc]
    assert tasks.title(req) == f"Build region catalog for {TINY}" and tasks.lane(req) == "jobs"
    with pytest.raises(TypeError, match="no task runs a str"):
        tasks.run(None, "build me a catalog")


def test_a_cancelled_catalog_build_stops_and_writes_nothing():
    from stylestudio.engine.regions.catalog import user_catalog_path
    from stylestudio.engine.session import Session

    ensure_test_model(TINY)
    target = user_catalog_path(TINY, "cancelled")
    session = Session()
    token = CancelToken()
    fractions: list[float] = []

    def progress(message: str, fraction: float) -> None:
        fractions.append(fraction)
        if fraction > 0:
            token.cancel()

    with pytest.raises(Cancelled):
        tasks.run(session, tasks.BuildCatalog(TINY, k=6, samples=5000, name="cancelled"), progress, token)
    assert any(f > 0 for f in fractions)
    assert not target.exists() and not target.with_suffix(".npz").exists()
    assert session.take_published() == []
    assert tasks.run(session, tasks.CatalogInfo(TINY, "cancelled")) is None
    with pytest.raises(Cancelled):  # cancelled before it starts: nothing runs at all
        tasks.run(session, tasks.BuildCatalog(TINY, name="cancelled"), None, token)


def test_install_makes_a_resource_current_and_is_published_once():
    from stylestudio.engine.session import Session

    ensure_test_model(TINY)
    session = Session()
    session.model(TINY)
    marker = object()
    session.install(TINY, "catalog", "x", marker)
    assert session.model(TINY).resources.get("catalog", "x") is marker
    published = session.take_published()
    assert published == [(TINY, "catalog", "x", marker)]
    assert session.take_published() == []
    session.release(published)  # handed over to another session: this one no longer holds it
    with pytest.raises(InputError, match="catalog"):
        session.model(TINY).resources.get("catalog", "x")
