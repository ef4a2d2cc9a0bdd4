"""Benches and scripts measure torch as the product runs it.

stylestudio/__init__.py sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads: libgomp's default
spin-waiting made main-thread renders 4× slower on this shared 2-core machine (0.68 s against
0.17 s for a 256-px preview at load 2.4). A bench or script that imports torch before anything
sets the policy times something slower than the app and the CLI, so each one imports stylestudio
first (the one place the policy is chosen; a few set it themselves, e.g. bench/synthesis.py's flag).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TORCH = re.compile(r"\s*(import|from) torch\b")
SETS_POLICY = re.compile(r'\s*os\.environ(\.setdefault\("OMP_WAIT_POLICY", "PASSIVE"\)|\["OMP_WAIT_POLICY"\] = )')


def _files() -> list[Path]:
    return sorted(p for folder in ("bench", "scripts") for p in (REPO / folder).glob("*.py")
                  if re.search(r"\b(import|from) torch\b", p.read_text()))


def policy_is_set_before_torch(source: str) -> bool:
    """True when, reading top to bottom, the policy is set (by an ``os.environ`` line, or by importing
    stylestudio at module level) before any line imports torch. (bench/synthesis.py sets it from a
    flag in main() before importing torch there.)"""
    for line in source.splitlines():
        if SETS_POLICY.match(line) or re.match(r"(import stylestudio\b|from stylestudio\b)", line):
            return True
        if TORCH.match(line):
            return False
    return False


def test_the_check_tells_a_late_policy_from_an_early_one() -> None:
    early = 'import os\nos.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")\nimport torch\n'
    late = 'import os\nimport torch\nos.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")\n'
    in_function = 'def main():\n    import torch\n'
    assert policy_is_set_before_torch(early)
    assert policy_is_set_before_torch("import stylestudio\nimport torch\n")
    assert not policy_is_set_before_torch(late)
    assert not policy_is_set_before_torch(in_function)


@pytest.mark.parametrize("path", _files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_bench_and_script_sets_the_policy_before_torch(path: Path) -> None:
    assert policy_is_set_before_torch(path.read_text()), (
        f"{path.relative_to(REPO)} imports torch before setting OMP_WAIT_POLICY=PASSIVE: its timings "
        "would not be the app's (import stylestudio first, after its sys.path line)")


def test_importing_stylestudio_sets_the_policy_for_torch() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", "import stylestudio, os; print(os.environ['OMP_WAIT_POLICY'])"],
                         env=env, capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "PASSIVE"
