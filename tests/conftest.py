"""Shared test setup: a private data folder per session, the oracle folder, the default model.

Tests never touch the user's real data: ``STYLESTUDIO_HOME`` points at a temporary folder. The
default model is converted once per run from the random-face wheel; CI pre-downloads that wheel
into ``STYLESTUDIO_WHEELHOUSE`` (see .ci/run).
"""
from __future__ import annotations

import os
import signal
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The tests run torch as the app does: importing stylestudio sets its OpenMP wait policy, and this
# runs before any test module imports torch (see test_openmp_policy.py).
import stylestudio  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[1]
ORACLE = REPO.parent / "shared" / "oracle"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run tests marked slow (CI does)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def stylestudio_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private data home for the whole run; the default model, once converted, is reused."""
    home = tmp_path_factory.mktemp("stylestudio-home")
    os.environ["STYLESTUDIO_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def oracle_dir() -> Path:
    if not ORACLE.is_dir():
        pytest.skip(f"oracle folder {ORACLE} is not present")
    return ORACLE


@pytest.fixture(scope="session")
def default_generator(stylestudio_home: Path):
    """The default model (MobileStyleGAN), provisioned once per test session."""
    import torch

    from stylestudio.engine.model_store import ModelStore

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return ModelStore().load()


@pytest.fixture(autouse=True)
def collect_garbage_on_main_thread():
    """Collect after each test here, on the main thread: a window left for the collector must not be
    destroyed later by a render worker thread that happens to trigger a collection (Qt crashes)."""
    yield
    import gc

    gc.collect()


@pytest.fixture
def press_ctrl_c(monkeypatch) -> Iterator[Callable[..., list[str]]]:
    """``press(command_module, when, times=1)``: send this process a real SIGINT ``times`` times once
    the command's progress line contains ``when``; returns the lines it was pressed at. SIGINT is
    Python's default handler meanwhile, as in a terminal (a CI runner may start the tests with it
    ignored, which the CLI then respects)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def press(command: ModuleType, when: str, times: int = 1) -> list[str]:
        pressed: list[str] = []
        printer = command.progress_printer

        def printing_then_pressing(message: str, fraction: float) -> None:
            printer(message, fraction)
            if when in message and not pressed:
                pressed.append(message)
                for _ in range(times):
                    signal.raise_signal(signal.SIGINT)

        monkeypatch.setattr(command, "progress_printer", printing_then_pressing)
        return pressed

    yield press
    signal.signal(signal.SIGINT, previous)
