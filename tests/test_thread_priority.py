"""The job thread's priority setting is read when a job thread starts, so a bench can compare values."""
from __future__ import annotations

import os
import sys
import threading

import pytest

from stylestudio.app import thread_priority


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_the_job_nice_is_read_when_a_job_thread_lowers_itself(monkeypatch) -> None:
    monkeypatch.setattr(thread_priority, "JOB_NICE", 3)
    seen: dict = {}

    def job_thread() -> None:
        tid = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        seen["done"] = thread_priority.lower_this_thread_priority(torch_threads=0)
        seen["after"] = os.getpriority(os.PRIO_PROCESS, tid)

    t = threading.Thread(target=job_thread)
    t.start()
    t.join()
    if "nice" not in seen["done"]:
        pytest.skip("this sandbox does not allow lowering a thread's priority")
    assert seen["after"] == min(19, seen["before"] + 3) == seen["done"]["nice"]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == seen["before"]  # only that thread
