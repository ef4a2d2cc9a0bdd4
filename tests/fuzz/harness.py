"""Fuzz cases through the real command line, checked the way a user would judge the answer.

A :class:`Case` is one hostile or malformed input given to ``stylestudio``. :func:`run_cases` runs
a batch of them in one subprocess (``tests/fuzz/driver.py``) and :func:`check` asserts, for each:

- exit status 2 (or the case's ``expect_rc``) and no timeout (a FIFO must not hang);
- exactly one non-empty stderr line, starting ``error: `` and naming the file (``names``);
- never the catch-all ``error: unexpected …`` and never a traceback;
- the case's own peak memory stays under ``rss_bound_mb``;
- the input files are byte-for-byte unchanged, and no payload ran (``MARKER`` absent).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: A hostile file's payload (if ever run) creates this file; its absence is asserted.
MARKER_NAME = "PAYLOAD_RAN"


@dataclass
class Case:
    name: str
    argv: list[str]
    names: str  #: text the error line must contain (usually the file's name)
    inputs: list[str] = field(default_factory=list)  #: files that must stay unchanged
    expect_rc: int = 2
    timeout_s: int = 60
    rss_bound_mb: float = 1500.0


def _digest(path: str) -> str | None:
    p = Path(path)
    if not p.is_file():
        return None
    return hashlib.sha256(p.read_bytes()).hexdigest()


def run_cases(cases: list[Case], workdir: Path, env: dict[str, str] | None = None) -> list[dict]:
    """Run ``cases`` in one child process; returns the driver's results with digests checked."""
    before = {c.name: {p: _digest(p) for p in c.inputs} for c in cases}
    spec = workdir / "cases.json"
    out = workdir / "results.json"
    spec.write_text(json.dumps([{"name": c.name, "argv": c.argv, "timeout_s": c.timeout_s} for c in cases]))
    child_env = {**os.environ, **(env or {})}
    child_env.pop("STYLESTUDIO_DEBUG", None)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), child_env.get("PYTHONPATH", "")]))
    total = sum(c.timeout_s for c in cases) + 120
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz.driver", str(spec), str(out)], cwd=workdir,
                          env=child_env, capture_output=True, text=True, timeout=total)
    assert proc.returncode == 0, f"fuzz driver died (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    results = json.loads(out.read_text())
    by_name = {c.name: c for c in cases}
    for r in results:
        c = by_name[r["name"]]
        r["case"] = asdict(c)
        r["changed"] = [p for p, d in before[c.name].items() if _digest(p) != d]
    return results


def problems(result: dict, marker: Path | None = None) -> list[str]:
    """What is wrong with one case's answer (empty when it is a good answer)."""
    c = result["case"]
    err = result["stderr"]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    found = []
    if result["timed_out"]:
        found.append(f"hung past {c['timeout_s']} s")
    if result["rc"] != c["expect_rc"]:
        found.append(f"exit {result['rc']}, expected {c['expect_rc']}")
    if "Traceback" in err:
        found.append("printed a traceback")
    if "error: unexpected" in err:
        found.append("reached the catch-all")
    if c["expect_rc"] != 0:
        if len(lines) != 1:
            found.append(f"{len(lines)} stderr lines, expected one")
        if lines and not lines[-1].startswith("error: "):
            found.append("message does not start with 'error: '")
        if c["names"] and c["names"] not in err:
            found.append(f"message does not name {c['names']!r}")
    if result["peak_rss_mb"] > c["rss_bound_mb"]:
        found.append(f"peak memory {result['peak_rss_mb']:.0f} MB > {c['rss_bound_mb']:.0f} MB")
    if result["changed"]:
        found.append(f"changed input files {result['changed']}")
    if marker is not None and marker.exists():
        found.append("a payload ran (marker file exists)")
    return found


def check(results: list[dict], marker: Path | None = None) -> None:
    """Assert every case answered well; the failure lists every bad case with its stderr."""
    bad = []
    for r in results:
        p = problems(r, marker)
        if p:
            bad.append(f"{r['name']}: {'; '.join(p)}\n    argv={r['argv']}\n    stderr={r['stderr'][-600:]!r}")
    assert not bad, f"{len(bad)} of {len(results)} fuzz cases answered badly:\n" + "\n".join(bad)
