"""Runs many CLI fuzz cases in one process (importing torch once) and reports each as JSON.

Usage: ``python -m tests.fuzz.driver CASES.json RESULTS.json``. Each case is
``{"name", "argv", "timeout_s"}``; each result adds ``rc``, ``stderr``, ``stdout``, ``peak_rss_mb``
(the case's own peak resident memory above the level before it, from Linux's VmHWM after
resetting it) and ``timed_out``.
"""
from __future__ import annotations

import contextlib
import io
import json
import signal
import sys
import traceback


class CaseTimeout(BaseException):
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise CaseTimeout()


def _vm(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def main() -> int:
    cases = json.loads(open(sys.argv[1]).read())
    from stylestudio.cli import main as cli_main

    signal.signal(signal.SIGALRM, _alarm)
    results = []
    for case in cases:
        out, err = io.StringIO(), io.StringIO()
        _reset_peak()
        base = _vm("VmRSS")
        timed_out = False
        rc = None
        signal.alarm(int(case.get("timeout_s", 60)))
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = cli_main(case["argv"])
                except SystemExit as exc:  # argparse errors
                    rc = exc.code if isinstance(exc.code, int) else 2
        except CaseTimeout:
            timed_out = True
        except BaseException:  # noqa: BLE001 - an escaped exception is what the test looks for
            err.write("Traceback (escaped main):\n" + traceback.format_exc())
            rc = -1
        finally:
            signal.alarm(0)
        results.append({**case, "rc": rc, "stderr": err.getvalue(), "stdout": out.getvalue(),
                        "peak_rss_mb": max(0.0, _vm("VmHWM") - base), "timed_out": timed_out})
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
